"""Tokens a platform rotates on refresh: written back to the shop's secret, not only kept in memory.

Taobao, JD, PDD, Douyin, Kuaishou and AliExpress answer a refresh with a new refresh token and
retire the old one (Kuaishou within 5 minutes). A token kept only by a warm container dies with
it, and the next cold start would refresh with a dead token. So every adapter reports a refresh
here, and the persister the registry installs merges the new fields into the shop's secret.
Tooling and tests that build clients by hand install none: their tokens live in memory only.

A write-back that fails does not fail the poll (the fresh token works for this container); it is
logged as an error so an alarm on it can send an operator to re-authorize before a cold start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from oms.observability import logger

Persister = Callable[[str, str, dict], None]  # (channel, shop id, fields to merge into the secret)

_persister: Persister | None = None
_lock = threading.Lock()


def install_persister(persister: Persister | None) -> None:
    global _persister
    with _lock:
        _persister = persister


def tokens_rotated(channel: str, shop_id: str, fields: dict) -> None:
    """Called by an adapter after a successful refresh with the fields that changed."""
    with _lock:
        persister = _persister
    if persister is None:
        return
    try:
        persister(channel, shop_id, {key: value for key, value in fields.items() if value is not None})
    except Exception as error:  # noqa: BLE001 - the poll goes on with the fresh in-memory token
        logger.error("rotated tokens could not be written back to the shop's secret",
                     extra={"channel": channel, "shop_id": shop_id, "error": f"{type(error).__name__}: {error}"})

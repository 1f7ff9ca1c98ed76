"""Helpers shared by the normalizer tests: the synthetic channel files, fresh copies of their records,
payload surgery for malformed-input cases, and the refusal a malformed order ends in."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import ModuleType

import pytest
from oms.domain.order import MalformedOrderError

CHANNELS_DIR = Path(__file__).resolve().parents[3] / "shared" / "channels"

# The contract's ship_to when the platform gave no address at all (plain-text channels).
NULL_SHIP_TO = {
    "country": None, "province": None, "city": None, "district": None, "address": None,
    "postal_code": None, "name": None, "phone": None, "encrypted": False,
}

DELETE = object()  # for set_path: remove the key instead of setting it


def synthetic_file(channel: str) -> Path:
    """shared/channels/<channel>_synthetic.json (Amazon's is named after the SP-API)."""
    return CHANNELS_DIR / f"{'amazon_sp_api' if channel == 'amazon' else channel}_synthetic.json"


def synthetic_document(channel: str) -> dict:
    return json.loads(synthetic_file(channel).read_text(encoding="utf-8"))


def synthetic_records(normalizer: ModuleType) -> list[dict]:
    """The raw records of the channel's synthetic file, as the normalizer splits them."""
    return normalizer.split_response(synthetic_document(normalizer.CHANNEL))


def synthetic_record(normalizer: ModuleType, index: int) -> dict:
    """A fresh copy of one synthetic record, for a test to change at will."""
    return copy.deepcopy(synthetic_records(normalizer)[index])


def set_path(path: str, value: object):
    """A change to a payload: set (or, with DELETE, remove) the key at a dotted path ("orders.order.0.num")."""

    def mutate(record: dict) -> None:
        *parents, leaf = path.split(".")
        target = record
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is DELETE:
            del target[leaf]
        else:
            target[leaf] = value

    return mutate


def refused(normalizer: ModuleType, raw: object, shop_id: str = "s", *, match: str | None = None) -> MalformedOrderError:
    """The MalformedOrderError normalizing `raw` must end in (`match`: a regex its message must contain)."""
    with pytest.raises(MalformedOrderError, match=match) as caught:
        normalizer.normalize(raw, shop_id)
    return caught.value

"""Which client speaks which channel: the one place a new channel's adapter is registered."""

from __future__ import annotations

import importlib
import threading

import requests

from oms.adapters.channels import tokens
from oms.adapters.channels.http import ChannelHttp
from oms.adapters.secrets import merge_into_shop_secret, shop_credentials
from oms.ports import ChannelClient

_CLIENTS = {
    "taobao": ("oms.adapters.channels.taobao", "TaobaoClient"),
    "jd": ("oms.adapters.channels.jd", "JdClient"),
    "pdd": ("oms.adapters.channels.pdd", "PddClient"),
    "douyin": ("oms.adapters.channels.douyin", "DouyinClient"),
    "kuaishou": ("oms.adapters.channels.kuaishou", "KuaishouClient"),
    "amazon": ("oms.adapters.channels.amazon", "AmazonClient"),
    "aliexpress": ("oms.adapters.channels.aliexpress", "AliexpressClient"),
    "shopify": ("oms.adapters.channels.shopify", "ShopifyClient"),
}

# Keep-alive across polls of a warm container; one session per thread, as requests advises.
_local = threading.local()


def _session() -> requests.Session:
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    return _local.session


def supported_channels() -> tuple[str, ...]:
    return tuple(_CLIENTS)


def window_rules(channel: str):
    """The channel's poll-window rules (`ChannelWindowRules`: lag behind now, longest window)."""
    return _client_class(channel).rules


def _client_class(channel: str) -> type:
    if channel not in _CLIENTS:
        raise ValueError(f"unsupported channel {channel!r}; supported: {', '.join(_CLIENTS)}")
    module_name, class_name = _CLIENTS[channel]
    return getattr(importlib.import_module(module_name), class_name)


def build_client(
    channel: str, shop_id: str, *, secrets_prefix: str, timeout_seconds: float, deadline: float | None
) -> ChannelClient:
    client_class = _client_class(channel)
    credentials = shop_credentials(secrets_prefix, channel, shop_id)
    tokens.install_persister(lambda ch, shop, fields: merge_into_shop_secret(secrets_prefix, ch, shop, fields))
    http = ChannelHttp(session=_session(), timeout_seconds=timeout_seconds, deadline=deadline)
    return client_class(shop_id, credentials, http)

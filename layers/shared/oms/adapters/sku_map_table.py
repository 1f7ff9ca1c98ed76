"""The SkuMap table: which warehouse SKUs (and how many of each) one channel SKU stands for.

Key (channel, channel_sku); channel "*" holds the seller's own codes, valid on every channel, and a
channel's own row overrides it. Mappings change rarely: a warm container keeps what it looked up
for a minute, so a batch of orders for the same products costs one lookup.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from oms.adapters import aws
from oms.domain.inventory import SkuComponent, SkuMapping

ANY_CHANNEL = "*"
CACHE_SECONDS = 60.0


class SkuMapTable:
    def __init__(self, table_name: str):
        self.name = table_name
        self._dynamodb = aws.client("dynamodb")
        self._cache: dict[tuple[str, str], tuple[SkuMapping | None, float]] = {}

    def put(self, mapping: SkuMapping) -> None:
        if not mapping.components:
            raise ValueError(f"{mapping.channel}/{mapping.channel_sku}: a mapping needs at least one component")
        self._dynamodb.put_item(TableName=self.name, Item={
            "channel": {"S": mapping.channel},
            "channel_sku": {"S": mapping.channel_sku},
            "components": {"L": [{"M": {"sku": {"S": c.sku}, "quantity": {"N": str(c.quantity)}}}
                                 for c in mapping.components]},
        })

    def prefetch(self, channel: str, channel_skus: Iterable[str]) -> None:
        """Look up (channel, sku) and ("*", sku) for every SKU not cached, in one BatchGetItem per 100 keys."""
        now = time.monotonic()
        wanted = [(c, sku) for sku in dict.fromkeys(channel_skus) if sku for c in (channel, ANY_CHANNEL)
                  if not self._fresh((c, sku), now)]
        keys = [{"channel": {"S": c}, "channel_sku": {"S": s}} for c, s in wanted]
        mappings = (_mapping(item) for item in aws.batch_get(self.name, keys))
        found = {(mapping.channel, mapping.channel_sku): mapping for mapping in mappings}
        for key in wanted:
            self._cache[key] = (found.get(key), now)

    def mapping_of(self, channel: str, channel_sku: str) -> SkuMapping | None:
        """The channel's own mapping, else the seller's code for every channel (after `prefetch`)."""
        if not self._fresh((channel, channel_sku), time.monotonic()):
            self.prefetch(channel, [channel_sku])
        own = self._cache[(channel, channel_sku)][0]
        return own if own is not None else self._cache[(ANY_CHANNEL, channel_sku)][0]

    def _fresh(self, key: tuple[str, str], now: float) -> bool:
        cached = self._cache.get(key)
        return cached is not None and now - cached[1] < CACHE_SECONDS


def _mapping(item: dict) -> SkuMapping:
    return SkuMapping(
        channel=item["channel"]["S"],
        channel_sku=item["channel_sku"]["S"],
        components=tuple(SkuComponent(c["M"]["sku"]["S"], int(c["M"]["quantity"]["N"])) for c in item["components"]["L"]),
    )

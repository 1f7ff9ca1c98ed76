"""Channel normalizers: pure translation of a platform's order payload into a CanonicalOrder.

Each channel module exposes the same three functions:
- `split_response(document) -> list[dict]`: the raw order records in one list response, in the
  shape of `shared/channels/<channel>_synthetic.json` (two-call channels join list + detail here);
- `order_id_of(raw) -> str | None`: the platform order id, read defensively (used for quarantine);
- `normalize(raw, shop_id) -> CanonicalOrder`: raises MalformedOrderError with a clear reason.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from oms.domain.order import CHANNELS

# Every channel with a normalizer module here, in the contract's order.
SUPPORTED = tuple(channel for channel in CHANNELS if importlib.util.find_spec(f"oms.normalizers.{channel}"))


def normalizer_for(channel: str) -> ModuleType:
    if channel not in SUPPORTED:
        raise ValueError(f"no normalizer for channel {channel!r}; supported: {', '.join(SUPPORTED)}")
    return importlib.import_module(f"oms.normalizers.{channel}")

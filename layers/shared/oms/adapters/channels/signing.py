"""Request signatures of the Chinese platforms' open APIs (CHANNELS.md design fact 6).

One function per published algorithm; the adapters sign with them and the simulators verify with
them, so known-answer tests (tests/unit/test_signing.py, values computed from the documented
recipe by hand) pin them and the two sides cannot share a bug unnoticed.

- TOP family (Taobao `md5`/`hmac`/`hmac-sha256`, JD `md5`, PDD `MD5`): every parameter except
  `sign` (and file parameters), keys sorted by ASCII, concatenated as key1value1key2value2...;
  md5 wraps it in the secret on both sides, the HMAC variants key the hash with the secret;
  upper-case hex.
- Douyin Shop v2: HMAC-SHA256 keyed by the app secret over
  secret + "app_key{k}method{m}param_json{p}timestamp{t}v{v}" + secret, lower-case hex, where
  param_json is the business parameters as key-sorted compact JSON.
- Kuaishou: the signed parameters sorted by key, joined as k=v with "&", then
  "&signSecret={secret}"; MD5 gives lower-case hex, HMAC_SHA256 (keyed by the sign secret) Base64.
- AliExpress IOP: HMAC-SHA256 keyed by the app secret over the API path (only when the name
  contains "/") followed by the sorted key+value concatenation; upper-case hex.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping


def _concat_sorted(params: Mapping[str, object]) -> str:
    return "".join(f"{key}{params[key]}" for key in sorted(params) if key != "sign" and params[key] is not None)


def top_sign(params: Mapping[str, object], secret: str, sign_method: str = "md5") -> str:
    """Taobao TOP (also JD and PDD, which use its md5 recipe)."""
    text = _concat_sorted(params)
    method = sign_method.lower()
    if method == "md5":
        digest = hashlib.md5(f"{secret}{text}{secret}".encode()).hexdigest()
    elif method == "hmac":
        digest = hmac.new(secret.encode(), text.encode(), hashlib.md5).hexdigest()
    elif method == "hmac-sha256":
        digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    else:
        raise ValueError(f"unknown TOP sign_method {sign_method!r}")
    return digest.upper()


def compact_json(value: object) -> str:
    """Key-sorted JSON without spaces, non-ASCII kept: what Douyin and JD sign and send."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def douyin_sign(*, app_key: str, secret: str, method: str, param_json: str, timestamp: str, v: str = "2") -> str:
    text = f"{secret}app_key{app_key}method{method}param_json{param_json}timestamp{timestamp}v{v}{secret}"
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def kuaishou_sign(params: Mapping[str, object], sign_secret: str, sign_method: str = "HMAC_SHA256") -> str:
    text = "&".join(f"{key}={params[key]}" for key in sorted(params) if key != "sign")
    text += f"&signSecret={sign_secret}"
    if sign_method == "MD5":
        return hashlib.md5(text.encode()).hexdigest()
    if sign_method == "HMAC_SHA256":
        return base64.b64encode(hmac.new(sign_secret.encode(), text.encode(), hashlib.sha256).digest()).decode()
    raise ValueError(f"unknown Kuaishou signMethod {sign_method!r}")


def iop_sign(api_name: str, params: Mapping[str, object], secret: str) -> str:
    """AliExpress Open Platform (IOP), sign_method sha256."""
    prefix = api_name if "/" in api_name else ""
    text = prefix + _concat_sorted(params)
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest().upper()


def signatures_match(expected: str, given: str | None) -> bool:
    """Constant-time compare, as a verifier should."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())

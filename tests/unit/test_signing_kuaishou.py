"""Kuaishou request signature, known answers from the documented recipe ("API调用说明", 文档ID 401853).

The document's worked example names its parameters (access_token=xxx, appkey=ks123, a CJK `param`,
timestamp 1583271919000, version 1) but not the signSecret behind its sample sign, so the expected
values are computed here by hand with hashlib/hmac from the published recipe, with the secret
"xxxxxx": sort the parameters by key, join as k=v with "&", append "&signSecret=<secret>"; MD5 ->
lower-case hex; HMAC_SHA256 keyed by the signSecret -> Base64. Signed before URL-encoding.
"""

import base64
import hashlib
import hmac

import pytest
from oms.adapters.channels.signing import kuaishou_sign

SIGN_SECRET = "xxxxxx"
PARAM = '{"title":"短袖", "relItemId":123456, "categoryId":12}'


def documented_params(sign_method: str) -> dict:
    return {
        "appkey": "ks123",
        "method": "open.xxx.xxx.xxx",
        "version": "1",
        "param": PARAM,
        "access_token": "xxx",
        "timestamp": "1583271919000",
        "signMethod": sign_method,
    }


def sorted_text(sign_method: str) -> str:
    # Written out in key order by hand, as the document shows it.
    return (
        f"access_token=xxx&appkey=ks123&method=open.xxx.xxx.xxx&param={PARAM}"
        f"&signMethod={sign_method}&timestamp=1583271919000&version=1&signSecret={SIGN_SECRET}"
    )


def test_md5_signature_is_lower_hex_of_the_sorted_text_with_the_sign_secret():
    expected = hashlib.md5(sorted_text("MD5").encode("utf-8")).hexdigest()
    assert expected == "5ed7892473f85b811891e0f1d65e10a4"  # pinned: a recipe change must show here
    assert kuaishou_sign(documented_params("MD5"), SIGN_SECRET, "MD5") == expected


def test_hmac_sha256_signature_is_base64_keyed_by_the_sign_secret():
    digest = hmac.new(SIGN_SECRET.encode(), sorted_text("HMAC_SHA256").encode("utf-8"), hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode()
    assert expected == "pw81NVLI1T0dWe5ja6jiZd5ZON3iSx65h/8TBi8CYCg="
    assert kuaishou_sign(documented_params("HMAC_SHA256"), SIGN_SECRET, "HMAC_SHA256") == expected


def test_the_sign_parameter_itself_is_never_signed_and_order_of_keys_does_not_matter():
    params = documented_params("HMAC_SHA256")
    reordered = dict(reversed(list(params.items())))
    signed = kuaishou_sign(params, SIGN_SECRET)
    assert kuaishou_sign({**reordered, "sign": "anything"}, SIGN_SECRET) == signed


def test_a_different_secret_or_param_changes_the_signature():
    params = documented_params("HMAC_SHA256")
    signed = kuaishou_sign(params, SIGN_SECRET)
    assert kuaishou_sign(params, "another-secret") != signed
    assert kuaishou_sign({**params, "param": '{"title":"长袖"}'}, SIGN_SECRET) != signed


def test_unknown_sign_method_is_refused():
    with pytest.raises(ValueError):
        kuaishou_sign(documented_params("SHA1"), SIGN_SECRET, "SHA1")

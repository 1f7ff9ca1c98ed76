"""AliExpress IOP signatures (sign_method sha256), computed by hand from the documented recipe.

Recipe (iop-sdk-python-20220609 `base.py` sign(); AliExpress "Refresh token /auth/token/refresh"
doc; Lazada's doc of the same IOP gateway): every parameter except `sign`, keys sorted by ASCII,
concatenated as key1value1key2value2...; for system APIs whose name contains "/" (the token
calls) the API path is put in front; HMAC-SHA256 keyed by the app secret; upper-case hex.
No published worked example with its answer was found, so the expected values below are computed
here with hashlib/hmac directly from fixed inputs, independent of oms.adapters.channels.signing.
"""

import hashlib
import hmac

from oms.adapters.channels.signing import iop_sign, signatures_match

APP_SECRET = "helloworld"
PARAM0 = ('{"current_page":1,"modified_date_end":"2026-03-13 20:00:00","modified_date_start":'
          '"2026-03-13 19:00:00","order_status_list":["PLACE_ORDER_SUCCESS","FINISH"],"page_size":50}')
LIST_CALL = {
    "app_key": "500001",
    "format": "json",
    "method": "aliexpress.solution.order.get",
    "param0": PARAM0,
    "partner_id": "oms-aliexpress",
    "session": "50000600a12token",
    "sign_method": "sha256",
    "simplify": "false",
    "timestamp": "1773457200000",
}
REFRESH_CALL = {"app_key": "500001", "refresh_token": "50001600r3fresh", "sign_method": "sha256",
                "timestamp": "1773457200000"}


def by_hand(text: str) -> str:
    return hmac.new(APP_SECRET.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest().upper()


def test_a_business_api_call_signs_the_sorted_key_value_concatenation():
    # GIVEN the concatenation written out by hand, keys in ASCII order
    concatenated = (
        "app_key500001" "formatjson" "methodaliexpress.solution.order.get" f"param0{PARAM0}"
        "partner_idoms-aliexpress" "session50000600a12token" "sign_methodsha256" "simplifyfalse"
        "timestamp1773457200000"
    )
    # WHEN the list call is signed THEN it is the upper-case HMAC-SHA256 of that text
    expected = by_hand(concatenated)
    assert len(expected) == 64 and expected == expected.upper()
    assert iop_sign("aliexpress.solution.order.get", LIST_CALL, APP_SECRET) == expected


def test_the_refresh_call_puts_the_api_path_in_front():
    concatenated = "/auth/token/refresh" "app_key500001" "refresh_token50001600r3fresh" "sign_methodsha256" \
                   "timestamp1773457200000"
    assert iop_sign("/auth/token/refresh", REFRESH_CALL, APP_SECRET) == by_hand(concatenated)
    # without the path it would be another signature
    assert iop_sign("auth.token.refresh", REFRESH_CALL, APP_SECRET) != by_hand(concatenated)


def test_the_sign_parameter_is_never_signed_and_one_changed_value_changes_the_signature():
    signed = iop_sign("aliexpress.solution.order.get", LIST_CALL, APP_SECRET)
    assert iop_sign("aliexpress.solution.order.get", {**LIST_CALL, "sign": signed}, APP_SECRET) == signed
    changed = {**LIST_CALL, "param0": PARAM0.replace('"page_size":50', '"page_size":51')}
    assert iop_sign("aliexpress.solution.order.get", changed, APP_SECRET) != signed
    assert not signatures_match(signed, signed.lower())


def test_non_ascii_values_are_signed_as_utf8():
    params = {"app_key": "500001", "param1": '{"buyer":"陳大文"}', "timestamp": "1"}
    expected = by_hand('app_key500001param1{"buyer":"陳大文"}timestamp1')
    assert iop_sign("aliexpress.solution.order.info.get", params, APP_SECRET) == expected

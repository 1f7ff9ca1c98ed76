"""JD JOS request signature: the published worked example, pinned, plus the recipe by hand.

JD's developer guide (open.jd.com/v2/#/doc/dev-guide?listId=2643, quoted in public code) signs a
jingdong.pop.order.search call with app secret "yourappSecret" to D70825340F4084360B9362B60DFD7930:
MD5(secret + key1value1key2value2... sorted by key, 360buy_param_json included + secret), upper hex.
"""

import hashlib

from oms.adapters.channels.signing import signatures_match, top_sign

# The documented example's parameters, verbatim (its business JSON is already a string there).
JD_DOC_PARAMS = {
    "360buy_param_json": (
        '{"end_date":null,"optional_fields":null,"order_state":"WAIT_SELLER_STOCK_OUT",'
        '"page":"1","page_size":"200","start_date":null}'
    ),
    "access_token": "yourtoken",
    "app_key": "yourappkey",
    "method": "jingdong.pop.order.search",
    "timestamp": "2021-05-07 09:20:39.683+0800",
    "v": "2.0",
}
JD_DOC_SECRET = "yourappSecret"
JD_DOC_SIGN = "D70825340F4084360B9362B60DFD7930"


def test_jd_signature_matches_the_published_worked_example():
    assert top_sign(JD_DOC_PARAMS, JD_DOC_SECRET, "md5") == JD_DOC_SIGN


def test_the_published_example_is_the_recipe_computed_by_hand():
    # "360buy_param_json" sorts first because "3" < "a"; the secret wraps both ends.
    concatenated = "".join(f"{key}{JD_DOC_PARAMS[key]}" for key in sorted(JD_DOC_PARAMS))
    assert concatenated.startswith("360buy_param_json{")
    digest = hashlib.md5(f"{JD_DOC_SECRET}{concatenated}{JD_DOC_SECRET}".encode()).hexdigest().upper()
    assert digest == JD_DOC_SIGN


def test_the_sign_parameter_is_not_signed_and_any_other_change_breaks_the_signature():
    assert top_sign({**JD_DOC_PARAMS, "sign": JD_DOC_SIGN}, JD_DOC_SECRET) == JD_DOC_SIGN
    assert top_sign({**JD_DOC_PARAMS, "v": "1.0"}, JD_DOC_SECRET) != JD_DOC_SIGN
    assert top_sign(JD_DOC_PARAMS, "another-secret") != JD_DOC_SIGN


def test_non_ascii_business_json_is_signed_as_utf8_by_hand():
    # GIVEN a business JSON with a Chinese value, fixed inputs
    params = {**JD_DOC_PARAMS, "360buy_param_json": '{"order_state":"TRADE_CANCELED","remark":"京东"}'}
    text = "".join(f"{key}{params[key]}" for key in sorted(params))
    expected = hashlib.md5(f"{JD_DOC_SECRET}{text}{JD_DOC_SECRET}".encode()).hexdigest().upper()
    # THEN signing.py agrees with the hand computation, and the verifier accepts it
    assert top_sign(params, JD_DOC_SECRET) == expected
    assert signatures_match(expected, top_sign(params, JD_DOC_SECRET))
    assert not signatures_match(expected, expected.lower())

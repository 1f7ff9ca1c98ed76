"""PDD request signature: the open platform's published worked example, pinned.

Source: open.pinduoduo.com "API调用方法详解" / 签名算法 (document idStr=8EC06C399636041E), reproduced in
several public SDK test suites: parameters of a `pdd.order.number.list.get` call, client_secret
"testSecret", sign = UPPER(MD5(secret + sorted key+value + secret)) = E4DE3ED21002510DED352819E7AE6775.
"""

import hashlib

from oms.adapters.channels.signing import signatures_match, top_sign

DOC_PARAMS = {
    "access_token": "asd78172s8ds9a921j9qqwda12312w1w21211",
    "client_id": "1",
    "data_type": "XML",
    "order_status": "1",
    "page": "1",
    "page_size": "10",
    "timestamp": "1480411125",
    "type": "pdd.order.number.list.get",
}
DOC_CONCATENATION = (
    "testSecretaccess_tokenasd78172s8ds9a921j9qqwda12312w1w21211client_id1data_typeXMLorder_status1"
    "page1page_size10timestamp1480411125typepdd.order.number.list.gettestSecret"
)
DOC_SIGN = "E4DE3ED21002510DED352819E7AE6775"


def test_the_documented_string_to_sign_hashes_to_the_documented_sign():
    # The published string, hashed by hand: the example itself is consistent.
    assert hashlib.md5(DOC_CONCATENATION.encode()).hexdigest().upper() == DOC_SIGN


def test_sorting_the_documented_parameters_rebuilds_the_documented_string():
    rebuilt = "testSecret" + "".join(f"{key}{DOC_PARAMS[key]}" for key in sorted(DOC_PARAMS)) + "testSecret"
    assert rebuilt == DOC_CONCATENATION


def test_our_signer_gives_the_documented_sign():
    assert top_sign(DOC_PARAMS, "testSecret") == DOC_SIGN


def test_integers_sign_like_their_text_and_the_sign_itself_is_left_out():
    as_numbers = {**DOC_PARAMS, "order_status": 1, "page": 1, "page_size": 10, "timestamp": 1480411125}
    assert top_sign({**as_numbers, "sign": DOC_SIGN}, "testSecret") == DOC_SIGN


def test_a_changed_parameter_or_secret_changes_the_sign():
    assert top_sign({**DOC_PARAMS, "page": "2"}, "testSecret") != DOC_SIGN
    assert top_sign(DOC_PARAMS, "otherSecret") != DOC_SIGN
    assert signatures_match(DOC_SIGN, top_sign(DOC_PARAMS, "testSecret"))
    assert not signatures_match(DOC_SIGN, DOC_SIGN.lower())

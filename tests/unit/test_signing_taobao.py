"""TOP request signatures: the published md5 worked example, and the hmac / hmac-sha256 variants
computed by hand here from the documented recipe (hashlib/hmac directly), against signing.top_sign."""

import hashlib
import hmac

import pytest
from oms.adapters.channels.signing import top_sign

# open.taobao.com docId=101617 (API调用方法详解 / 签名算法): the worked example's parameters, secret
# "helloworld", sign_method md5, documented result 66987CB115214E59E6EC978214934FB8.
DOC_PARAMS = {
    "method": "taobao.item.seller.get", "app_key": "12345678", "session": "test",
    "timestamp": "2016-01-01 12:00:00", "format": "json", "v": "2.0", "sign_method": "md5",
    "fields": "num_iid,title,nick,price,num", "num_iid": "11223344",
}
DOC_SECRET = "helloworld"
DOC_SIGN = "66987CB115214E59E6EC978214934FB8"

# One poll's list request, with CJK in a value (signed as UTF-8 bytes).
LIST_PARAMS = {
    "method": "taobao.trades.sold.increment.get", "app_key": "23456789", "session": "6201e00fabc",
    "timestamp": "2026-03-14 10:00:00", "format": "json", "v": "2.0", "sign_method": "hmac",
    "fields": "tid,tid_str,modified", "start_modified": "2026-03-14 09:00:00",
    "end_modified": "2026-03-14 09:59:00", "page_no": "1", "page_size": "100", "buyer_nick": "小明",
}


def concatenated(params: dict) -> str:
    """The documented recipe: keys sorted by ASCII, key1value1key2value2..., `sign` left out."""
    return "".join(f"{key}{params[key]}" for key in sorted(params) if key != "sign")


def test_the_documented_worked_example_signs_to_its_published_value():
    # GIVEN the concatenation the document spells out
    text = concatenated(DOC_PARAMS)
    assert text == ("app_key12345678fieldsnum_iid,title,nick,price,numformatjsonmethodtaobao.item.seller.get"
                    "num_iid11223344sessiontestsign_methodmd5timestamp2016-01-01 12:00:00v2.0")
    # WHEN it is wrapped in the secret and hashed, by hand and by top_sign
    by_hand = hashlib.md5(f"{DOC_SECRET}{text}{DOC_SECRET}".encode()).hexdigest().upper()
    # THEN both give the published signature
    assert by_hand == DOC_SIGN
    assert top_sign(DOC_PARAMS, DOC_SECRET, "md5") == DOC_SIGN


def test_an_existing_sign_parameter_is_not_signed():
    assert top_sign({**DOC_PARAMS, "sign": "0" * 32}, DOC_SECRET, "md5") == DOC_SIGN


def test_hmac_is_hmac_md5_keyed_by_the_secret_without_wrapping():
    # GIVEN a list request signed with sign_method=hmac
    secret = "0f6b5e0c1d2a3b4c5d6e7f8091a2b3c4"
    # WHEN computed by hand: HMAC-MD5(key=secret, concatenation), upper-case hex
    by_hand = hmac.new(secret.encode(), concatenated(LIST_PARAMS).encode("utf-8"), hashlib.md5).hexdigest().upper()
    # THEN top_sign agrees, and it differs from the md5 recipe on the same parameters
    assert top_sign(LIST_PARAMS, secret, "hmac") == by_hand
    assert top_sign(LIST_PARAMS, secret, "md5") != by_hand
    assert len(by_hand) == 32 and by_hand == by_hand.upper()


def test_hmac_sha256_variant():
    secret = "s3cr3t"
    params = {**LIST_PARAMS, "sign_method": "hmac-sha256"}
    by_hand = hmac.new(secret.encode(), concatenated(params).encode("utf-8"), hashlib.sha256).hexdigest().upper()
    assert top_sign(params, secret, "hmac-sha256") == by_hand and len(by_hand) == 64


def test_one_changed_value_changes_the_signature():
    changed = {**DOC_PARAMS, "num_iid": "11223345"}
    assert top_sign(changed, DOC_SECRET, "md5") != DOC_SIGN


def test_unknown_sign_method_is_refused():
    with pytest.raises(ValueError):
        top_sign(DOC_PARAMS, DOC_SECRET, "sha1")

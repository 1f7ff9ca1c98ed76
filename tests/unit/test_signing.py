"""Known answers for the request signatures: published worked examples and RFC vectors.

Each expected value comes from outside our code (the platform's documentation or an RFC), so the
adapters (which sign) and the simulators (which verify) cannot agree on a wrong algorithm.
"""

import base64
import hashlib
import hmac

import pytest

from oms.adapters.channels.signing import compact_json, douyin_sign, iop_sign, kuaishou_sign, signatures_match, top_sign

# open.taobao.com docId=101617 ("API调用方法详解"), the worked md5 example.
TAOBAO_DOC_PARAMS = {
    "method": "taobao.item.seller.get", "app_key": "12345678", "session": "test",
    "timestamp": "2016-01-01 12:00:00", "format": "json", "v": "2.0", "sign_method": "md5",
    "fields": "num_iid,title,nick,price,num", "num_iid": "11223344",
}


def test_taobao_md5_signature_matches_the_documented_worked_example():
    assert top_sign(TAOBAO_DOC_PARAMS, "helloworld") == "66987CB115214E59E6EC978214934FB8"


def test_the_sign_parameter_itself_is_never_signed():
    assert top_sign({**TAOBAO_DOC_PARAMS, "sign": "anything"}, "helloworld") == "66987CB115214E59E6EC978214934FB8"


def test_top_hmac_is_hmac_md5_over_the_concatenation_rfc2202_case_1():
    # RFC 2202 test case 1: key 0x0b * 16, data "Hi There"; "Hi" + " There" is the concatenation.
    assert top_sign({"Hi": " There"}, "\x0b" * 16, "hmac") == "9294727A3638BB1C13F48EF8158BFC9D"


def test_top_hmac_sha256_is_hmac_sha256_over_the_concatenation_rfc4231_case_2():
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    assert top_sign({"what do ya want ": "for nothing?"}, "Jefe", "hmac-sha256") == (
        "5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843"
    )


def test_an_unknown_sign_method_is_an_error_not_a_silent_md5():
    with pytest.raises(ValueError, match="sign_method"):
        top_sign(TAOBAO_DOC_PARAMS, "s", "sha1")


def test_douyin_v2_signature_is_hmac_sha256_of_the_secret_wrapped_string():
    param_json = compact_json({"size": 100, "page": 0, "order_by": "update_time"})
    assert param_json == '{"order_by":"update_time","page":0,"size":100}'
    text = ("s3cr3tapp_key7000method" "order.searchList" "param_json" + param_json
            + "timestamp1700000000v2s3cr3t")
    expected = hmac.new(b"s3cr3t", text.encode(), hashlib.sha256).hexdigest()
    assert douyin_sign(app_key="7000", secret="s3cr3t", method="order.searchList", param_json=param_json,
                       timestamp="1700000000") == expected


def test_kuaishou_signatures_md5_hex_and_hmac_sha256_base64():
    params = {"method": "open.order.cursor.list", "appkey": "ks1", "version": "1", "param": '{"cursor":""}',
              "access_token": "tok", "timestamp": "1700000000000", "signMethod": "MD5"}
    text = ('access_token=tok&appkey=ks1&method=open.order.cursor.list&param={"cursor":""}&signMethod=MD5'
            "&timestamp=1700000000000&version=1&signSecret=sec")
    assert kuaishou_sign(params, "sec", "MD5") == hashlib.md5(text.encode()).hexdigest()
    hmac_params = {**params, "signMethod": "HMAC_SHA256"}
    hmac_text = text.replace("signMethod=MD5", "signMethod=HMAC_SHA256")
    assert kuaishou_sign(hmac_params, "sec") == base64.b64encode(
        hmac.new(b"sec", hmac_text.encode(), hashlib.sha256).digest()).decode()


def test_iop_signature_prefixes_the_api_path_only_for_rest_style_names():
    params = {"app_key": "1", "method": "aliexpress.solution.order.get", "timestamp": "1700000000000"}
    concat = "app_key1methodaliexpress.solution.order.gettimestamp1700000000000"
    assert iop_sign("aliexpress.solution.order.get", params, "k") == hmac.new(
        b"k", concat.encode(), hashlib.sha256).hexdigest().upper()
    assert iop_sign("/auth/token/create", params, "k") == hmac.new(
        b"k", ("/auth/token/create" + concat).encode(), hashlib.sha256).hexdigest().upper()


def test_signatures_match_is_exact():
    assert signatures_match("ABC", "ABC")
    assert not signatures_match("ABC", "abd")
    assert not signatures_match("ABC", None)

"""The Aliyun SMS simulator over real HTTP, called through Aliyun's official SDK (signature V3): what it
delivers and where a test reads it, and the gateway's and SendSms's refusals. One test signs a request
by hand (an independent ACS3-HMAC-SHA256 signer, written from Aliyun's V3 documentation) to tamper with
it and replay it."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

import pytest
import requests
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_dysmsapi20170525.models import SendSmsRequest
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils_models import Config
from omsdev.simulators import aliyun_sms
from omsdev.simulators.sources_common import ManualWallClock


@pytest.fixture
def clock() -> ManualWallClock:
    return ManualWallClock()


@pytest.fixture
def simulator(clock):
    sim, _credentials = aliyun_sms.launch(clock=clock)
    yield sim
    sim.stop()


def sdk_client(sim, *, key_id: str | None = None, key_secret: str | None = None) -> Client:
    credentials = sim.credentials()
    return Client(Config(access_key_id=key_id or credentials["access_key_id"],
                         access_key_secret=key_secret or credentials["access_key_secret"],
                         endpoint=sim.url.removeprefix("http://"), protocol="http"))


def a_phone() -> str:
    """A mainland mobile number no other test uses."""
    return "139" + str(uuid.uuid4().int)[:8]


def send(sim, phone: str, code: str = "482916", **client_kwargs):
    request = SendSmsRequest(phone_numbers=phone, sign_name=aliyun_sms.DEFAULT_SIGN_NAME,
                             template_code=aliyun_sms.DEFAULT_TEMPLATE_CODE, template_param=json.dumps({"code": code}))
    return sdk_client(sim, **client_kwargs).send_sms(request)


def test_a_signed_send_sms_is_delivered_and_readable_from_python_and_http(simulator):
    # GIVEN a mainland number, written the international way
    phone = a_phone()
    # WHEN the official SDK sends a code to it
    response = send(simulator, "+86" + phone, code="730215")
    # THEN Aliyun's success envelope comes back, with the request id also in the header
    assert response.status_code == 200
    assert response.body.code == "OK" and response.body.message == "OK"
    assert response.body.biz_id and response.body.request_id
    assert response.headers["x-acs-request-id"] == response.body.request_id
    # AND the message is recorded under the national number, with sign name, template and code
    [delivered] = simulator.messages(phone)
    assert (delivered.phone_as_sent, delivered.sign_name, delivered.template_code) == (
        "+86" + phone, aliyun_sms.DEFAULT_SIGN_NAME, aliyun_sms.DEFAULT_TEMPLATE_CODE)
    assert delivered.template_params == {"code": "730215"} and delivered.biz_id == response.body.biz_id
    assert simulator.latest_code("0086" + phone) == "730215"
    # AND GET /_sim/messages shows the same message to that phone only
    listed = requests.get(f"{simulator.url}/_sim/messages", params={"phone": phone}, timeout=5).json()["messages"]
    assert [(m["phone"], m["template_params"]["code"], m["biz_id"]) for m in listed] == [
        (phone, "730215", response.body.biz_id)]
    assert requests.get(f"{simulator.url}/_sim/messages", params={"phone": a_phone()}, timeout=5).json() == {
        "messages": []}


def test_a_wrong_secret_is_signature_does_not_match_and_nothing_is_sent(simulator):
    # GIVEN the right AccessKeyId with a wrong secret
    phone = a_phone()
    # WHEN the SDK sends
    with pytest.raises(ClientException) as refused:
        send(simulator, phone, key_secret="not-the-secret")
    # THEN the gateway answers 400 SignatureDoesNotMatch, quoting its string to sign
    assert refused.value.status_code == 400 and refused.value.code == "SignatureDoesNotMatch"
    assert "server string to sign is:ACS3-HMAC-SHA256\n" in refused.value.data["Message"]
    assert simulator.messages(phone) == []
    assert simulator.stats.by_operation()["SendSms"]["auth_failed"] == 1


def test_an_unknown_access_key_id_is_invalid_access_key_id_not_found(simulator):
    # GIVEN an AccessKeyId the account does not have
    phone = a_phone()
    # WHEN the SDK sends with it
    with pytest.raises(ClientException) as refused:
        send(simulator, phone, key_id="LTAI" + secrets.token_hex(10))
    # THEN 404 InvalidAccessKeyId.NotFound, and nothing is delivered
    assert refused.value.status_code == 404 and refused.value.code == "InvalidAccessKeyId.NotFound"
    assert refused.value.data["Message"] == "Specified access key is not found."
    assert simulator.messages(phone) == []


@pytest.mark.parametrize("phone", ["1381234567", "12012345678", "1381234567a", "+86 13812345678", "13812345678,12"])
def test_an_illegal_phone_number_is_mobile_number_illegal(simulator, phone):
    # GIVEN a number that is no mobile number (too short, no such prefix, a letter, a space, one bad of two)
    # WHEN the SDK sends to it
    response = send(simulator, phone)
    # THEN SendSms refuses it in its business envelope: HTTP 200, Code isv.MOBILE_NUMBER_ILLEGAL, no BizId
    assert response.status_code == 200 and response.body.code == "isv.MOBILE_NUMBER_ILLEGAL"
    assert response.body.biz_id is None
    assert simulator.messages() == []


def test_the_per_phone_flow_control_allows_one_a_minute_five_an_hour(simulator, clock):
    # GIVEN one code sent to a phone
    phone, other = a_phone(), a_phone()
    assert send(simulator, phone, code="111111").body.code == "OK"
    # WHEN a second follows within the minute
    second = send(simulator, phone, code="222222")
    # THEN it is refused with Aliyun's minute-level flow control, while another phone still gets its code
    assert second.body.code == "isv.BUSINESS_LIMIT_CONTROL"
    assert second.body.message == "触发分钟级流控Permits:1"
    assert send(simulator, other).body.code == "OK"
    # AND a minute later the phone may receive again, up to five an hour
    for code in ("333333", "444444", "555555", "666666"):
        clock.advance(61)
        assert send(simulator, phone, code=code).body.code == "OK"
    clock.advance(61)
    sixth = send(simulator, phone, code="777777")
    assert (sixth.body.code, sixth.body.message) == ("isv.BUSINESS_LIMIT_CONTROL", "触发小时级流控Permits:5")
    assert [sms.template_params["code"] for sms in simulator.messages(phone)] == [
        "111111", "333333", "444444", "555555", "666666"]
    assert simulator.latest_code(phone) == "666666"


def test_template_param_must_be_json_of_strings_with_the_template_variables(simulator):
    # GIVEN TemplateParam with a number instead of a string, and one without the template's variable
    phone = a_phone()
    client = sdk_client(simulator)

    def send_with(param: str) -> str:
        return client.send_sms(SendSmsRequest(phone_numbers=phone, sign_name=aliyun_sms.DEFAULT_SIGN_NAME,
                                              template_code=aliyun_sms.DEFAULT_TEMPLATE_CODE,
                                              template_param=param)).body.code

    # WHEN each is sent, THEN SendSms names what is wrong and nothing goes out
    assert send_with('{"code": 123456}') == "isv.INVALID_JSON_PARAM"
    assert send_with('{"name": "x"}') == "isv.TEMPLATE_MISSING_PARAMETERS"
    assert simulator.messages(phone) == []


# A hand-made V3 signature: tampering and replay -------------------------------------------------------


def hand_signed(sim, phone: str) -> tuple[str, dict]:
    """(query string, headers) of a SendSms signed the way Aliyun's V3 documentation describes."""
    credentials = sim.credentials()
    query = {"PhoneNumbers": phone, "SignName": aliyun_sms.DEFAULT_SIGN_NAME,
             "TemplateCode": aliyun_sms.DEFAULT_TEMPLATE_CODE, "TemplateParam": json.dumps({"code": "909090"})}
    headers = {"host": sim.url.removeprefix("http://"), "x-acs-action": "SendSms", "x-acs-version": "2017-05-25",
               "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "x-acs-signature-nonce": uuid.uuid4().hex, "x-acs-content-sha256": hashlib.sha256(b"").hexdigest()}
    encoded = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(query.items()))
    names = sorted(headers)
    canonical = "\n".join(["POST", "/", encoded, "".join(f"{n}:{headers[n].strip()}\n" for n in names),
                           ";".join(names), hashlib.sha256(b"").hexdigest()])
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    mac = hmac.new(credentials["access_key_secret"].encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (f"ACS3-HMAC-SHA256 Credential={credentials['access_key_id']},"
                                f"SignedHeaders={';'.join(names)},Signature={mac}")
    return urlencode(query), headers


def test_a_changed_parameter_fails_the_signature_and_a_replay_is_refused(simulator):
    # GIVEN a correctly signed request, sent once
    phone = a_phone()
    query, headers = hand_signed(simulator, phone)
    first = requests.post(f"{simulator.url}/?{query}", headers=headers, timeout=5)
    assert first.status_code == 200 and first.json()["Code"] == "OK"
    # WHEN the same headers come again with another phone number in the query
    tampered = requests.post(f"{simulator.url}/?{query.replace(phone, a_phone())}", headers=headers, timeout=5)
    # THEN the signature no longer matches
    assert (tampered.status_code, tampered.json()["Code"]) == (400, "SignatureDoesNotMatch")
    # AND the untouched request replayed is refused for its used nonce
    replay = requests.post(f"{simulator.url}/?{query}", headers=headers, timeout=5)
    assert (replay.status_code, replay.json()["Code"]) == (400, "SignatureNonceUsed")
    assert len(simulator.messages(phone)) == 1

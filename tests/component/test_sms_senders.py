"""The SMS senders against real endpoints: `AliyunSmsSender` reads its account from Secrets Manager on the
session's moto server and calls the Aliyun SMS simulator over HTTP; `SnsSmsSender` publishes to moto's
SNS, whose recorded SMS we read back over the endpoint (`/moto-api/data.json`). Plus the route chooser."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from oms.adapters import aws
from oms.adapters.sms import (
    AliyunSmsSender,
    SmsRejectedError,
    SmsSent,
    SmsTransientError,
    SnsSmsSender,
    sms_route,
    sms_sender,
)
from omsdev.localcloud.cloud import LocalCloud
from omsdev.simulators import aliyun_sms
from omsdev.simulators.base import FaultPlan


@pytest.fixture(scope="module")
def local_cloud(moto_endpoint):
    """The template's stack on the session's moto server: its settings (OMS_AWS_ENDPOINT_URL ...) in the
    environment, as a function's container has them."""
    cloud = LocalCloud(endpoint=moto_endpoint, stack_name=f"t{uuid.uuid4().hex[:10]}", start_event_sources=False)
    cloud.start()
    yield cloud
    cloud.stop()


@pytest.fixture
def secrets_prefix(local_cloud):
    """A prefix of this test's own: the secrets helper caches a secret by name for minutes."""
    return f"t{uuid.uuid4().hex[:10]}"


def store_aliyun_secret(prefix: str, value: dict) -> None:
    aws.client("secretsmanager").create_secret(Name=f"{prefix}/sms/aliyun", SecretString=json.dumps(value))


@pytest.fixture
def aliyun(secrets_prefix):
    """(simulator, sender) with the simulator's account stored in Secrets Manager."""
    simulator, credentials = aliyun_sms.launch()
    store_aliyun_secret(secrets_prefix, credentials)
    yield simulator, AliyunSmsSender(secrets_prefix)
    simulator.stop()


def a_phone() -> str:
    return "138" + str(uuid.uuid4().int)[:8]


# Aliyun --------------------------------------------------------------------------------------------


def test_aliyun_sender_delivers_the_code_through_the_template(aliyun):
    # GIVEN the Aliyun account in Secrets Manager and a buyer's number
    simulator, sender = aliyun
    phone = a_phone()
    # WHEN a code is sent
    sent = sender.send_code("+86" + phone, "604182")
    # THEN Aliyun's BizId comes back as the message id
    [delivered] = simulator.messages(phone)
    assert sent == SmsSent("aliyun", delivered.biz_id, delivered.request_id, "+86" + phone)
    # AND the buyer got the code as the template's `code`, under the account's sign name and template
    assert delivered.template_params == {"code": "604182"}
    assert (delivered.sign_name, delivered.template_code) == (aliyun_sms.DEFAULT_SIGN_NAME,
                                                              aliyun_sms.DEFAULT_TEMPLATE_CODE)
    listed = requests.get(f"{simulator.url}/_sim/messages", params={"phone": phone}, timeout=5).json()["messages"]
    assert [message["template_params"]["code"] for message in listed] == ["604182"]
    # AND the phone number stays out of the receipt's repr (it ends up in logs)
    assert phone not in repr(sent) and sent.masked_to.endswith(phone[-4:])


def test_aliyun_refusals_are_not_retryable_and_name_aliyuns_code(aliyun):
    # GIVEN a code just sent to a phone
    simulator, sender = aliyun
    phone = a_phone()
    sender.send_code(phone, "111111")
    # WHEN another goes to the same phone within the minute, and one to an illegal number
    with pytest.raises(SmsRejectedError) as limited:
        sender.send_code(phone, "222222")
    with pytest.raises(SmsRejectedError) as illegal:
        sender.send_code("1381234", "333333")
    # THEN each is a refusal a retry cannot fix, naming Aliyun's code and message, the phone masked
    assert (limited.value.code, limited.value.retryable) == ("isv.BUSINESS_LIMIT_CONTROL", False)
    assert "isv.BUSINESS_LIMIT_CONTROL: 触发分钟级流控Permits:1" in str(limited.value)
    assert phone not in str(limited.value) and phone[-4:] in str(limited.value)
    assert (illegal.value.code, illegal.value.provider) == ("isv.MOBILE_NUMBER_ILLEGAL", "aliyun")
    assert illegal.value.request_id
    assert simulator.latest_code(phone) == "111111"


def test_a_wrong_secret_in_secrets_manager_is_a_rejected_signature(secrets_prefix):
    # GIVEN a secret whose AccessKey secret is not the account's
    simulator, credentials = aliyun_sms.launch()
    try:
        store_aliyun_secret(secrets_prefix, {**credentials, "access_key_secret": "rotated-away"})
        # WHEN a code is sent
        with pytest.raises(SmsRejectedError) as refused:
            AliyunSmsSender(secrets_prefix).send_code(a_phone(), "123456")
        # THEN Aliyun's signature refusal surfaces, not worth retrying with the same secret
        assert refused.value.code == "SignatureDoesNotMatch" and not refused.value.retryable
        assert simulator.messages() == []
    finally:
        simulator.stop()


@pytest.mark.parametrize(("fault", "code"), [("5xx", "ServiceUnavailable"), ("429", "Throttling.User")])
def test_aliyun_throttling_and_5xx_are_transient(secrets_prefix, fault, code):
    # GIVEN an Aliyun that answers every call with a server error or its flow control
    simulator, credentials = aliyun_sms.launch(faults=FaultPlan(rate=1.0, kinds=(fault,)))
    try:
        store_aliyun_secret(secrets_prefix, credentials)
        # WHEN a code is sent
        with pytest.raises(SmsTransientError) as failed:
            AliyunSmsSender(secrets_prefix).send_code(a_phone(), "123456")
        # THEN the error says retry later, with Aliyun's code
        assert failed.value.retryable and failed.value.code == code
    finally:
        simulator.stop()


def test_no_answer_from_aliyun_is_transient(secrets_prefix):
    # GIVEN the account's endpoint, where nothing listens any more
    simulator, credentials = aliyun_sms.launch()
    simulator.stop()
    store_aliyun_secret(secrets_prefix, credentials)
    # WHEN a code is sent, THEN it is a transient failure
    with pytest.raises(SmsTransientError) as failed:
        AliyunSmsSender(secrets_prefix).send_code(a_phone(), "123456")
    assert failed.value.code == "NoAnswer"


def test_plain_http_to_anything_but_loopback_is_a_configuration_error(secrets_prefix):
    # GIVEN a secret that would send the AccessKey over plain HTTP to another host
    store_aliyun_secret(secrets_prefix, {"access_key_id": "LTAIabc", "access_key_secret": "s", "sign_name": "OMS",
                                         "template_code": "SMS_1", "endpoint": "http://dysmsapi.aliyuncs.com"})
    # WHEN a code is sent, THEN nothing is called and the configuration is refused
    with pytest.raises(SmsRejectedError) as refused:
        AliyunSmsSender(secrets_prefix).send_code(a_phone(), "123456")
    assert refused.value.code == "InvalidConfiguration" and "plain http" in str(refused.value)


# Amazon SNS ----------------------------------------------------------------------------------------


def sms_recorded_by_moto(endpoint: str) -> list[dict]:
    """The SMS moto's SNS accepted: `message_id`, `phone_number`, `message`."""
    return requests.get(f"{endpoint}/moto-api/data.json", timeout=10).json()["sns"]["SMS"]


def test_sns_sender_publishes_a_transactional_sms_with_the_code(local_cloud):
    # GIVEN an international buyer's E.164 number
    phone = "+1415" + str(uuid.uuid4().int)[:7]
    # WHEN a code is sent through SNS
    sent = SnsSmsSender(code_valid_minutes=10).send_code(phone, "550761")
    # THEN SNS accepted it, and moto recorded the SMS to that number with the code and its validity
    assert sent.provider == "sns" and sent.to == phone and sent.request_id
    [recorded] = [sms for sms in sms_recorded_by_moto(local_cloud.endpoint) if sms["message_id"] == sent.message_id]
    assert recorded["phone_number"] == phone
    assert "550761" in recorded["message"] and "10 minutes" in recorded["message"]


def test_sns_refuses_a_number_that_is_not_e164(local_cloud):
    # GIVEN a number SNS cannot address
    # WHEN a code is sent to it, THEN SNS's InvalidParameter is a refusal, not worth retrying
    with pytest.raises(SmsRejectedError) as refused:
        SnsSmsSender(code_valid_minutes=10).send_code("call-me-maybe", "123456")
    assert (refused.value.provider, refused.value.code, refused.value.retryable) == ("sns", "InvalidParameter", False)


# The route -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("channel", "route"), [
    ("taobao", "aliyun"), ("jd", "aliyun"), ("pdd", "aliyun"), ("douyin", "aliyun"), ("kuaishou", "aliyun"),
    ("amazon", "sns"), ("aliexpress", "sns"), ("shopify", "sns"),
])
def test_chinese_channels_use_aliyun_and_the_others_sns(channel, route):
    # GIVEN a channel, WHEN its SMS route is chosen, THEN it is the provider its buyers can be reached by
    assert sms_route(channel) == route
    sender = sms_sender(route, secrets_prefix="oms", code_valid_minutes=10)
    assert sender.provider == route


def test_an_unknown_channel_has_no_route():
    # GIVEN a channel we do not serve, WHEN its route is asked for, THEN it is an error, not a silent default
    with pytest.raises(ValueError, match="no SMS route for channel 'ebay'"):
        sms_route("ebay")


def test_aliyun_sender_without_an_account_refuses_for_good_rather_than_retrying(secrets_prefix):
    # GIVEN no `<prefix>/sms/aliyun` secret was ever stored
    sender = AliyunSmsSender(secrets_prefix)
    # WHEN a code is sent THEN it is a permanent refusal naming the missing configuration
    with pytest.raises(SmsRejectedError, match="InvalidConfiguration") as error:
        sender.send_code(a_phone(), "123456")
    assert error.value.retryable is False

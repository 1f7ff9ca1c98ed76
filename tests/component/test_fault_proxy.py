"""The fault-injecting proxy in front of the moto server (issue 8, the AWS boundary), over real HTTP.

boto3 clients talk to the proxy on a loopback port; the proxy forwards to the session's moto server
or answers with a fault shaped as AWS sends it. What botocore does with each fault (parse it, retry
it, give up after its attempts) is what these tests pin down, with the functions' own client
settings (`oms.adapters.aws`). Fixtures and assertions read the moto server directly.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from oms.adapters import aws
from oms.adapters.kpi_counters_table import KpiCountersTable
from oms.adapters.orders_table import OrdersTable
from oms.domain.kpis import merge
from oms.domain.order import OrderStatus
from oms.ports import SaveResult
from oms.settings import get_settings
from omsdev.localcloud.cloud import DEFAULT_TEMPLATE
from omsdev.localcloud.fault_proxy import FaultProxy, FaultRule, FaultRules, identify

from tests.integration.allocation_helpers import drain_queue, paid_order, store, stored_images, stream_record
from tests.integration.risk_helpers import paid_records, risk_of, risk_order

# The functions' client settings: standard retries, max_attempts=5 retries, i.e. 6 attempts in all.
FUNCTIONS_CONFIG = aws._CONFIG
FUNCTIONS_ATTEMPTS = 6
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})
ONE_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 2})
DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


def client(service: str, endpoint: str, config: Config = FUNCTIONS_CONFIG):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", config=config)


@pytest.fixture
def proxy(moto_endpoint):
    with FaultProxy(moto_endpoint, FaultRules(seed=8)) as running:
        yield running


@pytest.fixture
def table(moto_endpoint):
    name = f"faults-{uuid.uuid4().hex[:10]}"
    direct = client("dynamodb", moto_endpoint)
    direct.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")
    yield name
    direct.delete_table(TableName=name)


def put_once(dynamodb, table: str, key: str, **extra) -> dict:
    return dynamodb.put_item(TableName=table, Item={"pk": {"S": key}, "v": {"S": "x"}, **extra},
                             ConditionExpression="attribute_not_exists(pk)")


def item_count(moto_endpoint: str, table: str) -> int:
    return client("dynamodb", moto_endpoint).scan(TableName=table, Select="COUNT", ConsistentRead=True)["Count"]


# -- forwarding ----------------------------------------------------------------------------------

def test_without_rules_every_service_answers_through_the_proxy_as_it_does_directly(proxy, moto_endpoint, table):
    # GIVEN the proxy with no rules, and the same services reached directly
    def both(service):
        return client(service, proxy.url), client(service, moto_endpoint)

    dynamodb, dynamodb_direct = both("dynamodb")
    sqs, sqs_direct = both("sqs")
    s3, s3_direct = both("s3")
    # WHEN DynamoDB, SQS, S3 (a 2 MB body: Expect 100-continue), SNS, STS, Secrets Manager and SSM are used
    put_once(dynamodb, table, "a")
    with pytest.raises(ClientError) as through:
        put_once(dynamodb, table, "a")
    with pytest.raises(ClientError) as direct:
        put_once(dynamodb_direct, table, "a")
    queue = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sent = sqs.send_message(QueueUrl=queue, MessageBody="héllo")
    received = sqs_direct.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    bucket, body = f"b-{uuid.uuid4().hex[:10]}", bytes(range(256)) * 8192
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="raw/a.bin", Body=body)
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=bucket, Key="raw/none")
    topic = client("sns", proxy.url).create_topic(Name=f"t-{uuid.uuid4().hex[:8]}")["TopicArn"]
    published = client("sns", proxy.url).publish(TopicArn=topic, Message="m")
    secret = f"s-{uuid.uuid4().hex[:8]}"
    client("secretsmanager", proxy.url).create_secret(Name=secret, SecretString="v1")
    parameter = f"/faults/{uuid.uuid4().hex[:8]}"
    client("ssm", proxy.url).put_parameter(Name=parameter, Value="p1", Type="String")
    # THEN every answer is the endpoint's own, errors included
    key = {"pk": {"S": "a"}}
    assert dynamodb.get_item(TableName=table, Key=key)["Item"] == dynamodb_direct.get_item(TableName=table, Key=key)["Item"]
    assert through.value.response["Error"] == direct.value.response["Error"]
    assert through.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert [(m["MessageId"], m["Body"]) for m in received] == [(sent["MessageId"], "héllo")]
    assert s3_direct.get_object(Bucket=bucket, Key="raw/a.bin")["Body"].read() == body
    assert s3.get_object(Bucket=bucket, Key="raw/a.bin")["Body"].read() == body
    assert s3.head_object(Bucket=bucket, Key="raw/a.bin")["ContentLength"] == len(body)
    assert (missing.value.response["Error"]["Code"], missing.value.response["ResponseMetadata"]["HTTPStatusCode"]) \
        == ("NoSuchKey", 404)
    assert published["MessageId"]
    assert client("sts", proxy.url).get_caller_identity()["Account"] == \
        client("sts", moto_endpoint).get_caller_identity()["Account"]
    assert client("secretsmanager", moto_endpoint).get_secret_value(SecretId=secret)["SecretString"] == "v1"
    assert client("ssm", proxy.url).get_parameter(Name=parameter)["Parameter"]["Value"] == "p1"
    # AND each call was placed in its service and operation, and nothing was injected
    calls = proxy.rules.snapshot()["calls"]
    for name in ("dynamodb:PutItem", "dynamodb:GetItem", "sqs:CreateQueue", "sqs:SendMessage", "s3:CreateBucket",
                 "s3:PutObject", "s3:GetObject", "s3:HeadObject", "sns:CreateTopic", "sns:Publish",
                 "sts:GetCallerIdentity", "secretsmanager:CreateSecret", "ssm:PutParameter", "ssm:GetParameter"):
        assert calls.get(name), name
    assert calls["dynamodb:PutItem"] == 2 and proxy.rules.injected() == 0


def test_identify_names_services_and_operations_as_botocore_does():
    # GIVEN requests as botocore signs them
    def auth(service):
        return {"Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, "
                                 "SignedHeaders=host, Signature=0"}

    # WHEN each is identified / THEN service and operation are botocore's names
    assert identify("POST", "/", {**auth("dynamodb"), "X-Amz-Target": "DynamoDB_20120810.PutItem"}, b"{}") \
        == ("dynamodb", "PutItem")
    assert identify("POST", "/", {**auth("dynamodb"), "X-Amz-Target": "DynamoDBStreams_20120810.GetRecords"}, b"") \
        == ("dynamodbstreams", "GetRecords")
    assert identify("POST", "/", {**auth("sqs"), "X-Amz-Target": "AmazonSQS.SendMessage"}, b"") == ("sqs", "SendMessage")
    form = {**auth("sns"), "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    assert identify("POST", "/", form, b"Action=Publish&Version=2010-03-31") == ("sns", "Publish")
    assert identify("PUT", "/bucket/raw/a.json", auth("s3"), b"{}") == ("s3", "PutObject")
    assert identify("GET", "/bucket?list-type=2&prefix=raw", auth("s3"), b"") == ("s3", "ListObjectsV2")
    assert identify("POST", "/bucket?delete", auth("s3"), b"") == ("s3", "DeleteObjects")
    assert identify("POST", "/service/GraniteServiceVersion20100801/operation/PutMetricData", auth("monitoring"),
                    b"") == ("cloudwatch", "PutMetricData")
    assert identify("GET", "/moto-api/data.json", {}, b"")[0] == "moto-api"


# -- faults and botocore ---------------------------------------------------------------------------

def test_dynamodb_put_throttled_on_every_call_raises_throttling_after_the_clients_attempts(proxy, moto_endpoint, table):
    # GIVEN every DynamoDB PutItem throttled
    proxy.rules.set(FaultRule("dynamodb", "PutItem", rate=1.0, kinds=("throttle",)))
    three_attempts = Config(retries={"mode": "standard", "total_max_attempts": 3})  # 1 s backoff base: keep it short
    # WHEN a conditional put is made
    with pytest.raises(ClientError) as raised:
        put_once(client("dynamodb", proxy.url, three_attempts), table, "k")
    # THEN botocore raised ThrottlingException after its three attempts, all of them seen by the proxy
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert proxy.rules.calls("dynamodb", "PutItem") == proxy.rules.injected("dynamodb", "PutItem", "throttle") == 3
    assert item_count(moto_endpoint, table) == 0
    # AND with the functions' settings (max_attempts=5 means 5 retries) a failing call is tried 6 times
    proxy.rules.set(FaultRule("dynamodb", "PutItem", rate=1.0, kinds=("500",)))  # 25 ms backoff base
    proxy.rules.reset_counters()
    with pytest.raises(ClientError) as failed:
        put_once(client("dynamodb", proxy.url), table, "k")
    assert failed.value.response["Error"]["Code"] == "InternalServerError"
    assert failed.value.response["ResponseMetadata"]["RetryAttempts"] == FUNCTIONS_ATTEMPTS - 1
    assert proxy.rules.injected("dynamodb", "PutItem", "500") == FUNCTIONS_ATTEMPTS


def test_standard_retries_absorb_30_percent_throttling_and_each_conditional_put_lands_once(proxy, moto_endpoint, table):
    # GIVEN 30% of PutItem calls throttled, and the functions' client
    proxy.rules.set(FaultRule("dynamodb", "PutItem", rate=0.3, kinds=("throttle", "throughput")))
    dynamodb = client("dynamodb", proxy.url)
    surfaced = []

    def put(index: int) -> str:
        for _ in range(3):  # a call that still fails after botocore's attempts is redelivered, as Lambda would
            try:
                put_once(dynamodb, table, f"order-{index}")
                return "created"
            except ClientError as error:
                code = error.response["Error"]["Code"]
                if code == "ConditionalCheckFailedException":
                    return "already there"
                surfaced.append(code)
        return "failed"

    # WHEN 200 conditional puts run, 16 at a time
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(put, range(200)))
    # THEN each put created its item exactly once: a throttled call never reached the table
    assert outcomes == ["created"] * 200
    assert item_count(moto_endpoint, table) == 200
    # AND about 30% of the calls were throttled, and botocore's retries absorbed (nearly) all of them
    calls, injected = proxy.rules.calls("dynamodb", "PutItem"), proxy.rules.injected("dynamodb", "PutItem")
    assert calls == 200 + injected
    assert 0.2 < injected / calls < 0.4, (injected, calls)
    assert len(surfaced) <= 3 and set(surfaced) <= {"ThrottlingException", "ProvisionedThroughputExceededException"}


def test_a_rule_for_one_operation_faults_that_operation_only(proxy, table):
    # GIVEN UpdateItem failing with 500s, GetItem excluded from a rule on all of DynamoDB
    proxy.rules.set(FaultRule("dynamodb", "UpdateItem", rate=1.0, kinds=("500",)),
                    FaultRule("dynamodb", "*", rate=1.0, kinds=("500",), exclude=("GetItem", "PutItem")))
    dynamodb = client("dynamodb", proxy.url)
    # WHEN items are put, read and updated
    puts = [put_once(dynamodb, table, f"k{i}") for i in range(3)]
    gets = [dynamodb.get_item(TableName=table, Key={"pk": {"S": f"k{i}"}}) for i in range(3)]
    with pytest.raises(ClientError) as update:
        dynamodb.update_item(TableName=table, Key={"pk": {"S": "k0"}}, UpdateExpression="SET v = :v",
                             ExpressionAttributeValues={":v": {"S": "y"}})
    # THEN puts and gets went through on their first attempt, the update failed after every attempt
    assert [r["ResponseMetadata"]["RetryAttempts"] for r in puts + gets] == [0] * 6
    assert [g["Item"]["v"]["S"] for g in gets] == ["x"] * 3
    assert update.value.response["Error"]["Code"] == "InternalServerError"
    report = {(row["service"], row["operation"]): row for row in proxy.rules.report()}
    assert report[("dynamodb", "UpdateItem")]["500"] == report[("dynamodb", "UpdateItem")]["calls"] == FUNCTIONS_ATTEMPTS
    assert report[("dynamodb", "PutItem")]["faults"] == report[("dynamodb", "GetItem")]["faults"] == 0
    assert proxy.rules.injected() == FUNCTIONS_ATTEMPTS


def test_a_write_whose_answer_is_lost_comes_back_as_conditional_check_failed(proxy, moto_endpoint, table):
    """Why our conditional writes take ConditionalCheckFailed on a retry as "already done": the write
    happened, its answer was lost on the way back, botocore retried it, and the retry found it."""
    # GIVEN the answer of the next PutItem lost after the write ("drop_after")
    proxy.rules.set(FaultRule("dynamodb", "PutItem", rate=1.0, kinds=("drop_after",), budget=1))
    dynamodb = client("dynamodb", proxy.url)
    # WHEN a conditional put is made
    with pytest.raises(ClientError) as raised:
        put_once(dynamodb, table, "lost-answer", **{"writer": {"S": "me"}})
    # THEN botocore retried the closed connection and got ConditionalCheckFailed ...
    assert raised.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 1
    # ... although the item is there once, written by this very call
    assert item_count(moto_endpoint, table) == 1
    stored = client("dynamodb", moto_endpoint).get_item(TableName=table, Key={"pk": {"S": "lost-answer"}})["Item"]
    assert stored["writer"] == {"S": "me"}
    assert (proxy.rules.calls("dynamodb", "PutItem"), proxy.rules.injected(kind="drop_after")) == (2, 1)
    # AND the repo's helper reads it as "the condition did not hold"
    proxy.rules.set(FaultRule("dynamodb", "PutItem", rate=1.0, kinds=("drop_after",), budget=1))
    assert aws.conditional(dynamodb.put_item, TableName=table, Item={"pk": {"S": "lost-2"}},
                           ConditionExpression="attribute_not_exists(pk)") is None
    assert item_count(moto_endpoint, table) == 2
    # AND a connection dropped before forwarding ("drop") never reached the table: the retry writes it
    proxy.rules.set(FaultRule("dynamodb", "PutItem", rate=1.0, kinds=("drop",), budget=1))
    assert put_once(dynamodb, table, "dropped")["ResponseMetadata"]["RetryAttempts"] == 1
    assert item_count(moto_endpoint, table) == 3 and proxy.rules.injected(kind="drop") == 1


@pytest.mark.parametrize("kind", ["500", "throttle", "drop"])
def test_sqs_send_message_faults_are_retried_and_the_message_is_sent_once(proxy, moto_endpoint, kind):
    # GIVEN a queue, and the next two SendMessage calls failing
    queue = client("sqs", moto_endpoint).create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    proxy.rules.set(FaultRule("sqs", "SendMessage", rate=1.0, kinds=(kind,), budget=2))
    # WHEN a message is sent through the proxy
    sent = client("sqs", proxy.url).send_message(QueueUrl=queue, MessageBody="once")
    # THEN it was sent on the third attempt, and the queue holds it once
    assert sent["ResponseMetadata"]["RetryAttempts"] == 2
    assert proxy.rules.injected("sqs", "SendMessage", kind) == 2
    messages = client("sqs", moto_endpoint).receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                                            WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in messages] == ["once"]


CALLS = {
    "dynamodb": lambda c, names: c.get_item(TableName=names["table"], Key={"pk": {"S": "none"}}),
    "sqs": lambda c, names: c.send_message(QueueUrl=names["queue"], MessageBody="m"),
    "s3": lambda c, names: c.put_object(Bucket=names["bucket"], Key="k", Body=b"b"),
    "sns": lambda c, names: c.publish(TopicArn=names["topic"], Message="m"),
    "sts": lambda c, names: c.get_caller_identity(),
    "secretsmanager": lambda c, names: c.get_secret_value(SecretId=names["secret"]),
    "ssm": lambda c, names: c.get_parameter(Name=names["parameter"]),
}
# (service, kind) -> (the error code botocore parses, HTTP status): as the services answer.
SHAPES = {
    ("dynamodb", "throttle"): ("ThrottlingException", 400),
    ("dynamodb", "throughput"): ("ProvisionedThroughputExceededException", 400),
    ("dynamodb", "500"): ("InternalServerError", 500),
    ("sqs", "throttle"): ("RequestThrottled", 400),
    ("sqs", "500"): ("InternalFailure", 500),
    ("s3", "throttle"): ("SlowDown", 503),
    ("s3", "500"): ("InternalError", 500),
    ("sns", "throttle"): ("Throttling", 400),
    ("sns", "500"): ("InternalError", 500),
    ("sts", "throttle"): ("Throttling", 400),
    ("secretsmanager", "throttle"): ("ThrottlingException", 400),
    ("secretsmanager", "500"): ("InternalServiceError", 500),
    ("ssm", "throttle"): ("ThrottlingException", 400),
    ("ssm", "500"): ("InternalServerError", 500),
}


@pytest.fixture
def resources(moto_endpoint, table):
    suffix = uuid.uuid4().hex[:8]
    names = {"table": table, "bucket": f"b-{suffix}", "secret": f"s-{suffix}", "parameter": f"/p/{suffix}"}
    names["queue"] = client("sqs", moto_endpoint).create_queue(QueueName=f"q-{suffix}")["QueueUrl"]
    names["topic"] = client("sns", moto_endpoint).create_topic(Name=f"t-{suffix}")["TopicArn"]
    client("s3", moto_endpoint).create_bucket(Bucket=names["bucket"])
    client("secretsmanager", moto_endpoint).create_secret(Name=names["secret"], SecretString="v")
    client("ssm", moto_endpoint).put_parameter(Name=names["parameter"], Value="v", Type="String")
    return names


@pytest.mark.parametrize(("service", "kind"), sorted(SHAPES))
def test_each_fault_is_parsed_and_retried_by_botocore_as_the_service_would_be(proxy, resources, service, kind):
    # GIVEN the service's next call faulted
    proxy.rules.set(FaultRule(service, "*", rate=1.0, kinds=(kind,), budget=1))
    # WHEN a client without retries calls it
    with pytest.raises(ClientError) as raised:
        CALLS[service](client(service, proxy.url, NO_RETRIES), resources)
    # THEN botocore parsed the service's own error code and status
    error = raised.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == SHAPES[(service, kind)]
    # AND a client with one retry rides over the same fault
    proxy.rules.set(FaultRule(service, "*", rate=1.0, kinds=(kind,), budget=1))
    answer = CALLS[service](client(service, proxy.url, ONE_RETRY), resources)
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert proxy.rules.injected(service, kind=kind) == 2


def test_counters_page_and_paused_rules_are_never_faulted(proxy, table):
    # GIVEN a rule that faults every call of every service
    proxy.rules.set(FaultRule("*", "*", rate=1.0, kinds=("500",)))
    dynamodb = client("dynamodb", proxy.url, NO_RETRIES)
    with pytest.raises(ClientError):
        dynamodb.get_item(TableName=table, Key={"pk": {"S": "x"}})
    # WHEN the proxy's counters page is read, and a call is made while the rules are paused
    with urllib.request.urlopen(f"{proxy.url}/_fault-proxy/counters", timeout=5) as page:
        counters = json.loads(page.read())
    with proxy.rules.paused():
        answer = dynamodb.get_item(TableName=table, Key={"pk": {"S": "x"}})
    # THEN both are answered, and the counters say what was injected
    assert counters["faults"] == {"dynamodb:GetItem:500": 1} and counters["enabled"] is True
    assert "Item" not in answer and proxy.rules.enabled
    assert proxy.rules.calls("dynamodb", "GetItem") == 2 and proxy.rules.injected() == 1


def test_rules_refuse_rates_and_kinds_that_do_not_exist():
    with pytest.raises(ValueError, match="rate"):
        FaultRule("dynamodb", rate=1.5)
    with pytest.raises(ValueError, match="kinds"):
        FaultRule("dynamodb", kinds=("timeout",))


# -- a local cloud with the proxy --------------------------------------------------------------

def kpi_counts(channel: str):
    today = datetime.now(UTC).date()
    hours = KpiCountersTable(get_settings().kpi_table).hours(today - timedelta(days=1), today)
    counts = merge(*[c for (_, name), c in hours.items() if name == channel])
    # The latency bucket depends on how long the store took: compare how many were measured.
    return {**asdict(counts), "latency": sum(counts.latency)}


def deliver(cloud, function_id: str, records: list[dict], batch_size: int = 10) -> int:
    """Invoke the function as a stream does: batches in order, a failed batch redelivered from its first
    failed record. The number of redeliveries."""
    redelivered, position = 0, 0
    while position < len(records):
        batch = records[position:position + batch_size]
        failures = cloud.invoke(function_id, {"Records": batch}, bypass_concurrency=True)["batchItemFailures"]
        if not failures:
            position += len(batch)
            continue
        redelivered += 1
        assert redelivered < 40, "the stream would be stuck"
        failed = {failure["itemIdentifier"] for failure in failures}
        position += next(i for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] in failed)
    return redelivered


def kpi_and_risk_run(cloud, channel: str, run: str, street_number: str) -> dict:
    """20 paid orders counted by the KpiFunction (7 allocated, 3 sent to review), and five accounts on one
    address assessed by the RiskFunction (the fifth goes to review through the ReviewQueue)."""
    orders = [paid_order(channel, [("KETTLE-1L", 1)], shop_id=run) for _ in range(20)]
    store(orders)
    images = stored_images(cloud, [order.order_key for order in orders])
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    records = [stream_record(image, sequence=i + 1) for i, image in enumerate(images)]
    for i, image in enumerate(images[:10]):
        status = "allocated" if i < 7 else "in_review"
        changed = {**image, "fulfillment_status": {"S": status}, "fulfillment_updated_at": {"S": now}}
        records.append(stream_record(changed, event_name="MODIFY", old_image=image, sequence=100 + i))
    redelivered = deliver(cloud, "KpiFunction", records)

    number = street_number  # the address the five accounts share, one per run
    wide = number.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    forms = [f"文三路{number}号3栋2单元501室", f"文三路{wide}号３号楼２单元５０１", f"浙江省杭州市西湖区文三路{number}号3幢2单元501房",
             f"文三路 {number} 号 三号楼 2 单元 501", f"文三路{number}号3座2门501"]
    ring = [risk_order(buyer=f"ring-{run}-{i}", address=address) for i, address in enumerate(forms)]
    store(ring)
    redelivered += deliver(cloud, "RiskFunction", paid_records(cloud, ring), batch_size=5)
    return {
        "kpis": kpi_counts(channel),
        "risk": [risk_of(cloud, order.order_key)[0] for order in ring],
        "reviews": sorted((m["order_key"] == ring[4].order_key, m["reason"]) for m in drain_queue(cloud, "ReviewQueue")),
        "redelivered": redelivered,
    }


def test_a_local_cloud_under_20_percent_faults_ends_as_one_without_faults(cloud_factory):
    # GIVEN a local cloud whose functions reach AWS through the fault proxy
    cloud = cloud_factory(DEFAULT_TEMPLATE, fault_proxy=True, fault_seed=8, start_event_sources=False,
                          parameter_overrides={"LogLevel": "ERROR"})
    assert cloud.environment["OMS_AWS_ENDPOINT_URL"] == cloud.fault_proxy.url != cloud.endpoint
    # WHEN the same orders go through the KpiFunction and the RiskFunction without faults, then again (on
    # another channel) with 20% of every DynamoDB write and every SQS call throttled, and once more with
    # 20% of them failing with 500s or lost connections, before or after the write
    calm = kpi_and_risk_run(cloud, "jd", f"calm{uuid.uuid4().hex[:6]}", "128")
    assert cloud.faults.injected() == 0
    cloud.faults.set(FaultRule("dynamodb", DYNAMODB_WRITES, rate=0.2, kinds=("throttle", "throughput")),
                     FaultRule("sqs", "*", rate=0.2, kinds=("throttle",)))
    throttled = kpi_and_risk_run(cloud, "pdd", f"throttled{uuid.uuid4().hex[:6]}", "256")
    throttles = cloud.faults.injected()
    broken = ("500", "drop", "drop_after")
    cloud.faults.set(FaultRule("dynamodb", DYNAMODB_WRITES, rate=0.2, kinds=broken),
                     FaultRule("sqs", "*", rate=0.2, kinds=broken))
    failing = kpi_and_risk_run(cloud, "douyin", f"failing{uuid.uuid4().hex[:6]}", "512")
    # THEN the outcomes are the same, count for count
    assert (calm["kpis"]["orders_stored"], calm["kpis"]["allocation_needed"], calm["kpis"]["exceptions"]) == (20, 10, 3)
    assert throttled["kpis"] == calm["kpis"] and failing["kpis"] == calm["kpis"]
    assert calm["risk"] == throttled["risk"] == failing["risk"] == ["cleared"] * 4 + ["in_review"]
    assert calm["reviews"] == throttled["reviews"] == [(True, "risk_review")]
    assert set(failing["reviews"]) == {(True, "risk_review")}  # SQS is at-least-once: a lost answer resends
    # AND faults of every kind were injected into the functions' calls (the endpoint's own view is untouched)
    assert throttles > 5
    assert cloud.faults.injected(kind="throttle") + cloud.faults.injected(kind="throughput") == throttles
    assert all(cloud.faults.injected(kind=kind) for kind in broken), cloud.faults.snapshot()["faults"]
    assert cloud.stats()["aws_faults"] == cloud.faults.snapshot()


# -- a defect the proxy found (regression): OrdersTable.save read its own write, whose answer was lost,
# as somebody else's (a first store reported DUPLICATE, a newer version STALE); a write token fixed it ------

@pytest.mark.parametrize("version", ["first", "newer"])
def test_an_order_saved_whose_answer_was_lost_is_reported_as_saved(proxy, moto_endpoint, monkeypatch, version):
    # GIVEN an Orders table reached through the proxy, and an order (already stored, for a newer version)
    name = f"orders-{uuid.uuid4().hex[:10]}"
    client("dynamodb", moto_endpoint).create_table(
        TableName=name, KeySchema=[{"AttributeName": "order_key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "order_key", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    monkeypatch.setattr(aws, "client", lambda service: client(service, proxy.url))
    orders = OrdersTable(name, "unused-bucket")
    order = paid_order("taobao", [("KETTLE-1L", 1)], shop_id="lost")
    expected, written_by = SaveResult.CREATED, "PutItem"
    if version == "newer":
        assert orders.save(order, {"v": 1}) is SaveResult.CREATED
        later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
        order = order.model_copy(update={"updated_at": later, "status": OrderStatus.CANCELLED})
        expected, written_by = SaveResult.UPDATED, "UpdateItem"
    # WHEN the answer of its write is lost after the write ("drop_after") and botocore retries it
    proxy.rules.set(FaultRule("dynamodb", written_by, rate=1.0, kinds=("drop_after",), budget=1))
    outcome = orders.save(order, {"v": 2})
    # THEN the order is stored once, at this version ...
    stored = client("dynamodb", moto_endpoint).get_item(TableName=name, Key={"order_key": {"S": order.order_key}})
    assert stored["Item"]["status"]["S"] == order.status and proxy.rules.injected(kind="drop_after") == 1
    # ... and the save says so (reconciliation lists CREATED as backfilled, UPDATED as refreshed)
    assert outcome is expected


# -- a defect `oms bench peak` found (regression): a poll whose lease-taking answer was lost met its own
# lease on botocore's retry, took it for another poll's, and the shop waited the 5-minute lease out --------

def test_a_poll_whose_lease_answer_was_lost_still_holds_the_lease(proxy, moto_endpoint, monkeypatch):
    from oms.adapters.cursors_table import CursorsTable

    # GIVEN a registered shop in a cursors table reached through the proxy
    name = f"cursors-{uuid.uuid4().hex[:10]}"
    client("dynamodb", moto_endpoint).create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "channel", "KeyType": "HASH"}, {"AttributeName": "shop_id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "channel", "AttributeType": "S"},
                              {"AttributeName": "shop_id", "AttributeType": "S"}])
    monkeypatch.setattr(aws, "client", lambda service: client(service, proxy.url))
    cursors = CursorsTable(name)
    assert cursors.register_shop("jd", "lease-shop")
    # WHEN a poll takes the lease and the answer is lost after the write
    proxy.rules.set(FaultRule("dynamodb", "UpdateItem", rate=1.0, kinds=("drop_after",), budget=1))
    held = cursors.acquire_lease("jd", "lease-shop", "poll-1", until=datetime.now(UTC) + timedelta(minutes=5))
    # THEN it holds the lease (the retry met its own write), and another poll still does not get it
    assert held is not None and proxy.rules.injected(kind="drop_after") == 1
    assert cursors.acquire_lease("jd", "lease-shop", "poll-2", until=datetime.now(UTC) + timedelta(minutes=5)) is None

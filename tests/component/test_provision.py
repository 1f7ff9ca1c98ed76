"""Provisioning the real infra/template.yaml into a moto server, and `oms invoke` against the result."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from omsdev.cli import main as oms
from omsdev.localcloud.cloud import find_free_port
from omsdev.localcloud.provision import ProvisionError, Stack
from omsdev.localcloud.template import Template

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def _client(service: str, endpoint: str):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        config=Config(account_id_endpoint_mode="disabled"))


@pytest.fixture
def restored_environ():
    """`oms invoke` sets the function's environment in its (normally short-lived) process: undo it."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def stack(moto_endpoint, unique_stack_name):
    return Stack(Template.load(REPO / "infra" / "template.yaml"), unique_stack_name, moto_endpoint).provision()


def test_orders_table_has_its_key_and_a_new_and_old_images_stream(stack, moto_endpoint):
    # GIVEN the project template provisioned
    # WHEN the Orders table is described at the endpoint
    table = _client("dynamodb", moto_endpoint).describe_table(TableName=stack.ref("OrdersTable"))["Table"]
    # THEN its name is {stack}-OrdersTable, its key order_key, its stream NEW_AND_OLD_IMAGES
    assert table["TableName"] == f"{stack.stack_name}-OrdersTable"
    assert table["KeySchema"] == [{"AttributeName": "order_key", "KeyType": "HASH"}]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert stack.stream_arn("OrdersTable") == table["LatestStreamArn"]
    # AND the Quarantine table has its by-state index
    quarantine = _client("dynamodb", moto_endpoint).describe_table(TableName=stack.ref("QuarantineTable"))["Table"]
    assert [index["IndexName"] for index in quarantine["GlobalSecondaryIndexes"]] == ["by-state"]


def test_retry_queue_redrives_to_its_dead_letter_queue(stack, moto_endpoint):
    # GIVEN the project template provisioned
    # WHEN the retry queue's attributes are read
    attributes = _client("sqs", moto_endpoint).get_queue_attributes(
        QueueUrl=stack.ref("RetryQueue"), AttributeNames=["All"])["Attributes"]
    # THEN its redrive policy names the DLQ's ARN with the template's maxReceiveCount, and its settings are the template's
    policy = json.loads(attributes["RedrivePolicy"])
    assert policy["deadLetterTargetArn"] == stack.get_att("RetryDeadLetterQueue", "Arn")
    assert int(policy["maxReceiveCount"]) == 5
    assert (attributes["VisibilityTimeout"], attributes["MessageRetentionPeriod"]) == ("360", "345600")
    assert stack.get_att("RetryQueue", "QueueName") == f"{stack.stack_name}-RetryQueue"


def test_function_environment_is_resolved_against_the_stack(stack):
    # GIVEN the project template provisioned
    # WHEN a poller's environment is asked for with an extra variable
    environment = stack.function_environment("ShopifyPollerFunction", extra={"OMS_AWS_ENDPOINT_URL": "http://x"})
    # THEN every value is a resolved string, the extra applied on top
    assert environment["ORDERS_TABLE"] == f"{stack.stack_name}-OrdersTable"
    assert environment["RETRY_QUEUE_URL"] == stack.ref("RetryQueue")
    assert environment["RAW_PAYLOAD_BUCKET"] == f"{stack.stack_name}-rawpayloadbucket".lower()
    assert environment["RETRY_BACKOFF_SECONDS"] == "30,90,270"
    assert environment["OMS_AWS_ENDPOINT_URL"] == "http://x"
    assert all(isinstance(value, str) for value in environment.values())


def test_provisioning_twice_reuses_what_exists(stack, moto_endpoint):
    # GIVEN a provisioned stack with an order stored and a message queued
    dynamodb, sqs = _client("dynamodb", moto_endpoint), _client("sqs", moto_endpoint)
    dynamodb.put_item(TableName=stack.ref("OrdersTable"), Item={"order_key": {"S": "shopify#s#1"}})
    sqs.send_message(QueueUrl=stack.ref("RetryQueue"), MessageBody="kept")
    # WHEN the same template is provisioned again under the same stack name, and attached to
    again = Stack(stack.template, stack.stack_name, moto_endpoint).provision()
    attached = Stack(stack.template, stack.stack_name, moto_endpoint).attach()
    # THEN the same resources are found, with their data
    for logical_id in ("OrdersTable", "RetryQueue", "RetryDeadLetterQueue", "RawPayloadBucket"):
        assert again.ref(logical_id) == attached.ref(logical_id) == stack.ref(logical_id)
    assert again.stream_arn("OrdersTable") == stack.stream_arn("OrdersTable")
    assert dynamodb.get_item(TableName=stack.ref("OrdersTable"), Key={"order_key": {"S": "shopify#s#1"}})["Item"]
    attributes = sqs.get_queue_attributes(QueueUrl=stack.ref("RetryQueue"), AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "1"


def test_attaching_to_a_stack_that_is_not_there_says_how_to_start_it(moto_endpoint, unique_stack_name):
    # GIVEN nothing provisioned under a stack name
    # WHEN a tool attaches to it THEN the error names the resource and the stack
    with pytest.raises(ProvisionError, match=f"{unique_stack_name}.*oms local up"):
        Stack(Template.load(REPO / "infra" / "template.yaml"), unique_stack_name, moto_endpoint).attach()


def test_an_unsupported_resource_type_is_refused_by_name(moto_endpoint, unique_stack_name, tmp_path):
    # GIVEN a template with a VPC next to a queue
    path = tmp_path / "template.yaml"
    path.write_text("Resources:\n  Net:\n    Type: AWS::EC2::VPC\n  Q:\n    Type: AWS::SQS::Queue\n")
    # WHEN it is provisioned THEN the error names the type and the resource
    with pytest.raises(ProvisionError, match=r"AWS::EC2::VPC \(Net\)"):
        Stack(Template.load(path), unique_stack_name, moto_endpoint).provision()


def test_oms_invoke_runs_a_function_with_its_resolved_environment(moto_endpoint, unique_stack_name, tmp_path, capsys,
                                                                  restored_environ):
    # GIVEN the SQS fixture stack provisioned, an event file and SAM-style env vars
    template = FIXTURES / "sqs_template.yaml"
    stack = Stack(Template.load(template), unique_stack_name, moto_endpoint).provision()
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"hello": "world"}))
    env_vars = tmp_path / "env.json"
    env_vars.write_text(json.dumps({"Parameters": {"GREETING": "from parameters", "UNDECLARED": "x"},
                                    "EchoFunction": {"GREETING": "from the function section"}}))
    base = ["invoke", "EchoFunction", "--event", str(event), "--endpoint", moto_endpoint,
            "--template", str(template), "--stack-name", unique_stack_name]
    # WHEN oms invoke runs it, without and with --env-vars
    assert oms(base) == 0
    plain = json.loads(capsys.readouterr().out)
    assert oms(base + ["--env-vars", str(env_vars)]) == 0
    captured = capsys.readouterr()
    overridden = json.loads(captured.out)
    # THEN the handler got the event, a Lambda context and the stack's resolved environment
    assert plain["event"] == {"hello": "world"}
    assert plain["function_name"] == f"{unique_stack_name}-EchoFunction"
    assert plain["invoked_function_arn"].endswith(f":function:{unique_stack_name}-EchoFunction")
    assert 0 < plain["remaining_ms"] <= 5000 and plain["memory_limit_in_mb"] == 256
    assert plain["environment"] == {"QUEUE_URL": stack.ref("WorkQueue"), "GREETING": f"hello from {unique_stack_name}",
                                    "OMS_AWS_ENDPOINT_URL": moto_endpoint}
    # AND --env-vars overrides declared variables only, the function's section winning, like SAM
    assert overridden["environment"]["GREETING"] == "from the function section"
    assert "UNDECLARED" in captured.err


def test_oms_invoke_without_a_local_cloud_exits_2_with_a_hint(tmp_path, capsys):
    # GIVEN nothing listening on a port
    event = tmp_path / "event.json"
    event.write_text("{}")
    endpoint = f"http://127.0.0.1:{find_free_port()}"
    # WHEN oms invoke is pointed at it
    code = oms(["invoke", "EchoFunction", "--event", str(event), "--endpoint", endpoint,
                "--template", str(FIXTURES / "sqs_template.yaml")])
    # THEN it exits 2 and says how to start the local cloud
    assert code == 2
    assert f"no local cloud at {endpoint}; start it with `oms local up`" in capsys.readouterr().err


def test_a_new_local_cloud_starts_its_handlers_cold(cloud_factory):
    """Handlers build some dependencies once per container (the retry consumer's idempotency
    store on one table of one endpoint): a second stack in this process must not inherit them."""
    import sys

    from omsdev.localcloud.cloud import DEFAULT_TEMPLATE

    first = cloud_factory(DEFAULT_TEMPLATE, start_event_sources=False)
    first.runtime.handler("WindowRetryFunction")
    warm = sys.modules["window_retry.handler"]._retry_once
    warm()  # binds the idempotency store to the first stack's table
    assert warm.cache_info().currsize == 1
    cloud_factory(DEFAULT_TEMPLATE, start_event_sources=False)
    cold = sys.modules["window_retry.handler"]._retry_once
    assert cold is not warm and cold.cache_info().currsize == 0


def test_a_new_local_cloud_logs_at_its_stacks_level_even_if_the_logger_was_imported_before(cloud_factory):
    """The CLI imports the layer (and its Logger) before any stack's environment is set; `make run`
    asks for WARNING and must not get every INFO line of every handler on its console."""
    from oms.observability import logger

    from omsdev.localcloud.cloud import DEFAULT_TEMPLATE

    logger.setLevel("INFO")  # as imported with no POWERTOOLS_LOG_LEVEL
    cloud_factory(DEFAULT_TEMPLATE, start_event_sources=False, parameter_overrides={"LogLevel": "WARNING"})
    assert logger.log_level == logging.WARNING
    cloud_factory(DEFAULT_TEMPLATE, start_event_sources=False, parameter_overrides={"LogLevel": "INFO"})
    assert logger.log_level == logging.INFO

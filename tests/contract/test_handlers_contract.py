"""Every function in the template has an importable handler, and every sample event parses with its model."""

import importlib
import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.data_classes import SQSEvent

from oms.domain.order import CHANNELS
from tests.contract.test_settings_contract import ROOT, template

FUNCTIONS = {
    logical_id: resource["Properties"]
    for logical_id, resource in template()["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_the_handler_named_in_the_template_is_importable_and_callable(logical_id):
    # GIVEN the function's Handler "<module path>.<function>" under its CodeUri
    properties = FUNCTIONS[logical_id]
    assert properties["CodeUri"] == "../functions/"
    module_name, _, function_name = properties["Handler"].rpartition(".")
    # WHEN it is imported the way the Lambda runtime does
    module = importlib.import_module(module_name)
    # THEN the entry point exists
    assert callable(getattr(module, function_name))


def _events(function_dir: str) -> list[Path]:
    paths = sorted((ROOT / "events" / function_dir).glob("*.json"))
    assert paths, f"events/{function_dir}/ needs at least one sample event"
    return paths


def test_every_function_directory_has_sample_events():
    for properties in FUNCTIONS.values():
        _events(properties["Handler"].split(".")[0])


@pytest.mark.parametrize("path", _events("poller"), ids=lambda p: p.name)
def test_poller_events_parse_with_the_poller_model(path):
    from poller.handler import ScheduledPollEvent

    ScheduledPollEvent.model_validate(json.loads(path.read_text()))


def test_each_channel_poller_schedule_input_parses_with_the_poller_model():
    from poller.handler import ScheduledPollEvent

    inputs = [
        event["Properties"]["Input"]
        for properties in FUNCTIONS.values()
        if properties["Handler"] == "poller.handler.lambda_handler"
        for event in properties["Events"].values()
    ]
    # One poller per channel of the contract, each on its own schedule.
    assert sorted(ScheduledPollEvent.model_validate_json(text).channel for text in inputs) == sorted(CHANNELS)


@pytest.mark.parametrize("path", _events("reconcile"), ids=lambda p: p.name)
def test_reconcile_events_parse_with_the_reconcile_model(path):
    from reconcile.handler import ReconcileEvent

    ReconcileEvent.model_validate(json.loads(path.read_text()))


def test_every_channel_is_reconciled_on_a_schedule():
    from reconcile.handler import ReconcileEvent

    events = FUNCTIONS["ReconcileFunction"]["Events"].values()
    assert sorted(ReconcileEvent.model_validate_json(e["Properties"]["Input"]).channel for e in events) == sorted(CHANNELS)


@pytest.mark.parametrize("path", _events("window_retry"), ids=lambda p: p.name)
def test_window_retry_events_parse_as_sqs_events_with_failed_window_bodies(path):
    from oms.services.messages import FailedWindowMessage

    event = SQSEvent(json.loads(path.read_text()))
    records = list(event.records)
    assert records
    for record in records:
        FailedWindowMessage.model_validate_json(record.body)


def test_env_local_json_names_only_declared_variables_and_functions():
    env = json.loads((ROOT / "events" / "env.local.json").read_text())
    declared = set(template()["Globals"]["Function"]["Environment"]["Variables"])
    for section, variables in env.items():
        assert section == "Parameters" or section in FUNCTIONS, section
        assert set(variables) <= declared, f"{section}: {sorted(set(variables) - declared)}"


@pytest.mark.parametrize("path", _events("allocate"), ids=lambda p: p.name)
def test_allocate_events_pass_the_function_filter_and_ask_for_the_step_their_name_says(path):
    from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
    from omsdev.localcloud.filters import compile_filters, matches_any

    from oms.services.allocate import stream_action

    # GIVEN the sample stream event and the AllocationFunction's FilterCriteria from the template
    filters = compile_filters(FUNCTIONS["AllocationFunction"]["Events"]["OrdersStream"]["Properties"]["FilterCriteria"])
    raw = json.loads(path.read_text())
    for raw_record, record in zip(raw["Records"], DynamoDBStreamEvent(raw).records, strict=True):
        # THEN Lambda would deliver it, and it asks for allocate / release / deduct as its file name says
        assert matches_any(filters, raw_record)
        action = stream_action(record.event_name.name, (record.dynamodb.old_image or {}).get("status"),
                               record.dynamodb.new_image["status"])
        expected = {"order_paid.json": "allocate", "order_cancelled.json": "release", "order_shipped.json": "deduct"}
        assert action == expected[path.name]


@pytest.mark.parametrize("old_status, new_status, delivered", [
    ("paid", "paid", False),  # allocation's own write (fulfillment_status) or a newer channel version
    ("cancelled", "cancelled", False),  # released already
    ("pending_payment", "pending_payment", False),
    ("shipped", "completed", False),  # deducted already
    ("refunding", "refunded", True),  # the refund completed: its units go back
    ("paid", "refunding", False),  # a refund under way: the units stay held until it completes
])
def test_the_allocation_filter_passes_only_changes_that_need_an_allocation_step(old_status, new_status, delivered):
    from omsdev.localcloud.filters import compile_filters, matches_any

    filters = compile_filters(FUNCTIONS["AllocationFunction"]["Events"]["OrdersStream"]["Properties"]["FilterCriteria"])
    record = {"eventName": "MODIFY", "dynamodb": {"NewImage": {"status": {"S": new_status}},
                                                  "OldImage": {"status": {"S": old_status}}}}
    assert matches_any(filters, record) is delivered


@pytest.mark.parametrize("path", _events("risk"), ids=lambda p: p.name)
def test_risk_events_pass_the_function_filter_and_ask_for_the_step_their_name_says(path):
    from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
    from omsdev.localcloud.filters import compile_filters, matches_any

    from oms.services.assess_risk import stream_actions

    filters = compile_filters(FUNCTIONS["RiskFunction"]["Events"]["OrdersStream"]["Properties"]["FilterCriteria"])
    raw = json.loads(path.read_text())
    for raw_record, record in zip(raw["Records"], DynamoDBStreamEvent(raw).records, strict=True):
        assert matches_any(filters, raw_record)
        actions = stream_actions(record.event_name.name, record.dynamodb.old_image or {}, record.dynamodb.new_image)
        expected = {"order_paid.json": ["assess"], "order_refunded.json": ["count_return"],
                    "order_allocated_and_cleared.json": ["promote"]}
        assert actions == expected[path.name]


@pytest.mark.parametrize("old, new, delivered", [
    ({"status": "paid"}, {"status": "paid", "risk_status": "verifying"}, False),  # risk's own decision write
    ({"status": "paid"}, {"status": "paid", "fulfillment_status": "allocated"}, False),  # allocated, not cleared
    ({"status": "paid", "fulfillment_status": "allocated", "risk_status": "verifying"},
     {"status": "paid", "fulfillment_status": "allocated", "risk_status": "in_review"}, False),  # failed code
    ({"status": "paid", "fulfillment_status": "ready_to_ship", "risk_status": "cleared"},
     {"status": "cancelled", "fulfillment_status": "released", "risk_status": "cleared"}, False),
    ({"status": "shipped"}, {"status": "refunding"}, True),  # a return starts: counted
    ({"status": "refunding"}, {"status": "refunded"}, False),  # the same return completing: counted already
])
def test_the_risk_filter_passes_only_changes_that_need_a_risk_step(old, new, delivered):
    from omsdev.localcloud.filters import compile_filters, matches_any

    filters = compile_filters(FUNCTIONS["RiskFunction"]["Events"]["OrdersStream"]["Properties"]["FilterCriteria"])
    image = lambda values: {name: {"S": value} for name, value in values.items()}  # noqa: E731
    record = {"eventName": "MODIFY", "dynamodb": {"NewImage": image(new), "OldImage": image(old)}}
    assert matches_any(filters, record) is delivered


def test_the_verify_sample_event_reaches_the_confirm_route():
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

    event = APIGatewayProxyEvent(json.loads((ROOT / "events" / "verify" / "confirm_code.json").read_text()))
    route = FUNCTIONS["VerifyFunction"]["Events"]["Confirm"]["Properties"]
    assert (event.http_method, event.resource) == (route["Method"], route["Path"])
    assert json.loads(event.body)["code"].isdigit()

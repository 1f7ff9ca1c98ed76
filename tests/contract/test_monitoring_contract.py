"""The template's monitoring (SPEC C9) keeps its promises: the required alarms exist and notify
AlarmTopic, every dead-letter / on-failure queue has a depth alarm, and the operations dashboard is
valid JSON that names only OMS and AWS/SQS metrics, and only OMS metrics the code really emits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from oms.domain.order import CHANNELS
from omsdev.localcloud.provision import CREATED_TYPES, RECORDED_TYPES
from omsdev.localcloud.template import Template, TemplateError

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "infra" / "template.yaml"
TEMPLATE = Template.load(TEMPLATE_PATH)
RESOURCES = TEMPLATE.resources
SOURCE_FOLDERS = [ROOT / "layers" / "shared", ROOT / "functions"]
ALARM_TOPIC = {"Ref": "AlarmTopic"}

# Published by the KPI function (functions/kpis, oms.services.*kpi*), once per order and event.
KPI_METRICS = {"OrdersStored", "IngestionLatency", "AllocationDecided", "AllocatedAutomatically", "ExceptionOrders",
               "FirstShipmentsDue", "FirstShipmentsOnTime", "RiskHolds"}
# logical id -> (the metrics it watches, the parameter its threshold comes from)
REQUIRED_ALARMS = {
    "IngestionLatencyAlarm": ({"IngestionLatency"}, "LatencyAlarmSeconds"),
    "AllocationSuccessAlarm": ({"AllocatedAutomatically", "AllocationDecided"}, "AllocationSuccessAlarmPercent"),
    "ExceptionRatioAlarm": ({"ExceptionOrders", "OrdersStored"}, "ExceptionRatioAlarmPercent"),
    "ReviewQueueAgeAlarm": ({"ApproximateAgeOfOldestMessage"}, "ReviewQueueAgeAlarmSeconds"),
    "PollingFailureAlarm": ({"PollWindowsFailed"}, "PollFailureAlarmPercent"),
}


def _of_type(kind: str) -> dict[str, dict]:
    return {logical_id: resource for logical_id, resource in RESOURCES.items() if resource["Type"] == kind}


ALARMS = _of_type("AWS::CloudWatch::Alarm")
QUEUES = _of_type("AWS::SQS::Queue")


def _metrics(alarm: dict) -> list[dict]:
    """The metrics an alarm watches, as {namespace, name, dimensions, stat}: its own or its MetricStats."""
    props = alarm["Properties"]
    if "MetricName" in props:
        return [{"namespace": props["Namespace"], "name": props["MetricName"],
                 "dimensions": {d["Name"]: d["Value"] for d in props.get("Dimensions", [])},
                 "stat": props.get("ExtendedStatistic") or props.get("Statistic")}]
    return [{"namespace": stat["Metric"]["Namespace"], "name": stat["Metric"]["MetricName"],
             "dimensions": {d["Name"]: d["Value"] for d in stat["Metric"].get("Dimensions", [])},
             "stat": stat["Stat"]}
            for stat in (query["MetricStat"] for query in props["Metrics"] if "MetricStat" in query)]


def _expression_text(value) -> str:
    return value["Fn::Sub"] if isinstance(value, dict) else value


def _expression_ids(expression: str) -> set[str]:
    """The metric ids an expression uses: lower-case identifiers (functions are upper case); ${...} left out."""
    return set(re.findall(r"\b[a-z][a-zA-Z0-9_]*\b", re.sub(r"\$\{[^}]*\}", "", expression)))


def _queue_of(value) -> str | None:
    """The queue logical id an Arn value (`!GetAtt Queue.Arn`) points at."""
    if isinstance(value, dict) and "Fn::GetAtt" in value and value["Fn::GetAtt"][0] in QUEUES:
        return value["Fn::GetAtt"][0]
    return None


def _failure_destinations(value) -> set[str]:
    """Queues the template sends failures to: redrive DLQs, on-failure destinations, function DLQs."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "deadLetterTargetArn":
                found.add(_queue_of(item))
            elif key == "OnFailure" and isinstance(item, dict):
                found.add(_queue_of(item.get("Destination")))
            elif key == "DeadLetterQueue" and isinstance(item, dict):
                found.add(_queue_of(item.get("TargetArn")))
            found |= _failure_destinations(item)
    elif isinstance(value, list):
        for item in value:
            found |= _failure_destinations(item)
    return found - {None}


def _dead_letter_queues() -> set[str]:
    named = {logical_id for logical_id in QUEUES if "DeadLetter" in logical_id or "FailureQueue" in logical_id}
    return named | _failure_destinations(RESOURCES)


# -- alarms ---------------------------------------------------------------------------------------

def test_the_alarm_topic_is_an_sns_topic():
    assert RESOURCES["AlarmTopic"]["Type"] == "AWS::SNS::Topic"


@pytest.mark.parametrize("logical_id", sorted(ALARMS))
def test_every_alarm_notifies_the_alarm_topic_says_what_to_do_and_stays_quiet_without_data(logical_id):
    # GIVEN an alarm of the template
    props = ALARMS[logical_id]["Properties"]
    # THEN ALARM and OK both go to the topic, an idle period (no data) is not breaching
    assert props["AlarmActions"] == [ALARM_TOPIC]
    assert props["OKActions"] == [ALARM_TOPIC]
    assert props["TreatMissingData"] == "notBreaching"
    # AND its description tells the operator what happened and what to do
    description = _expression_text(props["AlarmDescription"])
    assert len(description) >= 120, f"{logical_id}: say what happened and what to do"


@pytest.mark.parametrize("logical_id", sorted(REQUIRED_ALARMS))
def test_each_required_alarm_watches_its_metrics_against_a_tunable_threshold(logical_id):
    # GIVEN the metrics and threshold parameter the issue asks of this alarm
    metric_names, parameter = REQUIRED_ALARMS[logical_id]
    assert logical_id in ALARMS, f"{logical_id} is missing from the template"
    props = ALARMS[logical_id]["Properties"]
    # WHEN its metrics are read
    used = {metric["name"] for metric in _metrics(ALARMS[logical_id])}
    # THEN they are the expected ones, and the threshold is an operator's template parameter with a default
    assert used == metric_names
    assert props["Threshold"] == {"Ref": parameter}
    assert "Default" in TEMPLATE.body["Parameters"][parameter]


def test_the_latency_alarm_watches_the_p95_over_three_periods():
    props = ALARMS["IngestionLatencyAlarm"]["Properties"]
    assert props["ExtendedStatistic"] == "p95"
    assert props["EvaluationPeriods"] == props["DatapointsToAlarm"] == 3
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert TEMPLATE.parameters()["LatencyAlarmSeconds"] == "60"


@pytest.mark.parametrize("logical_id, operator", [("AllocationSuccessAlarm", "LessThanThreshold"),
                                                  ("ExceptionRatioAlarm", "GreaterThanOrEqualToThreshold")])
def test_the_ratio_alarms_are_hourly_and_guarded_against_low_volume(logical_id, operator):
    # GIVEN a ratio alarm (metric math over hourly sums)
    props = ALARMS[logical_id]["Properties"]
    returned = [query for query in props["Metrics"] if query.get("ReturnData")]
    # THEN exactly one expression is watched, and it only yields a ratio from AlarmMinimumOrders orders up
    assert len(returned) == 1
    expression = _expression_text(returned[0]["Expression"])
    assert re.match(r"IF\(\w+ >= \$\{AlarmMinimumOrders\},", expression), expression
    assert {metric["stat"] for metric in _metrics(ALARMS[logical_id])} == {"Sum"}
    assert {query["MetricStat"]["Period"] for query in props["Metrics"] if "MetricStat" in query} == {3600}
    assert props["ComparisonOperator"] == operator


@pytest.mark.parametrize("logical_id", sorted(ALARMS))
def test_alarm_expressions_use_every_metric_the_alarm_defines_and_no_other(logical_id):
    queries = ALARMS[logical_id]["Properties"].get("Metrics", [])
    used = set().union(*(_expression_ids(_expression_text(query["Expression"]))
                         for query in queries if "Expression" in query))
    assert used == {query["Id"] for query in queries if "MetricStat" in query}


def test_the_polling_alarm_covers_every_channel():
    channels = sorted(metric["dimensions"]["channel"] for metric in _metrics(ALARMS["PollingFailureAlarm"]))
    assert channels == sorted(CHANNELS)


@pytest.mark.parametrize("logical_id", sorted(ALARMS))
def test_every_oms_metric_an_alarm_watches_carries_the_service_dimension(logical_id):
    # Powertools adds service=oms to every EMF metric: a metric without it is another, empty, metric.
    for metric in _metrics(ALARMS[logical_id]):
        if metric["namespace"] == "OMS":
            assert metric["dimensions"].get("service") == "oms", metric
            assert set(metric["dimensions"]) <= {"service", "channel"}, metric
        else:
            assert metric["namespace"] == "AWS/SQS", metric


def test_every_dead_letter_and_on_failure_queue_has_a_depth_alarm():
    # GIVEN the queues failures end up in (by name, and by what redrives or sends failures to them)
    dead_letter_queues = _dead_letter_queues()
    assert {"ReviewDeadLetterQueue", "RetryDeadLetterQueue", "AllocationFailureQueue", "RiskFailureQueue",
            "KpiFailureQueue"} <= dead_letter_queues
    # WHEN the depth alarms are collected
    watched = {
        metric["dimensions"]["QueueName"]["Fn::GetAtt"][0]
        for alarm in ALARMS.values()
        for metric in _metrics(alarm)
        if metric["namespace"] == "AWS/SQS" and metric["name"] == "ApproximateNumberOfMessagesVisible"
        and alarm["Properties"].get("ComparisonOperator") == "GreaterThanThreshold"
        and str(alarm["Properties"].get("Threshold")) == "0"
    }
    # THEN each of them has one: any message there is work nobody does by itself
    assert sorted(dead_letter_queues - watched) == []


def test_the_review_queue_age_alarm_watches_the_review_queue():
    (metric,) = _metrics(ALARMS["ReviewQueueAgeAlarm"])
    assert metric["dimensions"] == {"QueueName": {"Fn::GetAtt": ["ReviewQueue", "QueueName"]}}
    assert metric["stat"] == "Maximum"


def test_the_alarm_email_subscription_exists_only_when_an_address_is_given():
    # GIVEN the subscription of the alarm topic
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Properties"]["TopicArn"] == ALARM_TOPIC
    assert subscription["Properties"]["Protocol"] == "email"
    # WHEN AlarmEmail is left empty or set THEN the subscription is created only when set
    assert not TEMPLATE.is_active("AlarmEmailSubscription")
    assert Template.load(TEMPLATE_PATH, {"AlarmEmail": "ops@example.com"}).is_active("AlarmEmailSubscription")
    # AND a value that is no address is refused before anything is deployed
    with pytest.raises(TemplateError, match="AlarmEmail"):
        Template.load(TEMPLATE_PATH, {"AlarmEmail": "ops at example"})


def test_the_local_cloud_knows_every_resource_type_of_the_template():
    types = {resource["Type"] for resource in RESOURCES.values()}
    assert sorted(types - set(RECORDED_TYPES) - set(CREATED_TYPES)) == []


# -- dashboard ------------------------------------------------------------------------------------

class _DummyStack:
    """Stands in for a deployed stack: `${X.Attr}` becomes `X-Attr`, `${X}` becomes `ref-X`."""

    def ref(self, logical_id: str) -> str:
        return f"ref-{logical_id}"

    def get_att(self, logical_id: str, attribute: str) -> str:
        return f"{logical_id}-{attribute}"


def _dashboard() -> dict:
    dashboards = _of_type("AWS::CloudWatch::Dashboard")
    assert list(dashboards) == ["OmsOperationsDashboard"]
    body = dashboards["OmsOperationsDashboard"]["Properties"]["DashboardBody"]
    assert "Fn::Sub" in body
    # The resolver refuses a ${...} that names no parameter, pseudo parameter or resource.
    return json.loads(TEMPLATE.resolver(resources=_DummyStack()).resolve(body))


def _metric_rows(dashboard: dict) -> list[tuple[dict, list]]:
    return [(widget, row) for widget in dashboard["widgets"] if widget["type"] == "metric"
            for row in widget["properties"]["metrics"]]


def _named_metrics(dashboard: dict) -> list[dict]:
    """Every metric (not expression) row as {namespace, name, dimensions}; no "..." shorthand allowed."""
    metrics = []
    for _, row in _metric_rows(dashboard):
        if isinstance(row[0], dict):
            continue
        fields = row[:-1] if isinstance(row[-1], dict) else row
        assert all(isinstance(item, str) and item != "..." for item in fields), f"spell the metric out: {row}"
        assert len(fields) % 2 == 0, row
        metrics.append({"namespace": fields[0], "name": fields[1], "dimensions": dict(zip(fields[2::2], fields[3::2]))})
    return metrics


def test_the_dashboard_body_is_valid_json_after_substitution():
    dashboard = _dashboard()
    assert dashboard["widgets"]
    for widget in dashboard["widgets"]:
        assert {"type", "x", "y", "width", "height", "properties"} <= set(widget)
        assert widget["x"] + widget["width"] <= 24
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == TEMPLATE.resolver().region


def test_the_dashboard_names_only_oms_and_sqs_metrics_of_this_stack():
    queue_names = {f"{logical_id}-QueueName" for logical_id in QUEUES}
    for metric in _named_metrics(_dashboard()):
        if metric["namespace"] == "OMS":
            assert metric["dimensions"].get("service") == "oms", metric
            assert set(metric["dimensions"]) <= {"service", "channel"}, metric
        else:
            assert metric["namespace"] == "AWS/SQS", metric
            assert metric["dimensions"] == {"QueueName": metric["dimensions"].get("QueueName")}
            assert metric["dimensions"]["QueueName"] in queue_names, metric


def test_dashboard_expressions_use_only_metric_ids_of_their_widget():
    dashboard = _dashboard()
    for widget in dashboard["widgets"]:
        if widget["type"] != "metric":
            continue
        rows = widget["properties"]["metrics"]
        ids = {row[-1]["id"] for row in rows if isinstance(row[-1], dict) and "id" in row[-1]}
        for row in rows:
            if isinstance(row[0], dict):
                assert _expression_ids(row[0]["expression"]) <= ids, row


def test_the_dashboard_shows_the_kpis_every_channel_every_dead_letter_queue_and_every_alarm():
    dashboard = _dashboard()
    metrics = _named_metrics(dashboard)
    oms_names = {metric["name"] for metric in metrics if metric["namespace"] == "OMS"}
    # the six KPIs: five from metrics, orders per staff-day from GET /kpis
    assert KPI_METRICS <= oms_names
    assert any("/kpis" in widget["properties"].get("markdown", "") for widget in dashboard["widgets"])
    for name in ("OrdersCreated", "PollWindowsFailed"):
        channels = sorted(m["dimensions"]["channel"] for m in metrics if m["name"] == name)
        assert channels == sorted(CHANNELS), name
    depth_of = {m["dimensions"]["QueueName"] for m in metrics if m["name"] == "ApproximateNumberOfMessagesVisible"}
    assert sorted(q for q in _dead_letter_queues() if f"{q}-QueueName" not in depth_of) == []
    assert "ReviewQueue-QueueName" in {m["dimensions"]["QueueName"] for m in metrics
                                     if m["name"] == "ApproximateAgeOfOldestMessage"}
    shown = {arn for widget in dashboard["widgets"] if widget["type"] == "alarm"
             for arn in widget["properties"]["alarms"]}
    assert shown == {f"{logical_id}-Arn" for logical_id in ALARMS}


# -- the OMS metrics used are the ones the code emits ---------------------------------------------

def _source_text() -> str:
    return "\n".join(path.read_text() for folder in SOURCE_FOLDERS for path in folder.rglob("*.py"))


def _literal(text: str, source: str) -> bool:
    return bool(re.search(rf"[\"']{re.escape(text)}[\"']", source))


def _stream_consumer_source(prefix: str) -> str:
    """The handler that publishes `{prefix}_{state}` counts (oms.stream_batch), the oms.services modules
    it imports (where the outcome states are named) and stream_batch itself (which adds `failed`)."""
    shared = ROOT / "layers" / "shared"
    texts = []
    for handler in (ROOT / "functions").rglob("*.py"):
        text = handler.read_text()
        if f'metric_prefix="{prefix}"' in text:
            modules = re.findall(r"^from (oms\.services\.\w+) import", text, flags=re.MULTILINE)
            texts += [text, *((shared / (module.replace(".", "/") + ".py")).read_text() for module in modules)]
    return "\n".join(texts + [(shared / "oms" / "stream_batch.py").read_text()]) if texts else ""


def _emitted(name: str, source: str) -> bool:
    """A metric name the code emits: a string literal, or `{prefix}_{state}` of a stream consumer's
    published outcome counts, the state a literal of that consumer's code (see oms.stream_batch)."""
    if _literal(name, source):
        return True
    prefix, _, state = name.partition("_")
    return bool(state) and _literal(state, _stream_consumer_source(prefix))


def _oms_metric_names() -> set[str]:
    from_alarms = {m["name"] for alarm in ALARMS.values() for m in _metrics(alarm) if m["namespace"] == "OMS"}
    from_dashboard = {m["name"] for m in _named_metrics(_dashboard()) if m["namespace"] == "OMS"}
    return from_alarms | from_dashboard


def test_every_oms_metric_outside_the_kpi_function_is_emitted_by_the_code():
    source = _source_text()
    names = _oms_metric_names() - KPI_METRICS
    assert names, "nothing checked"
    assert sorted(name for name in names if not _emitted(name, source)) == []


def test_every_kpi_metric_used_is_emitted_by_the_kpi_function():
    names = sorted(_oms_metric_names() & KPI_METRICS)
    assert names, "nothing checked"
    source = _source_text()
    assert [name for name in names if not _emitted(name, source)] == []

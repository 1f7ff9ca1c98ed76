"""The local cloud's event wiring against a moto server: SQS, DynamoDB streams, schedules, filters.

Each test provisions a small fixture template (tests/component/fixtures) under a unique stack name
and starts only the mapping it is about; the fixture handlers record what they receive.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from omsdev.localcloud.event_sources import EventSourceError, ScheduleSource
from omsdev.localcloud.filters import FilterPatternError, compile_filters, matches_any

FIXTURES = Path(__file__).parent / "fixtures"
SQS_TEMPLATE = FIXTURES / "sqs_template.yaml"
STREAM_TEMPLATE = FIXTURES / "stream_template.yaml"
SCHEDULE_TEMPLATE = FIXTURES / "schedule_template.yaml"


@pytest.fixture
def handlers():
    """The fixture handlers' module (the one the local cloud imports), its records cleared."""
    if str(FIXTURES / "handlers") not in sys.path:
        sys.path.insert(0, str(FIXTURES / "handlers"))
    import localcloud_fixture_handlers

    localcloud_fixture_handlers.reset()
    return localcloud_fixture_handlers


def wait_until(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def bodies(events: list[dict]) -> list[list[str]]:
    return [[record["body"] for record in event["Records"]] for event in events]


def keys(events: list[dict]) -> list[list[str]]:
    return [[record["dynamodb"]["Keys"]["pk"]["S"] for record in event["Records"]] for event in events]


def receive_all(sqs, url: str, timeout: float) -> list[dict]:
    """Messages that arrive at a queue within `timeout` (for DLQs and on-failure destinations)."""
    found, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline and not found:
        found = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                    MessageSystemAttributeNames=["All"]).get("Messages", [])
    return found


def put_items(cloud, items: list[dict]) -> None:
    dynamodb = cloud.stack.client("dynamodb")
    for item in items:
        dynamodb.put_item(TableName=cloud.stack.ref("ItemsTable"),
                          Item={name: {"S": value} for name, value in item.items()})


# -- SQS ---------------------------------------------------------------------------------------

def test_sqs_partial_batch_failure_redelivers_only_the_failed_record_after_the_visibility_timeout(cloud_factory, handlers):
    # GIVEN four messages on a queue with a 1 s visibility timeout, one of which the worker reports failed
    cloud = cloud_factory(SQS_TEMPLATE, start_event_sources=False)
    sqs, url, tag = cloud.stack.client("sqs"), cloud.stack.ref("WorkQueue"), uuid.uuid4().hex[:6]
    sent = [f"ok-1-{tag}", f"fail-{tag}", f"ok-2-{tag}", f"ok-3-{tag}"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(sent)])
    # WHEN the SQS mapping runs until the failed message came back
    cloud.start_wiring(only={"WorkerFunction"})
    events = wait_until(lambda: len(handlers.calls_of("WorkerFunction")) >= 2 and handlers.calls_of("WorkerFunction"),
                        what="the failed message's redelivery")
    times = handlers.call_times("WorkerFunction")
    time.sleep(1.5)  # another visibility timeout: nothing else may come back
    # THEN the first batch had all four, the second only the failed one, received a second time
    assert sorted(bodies(events)[0]) == sorted(sent)
    assert bodies(handlers.calls_of("WorkerFunction"))[1:2] == [[f"fail-{tag}"]]
    assert events[1]["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    assert times[1] - times[0] >= 0.9  # only after the visibility timeout
    assert all("ok" not in body for batch in bodies(handlers.calls_of("WorkerFunction"))[1:] for body in batch)


def test_sqs_records_have_lambdas_event_shape(cloud_factory, handlers):
    # GIVEN a message with a string and a binary attribute
    cloud = cloud_factory(SQS_TEMPLATE, start_event_sources=False)
    sqs, url = cloud.stack.client("sqs"), cloud.stack.ref("WorkQueue")
    sqs.send_message(QueueUrl=url, MessageBody="ok-shape", MessageAttributes={
        "channel": {"DataType": "String", "StringValue": "shopify"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    })
    # WHEN the mapping delivers it
    cloud.start_wiring(only={"WorkerFunction"})
    record = wait_until(lambda: handlers.calls_of("WorkerFunction"), what="a delivery")[0]["Records"][0]
    # THEN it has exactly the keys and shapes Lambda's SQS event has
    assert set(record) == {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                           "eventSource", "eventSourceARN", "awsRegion"}
    assert (record["eventSource"], record["awsRegion"]) == ("aws:sqs", "us-east-1")
    assert record["eventSourceARN"] == cloud.stack.get_att("WorkQueue", "Arn")
    assert set(record["attributes"]) >= {"ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                         "ApproximateFirstReceiveTimestamp"}
    assert record["messageAttributes"] == {
        "channel": {"stringValue": "shopify", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "blob": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
    }
    assert record["md5OfBody"] == hashlib.md5(b"ok-shape").hexdigest()


def test_sqs_message_failing_every_time_reaches_the_dlq_after_max_receive_count(cloud_factory, handlers):
    # GIVEN a message the worker always reports failed, on a queue with maxReceiveCount 2
    cloud = cloud_factory(SQS_TEMPLATE, start_event_sources=False)
    sqs, tag = cloud.stack.client("sqs"), uuid.uuid4().hex[:6]
    sqs.send_message(QueueUrl=cloud.stack.ref("WorkQueue"), MessageBody=f"fail-{tag}")
    # WHEN the mapping runs
    cloud.start_wiring(only={"WorkerFunction"})
    # THEN the message lands in the DLQ (moto applies the RedrivePolicy on receive) after two deliveries
    dead = receive_all(sqs, cloud.stack.ref("WorkDeadLetterQueue"), timeout=10)
    assert [message["Body"] for message in dead] == [f"fail-{tag}"]
    assert bodies(handlers.calls_of("WorkerFunction")) == [[f"fail-{tag}"], [f"fail-{tag}"]]


@pytest.mark.parametrize("trouble", ["raise", "invalid"])
def test_sqs_handler_error_or_invalid_response_keeps_the_whole_batch(cloud_factory, handlers, trouble):
    # GIVEN a batch of a good message and one that makes the worker raise / answer an invalid response
    cloud = cloud_factory(SQS_TEMPLATE, start_event_sources=False)
    sqs, tag = cloud.stack.client("sqs"), uuid.uuid4().hex[:6]
    sent = sorted([f"ok-{tag}", f"{trouble}-{tag}"])
    sqs.send_message_batch(QueueUrl=cloud.stack.ref("WorkQueue"),
                           Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(sent)])
    # WHEN the mapping runs
    cloud.start_wiring(only={"WorkerFunction"})
    dead = receive_all(sqs, cloud.stack.ref("WorkDeadLetterQueue"), timeout=10)
    dead += receive_all(sqs, cloud.stack.ref("WorkDeadLetterQueue"), timeout=1)
    # THEN nothing was deleted: both came back after the visibility timeout, then both went to the DLQ
    assert [sorted(batch) for batch in bodies(handlers.calls_of("WorkerFunction"))] == [sent, sent]
    assert sorted(message["Body"] for message in dead) == sent


def test_sqs_filter_criteria_deliver_matching_messages_and_delete_the_rest(cloud_factory, handlers):
    # GIVEN messages on a queue whose mapping only wants bodies with kind "order"
    cloud = cloud_factory(SQS_TEMPLATE, start_event_sources=False)
    sqs, url = cloud.stack.client("sqs"), cloud.stack.ref("FilteredQueue")
    sent = [json.dumps({"kind": "order", "id": 1}), json.dumps({"kind": "refund"}), "not json"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(sent)])
    # WHEN the mapping runs
    (source,) = cloud.start_wiring(only={"FilteredWorkerFunction"})
    wait_until(lambda: source.counters.get("filtered_out") == 2 and handlers.calls_of("FilteredWorkerFunction"),
               what="filtering")
    # THEN only the order was delivered, and the others were deleted from the queue, as Lambda does
    assert bodies(handlers.calls_of("FilteredWorkerFunction")) == [[sent[0]]]
    time.sleep(1.2)
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == counts["ApproximateNumberOfMessagesNotVisible"] == "0"


# -- DynamoDB streams --------------------------------------------------------------------------

def test_stream_filter_criteria_skip_records_that_match_no_filter(cloud_factory, handlers):
    # GIVEN inserts, an update and a delete, of which only the paid inserts/updates match the filter
    cloud = cloud_factory(STREAM_TEMPLATE, start_event_sources=False)
    put_items(cloud, [{"pk": "a", "status": "pending"}, {"pk": "b", "status": "paid"}, {"pk": "c", "status": "pending"},
                      {"pk": "c", "status": "paid"}])
    cloud.stack.client("dynamodb").delete_item(TableName=cloud.stack.ref("ItemsTable"), Key={"pk": {"S": "b"}})
    # WHEN the filtered mapping reads the stream
    (source,) = cloud.start_wiring(only={"PaidOnlyFunction"})
    wait_until(lambda: source.counters.get("filtered_out", 0) + source.counters.get("records_done", 0) == 5,
               what="all five records to be passed or skipped")
    # THEN the function saw only the paid INSERT of b and the MODIFY of c, in Lambda's record shape
    records = [record for event in handlers.calls_of("PaidOnlyFunction") for record in event["Records"]]
    assert [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in records] == [("INSERT", "b"), ("MODIFY", "c")]
    assert source.counters["filtered_out"] == 3
    record = records[1]
    assert set(record) == {"eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "eventSourceARN"}
    assert (record["eventVersion"], record["eventSource"]) == ("1.1", "aws:dynamodb")
    assert record["eventSourceARN"] == cloud.stack.stream_arn("ItemsTable")
    assert set(record["dynamodb"]) == {"ApproximateCreationDateTime", "Keys", "NewImage", "OldImage", "SequenceNumber",
                                       "SizeBytes", "StreamViewType"}
    assert record["dynamodb"]["OldImage"]["status"] == {"S": "pending"}
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)


def test_stream_batches_hold_at_most_batch_size_records_in_order(cloud_factory, handlers):
    # GIVEN seven records already on the stream and a mapping with BatchSize 3
    cloud = cloud_factory(STREAM_TEMPLATE, start_event_sources=False)
    written = [f"k{index}" for index in range(7)]
    put_items(cloud, [{"pk": key} for key in written])
    # WHEN the mapping reads from TRIM_HORIZON
    cloud.start_wiring(only={"SmallBatchFunction"})
    wait_until(lambda: sum(map(len, keys(handlers.calls_of("SmallBatchFunction")))) == 7, what="seven records")
    # THEN they came as 3 + 3 + 1, in write order
    assert keys(handlers.calls_of("SmallBatchFunction")) == [written[0:3], written[3:6], written[6:]]


def test_stream_report_batch_item_failures_resumes_from_the_lowest_failed_record(cloud_factory, handlers):
    # GIVEN five records, the third reported failed the first time it is seen
    cloud = cloud_factory(STREAM_TEMPLATE, start_event_sources=False)
    tag = uuid.uuid4().hex[:6]
    written = [f"{tag}-{index}" for index in range(5)]
    put_items(cloud, [{"pk": key, "mode": "fail-once" if index == 2 else "ok"} for index, key in enumerate(written)])
    # WHEN the mapping with ReportBatchItemFailures processes them
    (source,) = cloud.start_wiring(only={"PartialFunction"})
    wait_until(lambda: source.counters.get("records_done") == 5, what="all records done")
    # THEN the retry started at the failed record: the two before it were not sent again
    assert keys(handlers.calls_of("PartialFunction")) == [written, written[2:]]
    assert source.counters["retries"] == 1


def test_stream_bisect_isolates_the_poison_record(cloud_factory, handlers):
    # GIVEN four records, the third makes the handler raise; bisect on, one retry, an on-failure queue
    cloud = cloud_factory(STREAM_TEMPLATE, start_event_sources=False)
    put_items(cloud, [{"pk": "a"}, {"pk": "b"}, {"pk": "poison", "mode": "raise"}, {"pk": "d"}])
    # WHEN the mapping processes them
    (source,) = cloud.start_wiring(only={"BisectFunction"})
    failure = receive_all(cloud.stack.client("sqs"), cloud.stack.ref("FailureQueue"), timeout=10)
    wait_until(lambda: source.counters.get("records_done") == 3, what="the good records done")
    # THEN the batch was halved until the poison record stood alone; it was retried once, then reported alone
    assert keys(handlers.calls_of("BisectFunction")) == [
        ["a", "b", "poison", "d"], ["a", "b"], ["poison", "d"], ["poison"], ["poison"], ["d"]]
    info = json.loads(failure[0]["Body"])
    poison_sequence = handlers.calls_of("BisectFunction")[3]["Records"][0]["dynamodb"]["SequenceNumber"]
    assert info["DDBStreamBatchInfo"]["batchSize"] == 1
    assert info["DDBStreamBatchInfo"]["startSequenceNumber"] == info["DDBStreamBatchInfo"]["endSequenceNumber"] == poison_sequence
    assert info["requestContext"]["approximateInvokeCount"] == 2


def test_stream_bounded_retries_then_an_on_failure_record_and_processing_carries_on(cloud_factory, handlers):
    # GIVEN a batch with a poison record, MaximumRetryAttempts 2 and an SQS on-failure destination
    cloud = cloud_factory(STREAM_TEMPLATE, start_event_sources=False)
    put_items(cloud, [{"pk": "poison", "mode": "raise"}, {"pk": "b"}])
    # WHEN the mapping processes it, and a record is written after the failure was reported
    (source,) = cloud.start_wiring(only={"BoundedRetryFunction"})
    failure = receive_all(cloud.stack.client("sqs"), cloud.stack.ref("FailureQueue"), timeout=10)
    put_items(cloud, [{"pk": "after"}])
    wait_until(lambda: source.counters.get("records_done") == 1, what="the later record")
    # THEN the batch was invoked 1 + 2 times, then reported, then the next record was processed
    calls = handlers.calls_of("BoundedRetryFunction")
    assert keys(calls) == [["poison", "b"]] * 3 + [["after"]]
    # AND the on-failure record has Lambda's shape
    info = json.loads(failure[0]["Body"])
    shard_id = cloud.stack.client("dynamodbstreams").describe_stream(
        StreamArn=cloud.stack.stream_arn("ItemsTable"))["StreamDescription"]["Shards"][0]["ShardId"]
    sequences = [record["dynamodb"]["SequenceNumber"] for record in calls[0]["Records"]]
    iso_seconds = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
    assert set(info) == {"requestContext", "responseContext", "version", "timestamp", "DDBStreamBatchInfo"}
    assert info["requestContext"]["functionArn"] == cloud.runtime.function_arn("BoundedRetryFunction")
    assert info["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["requestContext"]["approximateInvokeCount"] == 3
    assert re.fullmatch(r"[0-9a-f-]{36}", info["requestContext"]["requestId"])
    assert info["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert info["version"] == "1.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", info["timestamp"])
    batch = info["DDBStreamBatchInfo"]
    assert (batch["shardId"], batch["batchSize"], batch["streamArn"]) == (shard_id, 2, cloud.stack.stream_arn("ItemsTable"))
    assert (batch["startSequenceNumber"], batch["endSequenceNumber"]) == (sequences[0], sequences[1])
    assert iso_seconds.match(batch["approximateArrivalOfFirstRecord"]) and iso_seconds.match(batch["approximateArrivalOfLastRecord"])
    # AND the local cloud's stats show the failed invocations
    assert cloud.stats()["functions"]["BoundedRetryFunction"]["errors"] == 3


def test_stream_latest_starts_after_what_is_already_on_the_stream(cloud_factory, handlers):
    # GIVEN a record written before the mapping starts
    cloud = cloud_factory(STREAM_TEMPLATE, start_event_sources=False)
    put_items(cloud, [{"pk": "before"}])
    # WHEN a LATEST mapping has started and another record is written
    (source,) = cloud.start_wiring(only={"LatestFunction"})
    wait_until(lambda: source.shards and all(shard.iterator for shard in source.shards.values()), what="the iterators")
    put_items(cloud, [{"pk": "after"}])
    wait_until(lambda: handlers.calls_of("LatestFunction"), what="a delivery")
    time.sleep(0.5)
    # THEN only the later record is delivered
    assert keys(handlers.calls_of("LatestFunction")) == [["after"]]


def test_stream_batches_of_a_shard_are_processed_one_at_a_time_in_order(cloud_factory, handlers):
    # GIVEN a running mapping (BatchSize 3) while 30 records are written one after another
    cloud = cloud_factory(STREAM_TEMPLATE, start_event_sources=False)
    cloud.start_wiring(only={"SmallBatchFunction"})
    written = [f"k{index:02d}" for index in range(30)]
    writer = threading.Thread(target=put_items, args=(cloud, [{"pk": key} for key in written]))
    writer.start()
    writer.join()
    # WHEN all have been delivered
    wait_until(lambda: sum(map(len, keys(handlers.calls_of("SmallBatchFunction")))) == 30, what="thirty records")
    # THEN they arrived in write order, in batches of at most 3, never two invocations at once
    calls = handlers.calls_of("SmallBatchFunction")
    assert [key for batch in keys(calls) for key in batch] == written
    assert max(map(len, keys(calls))) <= 3
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for event in calls for r in event["Records"]]
    assert sequences == sorted(sequences)
    assert handlers.max_concurrency() == 1


def test_settle_returns_once_the_stream_consumer_has_seen_every_record_and_caught_up_follows_new_ones(
        cloud_factory, handlers):
    # GIVEN 30 records (0.2 s of work each) on the stream before its mapping (BatchSize 3) starts
    cloud = cloud_factory(STREAM_TEMPLATE, start_event_sources=False)
    written = [f"s{index:02d}" for index in range(30)]
    put_items(cloud, [{"pk": key, "mode": "slow"} for key in written])
    (source,) = cloud.start_wiring(only={"SmallBatchFunction"})
    delivered = lambda: [key for batch in keys(handlers.calls_of("SmallBatchFunction")) for key in batch]  # noqa: E731
    # WHEN the cloud settles with too little time, then with enough
    assert cloud.settle(timeout=1) is None
    waited = cloud.settle(timeout=60)
    # THEN it came back only after every record was delivered, and the source says it has caught up
    assert waited is not None and delivered() == written
    assert source.caught_up.is_set()
    # AND a record written later clears it until that record, too, has been delivered
    put_items(cloud, [{"pk": "late", "mode": "slow"}])
    wait_until(lambda: not source.caught_up.is_set() or "late" in delivered(), what="the late record seen")
    assert cloud.settle(timeout=30) is not None and delivered()[-1] == "late"


# -- schedules and unsupported wiring ------------------------------------------------------------

def test_schedules_run_at_the_template_rate_divided_by_speed_with_their_input(cloud_factory, handlers):
    # GIVEN rate(1 minute) and rate(2 minutes) schedules, two disabled ones, at speed 60
    cloud = cloud_factory(SCHEDULE_TEMPLATE, speed=60)
    # WHEN the schedules have run a few times
    wait_until(lambda: len(handlers.calls_of("TickFunction")) >= 3, timeout=30, what="three ticks")
    sources = list(cloud.sources)
    cloud.stop_wiring()
    # THEN the enabled schedules run every 60 s / 60 and 120 s / 60, and the disabled ones have no source
    periods = {source.function_id: source.period for source in sources}
    assert periods == {"TickFunction": 1.0, "NoInputTickFunction": 2.0}
    # AND each run got the schedule's Input as its event, {} where there is none
    assert all(event == {"source": "tick"} for event in handlers.calls_of("TickFunction"))
    assert handlers.calls_of("NoInputTickFunction")[0] == {}
    assert handlers.calls_of("PausedTickFunction") == handlers.calls_of("LegacyTickFunction") == []


def test_a_schedule_fires_at_start_then_every_period_and_does_not_burst_after_a_slow_run(cloud_factory, handlers):
    # GIVEN a 1-second schedule on the real runtime, on a clock the test moves, whose second run takes 2.5 s
    cloud = cloud_factory(SCHEDULE_TEMPLATE, speed=60, start_event_sources=False)
    now, fired = [0.0], []

    def sleep(seconds: float) -> None:
        now[0] += seconds
        if len(fired) >= 4:
            source.stop()

    class TimedSchedule(ScheduleSource):
        def invoke(self, event, request_id=None):
            fired.append(now[0])
            if len(fired) == 2:
                now[0] += 2.5
            return super().invoke(event, request_id)

    source = TimedSchedule(cloud.runtime, "TickFunction", "Tick", 1.0, {"source": "tick"},
                           clock=lambda: now[0], sleep=sleep)
    # WHEN it runs until four runs have fired
    source.run()
    # THEN it fired at start and a period later; after the slow run it fired at once, then on the new beat
    assert fired == [0.0, 1.0, 3.5, 4.5]
    assert handlers.calls_of("TickFunction") == [{"source": "tick"}] * 4


@pytest.mark.parametrize("event, message", [
    ({"Type": "ScheduleV2", "Properties": {"ScheduleExpression": "cron(0 12 * * ? *)"}}, r"Nightly\.Events\.Run.*rate"),
    ({"Type": "SNS", "Properties": {"Topic": "arn:aws:sns:us-east-1:123456789012:t"}}, r"Nightly\.Events\.Run.*SNS"),
])
def test_wiring_the_local_cloud_cannot_emulate_is_refused_at_start(cloud_factory, tmp_path, event, message):
    # GIVEN a function with a cron schedule or an SNS event
    template = {
        "Resources": {"Nightly": {"Type": "AWS::Serverless::Function", "Properties": {
            "CodeUri": str(FIXTURES / "handlers"), "Handler": "localcloud_fixture_handlers.tick",
            "Events": {"Run": event}}}},
    }
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps(template))
    # WHEN the local cloud starts THEN it refuses, naming the function's event
    with pytest.raises(EventSourceError, match=message):
        cloud_factory(path)


def test_filter_patterns_follow_lambdas_rules():
    # GIVEN patterns using each rule kind
    def passes(pattern: dict, record: dict) -> bool:
        return matches_any(compile_filters({"Filters": [{"Pattern": json.dumps(pattern)}]}), record)

    record = {"eventName": "MODIFY", "n": 7, "none": None, "tags": ["a", "b"], "dynamodb": {"NewImage": {
        "status": {"S": "paid"}, "channel": {"S": "shopify"}}}}
    # THEN exact strings, numbers and null, prefix/suffix, numeric ranges, exists, anything-but and nesting match as in AWS
    assert passes({"eventName": ["INSERT", "MODIFY"]}, record)
    assert not passes({"eventName": ["INSERT"]}, record)
    assert passes({"n": [7]}, record) and not passes({"n": ["7"]}, record)
    assert passes({"none": [None]}, record) and not passes({"missing": [None]}, record)
    assert passes({"dynamodb": {"NewImage": {"channel": {"S": [{"prefix": "shop"}]}}}}, record)
    assert passes({"dynamodb": {"NewImage": {"channel": {"S": [{"suffix": "ify"}]}}}}, record)
    assert passes({"n": [{"numeric": [">", 5, "<=", 7]}]}, record)
    assert not passes({"n": [{"numeric": [">", 7]}]}, record)
    assert passes({"missing": [{"exists": False}]}, record) and not passes({"n": [{"exists": False}]}, record)
    assert passes({"eventName": [{"anything-but": ["REMOVE"]}]}, record)
    assert not passes({"eventName": [{"anything-but": "MODIFY"}]}, record)
    assert not passes({"missing": [{"anything-but": "x"}]}, record)
    assert passes({"tags": ["b"]}, record)
    assert passes({"dynamodb": {"NewImage": {"status": {"S": ["paid"]}}}, "eventName": ["MODIFY"]}, record)
    assert not passes({"dynamodb": {"NewImage": {"status": {"S": ["paid"]}}}, "eventName": ["INSERT"]}, record)
    # AND no filters means everything passes; a malformed pattern is refused
    assert matches_any([], record)
    with pytest.raises(FilterPatternError):
        compile_filters({"Filters": [{"Pattern": '{"eventName": "INSERT"}'}]})
    with pytest.raises(FilterPatternError):
        compile_filters({"Filters": [{"Pattern": '{"n": [{"numeric": ["~", 1]}]}'}]})


def test_reserved_concurrency_throttles_an_overlapping_invocation_like_lambda(cloud_factory, handlers):
    from omsdev.localcloud.lambda_runtime import FunctionThrottledError

    # GIVEN a function with ReservedConcurrentExecutions 1, busy with one invocation
    cloud = cloud_factory(SCHEDULE_TEMPLATE, start_event_sources=False)
    handlers.GATE.clear()
    first = threading.Thread(target=cloud.invoke, args=("SingleFunction", {"n": 1}))
    first.start()
    wait_until(lambda: len(handlers.calls_of("SingleFunction")) == 1, timeout=5, what="the first invocation")
    try:
        # WHEN a second invocation arrives THEN it is refused as TooManyRequestsException, never run
        with pytest.raises(FunctionThrottledError, match="TooManyRequestsException"):
            cloud.invoke("SingleFunction", {"n": 2})
        assert len(handlers.calls_of("SingleFunction")) == 1
        # AND a caller that overlaps on purpose (to prove a lease) can still say so
        handlers.GATE.set()
        assert cloud.invoke("SingleFunction", {"n": 3}, bypass_concurrency=True) == {"released": True}
    finally:
        handlers.GATE.set()
        first.join()
    # AND once the first has finished, the next invocation runs
    assert cloud.invoke("SingleFunction", {"n": 4}) == {"released": True}
    assert cloud.stats()["functions"]["SingleFunction"]["throttles"] == 1


def test_an_invocation_that_outlives_its_timeout_fails_as_task_timed_out(cloud_factory, handlers):
    from omsdev.localcloud.lambda_runtime import FunctionTimeoutError

    cloud = cloud_factory(SCHEDULE_TEMPLATE, start_event_sources=False)
    # GIVEN a function with Timeout 1: a quick call succeeds and sees its remaining time
    quick = cloud.invoke("SleepyFunction", {"seconds": 0.1})
    assert 0 < quick["remaining_ms"] <= 900
    # WHEN a call runs past its timeout THEN the caller gets Lambda's failure, not the result
    with pytest.raises(FunctionTimeoutError, match="Task timed out after 1.00 seconds"):
        cloud.invoke("SleepyFunction", {"seconds": 1.2})
    assert cloud.stats()["functions"]["SleepyFunction"]["timeouts"] == 1

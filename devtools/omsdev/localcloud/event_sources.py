"""The template's function Events, emulated with AWS semantics, one daemon thread per mapping.

- Schedule / ScheduleV2: `rate(N unit)`; the Input JSON is the event ({} without Input); State
  DISABLED / Enabled false respected; the period is divided by `speed`; the first run is at start.
- SQS: ReceiveMessage up to BatchSize, Lambda's SQS event shape, FilterCriteria (non-matching
  messages are deleted, as Lambda does), ReportBatchItemFailures (only the listed records stay); a
  raised error or an invalid partial-batch response keeps the whole batch. Kept messages come back
  after the queue's visibility timeout; the endpoint's own RedrivePolicy handling moves them to the
  DLQ after maxReceiveCount (moto and LocalStack both do, checked by the component tests).
- DynamoDB: see `stream_source`.
- Api / HttpApi: routes recorded for an HTTP front (`api_routes`), not served here.
Any other event type is refused by name when the sources are built.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omsdev.localcloud.filters import compile_filters, matches_any
from omsdev.localcloud.lambda_runtime import LambdaRuntime

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(second|seconds|minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# System attributes Lambda puts into a record's `attributes` when SQS returns them.
_SQS_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
    "SequenceNumber", "MessageGroupId", "MessageDeduplicationId", "AWSTraceHeader", "DeadLetterQueueSourceArn",
)


class EventSourceError(ValueError):
    """The template asks for event wiring the local cloud cannot emulate; the message names it."""


def rate_seconds(expression: str) -> float:
    match = _RATE.match(str(expression).strip())
    if not match:
        raise EventSourceError(f"the local cloud runs rate(...) schedules only, not {expression!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


class EventSource(threading.Thread):
    """A daemon thread feeding one function; `stop()` then `join()` ends it promptly."""

    kind = "event source"

    def __init__(self, runtime: LambdaRuntime, function_id: str, event_id: str):
        super().__init__(name=f"{self.kind}-{function_id}-{event_id}", daemon=True)
        self.runtime, self.function_id, self.event_id = runtime, function_id, event_id
        self.stopping = threading.Event()
        self.counters: dict[str, int] = {"invocations": 0, "errors": 0}
        self.last_error: str | None = None

    def stop(self) -> None:
        self.stopping.set()

    def count(self, name: str, amount: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + amount

    def stats(self) -> dict:
        return {"kind": self.kind, "function": self.function_id, "event": self.event_id,
                **self.counters, "last_error": self.last_error}

    def invoke(self, event: dict, request_id: str | None = None) -> tuple[bool, Any]:
        """(True, result) or (False, error): a handler error never ends the mapping's thread."""
        self.count("invocations")
        try:
            return True, self.runtime.invoke(self.function_id, event, request_id=request_id)
        except Exception as error:  # noqa: BLE001 - Lambda reports it; the mapping carries on
            self.count("errors")
            self.last_error = f"{type(error).__name__}: {error}"
            return False, error


class ScheduleSource(EventSource):
    """Fires at start, then every `period` seconds; a late run is not made up with a burst.

    `clock` and `sleep` are the thread's time (monotonic seconds, and a wait that ends early on stop):
    tests replace them to check the timing without depending on the machine's load.
    """

    kind = "schedule"

    def __init__(self, runtime: LambdaRuntime, function_id: str, event_id: str, period: float, event: Any,
                 *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], Any] | None = None):
        super().__init__(runtime, function_id, event_id)
        self.period, self.event = period, event
        self.clock, self.sleep = clock, sleep or self.stopping.wait

    def run(self) -> None:
        next_run = self.clock()
        while not self.stopping.is_set():
            self.invoke(json.loads(json.dumps(self.event)))  # a fresh copy per run
            next_run = max(next_run + self.period, self.clock())
            self.sleep(max(next_run - self.clock(), 0.0))


def sqs_record(message: dict, queue_arn: str, region: str) -> dict:
    """One received message in the shape Lambda's SQS event source delivers it."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {key: attributes[key] for key in _SQS_RECORD_ATTRIBUTES if key in attributes},
        "messageAttributes": {
            name: _lambda_message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _lambda_message_attribute(value: dict) -> dict:
    encode = lambda raw: base64.b64encode(raw).decode() if isinstance(raw, (bytes, bytearray)) else raw
    shaped = {}
    if "StringValue" in value:
        shaped["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        shaped["binaryValue"] = encode(value["BinaryValue"])
    shaped["stringListValues"] = list(value.get("StringListValues", []))
    shaped["binaryListValues"] = [encode(item) for item in value.get("BinaryListValues", [])]
    shaped["dataType"] = value["DataType"]
    return shaped


def _filter_document(record: dict) -> dict:
    """What SQS filters see: the record with its body parsed when the body is JSON."""
    try:
        return {**record, "body": json.loads(record["body"])}
    except (TypeError, ValueError):
        return record


class SqsSource(EventSource):
    kind = "sqs"

    def __init__(self, runtime: LambdaRuntime, function_id: str, event_id: str, *, sqs, queue_url: str,
                 queue_arn: str, properties: dict, region: str, wait_seconds: int = 1):
        super().__init__(runtime, function_id, event_id)
        self.sqs, self.queue_url, self.queue_arn, self.region = sqs, queue_url, queue_arn, region
        self.batch_size = int(properties.get("BatchSize", 10))
        self.window = float(properties.get("MaximumBatchingWindowInSeconds", 0))
        if self.batch_size > 10 and not self.window:
            raise EventSourceError(f"{function_id}.{event_id}: BatchSize above 10 needs MaximumBatchingWindowInSeconds")
        self.reports_failures = "ReportBatchItemFailures" in properties.get("FunctionResponseTypes", [])
        self.filters = compile_filters(properties.get("FilterCriteria"))
        self.wait_seconds = wait_seconds  # short long-polls so stop() takes effect quickly

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                messages = self._receive_batch()
                if messages:
                    self._deliver(messages)
            except Exception as error:  # noqa: BLE001 - endpoint restarting or stopping: try again
                self.last_error = f"SQS polling failed: {type(error).__name__}: {error}"
                self.stopping.wait(0.5)

    def _receive_batch(self) -> list[dict]:
        batch: list[dict] = []
        deadline = time.monotonic() + self.window
        while len(batch) < self.batch_size and not self.stopping.is_set():
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=min(self.batch_size - len(batch), 10),
                WaitTimeSeconds=self.wait_seconds if not batch else 0,
                MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"],
            )
            received = response.get("Messages", [])
            batch.extend(received)
            if not batch or time.monotonic() >= deadline:
                break
            if not received:
                self.stopping.wait(min(0.2, max(deadline - time.monotonic(), 0)))
        return batch

    def _deliver(self, messages: list[dict]) -> None:
        records = [sqs_record(message, self.queue_arn, self.region) for message in messages]
        if self.filters:
            kept = [r for r in records if matches_any(self.filters, _filter_document(r))]
            dropped = [r for r in records if r not in kept]
            self.count("filtered_out", len(dropped))
            self._delete_messages(dropped)  # Lambda deletes messages no filter matches
            records = kept
        if not records:
            return
        self.count("batches")
        self.count("records", len(records))
        ok, response = self.invoke({"Records": records})
        if not ok:
            return  # the whole batch stays; it comes back after the visibility timeout
        failed = self._failed_ids(response, records) if self.reports_failures else set()
        if failed is None:
            self.count("invalid_responses")
            self.last_error = f"invalid partial batch response: {response!r}"
            return
        self.count("records_failed", len(failed))
        self._delete_messages([r for r in records if r["messageId"] not in failed])

    @staticmethod
    def _failed_ids(response: Any, records: list[dict]) -> set[str] | None:
        """Ids listed in batchItemFailures; None when the response is invalid (whole batch fails)."""
        if response is None or (isinstance(response, dict) and not response.get("batchItemFailures")):
            return set()
        if not isinstance(response, dict) or not isinstance(response["batchItemFailures"], list):
            return None
        known = {r["messageId"] for r in records}
        failed = set()
        for item in response["batchItemFailures"]:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not identifier or identifier not in known:
                return None
            failed.add(identifier)
        return failed

    def _delete_messages(self, records: list[dict]) -> None:
        for start in range(0, len(records), 10):
            chunk = records[start:start + 10]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(index), "ReceiptHandle": record["receiptHandle"]} for index, record in enumerate(chunk)
            ])


@dataclass(frozen=True)
class ApiRoute:
    """One Api / HttpApi event: what a local HTTP front must route to which function."""

    method: str
    path: str
    function_id: str
    event_id: str
    api_type: str  # "Api" (REST, payload 1.0) or "HttpApi"
    api_id: str | None = None
    authorizer: str | None = None  # the event's Auth.Authorizer ("NONE": open despite a DefaultAuthorizer)


def api_routes(functions, resolver) -> list[ApiRoute]:
    routes = []
    for spec in functions:
        for event_id, event in spec.events.items():
            if event.get("Type") not in ("Api", "HttpApi"):
                continue
            props = resolver.resolve(event.get("Properties", {})) or {}
            api = props.get("RestApiId") or props.get("ApiId")
            authorizer = (props.get("Auth") or {}).get("Authorizer")
            routes.append(ApiRoute(str(props.get("Method", "ANY")).upper(), props.get("Path", "$default"),
                                   spec.logical_id, event_id, event["Type"], api if isinstance(api, str) else None,
                                   str(authorizer) if authorizer else None))
    return routes


def _queue_url(stack, arn: str) -> str:
    logical_id = stack.logical_id_for_arn(arn)
    if logical_id:
        return stack.ref(logical_id)
    account, name = arn.split(":")[4], arn.split(":")[5]
    return stack.client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def build_sources(runtime: LambdaRuntime, stack, speed: float = 1.0) -> list[EventSource]:
    """One (not yet started) source per enabled function event in the template."""
    from omsdev.localcloud.stream_source import DynamoDBStreamSource

    if speed <= 0:
        raise EventSourceError("speed must be positive")
    resolver = stack.resolver
    sources: list[EventSource] = []
    for spec in runtime.functions.values():
        for event_id, event in spec.events.items():
            kind = event.get("Type")
            where = f"{spec.logical_id}.Events.{event_id}"
            if kind in ("Api", "HttpApi"):
                continue
            props = resolver.resolve(event.get("Properties", {})) or {}
            enabled = props.get("Enabled", True) not in (False, "false") and props.get("State", "ENABLED") != "DISABLED"
            if kind in ("Schedule", "ScheduleV2"):
                expression = props.get("ScheduleExpression") or props.get("Schedule")
                try:
                    period = rate_seconds(expression) / speed
                except EventSourceError as error:
                    raise EventSourceError(f"{where}: {error}") from None
                payload = json.loads(props["Input"]) if props.get("Input") else {}
                if enabled:
                    sources.append(ScheduleSource(runtime, spec.logical_id, event_id, period, payload))
            elif kind == "SQS":
                arn = props["Queue"]
                source = SqsSource(runtime, spec.logical_id, event_id, sqs=stack.client("sqs"), queue_url=_queue_url(stack, arn),
                                   queue_arn=arn, properties=props, region=stack.region)
                if enabled:
                    sources.append(source)
            elif kind == "DynamoDB":
                destination = (props.get("DestinationConfig") or {}).get("OnFailure")
                source = DynamoDBStreamSource(runtime, spec.logical_id, event_id, streams=stack.client("dynamodbstreams"),
                                              stream_arn=props["Stream"], properties=props, region=stack.region,
                                              on_failure=_on_failure_sender(stack, destination, where))
                if enabled:
                    sources.append(source)
            else:
                raise EventSourceError(f"{where}: the local cloud does not emulate {kind} events")
    return sources


def _on_failure_sender(stack, destination: dict | None, where: str):
    """A callable sending one on-failure record to the mapping's SQS queue or SNS topic (or None)."""
    if not destination or not destination.get("Destination"):
        return None
    arn = destination["Destination"]
    kind = destination.get("Type") or arn.split(":")[2].upper()
    if kind == "SQS":
        url = _queue_url(stack, arn)
        return lambda record: stack.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(record))
    if kind == "SNS":
        return lambda record: stack.client("sns").publish(TopicArn=arn, Message=json.dumps(record))
    raise EventSourceError(f"{where}: on-failure destination type {kind} is not emulated (SQS or SNS)")

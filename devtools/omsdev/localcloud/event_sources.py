"""The template's event wiring, emulated with AWS semantics in threads.

- Schedule / ScheduleV2: `rate(N unit)`, the Input JSON as the event, State/Enabled respected,
  the period divided by `speed`; the first run happens at start.
- SQS: ReceiveMessage up to BatchSize (<= 10), Lambda's SQS event shape, ReportBatchItemFailures
  (only listed records stay), a raised error keeps the whole batch; kept messages come back after
  the queue's visibility timeout and the queue's own RedrivePolicy moves them to its DLQ.
DynamoDB stream mappings follow with the first stream consumer (allocation, issue 4).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time

from omsdev.localcloud.runtime import LambdaRuntime
from omsdev.localcloud.template import REGION

_RATE = re.compile(r"^rate\((\d+)\s+(second|seconds|minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float:
    match = _RATE.match(expression.strip())
    if not match:
        raise ValueError(f"the local cloud runs rate(...) schedules only, not {expression!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


class EventSource(threading.Thread):
    def __init__(self, name: str):
        super().__init__(name=name, daemon=True)
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()


class ScheduleSource(EventSource):
    def __init__(self, runtime: LambdaRuntime, function_id: str, period: float, event: dict):
        super().__init__(f"schedule-{function_id}")
        self.runtime, self.function_id, self.period, self.event = runtime, function_id, period, event

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                self.runtime.invoke(self.function_id, dict(self.event))
            except Exception:  # noqa: BLE001 - like EventBridge: a failed run does not stop the schedule
                pass
            self.stopping.wait(max(self.period - (time.monotonic() - started), 0))


def sqs_record(message: dict, queue_arn: str) -> dict:
    """One message in the shape Lambda's SQS event source delivers it."""
    attributes = {
        key: message.get("MessageAttributes", {}).get(key)
        for key in message.get("MessageAttributes", {})
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            key: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": value.get("BinaryListValues", []),
                "dataType": value["DataType"],
            }
            for key, value in attributes.items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


class SqsSource(EventSource):
    def __init__(self, runtime: LambdaRuntime, function_id: str, sqs, queue_url: str, queue_arn: str, properties: dict):
        super().__init__(f"sqs-{function_id}")
        self.runtime, self.function_id, self.sqs = runtime, function_id, sqs
        self.queue_url, self.queue_arn = queue_url, queue_arn
        self.batch_size = min(int(properties.get("BatchSize", 10)), 10)
        self.reports_failures = "ReportBatchItemFailures" in properties.get("FunctionResponseTypes", [])
        self.enabled = properties.get("Enabled", True) is not False
        self.batches = 0

    def run(self) -> None:
        while self.enabled and not self.stopping.is_set():
            try:
                messages = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=self.batch_size,
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:  # noqa: BLE001 - the endpoint is shutting down or briefly unavailable
                self.stopping.wait(0.5)
                continue
            if messages:
                self._deliver(messages)

    def _deliver(self, messages: list[dict]) -> None:
        self.batches += 1
        event = {"Records": [sqs_record(message, self.queue_arn) for message in messages]}
        try:
            response = self.runtime.invoke(self.function_id, event)
        except Exception:  # noqa: BLE001 - Lambda keeps the whole batch: it returns after the visibility timeout
            return
        failed = set()
        if self.reports_failures:
            try:
                failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
            except (AttributeError, KeyError, TypeError):
                return  # an invalid partial-batch response fails the whole batch
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start:start + 10])]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)


def build_sources(runtime: LambdaRuntime, stack, speed: float) -> list[EventSource]:
    """One emulated event source per function event in the template."""
    resolver = stack.resolver
    sources: list[EventSource] = []
    for spec in runtime.functions.values():
        for event_id, event in spec.events.items():
            kind = event["Type"]
            properties = resolver.resolve(event.get("Properties", {}))
            if kind in ("Schedule", "ScheduleV2"):
                if properties.get("State") == "DISABLED" or properties.get("Enabled") is False:
                    continue
                payload = json.loads(properties["Input"]) if properties.get("Input") else {}
                period = rate_seconds(properties["ScheduleExpression"]) / speed
                sources.append(ScheduleSource(runtime, spec.logical_id, period, payload))
            elif kind == "SQS":
                arn = properties["Queue"]
                queue_id = next(key for (key, attr), value in stack.attributes.items() if attr == "Arn" and value == arn)
                sources.append(
                    SqsSource(runtime, spec.logical_id, stack.client("sqs"), stack.ref(queue_id), arn, properties)
                )
            else:
                raise ValueError(f"{spec.logical_id}.{event_id}: the local cloud does not emulate {kind} events yet")
    return sources

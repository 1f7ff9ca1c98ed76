"""A DynamoDB stream event source mapping, emulated through the endpoint's DynamoDB Streams API.

Like Lambda's poller: one iterator per shard (parents before children), StartingPosition
TRIM_HORIZON / LATEST, records in Lambda's DynamoDB event shape, FilterCriteria applied to each
record (non-matching records are skipped and the position moves past them), batches of BatchSize
gathered for up to MaximumBatchingWindowInSeconds, and strictly one batch at a time per shard, in
order. Failure handling:
- ReportBatchItemFailures: records before the lowest failed SequenceNumber are done; the rest is
  retried. An invalid response (unknown or empty itemIdentifier) fails the whole batch.
- A raised error (or a timeout) fails the whole batch; with BisectBatchOnFunctionError the batch is
  split in two and each half retried on its own (splitting does not use up retries).
- MaximumRetryAttempts / MaximumRecordAgeInSeconds (-1 = unbounded) end the retries; the batch is
  then reported to DestinationConfig.OnFailure (SQS or SNS) in Lambda's on-failure record shape and
  processing carries on after it.
ParallelizationFactor above 1 is accepted and processed with 1 (a stricter order than AWS gives).
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from omsdev.localcloud.event_sources import EventSource, EventSourceError
from omsdev.localcloud.filters import compile_filters, matches_any
from omsdev.localcloud.lambda_runtime import LambdaRuntime

_INVALID = object()


def lambda_stream_record(raw: dict, stream_arn: str, region: str) -> dict:
    """A GetRecords record reshaped as Lambda delivers it (eventVersion 1.1, epoch seconds, base64 binaries)."""
    source = raw["dynamodb"]
    created = source.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        created = created.timestamp()
    dynamodb: dict[str, Any] = {"ApproximateCreationDateTime": int(created or time.time())}
    for key in ("Keys", "NewImage", "OldImage"):
        if key in source:
            dynamodb[key] = _json_safe(source[key])
    dynamodb.update({key: source[key] for key in ("SequenceNumber", "SizeBytes", "StreamViewType") if key in source})
    record = {
        "eventID": raw.get("eventID") or uuid.uuid4().hex,
        "eventName": raw["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": raw.get("awsRegion") or region,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }
    if raw.get("userIdentity"):
        record["userIdentity"] = raw["userIdentity"]
    return record


def _json_safe(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, set, tuple)):
        return [_json_safe(item) for item in value]
    return value


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


@dataclass
class _Shard:
    shard_id: str
    parent_id: str | None
    iterator: str | None = None
    buffer: list = field(default_factory=list)
    buffered_since: float = 0.0
    closed: bool = False  # GetRecords returned no NextShardIterator

    @property
    def finished(self) -> bool:
        return self.closed and not self.buffer


@dataclass
class _Pending:
    records: list
    invocations: int = 0
    request_id: str | None = None
    function_error: bool = False


class DynamoDBStreamSource(EventSource):
    kind = "dynamodb"

    def __init__(self, runtime: LambdaRuntime, function_id: str, event_id: str, *, streams, stream_arn: str,
                 properties: dict, region: str, on_failure: Callable[[dict], Any] | None = None,
                 poll_interval: float = 0.25):
        super().__init__(runtime, function_id, event_id)
        where = f"{function_id}.Events.{event_id}"
        self.streams, self.stream_arn, self.region = streams, stream_arn, region
        self.starting_position = properties.get("StartingPosition")
        if self.starting_position not in ("TRIM_HORIZON", "LATEST"):
            raise EventSourceError(f"{where}: StartingPosition must be TRIM_HORIZON or LATEST, not {self.starting_position!r}")
        if properties.get("TumblingWindowInSeconds"):
            raise EventSourceError(f"{where}: TumblingWindowInSeconds is not emulated")
        self.batch_size = int(properties.get("BatchSize", 100))
        if not 1 <= self.batch_size <= 10000:
            raise EventSourceError(f"{where}: BatchSize must be 1..10000")
        self.window = float(properties.get("MaximumBatchingWindowInSeconds", 0))
        self.reports_failures = "ReportBatchItemFailures" in properties.get("FunctionResponseTypes", [])
        self.bisect = properties.get("BisectBatchOnFunctionError") in (True, "true")
        self.max_retries = int(properties.get("MaximumRetryAttempts", -1))
        self.max_age = int(properties.get("MaximumRecordAgeInSeconds", -1))
        self.filters = compile_filters(properties.get("FilterCriteria"))
        self.on_failure = on_failure
        self.poll_interval = poll_interval
        self.shards: dict[str, _Shard] = {}
        self._discovered_at = 0.0
        # Set when a round found nothing new on any shard and nothing waiting: the function has seen
        # every record written so far (Lambda's IteratorAge of 0). Cleared as soon as records come.
        self.caught_up = threading.Event()

    # -- polling ----------------------------------------------------------------------------
    def run(self) -> None:
        first, idle_rounds = True, 0
        while not self.stopping.is_set():
            try:
                if first or time.monotonic() - self._discovered_at > 5:
                    self._discover(self.starting_position if first else "TRIM_HORIZON")
                    first = False
                progressed = any([self._step(shard) for shard in self._ready_shards()])
                failed = False
            except Exception as error:  # noqa: BLE001 - endpoint restarting or stopping: try again
                self.last_error = f"stream polling failed: {type(error).__name__}: {error}"
                progressed, failed = False, True
            # Lambda polls a shard 4 times a second; idle, back off to once a second (every moto
            # GetRecords leaves a shard iterator behind in the server's memory).
            waiting = any(shard.buffer for shard in self.shards.values())  # a batching window is open
            if progressed or waiting or failed:
                self.caught_up.clear()
            else:
                self.caught_up.set()
            idle_rounds = 0 if progressed or waiting else idle_rounds + 1
            if not progressed:
                self.stopping.wait(min(self.poll_interval * 2 ** max(min(idle_rounds - 1, 2), 0), 1.0))

    def _discover(self, position: str) -> None:
        request = {"StreamArn": self.stream_arn}
        while True:
            description = self.streams.describe_stream(**request)["StreamDescription"]
            for shard in description.get("Shards", []):
                if shard["ShardId"] not in self.shards:
                    found = _Shard(shard["ShardId"], shard.get("ParentShardId"))
                    if position == "LATEST":  # fixed now, not when the shard is first read
                        found.iterator = self._iterator(found.shard_id, "LATEST")
                    self.shards[found.shard_id] = found
            if not description.get("LastEvaluatedShardId"):
                break
            request["ExclusiveStartShardId"] = description["LastEvaluatedShardId"]
        self._discovered_at = time.monotonic()

    def _iterator(self, shard_id: str, kind: str) -> str:
        return self.streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard_id,
                                               ShardIteratorType=kind)["ShardIterator"]

    def _ready_shards(self) -> list[_Shard]:
        """Unfinished shards whose parent (if we know it) is finished: children after parents."""
        return [
            shard for shard in self.shards.values()
            if not shard.finished and (shard.parent_id not in self.shards or self.shards[shard.parent_id].finished)
        ]

    def _step(self, shard: _Shard) -> bool:
        """Read what is new on the shard and process one batch when one is due; True if work was done."""
        if not shard.closed and len(shard.buffer) < self.batch_size:
            self._fetch(shard)
        if not shard.buffer:
            return False
        window_open = self.window and time.monotonic() - shard.buffered_since < self.window
        if len(shard.buffer) < self.batch_size and window_open and not shard.closed:
            return False
        batch, shard.buffer = shard.buffer[:self.batch_size], shard.buffer[self.batch_size:]
        shard.buffered_since = time.monotonic()
        self._process(shard, batch)
        return True

    def _fetch(self, shard: _Shard) -> None:
        if shard.iterator is None:
            shard.iterator = self._iterator(shard.shard_id, "TRIM_HORIZON")
        response = self.streams.get_records(ShardIterator=shard.iterator, Limit=1000)
        shard.iterator = response.get("NextShardIterator")
        shard.closed = shard.iterator is None
        records = [lambda_stream_record(raw, self.stream_arn, self.region) for raw in response.get("Records", [])]
        kept = [record for record in records if matches_any(self.filters, record)]
        self.count("filtered_out", len(records) - len(kept))
        if kept and not shard.buffer:
            shard.buffered_since = time.monotonic()
        shard.buffer.extend(kept)

    # -- one batch, with Lambda's retry rules ------------------------------------------------
    def _process(self, shard: _Shard, records: list[dict]) -> None:
        self.count("batches")
        queue = deque([_Pending(records)])
        while queue and not self.stopping.is_set():
            pending = queue[0]
            self._drop_expired(shard, pending)
            if not pending.records:
                queue.popleft()
                continue
            pending.request_id = str(uuid.uuid4())
            ok, result = self.invoke({"Records": pending.records}, pending.request_id)
            pending.invocations += 1
            failed_at = self._lowest_failure(result, pending.records) if ok and self.reports_failures else None
            if ok and failed_at is None:
                self.count("records_done", len(pending.records))
                queue.popleft()
                continue
            if failed_at is _INVALID:
                self.count("invalid_responses")
                self.last_error = f"invalid partial batch response: {result!r}"
            elif ok:
                self.count("records_done", failed_at)
                pending.records = pending.records[failed_at:]  # resume from the lowest failed record
            whole_batch_failed = not ok or failed_at is _INVALID
            pending.function_error = not ok
            if whole_batch_failed and self.bisect and len(pending.records) > 1:
                queue.popleft()
                middle = len(pending.records) // 2
                queue.extendleft([_Pending(pending.records[middle:]), _Pending(pending.records[:middle])])
                self.count("bisections")
                continue
            if 0 <= self.max_retries < pending.invocations:
                self._report(shard, pending, "RetryAttemptsExhausted")
                queue.popleft()
                continue
            self.count("retries")
            self.stopping.wait(min(0.1 * 2 ** (pending.invocations - 1), 5.0))

    @staticmethod
    def _lowest_failure(result: Any, records: list[dict]) -> Any:
        """Index of the lowest failed record; None if all succeeded; _INVALID for an invalid response."""
        if result is None or (isinstance(result, dict) and not result.get("batchItemFailures")):
            return None
        if not isinstance(result, dict) or not isinstance(result["batchItemFailures"], list):
            return _INVALID
        positions = {record["dynamodb"]["SequenceNumber"]: index for index, record in enumerate(records)}
        indexes = []
        for item in result["batchItemFailures"]:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not identifier or identifier not in positions:
                return _INVALID
            indexes.append(positions[identifier])
        return min(indexes)

    def _drop_expired(self, shard: _Shard, pending: _Pending) -> None:
        if self.max_age < 0:
            return
        oldest_allowed = time.time() - self.max_age
        expired = [r for r in pending.records if r["dynamodb"]["ApproximateCreationDateTime"] < oldest_allowed]
        if expired:
            pending.records = [r for r in pending.records if r not in expired]
            self._report(shard, _Pending(expired, pending.invocations, pending.request_id, pending.function_error),
                         "RecordAgeExceeded")

    def _report(self, shard: _Shard, pending: _Pending, condition: str) -> None:
        """Discard the batch; tell the on-failure destination what was discarded (not the records)."""
        self.count("records_discarded", len(pending.records))
        if self.on_failure is None:
            return
        try:
            self.on_failure(self.failure_record(shard.shard_id, pending, condition))
        except Exception as error:  # noqa: BLE001 - like Lambda: a failed destination does not stop the shard
            self.count("on_failure_errors")
            self.last_error = f"on-failure destination: {type(error).__name__}: {error}"
            return
        self.count("on_failure_sent")

    def failure_record(self, shard_id: str, pending: _Pending, condition: str) -> dict:
        records = pending.records
        response: dict[str, Any] = {}
        if pending.invocations:
            response = {"statusCode": 200, "executedVersion": "$LATEST"}
            if pending.function_error:
                response["functionError"] = "Unhandled"
        return {
            "requestContext": {
                "requestId": pending.request_id or str(uuid.uuid4()),
                "functionArn": self.runtime.function_arn(self.function_id),
                "condition": condition,
                "approximateInvokeCount": pending.invocations,
            },
            "responseContext": response,
            "version": "1.0",
            "timestamp": _iso_now(),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(records[0]["dynamodb"]["ApproximateCreationDateTime"]),
                "approximateArrivalOfLastRecord": _iso(records[-1]["dynamodb"]["ApproximateCreationDateTime"]),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }

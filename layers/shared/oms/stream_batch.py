"""What every Orders-stream consumer does around its record handler: a BatchProcessor per
invocation (partial batch failures: the stream retries from the first failed record), the
outcomes counted by state, one EMF document of those counts per invocation, and the invocation
counted, succeeded or failed, for the availability KPI."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from oms.availability import count_attempt
from oms.observability import publish_counts


def process_stream_batch(event: dict, context: LambdaContext, record_handler: Callable[[DynamoDBRecord], object], *,
                         metric_prefix: str, finally_: Callable[[], None] | None = None) -> PartialItemFailureResponse:
    """`record_handler` returns an outcome dict with a `state`, or a list of them. Per invocation: the
    processor and the counts hold this batch's state, and the local cloud may run several invocations
    of one function in this process at once (Lambda: one per container). `finally_` runs after the
    batch, failed or not, before the counts are published."""
    states: Counter = Counter()
    failed = True

    def counted(record: DynamoDBRecord):
        result = record_handler(record)
        states.update(outcome["state"] for outcome in (result if isinstance(result, list) else [result]))
        return result

    try:
        response = process_partial_response(event=event, record_handler=counted,
                                            processor=BatchProcessor(event_type=EventType.DynamoDBStreams),
                                            context=context)
        states["failed"] += len(response["batchItemFailures"])
        failed = bool(response["batchItemFailures"])
        return response
    finally:
        if finally_ is not None:
            finally_()
        publish_counts(metric_prefix, states)
        count_attempt(failed=failed)


"""Retry consumer: re-polls failed windows from the RetryQueue (SQS, partial batch responses).

Each record is one FailedWindowMessage. Ingesting a window is idempotent by itself (dedup);
scheduling the next retry is not, so the record handler is made idempotent with Powertools
Idempotency keyed by the window and its attempt number: a redelivered record never starts a
second retry chain.
"""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from oms.adapters import aws
from oms.availability import count_attempt
from oms.observability import logger, metrics
from oms.services.dependencies import poll_ports, poll_settings
from oms.services.ingest import retry_window
from oms.services.messages import FailedWindowMessage
from oms.settings import get_settings

# One retry attempt of one window, whichever SQS delivery carries it.
idempotency_config = IdempotencyConfig(
    event_key_jmespath="[channel, shop_id, window_start, window_end, failed_attempts]",
    expires_after_seconds=24 * 3600,
)


@lru_cache(maxsize=1)
def _retry_once():
    """The idempotent retry, built at first use so settings are read lazily."""
    persistence = DynamoDBPersistenceLayer(
        table_name=get_settings().idempotency_table, boto3_client=aws.client("dynamodb")
    )

    @idempotent_function(data_keyword_argument="message", persistence_store=persistence, config=idempotency_config)
    def retry(message: dict) -> dict:
        return _retry(FailedWindowMessage.model_validate(message))

    return retry


def record_handler(record: SQSRecord) -> dict:
    message = FailedWindowMessage.model_validate_json(record.body)
    return _retry_once()(message=message.model_dump(mode="json"))


def _retry(message: FailedWindowMessage) -> dict:
    settings = get_settings()
    ports = poll_ports(settings, message.channel, deadline=None)
    outcome = retry_window(message, ports, poll_settings(settings))
    logger.info(
        "failed window retried",
        extra={
            "channel": message.channel,
            "shop_id": message.shop_id,
            "window_start": message.window_start.isoformat(),
            "window_end": message.window_end.isoformat(),
            "failed_attempts": outcome.message.failed_attempts,
            "state": outcome.state,
            "reason": outcome.message.last_reason if outcome.state != "recovered" else None,
        },
    )
    metrics.add_metric(name=f"RetryWindows_{outcome.state}", unit="Count", value=1)
    count_attempt(message.channel, failed=outcome.state != "recovered")  # inside the idempotent call: once
    return {"state": outcome.state}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    idempotency_config.register_lambda_context(context)
    # A processor per invocation: it holds the batch's state, and the local cloud may run several
    # invocations of one function in this process at once (Lambda runs one per container).
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

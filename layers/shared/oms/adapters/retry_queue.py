"""RetryQueue and its dead-letter queue: failed poll windows with their backoff and reasons."""

from __future__ import annotations

from oms.adapters import aws
from oms.services.messages import FailedWindowMessage


def _attributes(message: FailedWindowMessage) -> dict:
    # Attributes let an operator filter the DLQ by channel and see the reason without parsing bodies.
    return {
        "channel": {"DataType": "String", "StringValue": message.channel},
        "shop_id": {"DataType": "String", "StringValue": message.shop_id},
        "failed_attempts": {"DataType": "Number", "StringValue": str(message.failed_attempts)},
        "reason": {"DataType": "String", "StringValue": message.last_reason[:1000]},
    }


class SqsRetryQueue:
    def __init__(self, queue_url: str, dead_letter_url: str):
        self._queue_url = queue_url
        self._dead_letter_url = dead_letter_url
        self._sqs = aws.client("sqs")

    def schedule(self, message: FailedWindowMessage, delay_seconds: int) -> None:
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=message.model_dump_json(),
            DelaySeconds=delay_seconds,
            MessageAttributes=_attributes(message),
        )

    def dead_letter(self, message: FailedWindowMessage) -> None:
        self._sqs.send_message(
            QueueUrl=self._dead_letter_url,
            MessageBody=message.model_dump_json(),
            MessageAttributes=_attributes(message),
        )

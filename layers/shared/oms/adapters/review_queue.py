"""The manual-review SQS queue: what the engines could not decide, with a machine-readable reason."""

from __future__ import annotations

from oms.adapters import aws
from oms.services.messages import ReviewMessage


class SqsReviewQueue:
    def __init__(self, queue_url: str):
        self._url = queue_url
        self._sqs = aws.client("sqs")

    def send(self, message: ReviewMessage) -> None:
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=message.model_dump_json(),
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": message.reason},
                "source": {"DataType": "String", "StringValue": message.source},
            },
        )

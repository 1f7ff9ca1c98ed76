"""SQS queue attributes for the local cloud's moto, with message counts computed only when read.

moto builds a queue's whole attribute dictionary, including the three approximate message counts
(each a pass over every message), whenever any attribute is looked at, and SendMessage looks at
them over ten times. A queue that holds thousands of messages (a review queue after a promotion)
then makes every send tens of milliseconds slower and the endpoint's one interpreter busy. Here the
dictionary is a mapping whose counts are computed on access; every other attribute is what moto
gives, read the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from moto.core.utils import camelcase_to_underscores
from moto.sqs.models import Queue

_COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible")


def install() -> None:
    """Replace moto's `Queue.attributes` in this process (idempotent)."""
    Queue.attributes = property(_attributes)  # type: ignore[assignment]


class _QueueAttributes(Mapping):
    def __init__(self, queue: Queue, others: dict[str, Any]):
        self._queue = queue
        self._others = others

    def __getitem__(self, name: str) -> Any:
        if name in _COUNTS:
            return getattr(self._queue, camelcase_to_underscores(name))
        return self._others[name]

    def __iter__(self) -> Iterator[str]:
        yield from _COUNTS
        yield from self._others

    def __len__(self) -> int:
        return len(_COUNTS) + len(self._others)


def _attributes(queue: Queue) -> Mapping:
    names = [name for name in queue.BASE_ATTRIBUTES if name not in _COUNTS]
    names += queue.FIFO_ATTRIBUTES if queue.fifo_queue else []
    names += queue.KMS_ATTRIBUTES if queue.kms_master_key_id else []
    others: dict[str, Any] = {name: getattr(queue, camelcase_to_underscores(name)) for name in names}
    if queue.policy:
        others["Policy"] = queue.policy
    if queue.redrive_policy:
        others["RedrivePolicy"] = json.dumps(queue.redrive_policy)
    return _QueueAttributes(queue, {name: str(value).lower() if isinstance(value, bool) else value
                                    for name, value in others.items()})

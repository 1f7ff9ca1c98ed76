"""boto3 clients, created once per container and pointed at OMS_AWS_ENDPOINT_URL when it is set."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from functools import lru_cache

import boto3
from botocore.config import Config

from oms.settings import get_settings

# Standard retry mode retries throttling and 5xx with jittered backoff; pool sized for the
# per-page write fan-out in services.ingest.
_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=20,
    max_pool_connections=32,
)


BATCH_GET_LIMIT = 100  # keys per BatchGetItem


@lru_cache(maxsize=None)
def client(service: str):
    return boto3.client(service, endpoint_url=get_settings().aws_endpoint_url, config=_CONFIG)


def conditional(write, **request) -> dict | None:
    """A conditional DynamoDB write (`client.put_item`, `update_item`, `delete_item` and the request):
    its response, or None when its ConditionExpression did not hold. Other errors raise."""
    from botocore.exceptions import ClientError

    try:
        return write(**request)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return None
        raise


def batch_get(table: str, keys: list[dict], **read) -> Iterator[dict]:
    """Every item of `keys` that exists in `table`: one BatchGetItem per 100 keys, unprocessed keys
    asked again. `read`: ProjectionExpression, ExpressionAttributeNames, ConsistentRead."""
    dynamodb = client("dynamodb")
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        request = {table: {"Keys": keys[start:start + BATCH_GET_LIMIT], **read}}
        while request:
            response = dynamodb.batch_get_item(RequestItems=request)
            yield from response["Responses"].get(table, [])
            request = response.get("UnprocessedKeys") or {}


def landed(write, token_attribute: str, token: str, **request) -> bool:
    """A conditional write whose item carries `token` in `token_attribute`: True when it is done - now, or
    by an earlier attempt of this same call whose answer was lost (botocore retried a write that had
    landed, the retry met our own write: the failed condition finds our token). False when another
    writer's change made the condition fail. Other errors raise."""
    from botocore.exceptions import ClientError

    try:
        write(**request, ReturnValuesOnConditionCheckFailure="ALL_OLD")
        return True
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        return (error.response.get("Item") or {}).get(token_attribute) == {"S": token}


def update_once(update_item, token_attribute: str, *, UpdateExpression: str, ConditionExpression: str,  # noqa: N803
                ExpressionAttributeValues: dict, **request) -> bool:
    """A conditional UpdateItem (its expression opening with SET) stamped with a token of this call, so
    a retry of it does not apply twice and reads as done (see `landed`)."""
    token = uuid.uuid4().hex
    return landed(update_item, token_attribute, token,
                  UpdateExpression=f"SET {token_attribute} = :call_token, " + UpdateExpression.removeprefix("SET "),
                  ConditionExpression=f"({ConditionExpression}) AND (attribute_not_exists({token_attribute}) "
                                      f"OR {token_attribute} <> :call_token)",
                  ExpressionAttributeValues={**ExpressionAttributeValues, ":call_token": {"S": token}}, **request)

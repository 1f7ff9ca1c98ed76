"""The Verifications table: one SMS verification per held order, its hashed code and its attempts.

Key `verification_id` (S). A verification is `sending` (code stored, SMS not yet confirmed sent),
`sent`, then `verified`, `failed` (too many wrong codes, or the SMS provider refused the number) or
`expired`. While it is open (sending/sent) it carries `open` = "open" and `expires_at`: the sparse
index `open_by_expiry` lists the open ones by expiry, so the expiry sweep never scans. `purge_at`
(the TTL attribute) removes a closed verification 30 days after it expired.

Every change is a conditional UpdateItem on the state (and the attempt count), so two concurrent
code submissions can never use more than the allowed attempts or both settle the verification.
Each write carries a token of its call (`write_token`; a submission's goes into `attempt_tokens`):
when its answer is lost after the write and botocore's retry meets our own write, the retry does not
apply again, and its failed condition is read as done, not as another caller's change.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError

from oms.adapters import aws
from oms.domain.order import format_utc

OPEN_INDEX = "open_by_expiry"
PURGE_AFTER = timedelta(days=30)
TOKEN = "write_token"


@dataclass(frozen=True)
class Verification:
    verification_id: str
    order_key: str
    state: str
    code_hash: str
    attempts: int
    max_attempts: int
    expires_at: datetime
    route: str
    phone_masked: str
    sends: int


class VerificationsTable:
    def __init__(self, table_name: str):
        self.name = table_name
        self._dynamodb = aws.client("dynamodb")

    def get(self, verification_id: str) -> Verification | None:
        item = self._dynamodb.get_item(TableName=self.name, Key={"verification_id": {"S": verification_id}},
                                       ConsistentRead=True).get("Item")
        return None if item is None else _verification(item)

    def create(self, verification_id: str, order_key: str, code_hash: str, expires_at: datetime, max_attempts: int,
               route: str, phone_masked: str, now: datetime) -> bool:
        """A new verification in state `sending`. False: the order has one already (a redelivery)."""
        item = {
            "verification_id": {"S": verification_id}, "order_key": {"S": order_key}, "state": {"S": "sending"},
            "code_hash": {"S": code_hash}, "attempts": {"N": "0"}, "max_attempts": {"N": str(max_attempts)},
            "expires_at": {"N": str(int(expires_at.timestamp()))}, "open": {"S": "open"}, "route": {"S": route},
            "phone_masked": {"S": phone_masked}, "sends": {"N": "0"}, "created_at": {"S": format_utc(now)},
            "purge_at": {"N": str(int((expires_at + PURGE_AFTER).timestamp()))}, TOKEN: {"S": uuid.uuid4().hex},
        }
        return aws.landed(self._dynamodb.put_item, TOKEN, item[TOKEN]["S"], TableName=self.name, Item=item,
                          ConditionExpression="attribute_not_exists(verification_id)")

    def rearm(self, verification_id: str, code_hash: str, expires_at: datetime) -> bool:
        """A new code for an open verification (resend; or a send a crash left unconfirmed): the old code
        stops working, attempts start again. False when it is no longer open."""
        return self._update(
            verification_id,
            "SET code_hash = :hash, expires_at = :expires, attempts = :zero, #state = :sending, purge_at = :purge "
            "REMOVE attempt_tokens",
            "#state IN (:sending, :sent)",
            {":hash": {"S": code_hash}, ":expires": {"N": str(int(expires_at.timestamp()))}, ":zero": {"N": "0"},
             ":sending": {"S": "sending"}, ":sent": {"S": "sent"},
             ":purge": {"N": str(int((expires_at + PURGE_AFTER).timestamp()))}})

    def reopen(self, verification_id: str, code_hash: str, expires_at: datetime, max_attempts: int) -> bool:
        """A reviewer's resend after the verification failed or expired: a new code, attempts from zero,
        open again (state `sending` until the SMS is out). False when it was verified meanwhile."""
        return self._update(
            verification_id,
            "SET code_hash = :hash, expires_at = :expires, attempts = :zero, max_attempts = :max, #state = :sending, "
            "#open = :open, purge_at = :purge REMOVE closed_at, attempt_tokens",
            "attribute_exists(verification_id) AND #state <> :verified",
            {":hash": {"S": code_hash}, ":expires": {"N": str(int(expires_at.timestamp()))}, ":zero": {"N": "0"},
             ":max": {"N": str(max_attempts)}, ":sending": {"S": "sending"}, ":open": {"S": "open"},
             ":verified": {"S": "verified"}, ":purge": {"N": str(int((expires_at + PURGE_AFTER).timestamp()))}},
            names={"#open": "open"})

    def mark_sent(self, verification_id: str, message_id: str) -> bool:
        return self._update(verification_id, "SET #state = :sent, message_id = :id ADD sends :one",
                            "#state = :sending",
                            {":sent": {"S": "sent"}, ":sending": {"S": "sending"}, ":id": {"S": message_id},
                             ":one": {"N": "1"}})

    def use_attempt(self, verification_id: str, now: datetime) -> int | None:
        """Count one code submission; the attempts used so far (this one's number), or None when the
        verification is not open, has expired, or has no attempt left (read it to tell which).

        The submission's token is appended to `attempt_tokens` (reset with the attempts): a retry whose
        first attempt landed is not counted again, and the list tells that one's number - the attempts
        now, less those appended after it."""
        token = uuid.uuid4().hex
        try:
            response = self._dynamodb.update_item(
                TableName=self.name, Key={"verification_id": {"S": verification_id}},
                UpdateExpression="ADD attempts :one SET attempt_tokens = list_append(if_not_exists(attempt_tokens, "
                                 ":none), :mine)",
                ConditionExpression="#state = :sent AND attempts < max_attempts AND expires_at > :now "
                                    "AND NOT contains(attempt_tokens, :token)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":one": {"N": "1"}, ":sent": {"S": "sent"},
                                           ":now": {"N": str(int(now.timestamp()))}, ":none": {"L": []},
                                           ":mine": {"L": [{"S": token}]}, ":token": {"S": token}},
                ReturnValues="UPDATED_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return _attempt_of(token, error.response.get("Item") or {})
        return int(response["Attributes"]["attempts"]["N"])

    def close(self, verification_id: str, state: str, now: datetime) -> bool:
        """Settle an open verification (verified, failed, expired); False when it was settled already."""
        return self._update(verification_id, "SET #state = :state, closed_at = :now REMOVE #open",
                            "#state IN (:sending, :sent)",
                            {":state": {"S": state}, ":now": {"S": format_utc(now)}, ":sending": {"S": "sending"},
                             ":sent": {"S": "sent"}}, names={"#open": "open"})

    def expired_open(self, now: datetime, limit: int = 100) -> list[Verification]:
        """Open verifications whose expiry has passed, oldest first (the sparse index: no scan)."""
        response = self._dynamodb.query(
            TableName=self.name, IndexName=OPEN_INDEX, Limit=limit,
            KeyConditionExpression="#open = :open AND expires_at <= :now",
            ExpressionAttributeNames={"#open": "open"},
            ExpressionAttributeValues={":open": {"S": "open"}, ":now": {"N": str(int(now.timestamp()))}})
        return [_verification(item) for item in response["Items"]]

    def _update(self, verification_id: str, expression: str, condition: str, values: dict, *,
                names: dict | None = None) -> bool:
        return aws.update_once(self._dynamodb.update_item, TOKEN, TableName=self.name,
                               Key={"verification_id": {"S": verification_id}}, UpdateExpression=expression,
                               ConditionExpression=condition,
                               ExpressionAttributeNames={"#state": "state", **(names or {})},
                               ExpressionAttributeValues=values)


def _attempt_of(token: str, item: dict) -> int | None:
    """The number of the submission with `token` if the item (as the failed condition found it) counted it."""
    tokens = [entry.get("S") for entry in item.get("attempt_tokens", {}).get("L", [])]
    if token not in tokens:
        return None
    return int(item["attempts"]["N"]) - (len(tokens) - 1 - tokens.index(token))


def _verification(item: dict) -> Verification:
    return Verification(
        verification_id=item["verification_id"]["S"], order_key=item["order_key"]["S"], state=item["state"]["S"],
        code_hash=item["code_hash"]["S"], attempts=int(item["attempts"]["N"]),
        max_attempts=int(item["max_attempts"]["N"]),
        expires_at=datetime.fromtimestamp(int(item["expires_at"]["N"]), UTC), route=item["route"]["S"],
        phone_masked=item["phone_masked"]["S"], sends=int(item.get("sends", {"N": "0"})["N"]),
    )

"""SMS verification of held orders (SPEC C7): send a one-time code, check what the buyer types.

- `SmsVerification.start`: called by the risk assessment for a `verify` decision. No SMS where the
  platform encrypts the phone (or there is none): the caller sends the order to review instead.
  The route is the channel's (Aliyun SMS for the Chinese platforms, SNS for the others).
- `confirm_code`: the public endpoint's use-case. At most `max_attempts` submissions (5) per code,
  counted atomically; the right code before expiry -> verified -> the order's hold is cleared;
  the last wrong attempt -> failed -> review queue.
- `expire_verifications`: the scheduled sweep; an open verification past its expiry (30 min by
  default) -> expired -> review queue. Nothing held is ever released silently.

Codes are 6 random digits, stored only as HMAC-SHA256 under a secret key (a stolen table does not
give the codes away: without the key even all 10^6 candidates cannot be tested). The verification
id is an HMAC of the order key under the same key: the same order always gets the same id (a
redelivered record finds its verification), and nobody can derive an order's id to lock it out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from oms.domain.risk import RiskDecision
from oms.observability import logger, mask_phone
from oms.ports import Clock, ReviewQueue, SmsRejectedError, SmsSender
from oms.services.messages import ReviewMessage

CODE_DIGITS = 6


class VerificationStore(Protocol):
    def get(self, verification_id: str): ...
    def create(self, verification_id: str, order_key: str, code_hash: str, expires_at: datetime, max_attempts: int,
               route: str, phone_masked: str, now: datetime) -> bool: ...
    def rearm(self, verification_id: str, code_hash: str, expires_at: datetime) -> bool: ...
    def mark_sent(self, verification_id: str, message_id: str) -> bool: ...
    def use_attempt(self, verification_id: str, now: datetime) -> int | None: ...
    def close(self, verification_id: str, state: str, now: datetime) -> bool: ...
    def expired_open(self, now: datetime, limit: int = 100) -> list: ...


class OrderRiskStatus(Protocol):
    def settle_verification(self, order_key: str, risk_status: str, outcome: dict, now: datetime) -> bool: ...


@dataclass
class VerificationPorts:
    store: VerificationStore
    orders: OrderRiskStatus
    review: ReviewQueue
    senders: Callable[[str], SmsSender]  # route ("aliyun" | "sns") -> sender
    route_of: Callable[[str], str]  # channel -> route
    secret_key: Callable[[], bytes]
    clock: Clock
    valid_for: timedelta = timedelta(minutes=30)
    max_attempts: int = 5
    confirm_url: str = ""  # the public endpoint's base URL, for the link in the SMS ("" = none)


@dataclass(frozen=True)
class ConfirmOutcome:
    status: str  # verified | already_verified | wrong_code | failed | expired | closed | not_found
    attempts_left: int = 0


def verification_id(key: bytes, order_key: str) -> str:
    return hmac.new(key, f"verification#{order_key}".encode(), hashlib.sha256).hexdigest()[:32]


def code_hash(key: bytes, verification: str, code: str) -> str:
    return hmac.new(key, f"{verification}#{code}".encode(), hashlib.sha256).hexdigest()


class SmsVerification:
    """The `Verifications` port of the risk assessment."""

    def __init__(self, ports: VerificationPorts):
        self._ports = ports

    def start(self, order, decision: RiskDecision | None = None, *, again: bool = False) -> str | None:
        """Send a code for the order (`order.ship_to.phone`); the verification id, or None when no SMS
        can reach the buyer. `again`: a reviewer's resend - a closed (failed, expired) verification
        opens again with a new code."""
        ship_to = order.ship_to
        phone = getattr(ship_to, "phone", None)
        if not phone or getattr(ship_to, "encrypted", False):
            return None
        ports = self._ports
        key = ports.secret_key()
        vid = verification_id(key, order.order_key)
        code = _new_code()
        now = ports.clock.now()
        expires = now + ports.valid_for
        route = ports.route_of(order.channel)
        hashed = code_hash(key, vid, code)
        if not ports.store.create(vid, order.order_key, hashed, expires, ports.max_attempts, route, mask_phone(phone),
                                  now):
            existing = ports.store.get(vid)
            if again:
                if not ports.store.reopen(vid, hashed, expires, ports.max_attempts):
                    return None  # verified meanwhile: nothing to resend
            elif existing.state != "sending":
                return vid  # sent before (a redelivery): the buyer has a code already
            # A crash between storing and sending: a new code, so the one never confirmed sent is void.
            elif not ports.store.rearm(vid, hashed, expires):
                return vid
        link = f"{ports.confirm_url.rstrip('/')}/verifications/{vid}" if ports.confirm_url else None
        try:
            sent = ports.senders(route).send_code(phone, code, link=link)
        except SmsRejectedError as error:
            logger.warning("SMS refused; the order goes to review", extra={"order_key": order.order_key,
                                                                          "route": route, "error": str(error)})
            ports.store.close(vid, "failed", now)
            return None
        ports.store.mark_sent(vid, sent.message_id)
        logger.info("verification code sent", extra={"order_key": order.order_key, "route": route,
                                                     "phone": mask_phone(phone), "verification_id": vid})
        return vid


def confirm_code(verification: str, code: str, ports: VerificationPorts) -> ConfirmOutcome:
    now = ports.clock.now()
    current = ports.store.get(verification)
    if current is None:
        return ConfirmOutcome("not_found")
    if current.state == "verified":
        _settle_verified(current, ports, now)  # a crash may have stopped the first confirm before it
        return ConfirmOutcome("already_verified")
    if current.state != "sent":
        return ConfirmOutcome("closed")
    if now >= current.expires_at:
        _expire(current, ports, now)
        return ConfirmOutcome("expired")
    attempts = ports.store.use_attempt(verification, now)
    if attempts is None:  # settled, expired or out of attempts in the meantime
        latest = ports.store.get(verification)
        if latest.state == "verified":
            _settle_verified(latest, ports, now)
            return ConfirmOutcome("already_verified")
        if latest.state == "sent" and now >= latest.expires_at:
            _expire(latest, ports, now)
            return ConfirmOutcome("expired")
        return ConfirmOutcome("closed")
    if hmac.compare_digest(code_hash(ports.secret_key(), verification, code), current.code_hash):
        if ports.store.close(verification, "verified", now):
            _settle_verified(replace(current, attempts=attempts), ports, now)
            logger.info("order verified by SMS", extra={"order_key": current.order_key, "attempts": attempts})
            return ConfirmOutcome("verified")
        return ConfirmOutcome("closed")
    left = current.max_attempts - attempts
    if left <= 0 and ports.store.close(verification, "failed", now):
        _to_review(current, ports, now, "verification_failed",
                   f"{current.max_attempts} wrong codes for the SMS verification")
        return ConfirmOutcome("failed")
    return ConfirmOutcome("wrong_code", attempts_left=max(left, 0))


def _settle_verified(current, ports: VerificationPorts, now: datetime) -> None:
    """The order of a verified code is cleared. Repeated on every later confirm of the same code: if the
    function died between closing the verification and this, the order would otherwise stay
    `verifying` for good (a verified verification never expires nor reopens). Conditional on the
    order still being `verifying`, so a repeat changes nothing."""
    ports.orders.settle_verification(current.order_key, "cleared",
                                     {"outcome": "verified", "attempts": current.attempts, "at": now.isoformat()}, now)


def expire_verifications(ports: VerificationPorts, limit: int = 100) -> list[str]:
    """Every open verification past its expiry -> expired, its order to review. The order keys."""
    now = ports.clock.now()
    expired = []
    for current in ports.store.expired_open(now, limit):
        if _expire(current, ports, now):
            expired.append(current.order_key)
    return expired


def _expire(current, ports: VerificationPorts, now: datetime) -> bool:
    if not ports.store.close(current.verification_id, "expired", now):
        return False
    _to_review(current, ports, now, "verification_expired",
               f"the SMS code was not confirmed within {int(ports.valid_for.total_seconds() // 60)} minutes")
    return True


def _to_review(current, ports: VerificationPorts, now: datetime, reason: str, detail: str) -> None:
    # Message first: a crash after it is repaired by the order still being `verifying` (the sweep or
    # a reviewer sees it); SQS is at-least-once anyway and review items are keyed by order.
    ports.review.send(ReviewMessage(order_key=current.order_key, source="verification", reason=reason, detail=detail,
                                    at=now, facts={"verification_id": current.verification_id,
                                                   "attempts": current.attempts, "route": current.route,
                                                   "phone": current.phone_masked}))
    ports.orders.settle_verification(current.order_key, "in_review", {"outcome": reason, "at": now.isoformat()}, now)
    logger.info("verification not confirmed; the order goes to review",
                extra={"order_key": current.order_key, "reason": reason})


def _new_code() -> str:
    return f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"

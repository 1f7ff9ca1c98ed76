"""Wiring of the risk and verification use-cases to their adapters (kept apart from
`oms.services.dependencies`, so the risk and verify handlers do not import the channel clients)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from oms.adapters.clock import SystemClock
from oms.settings import Settings


def verification_ports(settings: Settings, *, clock=None, senders=None):
    """`senders`: route -> SmsSender; the real Aliyun and SNS senders unless a test gives others."""
    from oms.adapters.review_queue import SqsReviewQueue
    from oms.adapters.risk_decisions import RiskDecisionsTable
    from oms.adapters.secrets import secret_text
    from oms.adapters.sms import sms_route, sms_sender
    from oms.adapters.verifications_table import VerificationsTable
    from oms.services.verify import VerificationPorts

    @lru_cache(maxsize=2)
    def sender(route: str):
        return sms_sender(route, secrets_prefix=settings.secrets_prefix,
                          code_valid_minutes=settings.verification_code_minutes)

    return VerificationPorts(
        store=VerificationsTable(settings.verifications_table),
        orders=RiskDecisionsTable(settings.orders_table),
        review=SqsReviewQueue(settings.review_queue_url),
        senders=senders or sender,
        route_of=sms_route,
        secret_key=lambda: secret_text(settings.verification_key_secret).encode(),
        clock=clock or SystemClock(),
        valid_for=timedelta(minutes=settings.verification_code_minutes),
        max_attempts=settings.verification_max_attempts,
        confirm_url=settings.verification_confirm_url,
    )


def risk_ports(settings: Settings, *, clock=None, senders=None, rules=None):
    from oms.adapters.review_queue import SqsReviewQueue
    from oms.adapters.risk_aggregates_table import RiskAggregatesTable
    from oms.adapters.risk_decisions import RiskDecisionsTable
    from oms.adapters.risk_rules import RiskRulesParameter
    from oms.services.assess_risk import RiskPorts
    from oms.services.verify import SmsVerification

    clock = clock or SystemClock()
    return RiskPorts(
        aggregates=RiskAggregatesTable(settings.risk_aggregates_table),
        decisions=RiskDecisionsTable(settings.orders_table),
        review=SqsReviewQueue(settings.review_queue_url),
        verifications=SmsVerification(verification_ports(settings, clock=clock, senders=senders)),
        rules=rules or RiskRulesParameter(settings.risk_rules_parameter),
        clock=clock,
    )


def order_to_assess(image: dict):
    """The fields risk needs, from a stored order (a stream NewImage, deserialised)."""
    from oms.domain.order import ShipTo, parse_utc
    from oms.services.assess_risk import OrderToAssess

    ship_to = {key: value for key, value in (image.get("ship_to") or {}).items() if key in ShipTo.model_fields}
    # A paid order without any time is assessed as paid now (its windows end now).
    paid = image.get("paid_at") or image.get("created_at") or image.get("updated_at")
    return OrderToAssess(
        order_key=image["order_key"],
        channel=image["channel"],
        channel_order_id=str(image.get("channel_order_id", "")),
        buyer_id=image.get("buyer_id") or None,
        paid_at=parse_utc(paid) if paid else datetime.now(UTC),
        total=Decimal(str(image.get("total") or "0")),
        ship_to=ShipTo.model_validate(ship_to),
    )

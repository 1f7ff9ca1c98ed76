"""Which KPI events an order change makes (oms.domain.kpi_events): no mocks, plain images."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from oms.domain.kpi_events import order_events, quarantine_event

NOW = datetime(2026, 11, 11, 2, 30, tzinfo=UTC)
SHIP_BY = timedelta(hours=48)


def image(**fields) -> dict:
    base = {"order_key": "taobao#s1#42", "channel": "taobao", "status": "paid", "paid_at": "2026-11-11T02:00:00Z",
            "stored_at_ms": int(datetime(2026, 11, 11, 2, 0, 40, tzinfo=UTC).timestamp() * 1000),
            "last_written_at_ms": int(datetime(2026, 11, 11, 2, 0, 40, tzinfo=UTC).timestamp() * 1000)}
    return {**base, **fields}


def kinds(events) -> dict:
    return {event.kind: event for event in events}


def test_a_new_paid_order_is_stored_paid_and_measured():
    # WHEN an order is first stored paid, 40 s after it was paid
    events = kinds(order_events(None, image(), SHIP_BY, NOW))
    # THEN it is stored (that hour), paid (the hour paid) and its latency falls in the "<= 60 s" bucket
    assert set(events) == {"stored", "paid", "latency"}
    assert events["latency"].counters == (("latency_2", 1),) and events["latency"].seconds == 40
    assert events["paid"].at == datetime(2026, 11, 11, 2, 0, tzinfo=UTC)


def test_a_waiting_order_is_measured_when_it_gets_paid_not_when_stored():
    waiting = image(status="pending_payment", paid_at=None)
    assert set(kinds(order_events(None, waiting, SHIP_BY, NOW))) == {"stored"}
    paid = image(last_written_at_ms=int(datetime(2026, 11, 11, 2, 5, tzinfo=UTC).timestamp() * 1000))
    events = kinds(order_events(waiting, paid, SHIP_BY, NOW))
    assert set(events) == {"paid", "latency"} and events["latency"].seconds == 300


def test_allocation_counts_automatic_success_and_review_once_with_an_exception():
    old = image()
    allocated = kinds(order_events(old, image(fulfillment_status="allocated"), SHIP_BY, NOW))
    assert allocated["allocation"].counters == (("allocation_needed", 1), ("allocated_automatically", 1))
    reviewed = kinds(order_events(old, image(fulfillment_status="in_review"), SHIP_BY, NOW))
    assert reviewed["allocation"].counters == (("allocation_needed", 1), ("allocated_automatically", 0))
    assert reviewed["exception"].counters == (("exceptions", 1),)
    # an unrelated later change (already allocated before and after) is no new event
    assert order_events(image(fulfillment_status="allocated"), image(fulfillment_status="allocated", x="y"),
                        SHIP_BY, NOW) == []


def test_a_risk_hold_is_a_hold_and_review_or_block_is_also_an_exception():
    verifying = kinds(order_events(image(), image(risk_status="verifying"), SHIP_BY, NOW))
    assert set(verifying) == {"held"}
    escalated = kinds(order_events(image(risk_status="verifying"), image(risk_status="in_review"), SHIP_BY, NOW))
    assert set(escalated) == {"exception"}
    blocked = kinds(order_events(image(), image(risk_status="blocked"), SHIP_BY, NOW))
    assert set(blocked) == {"held", "exception"}
    assert order_events(image(), image(risk_status="cleared"), SHIP_BY, NOW) == []


def test_the_first_shipment_is_on_time_up_to_the_promise_and_late_after_it():
    on_time = image(fulfillment_status="shipped", shipped_at="2026-11-13T02:00:00Z")  # exactly 48 h
    event = kinds(order_events(image(fulfillment_status="allocated"), on_time, SHIP_BY, NOW))["shipped"]
    assert dict(event.counters) == {"orders_shipped": 1, "first_shipments_due": 1, "first_shipments_on_time": 1}
    late = image(fulfillment_status="shipped", shipped_at="2026-11-13T02:00:01Z")
    assert dict(kinds(order_events(image(), late, SHIP_BY, NOW))["shipped"].counters)["first_shipments_on_time"] == 0


def test_the_channel_saying_shipped_counts_at_its_own_time_and_backfills_count_too():
    shipped = image(status="shipped", updated_at="2026-11-12T08:00:00Z")
    event = kinds(order_events(image(), shipped, SHIP_BY, NOW))["shipped"]
    assert event.at == datetime(2026, 11, 12, 8, tzinfo=UTC)
    # an order first stored already shipped is stored, paid and shipped
    assert {"stored", "paid", "latency", "shipped"} <= set(kinds(order_events(None, shipped, SHIP_BY, NOW)))
    # shipped without a payment time (cannot be judged): shipped, but not due
    unpaid = kinds(order_events(image(paid_at=None), image(paid_at=None, status="shipped"), SHIP_BY, NOW))
    assert dict(unpaid["shipped"].counters) == {"orders_shipped": 1}


def test_unreadable_times_fall_back_instead_of_failing():
    events = kinds(order_events(None, image(stored_at_ms="soon", last_written_at_ms=None, paid_at="yesterday"),
                                SHIP_BY, NOW))
    assert events["stored"].at == NOW and "paid" not in events


def test_a_quarantined_order_counts_for_its_channel():
    event = quarantine_event("pdd#s9#77", NOW)
    assert (event.channel, event.kind, event.counters) == ("pdd", "quarantined", (("orders_quarantined", 1),))

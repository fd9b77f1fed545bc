from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from emberwatch.errors import DeliveryError
from emberwatch.models import Delivery
from emberwatch.outbox import (
    BROKEN_RECEIVER_RETRY,
    claim_due,
    enqueue,
    mark_expired,
    mark_failed,
    mark_sent,
    retry_delay,
)

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def add(engine, key="k1", channel="slack"):
    with Session(engine) as session:
        added = enqueue(session, dedup_key=key, channel=channel, now=NOW)
        session.commit()
    return added


def row(engine, key="k1") -> Delivery:
    with Session(engine) as session:
        return session.exec(select(Delivery).where(Delivery.dedup_key == key)).one()


def test_the_same_message_is_never_enqueued_twice(engine):
    assert add(engine) is True
    assert add(engine) is False


def test_a_claimed_row_is_not_claimed_again_while_its_lease_holds(engine):
    add(engine)
    first = claim_due(engine, NOW, LEASE, worker="a")
    second = claim_due(engine, NOW + timedelta(seconds=30), LEASE, worker="b")
    assert [c.attempts for c in first] == [1] and second == []


def test_a_worker_that_died_mid_send_loses_its_lease_to_another(engine):
    add(engine)
    claim_due(engine, NOW, LEASE, worker="a")
    later = claim_due(engine, NOW + LEASE + timedelta(seconds=1), LEASE, worker="b")
    assert len(later) == 1 and later[0].attempts == 2
    assert row(engine).leased_by == "b"


def test_sent_rows_are_never_claimed_again(engine):
    add(engine)
    (claimed,) = claim_due(engine, NOW, LEASE)
    mark_sent(engine, claimed.id, NOW)
    assert claim_due(engine, NOW + timedelta(hours=1), LEASE) == []
    assert row(engine).status == "sent"


def test_a_retry_is_never_sooner_than_retry_after(engine):
    add(engine)
    (claimed,) = claim_due(engine, NOW, LEASE)
    status = mark_failed(engine, claimed, DeliveryError("slack: 429", retry_after=120), NOW, 8)
    assert status == "pending"
    assert row(engine).next_attempt_at >= NOW + timedelta(seconds=120)
    assert claim_due(engine, NOW + timedelta(seconds=119), LEASE) == []
    assert len(claim_due(engine, NOW + timedelta(seconds=121), LEASE)) == 1


def test_invalid_blocks_are_retried_at_once_as_plain_text_and_only_once(engine):
    add(engine)
    (claimed,) = claim_due(engine, NOW, LEASE)
    mark_failed(engine, claimed, DeliveryError("x", plain_text_fallback=True), NOW, 8)
    (again,) = claim_due(engine, NOW, LEASE)
    assert again.payload["plain"] is True
    status = mark_failed(engine, again, DeliveryError("x", plain_text_fallback=True), NOW, 8)
    assert status == "pending" and row(engine).next_attempt_at > NOW


def test_a_permanent_failure_is_kept_as_failed_not_deleted(engine):
    add(engine)
    (claimed,) = claim_due(engine, NOW, LEASE)
    error = DeliveryError("slack: 400 invalid_token", permanent=True)
    assert mark_failed(engine, claimed, error, NOW, 8) == "failed"
    kept = row(engine)
    assert kept.status == "failed" and "invalid_token" in kept.last_error


def test_a_broken_receiver_keeps_its_deliveries_and_retries_them_later(engine):
    add(engine)
    (claimed,) = claim_due(engine, NOW, LEASE)
    error = DeliveryError("slack: 404 no_service", permanent=True, receiver_broken=True)
    assert mark_failed(engine, claimed, error, NOW, max_attempts=1) == "pending"
    kept = row(engine)
    assert kept.next_attempt_at == NOW + BROKEN_RECEIVER_RETRY and "no_service" in kept.last_error


def test_a_delivery_past_its_deadline_is_marked_expired_and_kept(engine):
    with Session(engine) as session:
        enqueue(session, dedup_key="late", channel="slack", now=NOW, deadline=timedelta(minutes=5))
        session.commit()
    (claimed,) = claim_due(engine, NOW + timedelta(minutes=10), LEASE)
    mark_expired(engine, claimed, NOW + timedelta(minutes=10))
    assert row(engine, "late").status == "expired"


def test_it_gives_up_after_max_attempts(engine):
    add(engine)
    when = NOW
    for _ in range(3):
        (claimed,) = claim_due(engine, when, LEASE)
        status = mark_failed(engine, claimed, DeliveryError("boom"), when, max_attempts=3)
        when = when + timedelta(hours=1)
    assert status == "failed"


@pytest.mark.parametrize(("attempts", "ceiling"), [(1, 2), (4, 16), (20, 1800)])
def test_retry_delay_is_capped_exponential_with_jitter(attempts, ceiling):
    delay = retry_delay(attempts, None).total_seconds()
    assert ceiling / 2 <= delay <= ceiling

import itertools
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlmodel import Session, select

from emberwatch.delivery import channel_broken, channel_healthy, deliver_due
from emberwatch.errors import DeliveryError
from emberwatch.models import ChannelHealth, Delivery
from emberwatch.outbox import (
    BROKEN_CHANNEL_RETRY,
    claim_due,
    enqueue,
    enqueue_message,
    mark_expired,
    mark_failed,
    mark_sent,
    release,
    retry_delay,
)
from tests.helpers import make_config

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
    # The lost send had no outcome: an ambiguous attempt, not one of max_attempts.
    assert [(c.attempts, c.ambiguous_attempts) for c in later] == [(1, 1)]
    assert row(engine).leased_by == "b"


def test_attempts_count_outcomes_and_a_lapsed_lease_counts_as_ambiguous_once(engine):
    add(engine)
    when = NOW
    for _ in range(7):  # seven sends that never learned their outcome
        assert len(claim_due(engine, when, LEASE)) == 1
        when += LEASE + timedelta(seconds=1)
    (claimed,) = claim_due(engine, when, LEASE)
    assert (claimed.attempts, claimed.ambiguous_attempts) == (1, 7)
    assert mark_failed(engine, claimed, DeliveryError("slack: HTTP 500"), when, 2) == "pending"
    kept = row(engine)
    assert (kept.attempts, kept.ambiguous_attempts, kept.lease_until) == (1, 7, None)
    (again,) = claim_due(engine, when + timedelta(hours=1), LEASE)
    assert (again.attempts, again.ambiguous_attempts) == (2, 7)  # nothing lapsed this time
    mark_sent(engine, again.id, when + timedelta(hours=1))
    assert (row(engine).status, row(engine).attempts) == ("sent", 2)


def test_a_row_given_back_untried_counts_no_attempt_of_either_kind(engine):
    add(engine)
    (claimed,) = claim_due(engine, NOW, LEASE)
    release(engine, claimed.id)
    (again,) = claim_due(engine, NOW + timedelta(hours=1), LEASE)
    assert (again.attempts, again.ambiguous_attempts) == (1, 0)


async def test_a_row_whose_sends_keep_ending_without_an_outcome_fails_at_its_own_limit(engine):
    add(engine)
    config = make_config(
        channels={"slack": {"webhook_url": "https://hooks.example/x"}},
        delivery={"max_ambiguous_attempts": 3, "max_attempts": 1},
    )
    when = NOW
    for _ in range(3):
        claim_due(engine, when, LEASE)
        when += LEASE + timedelta(seconds=1)
    sent = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(sent.append)) as http:
        report = await deliver_due(config, engine, http, when)
    assert (report.failed, sent) == (1, [])
    kept = row(engine)
    assert kept.status == "failed" and "3 sends ended with no outcome" in kept.last_error
    assert kept.attempts == 0


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


def test_a_broken_channel_keeps_its_deliveries_and_retries_them_later(engine):
    add(engine)
    (claimed,) = claim_due(engine, NOW, LEASE)
    error = DeliveryError("slack: 404 no_service", permanent=True, channel_broken=True)
    assert mark_failed(engine, claimed, error, NOW, max_attempts=1) == "pending"
    kept = row(engine)
    assert kept.next_attempt_at == NOW + BROKEN_CHANNEL_RETRY and "no_service" in kept.last_error


def test_held_rows_are_due_at_once_when_a_send_to_their_channel_succeeds(engine):
    config = make_config(channels={"email": EMAIL})
    add(engine, "held")
    (claimed,) = claim_due(engine, NOW, LEASE)
    broken = DeliveryError("slack: 404 no_service", permanent=True, channel_broken=True)
    mark_failed(engine, claimed, broken, NOW, 8)
    channel_broken(engine, config, "slack", "HTTP 404 no_service", NOW)
    healed = NOW + timedelta(minutes=2)
    assert claim_due(engine, healed, LEASE, limit=100) != []  # only the loud email is due
    assert row(engine, "held").next_attempt_at == NOW + BROKEN_CHANNEL_RETRY
    channel_healthy(engine, "slack", healed)  # a later send went through
    assert row(engine, "held").next_attempt_at == healed
    assert [c.id for c in claim_due(engine, healed, LEASE)] == [row(engine, "held").id]


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


EMAIL = {
    "host": "127.0.0.1",
    "port": 2525,
    "security": "none",
    "sender": "ew@acme.example",
    "recipients": ["a@acme.example", "b@acme.example"],
}


def test_it_enqueues_one_row_per_email_recipient_and_one_per_slack_message(engine):
    config = make_config(
        channels={"email": EMAIL, "slack": {"webhook_url": "https://hooks.example/x"}}
    )
    with Session(engine) as session:
        assert enqueue_message(session, config, channel="email", key="m", now=NOW, kind="x") == 2
        assert enqueue_message(session, config, channel="slack", key="m", now=NOW, kind="x") == 1
        assert enqueue_message(session, config, channel="email", key="m", now=NOW, kind="x") == 0
        session.commit()
    with Session(engine) as session:
        found = session.exec(select(Delivery).order_by(Delivery.id)).all()
    assert [(d.channel, d.recipient) for d in found] == [
        ("email", "a@acme.example"),
        ("email", "b@acme.example"),
        ("slack", None),
    ]
    assert found[0].expires_at == NOW + config.delivery.email_deadline
    assert found[2].expires_at == NOW + config.delivery.slack_deadline


def test_a_broken_channel_is_announced_once_per_spell(engine):
    config = make_config(channels={"email": EMAIL}, escalation={"emails": ["oncall@acme.example"]})
    channel_broken(engine, config, "slack", "HTTP 404 no_service", NOW)
    channel_broken(engine, config, "slack", "HTTP 404 no_service", NOW + timedelta(minutes=10))
    with Session(engine) as session:
        health = session.exec(select(ChannelHealth)).one()
        loud = session.exec(select(Delivery).where(Delivery.kind == "channel_broken")).all()
    assert health.broken_since == NOW and health.notified
    assert sorted(d.recipient for d in loud) == [
        "a@acme.example",
        "b@acme.example",
        "oncall@acme.example",
    ]
    channel_healthy(engine, "slack")
    channel_broken(engine, config, "slack", "HTTP 410", NOW + timedelta(hours=1))
    with Session(engine) as session:
        assert session.exec(select(ChannelHealth)).one().broken_since == NOW + timedelta(hours=1)
        assert len(session.exec(select(Delivery)).all()) == 6


async def test_it_spaces_slack_sends_by_the_configured_gap_even_after_a_change(engine):
    with Session(engine) as session:
        for key in ("s1", "s2", "s3"):
            enqueue(session, dedup_key=key, channel="slack", kind="rollup", now=NOW)
        session.commit()
    sent = []

    def record(request):
        sent.append(time.monotonic())
        return httpx.Response(200, text="ok")

    slow = make_config(
        channels={"slack": {"webhook_url": "https://hooks.example/x"}},
        delivery={"slack_min_gap": "5s"},
    )
    fast = slow.model_copy(
        update={
            "delivery": slow.delivery.model_copy(update={"slack_min_gap": timedelta(seconds=0.2)})
        }
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as http:
        await deliver_due(slow, engine, http, NOW - timedelta(hours=1))  # nothing due yet
        report = await deliver_due(fast, engine, http, NOW)
    assert report.sent == 3
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert all(0.19 <= g < 2 for g in gaps), gaps

"""Durable delivery end to end: the alert policy enqueues, the worker sends to a real
Slack webhook server and a real SMTP server on loopback, and every failure is handled once."""

import email
import json
import time
from datetime import timedelta
from email import policy

import httpx
import pytest
from sqlmodel import Session, select

from emberwatch import outbox
from emberwatch.alerts.policy import ROLLUP_EVERY, evaluate
from emberwatch.delivery import deliver_due
from emberwatch.demo.servers import MailCatcher, Reply, SlackServer
from emberwatch.models import ChannelHealth, Delivery
from emberwatch.outbox import claim_due
from tests.alerts.test_incidents import T0, file_alerts
from tests.helpers import make_config

MARKETING = "marketing@acme.example"
ONCALL = "oncall@acme.example"
EVIL = (
    "<!channel> <!here> <@U024BE7LH> <http://evil.example|click> "
    "<script>alert(1)</script> Acme lost my order"
)
FORGED = ("<!channel>", "<!here>", "<@U024BE7LH>", "<http://evil", "<script>")


@pytest.fixture
def slack():
    server = SlackServer().start()
    yield server
    server.stop()


@pytest.fixture
def mail():
    catcher = MailCatcher().start()
    yield catcher
    catcher.stop()


def config(slack, mail, *, channels=("slack", "email"), recipients=(MARKETING,), **overrides):
    values = dict(
        channels={
            "slack": {"webhook_url": slack.webhook_url, **overrides.pop("slack_channel", {})},
            "email": {
                "host": "127.0.0.1",
                "port": mail.port,
                "security": "none",
                "sender": "Emberwatch <ew@acme.example>",
                "recipients": list(recipients),
                "timeout": "5s",
            },
        },
        routes=[{"name": "all", "channels": [*channels, "digest"], "group_interval": "5m"}],
        escalation={
            "after": "15m",
            "slack_mention": "subteam:S123",
            "emails": [ONCALL],
        },
        delivery={"slack_min_gap": "0.05s"},
        http={"secret": "x" * 20, "public_url": "https://ew.acme.example"},
    )
    values.update(overrides)
    return make_config(**values)


def critical(engine, n=1, now=T0, **fields):
    fields.setdefault("url", f"https://example.com/{n}")
    fields.setdefault("text", f"Acme lost my order number {n}")
    fields.setdefault("severity", "critical")
    (incident_id,) = file_alerts(engine, dict(now=now, **fields))
    return incident_id


async def deliver(cfg, engine, now):
    async with httpx.AsyncClient() as http:
        return await deliver_due(cfg, engine, http, now)


def rows(engine, **where) -> list[Delivery]:
    with Session(engine) as session:
        query = select(Delivery).order_by(Delivery.id)
        for name, value in where.items():
            query = query.where(getattr(Delivery, name) == value)
        return list(session.exec(query).all())


def received(mail) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(m, policy=policy.default) for m in mail.messages]


async def test_a_slack_429_is_not_retried_before_retry_after_then_delivered(engine, slack, mail):
    cfg = config(slack, mail, channels=("slack",))
    slack.script = [Reply(429, b"rate_limited", "text/plain", {"Retry-After": "30"})]
    critical(engine)
    evaluate(engine, cfg, T0)
    report = await deliver(cfg, engine, T0)
    assert (report.sent, report.retrying) == (0, 1) and slack.payloads == []
    assert claim_due(engine, T0 + timedelta(seconds=29), cfg.delivery.lease) == []
    assert (await deliver(cfg, engine, T0 + timedelta(seconds=29))).sent == 0
    report = await deliver(cfg, engine, T0 + timedelta(seconds=30))
    assert report.sent == 1 and len(slack.payloads) == 1
    (row,) = rows(engine)
    assert (row.status, row.attempts) == ("sent", 2)


async def test_a_slack_500_is_retried_with_backoff(engine, slack, mail):
    cfg = config(slack, mail, channels=("slack",))
    slack.script = [Reply(500, b"oops", "text/plain"), Reply(503, b"busy", "text/plain")]
    critical(engine)
    evaluate(engine, cfg, T0)
    assert (await deliver(cfg, engine, T0)).retrying == 1
    (first,) = rows(engine)
    assert T0 + timedelta(seconds=1) <= first.next_attempt_at <= T0 + timedelta(seconds=2)
    assert "HTTP 500" in first.last_error
    assert (await deliver(cfg, engine, T0)).retrying == 0  # not due yet
    assert (await deliver(cfg, engine, T0 + timedelta(seconds=2))).retrying == 1
    (second,) = rows(engine)
    # The second wait is longer: 2² s with jitter.
    assert T0 + timedelta(seconds=4) <= second.next_attempt_at <= T0 + timedelta(seconds=6)
    assert (await deliver(cfg, engine, T0 + timedelta(seconds=6))).sent == 1
    assert len(slack.payloads) == 1


async def test_invalid_blocks_are_retried_once_as_plain_text(engine, slack, mail):
    cfg = config(slack, mail, channels=("slack",))
    slack.script = [Reply(400, b"invalid_blocks", "text/plain")]
    critical(engine)
    evaluate(engine, cfg, T0)
    assert (await deliver(cfg, engine, T0)).retrying == 1
    assert (await deliver(cfg, engine, T0)).sent == 1
    (payload,) = slack.payloads
    assert set(payload) == {"text"} and "CRITICAL complaint about acme" in payload["text"]


def health(engine) -> ChannelHealth | None:
    with Session(engine) as session:
        return session.exec(select(ChannelHealth)).first()


def broken_notices(mail) -> list[email.message.EmailMessage]:
    return [m for m in received(mail) if "channel is broken" in m["Subject"]]


async def test_a_404_marks_slack_broken_keeps_its_alerts_and_says_so_by_email_once(
    engine, slack, mail
):
    cfg = config(slack, mail)
    slack.script = [Reply(404, b"no_service", "text/plain")] * 2
    critical(engine, 1)
    evaluate(engine, cfg, T0)
    report = await deliver(cfg, engine, T0)
    assert (report.sent, report.retrying, report.failed) == (1, 1, 0)  # the email went
    (kept,) = rows(engine, channel="slack")
    assert kept.status == "pending" and "HTTP 404 no_service" in kept.last_error
    assert kept.next_attempt_at == T0 + outbox.BROKEN_CHANNEL_RETRY
    assert health(engine).broken_since == T0

    # Another alert hits the broken webhook: still kept, and no second loud email.
    later = T0 + timedelta(minutes=1)
    critical(engine, 2, now=later)
    evaluate(engine, cfg, later)
    await deliver(cfg, engine, later)
    await deliver(cfg, engine, later)
    loud = broken_notices(mail)
    assert sorted(m["To"] for m in loud) == [MARKETING, ONCALL]
    assert "no_service" in loud[0].get_body(("plain",)).get_content()
    assert {r.status for r in rows(engine, channel="slack")} == {"pending"}

    # Someone fixes the webhook: the kept alerts go out and the channel is healthy again.
    report = await deliver(cfg, engine, later + outbox.BROKEN_CHANNEL_RETRY)
    assert report.sent == 2 and len(slack.payloads) == 2
    assert health(engine).broken_since is None
    # Broken again later: that is a new spell, said loudly again.
    slack.script = [Reply(404, b"no_service", "text/plain")]
    critical(engine, 3, now=T0 + timedelta(hours=1))
    evaluate(engine, cfg, T0 + timedelta(hours=1))
    await deliver(cfg, engine, T0 + timedelta(hours=1))
    await deliver(cfg, engine, T0 + timedelta(hours=1))
    assert len(broken_notices(mail)) == 4


async def test_smtp_refusals_fail_or_retry_only_that_recipient(engine, slack, mail):
    busy, gone, ok = "busy@acme.example", "gone@acme.example", "ok@acme.example"
    cfg = config(slack, mail, channels=("email",), recipients=(busy, gone, ok))
    mail.refuse.update({busy: 451, gone: 550})
    critical(engine)
    evaluate(engine, cfg, T0)
    report = await deliver(cfg, engine, T0)
    assert (report.sent, report.retrying, report.failed) == (1, 1, 1)
    by_recipient = {r.recipient: r.status for r in rows(engine)}
    assert by_recipient == {busy: "pending", gone: "failed", ok: "sent"}
    assert [m["To"] for m in received(mail)] == [ok]

    del mail.refuse[busy]
    report = await deliver(cfg, engine, T0 + timedelta(minutes=1))
    assert report.sent == 1 and [m["To"] for m in received(mail)] == [ok, busy]
    assert {r.recipient: r.status for r in rows(engine)}[gone] == "failed"


async def test_a_delivery_past_its_deadline_is_expired_and_kept(engine, slack, mail):
    cfg = config(slack, mail, channels=("slack",), delivery={"slack_deadline": "1m"})
    slack.script = [Reply(500, b"oops", "text/plain")]
    critical(engine)
    evaluate(engine, cfg, T0)
    await deliver(cfg, engine, T0)
    report = await deliver(cfg, engine, T0 + timedelta(minutes=2))
    assert report.expired == 1 and slack.payloads == []
    (row,) = rows(engine)
    assert row.status == "expired" and row.expires_at == T0 + timedelta(minutes=1)


async def test_an_incidents_emails_thread_under_its_first(engine, slack, mail):
    cfg = config(slack, mail, channels=("email",))
    incident_id = critical(engine)
    evaluate(engine, cfg, T0)
    file_alerts(
        engine, dict(now=T0 + timedelta(minutes=1), url="https://example.com/1", text="me too")
    )
    evaluate(engine, cfg, T0 + timedelta(minutes=5))  # group_interval since the first
    evaluate(engine, cfg, T0 + timedelta(minutes=15))  # and an escalation
    await deliver(cfg, engine, T0 + timedelta(minutes=15))
    first, *follow_ups = received(mail)
    thread = f"<emberwatch-incident-{incident_id}@acme.example>"
    assert first["Message-ID"] == thread and first["In-Reply-To"] is None
    assert len(follow_ups) == 2  # one related mention, one escalation to on-call
    for message in follow_ups:
        assert message["In-Reply-To"] == message["References"] == thread
        assert message["Message-ID"] != thread
        assert message["Message-ID"].endswith("@acme.example>")


async def test_slack_sends_are_spaced_per_webhook(engine, slack, mail):
    gap = 0.3
    cfg = config(slack, mail, channels=("slack",), delivery={"slack_min_gap": f"{gap}s"})
    for n in (1, 2, 3):
        critical(engine, n)
    evaluate(engine, cfg, T0)
    started = time.monotonic()
    report = await deliver(cfg, engine, T0)
    assert report.sent == 3
    assert time.monotonic() - started >= 2 * gap * 0.95


async def test_mention_text_never_pings_or_forges_on_any_path(engine, slack, mail):
    cfg = config(slack, mail, slack_channel={"max_per_hour": 1})
    critical(engine, 1, text=EVIL, author="<!everyone>", title="<@W123> <!subteam^S999>")
    critical(engine, 2, brand="<!here> acme", severity="info")  # info: never escalated
    evaluate(engine, cfg, T0 + timedelta(minutes=1))  # alert + one rolled up
    evaluate(engine, cfg, T0 + timedelta(minutes=15))  # the escalation
    evaluate(engine, cfg, T0 + timedelta(minutes=1) + ROLLUP_EVERY)  # the rollup
    assert {r.kind for r in rows(engine, channel="slack")} == {"alert", "escalation", "rollup"}
    for _ in range(2):
        await deliver(cfg, engine, T0 + timedelta(minutes=30))
    assert len(slack.payloads) == 3
    everything = json.dumps(slack.payloads, ensure_ascii=False)
    for forged in (*FORGED, "<!everyone>", "<@W123>", "<!subteam^S999>"):
        assert forged not in everything
    assert "&lt;!channel&gt;" in everything and "&lt;!here&gt; acme" in everything
    # The configured escalation ping is the only one.
    assert everything.count("<!subteam^S123>") == 1
    rollup = next(p for p in slack.payloads if "rolled up" in p["text"])
    assert "1 more negative mention about &lt;!here&gt; acme on hn" in rollup["text"]


async def test_email_escapes_html_and_a_brand_cannot_inject_a_header(engine, slack, mail):
    cfg = config(slack, mail, channels=("email",))
    critical(engine, text=EVIL, brand="acme\r\nBcc: victim@example.com")
    evaluate(engine, cfg, T0)
    await deliver(cfg, engine, T0)
    (message,) = received(mail)
    assert message["Bcc"] is None and "\n" not in message["Subject"]
    assert "victim@example.com" in message["Subject"]  # kept as text, on one line
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;!channel&gt;" in html

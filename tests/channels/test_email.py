import email
import re
from email import policy

import pytest

from emberwatch.channels import email as email_channel
from emberwatch.channels.email import EmailChannel
from emberwatch.demo.servers import MailCatcher
from emberwatch.errors import DeliveryError
from tests.channels.test_slack import REVIEW, REVIEW_REASONS, incident_view, mention, view


@pytest.fixture
def catcher():
    server = MailCatcher().start()
    yield server
    server.stop()


def channel(port: int, recipients=("marketing@acme.example",)) -> EmailChannel:
    return EmailChannel(
        host="127.0.0.1",
        port=port,
        security="none",
        sender="ew@acme.example",
        recipients=list(recipients),
    )


def test_alert_email_is_multipart_with_escaped_html_and_a_clean_subject():
    evil = view(brand="acme\r\nBcc: victim@example.com", text="<script>alert(1)</script> & more")
    message = email_channel.alert_message(evil, channel(25))
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
    assert message["Bcc"] is None
    assert message["Message-ID"].endswith("@acme.example>")
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    text = message.get_body(("plain",)).get_content()
    assert "<script>alert(1)</script>" in text
    assert "Reach out now." in text and "Respond by 12:15 UTC, Fri 20 Nov" in text


async def test_it_sends_through_a_real_smtp_server(catcher):
    message = email_channel.alert_message(view(), channel(catcher.port))
    refused = await email_channel.send(message, channel(catcher.port))
    assert refused == []
    received = email.message_from_bytes(catcher.messages[0], policy=policy.default)
    assert received["Subject"] == (
        '[Emberwatch] CRITICAL complaint about acme on Hacker News: "Acme lost my order"'
    )
    assert received.is_multipart()


async def test_a_5xx_recipient_is_permanent_for_that_recipient_only(catcher):
    catcher.refuse["gone@acme.example"] = 550
    target = channel(catcher.port, ["gone@acme.example", "ok@acme.example"])
    refused = await email_channel.send(email_channel.alert_message(view(), target), target)
    assert refused == ["gone@acme.example"]
    assert len(catcher.messages) == 1


async def test_a_4xx_for_every_recipient_is_retryable(catcher):
    catcher.refuse["busy@acme.example"] = 451
    target = channel(catcher.port, ["busy@acme.example"])
    with pytest.raises(DeliveryError) as caught:
        await email_channel.send(email_channel.alert_message(view(), target), target)
    assert not caught.value.permanent


async def test_an_unreachable_server_is_retryable():
    target = channel(1)
    with pytest.raises(DeliveryError, match="email: send:") as caught:
        await email_channel.send(email_channel.alert_message(view(), target), target)
    assert not caught.value.permanent


def test_build_message_threads_replies():
    message = email_channel.build_message(
        sender="a@b.example",
        recipients=["c@d.example"],
        subject="s",
        text="t",
        html="<p>h</p>",
        thread_id="<incident-1@b.example>",
    )
    assert message["In-Reply-To"] == message["References"] == "<incident-1@b.example>"
    assert message["Date"]


def test_the_first_email_of_an_incident_starts_its_thread_and_follow_ups_reply():
    target = channel(25)
    first = email_channel.alert_message(view(incident_id=9), target, first=True)
    follow = email_channel.alert_message(view(incident_id=9), target, first=False)
    assert first["Message-ID"] == "<emberwatch-incident-9@acme.example>"
    assert first["In-Reply-To"] is None
    assert follow["In-Reply-To"] == follow["References"] == first["Message-ID"]
    assert follow["Message-ID"] != first["Message-ID"]
    assert "(incident #9)" in first["Subject"]


def test_a_sender_with_a_display_name_threads_on_its_domain():
    assert (
        email_channel.incident_thread_id(4, "Emberwatch <ew@acme.example>")
        == "<emberwatch-incident-4@acme.example>"
    )


def test_a_notice_escapes_its_html_and_keeps_its_subject_on_one_line():
    message = email_channel.notice_message(
        channel(25),
        ["a@acme.example"],
        "[Emberwatch] Source x\r\nBcc: victim@example.com is unhealthy",
        ["Last error: <b>boom</b> & more"],
    )
    assert message["Bcc"] is None and "\n" not in message["Subject"]
    html = message.get_body(("html",)).get_content()
    assert "<b>boom</b>" not in html and "&lt;b&gt;boom&lt;/b&gt; &amp; more" in html


def test_an_escalation_email_says_so_in_its_subject():
    message = email_channel.alert_message(view(incident_id=2, escalation_level=1), channel(25))
    assert message["Subject"].startswith("[Emberwatch] ESCALATION 1: CRITICAL")


def parts(message) -> tuple[str, str]:
    return (
        message.get_body(("plain",)).get_content(),
        message.get_body(("html",)).get_content(),
    )


@pytest.mark.parametrize("count", [1, 5, 50])
def test_it_lists_the_newest_mentions_up_to_the_limit_in_text_and_html(count):
    text, html = parts(email_channel.alert_message(incident_view(count), channel(25)))
    shown = list(range(count, max(count - 5, 0), -1))
    for body, author_end in ((text, " on "), (html, "</strong> on ")):
        listed = [int(n) for n in re.findall(rf"customer(\d+){author_end}", body)]
        assert listed == shown  # the newest, newest first, and no others
        for n in shown:
            assert f"https://news.ycombinator.com/item?id={n}" in body
            assert f"Acme lost my order number {n}" in body
    if count > 5:
        assert f"{count} mentions; the newest 5:" in text
        assert f"…and {count - 5} more in incident #3." in text
        assert f"&hellip;and {count - 5} more in incident #3." in html
    else:
        assert "more in incident" not in text + html
        assert f"{count} mention{'s' if count != 1 else ''}, newest first" in text


def test_the_text_part_puts_what_to_do_first_and_the_model_last():
    text, _ = parts(email_channel.alert_message(incident_view(2), channel(25)))
    markers = [
        "A customer on Hacker News",
        "Respond by",
        "What to do:",
        "Acknowledge: emberwatch alerts ack 3",
        "2 mentions, newest first:",
        "Reach: followers unknown on Hacker News",
        "Scores: complaint 0.90",
        "The model's reasons:",
    ]
    positions = [text.index(m) for m in markers]
    assert positions == sorted(positions) and positions[0] == 0


def test_the_html_part_keeps_the_same_order():
    _, html = parts(email_channel.alert_message(incident_view(2), channel(25)))
    markers = ["A customer on Hacker News", "Respond by", "<ol>", "customer2", "Reach:", "Scores:"]
    positions = [html.index(m) for m in markers]
    assert positions == sorted(positions)


def test_the_plain_sentence_speaks_of_the_customer_not_the_model():
    review = mention(
        1,
        source_type="rss",
        source_name="reviews",
        author="Dana W.",
        title="Three weeks and still no kettle",
        text=REVIEW,
        complaint=1.0,
        reasons=REVIEW_REASONS,
        likes=None,
        engagement=0,
    )
    thread = mention(2, likes=240, replies=90, engagement=330, virality=0.97, complaint=0.9)
    lines = [thread, review]
    text, html = parts(
        email_channel.alert_message(
            incident_view(2, mentions=lines, context=lines, reasons=REVIEW_REASONS), channel(25)
        )
    )
    first = text.splitlines()[0]
    assert first == (
        "A customer on the reviews feed says their express order is three weeks late, "
        "that support blamed the courier and that they want a refund; the Hacker News "
        "thread about it is growing fast (240 points, 90 comments)."
    )
    for model_term in ("logistic", "branching", "probability"):
        assert model_term not in first
    # The model's reasons are still there, last, and the audience guess is not a reach.
    assert text.index("logistic(+8.68)") > text.index("Reach:")
    assert "platform-typical" not in text + html
    assert "the spread forecast assumed a typical audience of 500" in text


def test_times_are_in_the_team_time_zone():
    text, html = parts(
        email_channel.alert_message(incident_view(1, timezone="America/New_York"), channel(25))
    )
    assert "Respond by 07:15 EST, Fri 20 Nov (critical: within 15 minutes)." in text
    assert "Respond by 07:15 EST, Fri 20 Nov" in html
    assert "UTC" not in text


@pytest.mark.parametrize(
    ("reason", "level", "first", "expected"),
    [
        (
            "new incident",
            0,
            True,
            "[Emberwatch] CRITICAL complaint about acme on Hacker News: "
            '"Acme lost my order" (incident #3)',
        ),
        (
            "engagement doubled within 30 min (11 → 330)",
            0,
            False,
            "[Emberwatch] CRITICAL complaint about acme on Hacker News, now 240 points, "
            '90 comments: "Acme lost my order" (incident #3)',
        ),
        (
            "severity rose from warning to critical",
            0,
            False,
            "[Emberwatch] CRITICAL complaint about acme on Hacker News, now critical, 240 "
            'points, 90 comments: "Acme lost my order" (incident #3)',
        ),
        (
            "3 new related mentions",
            0,
            False,
            "[Emberwatch] CRITICAL complaint about acme on Hacker News, 3 new mentions: "
            '"Acme lost my order" (incident #3)',
        ),
        (
            "not acknowledged after 15 min (escalation 1)",
            1,
            False,
            "[Emberwatch] ESCALATION 1: CRITICAL complaint about acme on Hacker News, not "
            'acknowledged after 15 min (escalation 1): "Acme lost my order" (incident #3)',
        ),
    ],
)
def test_subjects_carry_the_gist_and_a_follow_up_says_what_changed(reason, level, first, expected):
    lines = [mention(2, likes=240, replies=90, engagement=330), mention(1)]
    alert = incident_view(
        2, mentions=lines, context=lines, notify_reason=reason, escalation_level=level
    )
    assert email_channel.alert_message(alert, channel(25), first=first)["Subject"] == expected


@pytest.mark.parametrize(
    "title",
    [
        "Broken\r\nBcc: victim@example.com",
        "Broken\u2028Bcc: victim@example.com",
        "\u202eBroken\u2066 Bcc: victim@example.com",
    ],
)
def test_a_hostile_title_stays_on_one_subject_line(title):
    message = email_channel.alert_message(view(title=title, incident_id=3), channel(25))
    subject = message["Subject"]
    assert message["Bcc"] is None
    assert "Broken Bcc: victim@example.com" in subject
    for char in ("\r", "\n", "\u2028", "\u202e", "\u2066"):
        assert char not in subject


def test_hostile_mention_fields_are_inert_in_both_parts():
    hostile = mention(
        1,
        author="mallory\nRespond by: never\u202e",
        title="<img src=x onerror=alert(1)>",
        text="<!channel> & <script>alert(1)</script>",
        url="javascript:alert(1)",
    )
    text, html = parts(
        email_channel.alert_message(
            incident_view(1, mentions=[hostile], context=[hostile]), channel(25)
        )
    )
    assert not any(line.startswith("Respond by: never") for line in text.splitlines())
    assert "mallory Respond by: never on Hacker News" in text
    assert "\u202e" not in text + html
    assert "<script>" not in html and "<img" not in html and "javascript:" not in html
    assert "&lt;script&gt;" in html and "(no link)" in text

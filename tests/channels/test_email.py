import email
from email import policy

import pytest
from tests.channels.test_slack import view

from emberwatch.channels import email as email_channel
from emberwatch.config import EmailChannel
from emberwatch.demo.servers import MailCatcher
from emberwatch.errors import DeliveryError


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
    assert "Reach out now." in text and "respond by 2026-11-20 12:15 UTC" in text


async def test_it_sends_through_a_real_smtp_server(catcher):
    message = email_channel.alert_message(view(), channel(catcher.port))
    refused = await email_channel.send(message, channel(catcher.port))
    assert refused == []
    received = email.message_from_bytes(catcher.messages[0], policy=policy.default)
    assert received["Subject"] == "[Emberwatch] CRITICAL complaint about acme"
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

"""A mention sent through Apprise stays text in every form a target reads: HTML targets get
it escaped as HTML, Markdown targets escaped as Markdown (by Apprise, from our HTML), text
targets escaped as Markdown by us (Discord shows its "text" as Markdown), and no form can
ping. Sent through Apprise's ``json://`` to a loopback server with each ``format=``."""

from __future__ import annotations

import json

import httpx
import pytest

from emberwatch.channels import apprise as channel
from emberwatch.channels.base import Envelope, Notice
from tests.channels.test_conformance import SECRET, Loopback
from tests.channels.test_slack import mention, view
from tests.helpers import make_config

apprise = pytest.importorskip("apprise")

LINK = "[click here](https://evil.example/login)"
HOSTILE = f"{LINK} <b>bold</b> **loud** _it_ ~s~ `code` ||spoiler|| @everyone <@123> <!channel>"
ACK = "https://ew.example/incidents/3?do=ack&t=a_b"


async def received(form: str, content: object) -> dict[str, str]:
    """What Apprise posted to a json:// target reading ``form``."""
    server = Loopback()
    try:
        url = f"json://127.0.0.1:{server.port}/hooks/{SECRET}?format={form}"
        config = make_config(channels={"apprise": {"urls": [url], "timeout": "5s"}})
        async with httpx.AsyncClient() as http:
            envelope = Envelope(
                "apprise", "alert", config.channels.apprise, http, "target-1", {}, config
            )
            outcome = await channel.CHANNEL.send(envelope, content)
        assert outcome.status == "sent", outcome.error
        [(_headers, body)] = server.received
        return json.loads(body)
    finally:
        server.stop()


def hostile_view():
    listed = [mention(1, text=HOSTILE, author="**boss** @here")]
    return view(incident_id=3, mentions=listed, links={"Acknowledge": ACK})


async def test_an_html_target_gets_the_mention_escaped_and_our_link_live():
    body = (await received("html", hostile_view()))["message"]
    assert "<b>bold</b>" not in body and "&lt;b&gt;bold&lt;/b&gt;" in body
    assert "&lt;!channel&gt;" in body and "<!channel>" not in body
    assert LINK in body  # shown as written: HTML does not read Markdown
    assert f'<a href="{ACK.replace("&", "&amp;")}">' in body
    assert "@" not in body and "\uff20everyone" in body


async def test_a_markdown_target_gets_the_mention_escaped_by_apprise():
    body = (await received("markdown", hostile_view()))["message"]
    assert r"\[click here\]\(https://evil.example/login\)" in body
    assert r"\*\*loud\*\*" in body and r"\<b\>bold\</b\>" in body
    assert "[click here](" not in body
    assert "@" not in body and "\uff20everyone" in body and "\uff20here" in body
    assert "](<https://ew.example/incidents/3?do=ack&t=a_b>)" in body  # our link stays live


async def test_a_text_target_gets_the_mention_escaped_for_markdown_readers():
    sent = await received("text", hostile_view())
    body = sent["message"]
    assert r"\[click here\](https://evil.example/login)" in body
    assert r"\*\*loud\*\* \_it\_ \~s\~ \`code\` \|\|spoiler\|\|" in body
    assert r"\<!channel\>" in body
    assert "@" not in body and "\uff20everyone" in body
    assert f"Acknowledge: {ACK}" in body  # Emberwatch's own URL, not escaped
    assert "\\" not in sent["title"]


async def test_a_notice_is_text_too():
    notice = Notice("Receiver broken: [x](https://evil.example)", ["a <b>reply</b> @here"])
    sent = await received("html", notice)
    assert "&lt;b&gt;reply&lt;/b&gt;" in sent["message"] and "@" not in sent["message"]


def test_apprises_discord_plugin_finds_nothing_to_ping_in_what_we_send():
    """Discord cannot be pointed at loopback; its plugin's own ping scan can be run."""
    from apprise.conversion import convert_between
    from apprise.plugins.discord import NotifyDiscord

    message = channel.text_of(hostile_view())
    as_markdown = convert_between(
        apprise.NotifyFormat.HTML, apprise.NotifyFormat.MARKDOWN, message.as_html()
    )
    for body in (as_markdown, message.as_text()):
        assert NotifyDiscord.ping_payload(NotifyDiscord, body) == {}
    assert NotifyDiscord.ping_payload(NotifyDiscord, HOSTILE) != {}  # the control


def test_apprises_slack_plugin_makes_no_ping_or_link_of_it():
    """Slack via Apprise turns Markdown from HTML into mrkdwn; none of the mention's
    ``<!channel>`` or ``[text](url)`` survives as Slack syntax."""
    from apprise.conversion import convert_between
    from apprise.plugins.slack import NotifySlack

    as_markdown = convert_between(
        apprise.NotifyFormat.HTML,
        apprise.NotifyFormat.MARKDOWN,
        channel.text_of(hostile_view()).as_html(),
    )
    mrkdwn = NotifySlack._commonmark_to_slack(as_markdown)
    assert "<!channel>" not in mrkdwn and "<https://evil.example" not in mrkdwn
    assert "&lt;!channel&gt;" in mrkdwn
    assert "<https://ew.example/incidents/3?do=ack&amp;t=a_b|" in mrkdwn  # our link


def test_a_long_mention_list_is_cut_by_whole_lines_with_the_links_kept():
    listed = [mention(n, text="<&>" * 200) for n in range(200)]
    message = channel.text_of(view(incident_id=3, mentions=listed, links={"Acknowledge": ACK}))
    for body in (message.as_html(), message.as_text()):
        assert len(body) <= channel.MAX_BYTES
        assert body.endswith(ACK.replace("&", "&amp;") + "</a>") or body.endswith(ACK)


def test_the_cut_counts_bytes_not_characters():
    # Each @ becomes a fullwidth ＠: one character, three bytes in UTF-8.
    listed = [mention(n, text="@" * 600) for n in range(200)]
    message = channel.text_of(view(incident_id=3, mentions=listed, links={"Acknowledge": ACK}))
    for body in (message.as_html(), message.as_text()):
        assert len(body.encode()) <= channel.MAX_BYTES
        assert body.endswith(ACK.replace("&", "&amp;") + "</a>") or body.endswith(ACK)

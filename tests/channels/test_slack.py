import json
from datetime import UTC, datetime

import httpx
import pytest
import respx

from emberwatch.alerts.view import AlertView
from emberwatch.channels import slack
from emberwatch.errors import DeliveryError

HOOK = "https://hooks.slack.com/services/T0/B0/secret-token"


def view(**overrides) -> AlertView:
    values = dict(
        alert_id=7,
        brand="acme",
        source_name="hn",
        source_type="hackernews",
        severity="critical",
        category="complaint",
        reason="r",
        created_at=datetime(2026, 11, 20, 12, tzinfo=UTC),
        url="https://news.ycombinator.com/item?id=1",
        author="dana",
        author_followers=12000,
        title=None,
        text="Acme lost my order",
        published_at=None,
        rating=None,
        engagement=42,
        sentiment=-0.8,
        complaint=0.9,
        virality=0.4,
        reasons=["sentiment -0.80"],
        vip=True,
        playbook=["Reach out now.", "Listen.", "Apologise.", "Own it."],
    )
    values.update(overrides)
    return AlertView(**values)


def all_text(payload) -> str:
    return json.dumps(payload, ensure_ascii=False)


@pytest.mark.parametrize(
    "evil",
    [
        "<!channel> help",
        "<!here>",
        "<!everyone>",
        "<@U024BE7LH> look",
        "<http://evil.example|click me>",
        "<!subteam^S123>",
    ],
)
def test_mention_text_can_never_ping_or_forge_a_link(evil):
    payload = slack.render(view(text=evil, author=evil, title=evil))
    text = all_text(payload)
    assert "<!" not in text and "<@" not in text and "<http://evil" not in text
    assert "&lt;" in text


def test_the_message_has_header_scores_playbook_and_a_post_link():
    payload = slack.render(view())
    header = payload["blocks"][0]
    assert header["type"] == "header" and header["text"]["text"] == "CRITICAL · acme · complaint"
    text = all_text(payload)
    assert "12,000 followers" in text and "VIP" in text and "sentiment -0.80" in text
    assert "Respond by 12:15 UTC" in text
    assert "<https://news.ycombinator.com/item?id=1|Open the post>" in text
    assert payload["text"].startswith(":rotating_light: CRITICAL complaint about acme")


def test_long_text_is_cut_to_slack_limits():
    payload = slack.render(view(text="word " * 5000))
    for block in payload["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= slack.SECTION_LIMIT


def test_a_non_http_link_is_not_rendered():
    assert "javascript" not in all_text(slack.render(view(url="javascript:alert(1)")))


def test_plain_rendering_has_only_text():
    assert set(slack.render(view(), plain=True)) == {"text"}


@pytest.mark.parametrize(
    ("status", "body", "headers", "check"),
    [
        (
            429,
            "rate_limited",
            {"Retry-After": "30"},
            lambda e: e.retry_after == 30 and not e.permanent,
        ),
        (400, "invalid_blocks", {}, lambda e: e.plain_text_fallback and not e.permanent),
        (404, "no_service", {}, lambda e: e.permanent and e.receiver_broken),
        (403, "action_prohibited", {}, lambda e: e.permanent and e.receiver_broken),
        (410, "channel_is_archived", {}, lambda e: e.permanent and e.receiver_broken),
        (500, "rollup_error", {}, lambda e: not e.permanent),
        (400, "invalid_token", {}, lambda e: e.permanent and not e.plain_text_fallback),
    ],
)
@respx.mock
async def test_failures_are_classified_for_the_worker(status, body, headers, check):
    respx.post(HOOK).mock(return_value=httpx.Response(status, text=body, headers=headers))
    async with httpx.AsyncClient() as client:
        with pytest.raises(DeliveryError) as caught:
            await slack.send(client, HOOK, {"text": "x"}, 5)
    assert check(caught.value)
    assert "secret-token" not in str(caught.value)


@respx.mock
async def test_a_timeout_is_retryable_and_hides_the_webhook_url():
    respx.post(HOOK).mock(side_effect=httpx.ConnectTimeout("connect timeout to " + HOOK))
    async with httpx.AsyncClient() as client:
        with pytest.raises(DeliveryError) as caught:
            await slack.send(client, HOOK, {"text": "x"}, 5)
    assert not caught.value.permanent and "secret-token" not in str(caught.value)


def test_an_escalation_pings_the_configured_group_and_nobody_else():
    payload = slack.render(
        view(
            incident_id=3,
            escalation_level=2,
            ping="<!subteam^S123>",
            notify_reason="not acknowledged <!channel> after 30 min",
            text="<!here> <@U024BE7LH> look",
        )
    )
    text = all_text(payload)
    assert payload["blocks"][0]["text"]["text"].startswith("ESCALATION 2 · CRITICAL")
    assert text.count("<!subteam^S123>") == 1
    assert "<!channel>" not in text and "<!here>" not in text and "<@U024BE7LH>" not in text


def test_a_plain_notice_escapes_nothing_but_is_only_text():
    assert slack.render_text("*x*") == {"text": "*x*"}


def test_action_links_are_rendered_and_a_forged_one_is_dropped():
    links = {
        "ack": "https://ew.example/actions/3/1/ack?who=slack&sig=abc",
        "snooze": "https://ew.example/actions/3/1/snooze?who=a|b",
        "resolve": "javascript:alert(1)",
    }
    text = all_text(slack.render(view(incident_id=3, links=links)))
    assert "<https://ew.example/actions/3/1/ack?who=slack&amp;sig=abc|Acknowledge>" in text
    assert "Snooze" not in text and "javascript" not in text and "Resolve" not in text


def test_without_an_http_endpoint_it_says_how_to_acknowledge_from_the_cli():
    text = all_text(slack.render(view(incident_id=3)))
    assert "emberwatch alerts ack 3" in text

import json
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from emberwatch.alerts.view import AlertView, MentionLine
from emberwatch.channels import slack
from emberwatch.errors import DeliveryError
from emberwatch.scoring.triage import playbook

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


T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
REVIEW_REASONS = [
    "sentiment -0.79 (VADER compound with service lexicon)",
    "unmet expectation: 'still no' (+2.2)",
    "elapsed time: 'three weeks' (+1.0)",
    "request for a remedy: 'refund' (+1.6)",
    "complaint 1.00 = logistic(+8.68): bias -1.4, 7 cue(s), sentiment -0.79",
    "reach 500 (platform-typical audience)",
    "branching 0.05 from 0.0 recent events and a prior of 2 at 0.05",
    "category complaint: complaint probability 1.00 >= 0.5",
]
REVIEW = (
    "Ordered from Acme (order #A-48213) and paid for express delivery. Three weeks later, "
    "still nothing. Support replied that it's the courier's fault. I want a refund."
)


def mention(n: int, **overrides) -> MentionLine:
    """The n-th mention of an incident; a higher n is newer."""
    values = dict(
        source_type="hackernews",
        source_name="hn",
        author=f"customer{n}",
        author_followers=None,
        url=f"https://news.ycombinator.com/item?id={n}",
        title=None,
        text=f"Acme lost my order number {n}",
        published_at=T0 - timedelta(minutes=100 - n),
        engagement=n,
        likes=n,
        replies=0,
        complaint=0.9,
        virality=0.1,
        reasons=["sentiment -0.80"],
    )
    values.update(overrides)
    return MentionLine(**values)


def incident_view(count: int, limit: int = 5, **overrides) -> AlertView:
    """A view of an incident holding ``count`` mentions, listing the newest ``limit``."""
    lines = [mention(n) for n in range(count, 0, -1)]
    values = dict(
        incident_id=3,
        alert_count=count,
        mentions=lines[:limit],
        mention_total=count,
        context=lines,
        playbook=playbook("complaint", vip=True, severity="critical"),
        notify_reason="new incident",
    )
    values.update(overrides)
    return view(**values)


def all_text(payload) -> str:
    return json.dumps(payload, ensure_ascii=False)


def texts(payload) -> list[str]:
    """Each block's text, in order (a context block's elements joined)."""
    out = []
    for block in payload["blocks"]:
        if block["type"] in ("header", "section"):
            out.append(block["text"]["text"])
        elif block["type"] == "context":
            out.append("\n".join(e["text"] for e in block["elements"]))
    return out


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
    assert header["type"] == "header"
    assert header["text"]["text"] == "CRITICAL · acme · complaint on Hacker News"
    text = all_text(payload)
    assert "dana has 12,000 followers" in text and "VIP" in text and "sentiment -0.80" in text
    assert "Respond by 12:15 UTC, Fri 20 Nov" in text
    assert "<https://news.ycombinator.com/item?id=1|open the post>" in text
    assert payload["text"].startswith(
        ":rotating_light: CRITICAL complaint about acme on Hacker News: A VIP customer"
    )


@pytest.mark.parametrize("count", [1, 5, 50])
def test_it_lists_the_newest_mentions_up_to_the_limit_and_counts_the_rest(count):
    payload = slack.render(incident_view(count))
    text = "\n".join(texts(payload))
    shown = re.findall(r"\*customer(\d+)\* on Hacker News", text)
    assert [int(n) for n in shown] == list(range(count, max(count - 5, 0), -1))
    for n in map(int, shown):
        assert f"<https://news.ycombinator.com/item?id={n}|open the post>" in text
        assert f">Acme lost my order number {n}" in text
    if count > 5:
        assert f"*{count} mentions; the newest 5:*" in text
        assert f"…and {count - 5} more in incident #3" in text
    else:
        assert "more in incident" not in text
    assert len(payload["blocks"]) <= 50
    for block in payload["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= slack.SECTION_LIMIT


def test_fifty_listed_mentions_still_fit_slacks_limits():
    long = "word " * 200
    lines = [mention(n, text=long) for n in range(50, 0, -1)]
    payload = slack.render(incident_view(50, mentions=lines, context=lines))
    text = "\n".join(texts(payload))
    assert all(f"*customer{n}*" in text for n in range(1, 51))
    assert len(payload["blocks"]) <= 50
    for block in payload["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= slack.SECTION_LIMIT


def test_the_sections_come_in_the_order_people_act_on():
    order = texts(slack.render(incident_view(2)))
    position = {
        "header": 0,
        "why": next(i for i, t in enumerate(order) if t.startswith("A customer")),
        "respond": next(i for i, t in enumerate(order) if t.startswith("*Respond by")),
        "mentions": next(i for i, t in enumerate(order) if "*2 mentions, newest first*" in t),
        "reach": next(i for i, t in enumerate(order) if t.startswith("Reach:")),
        "scores": next(i for i, t in enumerate(order) if t.startswith("*Scores:*")),
    }
    assert list(position) == sorted(position, key=position.get)
    assert position["why"] == 1  # straight after the header


def test_every_playbook_step_is_in_the_message_and_in_its_plain_fallback():
    steps = playbook("complaint", vip=True, severity="critical")
    assert len(steps) == 8
    payload = slack.render(incident_view(1, playbook=steps))
    plain = slack.render(incident_view(1, playbook=steps), plain=True)["text"]
    for i, step in enumerate(steps, 1):
        assert f"{i}. {slack.slack_mrkdwn(step)}" in "\n".join(texts(payload))
        assert slack.slack_mrkdwn(step) in plain
    assert "Own it: don't point at the courier" in all_text(payload)


def test_respond_by_and_posting_times_are_in_the_team_time_zone():
    text = "\n".join(texts(slack.render(incident_view(1, timezone="Europe/Berlin"))))
    assert "*Respond by 13:15 CET, Fri 20 Nov* (critical: within 15 minutes)" in text
    assert "· 11:21 CET ·" in text  # customer1 posted at 10:21 UTC
    assert "UTC" not in text


def test_reach_is_said_once_and_honestly():
    payload = slack.render(
        view(author_followers=None, reasons=["reach 1000 (platform-typical audience)"])
    )
    text = all_text(payload)
    assert "Reach: followers unknown on Hacker News" in text
    assert "reach unknown" not in text and "platform-typical" not in text
    assert text.count("Reach:") == 1


def test_a_follow_up_says_what_changed_in_its_header():
    lines = [mention(2, likes=240, replies=90, engagement=330, virality=0.9), mention(1)]
    payload = slack.render(
        incident_view(
            2,
            mentions=lines,
            context=lines,
            notify_reason="engagement doubled within 30 min (11 → 330)",
        )
    )
    assert payload["blocks"][0]["text"]["text"].endswith("· now 240 points, 90 comments")
    assert "(now 240 points, 90 comments)" in payload["text"]
    assert "growing fast (240 points, 90 comments)" in payload["text"]


@pytest.mark.parametrize(
    "author",
    [
        "mallory\n*Respond by now* ignore the playbook",
        "mallory\r\n>forged quote",
        "mallory\u2028*Resolve:* <https://evil.example|here>",
        "\u202emallory\u2066 <!channel>",
    ],
)
def test_hostile_authors_and_titles_cannot_forge_lines_or_ping(author):
    hostile = mention(1, author=author, title=author, text="<!channel> <!here> look")
    payload = slack.render(incident_view(1, mentions=[hostile], context=[hostile]))
    text = all_text(payload)
    for forged in ("<!channel>", "<!here>", "<https://evil", "\u202e", "\u2066", "\u2028"):
        assert forged not in text
    for block_text in texts(payload):
        for line in block_text.splitlines():
            assert not line.startswith(("*Respond by now", ">forged", "*Resolve:*"))


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
        (404, "no_service", {}, lambda e: e.permanent and e.channel_broken),
        (403, "action_prohibited", {}, lambda e: e.permanent and e.channel_broken),
        (410, "channel_is_archived", {}, lambda e: e.permanent and e.channel_broken),
        (500, "rollup_error", {}, lambda e: not e.permanent),
        (400, "invalid_token", {}, lambda e: e.permanent and not e.plain_text_fallback),
        # Slack's own reading, not the shared table's (broken, retry): permanent.
        (401, "invalid_auth", {}, lambda e: e.permanent and not e.channel_broken),
        (408, "timeout", {}, lambda e: e.permanent and not e.channel_broken),
        (429, "rate_limited", {}, lambda e: e.retry_after == 1.0 and not e.permanent),
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


def test_an_escalation_keeps_the_whole_message_below_its_ping():
    payload = slack.render(incident_view(2, escalation_level=1, notify_reason="late"))
    order = texts(payload)
    assert order[0].startswith("ESCALATION 1 · CRITICAL")
    assert ":rotating_light: late" in order[1]
    assert order[2].startswith("A customer")


def test_without_an_http_endpoint_it_says_how_to_acknowledge_from_the_cli():
    text = all_text(slack.render(view(incident_id=3)))
    assert "emberwatch alerts ack 3" in text

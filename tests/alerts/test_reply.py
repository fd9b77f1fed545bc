"""The draft first reply: short, apologises without excuses, blames no third party, offers
remedies to choose from and invites a private message; brief and firm for freebie demands
and legal threats; none for abuse. The alert email carries the same draft."""

import re
from dataclasses import replace

import pytest
from tests.channels.test_slack import view

from emberwatch.alerts.reply import draft_reply, no_draft_reason
from emberwatch.channels import email as email_channel
from emberwatch.channels.email import EmailChannel

THIRD_PARTIES = re.compile(
    r"\b(courier|carrier|post office|royal mail|ups|dhl|fedex|supplier|warehouse|driver|"
    r"colleague|manufacturer)\b",
    re.IGNORECASE,
)
EXCUSES = re.compile(r"\b(but|however|unfortunately|due to|because|beyond our control)\b", re.I)
LATE = view(
    text="My express order is three weeks late and support blamed the courier. I want a refund",
    author="@dana",
    reasons=[
        "elapsed time: 'three weeks' (+1.0)",
        "failure word: 'late' (+0.8)",
        "request for a remedy: 'refund' (+0.9)",
    ],
)


def words(text: str) -> int:
    return len(text.split())


@pytest.mark.parametrize(
    "lead",
    [
        LATE,
        view(text="The kettle arrived cracked", reasons=["defect or damage: 'cracked' (+1.0)"]),
        view(text="Nobody answers my emails at Acme", reasons=[]),
        view(text="Acme ugh", author=None, reasons=[]),
    ],
)
def test_a_complaint_draft_follows_the_playbook(lead):
    draft = draft_reply("complaint", lead.own, "acme")
    assert draft is not None
    text = draft.text
    assert words(text) <= 70  # short
    assert "sorry" in text  # apologises
    assert not EXCUSES.search(text)  # without excuses
    assert not THIRD_PARTIES.search(text)  # blames no third party, even one the post names
    assert " or " in text and "whichever suits you" in text  # remedies to choose from
    assert "private message" in text
    assert text.endswith("The acme team")


def test_the_draft_offers_what_the_customer_asked_for_first():
    draft = draft_reply("complaint", LATE.own, "acme")
    assert draft.text.startswith("Hi @dana, we're so sorry about the wait for your order;")
    assert "We can offer a full refund, a replacement sent by express or a credit" in draft.text


@pytest.mark.parametrize("category", ["legal_threat", "freebie_seeking"])
def test_legal_threats_and_freebie_demands_get_a_brief_firm_draft(category):
    draft = draft_reply(category, LATE.own, "acme")
    assert words(draft.text) <= 45
    assert "sorry" not in draft.text.lower()  # no admission
    assert not re.search(r"\b(free|refund|compensat)", draft.text, re.I)  # nothing promised
    assert "private message" in draft.text


def test_abuse_gets_no_draft():
    assert draft_reply("abuse", LATE.own, "acme") is None
    assert "don't react" in no_draft_reason("abuse")
    assert draft_reply("other", LATE.own, "acme") is None


@pytest.mark.parametrize(
    "author", ["<script>x</script>", "a\nRespond by: never", "\u202eevil", "x" * 300]
)
def test_a_hostile_author_is_not_greeted_by_name(author):
    draft = draft_reply("complaint", replace(LATE, author=author).own, "acme")
    assert draft.text.startswith("Hi there,") or len(draft.text.split(",")[0]) <= 44
    assert "\n" not in draft.text and "<" not in draft.text and "\u202e" not in draft.text


def test_the_alert_email_carries_the_same_draft():
    channel = EmailChannel(host="127.0.0.1", sender="ew@acme.example", recipients=["m@x.example"])
    message = email_channel.alert_message(LATE, channel)
    draft = draft_reply(LATE.category, LATE.own, LATE.brand).text
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Draft first reply" in text and draft in text
    assert draft.replace("'", "&#39;") in html
    abusive = email_channel.alert_message(replace(LATE, category="abuse"), channel)
    assert "Draft first reply" not in abusive.get_body(("plain",)).get_content()

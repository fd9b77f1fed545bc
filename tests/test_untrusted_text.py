"""Untrusted text is inert everywhere (issue 15, point 4): hostile authors, titles, texts
and URLs go through every channel's render and every CLI table, and none of them can start
a line, reorder one, ping, forge a link, inject a header or markup, or reach a terminal as a
control character."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from click.testing import CliRunner
from sqlmodel import Session

from emberwatch import db as database
from emberwatch import digest as digest_channel
from emberwatch.alerts.grouping import grouping_keys, normalize_url, thread_key
from emberwatch.channels import email, slack
from emberwatch.channels.email import EmailChannel
from emberwatch.cli import cli
from emberwatch.config import Actions
from emberwatch.models import Incident, SourceState
from emberwatch.sources import hackernews, rss
from emberwatch.sources._text import html_to_text
from emberwatch.text import jsonl, one_line, printable, web_link
from tests.alerts.test_incidents import T0, store_alert
from tests.channels.test_digest import at, digest_of, incident, mention
from tests.channels.test_slack import view
from tests.console.auth_helpers import BROWSER, form_token
from tests.test_web import client, incident_id, link, logged_in  # noqa: F401 (fixtures)

FORGED = "*Why:* VIP customer; refund already approved by legal"
HOSTILE = {
    "newline": f"dana\n{FORGED}",
    "crlf": "Kettle\r\nAcknowledge: https://evil.example/ack",
    "channel": "<!channel> look",
    "user": "<@U123> look",
    "bold": "*bold* _it_ ~s~ `code`",
    "bidi": "invoice \u202egpj.exe\u202c and \u2066isolate\u2069 \u200f\u061c",
    "controls": "bell\x07 null\x00 esc\x1b[31mred\x1b[0m c1\x85\x9b2J del\x7f",
    "separators": "line\u2028para\u2029end",
    "html": '"><img src=x onerror=alert(1)>',
    "script": "<script>alert(1)</script>",
}
EVERYTHING = " | ".join(HOSTILE.values())
NO_NUL = {name: value.replace("\x00", "") for name, value in HOSTILE.items()}
BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Control characters but \n, and the separators some viewers break lines at.
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# A line someone could forge: it would look like Emberwatch's own.
FORGED_LINE = re.compile(r"^[\s>]*(\*?Why:\*? VIP|Acknowledge: https://evil)", re.M)


def assert_inert_text(text: str) -> None:
    assert not BIDI.search(text), repr(text)
    assert not CONTROL.search(text), repr(text)
    assert not FORGED_LINE.search(text), text
    assert "\r" not in text


# -- the helpers --------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE)
def test_one_line_leaves_one_line_without_controls_or_bidi(name):
    line = one_line(HOSTILE[name])
    assert "\n" not in line
    assert not BIDI.search(line) and not CONTROL.search(line.replace("\t", ""))
    assert "[31m" not in line  # the escape sequence goes whole


def test_printable_keeps_only_newlines():
    text = printable("a\r\nb\rc\u2028d\x07\x1b[1me\x85f\tg\u202eh")
    assert text == "a\nb\nc\nde\nf gh"


def test_jsonl_escapes_what_json_dumps_leaves_raw():
    row = {"author": "a\x85b\x9b\u2028\u2029\u202e\x7f\x07 é"}
    line = jsonl(row)
    assert line == '{"author": "a\\u0085b\\u009b\\u2028\\u2029\\u202e\\u007f\\u0007 é"}'
    assert json.loads(line) == row


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "https://x.example/a b",
        'https://x.example/"onmouseover=1',
        "https://x.example/a\x1b[31m",
        "https://x.example/\u202egpj.exe",
        "https://x.example/a\x85b",
        "https://x.example/a|b",
    ],
)
def test_a_link_with_anything_invisible_or_breaking_is_dropped(url):
    assert web_link(url) is None and slack.slack_url(url) is None


# -- Slack --------------------------------------------------------------------------------


def hostile_view(**overrides):
    fields = dict(
        author=HOSTILE["newline"] + HOSTILE["bidi"],
        title=HOSTILE["crlf"] + HOSTILE["channel"],
        text=EVERYTHING,
        url="https://x.example/\u202eevil",
        reasons=[f"unmet expectation: '{HOSTILE['newline']}' (+2.0)"],
    )
    fields.update(overrides)
    return view(**fields)


def slack_texts(payload) -> list[str]:
    found: list[str] = []

    def walk(value):
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "text" and isinstance(inner, str):
                    found.append(inner)
                else:
                    walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(payload)
    return found


@pytest.mark.parametrize("plain", [False, True])
def test_slack_blocks_and_fallback_are_inert(plain):
    payload = slack.render(hostile_view(), plain=plain)
    raw = json.dumps(payload, ensure_ascii=False)
    for forbidden in ("<!channel>", "<@U123>", "<script>", "<img", "https://x.example/\u202e"):
        assert forbidden not in raw
    for text in slack_texts(payload):
        assert_inert_text(text)
        # The mention's facts and its quote are one line each: author, platform, link.
        for line in text.split("\n"):
            assert not line.lstrip("> ").startswith(("Acknowledge", "*Why"))
    assert "&lt;!channel&gt;" in raw and "&lt;@U123&gt;" in raw


# -- email --------------------------------------------------------------------------------

CHANNEL = EmailChannel(
    host="127.0.0.1", port=25, sender="ew@acme.example", recipients=["ops@acme.example"]
)


def parts(message) -> tuple[str, str]:
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    text = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    return text, html


def assert_clean_headers(message) -> None:
    raw = message.as_bytes()
    head = raw.split(b"\n\n", 1)[0].decode("ascii", "replace")
    names = [line.split(":", 1)[0] for line in head.splitlines() if line and line[0] not in " \t"]
    assert set(names) <= {
        "From", "To", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
        "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
    }  # fmt: skip
    for value in message.values():
        assert "\r" not in value and "\n" not in value


@pytest.mark.parametrize("first", [True, False])
def test_alert_email_text_html_and_headers_are_inert(first):
    hostile = hostile_view(incident_id=4, links={})
    message = email.alert_message(hostile, CHANNEL, first=first)
    assert_clean_headers(message)
    text, html = parts(message)
    assert_inert_text(text.replace("\t", ""))
    assert not BIDI.search(html) and not CONTROL.search(html.replace("\n", ""))
    assert "<script>" not in html and "<img" not in html and "&lt;!channel&gt;" in html
    assert "https://x.example/" not in text  # the link hiding a bidi override is dropped


def test_a_notice_line_stays_a_line_in_email_and_slack():
    lines = ["Last error: HTTP 500 " + HOSTILE["newline"] + HOSTILE["controls"]]
    cleaned = [one_line(line) for line in lines]  # as the dispatcher sends notices
    message = email.notice_message(CHANNEL, ["ops@acme.example"], "Source x\nBcc: y", cleaned)
    assert_clean_headers(message)
    text, html = parts(message)
    assert_inert_text(text)
    assert not CONTROL.search(html.replace("\n", ""))


# -- the digest ---------------------------------------------------------------------------


def test_digest_text_html_and_email_are_inert(engine):
    # PostgreSQL refuses NUL in text; ingest does not strip it yet (see the report).
    with Session(engine) as session:
        mention(
            session,
            at(0),
            vip=True,
            author=HOSTILE["newline"] + HOSTILE["bidi"],
            title=HOSTILE["crlf"],
            text=EVERYTHING.replace("\x00", "") + " my order never arrived, still waiting",
            url="https://x.example/\x1b]8;;https://evil/\x07",
            sentiment=-0.6,
        )
        incident(session, at(0), title=HOSTILE["newline"] + NO_NUL["controls"])
        session.add(
            SourceState(
                name="hn",
                type="hackernews",
                consecutive_failures=9,
                last_error="HTTP 500 " + HOSTILE["crlf"] + HOSTILE["bidi"],
            )
        )
        session.commit()
    built = digest_of(engine)
    _subject, text, html = digest_channel.render(built)
    assert_inert_text(text)
    assert not BIDI.search(html) and "<script>" not in html and "<img src=x" not in html
    assert "\x1b" not in html and "]8;;" not in text and "]8;;" not in html
    message = digest_channel.digest_message(
        built, sender="ew@acme.example", recipients=["ops@acme.example"]
    )
    assert_clean_headers(message)
    mail_text, mail_html = parts(message)
    assert_inert_text(mail_text)
    assert not CONTROL.search(mail_html.replace("\n", ""))


# -- the terminal -------------------------------------------------------------------------

CONFIG = """
database_url = "sqlite:///{db}"
[[brands]]
name = "acme"
include = ["Acme"]
[[sources]]
name = "hn"
type = "hackernews"
query = "acme"
"""


@pytest.fixture
def hostile_db(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(CONFIG.format(db=tmp_path / "ew.db"))
    run = CliRunner().invoke(cli, ["db", "upgrade", "--config", str(path)])
    assert run.exit_code == 0, run.output
    engine = database.create_db_engine(f"sqlite:///{tmp_path / 'ew.db'}")
    with Session(engine) as session:
        store_alert(
            session,
            T0,
            author=HOSTILE["newline"] + HOSTILE["bidi"],
            title=HOSTILE["crlf"],
            text=EVERYTHING,
            url="https://x.example/1",
        )
        session.add(
            SourceState(
                name="hn",
                type="hackernews",
                consecutive_failures=2,
                last_error=HOSTILE["newline"] + HOSTILE["controls"] + HOSTILE["bidi"],
            )
        )
        session.commit()
    engine.dispose()
    for args in (
        ["silence", "add", "--match", "brand=acme", "--for", "1d", "--comment", EVERYTHING],
        ["mentions", "label", "1", "--complaint", "yes"],
    ):
        result = CliRunner().invoke(cli, [*args, "--config", str(path), "--by", HOSTILE["bidi"]])
        assert result.exit_code == 0, result.output
    return path


TABLES = [
    ["mentions"],
    ["alerts"],
    ["sources", "status"],
    ["silence", "list"],
    ["labels", "list"],
]


@pytest.mark.parametrize("command", TABLES)
def test_terminal_tables_show_one_clean_line_per_row(hostile_db, command):
    result = CliRunner().invoke(cli, [*command, "--config", str(hostile_db)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2, result.output  # the header and the one hostile row
    assert not BIDI.search(result.output)
    assert not CONTROL.search(result.output.replace("\n", "")), repr(result.output)


@pytest.mark.parametrize("command", [*TABLES, ["labels", "export"]])
def test_jsonl_escapes_every_control_character(hostile_db, command):
    args = [*command, "--config", str(hostile_db)]
    if command != ["labels", "export"]:
        args += ["--format", "jsonl"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert not BIDI.search(result.output)
    assert not CONTROL.search(result.output.replace("\n", "")), repr(result.output)
    json.loads(lines[0])  # still valid JSON, the characters escaped, not lost


def test_sources_parse_prints_escaped_json_lines(tmp_path):
    body = {
        "hits": [
            {
                "objectID": "1",
                "author": "dana",
                "title": "Acme \u202egpj.exe \x85 x",
                "comment_text": "<p>Acme\x9b2J</p>",
                "created_at_i": 1_700_000_000,
            }
        ],
        "nbPages": 1,
    }
    file = tmp_path / "hn.json"
    file.write_text(json.dumps(body))
    result = CliRunner().invoke(cli, ["sources", "parse", "hackernews", str(file)])
    assert result.exit_code == 0, result.output
    assert not BIDI.search(result.output) and "\x85" not in result.output
    assert "\\u202e" in result.output and "\\u0085" in result.output


# -- entities are decoded once ------------------------------------------------------------


@pytest.mark.parametrize(
    "markup, text",
    [
        ("&amp;lt;!channel&amp;gt;", "&lt;!channel&gt;"),  # HTML for the literal entity text
        ("&lt;!channel&gt;", "<!channel>"),  # HTML for <!channel>: each channel escapes it
        ("<p>&amp;amp; &amp;#60;</p>", "&amp; &#60;"),
        ("Fish &amp; Chips", "Fish & Chips"),
        ("AT&T", "AT&T"),
    ],
)
def test_html_entities_are_decoded_exactly_once(markup, text):
    assert html_to_text(markup) == text


def feed(title: str, summary: str, *, atom_type: str | None = None) -> bytes:
    if atom_type:
        return (
            '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>f</title>'
            f'<entry><id>1</id><title type="{atom_type}">{title}</title>'
            f'<content type="{atom_type}">{summary}</content></entry></feed>'
        ).encode()
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>f</title><item><guid>1</guid>'
        f"<title>{title}</title><description>{summary}</description></item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    "body, title, text",
    [
        # RSS carries HTML in XML: XML decodes once, then HTML once.
        (feed("&amp;amp;lt;!channel&amp;amp;gt;", "&amp;amp;lt;b&amp;amp;gt;"),
         "&lt;!channel&gt;", "&lt;b&gt;"),
        (feed("&amp;lt;!channel&amp;gt;", "&lt;p&gt;Acme&lt;/p&gt;"), "<!channel>", "Acme"),
        # An RSS title with no markup in it is plain text: kept as written, not swallowed.
        (feed("&lt;!channel&gt; ping", "x"), "<!channel> ping", "x"),
        # Atom says which: text is never decoded as HTML, html is decoded once.
        (feed("&amp;lt;!channel&amp;gt;", "&amp;lt;@U123&amp;gt;", atom_type="text"),
         "&lt;!channel&gt;", "&lt;@U123&gt;"),
        (feed("&amp;lt;!channel&amp;gt;", "&amp;lt;@U123&amp;gt;", atom_type="html"),
         "<!channel>", "<@U123>"),
        (feed("&amp;amp;lt;!channel&amp;amp;gt;", "x", atom_type="html"),
         "&lt;!channel&gt;", "x"),
    ],
)  # fmt: skip
def test_feed_fields_are_decoded_once_by_their_type(body, title, text):
    (parsed,) = rss.parse(body)
    assert (parsed.title, parsed.text) == (title, text)


@pytest.mark.parametrize(
    "html_field, text",
    [
        ("&amp;lt;!channel&amp;gt;", "&lt;!channel&gt;"),
        ("&lt;!channel&gt;", "<!channel>"),
        ("<p>Acme &amp;amp; co</p>", "Acme &amp; co"),
    ],
)
def test_json_api_html_strings_are_decoded_once(html_field, text):
    body = json.dumps(
        {
            "hits": [
                {
                    "objectID": "1",
                    "author": "dana",
                    "story_title": "Acme",
                    "comment_text": html_field,
                    "created_at_i": 1_700_000_000,
                }
            ],
            "nbPages": 1,
        }
    ).encode()
    (parsed,) = hackernews.parse(body)
    assert parsed.text == text


def test_a_once_decoded_ping_is_escaped_by_every_channel():
    (parsed,) = rss.parse(feed("&amp;lt;!channel&amp;gt; Acme", "x"))
    payload = json.dumps(slack.render(view(title=parsed.title, text="Acme")))
    assert "<!channel>" not in payload and "&lt;!channel&gt;" in payload


# -- html_to_text separates blocks and cells ----------------------------------------------


@pytest.mark.parametrize(
    "markup, text",
    [
        ("<table><tr><td>cell1</td><td>cell2</td></tr><tr><th>a</th><th>b</th></tr></table>",
         "cell1 cell2\na b"),
        ("<h5>Title</h5>text", "Title\ntext"),
        ("<h6>Title</h6><section>Acme broke</section><article>again</article>",
         "Title\nAcme broke\nagain"),
        ("<header>Top</header><main>Acme</main><footer>end</footer>", "Top\nAcme\nend"),
        ("<ul><li>one</li><li>two</li></ul><dl><dt>k</dt><dd>v</dd></dl>", "one\ntwo\nk\nv"),
        ("<figure><img src=x><figcaption>Acme</figcaption></figure>after", "Acme\nafter"),
        ("word<hr>word", "word\nword"),
        ("<b>Ac</b>me and <i>Acme</i>", "Acme and Acme"),  # inline elements join
    ],
)  # fmt: skip
def test_block_elements_and_cells_separate_words(markup, text):
    found = html_to_text(markup)
    assert found.split() == text.split()
    assert [line for line in found.split("\n") if line] == text.split("\n")


# -- URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b",
    [
        ("https://example.com:443/post/1", "https://example.com/post/1"),
        ("http://example.com:80/post/1", "http://example.com/post/1"),
        ("https://example.com/caf%c3%a9", "https://example.com/caf%C3%A9"),
        ("https://example.com/%7Euser/a%2db", "https://example.com/~user/a-b"),
        ("https://WWW.Example.com.:443/x?b=2&a=%c3%a9#frag", "https://example.com/x?a=%C3%A9&b=2"),
    ],
)
def test_equivalent_urls_normalize_alike(a, b):
    assert normalize_url(a) == normalize_url(b)


@pytest.mark.parametrize(
    "a, b",
    [
        ("https://example.com:8443/x", "https://example.com/x"),
        ("http://example.com:443/x", "http://example.com/x"),
        ("https://example.com/a%2Fb", "https://example.com/a/b"),  # a reserved escape stays
    ],
)
def test_different_urls_stay_different(a, b):
    assert normalize_url(a) != normalize_url(b)


@pytest.mark.parametrize(
    "url",
    [
        "https://youtu.be/dQw4w9WgXcQ",
        "https://youtu.be/dQw4w9WgXcQ?t=42",
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://m.youtube.com/watch?v=dQw4w9WgXcQ&feature=share",
        "https://www.youtube.com/shorts/dQw4w9WgXcQ",
        "https://www.youtube.com:443/watch?v=dQw4w9WgXcQ",
    ],
)
def test_every_youtube_link_to_a_video_has_its_thread_key(url):
    assert thread_key(url) == "youtube:video:dQw4w9WgXcQ"
    assert "thread:youtube:video:dQw4w9WgXcQ" in grouping_keys("rss", url, None)


@pytest.mark.parametrize(
    "url",
    [
        "https://notyoutube.com/watch?v=dQw4w9WgXcQ",
        "https://youtu.be/",
        "https://notreddit.com/comments/abc",
    ],
)
def test_lookalike_hosts_have_no_thread_key(url):
    assert thread_key(url) is None


# -- snooze durations ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["3650d", "2h", "0s", "-1h", "25h", "soon"])
def test_a_link_snooze_is_one_of_the_choices(value):
    with pytest.raises(ValueError, match=r"30m, 1h, 4h or 24h"):
        Actions().snooze_span(value, exact=True)


def test_the_cli_snooze_is_any_duration_up_to_the_longest_choice():
    actions = Actions()
    assert actions.snooze_span("2h", exact=False) == timedelta(hours=2)
    assert actions.snooze_span(None, exact=False) == timedelta(hours=1)
    for value in ("3650d", "25h", "0s"):
        with pytest.raises(ValueError, match="at most 24h"):
            actions.snooze_span(value, exact=False)


def test_a_configured_default_must_be_a_choice():
    with pytest.raises(ValueError, match="snooze_default '2h' must be one of"):
        Actions(snooze_default="2h")
    custom = Actions(snooze_choices=["15m", "2h"], snooze_default="2h")
    assert custom.choice_words == "15m or 2h"


def test_alerts_snooze_refuses_a_decade(hostile_db):
    args = ["alerts", "snooze", "1", "--config", str(hostile_db), "--by", "ana"]
    refused = CliRunner().invoke(cli, [*args, "--for", "3650d"])
    assert refused.exit_code == 2
    assert "--for: snooze for more than 0s and at most 24h" in refused.output
    allowed = CliRunner().invoke(cli, [*args, "--for", "2h"])
    assert allowed.exit_code == 0, allowed.output


def test_snoozed_until_is_unchanged_after_a_refused_cli_snooze(hostile_db):
    CliRunner().invoke(cli, ["alerts", "snooze", "1", "--config", str(hostile_db), "--for", "9d"])
    engine = database.create_db_engine(f"sqlite:///{hostile_db.parent / 'ew.db'}")
    with Session(engine) as session:
        assert session.get(Incident, 1).snoozed_until is None
    engine.dispose()


async def test_a_forged_snooze_duration_on_a_link_is_refused(logged_in, engine, incident_id):  # noqa: F811
    # The link opens the incident page, whose snooze form offers only the configured choices.
    opened = await logged_in.get(link(incident_id, "snooze"), headers=BROWSER)
    page = await opened.text()
    assert re.findall(r"<option[^>]*>([^<]+)</option>", page)[:4] == ["30m", "1h", "4h", "24h"]
    token = form_token(page)
    path = f"/incidents/{incident_id}/snooze"
    for forged in ("3650d", "2h", "0s"):
        response = await logged_in.post(
            path, data={"for": forged, "csrf_token": token}, allow_redirects=False
        )
        assert response.status == 400
        assert "Snooze for 30m, 1h, 4h or 24h." in await response.text()
    with Session(engine) as session:
        assert session.get(Incident, incident_id).snoozed_until is None
    ok = await logged_in.post(path, data={"for": "24h", "csrf_token": token}, allow_redirects=False)
    assert ok.status == 303

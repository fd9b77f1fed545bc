"""The console's pages over HTTP: each renders for a logged-in user, filters and pages, the
incident page's sections, every action recorded with the user, "wrong?" labels, the CSV
export, and untrusted text kept inert."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import Session, select

from emberwatch.console import add_console
from emberwatch.console.auth import _STATE, SESSION_COOKIE
from emberwatch.console.users import start_session
from emberwatch.console.views import csv_cell
from emberwatch.models import (
    Delivery,
    EngagementSnapshot,
    FittedModel,
    Incident,
    IncidentAction,
    Label,
    MentionRecord,
    SentDigest,
)
from emberwatch.scoring.triage import playbook
from tests.alerts.test_incidents import T0, file_alerts
from tests.console.auth_helpers import BROWSER, form_token, make_user
from tests.helpers import make_config

CONFIG = make_config(
    http={"secret": "x" * 20},
    routes=[
        {
            "name": "r",
            "channels": ["digest"],
            "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Oslo"},
        }
    ],
)
NOW = T0 + timedelta(minutes=7)
LATE = (
    "Acme my order is three weeks late and support blamed the courier. "
    "I want a refund, nobody answers"
)


async def _client(engine, name: str, role: str) -> TestClient:
    app = web.Application()
    add_console(app, CONFIG, engine, lambda: NOW)
    client = TestClient(TestServer(app))
    await client.start_server()
    user = make_user(engine, name, role)
    token = start_session(engine, user, NOW, timedelta(hours=8))
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: app[_STATE].sign(token)})
    return client


@pytest.fixture
async def client(engine):
    client = await _client(engine, "ana", "responder")
    yield client
    await client.close()


@pytest.fixture
async def viewer(engine):
    client = await _client(engine, "vic", "viewer")
    yield client
    await client.close()


@pytest.fixture
def incident_id(engine) -> int:
    ids = file_alerts(
        engine,
        dict(now=T0, url="https://example.com/1", author="dana", text=LATE, engagement=5),
        dict(now=T0 + timedelta(minutes=2), url="https://example.com/1", author="eve", text="same"),
    )
    return ids[0]


async def page(client: TestClient, path: str, status: int = 200) -> str:
    response = await client.get(path, headers=BROWSER)
    text = await response.text()
    assert response.status == status, text[:500]
    return text


async def post(client: TestClient, path: str, data: dict, *, token_from: str) -> object:
    token = form_token(await page(client, token_from))
    return await client.post(
        path, data={**data, "csrf_token": token}, headers=BROWSER, allow_redirects=False
    )


def actions(engine) -> list[tuple[str, str, str, str | None]]:
    with Session(engine) as session:
        rows = session.exec(select(IncidentAction).order_by(IncidentAction.id)).all()
        return [(a.action, a.actor, a.via, a.note) for a in rows]


# -- every page ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/incidents/{id}", "/mentions", "/sources", "/digests"])
async def test_each_page_renders_for_a_logged_in_user(client, incident_id, path):
    html = await page(client, path.format(id=incident_id))
    assert "Logged in as <strong>ana</strong> (responder)" in html
    assert '<form method="post" action="/logout"' in html
    assert 'href="/static/console.css"' in html and 'name="viewport"' in html
    # No inline script: the policy forbids it; the only script is the external file.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/console.js" defer>']
    assert "style=" not in html


async def test_pages_need_a_session(engine, incident_id):
    app = web.Application()
    add_console(app, CONFIG, engine, lambda: NOW)
    async with TestClient(TestServer(app)) as anonymous:
        for path in ("/", f"/incidents/{incident_id}", "/mentions?format=csv", "/digests"):
            response = await anonymous.get(path, allow_redirects=False)
            assert response.status == 401, path


async def test_the_static_files_are_served(client):
    css = await client.get("/static/console.css")
    js = await client.get("/static/console.js")
    assert css.status == 200 and "@media" in await css.text()
    assert js.status == 200 and "/updates" in await js.text()


# -- the incident list ---------------------------------------------------------------------


async def test_the_list_puts_the_most_urgent_first_and_filters(client, engine):
    info, critical, warning = file_alerts(
        engine,
        dict(now=T0 - timedelta(hours=2), author="a", text="info story", severity="info"),
        dict(now=T0, author="b", text="critical story", severity="critical", title="Crit"),
        dict(now=T0 - timedelta(minutes=30), author="c", text="warning story", title="Warn"),
    )
    html = await page(client, "/")
    # Respond by: critical 12:15, warning 12:30, info 14:00.
    order = [int(n) for n in re.findall(r'<a href="/incidents/(\d+)">', html)]
    assert order == [critical, warning, info]
    assert "3 incidents, most urgent first" in html
    only = await page(client, "/?severity=critical&brand=acme&source=hn&category=complaint")
    assert re.findall(r'<a href="/incidents/(\d+)">', only) == [str(critical)]
    assert '<option value="critical" selected>' in only
    # An unknown filter value falls back to "any", not an error.
    await page(client, "/?severity=%27%3B--&status=nope")


async def test_the_list_shows_who_acknowledged_and_the_trend(client, engine, incident_id):
    with Session(engine) as session:
        mention = session.exec(select(MentionRecord)).first()
        for minutes, likes in ((-60, 10), (-20, 40), (0, 100)):
            session.add(
                EngagementSnapshot(
                    mention_id=mention.id, seen_at=NOW + timedelta(minutes=minutes), likes=likes
                )
            )
        session.commit()
    await post(client, f"/incidents/{incident_id}/ack", {}, token_from="/")
    html = await page(client, "/")
    assert "acknowledged by ana" in html
    assert '<svg class="spark"' in html and "+90 in the last hour" in html


async def test_updates_reports_the_newest_incident(client, incident_id):
    response = await client.get("/updates")
    assert await response.json() == {"newest": incident_id}


# -- one incident ----------------------------------------------------------------------------


async def test_the_incident_page_has_every_section(client, engine, incident_id):
    with Session(engine) as session:
        session.add(
            Delivery(
                dedup_key="k1",
                channel="slack",
                incident_id=incident_id,
                status="sent",
                created_at=T0,
                next_attempt_at=T0,
                sent_at=T0 + timedelta(seconds=3),
            )
        )
        session.add(
            Delivery(
                dedup_key="k2",
                channel="email",
                recipient="ops@acme.example",
                incident_id=incident_id,
                status="failed",
                attempts=3,
                created_at=T0,
                next_attempt_at=T0,
                last_error="email: send: SMTP 550 no such user",
            )
        )
        session.commit()
    html = await page(client, f"/incidents/{incident_id}")
    print(html[html.find('<section id="why">') :][:700])
    assert 'id="why"' in html and "A customer on Hacker News complains about acme" in html
    # Respond-by in the team's zone (Oslo is UTC+1 in November): opened 12:00Z + 1 hour.
    assert "Respond by 14:00 CET, Fri 20 Nov" in html and "times in Europe/Oslo" in html
    for step in playbook("complaint", severity="warning"):
        assert step.replace("'", "&#39;") in html
    assert '<textarea id="draft-reply" readonly' in html and "private message" in html
    # Mentions newest first.
    assert html.index("<strong>eve</strong>") < html.index("<strong>dana</strong>")
    assert 'href="https://example.com/1"' in html
    # History: each channel's messages with their state.
    assert "<h4>slack</h4>" in html and "<h4>email → ops@acme.example</h4>" in html
    assert "failed</span>" in html and "SMTP 550 no such user" in html


async def test_abuse_gets_no_draft_reply(client, engine):
    (found,) = file_alerts(engine, dict(now=T0, author="troll", text="acme", category="abuse"))
    html = await page(client, f"/incidents/{found}")
    assert "draft-reply" not in html and "No draft: the playbook says don&#39;t react" in html


async def test_an_action_link_shows_a_confirm_form_for_the_logged_in_user(client, incident_id):
    html = await page(client, f"/incidents/{incident_id}?action=snooze")
    assert f"Snooze incident #{incident_id} as ana?" in html
    assert f'action="/incidents/{incident_id}/snooze" class="confirm"' in html


@pytest.mark.parametrize(
    ("action", "data", "status"),
    [
        ("ack", {}, "acknowledged"),
        ("snooze", {"for": "1h"}, "acknowledged"),
        ("resolve", {}, "resolved"),
    ],
)
async def test_each_action_records_the_logged_in_user(
    client, engine, incident_id, action, data, status
):
    path = f"/incidents/{incident_id}"
    response = await post(client, f"{path}/{action}", {**data, "episode": "1"}, token_from=path)
    assert response.status == 303
    assert response.headers["Location"] == f"{path}?done={action}&result=changed"
    assert actions(engine)[-1][:3] == (action, "ana", "console")
    with Session(engine) as session:
        assert session.get(Incident, incident_id).status == status
    html = await page(client, response.headers["Location"])
    assert "by ana." in html and "<strong>ana</strong>" in html


async def test_a_typed_name_is_ignored(client, engine, incident_id):
    path = f"/incidents/{incident_id}"
    await post(client, f"{path}/ack", {"name": "mallory"}, token_from=path)
    assert actions(engine) == [("ack", "ana", "console", None)]


async def test_assign_and_note_are_recorded(client, engine, incident_id):
    path = f"/incidents/{incident_id}"
    make_user(engine, "bo", "viewer")
    response = await post(client, f"{path}/assign", {"user": "bo"}, token_from=path)
    assert response.status == 303
    refused = await post(client, f"{path}/assign", {"user": "nobody"}, token_from=path)
    assert refused.status == 400
    await post(
        client, f"{path}/note", {"note": "Called her <b>back</b>\nrefund sent"}, token_from=path
    )
    assert actions(engine) == [
        ("assign", "ana", "console", "bo"),
        ("note", "ana", "console", "Called her <b>back</b>\nrefund sent"),
    ]
    html = await page(client, path)
    assert "assigned to bo" in html and "Called her &lt;b&gt;back&lt;/b&gt;" in html
    listed = await page(client, "/")
    assert "assigned to bo" in listed


async def test_a_bad_snooze_span_is_refused(client, engine, incident_id):
    path = f"/incidents/{incident_id}"
    response = await post(client, f"{path}/snooze", {"for": "3650d"}, token_from=path)
    assert response.status == 400 and actions(engine) == []


async def test_a_viewer_reads_but_cannot_act(viewer, engine, incident_id):
    path = f"/incidents/{incident_id}"
    html = await page(viewer, path)
    assert f'action="{path}/ack"' not in html and "wrong?" not in html
    response = await post(viewer, f"{path}/ack", {}, token_from=path)
    assert response.status == 403 and actions(engine) == []


# -- "wrong?" labels -----------------------------------------------------------------------


async def test_wrong_stores_the_label_as_the_user_and_refits(client, engine, incident_id):
    with Session(engine) as session:
        mention = session.exec(select(MentionRecord).where(MentionRecord.author == "eve")).one()
    path = f"/incidents/{incident_id}"
    response = await post(
        client,
        f"/mentions/{mention.id}/label",
        {"complaint": "no", "category": "question", "next": path},
        token_from=path,
    )
    assert response.status == 303
    assert response.headers["Location"] == f"{path}?labelled={mention.id}#m{mention.id}"
    with Session(engine) as session:
        labels = session.exec(select(Label).order_by(Label.field)).all()
        assert [(la.field, la.value, la.labelled_by, la.via) for la in labels] == [
            ("category", "question", "ana", "console"),
            ("complaint", "false", "ana", "console"),
        ]
        assert labels[0].mention_id == mention.id
        assert session.exec(select(FittedModel)).first().n_labels == 1
    html = await page(client, response.headers["Location"])
    assert "Team label: not a complaint (ana), category question (ana)" in html
    assert "Label stored; the learned layer was refitted." in html


async def test_wrong_refuses_an_unknown_category_and_an_offsite_return(client, engine, incident_id):
    with Session(engine) as session:
        mention_id = session.exec(select(MentionRecord.id)).first()
    bad = await post(
        client, f"/mentions/{mention_id}/label", {"category": "spam"}, token_from="/mentions"
    )
    assert bad.status == 400
    away = await post(
        client,
        f"/mentions/{mention_id}/label",
        {"complaint": "yes", "next": "//evil.example/"},
        token_from="/mentions",
    )
    assert away.headers["Location"].startswith("/mentions?labelled=")


# -- mentions and the export -----------------------------------------------------------------


def add_mentions(engine, texts: list[str], **fields) -> None:
    with Session(engine) as session:
        for n, text in enumerate(texts):
            session.add(
                MentionRecord(
                    source=fields.get("source", "rss"),
                    external_id=f"x{n}-{text[:20]}",
                    source_name=fields.get("source_name", "hn"),
                    brand="acme",
                    text=text,
                    url=fields.get("url"),
                    author=fields.get("author", '=HYPERLINK("http://evil")'),
                    first_seen_at=T0 + timedelta(minutes=n),
                    sentiment=fields.get("sentiment", -0.5),
                    category="complaint",
                    language="en",
                )
            )
        session.commit()


async def test_mentions_search_filters_and_pages(client, engine):
    add_mentions(engine, [f"kettle number {n}" for n in range(60)])
    add_mentions(engine, ["toaster is fine"], sentiment=0.6)
    first = await page(client, "/mentions?q=kettle")
    assert first.count('class="mention"') == 50 and "Mentions 1–50" in first
    assert "kettle number 59" in first and "kettle number 9<" not in first
    assert 'href="/mentions?q=kettle&amp;page=2"' in first
    second = await page(client, "/mentions?q=kettle&page=2")
    assert second.count('class="mention"') == 10 and "Mentions 51–60" in second
    positive = await page(client, "/mentions?sentiment=positive&brand=acme&category=complaint")
    assert positive.count('class="mention"') == 1 and "toaster is fine" in positive
    dated = await page(client, "/mentions?since=2026-11-20&until=2026-11-20&language=en")
    assert dated.count('class="mention"') == 50
    none = await page(client, "/mentions?since=2026-11-21")
    assert "No mentions match." in none


@pytest.mark.parametrize(
    "query", ["'; DROP TABLE mentions; --", "100%", "a_b", "\\", '" OR 1=1 --', "%_%"]
)
async def test_a_search_with_sql_metacharacters_matches_literally(client, engine, query):
    add_mentions(engine, ["plain text", "100% broken", "a_b c", "back\\slash"])
    html = await page(
        client, "/mentions?" + __import__("urllib.parse").parse.urlencode({"q": query})
    )
    expected = {
        "100%": ["100% broken"],
        "a_b": ["a_b c"],
        "\\": ["back\\slash"],
    }.get(query, [])
    assert html.count('class="mention"') == len(expected)
    with Session(engine) as session:
        assert len(session.exec(select(MentionRecord)).all()) == 4


SEARCHED = [
    "Zebra Crossing by the station",
    "zebra  crossing, two spaces",
    "CAFÉ au lait was cold",
    "café crème",
    "Straße gesperrt",
    "NAÏVE question",
    "日本語のテキストです",
    'they said "no refund" again',
    "100% broken since the 5_0 update",
    "back\\slash and 'quotes'",
    "ǅemal wrote",
    "plain",
]
SEARCHES = [
    "zebra crossing", "ZEBRA", "a c", "café", "CAFÉ", "caf", "straße", "naïve", "NAÏVE",
    "本語の", "日本", '"no refund"', 'said "', "% broken", "5_0", "\\sl", "'quotes'",
    "ǆemal", "ra  c", "ab", "e", "nothing like it", "tion", "by the",
]  # fmt: skip


def _search(engine, q: str) -> list[int]:
    from zoneinfo import ZoneInfo

    from emberwatch.console.views import MentionFilters, search_mentions

    with Session(engine) as session:
        items, _more = search_mentions(session, MentionFilters(q=q), ZoneInfo("UTC"))
        return [item.record.id for item in items]


def test_the_trigram_index_changes_no_search_result(engine, monkeypatch):
    """Every search finds what the plain LIKE finds, non-ASCII letters included (SQLite's
    LIKE folds only ASCII letters, so "café" does not find "CAFÉ" there; PostgreSQL's
    folds them all); titles and authors are searched as well as the text."""
    from emberwatch.console import views

    add_mentions(engine, SEARCHED, author="Ünal Çelik")
    add_mentions(engine, ["untitled"], author="someone", source_name="appstore")
    with Session(engine) as session:
        titled = session.exec(select(MentionRecord).where(MentionRecord.text == "untitled")).one()
        titled.title = "Zebra crossings everywhere"
        session.add(titled)
        session.commit()
    searches = [*SEARCHES, "ünal ç", "ÜNAL", "Çelik"]
    indexed = {q: _search(engine, q) for q in searches}
    monkeypatch.setattr(views, "SEARCH_MIN_CHARS", 10**6)  # LIKE alone
    plain = {q: _search(engine, q) for q in searches}
    assert indexed == plain
    assert len(indexed["zebra crossing"]) == 2 and len(indexed["ZEBRA"]) == 3
    assert len(indexed["本語の"]) == 1 and len(indexed['"no refund"']) == 1
    assert len(indexed["nothing like it"]) == 0
    assert len(indexed["Çelik"]) == len(SEARCHED)
    non_ascii_folded = engine.dialect.name == "postgresql"
    assert len(indexed["CAFÉ"]) == (2 if non_ascii_folded else 1)
    assert len(indexed["ünal ç"]) == (len(SEARCHED) if non_ascii_folded else 0)


def test_the_trigram_index_follows_every_change(engine):
    """Inserts, edits of the text, title or author, and deletes reach the index (on SQLite
    by triggers on ``mentions``; a migration that rebuilds the table must recreate them)."""
    add_mentions(engine, ["the kettle leaks", "the toaster burns"], author="dana")
    assert len(_search(engine, "kettle")) == 1
    with Session(engine) as session:
        kettle = session.exec(
            select(MentionRecord).where(MentionRecord.text.contains("kettle"))
        ).one()
        kettle.text, kettle.title, kettle.author = "the blender hums", "Blender", "erin"
        kettle.likes = 5
        session.add(kettle)
        session.commit()
        blender = kettle.id
    assert _search(engine, "kettle") == [] and _search(engine, "dana") != [blender]
    assert _search(engine, "blender hums") == [blender] == _search(engine, "ERIN")
    with Session(engine) as session:
        session.delete(session.get(MentionRecord, blender))
        session.commit()
    assert _search(engine, "blender") == []
    assert len(_search(engine, "toaster")) == 1
    if engine.dialect.name == "sqlite":
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO mentions_search (mentions_search, rank) VALUES ('integrity-check', 1)"
            )


async def test_the_csv_export_is_the_current_search(client, engine):
    add_mentions(engine, ["kettle one", "kettle two", "toaster"], url="https://e.example/1")
    add_mentions(engine, ["-1 star", "@everyone look", "+1 agree"], author="plain")
    response = await client.get("/mentions?q=kettle&format=csv")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment;" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO((await response.read()).decode("utf-8"))))
    assert [r["text"] for r in rows] == ["kettle two", "kettle one"]
    assert rows[0]["first_seen_at"] == "2026-11-20T12:01:00Z"
    assert rows[0]["author"] == '\'=HYPERLINK("http://evil")'
    assert rows[0]["sentiment"] == "-0.5"  # a number stays a number
    everything = await client.get("/mentions?format=csv")
    texts = [r["text"] for r in csv.DictReader(io.StringIO(await everything.text()))]
    assert {"'-1 star", "'@everyone look", "'+1 agree"} <= set(texts)


async def test_the_csv_export_streams_in_batches(client, engine, monkeypatch):
    from emberwatch.console import views

    monkeypatch.setattr(views, "CSV_BATCH", 7)
    add_mentions(engine, [f"m{n}" for n in range(30)])
    body = await (await client.get("/mentions?format=csv")).text()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["text"] for r in rows] == [f"m{n}" for n in reversed(range(30))]


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+x", "'+x"),
        ("-x", "'-x"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("ok", "ok"),
        (-0.5, -0.5),
    ],
)
def test_csv_cells_cannot_start_a_formula(value, cell):
    assert csv_cell(value) == cell


# -- untrusted text --------------------------------------------------------------------------


EVIL = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
]


async def test_hostile_mention_text_is_rendered_inert(client, engine):
    (found,) = file_alerts(
        engine,
        dict(
            now=T0,
            author='"><img src=x onerror=alert(2)>\u202e',
            title="<script>alert(3)</script>",
            text=" ".join(EVIL),
            url="javascript:alert(4)",
        ),
    )
    for path in (f"/incidents/{found}", "/mentions", "/"):
        html = await page(client, path)
        assert "<img" not in html and "onerror=alert" not in html.replace("onerror=alert(", "")
        assert "<script>alert" not in html and "javascript:" not in html
        assert "\u202e" not in html
    html = await page(client, f"/incidents/{found}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html


# -- sources and digests ---------------------------------------------------------------------


async def test_sources_show_health_from_the_shared_decision(client, engine):
    from emberwatch.models import SourceState

    with Session(engine) as session:
        session.add(
            SourceState(
                name="hn",
                type="hackernews",
                last_poll_at=NOW - timedelta(minutes=1),
                last_success_at=NOW - timedelta(minutes=10),
                last_error="hackernews: fetch: HTTP 503",
                consecutive_failures=3,
                unhealthy_since=NOW - timedelta(minutes=9),
                items_last_poll=12,
                poll_due_at=NOW + timedelta(seconds=30),
            )
        )
        session.commit()
    html = await page(client, "/sources")
    assert "<strong>hn</strong>" in html and "unhealthy" in html
    assert "3 failed polls in a row" in html and "HTTP 503" in html
    assert ">12 <small>" in html or ">12<" in html


async def test_digests_are_listed_and_shown_as_sent(client, engine):
    with Session(engine) as session:
        session.add(
            SentDigest(
                day="2026-11-19",
                subject="Emberwatch digest",
                text="All clear",
                html="<html><body><p style='color: red'>All clear</p></body></html>",
                sent_at=T0,
            )
        )
        session.commit()
    html = await page(client, "/digests")
    assert '<a href="/digests/2026-11-19">2026-11-19</a>' in html and "Emberwatch digest" in html
    shown = await client.get("/digests/2026-11-19", headers=BROWSER)
    assert "<p style='color: red'>All clear</p>" in await shown.text()
    assert "sandbox" in shown.headers["Content-Security-Policy"]
    assert "script-src" not in shown.headers["Content-Security-Policy"]
    text = await client.get("/digests/2026-11-19.txt")
    assert await text.text() == "All clear"
    await page(client, "/digests/2026-11-18", status=404)


def test_a_digest_is_kept_as_it_is_sent(engine):
    from emberwatch import digest
    from emberwatch.channels.email import build_message

    message = build_message(
        sender="ew@acme.example", recipients=["o@x"], subject="Digest", text="t1", html="<p>h1</p>"
    )
    day = T0.date()
    digest.keep_sent(engine, day, message, NOW)
    again = build_message(
        sender="ew@acme.example", recipients=["o@x"], subject="Digest", text="t2", html="<p>h2</p>"
    )
    digest.keep_sent(engine, day, again, NOW)  # a retry replaces the earlier attempt
    with Session(engine) as session:
        kept = session.exec(select(SentDigest)).all()
    assert [(k.day, k.subject, k.text.strip(), k.html.strip()) for k in kept] == [
        ("2026-11-20", "Digest", "t2", "<p>h2</p>")
    ]

"""Grouping keys and near-duplicate text (pure functions); and, filed on a database, each
platform's reply link keeping a conversation in one incident, the demo's story included."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz, process, utils
from sqlmodel import Session, select
from tests.conftest import REPO, fixture_bytes

from emberwatch.alerts.grouping import (
    MIN_WORDS_FOR_TEXT_MATCH,
    TextIndex,
    TextShapes,
    grouping_keys,
    near_duplicate,
    normalize_url,
    thread_key,
)
from emberwatch.alerts.incidents import attach
from emberwatch.config import Brand, Grouping, load_config
from emberwatch.demo.story import StoryFeeds
from emberwatch.ingest import Runtime, poll_source
from emberwatch.matching import BrandMatcher
from emberwatch.mention import Mention
from emberwatch.models import AlertRecord, Incident, MentionRecord
from emberwatch.sources import CONNECTORS

STORY = "Acme kettle exploded in my kitchen and support refused any refund for the damage"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://www.Example.com/post/1/", "https://example.com/post/1"),
        ("https://example.com/p?id=1&utm_source=x&fbclid=y", "https://example.com/p?id=1"),
        ("https://example.com/p?b=2&a=1#comments", "https://example.com/p?a=1&b=2"),
        ("HTTPS://EXAMPLE.COM/p?ref=tw", "https://example.com/p"),
    ],
)
def test_it_treats_the_same_url_as_one_key(a, b):
    assert normalize_url(a) == normalize_url(b)


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://www.reddit.com/r/acme/comments/AbC12/title/", "reddit:post:abc12"),
        ("https://old.reddit.com/r/acme/comments/abc12/title/xyz99/", "reddit:post:abc12"),
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=10", "youtube:video:dQw4w9WgXcQ"),
        # An item link does not say whether the item is a story or a comment.
        ("https://news.ycombinator.com/item?id=1", None),
    ],
)
def test_it_finds_the_thread_a_link_points_into(url, key):
    assert thread_key(url) == key


def test_it_keys_on_url_thread_and_author_per_source():
    keys = grouping_keys("reddit", "https://reddit.com/r/a/comments/x1/t/c2", "@Dana ")
    assert keys == (
        "url:https://reddit.com/r/a/comments/x1/t/c2",
        "thread:reddit:post:x1",
        "author:reddit:dana",
    )
    # The connector's conversation comes first; the URL's is not repeated.
    assert grouping_keys(
        "reddit", "https://reddit.com/r/a/comments/x1/t/c2", None, "reddit:post:x1"
    ) == ("thread:reddit:post:x1", "url:https://reddit.com/r/a/comments/x1/t/c2")
    # The same handle on another site may be someone else.
    assert "author:hackernews:dana" in grouping_keys("hackernews", None, "dana")
    assert grouping_keys("rss", None, None) == ()


@pytest.mark.parametrize(
    ("text", "candidates", "expected"),
    [
        # Copied across sites: same words, other order and surroundings.
        (
            "RT: the damage! Acme kettle exploded in my kitchen and support refused any refund",
            {7: STORY},
            7,
        ),
        (STORY, {1: "Acme launches a new line of toasters in twelve bright colours"}, None),
        # Short texts are never fuzzy-matched, however alike.
        ("Acme is awful", {1: "Acme is awful"}, None),
        ("Acme is awful honestly", {1: "Acme is awful honestly, " + STORY}, None),
        (STORY, {1: "Acme is awful"}, None),
    ],
)
def test_it_matches_near_duplicate_text_but_not_short_text(text, candidates, expected):
    assert near_duplicate(text, candidates, threshold=88) == expected


def test_short_means_fewer_than_the_minimum_words():
    words = " ".join(f"w{i}" for i in range(MIN_WORDS_FOR_TEXT_MATCH))
    assert near_duplicate(words, {3: words}, 88) == 3
    shorter = " ".join(words.split()[:-1])
    assert near_duplicate(shorter, {3: shorter}, 88) is None


# -- the prefilter in TextIndex.best must never change what rapidfuzz alone would find --

_WORDS = ["acme", "kettle", "refund", "the", "my", "broke", "support", "café", "naïve", "x1"]
_WORD_LISTS = st.lists(st.sampled_from(_WORDS) | st.text(min_size=1, max_size=6), max_size=24)


def _brute_force(text, candidates, threshold):
    """What TextIndex.best did before it had a prefilter: rapidfuzz over every candidate."""
    keys, texts, seen = [], [], set()
    for key, candidate in candidates:
        processed = utils.default_process(candidate)
        if len(processed.split()) >= MIN_WORDS_FOR_TEXT_MATCH and (key, processed) not in seen:
            seen.add((key, processed))
            keys.insert(0, key)
            texts.insert(0, processed)
    processed = utils.default_process(text)
    if not texts or len(processed.split()) < MIN_WORDS_FOR_TEXT_MATCH:
        return None
    found = process.extractOne(
        processed, texts, scorer=fuzz.token_set_ratio, processor=None, score_cutoff=threshold
    )
    return None if found is None else keys[found[2]]


@settings(max_examples=400, deadline=None)
@given(
    query=_WORD_LISTS,
    candidates=st.lists(_WORD_LISTS, max_size=12),
    threshold=st.sampled_from([50.0, 70.0, 88.0, 95.0, 100.0]),
)
def test_best_finds_what_rapidfuzz_finds_over_every_candidate(query, candidates, threshold):
    index = TextIndex()
    # Keys repeat (an incident holds several texts), so per-key deduplication is tested.
    pairs = [(k % 4, " ".join(words)) for k, words in enumerate(candidates)]
    for key, candidate in pairs:
        index.add(key, candidate)
    assert index.best(" ".join(query), threshold) == _brute_force(" ".join(query), pairs, threshold)


@settings(max_examples=300, deadline=None)
@given(
    query=_WORD_LISTS,
    loaded=st.lists(_WORD_LISTS, max_size=8),
    added=st.lists(_WORD_LISTS, max_size=8),
    threshold=st.sampled_from([50.0, 88.0, 100.0]),
)
def test_best_keeps_newest_first_order_across_loaded_and_added_texts(
    query, loaded, added, threshold
):
    """Texts read from the database arrive newest first and rank after those filed since;
    ties between equal scores go to the newest, whatever order they were scored in."""
    index = TextIndex()
    # Loaded texts get keys of their own: _brute_force keeps the first copy it meets of a
    # repeated (key, text), which is the oldest one for the loaded texts listed below.
    older = [(k, " ".join(words)) for k, words in enumerate(loaded)]
    newer = [(100 + k % 3, " ".join(words)) for k, words in enumerate(added)]
    for key, candidate in older:
        index.add(key, candidate, newest=False)
    for key, candidate in newer:
        index.add(key, candidate)
    # _brute_force puts later pairs first: the oldest loaded text goes in first.
    everything = [*reversed(older), *newer]
    assert index.best(" ".join(query), threshold) == _brute_force(
        " ".join(query), everything, threshold
    )


@settings(max_examples=300, deadline=None)
@given(query=_WORD_LISTS, candidate=_WORD_LISTS)
def test_the_prefilter_ceiling_is_never_below_the_true_score(query, candidate):
    shapes = TextShapes()
    index = TextIndex(shapes)
    index.add(1, " ".join(candidate))
    shape = shapes.shape(" ".join(query))
    if len(index) == 0 or shape is None:
        return
    ceiling = index._ceilings_for(shape)[0]
    true = fuzz.token_set_ratio(shape.processed, index._texts[0], processor=None)
    assert ceiling >= true - 1e-6


def test_text_shapes_are_computed_once_and_report_when_full():
    shapes = TextShapes(limit=100)
    first = shapes.shape(STORY)
    assert first is not None and shapes.shape(STORY) is first
    assert shapes.shape("Acme is awful") is None  # too short to match, remembered as such
    for n in range(98):
        shapes.shape(f"{STORY} n{n}")
    assert not shapes.full()
    shapes.shape(f"{STORY} once more")
    assert shapes.full()


def test_indexes_sharing_text_shapes_agree_with_separate_ones():
    shared = TextShapes()
    texts = {1: STORY, 2: "Acme launches a new line of toasters in twelve bright colours today"}
    one, two = TextIndex(shared), TextIndex(shared)
    for key, text in texts.items():
        one.add(key, text)
    two.add(2, texts[2])
    query = STORY.replace("kitchen", "flat")
    assert one.best(query, 88) == 1
    assert two.best(query, 88) is None


# -- each platform's reply link files a conversation in one incident ---------------------

# Near-duplicate text only at 100, so what joins these incidents is the keys.
_BY_KEYS = Grouping(window=timedelta(days=30), similarity=100)


def _parse(source: str, *names: str) -> list[Mention]:
    return [m for name in names for m in CONNECTORS[source].parse(fixture_bytes(source, name))]


def _file(engine, mentions: list[Mention]) -> dict[str, int]:
    """File an alert on each mention, oldest first, as a poll would; each mention's
    incident by its external id."""
    incidents = {}
    with Session(engine) as session:
        for m in sorted(mentions, key=lambda m: m.published_at):
            now = m.published_at
            record = MentionRecord(
                source=m.source,
                external_id=m.external_id,
                source_name=m.source,
                brand="acme",
                url=m.url,
                author=m.author,
                title=m.title,
                text=m.text,
                published_at=now,
                first_seen_at=now,
                thread=m.thread,
            )
            session.add(record)
            session.flush()
            alert = AlertRecord(
                mention_id=record.id,
                brand="acme",
                source_name=m.source,
                category="complaint",
                severity="warning",
                reason="test",
                created_at=now,
                updated_at=now,
            )
            session.add(alert)
            session.flush()
            incidents[m.external_id] = attach(session, alert, record, _BY_KEYS, now).id
        session.commit()
    return incidents


def _groups(incidents: dict[str, int]) -> set[frozenset[str]]:
    """The mentions' external ids, grouped by the incident each was filed in."""
    by_incident: dict[int, set[str]] = {}
    for external_id, incident in incidents.items():
        by_incident.setdefault(incident, set()).add(external_id)
    return {frozenset(ids) for ids in by_incident.values()}


def _unlinked(mentions: list[Mention]) -> list[Mention]:
    return [replace(m, thread=None) for m in mentions]


def test_a_hacker_news_story_and_its_comments_share_one_incident(sqlite_engine):
    mentions = _parse("hackernews", "story_thread.json")
    assert _groups(_file(sqlite_engine, mentions)) == {
        # The story, a comment on it and a reply to that comment (parent_id 41000003).
        frozenset({"41000002", "41000003", "41000007"}),
        frozenset({"41000010"}),
    }


def test_without_story_id_each_hacker_news_comment_was_an_incident_of_its_own(sqlite_engine):
    # What grouping did before connectors stored the conversation: item URLs and authors
    # differ, so the story and its two comments were three incidents.
    mentions = _unlinked(_parse("hackernews", "story_thread.json"))
    assert len(_groups(_file(sqlite_engine, mentions))) == 4


def test_a_reddit_post_and_its_comments_share_one_incident(sqlite_engine):
    # The post from a search, its comments from the subreddit's comment listing and a
    # reply to a comment from a later poll: link_id names the post in every comment.
    mentions = _parse(
        "reddit", "search_new.json", "subreddit_comments.json", "comment_replies.json"
    )
    groups = _groups(_file(sqlite_engine, mentions))
    assert frozenset({"t3_1gk4a9z", "t1_lvn2c7d", "t1_lvn0a11", "t1_lvn4k2q"}) in groups
    assert {frozenset({"t3_1gk3m2b"}), frozenset({"t3_1gk2x0q"})} <= groups


def test_comments_on_one_youtube_video_share_one_incident(sqlite_engine):
    mentions = _parse("youtube", "video_threads.json", "channel_threads.json")
    assert {m.thread for m in mentions} == {"youtube:video:dQw4w9WgXcQ", None}
    assert _groups(_file(sqlite_engine, mentions)) == {
        frozenset(
            {
                "UgzDE2tasfmrYLyNkGt4AaABAg",
                "Ugw9pQ3rXyZ7bKc1aU94AaABAg",
                "UgxK1fakeDeletedAuthor4AaABAg",
            }
        ),
        # A channel discussion belongs to no video.
        frozenset({"UgyChannelDiscussionOnly4AaABAg"}),
    }


def test_a_mastodon_post_and_its_replies_share_one_incident(sqlite_engine):
    # in_reply_to_id: josé replies to alice's post, bob to josé's reply (same page, so
    # bob's reply takes josé's conversation).
    mentions = _parse("mastodon", "thread.json")
    assert _groups(_file(sqlite_engine, mentions)) == {
        frozenset({"113432119982311842", "113432131505618210", "113432140230994006"})
    }


def test_a_mastodon_reply_whose_parent_is_elsewhere_joins_by_the_servers_context(
    sqlite_engine,
):
    # Akkoma names the conversation's root (pleroma.context): bob's parent is not on the
    # page, yet bob's reply joins alice's post.
    mentions = _parse("mastodon", "akkoma_thread.json")
    assert _groups(_file(sqlite_engine, mentions)) == {
        frozenset({"AoPQ1xJ3b2k9nTQx4e", "AoPQ2vXyZrT8m1aB7u"})
    }


def test_a_bluesky_post_and_every_reply_under_it_share_one_incident(sqlite_engine):
    # record.reply.root.uri: erin's reply to dave's reply still names carol's post as root.
    mentions = _parse("bluesky", "search_thread.json")
    root = "at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3lab2cd7ypk2s"
    assert _groups(_file(sqlite_engine, mentions)) == {
        frozenset(
            {
                root,
                "at://did:plc:4qz7mbl5kxo3nuw2jrdyv6hs/app.bsky.feed.post/3lab2fkq7mc2d",
                "at://did:plc:vk3xjdw2fqbyi7gs5lcn4mro/app.bsky.feed.post/3lab2gtx4ds2k",
            }
        ),
        frozenset({"at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3lab2bq4xnc2a"}),
    }


def test_an_x_post_and_its_replies_share_one_incident(sqlite_engine):
    # conversation_id is the first post's id on every reply, however deep.
    mentions = _parse("x", "search_conversation.json")
    assert _groups(_file(sqlite_engine, mentions)) == {
        frozenset({"1853744343282618369", "1853751171609633459", "1853753390396523733"}),
        frozenset({"1853738580308918272"}),
    }


def test_a_link_into_a_thread_joins_that_thread(sqlite_engine):
    # A news item (no conversation of its own) linking a Reddit thread joins the thread.
    post = _parse("reddit", "search_new.json")[0]
    alert = Mention(
        "rss",
        "urn:alert:1",
        "https://www.reddit.com/r/smallbusiness/comments/1gk4a9z/acme_support_ghosted_me/",
        None,
        None,
        "Reddit: Acme support ghosted me",
        "A small business owner says Acme's support went silent.",
        post.published_at + timedelta(hours=1),
    )
    assert _groups(_file(sqlite_engine, [post, alert])) == {
        frozenset({"t3_1gk4a9z", "urn:alert:1"})
    }


# -- authors: one spelling per person, for grouping and VIP matching alike ----------------


def test_an_rss_author_groups_and_matches_vips_by_name_however_the_feed_wrote_it(
    sqlite_engine,
):
    first, second, dana, tom = _parse("rss", "reviews.rss")
    # "maria.k@reviews.test (maria.k)" and "... (Maria.K)": one reviewer, one incident.
    assert _groups(_file(sqlite_engine, [first, second, dana, tom])) == {
        frozenset({"r-2207", "r-2231"}),
        frozenset({"r-2240"}),
        frozenset({"r-2244"}),
    }
    vip = BrandMatcher.build(_brand(vip=["@Maria.K", "dana w."]))
    assert [vip.is_vip(m.author) for m in (first, second, dana, tom)] == [True, True, True, False]


def _brand(**fields):
    return Brand(name="acme", include=["Acme"], **fields)


def test_author_keys_agree_whatever_the_at_sign_and_case():
    keys = {grouping_keys("x", None, a) for a in ("@Dana_W", "dana_w", " DANA_W ")}
    assert keys == {("author:x:dana_w",)}
    assert grouping_keys("rss", None, "maria.k@reviews.test (maria.k)") == ("author:rss:maria.k",)


# -- the demo's story ---------------------------------------------------------------------

DEMO_FEEDS = "http://demo.test"


@respx.mock
async def test_in_the_demo_the_hacker_news_comment_joins_its_storys_incident(engine, monkeypatch):
    """The demo's scripted story, polled every 3 s of its minute through the real pipeline:
    three incidents, the Hacker News story and the comment on it in one."""
    for name, value in {
        "DEMO_OUTPUT": "/nonexistent",
        "DEMO_FEEDS": DEMO_FEEDS,
        "DEMO_SLACK_WEBHOOK": f"{DEMO_FEEDS}/slack",
        "DEMO_SMTP_PORT": "2525",
        "DEMO_HTTP_PORT": "8788",
    }.items():
        monkeypatch.setenv(name, value)
    config = load_config(REPO / "config" / "demo.toml")
    started = datetime(2026, 11, 20, 12, tzinfo=UTC)
    clock = [started]
    story = StoryFeeds(started, 60.0, clock=lambda: clock[0])

    def serve(request: httpx.Request) -> httpx.Response:
        reply = story.handle(request.method, request.url.raw_path.decode(), b"")
        return httpx.Response(reply.status, content=reply.body)

    respx.route(host="demo.test").mock(side_effect=serve)
    async with httpx.AsyncClient() as http:
        rt = Runtime.build(config, engine, http, clock=lambda: clock[0])
        for second in range(0, 61, 3):
            clock[0] = started + timedelta(seconds=second)
            for source in config.sources:
                await poll_source(rt, source, force=True)
        rt.close()

    with Session(engine) as session:
        rows = session.exec(
            select(MentionRecord.external_id, AlertRecord.incident_id, MentionRecord.thread)
            .join(AlertRecord, AlertRecord.mention_id == MentionRecord.id)
            .order_by(AlertRecord.id)
        ).all()
        incidents = session.exec(select(Incident)).all()
    by_mention = {external_id: incident for external_id, incident, _ in rows}
    assert by_mention["41000003"] == by_mention["41000002"]
    assert {thread for _, _, thread in rows} >= {"hackernews:story:41000002"}
    # The story makes three incidents: the review (its customer needs a reply where she
    # wrote it), the HN conversation, and the news piece (the press, another audience).
    # Other mentions may raise alerts of their own, as scoring has it; none joins these.
    story = {"rev-102", "41000002", "41000003", "urn:demo:news-2"}
    assert {group for group in _groups(by_mention) if group & story} == {
        frozenset({"rev-102"}),
        frozenset({"41000002", "41000003"}),
        frozenset({"urn:demo:news-2"}),
    }
    assert len(incidents) == len(_groups(by_mention))

import copy
import pickle
from datetime import UTC, datetime, timedelta, timezone

import pytest

from emberwatch.mention import (
    MAX_THREAD_LENGTH,
    Mention,
    author_key,
    conversation,
    normalize_author,
    parse_timestamp,
)


def test_json_round_trip_keeps_every_field_and_utc():
    m = Mention(
        "x",
        "9",
        "https://x.com/a/status/9",
        "a",
        10,
        None,
        "hi",
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        None,
        1,
        2,
        3,
        "x:conversation:9",
    )
    data = m.to_dict()
    assert data["published_at"] == "2026-01-02T03:04:05Z"
    assert list(data) == [
        "source",
        "external_id",
        "url",
        "author",
        "author_followers",
        "title",
        "text",
        "published_at",
        "rating",
        "likes",
        "reposts",
        "replies",
        "thread",
    ]
    assert Mention.from_dict(data) == m


def test_from_dict_fills_missing_fields_with_none():
    m = Mention.from_dict({"text": "hello"})
    assert m.text == "hello" and m.url is None and m.likes is None and m.engagement == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T12:00:00+02:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (
            datetime(2026, 3, 1, 5, tzinfo=timezone(timedelta(hours=-5))),
            datetime(2026, 3, 1, 10, tzinfo=UTC),
        ),
        (None, None),
    ],
)
def test_timestamps_become_aware_utc(value, expected):
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize(
    ("source", "written", "stored"),
    [
        # RSS 2.0's <author> is "email (name)": the name is who wrote it.
        ("rss", "maria.k@reviews.test (maria.k)", "maria.k"),
        ("rss", "Maria K <maria.k@reviews.test>", "Maria K"),
        # feedparser's rendering of an Atom author with a name and an email.
        ("rss", "Maria K (maria.k@reviews.test)", "Maria K"),
        ("rss", "maria.k@reviews.test", "maria.k@reviews.test"),
        ("rss", "  Dana \n W. ", "Dana W."),
        # Elsewhere an address-like author is a handle: Mastodon's remote acct.
        ("mastodon", "@josé@mastodon.online", "josé@mastodon.online"),
        ("x", "@Dana_W", "Dana_W"),
        ("hackernews", "dana_w", "dana_w"),
        ("youtube", "@AcmeFan", "AcmeFan"),
        ("x", " @ ", None),
        ("x", None, None),
    ],
)
def test_it_stores_one_spelling_of_an_author_per_platform(source, written, stored):
    assert normalize_author(source, written) == stored


def test_author_keys_ignore_the_at_sign_case_and_how_rss_wrote_it():
    assert author_key("x", "@Dana_W") == author_key("x", "dana_w") == "dana_w"
    assert author_key("rss", "maria.k@reviews.test (maria.k)") == author_key("rss", "Maria.K")
    assert author_key("reddit", None) is None


def test_a_conversation_key_names_platform_kind_and_id_and_always_fits_its_column():
    assert conversation("hackernews", "story", 41000002) == "hackernews:story:41000002"
    uri = "at://did:web:" + "very-long-host." * 40 + "example/app.bsky.feed.post/3l"
    key = conversation("bluesky", "post", uri)
    assert len(key) <= MAX_THREAD_LENGTH and key.startswith("bluesky:post:sha256:")
    assert conversation("bluesky", "post", uri) == key


def test_a_mention_survives_pickling_and_copying_whole():
    m = Mention(
        "reddit",
        "t3_1",
        "https://r.example/1",
        "dana",
        42,
        "Title",
        "text",
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        4.5,
        1,
        2,
        3,
        "reddit:post:1",
    )
    assert pickle.loads(pickle.dumps(m)) == m
    assert copy.deepcopy(m) == m and copy.copy(m) == m
    assert pickle.loads(pickle.dumps(Mention.from_dict({"text": "x"}))) == Mention.from_dict(
        {"text": "x"}
    )


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("author_followers", "900", "author_followers must be a whole number, not '900'"),
        ("likes", True, "likes must be a whole number, not True"),
        ("replies", 2.5, "replies must be a whole number, not 2.5"),
        ("rating", "5", "rating must be a number, not '5'"),
        ("url", 5, "url must be a string, not 5"),
        ("thread", ["a"], "thread must be a string, not ['a']"),
        ("published_at", 1e20, "published_at: "),
        ("published_at", "yesterday", "published_at: "),
        ("published_at", [1], "published_at: not a timestamp: [1]"),
    ],
)
def test_from_dict_refuses_a_field_of_the_wrong_json_type_naming_it(field, value, reason):
    with pytest.raises(ValueError) as caught:
        Mention.from_dict({"text": "late again", field: value})
    assert str(caught.value).startswith(reason)


def test_from_dict_takes_counts_ratings_and_texts_of_the_right_types():
    mention = Mention.from_dict(
        {"text": "ok", "url": "https://x.test/1", "author_followers": 0, "rating": 4, "likes": 3}
    )
    assert (mention.author_followers, mention.rating, mention.likes) == (0, 4, 3)


FULL = {
    "source": "reddit",
    "external_id": "t3_1",
    "url": "https://r.example/1",
    "author": "dana",
    "author_followers": 42,
    "title": "Title",
    "text": "text",
    "published_at": "2026-01-02T03:04:05Z",
    "rating": 4.5,
    "likes": 1,
    "reposts": 2,
    "replies": 3,
    "thread": "reddit:post:1",
}


@pytest.mark.parametrize(
    "nul_in", [None, "source", "external_id", "url", "author", "title", "text", "thread"]
)
def test_from_dict_makes_what_the_constructor_makes_nul_removed_from_any_text(nul_in):
    data = dict(FULL)
    if nul_in is not None:
        data[nul_in] = f"\x00{data[nul_in]}\x00"
    made = Mention.from_dict(data)
    values = [data[name] for name in FULL]
    values[7] = parse_timestamp(values[7])
    assert made == Mention(*values)
    assert made == Mention.from_dict(FULL)
    assert type(made) is Mention
    with pytest.raises(AttributeError):  # still frozen
        made.text = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("field", ["source", "external_id", "url", "author", "title", "text"])
def test_a_lone_surrogate_becomes_a_replacement_character_so_the_mention_can_be_stored(field):
    # json.loads('"\\ud800"') is a lone surrogate: no database driver can encode it.
    data = dict(FULL)
    data[field] = f"caf\u00e9 \ud800{data[field]}\udfff"
    made = Mention.from_dict(data)
    assert getattr(made, field) == f"caf\u00e9 \ufffd{FULL[field]}\ufffd"
    for name in FULL:
        value = getattr(made, name)
        if isinstance(value, str):
            value.encode("utf-8")  # raises on a lone surrogate
    values = [data[name] for name in FULL]
    values[7] = parse_timestamp(values[7])
    assert made == Mention(*values)
    # A pair is one character in a str, so an emoji is left alone.
    assert Mention.from_dict({"text": "ok \U0001f600"}).text == "ok \U0001f600"


def test_from_dict_of_a_subclass_makes_the_subclass():
    class Tagged(Mention):
        __slots__ = ()

    assert type(Tagged.from_dict({"text": "hi"})) is Tagged

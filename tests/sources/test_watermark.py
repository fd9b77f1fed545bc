"""The review connectors' shared watermark: which items are new, when to stop, the cursor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emberwatch.mention import Mention
from emberwatch.sources._watermark import UNREADABLE, Resume, Walk, Watermark

NOW = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
FLOOR = NOW - timedelta(days=1)
MARK = NOW - timedelta(hours=1)


def item(external_id: str, published: datetime | None) -> Mention:
    return Mention(
        source="test",
        external_id=external_id,
        url=None,
        author=None,
        author_followers=None,
        title=None,
        text="",
        published_at=published,
    )


def ids(walk: Walk) -> list[str]:
    return [m.external_id for m in walk.mentions]


def cursor(newest: datetime, *seen: str, **resume: object) -> str:
    state: dict[str, object] = {"newest": newest.isoformat(), "ids": list(seen)}
    if resume:
        state["resume"] = resume
    return json.dumps(state)


# which items are new, and when to stop


@pytest.mark.parametrize(
    ("published", "external_id", "kept", "stops"),
    [
        (MARK + timedelta(seconds=1), "x", True, False),  # newer than the watermark
        (MARK, "x", True, False),  # at the watermark, not seen there
        (MARK, "seen", False, False),  # at the watermark, seen: skipped, no stop
        (MARK - timedelta(seconds=1), "x", False, True),  # older: stop
        (None, "x", True, False),  # no timestamp: kept
    ],
)
def test_it_decides_per_item_whether_it_is_new_and_whether_to_stop(
    published: datetime | None, external_id: str, kept: bool, stops: bool
) -> None:
    walk = Walk(cursor(MARK, "seen"), FLOOR)

    assert walk.take([item(external_id, published)]) is stops
    assert ids(walk) == ([external_id] if kept else [])


def test_it_stops_at_the_first_old_item_and_keeps_nothing_after_it() -> None:
    walk = Walk(cursor(MARK, "seen"), FLOOR)
    page = [
        item("new", NOW),
        item("seen", MARK),
        item("tie", MARK),
        item("old", MARK - timedelta(minutes=1)),
        item("after", NOW),
    ]

    assert walk.take(page)
    assert ids(walk) == ["new", "tie"]


def test_a_first_poll_starts_the_watermark_at_the_floor() -> None:
    walk = Walk(None, FLOOR)

    assert walk.take([item("a", NOW), item("b", FLOOR - timedelta(seconds=1))])
    assert ids(walk) == ["a"]
    assert walk.notes == []
    assert walk.resume_at is None


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"ids": []}',
        '{"newest": null}',
        '{"newest": "yesterday"}',
        '{"newest": "2024-05-02T11:00:00+00:00", "ids": 3}',
        '{"newest": "2024-05-02T11:00:00+00:00", "resume": {"at": 2}}',
        '{"newest": "2024-05-02T11:00:00+00:00", "resume": "page 2"}',
    ],
)
def test_an_unreadable_cursor_starts_over_from_the_floor_and_says_so(text: str) -> None:
    walk = Walk(text, FLOOR)

    assert walk.start == Watermark(FLOOR)
    assert walk.notes == [UNREADABLE]
    with pytest.raises(ValueError):
        Watermark.load(text)


# the next cursor


def test_a_caught_up_poll_moves_the_watermark_to_the_newest_item_and_its_ties() -> None:
    walk = Walk(cursor(MARK, "seen"), FLOOR)
    walk.take([item("a", NOW), item("b", NOW), item("c", MARK + timedelta(minutes=1))])

    assert json.loads(walk.cursor(caught_up=True)) == {"newest": NOW.isoformat(), "ids": ["a", "b"]}


def test_a_poll_that_finds_nothing_new_keeps_the_watermark() -> None:
    walk = Walk(cursor(MARK, "seen"), FLOOR)
    walk.take([item("seen", MARK), item("old", FLOOR)])

    assert json.loads(walk.cursor(caught_up=True)) == {"newest": MARK.isoformat(), "ids": ["seen"]}


def test_a_poll_cut_short_keeps_the_watermark_and_saves_where_to_go_on() -> None:
    walk = Walk(cursor(MARK, "seen"), FLOOR)
    walk.take([item("a", NOW), item("b", NOW - timedelta(minutes=1))])

    assert json.loads(walk.cursor(caught_up=False, resume_at=3)) == {
        "newest": MARK.isoformat(),
        "ids": ["seen"],
        "resume": {"at": 3, "top": NOW.isoformat(), "top_ids": ["a"]},
    }


def test_a_resumed_poll_goes_on_from_the_saved_point_and_then_moves_the_watermark() -> None:
    saved = cursor(MARK, "seen", at="T2", top=NOW.isoformat(), top_ids=["a"])
    walk = Walk(saved, FLOOR)

    assert walk.resume_at == "T2"
    assert walk.take([item("c", MARK + timedelta(minutes=5)), item("old", FLOOR)])
    assert ids(walk) == ["c"]
    assert json.loads(walk.cursor(caught_up=True)) == {"newest": NOW.isoformat(), "ids": ["a"]}


def test_a_resume_point_of_null_means_start_from_the_top() -> None:
    saved = cursor(MARK, "seen", at=None, top=NOW.isoformat(), top_ids=["a"])
    walk = Walk(saved, FLOOR)

    assert walk.resume_at is None
    walk.take([])
    assert json.loads(walk.cursor(caught_up=True)) == {"newest": MARK.isoformat(), "ids": ["seen"]}


def test_restart_forgets_the_resume_point_but_not_the_watermark() -> None:
    walk = Walk(cursor(MARK, "seen", at="STALE", top=NOW.isoformat(), top_ids=["a"]), FLOOR)

    walk.restart()

    assert walk.resume_at is None
    assert walk.start == Watermark(MARK, ("seen",))
    assert json.loads(walk.cursor(caught_up=True)) == {"newest": MARK.isoformat(), "ids": ["seen"]}


moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
id_lists = st.lists(st.text(max_size=8), max_size=3).map(tuple)


@given(
    newest=moments,
    seen=id_lists,
    resume=st.none()
    | st.builds(Resume, st.integers(0, 99) | st.text(min_size=1), moments, id_lists),
)
def test_a_watermark_reads_back_what_it_writes(
    newest: datetime, seen: tuple[str, ...], resume: Resume | None
) -> None:
    mark = Watermark(newest, seen, resume)

    assert Watermark.load(mark.dump()) == mark

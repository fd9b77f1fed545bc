from datetime import UTC, datetime, timedelta

import pytest

from emberwatch import db as database
from emberwatch.errors import EmberwatchError
from emberwatch.scheduling import _jitter, next_due, single_node_guard

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_a_second_node_on_one_sqlite_file_is_refused(tmp_path):
    engine = database.create_db_engine(f"sqlite:///{tmp_path / 'one.db'}")
    with (
        single_node_guard(engine),
        pytest.raises(EmberwatchError, match="SQLite serves a single node"),
        single_node_guard(engine),
    ):
        pass
    with single_node_guard(engine):  # released when the first node stops
        pass


@pytest.mark.parametrize(
    ("configured", "interval", "expected"),
    [(5, 300, 5), (5, 10, 1), (0, 300, None)],
)
def test_jitter_is_at_most_a_tenth_of_the_interval(configured, interval, expected):
    assert _jitter(timedelta(seconds=configured), timedelta(seconds=interval)) == expected


@pytest.mark.parametrize(
    ("due", "now", "expected", "why"),
    [
        (T0, T0 + timedelta(seconds=0.4), T0 + timedelta(seconds=5), "on time: one interval on"),
        (T0, T0 + timedelta(seconds=4.9), T0 + timedelta(seconds=5), "slow poll keeps phase"),
        (T0, T0 + timedelta(seconds=5), T0 + timedelta(seconds=10), "slot reached: the next"),
        (T0, T0 + timedelta(seconds=31), T0 + timedelta(seconds=35), "hung: missed slots skip"),
        (None, T0, T0 + timedelta(seconds=5), "never scheduled: from now"),
    ],
)
def test_the_next_poll_keeps_the_phase_and_skips_missed_slots(due, now, expected, why):
    assert next_due(due, timedelta(seconds=5), now) == expected, why

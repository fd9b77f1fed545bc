from datetime import timedelta

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from emberwatch import db as database
from emberwatch.errors import EmberwatchError
from emberwatch.scheduling import _jitter, _same_interval, single_node_guard


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


def test_an_identical_interval_is_kept_and_a_changed_one_replaced():
    assert _same_interval(IntervalTrigger(seconds=60), IntervalTrigger(minutes=1)) is False
    assert _same_interval(IntervalTrigger(seconds=60), IntervalTrigger(seconds=60)) is True

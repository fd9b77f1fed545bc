"""``_slots.maker`` makes what the dataclass's own constructor makes, and refuses the
classes it cannot make that way."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass

import pytest

from emberwatch._slots import maker


@dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int = 0
    label: str = ""


@dataclass(frozen=True, slots=True)
class Checked:
    x: int

    def __post_init__(self) -> None:
        if self.x < 0:
            raise ValueError("negative")


@dataclass(frozen=True)
class Unslotted:
    x: int


def test_made_equals_constructed_and_stays_frozen():
    make = maker(Point)
    made = make(1, 2, "a")
    assert made == Point(1, 2, "a") and type(made) is Point
    assert make.__name__ == "make_Point"
    with pytest.raises(FrozenInstanceError):
        made.x = 3  # type: ignore[misc]


def test_a_class_it_cannot_make_is_refused():
    with pytest.raises(TypeError, match="not a slotted dataclass"):
        maker(Unslotted)
    with pytest.raises(TypeError, match="has a __post_init__"):
        maker(Checked)


def test_skip_post_init_leaves_the_check_to_the_caller():
    make = maker(Checked, skip_post_init=True)
    assert make(1) == Checked(1)
    assert make(-1).x == -1  # __post_init__ would have refused it: the caller vouches

"""Settings every source shares; each connector subclasses them with its own parameters."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: object) -> timedelta:
    """Read ``90``, ``"90s"``, ``"5m"``, ``"2h"`` or ``"7d"`` as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 2h or 1d")
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])
    raise ValueError(f"expected a duration such as 30s, 5m, 2h or 1d, got {value!r}")


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda d: f"{d.total_seconds():g}s", return_type=str),
]


class StrictModel(BaseModel):
    """Config models reject unknown keys: a typo must not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSettings(StrictModel):
    """What every ``[[sources]]`` entry has, whatever its ``type``."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    type: str
    enabled: bool = True
    brands: list[str] = Field(
        default_factory=list, description="brand names this source serves; empty means all"
    )
    interval: Duration = timedelta(minutes=5)
    base_url: str
    timeout: Duration = timedelta(seconds=15)
    max_pages: int = Field(default=5, ge=1, le=100)
    backfill: Duration = timedelta(hours=24)

"""Settings every source shares; each connector subclasses them with its own parameters."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from emberwatch.settings import Duration, StrictModel, parse_duration


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


__all__ = ["Duration", "SourceSettings", "StrictModel", "parse_duration"]

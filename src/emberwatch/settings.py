"""What every config model shares: strictness and durations.

Used by :mod:`emberwatch.config`, by each connector's settings (:mod:`emberwatch.sources`)
and by each channel's (:mod:`emberwatch.channels`), none of which import the others.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    SecretStr,
)

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


# One address, strictly: dot-atom local part, dot-separated host labels (``ops@localhost``
# is allowed; spaces, a missing @ or an empty part are not).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*$")
_NAMED_ADDRESS = re.compile(r"^[^<>@]*<([^<>]+)>$")


def email_address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"{value!r} is not an email address; write it as name@example.com")
    return value


def sender_address(value: str) -> str:
    """``ops@example.com`` or ``Emberwatch <ops@example.com>``."""
    named = _NAMED_ADDRESS.match(value.strip())
    email_address(named[1].strip() if named else value)
    return value


def web_url(value: str) -> str:
    """An absolute http(s) URL; the message never repeats the value (it may hold a token)."""
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL, e.g. https://example.com/feed")
    if not rest or rest.startswith(("/", ":")) or any(ch.isspace() for ch in value):
        raise ValueError("must be an http:// or https:// URL with a host, e.g. https://example.com")
    return value


def secret_web_url(value: SecretStr) -> SecretStr:
    web_url(value.get_secret_value())
    return value


def positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError('must be longer than zero, e.g. "30s" or "5m"')
    return value


def not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError('must not be negative, e.g. "0s" or "30s"')
    return value


EmailAddress = Annotated[str, AfterValidator(email_address)]
SenderAddress = Annotated[str, AfterValidator(sender_address)]
WebUrl = Annotated[str, AfterValidator(web_url)]
PositiveDuration = Annotated[Duration, AfterValidator(positive)]
NonNegativeDuration = Annotated[Duration, AfterValidator(not_negative)]
SecretWebUrl = Annotated[SecretStr, AfterValidator(secret_web_url)]


def known_zone(value: str) -> str:
    """An IANA time zone name, or ValueError with an example."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r} (e.g. Europe/Berlin)") from None
    return value

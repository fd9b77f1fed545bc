"""The configuration file: one TOML document, validated strictly, with no I/O beyond reading it.

``load_config(path)`` returns a :class:`Config` or raises :class:`ConfigError` listing every
problem at once (file, key path, reason). Credentials are written as ``${ENV_VAR}``
references and held as ``SecretStr`` so they never reach logs or error messages.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from datetime import time, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from emberwatch.channels import CHANNELS, Channel
from emberwatch.errors import ConfigError, ConfigProblem
from emberwatch.settings import (
    EmailAddress,
    NonNegativeDuration,
    PositiveDuration,
    StrictModel,
    WebUrl,
    known_zone,
    parse_duration,
)
from emberwatch.settings import not_negative as _not_negative
from emberwatch.settings import positive as _positive
from emberwatch.settings import web_url as _web_url
from emberwatch.sources import SETTINGS_BY_TYPE, SourceSettings

DEFAULT_DATABASE_URL = "sqlite:///./emberwatch.db"
Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}

# Built from the connector registry, so adding a connector module adds its config type.
SourceConfig = Annotated[
    Union[tuple(SETTINGS_BY_TYPE.values())],  # noqa: UP007
    Field(discriminator="type"),
]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# What a read-only command (``load_config(..., need_secrets=False)``) puts in place of an
# unset ``${ENV}`` reference: a value that passes validation and reaches nothing if used.
UNSET_PLACEHOLDER = "http://unset.invalid/{name}"

# The databases Emberwatch ships drivers and migrations for, as database_url schemes.
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg", "postgres")


class _Problems(ValueError):
    """Several problems found by one validator, each at its own key path below it.

    Pydantic keeps the exception in the error's context, so ``validate_config`` can report
    each one at its key ("sources[acme-hn].brands") instead of at the model's root.
    """

    def __init__(self, located: list[tuple[tuple[Any, ...], str]]) -> None:
        self.located = located
        super().__init__("; ".join(message for _, message in located))


class Brand(StrictModel):
    """A brand to watch and the terms that identify it in text."""

    name: str = Field(min_length=1)
    include: list[str] = Field(min_length=1, description="words, phrases, @handles, #hashtags")
    exclude: list[str] = Field(default_factory=list)
    vip: list[str] = Field(default_factory=list, description="handles of high-value customers")
    lexicon: dict[str, float] = Field(
        default_factory=dict, description="sentiment overrides, word -> valence in -4..4"
    )


def _channel_field(channel: Channel) -> tuple[Any, Any]:
    return (channel.Settings | None, Field(default=None, description=channel.Settings.__doc__))


class _ChannelsBase(StrictModel):
    """``[channels.<name>]``: one optional table per registered channel."""

    @model_validator(mode="after")
    def _requirements(self) -> _ChannelsBase:
        for name, channel in CHANNELS.items():
            if getattr(self, name) is None:
                continue
            for needed, why in getattr(channel, "requires", {}).items():
                if getattr(self, needed, None) is None:
                    raise ValueError(why)
        return self

    def configured(self) -> list[str]:
        """The channels with a ``[channels.<name>]`` table, in registry order."""
        return [name for name in CHANNELS if getattr(self, name) is not None]


# Built from the channel registry, as SourceConfig is from the connector registry: adding
# a module to emberwatch.channels adds its ``[channels.<name>]`` table.
Channels = create_model(  # type: ignore[call-overload]
    "Channels",
    __base__=_ChannelsBase,
    **{name: _channel_field(channel) for name, channel in CHANNELS.items()},
)


class Thresholds(StrictModel):
    """When a scored mention becomes an alert."""

    min_severity: Severity = Field(
        default="warning", description="alert on mentions at or above this severity"
    )
    negative_sentiment: float = Field(default=-0.5, ge=-1, le=0)
    complaint: float = Field(default=0.6, ge=0, le=1)
    viral_probability: float = Field(default=0.5, ge=0, le=1)
    viral_engagement: int = Field(
        default=500, ge=1, description="engagement within 24 h that counts as viral"
    )
    high_reach_followers: int = Field(default=10_000, ge=0)


class DeliverySettings(StrictModel):
    """How the outbox worker sends."""

    interval: PositiveDuration = timedelta(seconds=2)
    max_attempts: int = Field(default=8, ge=1)
    max_ambiguous_attempts: int = Field(
        default=20,
        ge=1,
        description="sends that ended with no outcome (a crash or hang mid-send) before a "
        "delivery is marked failed; counted apart from max_attempts",
    )
    lease: PositiveDuration = timedelta(seconds=60)
    slack_deadline: PositiveDuration = timedelta(hours=2)
    email_deadline: PositiveDuration = timedelta(hours=12)
    digest_deadline: PositiveDuration = timedelta(hours=20)
    slack_min_gap: NonNegativeDuration = Field(
        default=timedelta(seconds=1), description="Slack allows about one message a second"
    )


# A route names channels as registered (emberwatch.channels); config checks each name.
ChannelName = str


class QuietHours(StrictModel):
    """A nightly window when only ``breakthrough`` severity (and above) notifies at once."""

    start: time
    end: time
    timezone: str = "UTC"
    breakthrough: Severity = "critical"

    _known_zone = field_validator("timezone")(known_zone)


class RouteMatch(StrictModel):
    """Which alerts a route takes; every listed key must match (empty lists match all)."""

    brand: list[str] = Field(default_factory=list)
    source: list[str] = Field(default_factory=list)
    category: list[str] = Field(default_factory=list)
    min_severity: Severity = "info"


class Route(StrictModel):
    """Where matching alerts go, and how often."""

    name: str = Field(min_length=1)
    match: RouteMatch = RouteMatch()
    channels: list[ChannelName] = Field(min_length=1)
    group_wait: NonNegativeDuration = timedelta(seconds=30)
    group_interval: PositiveDuration = timedelta(minutes=5)
    repeat_interval: PositiveDuration = timedelta(hours=4)
    quiet_hours: QuietHours | None = None
    continue_matching: bool = Field(default=False, description="also try the routes after this one")

    @model_validator(mode="before")
    @classmethod
    def _old_key(cls, data: Any) -> Any:
        # "receivers" was this key's name before channel became the one word for it; a
        # config written then still loads.
        if isinstance(data, dict) and "receivers" in data:
            if "channels" in data:
                raise ValueError("give channels or receivers (its old name), not both")
            data = {("channels" if k == "receivers" else k): v for k, v in data.items()}
        return data


class Escalation(StrictModel):
    """Unacknowledged warning/critical incidents are escalated after ``after``.

    Every escalation is emailed to ``emails``; from ``slack_min_severity`` (critical by
    default) it is also reposted to on-call in Slack with the ``slack_mention`` ping.
    """

    after: PositiveDuration = timedelta(minutes=15)
    max_times: int = Field(default=3, ge=0)
    slack_mention: str | None = Field(
        default=None,
        pattern=r"^(subteam:S[A-Z0-9]+|user:[UW][A-Z0-9]+|here|channel)$",
        description="who to ping: subteam:S0123ABC, user:U0123ABC, here or channel",
    )
    emails: list[EmailAddress] = Field(
        default_factory=list, description="escalation email list: every escalation goes here"
    )
    slack_min_severity: Severity = Field(
        default="critical",
        description="escalations at or above this severity also ping on-call in Slack",
    )
    retrigger_after: PositiveDuration = Field(
        default=timedelta(hours=4), description="acknowledged but unresolved this long: re-trigger"
    )


class Refresh(StrictModel):
    """Re-reading young mentions' engagement, so virality sees the trajectory."""

    interval: PositiveDuration = timedelta(minutes=15)
    window: PositiveDuration = Field(
        default=timedelta(hours=24), description="mentions younger than this are re-read"
    )


class Grouping(StrictModel):
    """How related mentions become one incident."""

    window: PositiveDuration = timedelta(hours=24)
    similarity: float = Field(
        default=88.0, ge=50, le=100, description="rapidfuzz token-set ratio for near-duplicates"
    )


class Http(StrictModel):
    """The HTTP endpoint in ``emberwatch run``: the console, action links, health, metrics."""

    bind: str = Field(default="127.0.0.1:8787", pattern=r"^[^:\s]*:\d{1,5}$")
    secret: SecretStr = Field(description="signs acknowledge/snooze/resolve links")
    public_url: WebUrl = Field(
        default="http://127.0.0.1:8787", description="how people reach this endpoint"
    )
    session_lifetime: PositiveDuration = Field(
        default=timedelta(hours=12), description="how long a console login lasts"
    )
    metrics_public: bool = Field(
        default=False, description="serve /metrics to anyone; otherwise it needs metrics_token"
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="the bearer token Prometheus sends for /metrics"
    )
    trusted_user_header: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9-]+$",
        description="single sign-on: the header a trusted reverse proxy names the user in",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses or CIDRs trusted_user_header is believed from",
    )

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (e.g. `openssl rand -hex 32`)")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _token_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (e.g. `openssl rand -hex 32`)")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an address or CIDR, e.g. 127.0.0.1 or 10.0.0.0/8"
                ) from None
        return value

    @model_validator(mode="after")
    def _header_needs_proxies(self) -> Http:
        if self.trusted_user_header and not self.trusted_proxies:
            raise ValueError(
                "trusted_user_header needs trusted_proxies: the reverse proxy's addresses "
                '(e.g. ["127.0.0.1"]); a header from anywhere else is ignored'
            )
        return self

    @property
    def trusted_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(entry, strict=False) for entry in self.trusted_proxies]

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry ``Secure`` when people reach the console over https."""
        return self.public_url.lower().startswith("https://")

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.bind.rpartition(":")
        return host or "0.0.0.0", int(port)


def duration_words(span: timedelta) -> str:
    """A duration as config files write it: "30m", "1h", "24h", "7d", "90s"."""
    seconds = int(span.total_seconds())
    if seconds and seconds % 86400 == 0 and seconds > 2 * 86400:
        return f"{seconds // 86400}d"
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{span.total_seconds():g}s"


class Actions(StrictModel):
    """Acknowledge, snooze and resolve: from an action link or ``emberwatch alerts``."""

    snooze_choices: list[PositiveDuration] = Field(
        default=[
            timedelta(minutes=30),
            timedelta(hours=1),
            timedelta(hours=4),
            timedelta(hours=24),
        ],
        min_length=1,
        description="what a snooze link offers; `alerts snooze --for` allows up to the longest",
    )
    snooze_default: PositiveDuration = Field(
        default=timedelta(hours=1), description="the choice a snooze link preselects"
    )

    @model_validator(mode="after")
    def _default_is_a_choice(self) -> Actions:
        if self.snooze_default not in self.snooze_choices:
            raise ValueError(
                f"snooze_default {duration_words(self.snooze_default)!r} must be one of "
                f"snooze_choices ({self.choice_words})"
            )
        return self

    @property
    def choice_words(self) -> str:
        """ "30m, 1h, 4h or 24h"."""
        words = [duration_words(c) for c in self.snooze_choices]
        return words[0] if len(words) == 1 else ", ".join(words[:-1]) + f" or {words[-1]}"

    def snooze_span(self, value: str | None, *, exact: bool) -> timedelta:
        """The snooze a link (``exact``: one of the choices) or the CLI (any positive span up
        to the longest choice) asks for; ValueError saying what is allowed otherwise."""
        try:
            span = parse_duration(value) if value else self.snooze_default
        except ValueError:
            if not exact:
                raise
            span = timedelta(0)
        if exact and span not in self.snooze_choices:
            raise ValueError(f"snooze for {self.choice_words}")
        longest = max(self.snooze_choices)
        if span <= timedelta(0) or span > longest:
            raise ValueError(
                f"snooze for more than 0s and at most {duration_words(longest)} "
                f"(the longest of [actions] snooze_choices: {self.choice_words})"
            )
        return span


class Config(StrictModel):
    """The whole configuration file."""

    database_url: str = DEFAULT_DATABASE_URL
    brands: list[Brand] = Field(min_length=1)
    sources: list[SourceConfig] = Field(default_factory=list)
    channels: Channels = Channels()
    thresholds: Thresholds = Thresholds()
    delivery: DeliverySettings = DeliverySettings()
    routes: list[Route] = Field(default_factory=list)
    escalation: Escalation = Escalation()
    grouping: Grouping = Grouping()
    refresh: Refresh = Refresh()
    http: Http | None = None
    actions: Actions = Actions()
    poll_jitter: NonNegativeDuration = timedelta(seconds=5)
    max_concurrent_polls: int = Field(
        default=20,
        ge=1,
        description="requests to sources in flight at once on a node (run and poll --once)",
    )
    database_outage_limit: PositiveDuration = Field(
        default=timedelta(minutes=10),
        description="a node whose database stays unreachable this long exits non-zero",
    )
    scoring_processes: int = Field(
        default=1,
        ge=0,
        description="processes that score large polls beside the poller; 0 scores in it",
    )
    evaluate_interval: PositiveDuration = Field(
        default=timedelta(seconds=10), description="how often alert timers are checked"
    )
    heartbeat_interval: PositiveDuration = Field(
        default=timedelta(minutes=5),
        description="how often run logs its 'alive' line (polls, mentions, alerts, deliveries)",
    )
    unhealthy_after_intervals: float = Field(
        default=3.0, gt=1, description="a source silent or failing this many intervals alerts"
    )
    alert_mentions: int = Field(
        default=5,
        ge=1,
        le=50,
        description="mentions an alert message lists, newest first; past this, 'and N more'",
    )

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        scheme, sep, _rest = value.partition("://")
        if not sep or scheme.lower() not in DATABASE_SCHEMES:
            # Only the scheme is repeated: the rest of the URL may hold a password.
            shown = f"{scheme!r}" if sep else "no scheme"
            raise ValueError(
                f"unsupported database URL ({shown}); supported schemes: "
                + ", ".join(f"{s}://" for s in DATABASE_SCHEMES)
                + " (e.g. sqlite:///./emberwatch.db or postgresql://user@host/emberwatch)"
            )
        return value

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        found: list[tuple[tuple[Any, ...], str]] = []
        brand_names = [b.name for b in self.brands]
        found += _duplicates("brands", "brand", brand_names)
        found += _duplicates("sources", "source", [s.name for s in self.sources])
        for i, source in enumerate(self.sources):
            found += [(("sources", i, *key), why) for key, why in _source_problems(source)]
            for brand in source.brands:
                if brand not in brand_names:
                    found.append(
                        (
                            ("sources", i, "brands"),
                            f"source {source.name!r} serves undefined brand {brand!r}; "
                            f"defined brands: {', '.join(brand_names)}",
                        )
                    )
        found += _duplicates("routes", "route", [r.name for r in self.routes])
        # Summary channels (the digest) are always routed to, configured or not.
        configured = set(self.channels.configured()) | {
            name for name, channel in CHANNELS.items() if channel.summary
        }
        source_names = [s.name for s in self.sources]
        for i, route in enumerate(self.routes):
            for channel in route.channels:
                if channel not in CHANNELS:
                    found.append(
                        (
                            ("routes", i, "channels"),
                            f"route {route.name!r} uses undefined channel {channel!r}; "
                            f"known channels: {', '.join(sorted(CHANNELS))}",
                        )
                    )
                elif channel not in configured:
                    found.append(
                        (
                            ("routes", i, "channels"),
                            f"route {route.name!r} uses channel {channel!r}, but "
                            f"[channels.{channel}] is not configured",
                        )
                    )
            for brand in route.match.brand:
                if brand not in brand_names:
                    found.append(
                        (
                            ("routes", i, "match", "brand"),
                            f"route {route.name!r} matches undefined brand {brand!r}",
                        )
                    )
            for source in route.match.source:
                if source not in source_names:
                    found.append(
                        (
                            ("routes", i, "match", "source"),
                            f"route {route.name!r} matches undefined source {source!r}",
                        )
                    )
        if self.escalation.emails and not any(
            getattr(self.channels, name) is not None and channel.targets_addresses
            for name, channel in CHANNELS.items()
        ):
            found.append(
                (("escalation", "emails"), "escalation.emails needs [channels.email] for SMTP")
            )
        if found:
            raise _Problems(found)
        return self

    def effective_routes(self) -> list[Route]:
        """The configured routes, or the default routes when there is no ``[[routes]]``.

        The defaults give each channel its role: on-call Slack hears of critical
        incidents, marketing email of warning and critical ones, the digest of everything.
        """
        if self.routes:
            return self.routes
        return default_routes(self.channels)

    def channel(self, name: str) -> Channel:
        """The registered channel ``name`` (what its outbox rows are sent with)."""
        return CHANNELS[name]

    def channel_settings(self, name: str) -> Any:
        """``[channels.<name>]``, or None when it is not configured."""
        return getattr(self.channels, name, None)

    def deadline(self, channel: str) -> timedelta:
        """How long a message to ``channel`` may wait in the outbox."""
        return CHANNELS[channel].deadline(self) if channel in CHANNELS else timedelta(hours=12)

    def brand(self, name: str) -> Brand | None:
        return next((b for b in self.brands if b.name == name), None)

    def source(self, name: str) -> SourceSettings | None:
        return next((s for s in self.sources if s.name == name), None)


@cache
def summary_channels() -> tuple[str, ...]:
    """Channels that hear of every incident whatever the routes say (the digest)."""
    return tuple(name for name, channel in CHANNELS.items() if channel.summary)


@cache
def paging_channels() -> tuple[str, ...]:
    """Channels escalations ping people on (on-call Slack)."""
    return tuple(name for name, channel in CHANNELS.items() if channel.pages)


@cache
def address_channels() -> tuple[str, ...]:
    """Channels that reach people by email address (escalation.emails, broken-channel
    notices)."""
    return tuple(name for name, channel in CHANNELS.items() if channel.targets_addresses)


@cache
def notifying_channels() -> tuple[str, ...]:
    """Channels that take per-incident notices under a noise budget."""
    return tuple(name for name, channel in CHANNELS.items() if channel.notifies)


def default_routes(channels: Any) -> list[Route]:
    """The routes used without ``[[routes]]``: one per role, for the configured channels.

    Each channel declares its role (on-call, marketing, ops) and the least severity that
    role hears of. A role's route continues matching, so an incident reaches every role it
    fits; the summary role (the digest) hears of everything and comes last.
    """
    routes = []
    summary = []
    for name, channel in CHANNELS.items():
        role = channel.role
        if role is None or (getattr(channels, name) is None and not channel.summary):
            continue
        if channel.summary:
            summary.append(Route(name=name, channels=[name]))
            continue
        existing = next((r for r in routes if r.name == role.name), None)
        if existing is not None:
            routes[routes.index(existing)] = existing.model_copy(
                update={"channels": [*existing.channels, name]}
            )
            continue
        routes.append(
            Route(
                name=role.name,
                channels=[name],
                match=RouteMatch(min_severity=role.min_severity),
                continue_matching=True,
            )
        )
    return routes + summary


def _duplicates(key: str, kind: str, names: list[str]) -> list[tuple[tuple[Any, ...], str]]:
    seen: set[str] = set()
    found = []
    for i, name in enumerate(names):
        if name in seen:
            found.append(
                ((key, i, "name"), f"{kind} name {name!r} is used twice; names must be unique")
            )
        seen.add(name)
    return found


# Source durations that must be longer than zero; every other one must not be negative.
_POSITIVE_SOURCE_DURATIONS = ("interval", "timeout")


def _source_problems(source: SourceSettings) -> list[tuple[tuple[str], str]]:
    """Checks every connector's settings share, made here so each connector stays small:
    its durations are sensible and its URLs are absolute http(s) URLs."""
    found: list[tuple[tuple[str], str]] = []
    for name in type(source).model_fields:
        value = getattr(source, name)
        check: Any = None
        if isinstance(value, timedelta):
            check = _positive if name in _POSITIVE_SOURCE_DURATIONS else _not_negative
        elif (name == "url" or name.endswith("_url")) and isinstance(value, str) and value:
            check = _web_url
        if check is None:
            continue
        try:
            check(value)
        except ValueError as exc:
            found.append(((name,), str(exc)))
    return found


def load_config(
    path: str | os.PathLike[str],
    environ: dict[str, str] | None = None,
    *,
    need_secrets: bool = True,
) -> Config:
    """Read, substitute ``${ENV}`` references in, and validate one config file.

    With ``need_secrets=False`` (commands that only read the database), an unset or empty
    ``${ENV}`` reference is not a problem where the placeholder it is given validates (a
    webhook URL, a token, the link secret); such a config must never be used to deliver.
    """
    shown = str(path)
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(shown, [ConfigProblem("", "file not found")]) from None
    except OSError as exc:
        raise ConfigError(shown, [ConfigProblem("", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise ConfigError(shown, [ConfigProblem("", "not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(shown, [ConfigProblem("", f"not valid TOML: {exc}")]) from None
    return validate_config(
        raw, shown, os.environ if environ is None else environ, need_secrets=need_secrets
    )


def validate_config(
    raw: dict[str, Any], shown: str, environ: Any, *, need_secrets: bool = True
) -> Config:
    """Validate an already-parsed document; every problem is collected before raising.

    Each problem is reported once: where an ``${ENV}`` reference is unset, that is the
    problem at its key, not also the validation error its empty value causes.
    """
    unset: list[ConfigProblem] = []
    resolved = _substitute_env(raw, (), environ, unset, raw, placeholder=not need_secrets)
    problems: list[ConfigProblem] = []
    try:
        config = Config.model_validate(resolved)
    except ValidationError as exc:
        problems = _problems_from(exc, resolved)
        config = None
    unset_keys = {p.key for p in unset}
    if need_secrets:
        problems = unset + [p for p in problems if p.key not in unset_keys]
    else:
        # A placeholder that did not validate where it stands: say which variable to set.
        failed = {p.key for p in problems}
        problems = [p for p in unset if p.key in failed] + [
            p for p in problems if p.key not in unset_keys
        ]
    if problems:
        raise ConfigError(shown, _dedupe(problems))
    assert config is not None
    return config


def _substitute_env(
    value: Any,
    key: tuple[Any, ...],
    environ: Any,
    problems: list[ConfigProblem],
    raw: dict[str, Any],
    *,
    placeholder: bool = False,
) -> Any:
    if isinstance(value, dict):
        return {
            k: _substitute_env(v, (*key, k), environ, problems, raw, placeholder=placeholder)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _substitute_env(v, (*key, i), environ, problems, raw, placeholder=placeholder)
            for i, v in enumerate(value)
        ]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        name = match[1]
        found = environ.get(name)
        if not found:
            state = "is empty" if name in environ else "is not set"
            problems.append(
                ConfigProblem(_render_key(key, raw), f"environment variable {name} {state}")
            )
            return UNSET_PLACEHOLDER.format(name=name) if placeholder else ""
        return found

    return _ENV_REF.sub(replace, value)


def _problems_from(exc: ValidationError, raw: dict[str, Any]) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = list(error["loc"])
        # A discriminated union adds the tag (the source type) to the path; drop it.
        if len(loc) >= 3 and loc[0] == "sources" and loc[2] in SETTINGS_BY_TYPE:
            del loc[2]
        carried = (error.get("ctx") or {}).get("error")
        if isinstance(carried, _Problems):
            for sub, why in carried.located:
                problems.append(ConfigProblem(_render_key((*loc, *sub), raw), why))
            continue
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check its spelling; see config/emberwatch.example.toml)"
        elif error["type"] == "union_tag_invalid":
            message = f"unknown source type; known types: {', '.join(sorted(SETTINGS_BY_TYPE))}"
        elif error["type"] == "union_tag_not_found":
            message = "missing 'type'"
        problems.append(ConfigProblem(_render_key(tuple(loc), raw), message))
    return problems


def _render_key(loc: tuple[Any, ...], raw: dict[str, Any] | None = None) -> str:
    parts: list[str] = []
    node: Any = raw
    for part in loc:
        if isinstance(part, int):
            label = str(part)
            if isinstance(node, list) and part < len(node) and isinstance(node[part], dict):
                label = str(node[part].get("name", part))
            parts.append(f"[{label}]")
            node = node[part] if isinstance(node, list) and part < len(node) else None
        else:
            parts.append(f".{part}" if parts else str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return "".join(parts)


def _dedupe(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    seen: set[ConfigProblem] = set()
    return [p for p in problems if not (p in seen or seen.add(p))]

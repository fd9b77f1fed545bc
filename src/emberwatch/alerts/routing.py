"""Routing: which channels hear about an incident, and quiet hours. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from emberwatch.config import SEVERITY_RANK, QuietHours, Route, summary_channels

if TYPE_CHECKING:
    from emberwatch.models import Incident, MentionRecord


@dataclass(frozen=True)
class Facts:
    """What routes and silences match on: one alert's brand, source, category, severity."""

    brand: str
    source_name: str
    source_type: str
    category: str
    severity: str

    @classmethod
    def of_incident(cls, incident: Incident, lead: MentionRecord) -> Facts:
        """An incident's facts: its brand, category and severity, its lead mention's source."""
        return cls(
            incident.brand, lead.source_name, lead.source, incident.category, incident.severity
        )


def route_matches(route: Route, facts: Facts) -> bool:
    match = route.match
    if match.brand and facts.brand not in match.brand:
        return False
    if match.source and not ({facts.source_name, facts.source_type} & set(match.source)):
        return False
    if match.category and facts.category not in match.category:
        return False
    return SEVERITY_RANK[facts.severity] >= SEVERITY_RANK[match.min_severity]


def channels_for(routes: list[Route], facts: Facts) -> dict[str, Route]:
    """Each channel with the first matching route that names it.

    Routes are tried in order; the first match wins unless it says ``continue_matching``.
    Nothing is unroutable: with no match the incident still reaches the summary channels
    (the digest).
    """
    chosen: dict[str, Route] = {}
    for route in routes:
        if not route_matches(route, facts):
            continue
        for channel in route.channels:
            chosen.setdefault(channel, route)
        if not route.continue_matching:
            break
    for summary in summary_channels():
        if summary not in chosen:
            chosen[summary] = routes[0] if routes else Route(name=summary, channels=[summary])
    return chosen


def in_quiet_hours(now: datetime, quiet: QuietHours) -> bool:
    local = now.astimezone(ZoneInfo(quiet.timezone)).time()
    if quiet.start <= quiet.end:
        return quiet.start <= local < quiet.end
    return local >= quiet.start or local < quiet.end  # the window spans midnight


def quiet_hours_end(now: datetime, quiet: QuietHours) -> datetime:
    """When the current quiet window ends (the next local ``end`` time)."""
    zone = ZoneInfo(quiet.timezone)
    local = now.astimezone(zone)
    end = datetime.combine(local.date(), quiet.end, tzinfo=zone)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), quiet.end, tzinfo=zone)
    return end


def breaks_through(severity: str, quiet: QuietHours) -> bool:
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[quiet.breakthrough]

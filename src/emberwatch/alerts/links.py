"""HMAC-signed action links: acknowledge, snooze or resolve an incident from a message.

A link names the incident, the episode, the action and who it was sent to, and is signed
with the configured secret, so it cannot be forged or edited. It expires with its episode.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote, urlencode


def signature(secret: str, incident_id: int, episode: int, action: str, who: str) -> str:
    message = f"{incident_id}:{episode}:{action}:{who}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def verify(secret: str, incident_id: int, episode: int, action: str, who: str, sig: str) -> bool:
    return hmac.compare_digest(signature(secret, incident_id, episode, action, who), sig)


def action_url(
    public_url: str, secret: str, incident_id: int, episode: int, action: str, who: str
) -> str:
    sig = signature(secret, incident_id, episode, action, who)
    query = urlencode({"who": who, "sig": sig})
    return f"{public_url.rstrip('/')}/actions/{incident_id}/{episode}/{quote(action)}?{query}"


def action_urls(
    public_url: str, secret: str, incident_id: int, episode: int, who: str
) -> dict[str, str]:
    return {
        action: action_url(public_url, secret, incident_id, episode, action, who)
        for action in ("ack", "snooze", "resolve")
    }

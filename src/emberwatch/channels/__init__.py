"""Channels: one module per kind, each with the same shape (see :mod:`.base`).

Words: a *channel* is where a message goes, and the module that takes it there: what
``[channels.<name>]`` configures, what routes name, what an outbox row is addressed to
(``deliveries.channel``), what is paced, broken or healthy (``channel_health``,
``channel_pacing``), and the ``channel`` label of the metrics. One word: "receiver", its
old synonym, survives only as a route's old key (``receivers = [...]``, still read).

A channel module defines ``NAME`` (its ``[channels.<name>]`` table and what routes name),
``Settings`` (its config model) and ``CHANNEL``, an object that implements
:class:`~emberwatch.channels.base.Channel`: it renders what the delivery worker hands it
and classifies how a send went. Retrying, pacing and deadlines live once, in
:mod:`emberwatch.delivery`. Adding a channel is one module and one line below.
"""

from __future__ import annotations

from importlib import import_module

from emberwatch.channels.base import Channel

# One line per channel, in the order the default routes try them.
_NAMES = ("slack", "email", "webhook", "teams", "apprise", "digest")
CHANNELS: dict[str, Channel] = {
    name: import_module(f"emberwatch.channels.{name}").CHANNEL for name in _NAMES
}


def channel(name: str) -> Channel:
    """The channel registered as ``name``; KeyError names the known channels."""
    try:
        return CHANNELS[name]
    except KeyError:
        known = ", ".join(sorted(CHANNELS))
        raise KeyError(f"unknown channel {name!r}; known channels: {known}") from None


__all__ = ["CHANNELS", "Channel", "channel"]

"""Receivers: one module per kind, each with the same shape (see :mod:`.base`).

Words: a *receiver* is where a message goes: what routes name, what an outbox row is
addressed to, what is paced, broken or healthy. This package holds the code of each
receiver; "channel" survives only where renaming would break what exists outside the
code: the config tables ``[channels.<name>]``, the ``deliveries.channel`` column and the
``channel`` label of ``emberwatch_delivery_attempts_total``, each holding a receiver's
name.

A receiver module defines ``NAME`` (its ``[channels.<name>]`` table and what routes name),
``Settings`` (its config model) and ``CHANNEL``, an object that implements
:class:`~emberwatch.channels.base.Channel`: it renders what the delivery worker hands it
and classifies how a send went. Retrying, pacing and deadlines live once, in
:mod:`emberwatch.delivery`. Adding a receiver is one module and one line below.
"""

from __future__ import annotations

from importlib import import_module

from emberwatch.channels.base import Channel

# One line per receiver, in the order the default routes try them.
_NAMES = ("slack", "email", "webhook", "teams", "apprise", "digest")
CHANNELS: dict[str, Channel] = {
    name: import_module(f"emberwatch.channels.{name}").CHANNEL for name in _NAMES
}


def channel(name: str) -> Channel:
    """The receiver registered as ``name``; KeyError names the known receivers."""
    try:
        return CHANNELS[name]
    except KeyError:
        known = ", ".join(sorted(CHANNELS))
        raise KeyError(f"unknown receiver {name!r}; known receivers: {known}") from None


__all__ = ["CHANNELS", "Channel", "channel"]

"""Channels format messages and classify failures; retrying lives in the outbox worker."""

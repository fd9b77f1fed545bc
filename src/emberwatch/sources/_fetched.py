from __future__ import annotations

from dataclasses import dataclass, field

from emberwatch.mention import Mention


@dataclass(frozen=True)
class Fetched:
    """What one poll of a source brought back.

    ``cursor`` is opaque to the pipeline: it stores it with the mentions and hands it back
    on the next poll. ``None`` means "keep the cursor you have".
    """

    mentions: list[Mention]
    cursor: str | None
    pages: int = 1
    notes: list[str] = field(default_factory=list)

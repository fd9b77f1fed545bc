"""Emberwatch: a self-hosted reputation monitor.

What users import: the config loader, the normalized mention, the scorer and the error tree.
Everything else is reachable by module for those who extend Emberwatch, but may change.

The names below are imported on first use (PEP 562), so ``emberwatch score`` or
``emberwatch --help``, which import a submodule, do not pay for the config loader's
pydantic models, every connector and SQLAlchemy.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Each public name and the module that defines it.
_PUBLIC = {
    "Config": "emberwatch.config",
    "ConfigError": "emberwatch.errors",
    "DeliveryError": "emberwatch.errors",
    "EmberwatchError": "emberwatch.errors",
    "FetchError": "emberwatch.errors",
    "Mention": "emberwatch.mention",
    "NotConfiguredError": "emberwatch.errors",
    "ParseError": "emberwatch.errors",
    "SchemaOutOfDateError": "emberwatch.errors",
    "Scorer": "emberwatch.scoring",
    "Scores": "emberwatch.scoring",
    "Snapshot": "emberwatch.scoring",
    "SourceError": "emberwatch.errors",
    "load_config": "emberwatch.config",
}


def __getattr__(name: str) -> Any:
    try:
        module = _PUBLIC[name]
    except KeyError:
        # AttributeError, not KeyError: ``from emberwatch import logs`` relies on it to
        # fall back to importing the submodule.
        raise AttributeError(f"module 'emberwatch' has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})


if TYPE_CHECKING:
    from emberwatch.config import Config, load_config
    from emberwatch.errors import (
        ConfigError,
        DeliveryError,
        EmberwatchError,
        FetchError,
        NotConfiguredError,
        ParseError,
        SchemaOutOfDateError,
        SourceError,
    )
    from emberwatch.mention import Mention
    from emberwatch.scoring import Scorer, Scores, Snapshot

__all__ = [
    "Config",
    "ConfigError",
    "DeliveryError",
    "EmberwatchError",
    "FetchError",
    "Mention",
    "NotConfiguredError",
    "ParseError",
    "SchemaOutOfDateError",
    "Scorer",
    "Scores",
    "Snapshot",
    "SourceError",
    "__version__",
    "load_config",
]

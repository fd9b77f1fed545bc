"""Emberwatch: a self-hosted reputation monitor.

What users import: the config loader, the normalized mention, the scorer and the error tree.
Everything else is reachable by module for those who extend Emberwatch, but may change.
"""

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

__version__ = "0.1.0"

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

"""Where the shared ground truth lives: ``../shared/data`` next to the repository, or
``$EMBERWATCH_SHARED_DATA``. Tests that need it skip, saying so, when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _shared_data() -> Path:
    env = os.environ.get("EMBERWATCH_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _shared_data()
    if not path.is_dir():
        pytest.skip(f"shared ground truth not found at {path} (set EMBERWATCH_SHARED_DATA)")
    return path

"""Console tests hash passwords with argon2id at a test-sized cost (the real cost is
checked once, in tests/test_users_cli.py)."""

import pytest

from tests.console.auth_helpers import use_cheap_hashes


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch):
    use_cheap_hashes(monkeypatch)

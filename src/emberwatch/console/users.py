"""The console's people and their logins, in the database: no HTTP here, so the CLI
(``emberwatch users``) and the login page share one set of rules.

- A user has a name, a role (:data:`ROLES`, each allowed what the one before it is) and an
  argon2id password hash.
- :func:`check_password` is the login decision: it returns a :class:`LoginOutcome` with the
  reason, counts wrong passwords and locks a user after :data:`LOCKOUT_FAILURES` of them
  within :data:`LOCKOUT_WINDOW` for :data:`LOCKOUT_FOR`.
- A login is a :class:`~emberwatch.models.ConsoleSession` row keyed by the SHA-256 of a
  random token; the token itself lives only in the person's cookie.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from emberwatch.errors import EmberwatchError
from emberwatch.models import ConsoleSession, LoginFailure, UserRecord

log = logging.getLogger("emberwatch.console")

ROLES = ("viewer", "responder", "admin")
LOCKOUT_FAILURES = 5
LOCKOUT_WINDOW = timedelta(minutes=15)
LOCKOUT_FOR = timedelta(minutes=15)
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")

# argon2id with the library's defaults (RFC 9106's second recommended profile, 64 MiB).
_HASHER = PasswordHasher()
# Checked when the name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


class UserError(EmberwatchError):
    """A user command or login that cannot be done: unknown user, bad role, weak password."""


@dataclass(frozen=True)
class User:
    """Who is logged in, as handlers and templates see them."""

    id: int
    name: str
    role: str

    def can(self, role: str) -> bool:
        """Whether this user has ``role`` or a higher one."""
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class LoginOutcome:
    """What a login attempt decided: the user (on success) and why, for the log and page."""

    user: User | None
    reason: str  # "ok", "wrong", "locked"
    locked_until: datetime | None = None


def _user(record: UserRecord) -> User:
    assert record.id is not None
    return User(id=record.id, name=record.name, role=record.role)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    return role


def check_password_strength(password: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise UserError(f"password too short: use at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise UserError(f"password too long: use at most {PASSWORD_MAX} characters")
    return password


def _find(session: Session, name: str) -> UserRecord | None:
    return session.exec(select(UserRecord).where(UserRecord.name == name)).first()


def _get(session: Session, name: str) -> UserRecord:
    found = _find(session, name)
    if found is None:
        raise UserError(f"no user {name!r} (see `emberwatch users list`)")
    return found


def _end_sessions(session: Session, user_id: int) -> int:
    result = session.execute(sa.delete(ConsoleSession).where(ConsoleSession.user_id == user_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def add_user(engine: Engine, name: str, role: str, password: str, now: datetime) -> User:
    if not NAME_PATTERN.match(name):
        raise UserError(
            f"user name {name!r} not allowed: use letters, digits and . _ @ + - "
            "(at most 100, starting with a letter or digit)"
        )
    check_role(role)
    check_password_strength(password)
    password_hash = _HASHER.hash(password)
    with Session(engine) as session:
        if _find(session, name) is not None:
            raise UserError(f"user {name!r} exists; change it with `emberwatch users set-password`")
        record = UserRecord(
            name=name,
            role=role,
            password_hash=password_hash,
            created_at=now,
            password_changed_at=now,
        )
        session.add(record)
        session.commit()
        session.refresh(record)
        return _user(record)


def list_users(engine: Engine) -> list[UserRecord]:
    with Session(engine) as session:
        return list(session.exec(select(UserRecord).order_by(UserRecord.name)))  # type: ignore[arg-type]


def set_password(engine: Engine, name: str, password: str, now: datetime) -> int:
    """Change a password and unlock the user; every login of theirs ends. Returns how many."""
    check_password_strength(password)
    password_hash = _HASHER.hash(password)
    with Session(engine) as session:
        record = _get(session, name)
        record.password_hash = password_hash
        record.password_changed_at = now
        record.locked_until = None
        session.add(record)
        assert record.id is not None
        session.execute(sa.delete(LoginFailure).where(LoginFailure.user_id == record.id))
        ended = _end_sessions(session, record.id)
        session.commit()
        return ended


def remove_user(engine: Engine, name: str) -> None:
    with Session(engine) as session:
        record = _get(session, name)
        assert record.id is not None
        session.execute(sa.delete(LoginFailure).where(LoginFailure.user_id == record.id))
        _end_sessions(session, record.id)
        session.delete(record)
        session.commit()


def find_user(engine: Engine, name: str) -> User | None:
    """The user a trusted proxy names, if there is one."""
    with Session(engine) as session:
        record = _find(session, name)
        return None if record is None else _user(record)


def check_password(
    engine: Engine, name: str, password: str, now: datetime, *, remote: str = "?"
) -> LoginOutcome:
    """The login decision. A locked user is refused even with the right password; the
    :data:`LOCKOUT_FAILURES`-th wrong password within :data:`LOCKOUT_WINDOW` locks them
    (one warning line, without the password)."""
    too_long = len(password) > PASSWORD_MAX or len(name) > 100
    with Session(engine) as session:
        record = None if too_long else _find(session, name)
        if record is None:
            _verify(_DUMMY_HASH, password[:PASSWORD_MAX])  # the same work as for a real user
            log.info("console: failed login for unknown user %r from %s", name[:100], remote)
            return LoginOutcome(None, "wrong")
        assert record.id is not None
        if record.locked_until is not None and record.locked_until > now:
            log.info("console: refused login for locked user %r from %s", name, remote)
            return LoginOutcome(None, "locked", record.locked_until)
        if _verify(record.password_hash, password):
            if _HASHER.check_needs_rehash(record.password_hash):
                record.password_hash = _HASHER.hash(password)
            record.locked_until = None
            session.add(record)
            session.execute(sa.delete(LoginFailure).where(LoginFailure.user_id == record.id))
            session.commit()
            log.info("console: %r logged in from %s", name, remote)
            return LoginOutcome(_user(record), "ok")
        session.execute(
            sa.delete(LoginFailure).where(
                LoginFailure.user_id == record.id, LoginFailure.at <= now - LOCKOUT_WINDOW
            )
        )
        session.add(LoginFailure(user_id=record.id, at=now))
        session.flush()
        recent = session.execute(
            sa.select(sa.func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.user_id == record.id, LoginFailure.at > now - LOCKOUT_WINDOW)
        ).scalar_one()
        if recent >= LOCKOUT_FAILURES:
            record.locked_until = now + LOCKOUT_FOR
            session.add(record)
            session.execute(sa.delete(LoginFailure).where(LoginFailure.user_id == record.id))
            session.commit()
            log.warning(
                "console: locked user %r until %s after %d wrong passwords within %s "
                "(last from %s)",
                name,
                f"{record.locked_until:%Y-%m-%d %H:%M}Z",
                recent,
                _minutes(LOCKOUT_WINDOW),
                remote,
            )
            return LoginOutcome(None, "locked", record.locked_until)
        session.commit()
        log.info("console: wrong password for %r from %s", name, remote)
        return LoginOutcome(None, "wrong")


def _minutes(span: timedelta) -> str:
    return f"{int(span.total_seconds() // 60)} minutes"


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# -- sessions ----------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(engine: Engine, user: User, now: datetime, lifetime: timedelta) -> str:
    """A new login for ``user``: a fresh random token (the cookie's), its row stored."""
    token = secrets.token_urlsafe(32)
    with Session(engine) as session:
        # Sessions nobody logged out of end here: every login sweeps the expired ones.
        session.execute(sa.delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
        session.add(
            ConsoleSession(
                token_hash=_token_hash(token),
                user_id=user.id,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
        session.commit()
    return token


def session_user(engine: Engine, token: str, now: datetime) -> User | None:
    """The user a session token belongs to while it lasts; an expired row is deleted."""
    with Session(engine) as session:
        row = session.exec(
            select(ConsoleSession).where(ConsoleSession.token_hash == _token_hash(token))
        ).first()
        if row is None:
            return None
        if row.expires_at <= now:
            session.delete(row)
            session.commit()
            return None
        record = session.get(UserRecord, row.user_id)
        return None if record is None else _user(record)


def end_session(engine: Engine, token: str) -> None:
    with Session(engine) as session:
        session.execute(
            sa.delete(ConsoleSession).where(ConsoleSession.token_hash == _token_hash(token))
        )
        session.commit()

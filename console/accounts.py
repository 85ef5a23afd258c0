"""Console users: add, list, disable, and the password check behind the login form. Pure of FastAPI.

Passwords are hashed with argon2 (argon2-cffi's defaults, RFC 9106 low-memory profile); only the hash is stored.
Failed logins are counted per user, and each one past the third makes the next attempt wait longer
(`login_wait`), so guessing is slow even when several guesses are sent at once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from console.text import Refused
from models.errors import DomainError
from models.ledger import values
from models.ledger.codes import is_office_code
from models.ledger.tables import USER_ROLES, AuditEvent, Office, Staff, User

LOGIN_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}", re.ASCII)
PASSWORD_MIN, PASSWORD_MAX = 8, 1024
FREE_FAILURES = 3  # a typo or two costs nothing
MAX_WAIT = timedelta(minutes=5)

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified when the login is unknown, so that "no such user" takes as long as "wrong password"; made on first
    use, not at import: every CLI command imports this module and a hash costs ~50 ms."""
    return _hasher.hash("bianmin-no-such-user")


@dataclass(frozen=True)
class Account:
    """A user as the console and `users list` see it: never the hash."""

    id: int
    login: str
    name: str
    role: str
    offices: tuple[str, ...]  # empty: every office
    staff_code: str | None
    active: bool
    last_login_at: datetime | None
    failed_logins: int

    @property
    def every_office(self) -> bool:
        return not self.offices


def _account(u: User) -> Account:
    return Account(id=u.id, login=u.login, name=u.name, role=u.role, offices=tuple(u.offices or ()),
                   staff_code=u.staff_code, active=u.active, last_login_at=u.last_login_at,
                   failed_logins=u.failed_logins)


def _text(value: str, field: str, column) -> str:
    try:
        checked = values.text(value, field=field, column=column)
    except DomainError as exc:
        raise Refused.of(exc) from None
    if not checked:
        raise Refused("console.user.empty", field=field)
    return checked


def check_password(password: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise Refused("console.user.password_short", limit=PASSWORD_MIN)
    if len(password) > PASSWORD_MAX:
        raise Refused("console.user.password_long", limit=PASSWORD_MAX)
    if values.control_in(password, lines=False) is not None:
        raise Refused("console.user.password_control")
    return password


def add_user(s: Session, *, login: str, name: str, role: str, offices: list[str], password: str, at: datetime,
             staff: str | None = None, actor: str = "cli") -> Account:
    """A new console user; refused (nothing written) for a taken login, an unknown role, office or staff code."""
    if not LOGIN_PATTERN.fullmatch(login or ""):
        raise Refused("console.user.bad_login", login=str(login or ""))
    name = _text(name, "--name", User.name)
    if role not in USER_ROLES:
        raise Refused("console.user.bad_role", role=role, roles=", ".join(USER_ROLES))
    check_password(password)
    codes: list[str] = []
    for code in offices:
        if not is_office_code(code) or s.scalar(select(Office.id).where(Office.code == code)) is None:
            raise Refused("console.user.no_office", office=code)
        if code not in codes:
            codes.append(code)
    if staff is not None:
        member = s.scalar(select(Staff).where(Staff.code == staff))
        if member is None:
            raise Refused("console.user.no_staff", staff=staff)
        if not member.active:
            raise Refused("console.user.staff_inactive", staff=staff)
    if s.scalar(select(User.id).where(User.login == login)) is not None:
        raise Refused("console.user.taken", login=login)
    user = User(login=login, name=name, role=role, offices=codes, staff_code=staff,
                password_hash=_hasher.hash(password), active=True, created_at=at, failed_logins=0)
    s.add(user)
    s.flush()
    s.add(AuditEvent(at=at, actor=actor, action="user-add", entity="user", entity_ref=login,
                     before=None, after={"name": name, "role": role, "offices": codes, "staff": staff}))
    s.flush()
    return _account(user)


def list_users(s: Session) -> list[Account]:
    return [_account(u) for u in s.scalars(select(User).order_by(User.login))]


def disable_user(s: Session, *, login: str, at: datetime, actor: str = "cli") -> Account:
    """Disable a user: the next request of any of their sessions is treated as logged out."""
    user = s.scalar(select(User).where(User.login == login))
    if user is None:
        raise Refused("console.user.no_user", login=login)
    if user.active:
        user.active = False
        s.add(AuditEvent(at=at, actor=actor, action="user-disable", entity="user", entity_ref=login,
                         before={"active": True}, after={"active": False}))
        s.flush()
    return _account(user)


_ACCOUNT_COLUMNS = (User.id, User.login, User.name, User.role, User.offices, User.staff_code, User.active,
                    User.last_login_at, User.failed_logins)


def get_account(s: Session, user_id: int) -> Account | None:
    """The active user with this id, or None (disabled or gone: their sessions end). Every page asks this once
    per request: a Core row, not an ORM object (its loading cost more than the lookup's SQL)."""
    row = s.execute(select(*_ACCOUNT_COLUMNS).where(User.id == user_id)).first()
    if row is None or not row.active:
        return None
    return Account(id=row.id, login=row.login, name=row.name, role=row.role, offices=tuple(row.offices or ()),
                   staff_code=row.staff_code, active=row.active, last_login_at=row.last_login_at,
                   failed_logins=row.failed_logins)


def login_wait(failures: int) -> timedelta:
    """How long after the last failure the next attempt must wait: nothing for the first few, then doubling."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    return min(timedelta(seconds=2 ** (failures - FREE_FAILURES)), MAX_WAIT)


@dataclass(frozen=True)
class LoginResult:
    account: Account | None
    wait: timedelta = timedelta(0)  # > 0: refused without checking, try again after this
    known: bool = True  # whether the login names a user (only then is it logged)


def authenticate(s: Session, *, login: str, password: str, at: datetime) -> LoginResult:
    """Check a login in the caller's transaction; failures are counted on the user and audited (never the password)."""
    user = s.scalar(select(User).where(User.login == login)) if LOGIN_PATTERN.fullmatch(login or "") else None
    if user is not None and user.last_failed_at is not None:
        ready = user.last_failed_at + login_wait(user.failed_logins)
        if at < ready:
            user.failed_logins += 1  # an attempt during the wait counts too, and lengthens it
            user.last_failed_at = at
            s.add(AuditEvent(at=at, actor=login, action="login-refused", entity="user", entity_ref=login,
                             before=None, after={"failures": user.failed_logins}))
            return LoginResult(None, ready - at)
    try:
        ok = _hasher.verify(user.password_hash if user is not None else _dummy_hash(), password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if user is None or not user.active or not ok:
        if user is not None:
            user.failed_logins += 1
            user.last_failed_at = at
        # an unknown login is not written down: it is often a password typed into the wrong field
        shown = user.login if user is not None else "(unknown)"
        s.add(AuditEvent(at=at, actor=shown, action="login-failed", entity="user", entity_ref=shown, before=None,
                         after={"failures": user.failed_logins if user is not None else None}))
        return LoginResult(None, known=user is not None)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.failed_logins, user.last_failed_at, user.last_login_at = 0, None, at
    s.add(AuditEvent(at=at, actor=user.name, action="login", entity="user", entity_ref=user.login))
    return LoginResult(_account(user))

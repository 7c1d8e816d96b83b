"""Browser sessions and the principal a request acts as.

A session is a random token in an HttpOnly, SameSite=Strict cookie (Secure when
served over TLS); the server keeps only the token's hash, the user, the CSRF token and
its times, in memory — a restart logs everyone out, which at a counter is a PIN away.
Sessions end after ``idle`` seconds without a request, and after ``max_age`` at most.
A supervisor's approval gives a session a permission it lacks for a short time
(``web.approval_seconds``): a price override or refund the cashier may not do alone.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass, field

from appliance.auth.permissions import MACHINE_PERMISSIONS, ROLE_PERMISSIONS

COOKIE = "appliance_session"
CSRF_HEADER = "x-csrf-token"


@dataclass
class Session:
    username: str
    name: str
    role: str
    csrf: str
    created: float
    last_seen: float
    grants: dict[str, float] = field(default_factory=dict)
    approvers: dict[str, str] = field(default_factory=dict)  # permission -> who approved


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a logged-in user (``via="session"``) or a machine token."""

    username: str
    name: str
    role: str
    permissions: frozenset[str]
    via: str
    session: Session | None = None

    @classmethod
    def of_session(cls, session: Session) -> Principal:
        perms = ROLE_PERMISSIONS.get(session.role, frozenset())
        return cls(session.username, session.name, session.role, perms, "session", session)

    @classmethod
    def machine(cls) -> Principal:
        return cls("machine", "machine token", "machine", MACHINE_PERMISSIONS, "token")


def _key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SessionStore:
    def __init__(self, idle_seconds: float, max_age_seconds: float) -> None:
        self.idle = idle_seconds
        self.max_age = max_age_seconds
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()  # dropped from the DB thread when accounts change

    def create(self, username: str, name: str, role: str, now: float) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(username, name, role, secrets.token_urlsafe(24), now, now)
        with self._lock:
            self._sessions[_key(token)] = session
        return token, session

    def get(self, token: str, now: float) -> Session | None:
        key = _key(token)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if now - session.last_seen > self.idle or now - session.created > self.max_age:
                del self._sessions[key]
                return None
            session.last_seen = now
            return session

    def drop(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(_key(token), None)

    def drop_user(self, username: str, keep_role: str | None = None) -> None:
        """End the sessions of an account (disabled, or its role changed): a session
        whose role is ``keep_role`` stays."""
        with self._lock:
            for key in [
                k
                for k, s in self._sessions.items()
                if s.username == username and s.role != keep_role
            ]:
                del self._sessions[key]

    def count(self) -> int:
        with self._lock:
            return len(self._sessions)

    @staticmethod
    def grant(session: Session, permission: str, until: float) -> None:
        session.grants[permission] = until

    @staticmethod
    def has_grant(session: Session, permission: str, now: float) -> bool:
        """An approval for ``permission`` still valid (one action may take several
        requests, e.g. a refund's lines, so it lasts ``web.approval_seconds``)."""
        until = session.grants.get(permission)
        if until is not None and until < now:
            del session.grants[permission]
            return False
        return until is not None

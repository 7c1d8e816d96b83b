"""User accounts: kept as ``user.upsert`` ops, so they replicate with the op log.

A user document is ``{username, name, role, password_hash, pin_hash, disabled}``.
Managers log in with a password, cashiers with a PIN (anyone may have both). The
``users`` table is derived from the ops; the newest op for a username (by HLC) wins,
whatever order ops arrive in from other registers or the back office.

Back office sync pushes accounts with ``upsert_user(register, user_doc)`` on the
register's DB thread (``service.call(upsert_user, doc)``): hashes are argon2 hash
strings (``$argon2id$…``, any parameters; or the back office's
``scrypt$N$r$p$salt$key``) or None for "no password"/"no PIN"; the plain secret
never leaves the place it was typed. ``apply_users_bundle`` takes a whole pushed list.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from appliance.auth.permissions import ROLES
from appliance.errors import ValidationError

if TYPE_CHECKING:
    from appliance.register import Register
    from appliance.storage.state import StateStore

Doc = dict[str, Any]
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
SCRYPT_RE = r"scrypt\$\d+\$\d+\$\d+\$[0-9a-f]+\$[0-9a-f]+"
FIELDS = ("username", "name", "role", "password_hash", "pin_hash", "disabled")


def _check_hash(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not (value.startswith("$argon2") or re.fullmatch(SCRYPT_RE, value))
        or len(value) > 512
    ):
        raise ValidationError(
            "must be an argon2 ($argon2id$…) or scrypt (scrypt$N$r$p$salt$key) hash, or null",
            field=field,
        )
    return value


def validate_user_doc(doc: Any) -> Doc:
    """The document as stored; every problem names its field."""
    if not isinstance(doc, dict):
        raise ValidationError("a user must be an object", field="user")
    unknown = sorted(set(doc) - set(FIELDS))
    if unknown:
        raise ValidationError(f"unknown key (allowed: {', '.join(FIELDS)})", field=unknown[0])
    username = doc.get("username")
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise ValidationError(
            "1-32 of a-z 0-9 . _ - starting with a letter or digit", field="username"
        )
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ValidationError("must be a non-empty text of at most 100 characters", field="name")
    role = doc.get("role")
    if role not in ROLES:
        raise ValidationError(f"must be one of {', '.join(ROLES)}", field="role")
    disabled = doc.get("disabled", False)
    if not isinstance(disabled, bool):
        raise ValidationError("must be true or false", field="disabled")
    return {
        "username": username,
        "name": name.strip(),
        "role": role,
        "password_hash": _check_hash(doc.get("password_hash"), "password_hash"),
        "pin_hash": _check_hash(doc.get("pin_hash"), "pin_hash"),
        "disabled": disabled,
    }


def upsert_user(register: Register, user_doc: Any) -> Doc:
    """Create or replace one account (durably, as an op); returns its public view."""
    user = validate_user_doc(user_doc)
    register.commit([register._op("user.upsert", {"user": user})])
    found = get_user(register, user["username"])
    assert found is not None
    return public_view(found)


def apply_users_bundle(register: Register, payload: Any) -> int:
    """Apply ``{"users": [user_doc, ...]}`` pushed by the back office: all checked
    first (one bad account refuses the bundle, naming it), then each account that
    differs from what the register has becomes one op. Returns how many changed."""
    docs = payload.get("users") if isinstance(payload, dict) else None
    if not isinstance(docs, list):
        raise ValidationError("a users bundle is {'users': [...]}", field="users")
    checked = []
    for i, doc in enumerate(docs):
        try:
            checked.append(validate_user_doc(doc))
        except ValidationError as exc:
            raise ValidationError(exc.message, field=f"users[{i}].{exc.field}") from None
    changed = [u for u in checked if get_user(register, u["username"]) != u]
    if changed:
        register.commit([register._op("user.upsert", {"user": u}) for u in changed])
    return len(changed)


def apply_user_upsert(state: StateStore, op: Doc, payload: Doc) -> None:
    """Reducer of ``user.upsert``: last writer (by HLC) wins, in any arrival order."""
    user = payload["user"]
    row = state.conn.execute(
        "SELECT hlc FROM users WHERE username = ?", (user["username"],)
    ).fetchone()
    if row is not None and row[0] >= op["hlc"]:
        return
    state.conn.execute(
        "INSERT OR REPLACE INTO users (username, name, role, password_hash, pin_hash,"
        " disabled, hlc) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            user["username"],
            user["name"],
            user["role"],
            user.get("password_hash"),
            user.get("pin_hash"),
            1 if user.get("disabled") else 0,
            op["hlc"],
        ),
    )


def _row(row: tuple[Any, ...]) -> Doc:
    username, name, role, password_hash, pin_hash, disabled = row
    return {
        "username": username,
        "name": name,
        "role": role,
        "password_hash": password_hash,
        "pin_hash": pin_hash,
        "disabled": bool(disabled),
    }


_SELECT = "SELECT username, name, role, password_hash, pin_hash, disabled FROM users"


def get_user(register: Register, username: str) -> Doc | None:
    row = register.conn.execute(f"{_SELECT} WHERE username = ?", (username,)).fetchone()
    return _row(row) if row else None


def list_users(register: Register) -> list[Doc]:
    rows = register.conn.execute(f"{_SELECT} ORDER BY role DESC, name").fetchall()
    return [public_view(_row(r)) for r in rows]


def public_view(user: Doc) -> Doc:
    """What may be shown: no hashes, only whether a password and a PIN are set."""
    return {
        "username": user["username"],
        "name": user["name"],
        "role": user["role"],
        "disabled": user["disabled"],
        "has_password": user["password_hash"] is not None,
        "has_pin": user["pin_hash"] is not None,
    }


def manager_exists(register: Register) -> bool:
    row = register.conn.execute(
        "SELECT 1 FROM users WHERE role = 'manager' AND disabled = 0"
        " AND password_hash IS NOT NULL LIMIT 1"
    ).fetchone()
    return row is not None

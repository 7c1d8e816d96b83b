"""Who may do what in the back office: users with roles, registers with tokens.

Secrets are never stored: session tokens, register tokens, pairing codes and web-shop
keys are kept as SHA-256 digests (they are long random strings, so a plain digest is
enough); passwords as scrypt hashes with a per-user salt.

Permissions (a role is a named set of them):
  sites     registers: pairing codes, unpairing, triggering register syncs
  catalog   products, prices, stock
  settings  taxes, store settings and other bundles pushed to registers, web-shop keys
  reports   sales, shifts, customers
  users     back office users
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

PERMISSIONS = ("sites", "catalog", "settings", "reports", "users")
ROLES: dict[str, frozenset[str]] = {
    "owner": frozenset(PERMISSIONS),
    "manager": frozenset({"sites", "catalog", "settings", "reports"}),
    "catalog": frozenset({"catalog", "reports"}),
    "reporting": frozenset({"reports"}),
}
SESSION_HOURS = 12
PAIRING_HOURS = 24
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(now())


def later_iso(hours: float) -> str:
    return iso(now() + timedelta(hours=hours))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def new_pairing_code() -> str:
    """12 characters people can read out and type (60 bits), e.g. ``K7QX-4MZP-9RWD``."""
    chars = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return f"{chars[:4]}-{chars[4:8]}-{chars[8:]}"


def normalize_code(code: str) -> str:
    text = code.strip().upper().replace(" ", "").replace("-", "")
    return f"{text[:4]}-{text[4:8]}-{text[8:]}" if len(text) == 12 else text


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt$16384$8$1${salt.hex()}${key.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(got.hex(), key)

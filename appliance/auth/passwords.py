"""Hashing passwords and PINs with argon2id (argon2-cffi's RFC 9106 low-memory profile).

The hash string carries its own parameters, so hashes made with other parameters (by
the back office, or by a later version) still verify. Hashes the back office makes
with hashlib.scrypt (``scrypt$N$r$p$salt$key``, hex) verify too. Hashing takes tens of
milliseconds on purpose: callers run it off the register's DB thread.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from appliance.errors import ValidationError

PIN_RE = re.compile(r"^[0-9]{4,8}$")
MIN_PASSWORD = 8
MAX_SECRET = 256


@cache
def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


def check_password(password: Any, field: str = "password") -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ValidationError(f"must be at least {MIN_PASSWORD} characters", field=field)
    if len(password) > MAX_SECRET:
        raise ValidationError(f"must be at most {MAX_SECRET} characters", field=field)
    return password


def check_pin(pin: Any, field: str = "pin") -> str:
    if not isinstance(pin, str) or not PIN_RE.match(pin):
        raise ValidationError("must be 4 to 8 digits", field=field)
    return pin


def hash_secret(secret: str) -> str:
    return str(_hasher().hash(secret))


def verify_secret(hashed: str | None, secret: str) -> bool:
    """True when ``secret`` matches; a missing or malformed hash never matches.

    Without a hash the work of one verification is still done, so the answer's timing
    does not tell whether the account (or its PIN) exists.
    """
    from argon2.exceptions import InvalidHashError, VerificationError

    if not isinstance(secret, str) or len(secret) > MAX_SECRET:
        return False
    if hashed is not None and hashed.startswith("scrypt$"):
        return _verify_scrypt(hashed, secret)
    try:
        return bool(_hasher().verify(hashed or _dummy_hash(), secret)) and hashed is not None
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return hash_secret("no such account")


SCRYPT_LIMITS = {"n": 2**20, "r": 32, "p": 16}  # a pushed hash cannot make us burn memory


def _verify_scrypt(hashed: str, secret: str) -> bool:
    import hashlib
    import hmac

    try:
        _, n, r, p, salt, key = hashed.split("$")
        params = {"n": int(n), "r": int(r), "p": int(p)}
        expected = bytes.fromhex(key)
        salt_bytes = bytes.fromhex(salt)
    except ValueError:
        return False
    if any(not 1 <= params[k] <= SCRYPT_LIMITS[k] for k in params) or not expected:
        return False
    got = hashlib.scrypt(
        secret.encode("utf-8"),
        salt=salt_bytes,
        dklen=len(expected),
        maxmem=256 * 1024 * 1024,
        **params,
    )
    return hmac.compare_digest(got, expected)

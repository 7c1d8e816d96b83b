"""Secrets kept in the data folder: the machine token and the one-time setup code.

Machine token (``<data_dir>/api-token``, mode 0600): made at first start for clients
that are not a browser — tests, the HIL rig, local tools. It is accepted only as an
``Authorization: Bearer`` header (never from a cookie, so CSRF cannot ride on it),
grants every permission, and only its SHA-256 is in the database (the token is 256
random bits, so a fast hash is enough). Delete the file and restart to replace it.

Setup code (``<data_dir>/setup-code``, mode 0600): made and printed at start while the
register has no manager; typed into /setup it creates the first manager account, and
is deleted then.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.auth.users import manager_exists

if TYPE_CHECKING:
    from appliance.register import Register

TOKEN_FILE = "api-token"
SETUP_FILE = "setup-code"
SETUP_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (text + "\n").encode("ascii"))
    finally:
        os.close(fd)
    os.chmod(path, 0o600)


def _read_secret(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # someone loosened it: a secret is for its owner only
    return text or None


def ensure_machine_token(register: Register, data_dir: Path) -> str:
    """The machine token (made on first start); its hash is registered in the database."""
    path = data_dir / TOKEN_FILE
    token = _read_secret(path)
    if token is None:
        token = "rat_" + secrets.token_urlsafe(32)
        _write_secret(path, token)
    register.conn.execute(
        "INSERT OR IGNORE INTO auth_tokens (token_hash, name, created_at) VALUES (?, ?, ?)",
        (token_hash(token), TOKEN_FILE, datetime.now(UTC).isoformat(timespec="seconds")),
    )
    return token


def token_hashes(register: Register) -> set[str]:
    return {r[0] for r in register.conn.execute("SELECT token_hash FROM auth_tokens")}


def read_token(data_dir: Path | str) -> str:
    """The machine token of the register whose data folder this is (for clients)."""
    token = _read_secret(Path(data_dir) / TOKEN_FILE)
    if token is None:
        raise FileNotFoundError(f"{Path(data_dir) / TOKEN_FILE}: no machine token (start once)")
    return token


def bearer_headers(data_dir: Path | str) -> dict[str, str]:
    """``{"Authorization": "Bearer …"}`` for a machine client of this register."""
    return {"Authorization": f"Bearer {read_token(data_dir)}"}


def ensure_setup_code(register: Register, data_dir: Path) -> str | None:
    """The setup code while no manager exists (made if missing); None once one does."""
    path = data_dir / SETUP_FILE
    if manager_exists(register):
        path.unlink(missing_ok=True)
        return None
    code = _read_secret(path)
    if code is None:
        raw = "".join(secrets.choice(SETUP_ALPHABET) for _ in range(12))
        code = "-".join(raw[i : i + 4] for i in range(0, 12, 4))
        _write_secret(path, code)
    return code


def check_setup_code(data_dir: Path, code: str) -> bool:
    expected = _read_secret(data_dir / SETUP_FILE)
    given = code.strip().upper().replace(" ", "")
    return expected is not None and hmac.compare_digest(expected.encode(), given.encode())


def forget_setup_code(data_dir: Path) -> None:
    (data_dir / SETUP_FILE).unlink(missing_ok=True)

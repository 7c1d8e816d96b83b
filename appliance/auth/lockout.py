"""Lock-out after repeated failed log-ins (per account, local to this register).

After ``max_failures`` wrong passwords or PINs in a row an account is locked for
``lock_seconds``; a success resets the count. Unknown usernames are counted too, so
guessing names costs the same as guessing secrets. The counters live in the local
``auth_failures`` table (survive a restart; not replicated). Runs on the DB thread;
each write is one autocommitted statement, so it also works inside a group commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.register import Register


def locked_until(register: Register, username: str, now: float) -> float | None:
    row = register.conn.execute(
        "SELECT locked_until FROM auth_failures WHERE username = ?", (username,)
    ).fetchone()
    if row is None or row[0] is None or row[0] <= now:
        return None
    return float(row[0])


def record_failure(
    register: Register, username: str, now: float, max_failures: int, lock_seconds: float
) -> float | None:
    """Count one failure; returns the time the account is locked until, if it now is."""
    row = register.conn.execute(
        "SELECT failures, locked_until FROM auth_failures WHERE username = ?", (username,)
    ).fetchone()
    failures = 1
    if row is not None and not (row[1] is not None and row[1] <= now):
        failures = row[0] + 1  # an expired lock starts a fresh count
    until = now + lock_seconds if failures >= max_failures else None
    register.conn.execute(
        "INSERT OR REPLACE INTO auth_failures (username, failures, locked_until) VALUES (?, ?, ?)",
        (username, 0 if until else failures, until),
    )
    return until


def clear_failures(register: Register, username: str) -> None:
    register.conn.execute("DELETE FROM auth_failures WHERE username = ?", (username,))


def locked_accounts(register: Register, now: float) -> dict[str, float]:
    rows = register.conn.execute(
        "SELECT username, locked_until FROM auth_failures WHERE locked_until > ?", (now,)
    ).fetchall()
    return {r[0]: float(r[1]) for r in rows}

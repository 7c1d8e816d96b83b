"""Anti-entropy on the op log: version vectors and "exactly what you missed".

Each register numbers its own ops 1, 2, 3… (``origin_seq``). A register's version
vector maps every origin register to the highest number it holds *without a gap*
from 1, so two vectors say exactly which ops one side lacks: origin R3 from the
other's number + 1 on. Any peer that holds those ops can serve them, so a register
that was away catches up even while the origin itself is off.

These functions run on the register's DB thread (``RegisterService.call``).
"""

from __future__ import annotations

from typing import Any

from appliance.register import Register
from appliance.replication import apply_remote, numbered_ops

BATCH = 500

Vector = dict[str, int]


def contiguous(register: Register, origin: str, start: int = 0) -> int:
    """The highest number of ``origin``'s ops held with every number up to it."""
    high = start
    while True:
        rows = register.conn.execute(
            "SELECT origin_seq FROM ops WHERE register_id = ? AND origin_seq > ?"
            " ORDER BY origin_seq LIMIT 1024",
            (origin, high),
        ).fetchall()
        for (seq,) in rows:
            if seq > high + 1:
                return high
            high = max(high, seq)
        if len(rows) < 1024:
            return high


def vector(register: Register) -> Vector:
    rows = register.conn.execute(
        "SELECT register_id, count(DISTINCT origin_seq), max(origin_seq) FROM ops"
        " WHERE origin_seq IS NOT NULL GROUP BY register_id"
    ).fetchall()
    return {
        origin: high if count == high else contiguous(register, origin)
        for origin, count, high in rows
    }


def ops_of(register: Register, origin: str, after: int, limit: int = BATCH) -> list[dict[str, Any]]:
    """``origin``'s ops numbered after ``after``, in their origin's order."""
    return numbered_ops(
        register, "register_id = ? AND origin_seq > ?", (origin, after), "origin_seq", limit
    )


def ops_missing(register: Register, wanted: Vector, limit: int = BATCH) -> list[dict[str, Any]]:
    """For a peer's pull: each origin's ops after the number it holds, up to ``limit``."""
    out: list[dict[str, Any]] = []
    for origin, after in sorted(wanted.items()):
        if len(out) >= limit:
            break
        out += ops_of(register, origin, int(after), limit - len(out))
    return out


def apply_batch(register: Register, ops: list[Any], known: Vector) -> tuple[int, Vector]:
    """Merge ops from a peer; returns (how many were new, the vector entries that moved)."""
    new = apply_remote(register, ops)
    origins = {op["register_id"] for op in ops if op.get("origin_seq") is not None}
    moved = {}
    for origin in origins:
        high = contiguous(register, origin, known.get(origin, 0))
        if high > known.get(origin, 0):
            moved[origin] = high
    return new, moved

"""Saved sales as the register list sees them: who holds a sale, its checkout lease.

The holder of a saved sale is the register it was opened on, or the last register
that resumed it, took it into checkout or had it transferred to it. A checkout lease
is running while the sale is open, held by the lease's register, before its expiry,
and while that register is not known to be gone: a register that disappeared lets
go of its checkouts at once (the others may take them over), and its expiry covers
registers we only hear of through others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from appliance.sale import OPEN, PARKED

Doc = dict[str, Any]
# register id → "connected", "disconnected", "other_version", or None if unknown.
PeerStatus = Callable[[str], str | None]

SAVED = (OPEN, PARKED)


def holder_of(doc: Doc) -> str:
    return str(doc.get("holder") or doc["register_id"])


def origin_of(sale_id: str) -> str | None:
    """The register a sale id was made on (``R1-<uuid>``), if it names one."""
    head, sep, _ = sale_id.partition("-")
    return head if sep and head.isalnum() and len(head) <= 16 else None


def lease_of(doc: Doc, now_ms: int, me: str, status: PeerStatus) -> Doc | None:
    """The sale's checkout lease with ``lapsed`` decided now, or None."""
    lease = doc.get("checkout")
    if not lease or doc["status"] != OPEN or lease["register_id"] != holder_of(doc):
        return None
    owner = lease["register_id"]
    gone = owner != me and status(owner) == "disconnected"
    return {**lease, "lapsed": now_ms >= lease["until_ms"] or gone}


def running_lease_elsewhere(doc: Doc, now_ms: int, me: str, status: PeerStatus) -> Doc | None:
    lease = lease_of(doc, now_ms, me, status)
    if lease is None or lease["lapsed"] or lease["register_id"] == me:
        return None
    return lease


def held_sales(docs: list[Doc], me: str) -> list[Doc]:
    """The saved sales this register holds, as it tells its peers."""
    return [
        {
            "id": d["id"],
            "name": d.get("name"),
            "status": d["status"],
            "total": d["totals"]["total"],
            "lines": len([x for x in d["lines"] if not x.get("voided")]),
        }
        for d in docs
        if d["status"] in SAVED and holder_of(d) == me
    ]

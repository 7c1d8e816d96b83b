"""The register list: every register of the store this one has met, and how it is.

Kept in memory by the sync node (and in ``lan_peers`` so a restart still lists the
registers that are away). It answers the questions staff ask: which registers are
connected, which are not and since when, which run another app version and which of
the two to update, and — for a sale this register does not have — which register
holds it and whether that one can be reached.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from appliance.errors import NotFound
from appliance.lan.saved import origin_of

Doc = dict[str, Any]

CONNECTED = "connected"
DISCONNECTED = "disconnected"
OTHER_VERSION = "other_version"
THIS = "this_register"


class SaleNotFound(NotFound):
    """A sale this register does not have, with where it is and why it is not here."""

    code = "sale_not_found"


@dataclass
class PeerEntry:
    register_id: str
    name: str
    store_id: str
    version: str
    address: str
    first_seen: str
    last_seen: str
    held: list[Doc] = field(default_factory=list)
    connected: bool = False

    def row(self) -> Doc:
        row = asdict(self)
        del row["connected"]
        return row


def _version_key(version: str) -> tuple[int, ...] | None:
    parts = re.findall(r"\d+", version)
    return tuple(int(p) for p in parts) if parts else None


class PeerDirectory:
    def __init__(self, me: str, name: str, version: str) -> None:
        self.me, self.name, self.version = me, name, version
        self.entries: dict[str, PeerEntry] = {}
        # Devices that tried to sync without this store's credentials: address → note.
        self.unpaired: dict[str, Doc] = {}

    def status(self, register_id: str) -> str | None:
        if register_id == self.me:
            return THIS
        entry = self.entries.get(register_id)
        if entry is None:
            return None
        if not entry.connected:
            return DISCONNECTED
        return CONNECTED if entry.version == self.version else OTHER_VERSION

    def label(self, register_id: str) -> str:
        entry = self.entries.get(register_id)
        name = self.name if register_id == self.me else entry.name if entry else ""
        return f"{name} ({register_id})" if name and name != register_id else register_id

    def version_advice(self, entry: PeerEntry) -> str | None:
        """Which register to update when versions differ (None when they match)."""
        if entry.version == self.version:
            return None
        mine, theirs = _version_key(self.version), _version_key(entry.version)
        head = f"{self.label(entry.register_id)} runs version {entry.version}, this register "
        head += f"runs {self.version}: "
        if mine is None or theirs is None:
            return head + "install the same version on both"
        if theirs > mine:
            return head + f"update this register ({self.me}) to {entry.version}"
        return head + f"update {entry.register_id} to {self.version}"

    def holder_hint(self, sale_id: str) -> str | None:
        for entry in self.entries.values():
            if any(s["id"] == sale_id for s in entry.held):
                return entry.register_id
        return None

    def register_list(self, origins: dict[str, int] | None = None) -> list[Doc]:
        """This register first, then the others: connected, other version, away."""
        rows: list[Doc] = [
            {
                "register_id": self.me,
                "name": self.name,
                "version": self.version,
                "status": THIS,
                "message": "this register",
            }
        ]
        order = {CONNECTED: 0, OTHER_VERSION: 1, DISCONNECTED: 2}
        entries = sorted(
            self.entries.values(),
            key=lambda e: (order[self.status(e.register_id) or DISCONNECTED], e.register_id),
        )
        for entry in entries:
            status = self.status(entry.register_id) or DISCONNECTED
            advice = self.version_advice(entry)
            if status == CONNECTED:
                message = "connected: saved sales in sync"
            elif status == OTHER_VERSION:
                message = f"connected but not synced: {advice}"
            else:
                message = f"disconnected since {entry.last_seen}: its saved sales cannot be synced"
                if advice:
                    message += f"; {advice}"
            rows.append(
                {
                    "register_id": entry.register_id,
                    "name": entry.name,
                    "version": entry.version,
                    "status": status,
                    "address": entry.address,
                    "first_seen": entry.first_seen,
                    "last_seen": entry.last_seen,
                    "saved_sales": len(entry.held),
                    "message": message,
                }
            )
        # Registers known only from their ops (reached through others, never met).
        for origin in sorted(set(origins or {}) - {self.me} - set(self.entries)):
            rows.append(
                {
                    "register_id": origin,
                    "name": origin,
                    "version": None,
                    "status": "never_connected",
                    "message": "known from its sales only: never connected to this register",
                }
            )
        return rows

    def not_found(self, sale_id: str) -> SaleNotFound:
        """Explain a sale this register does not have: where it is, why not here."""
        holder = self.holder_hint(sale_id) or origin_of(sale_id)
        status = self.status(holder) if holder else None
        details: Doc = {"sale_id": sale_id, "holder": holder, "reachable": status == CONNECTED}
        if holder is None or holder == self.me:
            text = f"sale {sale_id} is not on this register"
            if self.entries:
                text += " nor among the saved sales the other registers reported"
            return SaleNotFound(text, field="sale_id", **details)
        label = self.label(holder)
        entry = self.entries.get(holder)
        if status is None:
            text = (
                f"sale {sale_id} was made on register {holder}, which this register has "
                f"never reached: check that {holder} is running, on the shop network and "
                "paired with this store"
            )
        elif status == CONNECTED:
            text = (
                f"sale {sale_id} is on {label}, which is connected: it has not reached "
                "this register yet, try again in a moment"
            )
        elif status == OTHER_VERSION and entry is not None:
            text = f"sale {sale_id} is held by {label}, which is not synced with this register: "
            text += self.version_advice(entry) or ""
        else:
            last_seen = entry.last_seen if entry else "never"
            text = (
                f"sale {sale_id} is held by {label}, which is unreachable (last seen "
                f"{last_seen}): check that {holder} is running and on the shop network"
            )
            details["last_seen"] = last_seen
        return SaleNotFound(text, field="sale_id", **details)

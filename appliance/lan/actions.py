"""Saved-sale actions from any register: resume, rename, transfer, merge, split, checkout.

Functions of a ``Register`` (run on its DB thread) like appliance/scan.py. Each one
checks the request against this register's view — the sale is saved (open or
parked), nobody else is paying it — and commits ops that carry everything they need,
so every register folds them to the same sale (appliance/lan/reducers.py). A sale
this register does not have is answered with where it is (``SaleNotFound``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from appliance.errors import Conflict, ValidationError
from appliance.lan.registry import PeerDirectory
from appliance.lan.saved import SAVED, holder_of, lease_of, running_lease_elsewhere
from appliance.reducer import Op
from appliance.register import Register, _now_iso, check_text
from appliance.sale import CARD, OPEN, PARKED, SaleDoc

Doc = dict[str, Any]

PAYING = ("sale.tender", "sale.complete")


def now_ms() -> int:
    return int(time.time() * 1000)


def find(register: Register, peers: PeerDirectory, sale_id: str) -> SaleDoc:
    """The sale, or ``SaleNotFound`` saying which register holds it and if it is reachable."""
    doc = register.state.get_sale(sale_id) if isinstance(sale_id, str) else None
    if doc is None:
        raise peers.not_found(str(sale_id))
    return doc


def _saved(register: Register, peers: PeerDirectory, sale_id: str, verb: str) -> SaleDoc:
    doc = find(register, peers, sale_id)
    if doc["kind"] != "sale" or doc["status"] not in SAVED:
        raise Conflict(
            f"sale {sale_id} is {doc['status']}: only a saved (open or parked) sale can be {verb}",
            field="sale_id",
        )
    lease = running_lease_elsewhere(doc, now_ms(), register.register_id, peers.status)
    if lease is not None:
        who = peers.label(lease["register_id"])
        raise Conflict(
            f"sale {doc.get('name') or sale_id} is in checkout on {who}: it cannot be {verb} here",
            field="sale_id",
            checkout_register=lease["register_id"],
        )
    return doc


def _unpaid(doc: SaleDoc, verb: str) -> None:
    if doc["tenders"]:
        raise Conflict(
            f"sale {doc['id']} has tenders: a sale being paid cannot be {verb}", field="sale_id"
        )


def resume(register: Register, peers: PeerDirectory, sale_id: str) -> SaleDoc:
    _saved(register, peers, sale_id, "resumed")
    return register.resume(sale_id)


def rename(register: Register, peers: PeerDirectory, sale_id: str, name: str) -> SaleDoc:
    tab = check_text(name, "name", 64)
    doc = _saved(register, peers, sale_id, "renamed")
    return register._apply(doc, [register._op("sale.rename", {"name": tab}, sale_id)])


def transfer(register: Register, peers: PeerDirectory, sale_id: str, to: str) -> SaleDoc:
    """Hand a saved sale to another register: it is parked there, to be resumed."""
    if to != register.register_id and peers.status(to) is None:
        raise ValidationError(f"no register {to!r} is known in this store", field="to")
    doc = _saved(register, peers, sale_id, "transferred")
    _unpaid(doc, "transferred")
    if holder_of(doc) == to and doc["status"] == PARKED:
        raise Conflict(f"sale {sale_id} is already on register {to}", field="to")
    name = doc.get("name") or f"from {register.register_id}"
    payload = {"to": to, "at": _now_iso(), "name": name}
    return register._apply(doc, [register._op("sale.transfer", payload, sale_id)])


def _move(
    register: Register, source: SaleDoc, target_id: str, lines: list[Doc], close: bool
) -> list[Op]:
    """Ops moving ``lines`` (by id) from ``source`` to ``target_id``."""
    out = {
        "line_ids": [x["id"] for x in lines],
        "to": target_id,
        "close": close,
        "at": _now_iso(),
    }
    into = {"from": source["id"], "lines": lines, "customer": source.get("customer")}
    return [
        register._op("sale.lines_out", out, source["id"]),
        register._op("sale.lines_in", into, target_id),
    ]


def merge(register: Register, peers: PeerDirectory, into_id: str, from_id: str) -> SaleDoc:
    """Move every line of ``from_id`` into ``into_id``; the emptied sale is closed."""
    if into_id == from_id:
        raise ValidationError("cannot merge a sale into itself", field="from")
    into = _saved(register, peers, into_id, "merged")
    source = _saved(register, peers, from_id, "merged")
    _unpaid(into, "merged")
    _unpaid(source, "merged")
    if not source["lines"]:
        raise Conflict(f"sale {from_id} has no lines to merge", field="from")
    return register._apply(into, _move(register, source, into_id, source["lines"], close=True))


def split(
    register: Register, peers: PeerDirectory, sale_id: str, line_nos: list[int], name: str
) -> dict[str, SaleDoc]:
    """Move the given lines into a new saved sale called ``name`` (parked here)."""
    tab = check_text(name, "name", 64)
    doc = _saved(register, peers, sale_id, "split")
    _unpaid(doc, "split")
    active = {x["no"]: x for x in doc["lines"] if not x.get("voided")}
    if not isinstance(line_nos, list) or not line_nos:
        raise ValidationError("give the numbers of the lines to move", field="line_nos")
    wanted = []
    for no in line_nos:
        if no not in active:
            raise ValidationError(f"sale {sale_id} has no active line {no}", field="line_nos")
        if active[no] not in wanted:
            wanted.append(active[no])
    if len(wanted) == len(active):
        raise ValidationError("a split must leave at least one line", field="line_nos")
    new_id = register.new_sale_id()
    opened = {"kind": "sale", "pricing": doc["pricing"], "opened_at": _now_iso()}
    ops = [
        register._op("sale.open", {**opened, "split_from": sale_id}, new_id),
        *_move(register, doc, new_id, wanted, close=False),
        register._op("sale.park", {"name": tab, "at": _now_iso()}, new_id),
    ]
    register.commit(ops)
    return {"sale": register.sale(sale_id), "new": register.sale(new_id)}


def take_checkout(
    register: Register, peers: PeerDirectory, sale_id: str, lease_seconds: float
) -> SaleDoc:
    """Hold the sale for payment here; renewed by the sync node while this register lives."""
    doc = _saved(register, peers, sale_id, "paid")
    ops = []
    if doc["status"] == PARKED:
        ops.append(register._op("sale.resume", {"at": _now_iso()}, sale_id))
    ops.append(_checkout_op(register, peers, doc, lease_seconds))
    return register._apply(doc, ops)


def _checkout_op(register: Register, peers: PeerDirectory, doc: SaleDoc, seconds: float) -> Op:
    lease = lease_of(doc, now_ms(), register.register_id, peers.status)
    payload: Doc = {"until_ms": now_ms() + int(seconds * 1000)}
    if lease is not None and lease["register_id"] != register.register_id:
        payload["takeover"] = lease["hlc"]  # it lapsed: say which lease is taken over
    return register._op("sale.checkout", payload, doc["id"])


def release_checkout(register: Register, peers: PeerDirectory, sale_id: str) -> SaleDoc:
    doc = find(register, peers, sale_id)
    lease = doc.get("checkout")
    if not lease or lease["register_id"] != register.register_id:
        raise Conflict(f"sale {sale_id} is not in checkout on this register", field="sale_id")
    return register._apply(doc, [register._op("sale.checkout_release", {}, sale_id)])


def renew_leases(register: Register, peers: PeerDirectory, seconds: float) -> int:
    """Extend this register's running checkouts before a third of the lease is left."""
    me, now = register.register_id, now_ms()
    ops = []
    for doc in register.state.sales("status = ?", (OPEN,)):
        lease = lease_of(doc, now, me, peers.status)
        if lease and lease["register_id"] == me and lease["until_ms"] - now < seconds * 2000 / 3:
            ops.append(_checkout_op(register, peers, doc, seconds))
    if ops:
        register.commit(ops)
    return len(ops)


def checkout_blocker(register: Register, peers: PeerDirectory, sale_id: str) -> str | None:
    """Why this register may not start charging the sale now (None: it may)."""
    doc = find(register, peers, sale_id)
    lease = running_lease_elsewhere(doc, now_ms(), register.register_id, peers.status)
    if lease is None:
        return None
    return f"in checkout on {peers.label(lease['register_id'])}"


def payment_guard(
    peers: PeerDirectory, lease_seconds: float
) -> Callable[[Register, list[Op]], None]:
    """An in-transaction hook: a sale in checkout on another register cannot be paid
    here; a payment started here takes the checkout lease in the same transaction.

    A card tender is money the terminal already took: it is always recorded (a
    payment wins over a lease). A card payment flow checks ``checkout_blocker``
    before it asks the terminal to charge.
    """

    def guard(register: Register, ops: list[Op]) -> None:
        me = register.register_id
        for sale_id in dict.fromkeys(op["sale_id"] for op in ops if op["kind"] in PAYING):
            after = register.state.get_sale(sale_id)
            if after is None or after["kind"] != "sale":
                continue
            doc = {**after, "status": OPEN}  # as it was: only an open sale takes tenders
            lease = running_lease_elsewhere(doc, now_ms(), me, peers.status)
            taken = any(
                op["sale_id"] == sale_id
                and op["kind"] == "sale.tender"
                and op["payload"]["tender"].get("kind") == CARD
                for op in ops
            )
            if lease is not None and taken:
                continue  # recorded; the other register keeps its lease
            if lease is not None:
                raise Conflict(
                    f"sale {doc.get('name') or sale_id} is in checkout on "
                    f"{peers.label(lease['register_id'])}: it cannot be paid here",
                    field="sale_id",
                    checkout_register=lease["register_id"],
                )
            current = lease_of(doc, now_ms(), me, peers.status)
            if after["status"] == OPEN and (current is None or current["register_id"] != me):
                take = _checkout_op(register, peers, doc, lease_seconds)
                from appliance.storage.oplog import append

                append(register.conn, register.state, [take])
                ops.append(take)  # later hooks and the listeners see it too

    return guard

"""Reducers of the saved-sale ops LAN sync adds, and of ops that meet a final sale.

Saved sales move between registers, so two registers can act on one sale before
either has heard of the other's action. Every rule here is a pure function of the op
and the sale's state, applied in HLC order like the core's reducers, so every
register that holds the same ops computes the same sale:

- ``sale.rename``, ``sale.transfer``: the later edit (HLC) wins;
- ``sale.lines_out`` / ``sale.lines_in``: split and merge move lines by their stable
  id. The source drops exactly the lines the mover saw; a line added there meanwhile
  stays there (a merged-away sale that gets a line back is re-opened, parked), so no
  line is ever lost;
- ``sale.checkout`` / ``sale.checkout_release``: the checkout lease. A lease taken
  while another register's lease was still running (by the op's own timestamp) is
  refused, unless the taker saw exactly that lease lapse (``takeover``). Whether a
  running lease has lapsed because its register disappeared is decided when reading
  (appliance/lan/checkout.py), never here;
- a completed payment always wins: ``sale.complete`` on a voided sale completes it;
  on a sale already completed elsewhere it is kept as a second completed sale
  (``<id>~<op>``, ``duplicate_of``) with the tenders that register took, so both
  registers' money and receipts stay on record and the conflict is visible; a late
  tender or line is kept in the sale's ``conflicts``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from appliance.sale import OPEN, PARKED, VOIDED
from appliance.storage.state import StateStore

Op = dict[str, Any]
Doc = dict[str, Any]
Reducer = Callable[[StateStore, Op, Doc], None]


def _core() -> ModuleType:
    # appliance.reducer imports this module to register the reducers; importing it
    # back lazily keeps either import order working.
    import appliance.reducer as core

    return core


def _edit(state: StateStore, op: Op) -> Doc:
    doc: Doc = _core()._sale(state, op)
    return doc


def _save(state: StateStore, doc: Doc, op: Op) -> None:
    _core()._save_sale(state, doc, op)


def _conflict(doc: Doc, op: Op, **what: Any) -> None:
    doc["conflicts"] = [
        *doc.get("conflicts", []),
        {"at": op["hlc"], "register_id": op["register_id"], **what},
    ]


def wall_ms(hlc: str) -> int:
    """The wall-clock part of an HLC timestamp (what a lease expiry is compared with)."""
    return int(hlc[:13])


# saved-sale actions ----------------------------------------------------------
def _rename(state: StateStore, op: Op, p: Doc) -> None:
    doc = _edit(state, op)
    doc["name"] = p["name"]
    _save(state, doc, op)


def _transfer(state: StateStore, op: Op, p: Doc) -> None:
    doc = _edit(state, op)
    doc["holder"] = p["to"]
    doc["transferred_from"] = op["register_id"]
    if doc["status"] == OPEN:
        doc["status"] = PARKED
        doc["parked_at"] = p["at"]
    if not doc.get("name"):
        doc["name"] = p["name"]
    _save(state, doc, op)


def _lines_out(state: StateStore, op: Op, p: Doc) -> None:
    doc = _edit(state, op)
    moving = set(p["line_ids"])
    moved = sorted(x["id"] for x in doc["lines"] if x.get("id") in moving)
    doc["lines"] = [x for x in doc["lines"] if x.get("id") not in moving]
    doc["moved_lines"] = [
        *doc.get("moved_lines", []),
        {"to": p["to"], "line_ids": moved, "at": op["hlc"]},
    ]
    if p.get("close") and not doc["lines"]:
        doc["status"] = VOIDED
        doc["void_reason"] = f"merged into {p.get('to_name') or p['to']}"
        doc["voided_at"] = p["at"]
        doc["merged_into"] = p["to"]
    _save(state, doc, op)


def _lines_in(state: StateStore, op: Op, p: Doc) -> None:
    doc = _edit(state, op)
    have = {x.get("id") for x in doc["lines"]}
    no = max((x["no"] for x in doc["lines"]), default=0)
    for line in p["lines"]:
        if line.get("id") in have:
            continue
        no += 1
        doc["lines"].append({**line, "no": no, "moved_from": p["from"]})
    if doc.get("customer") is None and p.get("customer") is not None:
        doc["customer"] = p["customer"]
    _save(state, doc, op)


def _checkout(state: StateStore, op: Op, p: Doc) -> None:
    doc = _edit(state, op)
    current = doc.get("checkout")
    if (
        current is not None
        and current["register_id"] != op["register_id"]
        and wall_ms(op["hlc"]) < current["until_ms"]
        and p.get("takeover") != current["hlc"]
    ):
        return  # another register holds a running lease: this one is refused
    renewing = current is not None and current["register_id"] == op["register_id"]
    doc["holder"] = op["register_id"]  # the sale is being paid there
    doc["checkout"] = {
        "register_id": op["register_id"],
        "until_ms": p["until_ms"],
        "hlc": op["hlc"],
        "since": current["since"] if renewing and current else op["hlc"],
    }
    _save(state, doc, op)


def _checkout_release(state: StateStore, op: Op, p: Doc) -> None:
    doc = _edit(state, op)
    current = doc.get("checkout")
    if current is None or current["register_id"] != op["register_id"]:
        return
    doc["checkout"] = None
    _save(state, doc, op)


LAN_REDUCERS: dict[str, Reducer] = {
    "sale.rename": _rename,
    "sale.transfer": _transfer,
    "sale.lines_out": _lines_out,
    "sale.lines_in": _lines_in,
    "sale.checkout": _checkout,
    "sale.checkout_release": _checkout_release,
}


# ops that meet a completed or voided sale --------------------------------------
def _complete_after_final(state: StateStore, op: Op, p: Doc) -> None:
    doc = _edit(state, op)
    if doc["status"] == VOIDED:
        # The money was taken: the payment wins over the void (or the merge).
        _conflict(doc, op, completed_after_void=doc.get("void_reason"))
        doc["status"] = OPEN
        state.put_sale(doc)
        _core()._sale_complete(state, op, p)
        return
    # Completed on two registers: keep the second as its own completed sale holding
    # what that register charged and the tenders it took.
    snapshot = p.get("snapshot") or {
        "lines": doc["lines"],
        "tenders": [],
        "discount": doc["discount"],
        "customer": doc["customer"],
    }
    known = {t.get("id") for t in doc["tenders"]}
    dup_id = f"{doc['id']}~{op['op_id'][:12]}"
    duplicate = {
        **doc,
        "id": dup_id,
        "register_id": op["register_id"],
        "duplicate_of": doc["id"],
        "lines": snapshot["lines"],
        "tenders": [t for t in snapshot["tenders"] if t.get("id") not in known],
        "discount": snapshot["discount"],
        "customer": snapshot["customer"],
        "receipt_no": p["receipt_no"],
        "shift_id": p["shift_id"],
        "completed_at": p["completed_at"],
        "conflicts": [],
        "refunded": {},
        "refunds": [],
    }
    _save(state, duplicate, op)
    counter = f"receipt:{op['register_id']}"
    state.set_counter(counter, max(state.counter(counter), p["receipt_seq"]))
    _conflict(doc, op, also_completed=dup_id, receipt_no=p["receipt_no"])
    _save(state, doc, op)
    if doc["kind"] == "refund":
        _core().apply_refund_effect(state, state.get_sale(dup_id) or duplicate)


def _tender_after_final(state: StateStore, op: Op, p: Doc) -> None:
    doc = _edit(state, op)
    _conflict(doc, op, late_tender=p["tender"])
    _save(state, doc, op)


def _lines_after_final(adder: Reducer, lines_of: Callable[[Doc], list[Doc]]) -> Reducer:
    """A line that reaches a final sale: a merged-away sale is re-opened (parked) to
    hold it; a completed or really voided sale keeps it in its conflicts."""

    def reduce(state: StateStore, op: Op, p: Doc) -> None:
        doc = _edit(state, op)
        if doc["status"] == VOIDED and doc.get("merged_into"):
            _conflict(doc, op, reopened_after_merge_into=doc["merged_into"])
            doc["status"] = PARKED
            doc["void_reason"] = None
            doc["merged_into"] = None
            state.put_sale(doc)
            adder(state, op, p)
            return
        _conflict(doc, op, late_lines=lines_of(p))
        _save(state, doc, op)

    return reduce


def _line_add(state: StateStore, op: Op, p: Doc) -> None:
    _core()._line_add(state, op, p)


AFTER_FINAL: dict[str, Reducer] = {
    "sale.complete": _complete_after_final,
    "sale.tender": _tender_after_final,
    "sale.line_add": _lines_after_final(_line_add, lambda p: [p["line"]]),
    "sale.lines_in": _lines_after_final(_lines_in, lambda p: list(p["lines"])),
}

"""Apply one operation to the state tables: the only code that changes state.

The register validates a request, turns it into operations that carry everything
needed (prices, rates, receipt numbers, timestamps), and hands them here inside the
transaction that appends them to the op log. Replaying the op log through this same
function rebuilds the state exactly — that is what `appliance db check` verifies —
so nothing here may read the clock, the config or anything but the op and the state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from appliance.auth.users import apply_user_upsert
from appliance.reports import shift_report
from appliance.sale import COMPLETED, OPEN, PARKED, VOIDED, compute_totals
from appliance.storage.state import StateStore

Op = dict[str, Any]
Doc = dict[str, Any]


class ReplayError(Exception):
    """An operation does not fit the state it is applied to (a corrupt or foreign log)."""


def _sale(state: StateStore, op: Op) -> Doc:
    """A copy of the sale to change: stored documents are never mutated in place,
    so a document handed out earlier (or cached) never changes under its holder."""
    doc = state.get_sale(op["sale_id"])
    if doc is None:
        raise ReplayError(f"op {op['op_id']} ({op['kind']}): no sale {op['sale_id']}")
    return {**doc, "lines": list(doc["lines"]), "tenders": list(doc["tenders"])}


def _line(doc: Doc, p: Doc) -> Doc:
    """The line an edit refers to: by its stable id (numbers can shift when registers
    merge concurrent adds into one saved sale), by number for refund-era ops."""
    line_id = p.get("line_id")
    for line in doc["lines"]:
        if (line_id is not None and line.get("id") == line_id) or (
            line_id is None and line["no"] == p["no"]
        ):
            return dict(line)
    raise ReplayError(f"sale {doc['id']} has no line {line_id or p.get('no')}")


def _replace_line(doc: Doc, new: Doc) -> None:
    doc["lines"] = [new if line["no"] == new["no"] else line for line in doc["lines"]]


def _save_sale(state: StateStore, doc: Doc, op: Op) -> None:
    doc["totals"] = compute_totals(doc)
    doc["updated_hlc"] = op["hlc"]
    state.put_sale(doc)


def _sale_open(state: StateStore, op: Op, p: Doc) -> None:
    doc = {
        "id": op["sale_id"],
        "register_id": op["register_id"],
        "kind": p["kind"],
        "status": OPEN,
        "name": None,
        "customer": None,
        "lines": [],
        "discount": None,
        "tenders": [],
        "pricing": p["pricing"],
        "opened_at": p["opened_at"],
        "completed_at": None,
        "receipt_no": None,
        "shift_id": None,
        "refund_of": p.get("refund_of"),
        "refund_of_receipt": p.get("refund_of_receipt"),
        "refunded": {},
        "void_reason": None,
    }
    _save_sale(state, doc, op)


def _line_add(state: StateStore, op: Op, p: Doc) -> None:
    doc = _sale(state, op)
    line = p["line"]
    if any(x["no"] == line["no"] for x in doc["lines"]):
        # Another register added a line with this number concurrently: both lines
        # stay; this one (applied later in HLC order) takes the next number.
        line = {**line, "no": max(x["no"] for x in doc["lines"]) + 1}
    doc["lines"].append(line)
    _save_sale(state, doc, op)


def _line_qty(state: StateStore, op: Op, p: Doc) -> None:
    doc = _sale(state, op)
    line = _line(doc, p)
    line["qty"] = p["qty"]
    _replace_line(doc, line)
    _save_sale(state, doc, op)


def _line_price(state: StateStore, op: Op, p: Doc) -> None:
    doc = _sale(state, op)
    line = _line(doc, p)
    line["override"] = {"unit_price": p["unit_price"], "reason": p["reason"]}
    for who in ("by", "approved_by"):  # who changed the price, who approved it
        if p.get(who):
            line["override"][who] = p[who]
    _replace_line(doc, line)
    _save_sale(state, doc, op)


def _line_discount(state: StateStore, op: Op, p: Doc) -> None:
    doc = _sale(state, op)
    line = _line(doc, p)
    line["discount"] = p["discount"]
    _replace_line(doc, line)
    _save_sale(state, doc, op)


def _line_void(state: StateStore, op: Op, p: Doc) -> None:
    doc = _sale(state, op)
    line = _line(doc, p)
    line["voided"] = True
    _replace_line(doc, line)
    _save_sale(state, doc, op)


def _sale_discount(state: StateStore, op: Op, p: Doc) -> None:
    doc = _sale(state, op)
    doc["discount"] = p["discount"]
    _save_sale(state, doc, op)


def _sale_customer(state: StateStore, op: Op, p: Doc) -> None:
    doc = _sale(state, op)
    doc["customer"] = p["customer"]
    _save_sale(state, doc, op)


def _sale_park(state: StateStore, op: Op, p: Doc) -> None:
    doc = _sale(state, op)
    doc["status"] = PARKED
    doc["name"] = p["name"]
    doc["parked_at"] = p["at"]
    _save_sale(state, doc, op)


def _sale_resume(state: StateStore, op: Op, p: Doc) -> None:
    doc = _sale(state, op)
    doc["status"] = OPEN
    doc["resumed_at"] = p["at"]
    doc["resumed_by"] = op["register_id"]
    doc["holder"] = op["register_id"]  # the register that now holds the saved sale
    _save_sale(state, doc, op)


def _sale_void(state: StateStore, op: Op, p: Doc) -> None:
    doc = _sale(state, op)
    doc["status"] = VOIDED
    doc["void_reason"] = p["reason"]
    doc["voided_at"] = p["at"]
    _save_sale(state, doc, op)


def _sale_tender(state: StateStore, op: Op, p: Doc) -> None:
    doc = _sale(state, op)
    doc["tenders"].append(p["tender"])
    _save_sale(state, doc, op)


def _sale_complete(state: StateStore, op: Op, p: Doc) -> None:
    doc = _sale(state, op)
    snapshot = p.get("snapshot")
    if snapshot is not None:
        # The completing register's view is what was paid for: edits from other
        # registers that it had not seen are set aside (kept, visible), not applied.
        paid_lines = {line["id"] for line in snapshot["lines"] if line.get("id")}
        unseen = [x for x in doc["lines"] if x.get("id") and x["id"] not in paid_lines]
        # Tenders another register took that this one had not seen: money taken, kept.
        paid_with = {t.get("id") for t in snapshot["tenders"]}
        tenders = [t for t in doc["tenders"] if t.get("id") not in paid_with]
        if unseen or tenders or doc["lines"] != snapshot["lines"]:
            conflict = {"at": op["hlc"], "set_aside_lines": unseen, "replaced_lines": doc["lines"]}
            if tenders:
                conflict["set_aside_tenders"] = tenders
            doc["conflicts"] = [*doc.get("conflicts", []), conflict]
        doc["lines"] = snapshot["lines"]
        doc["tenders"] = snapshot["tenders"]
        doc["discount"] = snapshot["discount"]
        doc["customer"] = snapshot["customer"]
    doc["status"] = COMPLETED
    doc["receipt_no"] = p["receipt_no"]
    doc["shift_id"] = p["shift_id"]
    doc["completed_at"] = p["completed_at"]
    _save_sale(state, doc, op)
    counter = f"receipt:{op['register_id']}"
    state.set_counter(counter, max(state.counter(counter), p["receipt_seq"]))
    if doc["kind"] == "refund":
        apply_refund_effect(state, state.get_sale(doc["id"]) or doc)


def apply_refund_effect(state: StateStore, doc: Doc) -> None:
    """Record a completed refund on the sale it refunds (quantities, amounts, tax)."""
    original = state.get_sale(doc["refund_of"])
    if original is None:
        raise ReplayError(f"refund {doc['id']} of unknown sale {doc['refund_of']}")
    if doc["id"] in original.get("refunds", []):
        return
    original = {**original, "refunded": {k: dict(v) for k, v in original["refunded"].items()}}
    refunded = original["refunded"]
    for line, totals in zip(
        [x for x in doc["lines"] if not x.get("voided")], doc["totals"]["lines"], strict=True
    ):
        key = str(line["orig_line_no"])
        entry = refunded.setdefault(key, {"qty": 0, "amount": 0, "tax": 0})
        entry["qty"] += line["qty"]
        entry["amount"] += -totals["amount"]
        entry["tax"] += -int(line.get("refund_tax") or 0)
    original["refunds"] = [*original.get("refunds", []), doc["id"]]
    state.put_sale(original)


def _shift_open(state: StateStore, op: Op, p: Doc) -> None:
    state.put_shift(
        {
            "id": p["shift_id"],
            "register_id": op["register_id"],
            "number": p["number"],
            "status": "open",
            "float": p["float"],
            "movements": [],
            "opened_at": p["opened_at"],
            "closed_at": None,
        }
    )
    state.set_counter(f"shift:{op['register_id']}", p["number"])


def _shift(state: StateStore, p: Doc) -> Doc:
    shift = state.get_shift(p["shift_id"])
    if shift is None:
        raise ReplayError(f"no shift {p['shift_id']}")
    return {**shift, "movements": list(shift["movements"])}


def _shift_cash(state: StateStore, op: Op, p: Doc) -> None:
    shift = _shift(state, p)
    shift["movements"].append(p["movement"])
    state.put_shift(shift)


def _shift_close(state: StateStore, op: Op, p: Doc) -> None:
    shift = _shift(state, p)
    shift["status"] = "closed"
    shift["closed_at"] = p["closed_at"]
    shift["counted"] = p["counted"]
    shift["z_no"] = p["z_no"]
    report = shift_report(state, shift)
    report["z_no"] = p["z_no"]
    report["counted"] = p["counted"]
    report["over_short"] = p["counted"] - report["expected_cash"]
    for name, section in (p.get("sections") or {}).items():
        report.setdefault(name, section)
    shift["z_report"] = report
    state.put_shift(shift)
    state.set_counter(f"z:{op['register_id']}", p["z_no"])


def _payment_declined_after(state: StateStore, op: Op, p: Doc) -> None:
    """A card payment approved offline that the host declined when it was forwarded:
    the sale (usually completed, so no ``sale.*`` op may touch it) is flagged."""
    doc = _sale(state, op)
    doc["card_declined_after_the_fact"] = [*doc.get("card_declined_after_the_fact", []), p]
    _save_sale(state, doc, op)


def _catalog_import(state: StateStore, op: Op, p: Doc) -> None:
    for sku in p.get("removed") or []:  # taken out of the catalog in the back office
        state.remove_product(sku)
    for product in p["products"]:
        state.put_product(product)


def _customer_upsert(state: StateStore, op: Op, p: Doc) -> None:
    state.put_customer(p["customer"])


REDUCERS: dict[str, Callable[[StateStore, Op, Doc], None]] = {
    "sale.open": _sale_open,
    "sale.line_add": _line_add,
    "sale.line_qty": _line_qty,
    "sale.line_price": _line_price,
    "sale.line_discount": _line_discount,
    "sale.line_void": _line_void,
    "sale.discount": _sale_discount,
    "sale.customer": _sale_customer,
    "sale.park": _sale_park,
    "sale.resume": _sale_resume,
    "sale.void": _sale_void,
    "sale.tender": _sale_tender,
    "sale.complete": _sale_complete,
    "shift.open": _shift_open,
    "shift.cash": _shift_cash,
    "shift.close": _shift_close,
    "payment.declined_after": _payment_declined_after,
    "catalog.import": _catalog_import,
    "customer.upsert": _customer_upsert,
    "user.upsert": apply_user_upsert,
}

# Saved-sale ops of LAN sync (rename, transfer, split/merge, checkout lease), and what
# an op does when it meets a completed or voided sale (see appliance/lan/reducers.py).
from appliance.lan.reducers import AFTER_FINAL, LAN_REDUCERS  # noqa: E402

REDUCERS.update(LAN_REDUCERS)


def apply_op(state: StateStore, op: Op, *, lenient: bool = False) -> bool:
    """Apply one op; True if it changed state.

    Completed and voided sales are final: a later edit on them is ignored; a payment,
    tender or line that meets one is kept as ``AFTER_FINAL`` says. ``lenient``
    is for ops merged from other registers, which may arrive before the ops they
    refer to (an edit before its line's add): such an op is kept in the log and
    skipped now; when the missing op arrives, the sale is refolded in HLC order.
    """
    reducer = REDUCERS.get(op["kind"])
    if reducer is None:
        if lenient:
            return False
        raise ReplayError(f"op {op['op_id']}: unknown kind {op['kind']!r}")
    if op["kind"].startswith("sale.") and op["kind"] != "sale.open":
        doc = state.get_sale(op["sale_id"])
        if doc is not None and doc["status"] in (COMPLETED, VOIDED):
            reducer = AFTER_FINAL.get(op["kind"])
            if reducer is None:
                return False
    try:
        reducer(state, op, op["payload"])
    except (ReplayError, KeyError, StopIteration):
        if not lenient:
            raise
        return False
    return True

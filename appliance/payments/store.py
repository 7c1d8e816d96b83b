"""Payment rows in the register's SQLite database. Every function here runs on the
register's DB thread (``RegisterService.call``) and takes the ``Register`` first.

Writes are durable before the caller hears back: each is its own transaction, or a
savepoint when the service runs it inside a group commit (the group's COMMIT then
makes it durable before anyone is answered).

``guard`` is installed as an in-transaction hook of the register: it is the rule that
a card tender exists only for an approved payment, exactly once, and that a sale whose
card payment is still running or unknown takes no other tender and no edits.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from appliance.errors import Conflict, NotFound, ValidationError
from appliance.payments import machine as sm
from appliance.payments.offline import Outstanding
from appliance.reducer import Op
from appliance.register import AMOUNT_EDIT_KINDS, Register
from appliance.sale import OPEN
from appliance.storage.db import atomic

Doc = dict[str, Any]

COLUMNS = (
    "id",
    "sale_id",
    "kind",
    "original_id",
    "amount",
    "currency",
    "state",
    "message",
    "result_code",
    "terminal",
    "terminal_id",
    "receipt_no",
    "trace",
    "turnover_no",
    "auth_code",
    "card_name",
    "pan_masked",
    "entry_mode",
    "card_type",
    "slip",
    "offline",
    "forward_state",
    "forward_result",
    "forwarded_at",
    "tender_id",
    "prev_receipt_no",
    "override_by",
    "resolution",
    "reversed_by",
    "created_at",
    "updated_at",
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM payments"
# Rows that hold their sale: running, unknown, or approved but not yet its tender
# (a payment; a refund or a refund's reversal until the refund completes).
_ACTIVE_SQL = (
    "(state IN ('requested', 'in_progress', 'unknown')"
    " OR (state = 'approved' AND tender_id IS NULL AND reversed_by IS NULL"
    " AND (kind IN ('payment', 'refund') OR (kind = 'reversal' AND sale_id !="
    " (SELECT o.sale_id FROM payments o WHERE o.id = payments.original_id)))))"
)
# Sale ops refused while the sale has an active payment (the amount must not move).
_EDITS = AMOUNT_EDIT_KINDS | {"sale.park", "sale.void"}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _row(values: tuple[Any, ...]) -> Doc:
    doc = dict(zip(COLUMNS, values, strict=True))
    doc["offline"] = bool(doc["offline"])
    doc["slip"] = json.loads(doc["slip"]) if doc["slip"] else []
    return doc


def get(register: Register, payment_id: str) -> Doc:
    if not isinstance(payment_id, str):
        raise ValidationError("must be a payment id", field="payment_id")
    row = register.conn.execute(f"{_SELECT} WHERE id = ?", (payment_id,)).fetchone()
    if row is None:
        raise NotFound(f"no payment {payment_id!r}", field="payment_id", value=payment_id)
    return _row(row)


def select(register: Register, where: str = "1", params: tuple[Any, ...] = ()) -> list[Doc]:
    sql = f"{_SELECT} WHERE {where} ORDER BY created_at, id"
    return [_row(r) for r in register.conn.execute(sql, params)]


def recent(register: Register, state: str | None = None, limit: int = 100) -> list[Doc]:
    where, params = ("state = ?", (state,)) if state else ("1", ())
    sql = f"{_SELECT} WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ?"
    return [_row(r) for r in register.conn.execute(sql, (*params, limit))]


def events(register: Register, payment_id: str) -> list[Doc]:
    rows = register.conn.execute(
        "SELECT at, state, message FROM payment_events WHERE payment_id = ? ORDER BY id",
        (payment_id,),
    )
    return [{"at": at, "state": state, "message": message} for at, state, message in rows]


def _event(register: Register, payment_id: str, state: str, message: str | None) -> None:
    register.conn.execute(
        "INSERT INTO payment_events (payment_id, at, state, message) VALUES (?, ?, ?, ?)",
        (payment_id, now_iso(), state, message),
    )


def _set(register: Register, payment_id: str, fields: Doc) -> None:
    fields = {**fields, "updated_at": now_iso()}
    if "slip" in fields:
        fields["slip"] = json.dumps(fields["slip"], ensure_ascii=False)
    if "offline" in fields:
        fields["offline"] = int(bool(fields["offline"]))
    unknown = set(fields) - set(COLUMNS)
    if unknown:
        raise ValueError(f"not payment columns: {sorted(unknown)}")
    sets = ", ".join(f"{k} = ?" for k in fields)
    register.conn.execute(
        f"UPDATE payments SET {sets} WHERE id = ?", (*fields.values(), payment_id)
    )


def active_for_sale(register: Register, sale_id: str) -> Doc | None:
    found = select(register, f"sale_id = ? AND {_ACTIVE_SQL}", (sale_id,))
    return found[0] if found else None


def last_receipt_no(register: Register) -> int | None:
    """The terminal's receipt number last seen by the register (any answer that had one)."""
    value = meta(register, "last_receipt_no")
    return None if value is None else int(value)


def receipt_owner(
    register: Register, receipt_no: int, terminal_id: str | None, before: str
) -> str | None:
    """The payment that already holds this terminal receipt number. Receipt numbers
    wrap (4 digits), so only payments of the two days before ``before`` count."""
    since = (datetime.fromisoformat(before.replace("Z", "+00:00")) - timedelta(days=2)).isoformat()
    row = register.conn.execute(
        "SELECT id FROM payments WHERE receipt_no = ? AND (terminal_id IS ? OR ? IS NULL)"
        " AND created_at >= ? ORDER BY created_at DESC LIMIT 1",
        (receipt_no, terminal_id, terminal_id, since.replace("+00:00", "Z")),
    ).fetchone()
    return None if row is None else str(row[0])


# ---- creating and moving payments ----


def create(
    register: Register,
    *,
    sale_id: str,
    kind: str,
    amount: int,
    currency: int,
    terminal: str,
    original_id: str | None = None,
    override_by: str | None = None,
    payment_id: str,
    check_active: bool = True,
) -> Doc:
    """Insert a payment in state ``requested`` (nothing sent to the terminal yet).
    One active payment per sale, except the reversal that settles an active one."""
    active = active_for_sale(register, sale_id) if check_active else None
    if active is not None:
        raise Conflict(busy_message(active), field="sale_id", payment_id=active["id"])
    stamp = now_iso()
    with atomic(register.conn):
        register.conn.execute(
            "INSERT INTO payments (id, sale_id, kind, original_id, amount, currency, state,"
            " terminal, override_by, offline, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
            (
                payment_id,
                sale_id,
                kind,
                original_id,
                amount,
                currency,
                sm.REQUESTED,
                terminal,
                override_by,
                stamp,
                stamp,
            ),
        )
        _event(register, payment_id, sm.REQUESTED, f"{kind} of {amount}")
    return get(register, payment_id)


def create_sale_payment(
    register: Register,
    sale_id: str,
    amount: int | None,
    currency: int,
    terminal: str,
    payment_id: str,
    override_by: str | None = None,
) -> Doc:
    """A card payment for an open sale: at most what is still due (cards give no change)."""
    doc = register.sale(sale_id)
    if doc["kind"] != "sale":
        raise Conflict("refunds go back to the card with POST /api/refunds/{id}/card")
    if doc["status"] != OPEN:
        raise Conflict(f"sale {sale_id} is {doc['status']}: it takes no payment", field="sale_id")
    if not [line for line in doc["lines"] if not line.get("voided")]:
        raise Conflict("the sale has no lines to pay for", field="sale_id")
    if register.current_shift() is None:
        raise Conflict("no open shift: open a shift with a cash float first", field="shift")
    due = doc["totals"]["total"] - doc["totals"]["paid"]
    if amount is None:
        amount = due
    if amount < 1:
        raise Conflict(f"nothing is due on sale {sale_id}", field="amount_minor")
    if amount > due:
        raise ValidationError(
            f"card amount {amount} is more than the {due} still due (only cash gives change)",
            field="amount_minor",
        )
    return create(
        register,
        sale_id=sale_id,
        kind="payment",
        amount=amount,
        currency=currency,
        terminal=terminal,
        override_by=override_by,
        payment_id=payment_id,
    )


def transition(register: Register, payment_id: str, state: str, **fields: Any) -> Doc:
    """Move a payment to ``state`` (checked against the state machine) with its fields."""
    row = get(register, payment_id)
    sm.check_transition(payment_id, row["state"], state)
    with atomic(register.conn):
        _set(register, payment_id, {**fields, "state": state})
        _event(register, payment_id, state, fields.get("message"))
        if fields.get("receipt_no") is not None:
            _put_meta(register, "last_receipt_no", str(fields["receipt_no"]))
    return get(register, payment_id)


def update(register: Register, payment_id: str, note: str | None = None, **fields: Any) -> Doc:
    """Change fields without a state change (forward results, reversal links)."""
    with atomic(register.conn):
        _set(register, payment_id, fields)
        if note:
            _event(register, payment_id, get(register, payment_id)["state"], note)
    return get(register, payment_id)


def recover_after_restart(register: Register) -> list[Doc]:
    """On start: requests never sent become aborted; payments that were in progress when
    the register stopped become unknown (to be resolved with the terminal)."""
    changed = []
    for row in select(register, "state = ?", (sm.REQUESTED,)):
        changed.append(
            transition(
                register,
                row["id"],
                sm.ABORTED,
                message="the register restarted before the terminal was asked: nothing charged",
            )
        )
    for row in select(register, "state = ?", (sm.IN_PROGRESS,)):
        changed.append(
            transition(
                register,
                row["id"],
                sm.UNKNOWN,
                message="the register stopped during this payment: resolving with the terminal",
            )
        )
    return changed


# ---- offline approvals ----


_PENDING_SQL = (
    "(offline = 1 AND state = 'approved' AND forward_state = 'pending' AND reversed_by IS NULL)"
)


def outstanding(register: Register) -> Outstanding:
    row = register.conn.execute(
        "SELECT count(*), coalesce(sum(amount), 0), min(created_at) FROM payments"
        f" WHERE {_PENDING_SQL}"
    ).fetchone()
    return Outstanding(int(row[0]), int(row[1]), row[2])


def pending_forward(register: Register) -> list[Doc]:
    return select(register, _PENDING_SQL)


def has_work(register: Register) -> bool:
    """Anything the background task has to do with the terminal: unknown payments,
    approvals not yet tenders, offline approvals waiting to be forwarded."""
    row = register.conn.execute(
        "SELECT 1 FROM payments WHERE state IN ('unknown', 'in_progress') OR (state ="
        f" 'approved' AND tender_id IS NULL AND reversed_by IS NULL) OR {_PENDING_SQL} LIMIT 1"
    ).fetchone()
    return row is not None


def declined_after(register: Register) -> list[Doc]:
    """Offline approvals the host declined when forwarded: the merchant's loss to chase."""
    out = []
    for row in select(register, "forward_state = 'declined'"):
        sale = register.state.get_sale(row["sale_id"]) or {}
        out.append(
            {
                "payment_id": row["id"],
                "sale_id": row["sale_id"],
                "receipt_no": sale.get("receipt_no"),
                "amount_minor": row["amount"],
                "at": row["created_at"],
                "pan_masked": row["pan_masked"],
                "card_name": row["card_name"],
                "customer": sale.get("customer"),
                "result_code": row["forward_result"],
                "message": row["message"],
                "forwarded_at": row["forwarded_at"],
            }
        )
    return out


def record_forward(
    register: Register, payment_id: str, result_code: int, message: str, at: str
) -> Doc | None:
    """The host's answer to a forwarded offline approval; idempotent (a result already
    recorded is kept). A decline flags the sale through the op log."""
    row = get(register, payment_id)
    if row["forward_state"] != sm.PENDING:
        return None
    if result_code == 0:
        return update(
            register,
            payment_id,
            "forwarded: the host approved",
            forward_state=sm.FORWARDED,
            forward_result=0,
            forwarded_at=at,
        )
    # The op flags the sale; the guard marks this row in the same transaction.
    register.append_op(
        "payment.declined_after",
        {
            "payment_id": payment_id,
            "tender_id": row["tender_id"],
            "amount": row["amount"],
            "pan_masked": row["pan_masked"],
            "result_code": result_code,
            "message": message,
            "at": at,
        },
        row["sale_id"],
    )
    return get(register, payment_id)


# ---- the register hook ----


def busy_message(row: Doc) -> str:
    what = {
        sm.REQUESTED: "is waiting for the terminal",
        sm.IN_PROGRESS: "is running on the terminal",
        sm.UNKNOWN: "has an unknown outcome (the terminal vanished); it is being resolved "
        f"with the terminal (POST /api/payments/{row['id']}/resolve)",
        sm.APPROVED: "was approved and is being recorded",
    }[row["state"]]
    return f"card {row['kind']} {row['id']} of {row['amount']} on this sale {what}"


def _claim_tender(register: Register, sale_id: str, tender: Doc) -> None:
    pid = tender.get("payment_id")
    row = get(register, pid) if isinstance(pid, str) else None
    if row is None or row["sale_id"] != sale_id or row["state"] != sm.APPROVED:
        raise Conflict(
            "a card tender needs a payment the card terminal approved for this sale "
            f"(POST /api/sales/{sale_id}/payments)",
            field="kind",
        )
    sign = 1 if row["kind"] == "payment" else -1
    if tender["amount"] != sign * row["amount"]:
        raise Conflict(
            f"card tender of {tender['amount']} does not match payment {pid} of "
            f"{sign * row['amount']}",
            field="amount",
        )
    cur = register.conn.execute(
        "UPDATE payments SET tender_id = ?, updated_at = ? WHERE id = ? AND tender_id IS NULL",
        (tender["id"], now_iso(), pid),
    )
    if cur.rowcount != 1:
        raise Conflict(f"payment {pid} is already a tender of this sale", field="payment_id")


def _mark_declined_after(register: Register, p: Doc) -> None:
    cur = register.conn.execute(
        "UPDATE payments SET forward_state = ?, forward_result = ?, forwarded_at = ?,"
        " message = ?, updated_at = ? WHERE id = ? AND forward_state = ?",
        (
            sm.FORWARD_DECLINED,
            p["result_code"],
            p["at"],
            f"declined after the fact: {p['message']}",
            now_iso(),
            p["payment_id"],
            sm.PENDING,
        ),
    )
    if cur.rowcount != 1:
        raise Conflict(f"payment {p['payment_id']} has no forward pending", field="payment_id")
    _event(register, p["payment_id"], sm.APPROVED, f"declined after the fact: {p['message']}")


def guard(register: Register, ops: list[Op]) -> None:
    """In-transaction hook: card tenders only from approved payments (once each); no
    other tender, edit, park or void on a sale whose card payment is active; no shift
    close while a payment runs; a declined forward is recorded with its op, once."""
    for op in ops:
        kind = op["kind"]
        if kind == "payment.declined_after":
            _mark_declined_after(register, op["payload"])
        elif kind == "sale.tender" and op["payload"]["tender"]["kind"] == "card":
            _claim_tender(register, op["sale_id"], op["payload"]["tender"])
        elif kind == "sale.tender" or kind in _EDITS:
            active = active_for_sale(register, op["sale_id"])
            if active is not None:
                raise Conflict(busy_message(active), field="sale_id", payment_id=active["id"])
        elif kind == "shift.close":
            running = select(register, "state IN ('requested', 'in_progress')")
            if running:
                raise Conflict(
                    f"a card payment is running ({running[0]['id']}): close the shift after it",
                    field="shift",
                )


def install(register: Register) -> None:
    if guard not in register.in_transaction:
        register.in_transaction.append(guard)


# ---- small durable facts and end-of-day ----


def meta(register: Register, key: str) -> str | None:
    row = register.conn.execute("SELECT value FROM payment_meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _put_meta(register: Register, key: str, value: str | None) -> None:
    if value is None:
        register.conn.execute("DELETE FROM payment_meta WHERE key = ?", (key,))
    else:
        register.conn.execute(
            "INSERT INTO payment_meta (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def set_meta(register: Register, key: str, value: str | None) -> None:
    with atomic(register.conn):
        _put_meta(register, key, value)


def record_eod(register: Register, shift_id: str | None, ok: bool, result: Doc) -> Doc:
    """Store an end-of-day run. A successful one has submitted every stored offline
    payment: those the terminal gave no individual answer for (06 51 unsupported or
    failed) are marked submitted, with no result (a decline would show in its
    end-of-day report and the acquirer's statement, not here)."""
    at = now_iso()
    with atomic(register.conn):
        cur = register.conn.execute(
            "INSERT INTO terminal_eod (at, shift_id, ok, result) VALUES (?, ?, ?, ?)",
            (at, shift_id, int(ok), json.dumps(result, ensure_ascii=False)),
        )
        if ok:
            for row in pending_forward(register):
                _set(register, row["id"], {"forward_state": sm.FORWARDED, "forwarded_at": at})
                _event(
                    register,
                    row["id"],
                    sm.APPROVED,
                    "submitted at end-of-day; the terminal reported no result for it",
                )
    return {"id": cur.lastrowid, **result}


def eod_runs(register: Register, limit: int = 20) -> list[Doc]:
    rows = register.conn.execute(
        "SELECT id, at, shift_id, ok, result FROM terminal_eod ORDER BY id DESC LIMIT ?", (limit,)
    )
    return [
        {"id": i, "at": at, "shift_id": shift, "ok": bool(ok), **json.loads(result)}
        for i, at, shift, ok, result in rows
    ]

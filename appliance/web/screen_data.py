"""What the screens show, read on the register's thread (functions taking a Register)."""

from __future__ import annotations

import json
from typing import Any

from appliance.errors import NotFound
from appliance.register import Register

Doc = dict[str, Any]


def current_sale(register: Register) -> Doc | None:
    """The sale the counter is working on: this register's newest open sale (one it
    resumed from another register counts as its own)."""
    me = register.register_id
    mine = [s for s in register.sales("open") if (s.get("holder") or s["register_id"]) == me]
    return mine[-1] if mine else None


def quick_keys(register: Register, skus: list[str]) -> list[Doc]:
    keys = []
    for sku in skus:
        try:
            keys.append(register.product(sku))
        except NotFound:
            keys.append({"sku": sku, "missing": True})
    return keys


def _docs(register: Register, sql: str, params: tuple[Any, ...]) -> list[Doc]:
    return [json.loads(r[0]) for r in register.conn.execute(sql, params).fetchall()]


def last_completed(register: Register) -> Doc | None:
    rows = _docs(
        register,
        "SELECT doc FROM sales WHERE register_id = ? AND status = 'completed'"
        " ORDER BY completed_at DESC LIMIT 1",
        (register.register_id,),
    )
    return rows[0] if rows else None


def refundable(register: Register, receipt_no: str) -> Doc:
    """The original sale of a receipt and, per line, how much can still be refunded."""
    sale = register.sale_by_receipt(receipt_no)
    rows = []
    for line in sale["lines"]:
        if line.get("voided"):
            continue
        done = sale.get("refunded", {}).get(str(line["no"]), {"qty": 0})["qty"]
        rows.append({"line": line, "left": line["qty"] - done})
    return {"sale": sale, "rows": rows}


def shifts(register: Register, limit: int = 30) -> list[Doc]:
    return _docs(
        register,
        "SELECT doc FROM shifts WHERE register_id = ? ORDER BY number DESC LIMIT ?",
        (register.register_id, limit),
    )


def status(register: Register) -> Doc:
    conn = register.conn
    counts = dict(conn.execute("SELECT status, count(*) FROM sales GROUP BY status").fetchall())
    ops = conn.execute("SELECT count(*), max(hlc) FROM ops").fetchone()
    registers = conn.execute(
        "SELECT register_id, count(*), max(hlc) FROM ops GROUP BY register_id ORDER BY register_id"
    ).fetchall()
    return {
        "register_id": register.register_id,
        "shift": register.current_shift(),
        "products": register.state.product_count(),
        "sales": counts,
        "ops": ops[0],
        "last_op_hlc": ops[1],
        "registers_seen": [{"register_id": r[0], "ops": r[1], "last_hlc": r[2]} for r in registers],
    }


def catalog_updates(register: Register, limit: int = 5) -> list[Doc]:
    """The latest catalog imports: when, from which register, how many products."""
    rows = register.conn.execute(
        "SELECT register_id, hlc, json_array_length(payload, '$.products') FROM ops"
        " WHERE kind = 'catalog.import' ORDER BY seq DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [{"register_id": r[0], "hlc": r[1], "count": r[2]} for r in rows]


def recent_sales(register: Register, limit: int = 50) -> list[Doc]:
    return _docs(
        register,
        "SELECT doc FROM sales WHERE status IN ('completed', 'voided')"
        " ORDER BY coalesce(completed_at, opened_at) DESC LIMIT ?",
        (limit,),
    )


def saved_sales_view(register: Register, peers: Any | None, parked_only: bool = False) -> Doc:
    """Saved sales for the resume list and /admin: with LAN sync (``peers``, the
    node's PeerDirectory), every register's, each with its holder's state, plus the
    last-known saved sales of registers that are unreachable (marked, not resumable
    here), and those registers with the register list's message; without it, this
    register's own."""
    if peers is None:
        where = "status = 'parked'" if parked_only else "status IN ('parked', 'open')"
        rows = [
            {
                "id": d["id"],
                "name": d.get("name"),
                "status": d["status"],
                "register_id": d["register_id"],
                "holder": d.get("holder") or d["register_id"],
                "holder_name": d.get("holder") or d["register_id"],
                "holder_status": "this_register",
                "total": d["totals"]["total"],
                "lines": len([x for x in d["lines"] if not x.get("voided")]),
                "opened_at": d.get("opened_at"),
                "available": True,
                "unreachable": False,
            }
            for d in reversed(register.state.sales(where))
            if d["kind"] == "sale"
        ]
        return {"sales": rows, "unreachable": []}
    from appliance.lan.api import saved_sales
    from appliance.lan.registry import CONNECTED, THIS

    away = {
        row["register_id"]: row
        for row in peers.register_list()
        if row["status"] not in (CONNECTED, THIS)
    }
    rows = []
    for sale in saved_sales(register, peers):
        if parked_only and sale["available"] and sale["status"] != "parked":
            continue
        rows.append(
            {
                **sale,
                "register_id": str(sale["id"]).split("-", 1)[0],
                "unreachable": sale["holder"] in away,
            }
        )
    rows.sort(key=lambda r: str(r.get("opened_at") or ""), reverse=True)  # newest first
    rows.sort(key=lambda r: not r["available"])  # then the last-known ones of others
    unreachable = [
        {
            "register_id": rid,
            "name": row["name"],
            "status": row["status"],
            "last_seen": row.get("last_seen"),
            "message": row["message"],
            "saved_sales": sum(1 for r in rows if r["holder"] == rid),
        }
        for rid, row in sorted(away.items())
    ]
    return {"sales": rows, "unreachable": unreachable}

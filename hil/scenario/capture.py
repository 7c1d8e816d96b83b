"""Turn sales recorded by a register into a scenario, so a bug seen in a shop becomes a test.

The op log holds what happened at the counter: the codes scanned (each line keeps
the code it was scanned with), parking, tenders and the outcome. ``scenario_from_log``
replays that as steps — scans, park/resume, cash or card payments — and ends with the
expectations the shop saw (lines, total, status), in the scenario format.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

Doc = dict[str, Any]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _sale_ops(conn: sqlite3.Connection, sale_id: str) -> list[Doc]:
    rows = conn.execute(
        "SELECT kind, payload FROM ops WHERE sale_id = ? ORDER BY hlc, op_id", (sale_id,)
    ).fetchall()
    return [{"kind": kind, "payload": json.loads(payload)} for kind, payload in rows]


def scenario_from_log(db_path: Path, receipt_no: str | None = None, name: str | None = None) -> str:
    """A scenario (TOML text) that replays one recorded sale: the given or the last one."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        if receipt_no:
            row = conn.execute("SELECT id, doc FROM sales WHERE receipt_no = ?", (receipt_no,))
        else:
            row = conn.execute(
                "SELECT id, doc FROM sales WHERE status = 'completed' AND kind = 'sale'"
                " ORDER BY completed_at DESC LIMIT 1"
            )
        found = row.fetchone()
        if found is None:
            raise LookupError(f"no sale {receipt_no or '(completed)'} in {db_path}")
        sale_id, doc_text = found
        sale = json.loads(doc_text)
        ops = _sale_ops(conn, sale_id)
    finally:
        conn.close()

    steps: list[Doc] = []
    for op in ops:
        kind, p = op["kind"], op["payload"]
        if kind == "sale.line_add":
            line = p["line"]
            steps.append({"scan": line.get("code") or line["sku"]})
        elif kind == "sale.park":
            steps.append({"park": p["name"]})
        elif kind == "sale.resume":
            name_ = next((o["payload"]["name"] for o in ops if o["kind"] == "sale.park"), "tab")
            steps.append({"resume": name_})
        elif kind == "sale.tender":
            tender = p["tender"]
            if tender["kind"] == "cash":
                steps.append({"pay_cash": tender["amount"]})
            elif tender["kind"] == "card":
                steps.append({"pay_card": "approve", "amount_minor": tender["amount"]})
        elif kind == "sale.void":
            steps.append({"void": p["reason"]})
    active = [x for x in sale["lines"] if not x.get("voided")]
    steps.append(
        {
            "expect_sale": {
                "status": sale["status"],
                "total_minor": sale["totals"]["total"],
                "tenders": [t["kind"] for t in sale["tenders"]],
            }
        }
    )
    header = [
        "name = " + _toml_value(name or f"replay of sale {sale.get('receipt_no') or sale_id}"),
        "description = "
        + _toml_value(
            f"Captured from {db_path.name}: {len(active)} lines, total {sale['totals']['total']}"
        ),
        'tiers = ["inprocess", "virtual"]',
        "",
        "[setup]",
        "shift_float_minor = 0",
        "",
    ]
    body = []
    for step in steps:
        body.append("[[step]]")
        body += [f"{key} = {_toml_value(value)}" for key, value in step.items()]
        body.append("")
    return "\n".join(header + body)

"""X and Z reports: what a shift took, by tender and by tax rate, and the cash count.

An X report is read mid-shift and changes nothing; the Z report is computed once,
when the shift closes, and stored in the shift (so it reads the same forever, even
if the report code changes later).
"""

from __future__ import annotations

from typing import Any

from appliance.sale import CASH, TENDER_KINDS
from appliance.storage.state import StateStore


def shift_report(state: StateStore, shift: dict[str, Any]) -> dict[str, Any]:
    sales = state.sales("shift_id = ? AND status = 'completed'", (shift["id"],))
    tenders = dict.fromkeys(TENDER_KINDS, 0)
    taxes: dict[tuple[str, int], dict[str, Any]] = {}
    counts = {"sales": 0, "refunds": 0}
    gross_sales = refunds_total = discounts = cash_rounding = 0
    for sale in sales:
        totals = sale["totals"]
        if sale["kind"] == "refund":
            counts["refunds"] += 1
            refunds_total += totals["total"]
        else:
            counts["sales"] += 1
            gross_sales += totals["total"]
        discounts += totals["line_discounts"] + totals["sale_discount"]
        cash_rounding += totals["cash_rounding"]
        for tender in sale["tenders"]:
            tenders[tender["kind"]] += int(tender["amount"])
        tenders[CASH] -= totals["change"]
        for row in totals["taxes"]:
            key = (row["category"], row["rate_ppm"])
            acc = taxes.setdefault(
                key,
                {"category": key[0], "rate_ppm": key[1], "net": 0, "tax": 0, "gross": 0},
            )
            for field in ("net", "tax", "gross"):
                acc[field] += row[field]

    cash_in = sum(m["amount"] for m in shift["movements"] if m["kind"] == "in")
    cash_out = sum(m["amount"] for m in shift["movements"] if m["kind"] == "out")
    expected_cash = shift["float"] + tenders[CASH] + cash_in - cash_out
    return {
        "shift_id": shift["id"],
        "shift_number": shift["number"],
        "register_id": shift["register_id"],
        "opened_at": shift["opened_at"],
        "closed_at": shift.get("closed_at"),
        "counts": counts,
        "sales_total": gross_sales,
        "refunds_total": refunds_total,
        "net_total": gross_sales + refunds_total,
        "discounts": discounts,
        "cash_rounding": cash_rounding,
        "tenders": tenders,
        "taxes": [taxes[k] for k in sorted(taxes)],
        "tax_total": sum(t["tax"] for t in taxes.values()),
        "float": shift["float"],
        "cash_in": cash_in,
        "cash_out": cash_out,
        "expected_cash": expected_cash,
    }


def format_report(report: dict[str, Any], title: str, decimals: int = 2) -> str:
    """Plain-text report for the CLI and for printing (one label/value per line)."""
    from appliance.money import format_minor

    def m(value: int) -> str:
        return format_minor(value, decimals)

    rows: list[tuple[str, str]] = [
        ("Register", report["register_id"]),
        ("Shift", str(report["shift_number"])),
        ("Opened", report["opened_at"]),
    ]
    if report.get("closed_at"):
        rows.append(("Closed", report["closed_at"]))
    rows += [
        ("Sales", str(report["counts"]["sales"])),
        ("Refunds", str(report["counts"]["refunds"])),
        ("Sales total", m(report["sales_total"])),
        ("Refunds total", m(report["refunds_total"])),
        ("Net total", m(report["net_total"])),
        ("Discounts", m(report["discounts"])),
    ]
    for kind, amount in report["tenders"].items():
        rows.append((f"Tender {kind}", m(amount)))
    for tax in report["taxes"]:
        rate = f"{tax['rate_ppm'] / 10_000:g}%"
        rows.append(
            (
                f"Tax {tax['category']} {rate}",
                f"net {m(tax['net'])} tax {m(tax['tax'])} gross {m(tax['gross'])}",
            )
        )
    rows += [
        ("Tax total", m(report["tax_total"])),
        ("Float", m(report["float"])),
        ("Cash in", m(report["cash_in"])),
        ("Cash out", m(report["cash_out"])),
        ("Expected cash", m(report["expected_cash"])),
    ]
    if "counted" in report:
        rows += [("Counted cash", m(report["counted"])), ("Over/short", m(report["over_short"]))]
    terminal = report.get("card_terminal")
    if terminal:  # the card terminal's end-of-day, run at shift close
        if terminal.get("ok"):
            rows.append(("Card terminal total", m(int(terminal.get("amount_minor") or 0))))
        else:
            rows.append(("Card terminal", f"end-of-day failed: {terminal.get('message')}"))
        pending = terminal.get("pending_forward") or {}
        if pending.get("count"):
            rows.append(
                (
                    "Card offline pending",
                    f"{pending['count']} payments, {m(int(pending['amount_minor']))}",
                )
            )
    width = max(len(label) for label, _ in rows)
    lines = [title, "=" * len(title)]
    lines += [f"{label.ljust(width)}  {value}" for label, value in rows]
    return "\n".join(lines)

"""The sale: its document shape and the pure money rules that total it.

A sale is a JSON document (``dict``) so that the op log, the state tables, sync and
the API all carry the same thing. ``compute_totals`` is a pure function of the
document: the same lines and tenders give the same totals to the cent on every
register and on every replay of the op log.

Rules (also in ARCHITECTURE.md):

- line gross = qty × unit price (weighed: grams × price per kg / 1000, rounded);
  a price override replaces the unit price;
- line discount: percent (basis points) of the gross, or an amount ≤ gross;
- the sale discount is spread over the non-void lines by their amount after line
  discounts (largest remainder), so every tax rate carries its share exactly;
- tax per (category, rate): tax-inclusive stores extract it from the gross
  (amount × r / (1 + r)), tax-exclusive stores add it (amount × r); with
  ``per_line`` rounding each line's tax is rounded and summed, with ``per_total``
  each rate's total is taxed once. All rounding is half away from zero;
- cash rounding: when cash is tendered, the part of the total left for cash is
  rounded to the store's increment; tenders − change = total + cash rounding.
"""

from __future__ import annotations

from typing import Any

from appliance.money import PPM, allocate, div_round, percent_of, round_to_increment

SaleDoc = dict[str, Any]
LineDoc = dict[str, Any]

OPEN = "open"
PARKED = "parked"
COMPLETED = "completed"
VOIDED = "voided"
FINAL_STATES = (COMPLETED, VOIDED)

CASH = "cash"
CARD = "card"
OTHER = "other"
TENDER_KINDS = (CASH, CARD, OTHER)


def unit_price(line: LineDoc) -> int:
    override = line.get("override")
    return int(override["unit_price"]) if override else int(line["unit_price"])


def line_gross(line: LineDoc) -> int:
    """Amount of the line before discounts (negative for refund lines)."""
    if line.get("refund_amount") is not None:
        return int(line["refund_amount"])
    if line["unit"] == "g":
        return div_round(int(line["qty"]) * unit_price(line), 1000)
    return int(line["qty"]) * unit_price(line)


def line_discount(line: LineDoc, gross: int) -> int:
    discount = line.get("discount")
    if not discount:
        return 0
    if discount["kind"] == "percent":
        return percent_of(gross, int(discount["value"]))
    return min(int(discount["value"]), gross)


def _sale_discount_total(doc: SaleDoc, base: int) -> int:
    discount = doc.get("discount")
    if not discount or base <= 0:
        return 0
    if discount["kind"] == "percent":
        return percent_of(base, int(discount["value"]))
    return min(int(discount["value"]), base)


def _tax_of(amount: int, rate_ppm: int, mode: str) -> int:
    if mode == "inclusive":
        return div_round(amount * rate_ppm, PPM + rate_ppm)
    return div_round(amount * rate_ppm, PPM)


def compute_totals(doc: SaleDoc) -> dict[str, Any]:
    """Totals of a sale: per line, per tax rate, tenders, change and what is due."""
    pricing = doc["pricing"]
    mode = pricing["tax_mode"]
    rounding = pricing["tax_rounding"]
    active = [line for line in doc["lines"] if not line.get("voided")]

    per_line = []
    for line in active:
        gross = line_gross(line)
        disc = line_discount(line, gross)
        per_line.append({"no": line["no"], "gross": gross, "discount": disc, "net": gross - disc})

    subtotal = sum(p["net"] for p in per_line)
    sale_discount = _sale_discount_total(doc, subtotal)
    shares = allocate(sale_discount, [max(p["net"], 0) for p in per_line])
    for p, share in zip(per_line, shares, strict=True):
        p["sale_discount"] = share
        p["amount"] = p["net"] - share

    groups: dict[tuple[str, int], dict[str, int]] = {}
    fixed_tax = False
    for line, p in zip(active, per_line, strict=True):
        key = (line["tax_category"], int(line["rate_ppm"]))
        group = groups.setdefault(key, {"amount": 0, "line_tax": 0})
        group["amount"] += p["amount"]
        if line.get("refund_tax") is not None:
            # A refund line carries its exact share of the original sale's tax.
            line_tax = int(line["refund_tax"])
            fixed_tax = True
        else:
            line_tax = _tax_of(p["amount"], key[1], mode)
        p["tax"] = line_tax
        group["line_tax"] += line_tax

    taxes: list[dict[str, Any]] = []
    for (category, rate), group in sorted(groups.items()):
        amount = group["amount"]
        if rounding == "per_line" or fixed_tax:
            tax = group["line_tax"]
        else:
            tax = _tax_of(amount, rate, mode)
        if mode == "inclusive":
            gross, net = amount, amount - tax
        else:
            gross, net = amount + tax, amount
        taxes.append(
            {"category": category, "rate_ppm": rate, "net": net, "tax": tax, "gross": gross}
        )

    tax_total = sum(t["tax"] for t in taxes)
    total = sum(t["gross"] for t in taxes)

    tenders = doc.get("tenders", [])
    paid = sum(int(t["amount"]) for t in tenders)
    cash_paid = sum(int(t["amount"]) for t in tenders if t["kind"] == CASH)
    cash_rounding = 0
    step = pricing["cash_rounding"]
    has_cash = any(t["kind"] == CASH for t in tenders)
    if has_cash and step > 1:
        cash_part = total - (paid - cash_paid)
        if cash_part < 0:  # a cash payout rounds toward zero: never more than refunded
            rounded = -((-cash_part) // step * step)
        else:
            rounded = round_to_increment(cash_part, step)
        cash_rounding = rounded - cash_part
    payable = total + cash_rounding
    # What the customer still owes if the rest is paid in cash (after cash rounding).
    noncash_paid = paid - cash_paid
    cash_due = max(0, round_to_increment(total - noncash_paid, step) - cash_paid)
    sign = -1 if payable < 0 else 1
    over = sign * (paid - payable)
    change = over if (over > 0 and has_cash and sign > 0) else 0
    due = max(0, -over) * sign

    return {
        "lines": per_line,
        "subtotal": subtotal,
        "line_discounts": sum(p["discount"] for p in per_line),
        "sale_discount": sale_discount,
        "taxes": taxes,
        "tax_total": tax_total,
        "total": total,
        "cash_rounding": cash_rounding,
        "payable": payable,
        "paid": paid,
        "change": change,
        "due": due,
        "cash_due": cash_due if total >= 0 else 0,
    }


def is_paid(doc: SaleDoc) -> bool:
    totals = doc["totals"]
    return bool(doc["lines"]) and totals["due"] == 0

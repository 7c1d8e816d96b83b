"""Property-based tests of the money rules, run through the real register on SQLite files.

For random sales (units and weights, overrides, line and sale discounts, both tax modes,
both rounding rules, cash rounding) and random tender sequences:
- tenders − change = total + cash rounding, and cash rounding is within half a step;
- the per-rate tax breakdown adds up to the tax total and the total;
- random partial refunds never give back more than was sold (amount or tax), and a
  full refund gives back exactly what was sold;
- replaying the op log reproduces the stored state exactly.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.errors import ApplianceError
from appliance.register import Register
from appliance.sale import compute_totals
from tests.conftest import CATALOG_CSV, make_config

PRODUCTS = ["COFFEE", "BEER", "APPLES", "CARD", "FREE"]

line_st = st.fixed_dictionaries(
    {
        "sku": st.sampled_from(PRODUCTS),
        "qty": st.integers(1, 50),
        "weight_g": st.integers(1, 20_000),
        "override": st.none() | st.integers(0, 100_000),
        "discount": st.none()
        | st.tuples(st.just("percent"), st.integers(0, 10_000))
        | st.tuples(st.just("amount"), st.integers(0, 2_000)),
    }
)
sale_st = st.fixed_dictionaries(
    {
        "mode": st.sampled_from(["inclusive", "exclusive"]),
        "rounding": st.sampled_from(["per_line", "per_total"]),
        "cash_step": st.sampled_from([1, 5, 10]),
        "lines": st.lists(line_st, min_size=1, max_size=8),
        "void": st.lists(st.integers(1, 8), max_size=2),
        "sale_discount": st.none()
        | st.tuples(st.just("percent"), st.integers(0, 10_000))
        | st.tuples(st.just("amount"), st.integers(0, 5_000)),
        "tenders": st.lists(
            st.tuples(st.sampled_from(["cash", "card", "other"]), st.integers(1, 400_000)),
            min_size=1,
            max_size=4,
        ),
        "refund_chunks": st.lists(st.integers(1, 60), min_size=1, max_size=6),
        "refund_to_cash": st.booleans(),
    }
)


def _ring_up(reg: Register, spec: dict[str, Any]) -> dict[str, Any]:
    sale = reg.open_sale()
    sid = sale["id"]
    for line in spec["lines"]:
        weighed = reg.product(line["sku"])["sold_by"] == "weight"
        sale = reg.add_line(
            sid,
            line["sku"],
            qty=1 if weighed else line["qty"],
            weight_g=line["weight_g"] if weighed else None,
        )
        no = sale["lines"][-1]["no"]
        if line["override"] is not None:
            sale = reg.override_price(sid, no, line["override"], "price check")
        if line["discount"] is not None:
            kind, value = line["discount"]
            try:
                if kind == "percent":
                    sale = reg.discount_line(sid, no, percent_bp=value)
                else:
                    sale = reg.discount_line(sid, no, amount=value)
            except ApplianceError:
                pass  # an amount over the line's amount is refused; state unchanged
    for no in spec["void"]:
        active = [x["no"] for x in sale["lines"] if not x["voided"]]
        if no in active and len(active) > 1:
            sale = reg.void_line(sid, no)
    if spec["sale_discount"] is not None:
        kind, value = spec["sale_discount"]
        with contextlib.suppress(ApplianceError):
            sale = reg.discount_sale(
                sid, **({"percent_bp": value} if kind == "percent" else {"amount": value})
            )
    return sale


def _check_breakdown(totals: dict[str, Any]) -> None:
    assert sum(t["tax"] for t in totals["taxes"]) == totals["tax_total"]
    assert sum(t["gross"] for t in totals["taxes"]) == totals["total"]
    for row in totals["taxes"]:
        assert row["net"] + row["tax"] == row["gross"]


@given(spec=sale_st)
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_money_rules_hold_for_random_sales(spec: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = make_config(
            Path(tmp),
            tax={"mode": spec["mode"], "rounding": spec["rounding"]},
            store={"cash_rounding": spec["cash_step"]},
        )
        reg = Register(config)
        try:
            reg.import_catalog_csv(CATALOG_CSV, "t.csv")
            reg.open_shift(100_000)
            sale = _ring_up(reg, spec)
            totals = sale["totals"]
            _check_breakdown(totals)
            amounts = sum(p["amount"] for p in totals["lines"])
            if spec["mode"] == "inclusive":
                assert amounts == totals["total"]
            else:
                assert amounts + totals["tax_total"] == totals["total"]
            assert totals == compute_totals(sale)  # stored totals are the pure function's

            # Pay with the random tenders; refused ones leave the sale unchanged.
            for kind, amount in spec["tenders"]:
                before = reg.sale(sale["id"])
                try:
                    sale = reg.add_tender(sale["id"], kind, amount)
                except ApplianceError:
                    assert reg.sale(sale["id"]) == before
                if sale["status"] == "completed":
                    break
            if sale["status"] != "completed" and sale["totals"]["total"] > 0:
                sale = reg.add_tender(sale["id"], "cash", sale["totals"]["cash_due"] or 1)
            elif sale["status"] != "completed":
                sale = reg.complete(sale["id"])
            assert sale["status"] == "completed"
            t = sale["totals"]
            paid = sum(x["amount"] for x in sale["tenders"])
            assert paid - t["change"] == t["total"] + t["cash_rounding"]
            assert abs(t["cash_rounding"]) * 2 <= spec["cash_step"]
            assert t["change"] >= 0
            if t["change"]:
                assert any(x["kind"] == "cash" for x in sale["tenders"])

            _refund_randomly(reg, sale, spec)
            result = reg.check()
            assert result.ok, result.differences
        finally:
            reg.close()


def _refund_randomly(reg: Register, sale: dict[str, Any], spec: dict[str, Any]) -> None:
    active = [x for x in sale["lines"] if not x["voided"]]
    chunks = list(spec["refund_chunks"])
    refunds: list[dict[str, Any]] = []
    # Refund every line in random chunk sizes until all of it is refunded.
    for line in active:
        left = line["qty"]
        while left > 0:
            step = min(
                left, chunks[len(refunds) % len(chunks)] * (100 if line["unit"] == "g" else 1)
            )
            refund = reg.start_refund(sale["receipt_no"])
            refund = reg.add_refund_line(refund["id"], line["no"], step)
            # Asking for more than is left is refused.
            try:
                reg.add_refund_line(refund["id"], line["no"], left - step + 1)
                raise AssertionError("over-refund was accepted")
            except ApplianceError:
                pass
            refund = reg.complete_refund(refund["id"], "cash" if spec["refund_to_cash"] else None)
            rt = refund["totals"]
            paid_out = sum(x["amount"] for x in refund["tenders"])
            assert paid_out == rt["total"] + rt["cash_rounding"]
            assert rt["cash_rounding"] >= 0  # payouts round toward zero
            refunds.append(refund)
            left -= step
    original = reg.sale(sale["id"])
    refunded_total = -sum(r["totals"]["total"] for r in refunds)
    assert refunded_total == original["totals"]["total"]
    by_rate: dict[tuple[str, int], int] = {}
    for r in refunds:
        for row in r["totals"]["taxes"]:
            key = (row["category"], row["rate_ppm"])
            by_rate[key] = by_rate.get(key, 0) - row["tax"]
    for row in original["totals"]["taxes"]:
        assert by_rate.get((row["category"], row["rate_ppm"]), 0) == row["tax"]
    # Nothing is left to refund.
    for line in active:
        refund = reg.start_refund(original["receipt_no"])
        try:
            reg.add_refund_line(refund["id"], line["no"], 1)
            raise AssertionError("refund beyond what was sold was accepted")
        except ApplianceError as exc:
            assert "refunded" in exc.message
        reg.void_sale(refund["id"], "test")

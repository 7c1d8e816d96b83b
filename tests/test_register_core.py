"""The register's Python API: lifecycle, tenders, refunds, shifts, and bad input."""

from __future__ import annotations

from typing import Any

import pytest

from appliance.errors import ApplianceError, Conflict, NotFound, ValidationError
from appliance.register import Register

# The core trusts its Python caller with card data; the payments feature (tests
# test_payments_*.py) makes card tenders only from terminal approvals.
CARD = {"name": "Mastercard", "pan_masked": "541333******0011", "offline": False, "slip": []}


def card(reg: Register, sale_id: str, amount: int) -> dict[str, Any]:
    return reg.add_tender(sale_id, "card", amount, card=CARD, payment_id="p-test")


def card_tender(amount: int) -> dict[str, Any]:
    return {"id": "t1", "kind": "card", "amount": amount, "payment_id": "p-test", "card": CARD}


def _sale_with(reg: Register, *codes: str) -> dict[str, Any]:
    sale = reg.open_sale()
    for code in codes:
        sale = reg.add_line(sale["id"], code)
    return sale


def test_scan_by_barcode_gtin_forms_and_sku(register: Register) -> None:
    sale = register.open_sale()
    sale = register.add_line(sale["id"], "4006381333931")  # EAN-13 as imported
    sale = register.add_line(sale["id"], "04006381333931")  # GTIN-14 form of it
    sale = register.add_line(sale["id"], "BEER")  # SKU
    assert [x["sku"] for x in sale["lines"]] == ["COFFEE", "COFFEE", "BEER"]
    assert sale["totals"]["total"] == 499 * 2 + 249


def test_unknown_barcode_is_not_found_with_the_code(register: Register) -> None:
    sale = register.open_sale()
    with pytest.raises(NotFound) as err:
        register.add_line(sale["id"], "0000000000000")
    assert err.value.details["value"] == "0000000000000"
    assert err.value.field == "code"
    assert register.sale(sale["id"])["lines"] == []


def test_weighed_item_needs_weight_and_rounds(register: Register) -> None:
    sale = register.open_sale()
    with pytest.raises(ValidationError) as err:
        register.add_line(sale["id"], "APPLES")
    assert err.value.field == "weight_g"
    sale = register.add_line(sale["id"], "APPLES", weight_g=1234)
    assert sale["lines"][0]["unit"] == "g"
    assert sale["totals"]["total"] == 369  # 1.234 kg × 2.99 = 3.68966 -> 3.69


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda r, s: r.add_line(s, "COFFEE", qty=0), "qty"),
        (lambda r, s: r.add_line(s, "COFFEE", qty=-3), "qty"),
        (lambda r, s: r.add_line(s, "COFFEE", qty=True), "qty"),
        (lambda r, s: r.add_line(s, "COFFEE", qty=1.5), "qty"),
        (lambda r, s: r.add_line(s, "COFFEE", qty=2**70), "qty"),
        (lambda r, s: r.override_price(s, 1, -1, "x"), "unit_price"),
        (lambda r, s: r.override_price(s, 1, 100, ""), "reason"),
        (lambda r, s: r.discount_line(s, 1, percent_bp=10_001), "discount.percent_bp"),
        (lambda r, s: r.discount_line(s, 1, amount=500), "discount.amount"),
        (lambda r, s: r.discount_line(s, 1, percent_bp=10, amount=10), "discount"),
        (lambda r, s: r.discount_sale(s, percent_bp=20_000), "discount.percent_bp"),
        (lambda r, s: r.discount_sale(s, amount=10_000), "discount.amount"),
        (lambda r, s: r.set_quantity(s, 1, 0), "qty"),
        (lambda r, s: r.set_quantity(s, 7, 1), "line_no"),
        (lambda r, s: r.add_tender(s, "bitcoin", 100), "kind"),
        (lambda r, s: r.add_tender(s, "cash", 0), "amount"),
        (lambda r, s: r.add_tender(s, "cash", 2**63), "amount"),
        (lambda r, s: card(r, s, 10_000), "amount"),
        (lambda r, s: r.add_tender(s, "card", 100), "kind"),  # not from the terminal
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    shift_register: Register, call: Any, field: str
) -> None:
    sale = _sale_with(shift_register, "COFFEE")
    ops_before = shift_register.conn.execute("SELECT count(*) FROM ops").fetchone()[0]
    with pytest.raises(ApplianceError) as err:
        call(shift_register, sale["id"])
    assert err.value.field == field, err.value
    assert shift_register.sale(sale["id"]) == sale
    assert shift_register.conn.execute("SELECT count(*) FROM ops").fetchone()[0] == ops_before


def test_price_override_line_and_sale_discounts(register: Register) -> None:
    sale = _sale_with(register, "COFFEE", "BEER")
    sid = sale["id"]
    sale = register.override_price(sid, 1, 450, "damaged box")
    assert sale["lines"][0]["override"] == {"unit_price": 450, "reason": "damaged box"}
    sale = register.discount_line(sid, 2, percent_bp=1000)  # 10 % of 2.49 = 0.249 -> 0.25
    assert sale["totals"]["lines"][1]["discount"] == 25
    sale = register.discount_sale(sid, amount=100)
    t = sale["totals"]
    assert t["subtotal"] == 450 + 224
    assert t["sale_discount"] == 100
    assert t["total"] == 574
    assert sum(p["sale_discount"] for p in t["lines"]) == 100


def test_void_line_excludes_it(register: Register) -> None:
    sale = _sale_with(register, "COFFEE", "BEER")
    sale = register.void_line(sale["id"], 1)
    assert sale["lines"][0]["voided"] is True
    assert sale["totals"]["total"] == 249
    with pytest.raises(Conflict):
        register.void_line(sale["id"], 1)


def test_park_resume_and_lifecycle_rules(shift_register: Register) -> None:
    reg = shift_register
    sale = _sale_with(reg, "COFFEE")
    sid = sale["id"]
    parked = reg.park(sid, "Table 4")
    assert parked["status"] == "parked" and parked["name"] == "Table 4"
    assert [s["id"] for s in reg.sales("parked")] == [sid]
    with pytest.raises(Conflict):
        reg.add_line(sid, "BEER")  # parked: resume first
    with pytest.raises(Conflict):
        reg.add_tender(sid, "cash", 500)
    resumed = reg.resume(sid)
    assert resumed["status"] == "open"
    done = reg.add_tender(sid, "cash", 1000)
    assert done["status"] == "completed"
    assert done["totals"]["change"] == 501
    assert done["receipt_no"] == "R1-000001"
    for action in (
        lambda: reg.add_tender(sid, "cash", 1),
        lambda: reg.add_line(sid, "BEER"),
        lambda: reg.void_sale(sid, "oops"),
        lambda: reg.park(sid, "x"),
    ):
        with pytest.raises(Conflict):
            action()
    voided = reg.void_sale(_sale_with(reg, "BEER")["id"], "customer left")
    assert voided["status"] == "voided"
    with pytest.raises(Conflict):
        reg.add_tender(voided["id"], "cash", 300)


def test_split_tender_and_no_card_overpay(shift_register: Register) -> None:
    reg = shift_register
    sale = _sale_with(reg, "COFFEE", "BEER")  # 7.48
    sale = card(reg, sale["id"], 500)
    assert sale["status"] == "open" and sale["totals"]["due"] == 248
    with pytest.raises(ValidationError):
        card(reg, sale["id"], 300)
    sale = reg.add_tender(sale["id"], "other", 48, reference="voucher 17")
    sale = reg.add_tender(sale["id"], "cash", 500)
    assert sale["status"] == "completed"
    assert sale["totals"]["change"] == 300
    kinds = [t["kind"] for t in sale["tenders"]]
    assert kinds == ["card", "other", "cash"]


def test_tender_needs_open_shift(register: Register) -> None:
    sale = _sale_with(register, "COFFEE")
    with pytest.raises(Conflict) as err:
        register.add_tender(sale["id"], "cash", 500)
    assert "shift" in err.value.message


def test_cash_rounding_to_five(tmp_path: Any) -> None:
    from tests.conftest import CATALOG_CSV, make_config

    reg = Register(make_config(tmp_path, store={"cash_rounding": 5}))
    reg.import_catalog_csv(CATALOG_CSV, "t.csv")
    reg.open_shift(0)
    sale = _sale_with(reg, "COFFEE", "BEER")  # 7.48 -> cash 7.50
    assert sale["totals"]["cash_due"] == 750
    sale = reg.add_tender(sale["id"], "cash", 1000)
    t = sale["totals"]
    assert t["cash_rounding"] == 2 and t["change"] == 250 and t["payable"] == 750
    card_only = _sale_with(reg, "COFFEE")
    card_only = card(reg, card_only["id"], 499)
    assert card_only["totals"]["cash_rounding"] == 0
    reg.close()


def test_refund_by_receipt_barcode_to_original_tender(shift_register: Register) -> None:
    reg = shift_register
    sale = _sale_with(reg, "COFFEE", "BEER")
    sale = card(reg, sale["id"], 748)
    refund = reg.start_refund("RCPT" + sale["receipt_no"])
    assert refund["refund_of"] == sale["id"]
    refund = reg.add_refund_line(refund["id"], 2, 1)
    with pytest.raises(ValidationError):
        reg.add_refund_line(refund["id"], 2, 1)  # only one beer was sold
    assert reg.refund_plan(refund["id"]) == [("card", 249)]
    with pytest.raises(Conflict) as err:  # card money goes back only through the terminal
        reg.complete_refund(refund["id"])
    assert f"/api/refunds/{refund['id']}/card" in err.value.message
    with pytest.raises(Conflict):  # and exactly the card part
        reg.complete_refund(refund["id"], card_tenders=[card_tender(-200)])
    refund = reg.complete_refund(refund["id"], card_tenders=[card_tender(-249)])
    assert refund["status"] == "completed"
    assert refund["totals"]["total"] == -249
    assert refund["tenders"][0]["kind"] == "card" and refund["tenders"][0]["amount"] == -249
    original = reg.sale(sale["id"])
    assert original["refunded"]["2"]["qty"] == 1
    again = reg.start_refund(sale["receipt_no"])
    with pytest.raises(ValidationError):
        reg.add_refund_line(again["id"], 2, 1)
    with pytest.raises(NotFound):
        reg.start_refund("R1-999999")


def test_two_open_refunds_cannot_both_complete(shift_register: Register) -> None:
    reg = shift_register
    sale = reg.add_tender(_sale_with(reg, "BEER")["id"], "cash", 249)
    a = reg.add_refund_line(reg.start_refund(sale["receipt_no"])["id"], 1, 1)
    b = reg.add_refund_line(reg.start_refund(sale["receipt_no"])["id"], 1, 1)
    reg.complete_refund(a["id"])
    with pytest.raises(Conflict):
        reg.complete_refund(b["id"])
    assert reg.sale(b["id"])["status"] == "open"


def test_shift_cash_movements_and_reports(shift_register: Register) -> None:
    reg = shift_register
    reg.add_tender(_sale_with(reg, "COFFEE")["id"], "cash", 500)  # cash 4.99
    card(reg, _sale_with(reg, "BEER")["id"], 249)
    reg.cash_movement("in", 2_000, "change from bank")
    reg.cash_movement("out", 1_000, "window cleaner")
    with pytest.raises(ValidationError):
        reg.cash_movement("out", 10**9, "too much")
    x = reg.x_report()
    assert x["tenders"] == {"cash": 499, "card": 249, "other": 0}
    assert x["expected_cash"] == 10_000 + 499 + 2_000 - 1_000
    assert sum(t["gross"] for t in x["taxes"]) == 748
    z = reg.close_shift(11_500)
    assert z["over_short"] == 11_500 - 11_499 == 1
    assert z["z_no"] == 1
    assert reg.z_report() == z
    assert reg.current_shift() is None
    with pytest.raises(Conflict):
        reg.x_report()
    reg.open_shift(5_000)
    assert reg.current_shift()["number"] == 2


def test_customer_by_code(register: Register) -> None:
    register.upsert_customer("C1001", "Ada Lovelace", "ada@example.org")
    sale = register.set_customer(_sale_with(register, "COFFEE")["id"], "C1001")
    assert sale["customer"]["name"] == "Ada Lovelace"
    with pytest.raises(NotFound):
        register.set_customer(sale["id"], "NOPE")


def test_zero_total_sale_completes_explicitly(shift_register: Register) -> None:
    sale = _sale_with(shift_register, "FREE")
    assert sale["totals"]["total"] == 0
    done = shift_register.complete(sale["id"])
    assert done["status"] == "completed"


def test_state_is_rebuilt_from_the_op_log(shift_register: Register) -> None:
    reg = shift_register
    reg.add_tender(_sale_with(reg, "COFFEE", "BEER")["id"], "cash", 2_000)
    reg.park(_sale_with(reg, "CARD")["id"], "tab")
    result = reg.check()
    assert result.ok, result.differences
    # Tampering with a state row is detected.
    reg.conn.execute("UPDATE sales SET total = total + 1 WHERE status = 'completed'")
    result = reg.check()
    assert not result.ok
    assert any("differs" in d for d in result.differences)


def test_ops_carry_register_hlc_and_sale(shift_register: Register) -> None:
    sale = _sale_with(shift_register, "COFFEE")
    rows = shift_register.conn.execute(
        "SELECT op_id, register_id, hlc, sale_id, kind FROM ops WHERE sale_id = ? ORDER BY seq",
        (sale["id"],),
    ).fetchall()
    assert [r[4] for r in rows] == ["sale.open", "sale.line_add"]
    assert all(r[1] == "R1" for r in rows)
    hlcs = [r[2] for r in rows]
    assert hlcs == sorted(hlcs) and len(set(hlcs)) == len(hlcs)

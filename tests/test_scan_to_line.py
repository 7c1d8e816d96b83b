"""From a decoded barcode to a sale line: look-up forms, scale labels, GS1, cards, receipts."""

from __future__ import annotations

import pytest

from appliance.barcodes import gs1_check_digit
from appliance.errors import NotFound, ValidationError
from appliance.register import Register
from appliance.scan import Misread, apply_scan


def _label(body12: str) -> str:
    return body12 + str(gs1_check_digit(body12))


def test_ean13_upc_and_gtin14_forms_find_the_product(register: Register) -> None:
    sale = apply_scan(register, "4006381333931")["sale"]
    sale = apply_scan(register, "]E04006381333931", sale["id"])["sale"]  # AIM prefix
    assert [x["sku"] for x in sale["lines"]] == ["COFFEE", "COFFEE"]


def test_misread_is_refused_and_changes_nothing(register: Register) -> None:
    sale = register.open_sale()
    with pytest.raises(Misread) as err:
        apply_scan(register, "4006381333932", sale["id"])
    assert "check digit" in err.value.message
    assert register.sale(sale["id"])["lines"] == []


def test_unknown_code_is_not_found(register: Register) -> None:
    with pytest.raises(NotFound) as err:
        apply_scan(register, "5901234123457")
    assert err.value.details["value"] == "5901234123457"


def test_scale_label_with_weight(register: Register) -> None:
    # Prefix 21 = weight layout: 21 + item 00001 + weight 01234 g + check digit.
    result = apply_scan(register, _label("210000101234"))
    line = result["line"]
    assert line["sku"] == "APPLES" and line["unit"] == "g" and line["qty"] == 1234
    assert result["sale"]["totals"]["total"] == 369


def test_zeroed_scale_label_asks_for_weight(register: Register) -> None:
    with pytest.raises(ValidationError) as err:
        apply_scan(register, "2100001000004")
    assert err.value.field == "weight_g"


def test_gs1_with_net_weight(register: Register) -> None:
    register.upsert_product(
        {
            "sku": "CHEESE",
            "name": "Cheese",
            "price_minor": 1990,
            "barcodes": ["04012345000009"],
            "tax_category": "reduced",
            "sold_by": "weight",
        }
    )
    gtin = "04012345000009"
    result = apply_scan(register, f"]C101{gtin}3103000250")  # 0.250 kg
    assert result["line"]["qty"] == 250 and result["line"]["sku"] == "CHEESE"


def test_gs1_with_price(register: Register) -> None:
    result = apply_scan(register, "]C10104006381333931" + "3922" + "000450")
    line = result["line"]
    assert line["override"] == {"unit_price": 450, "reason": "price from label"}
    assert result["sale"]["totals"]["total"] == 450


def test_customer_card_and_receipt_barcode(shift_register: Register) -> None:
    reg = shift_register
    reg.upsert_customer("4711", "Grace Hopper")
    sale = apply_scan(reg, "4006381333931")["sale"]
    result = apply_scan(reg, "CUST4711", sale["id"])
    assert result["action"] == "customer" and result["customer"]["name"] == "Grace Hopper"
    done = reg.add_tender(sale["id"], "cash", 499)
    found = apply_scan(reg, "RCPT" + done["receipt_no"])
    assert found["action"] == "receipt" and found["sale"]["id"] == done["id"]


def test_scans_go_to_the_active_sale(register: Register) -> None:
    first = apply_scan(register, "BEER")["sale"]
    second = apply_scan(register, "BEER")["sale"]
    assert first["id"] == second["id"] and len(second["lines"]) == 2


def test_refused_scans_open_no_sale_and_reach_the_scan_listeners(register: Register) -> None:
    heard: list[tuple[str, bool]] = []
    register.scan_listeners.append(lambda code, result, error: heard.append((code, not error)))
    for code in ("12345670", "CUST0000", "APPLES"):  # unknown, unknown customer, needs weight
        with pytest.raises((NotFound, ValidationError)):
            apply_scan(register, code)
    assert register.sales("open") == []
    apply_scan(register, "BEER")
    assert heard == [("12345670", False), ("CUST0000", False), ("APPLES", False), ("BEER", True)]

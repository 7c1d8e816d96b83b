"""Golden receipts: representative sales, laid out, printed as ESC/POS and read back by the
virtual printer, compared line by line with reviewed text files in hil/golden/receipts.

The sales are made by a real Register on a real SQLite file, at a fixed clock. To
change a layout on purpose: ``UPDATE_GOLDEN=1 pytest tests/test_receipt_golden.py``,
then review the diff of hil/golden/ like code.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance import register as register_module
from appliance.printing.receipt import ReceiptSettings, receipt_bytes, report_bytes
from appliance.register import Register
from drivers.printers.profiles import load_profile
from hil.escpos.interpreter import Interpreter
from hil.escpos.render import render_text
from tests.conftest import ROOT, make_config

GOLDEN = ROOT / "hil" / "golden" / "receipts"
CATALOG = """sku,name,price_minor,barcodes,tax_category,sold_by
COFFEE,Kaffee Crema 250 g,499,4006381333931,reduced,unit
APPLES,Äpfel Elstar,299,2100001000004,reduced,weight
BEER,Bier 0.5 l,249,4001686301265,standard,unit
CARD,Grußkarte,300,,standard,unit
CHEESE,Käse Gouda (jung),389,,reduced,unit
CREME,Crème brûlée,450,,standard,unit
PIEROGI,Łódź pierogi,550,,reduced,unit
VODKA,Водка,1299,,standard,unit
GIFT,Gift ✓ box,100,,standard,unit
"""
CARD_TENDER = {
    "name": "girocard",
    "pan_masked": "############3456",
    "terminal_id": "52500038",
    "trace": "000123",
    "receipt_no": "0042",
    "auth_code": "A1B2C3",
    "entry_mode": "contactless",
    "offline": True,
    "slip": [
        "      KUNDENBELEG",
        "",
        "Betrag EUR          21,23",
        "Karte 4111 1111 1111 1111",  # a terminal that leaks the PAN is masked here
        "Zahlung erfolgt",
    ],
}


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")  # Berlin, without tzdata
    time.tzset()
    ticks = iter(range(10_000))
    monkeypatch.setattr(
        register_module, "_now_iso", lambda: f"2025-03-14T09:{next(ticks) // 60 % 60:02d}:00.000Z"
    )
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


def make_register(tmp_path: Path, **sections: dict[str, Any]) -> Register:
    reg = Register(make_config(tmp_path, **sections))
    reg.import_catalog_csv(CATALOG, "golden.csv")
    reg.open_shift(10_000)
    return reg


def printed(data: bytes, profile_name: str) -> str:
    p = load_profile(profile_name)
    return render_text(Interpreter.interpret(data, p.numbering, p.columns), p.columns)


def check(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}: run with UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(encoding="utf-8"), f"receipt {name} differs from {path}"


def receipt(reg: Register, sale: dict[str, Any], profile: str, **kw: bool) -> str:
    settings = ReceiptSettings.from_config(reg.config)
    return printed(receipt_bytes(sale, load_profile(profile), settings, **kw), profile)


def cash_sale(reg: Register) -> dict[str, Any]:
    sale = reg.open_sale()
    sid = sale["id"]
    reg.add_line(sid, "COFFEE", qty=3)
    reg.discount_line(sid, 1, percent_bp=1000)
    reg.add_line(sid, "APPLES", weight_g=1234)
    reg.add_line(sid, "BEER")
    reg.void_line(sid, 3)
    reg.add_line(sid, "CARD")
    reg.override_price(sid, 4, 250, "damaged envelope")
    reg.discount_sale(sid, percent_bp=500)
    return reg.add_tender(sid, "cash", 5000)


def test_cash_sale_80mm(tmp_path: Path) -> None:
    reg = make_register(tmp_path)
    check("cash-sale-tm-t88v", receipt(reg, cash_sale(reg), "epson-tm-t88v"))


def test_card_sale_offline_with_slip_80mm(tmp_path: Path) -> None:
    reg = make_register(tmp_path)
    reg.upsert_customer("C-1001", "Zoë Müller")
    sale = reg.open_sale()
    reg.add_line(sale["id"], "CHEESE", qty=2)
    reg.add_line(sale["id"], "CREME", qty=3)
    reg.set_customer(sale["id"], "C-1001")
    # The card details as issue 5 records them on the tender (the agreed shape).
    done = reg.add_tender(
        sale["id"], "card", 2128, "zvt 52500038/000123", card=CARD_TENDER, payment_id="p-1"
    )
    check("card-offline-tm-t88v", receipt(reg, done, "epson-tm-t88v"))


def test_refund_80mm(tmp_path: Path) -> None:
    reg = make_register(tmp_path)
    original = cash_sale(reg)
    refund = reg.start_refund(original["receipt_no"])
    reg.add_refund_line(refund["id"], 1, 1)
    done = reg.complete_refund(refund["id"])
    check("refund-tm-t88v", receipt(reg, done, "epson-tm-t88v"))


def test_sales_tax_store_with_cash_rounding_and_qr(tmp_path: Path) -> None:
    reg = make_register(
        tmp_path,
        store={"currency": "USD", "cash_rounding": 5, "receipt_header": ["Corner Deli", "NYC"]},
        tax={"mode": "exclusive", "rates": {"standard": "8.875", "reduced": "0"}},
        printer={"qr": "https://deli.example/r/{receipt_no}?t={total}"},
    )
    sale = reg.open_sale()
    reg.add_line(sale["id"], "BEER", qty=2)
    reg.add_line(sale["id"], "COFFEE")
    done = reg.add_tender(sale["id"], "cash", 1500)
    check("sales-tax-rounding-tm-t20ii", receipt(reg, done, "epson-tm-t20ii"))


def umlaut_sale(reg: Register) -> dict[str, Any]:
    sale = reg.open_sale()
    for sku in ("CHEESE", "CREME", "PIEROGI", "VODKA", "GIFT"):
        reg.add_line(sale["id"], sku)
    return reg.add_tender(sale["id"], "cash", 3000)


@pytest.mark.parametrize("profile", ["generic-58mm", "rongta-rp326"])
def test_umlauts_and_other_scripts_copy(tmp_path: Path, profile: str) -> None:
    reg = make_register(
        tmp_path, store={"receipt_header": ["Bäckerei Größe", "Straße 5 · München"]}
    )
    check(f"umlauts-copy-{profile}", receipt(reg, umlaut_sale(reg), profile, copy=True))


def test_x_and_z_reports(tmp_path: Path) -> None:
    reg = make_register(tmp_path)
    cash_sale(reg)
    umlaut_sale(reg)
    reg.cash_movement("out", 2000, "bank deposit")
    settings = ReceiptSettings.from_config(reg.config)
    profile = load_profile()
    at = {"requested_at": "2025-03-14T18:00:00.000Z"}
    x = report_bytes({**reg.x_report(), **at}, "X REPORT", profile, settings)
    check("x-report-tm-t88v", printed(x, profile.key))
    z = reg.close_shift(12_000)
    check(
        "z-report-tm-t88v",
        printed(report_bytes({**z, **at}, f"Z REPORT {z['z_no']}", profile, settings), profile.key),
    )


def test_logo_prints_and_a_broken_logo_does_not_stop_the_receipt(tmp_path: Path) -> None:
    from PIL import Image, ImageDraw

    logo = tmp_path / "logo.png"
    img = Image.new("RGBA", (800, 200), (0, 0, 0, 0))  # wider than the paper, transparent
    ImageDraw.Draw(img).rectangle((0, 50, 800, 150), fill="black")
    img.save(logo)
    reg = make_register(tmp_path, printer={"logo": str(logo)})
    sale = cash_sale(reg)
    lines = receipt(reg, sale, "epson-tm-t88v").splitlines()
    assert lines[0] == "[image 512x128]"  # scaled to the 512 dots of 80 mm paper
    logo.write_bytes(b"not an image")
    assert receipt(reg, sale, "epson-tm-t88v").splitlines()[0] == "            Demo Shop"

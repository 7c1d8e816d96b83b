"""Sale → receipt bytes: milliseconds per receipt, per printer profile.

Builds a representative completed sale (12 lines: units, a weighed item, discounts,
a void; cash and card tenders with a card slip) on a real Register, then times the
layout to ESC/POS bytes for each shipped profile (80 mm with hardware barcode, 58 mm
with the barcode drawn as a raster image), a COPY with a logo, and the text preview
(layout + read back by the interpreter). Baseline in the same run: json.dumps of the
same sale document (the cost of merely serialising what is printed).

Usage: python bench/receipt_render.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from appliance.config import config_from_dict
from appliance.printing.preview import receipt_text
from appliance.printing.receipt import ReceiptSettings, receipt_bytes
from appliance.register import Register
from drivers.printers.profiles import available_profiles, load_profile

CATALOG = (
    "sku,name,price_minor,barcodes,tax_category,sold_by\n"
    + "".join(
        f"P{i},Produkt {i} Größe {i % 5},{100 + 37 * i},,{('reduced', 'standard')[i % 2]},unit\n"
        for i in range(12)
    )
    + "KG,Äpfel lose,299,,reduced,weight\n"
)


def make_sale(folder: Path) -> tuple[dict[str, Any], Any]:
    config = config_from_dict(
        {"register": {"data_dir": str(folder)}, "demo": {"catalog": False},
         "printer": {"qr": "https://shop.example/r/{receipt_no}"}}
    )  # fmt: skip
    reg = Register(config)
    reg.import_catalog_csv(CATALOG, "bench.csv")
    reg.open_shift(10_000)
    sale = reg.open_sale()
    for i in range(11):
        reg.add_line(sale["id"], f"P{i}", qty=1 + i % 3)
    reg.add_line(sale["id"], "KG", weight_g=1234)
    reg.discount_line(sale["id"], 2, percent_bp=1000)
    reg.void_line(sale["id"], 5)
    total = reg.sale(sale["id"])["totals"]["total"]
    card = {
        "name": "girocard", "pan_masked": "############3456", "terminal_id": "52500038",
        "trace": "000123", "receipt_no": "0042", "auth_code": "A1B2C3",
        "entry_mode": "chip", "offline": False,
        "slip": ["KUNDENBELEG", "Betrag EUR 12,34", "Zahlung erfolgt"] * 3,
    }  # fmt: skip
    reg.add_tender(sale["id"], "card", total // 2, card=card, payment_id="bench")
    done = reg.add_tender(sale["id"], "cash", total)
    reg.close()
    return done, config


def per_call_ms(fn: Callable[[], object], rounds: int) -> float:
    fn()  # warm caches (code pages, fonts)
    start = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - start) / rounds * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-receipt-"))
    sale, config = make_sale(folder)
    settings = ReceiptSettings.from_config(config)
    logo = folder / "logo.png"
    img = Image.new("RGB", (384, 96), "white")
    ImageDraw.Draw(img).ellipse((100, 8, 284, 88), fill="black")
    img.save(logo)
    with_logo = ReceiptSettings(**{**settings.__dict__, "logo": logo})

    base = per_call_ms(lambda: json.dumps(sale), args.rounds)
    print(f"baseline json.dumps(sale)             : {base:8.3f} ms")
    size = len(receipt_bytes(sale, load_profile(), settings))
    for name in available_profiles():
        profile = load_profile(name)
        ms = per_call_ms(lambda p=profile: receipt_bytes(sale, p, settings), args.rounds)
        print(f"sale -> receipt bytes {name:16}: {ms:8.3f} ms  ({ms / base:5.1f}x baseline)")
    t88 = load_profile()
    ms = per_call_ms(lambda: receipt_bytes(sale, t88, with_logo, copy=True), args.rounds)
    print(f"COPY with a 384x96 logo, TM-T88V      : {ms:8.3f} ms")
    ms = per_call_ms(lambda: receipt_text(sale, config), max(1, args.rounds // 3))
    print(f"text preview (layout + interpreter)   : {ms:8.3f} ms")
    print(f"receipt size (TM-T88V)                : {size} bytes, {len(sale['lines'])} lines")


if __name__ == "__main__":
    main()

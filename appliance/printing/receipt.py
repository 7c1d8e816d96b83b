"""The receipt: a completed sale (or refund) laid out for one printer, as ESC/POS bytes.

Everything printed comes from the sale document as it was completed (prices, tax
rates, tenders, the card slip the terminal sent) and from the config (header,
footer, logo, QR); nothing is looked up again, so a reprint a year later shows what
the customer was charged. The width is the printer profile's (32 columns on 58 mm,
42 or 48 on 80 mm); characters go through the profile's code pages, and one no page
has prints as "?" instead of failing the job.

Layout, top to bottom: logo, header, receipt number and time, lines (qty × price,
weight × price/kg, price overrides, line discounts, voids), subtotal, sale discount,
TOTAL, cash rounding, tenders (card details, "offline, pending forward"), change,
tax per rate, card slips, customer, footer, the receipt barcode ``RCPT`` + number
(which the register scans back to start a refund), optional QR, cut. Copies say
COPY at the top and bottom.
"""

from __future__ import annotations

import contextlib
import textwrap
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.money import format_minor
from appliance.sale import line_gross, unit_price
from drivers.printers.profiles import PrinterProfile

if TYPE_CHECKING:
    from PIL import Image

    from appliance.config import Config

Doc = dict[str, Any]
TENDER_NAMES = {"cash": "Cash", "card": "Card", "other": "Other"}
# What a card tender prints (the agreed shape of issue 5's tender["card"]), in order.
CARD_FIELDS = (
    ("name", ""),
    ("pan_masked", ""),
    ("terminal_id", "TID"),
    ("trace", "Trace"),
    ("receipt_no", "No."),
    ("auth_code", "Auth"),
    ("entry_mode", ""),
)


@dataclass(frozen=True)
class ReceiptSettings:
    """What the shop's config says about receipts (header, footer, logo, QR, money)."""

    header: tuple[str, ...] = ("Demo Shop",)
    footer: tuple[str, ...] = ("Thank you!",)
    decimals: int = 2
    currency: str = "EUR"
    receipt_prefix: str = "RCPT"
    logo: Path | None = None
    qr: str = ""  # template: {receipt_no} {sale_id} {total} {register_id}

    @classmethod
    def from_config(cls, config: Config) -> ReceiptSettings:
        store, printer = config.store, config.printer
        logo = None
        if printer.logo:
            logo = Path(printer.logo)
            if not logo.is_absolute() and config.source not in ("<defaults>", "<dict>"):
                logo = Path(config.source).parent / logo
        return cls(
            header=tuple(store.receipt_header) or (store.name,),
            footer=tuple(store.receipt_footer),
            decimals=store.currency_decimals,
            currency=store.currency,
            receipt_prefix=config.barcodes.receipt_prefix,
            logo=logo,
            qr=printer.qr,
        )


@cache
def _logo_image(path: Path, mtime: float) -> Image.Image:
    from PIL import Image as PIL

    with PIL.open(path) as img:
        img.load()
        return img.copy()


def local_time(iso: str | None) -> str:
    """An op's UTC timestamp as the register's local time, to the minute."""
    if not iso:
        return ""
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return when.astimezone().strftime("%Y-%m-%d %H:%M")


class Layout:
    """Column arithmetic for one paper width, over a writer for one printer."""

    def __init__(self, profile: PrinterProfile, settings: ReceiptSettings) -> None:
        from drivers.printers.writer import EscPosWriter  # python-escpos constants: not at start

        self.w = EscPosWriter(profile)
        self.width = profile.columns
        self.settings = settings

    def money(self, amount: int) -> str:
        return format_minor(amount, self.settings.decimals)

    def rule(self, char: str = "-") -> None:
        self.w.line(char * self.width)

    def pair(self, left: str, right: str = "") -> None:
        """``left`` and ``right`` on one line, right flush; long text wraps above."""
        width = self.width
        right = right[:width]
        wrapped = textwrap.wrap(left, width, break_long_words=True) or [""]
        last = wrapped.pop()
        for part in wrapped:
            self.w.line(part)
        if len(last) + len(right) + (1 if right else 0) <= width:
            self.w.line(last + right.rjust(width - len(last)))
        else:
            self.w.line(last)
            self.w.line(right.rjust(width))

    def amount(self, label: str, amount: int) -> None:
        """A money line; amounts stand in the column of the item amounts (before the tax
        letter)."""
        self.pair(label, f"{self.money(amount)}  ")

    def fields(self, parts: list[str], indent: int = 2) -> None:
        """Short "label value" parts packed into lines, never split inside a part."""
        text = "  ".join(p.replace(" ", "\u00a0") for p in parts if p)
        for line in textwrap.wrap(text, self.width - indent, break_long_words=True):
            self.w.line(" " * indent + line.replace("\u00a0", " "))

    def centered(self, text: str, *, big: bool = False, bold: bool = False) -> None:
        self.w.align("center")
        wide = big and len(text) * 2 <= self.width
        self.w.style(bold=bold or big, wide=wide, tall=big)
        for part in textwrap.wrap(text, self.width // 2 if wide else self.width) or [""]:
            self.w.line(part)
        self.w.style()
        self.w.align("left")

    def wrapped(self, text: str, indent: int = 0) -> None:
        for part in textwrap.wrap(text, self.width - indent, break_long_words=True) or [""]:
            self.w.line(" " * indent + part)


def _tax_letters(sale: Doc) -> dict[tuple[str, int], str]:
    keys = sorted({(t["category"], int(t["rate_ppm"])) for t in sale["totals"]["taxes"]})
    return {key: chr(ord("A") + i) if i < 26 else "*" for i, key in enumerate(keys)}


def _rate(rate_ppm: int) -> str:
    return f"{rate_ppm / 10_000:g}%"


def _qty_line(line: Doc, lay: Layout) -> str | None:
    price = unit_price(line)
    if line["unit"] == "g":
        kg = f"{line['qty'] / 1000:.3f}"
        return f"{kg} kg x {lay.money(price)}/kg"
    if line["qty"] != 1:
        return f"{line['qty']} x {lay.money(price)}"
    return None


def _lines(sale: Doc, lay: Layout, letters: dict[tuple[str, int], str]) -> None:
    per_line = {p["no"]: p for p in sale["totals"]["lines"]}
    for line in sale["lines"]:
        letter = letters.get((line["tax_category"], int(line["rate_ppm"])), " ")
        gross = line_gross(line)
        lay.pair(line["name"], f"{lay.money(gross)} {letter}")
        qty = _qty_line(line, lay)
        if qty:
            lay.w.line(f"  {qty}")
        if line.get("override"):
            override = line["override"]
            text = f"was {lay.money(line['unit_price'])}: {override['reason']}"
            lay.wrapped(text, indent=2)
        if line.get("voided"):
            lay.amount("  VOID", -gross)
            continue
        totals = per_line.get(line["no"])
        if totals and totals["discount"]:
            disc = line["discount"] or {}
            what = (
                f"Discount {disc['value'] / 100:g}%"
                if disc.get("kind") == "percent"
                else "Discount"
            )
            lay.amount(f"  {what}", -totals["discount"])


def _card_details(tender: Doc, lay: Layout) -> None:
    from drivers.zvt.pan import scrub_pans

    card = tender.get("card") or {}
    if not card:
        if tender.get("reference"):
            lay.fields([scrub_pans(str(tender["reference"]))])
        return
    parts = [f"{label} {card[key]}".strip() for key, label in CARD_FIELDS if card.get(key)]
    lay.fields([scrub_pans(p) for p in parts])
    if card.get("offline"):
        lay.w.style(bold=True)
        lay.wrapped("OFFLINE, pending forward", indent=2)
        lay.w.style()


def _totals_and_tenders(sale: Doc, lay: Layout) -> None:
    t = sale["totals"]
    lay.rule()
    lay.amount("Subtotal", t["subtotal"])
    if t["sale_discount"]:
        disc = sale.get("discount") or {}
        label = (
            f"Discount {disc['value'] / 100:g}%" if disc.get("kind") == "percent" else "Discount"
        )
        lay.amount(label, -t["sale_discount"])
    if sale["pricing"]["tax_mode"] == "exclusive":
        for row in t["taxes"]:
            lay.amount(f"Tax {row['category']} {_rate(row['rate_ppm'])}", row["tax"])
    lay.w.style(bold=True, tall=True)
    lay.amount(f"TOTAL {lay.settings.currency}", t["total"])
    lay.w.style()
    if t["cash_rounding"]:
        lay.amount("Cash rounding", t["cash_rounding"])
        lay.amount("To pay", t["payable"])
    lay.rule()
    for tender in sale["tenders"]:
        name = TENDER_NAMES.get(tender["kind"], str(tender["kind"]).title())
        lay.amount(name, tender["amount"])
        if tender["kind"] != "cash":
            _card_details(tender, lay)
    if t["change"]:
        lay.amount("Change", t["change"])


def _tax_table(taxes: list[Doc], lay: Layout, label: Any) -> None:
    """Net, tax and gross per rate; ``label(row)`` names the rate (letter or category)."""
    if not taxes:
        return
    num = min(11, (lay.width - 8) // 3)
    width = lay.width - 3 * num
    lay.rule()
    lay.w.line("Tax".ljust(width) + "Net".rjust(num) + "Tax".rjust(num) + "Gross".rjust(num))
    for row in taxes:
        cells = [lay.money(row[k]).rjust(num) for k in ("net", "tax", "gross")]
        lay.w.line(str(label(row))[: width - 1].ljust(width) + "".join(cells))


def _slips(sale: Doc, lay: Layout) -> None:
    from drivers.zvt.pan import scrub_pans

    for tender in sale["tenders"]:
        slip = (tender.get("card") or {}).get("slip") or []
        if not slip:
            continue
        lay.rule()
        for text in slip:
            text = scrub_pans(str(text)).rstrip()
            if not text:
                lay.w.line()
            for part in textwrap.wrap(text, lay.width, drop_whitespace=False) if text else []:
                lay.w.line(part.rstrip())


def _header(sale: Doc, lay: Layout, copy: bool, resent: bool) -> None:
    s = lay.settings
    if s.logo is not None:
        # a missing or broken logo file must not stop the receipt
        with contextlib.suppress(OSError, ValueError):
            lay.w.image(_logo_image(s.logo, s.logo.stat().st_mtime))
    if copy:
        lay.centered("*** COPY ***", big=True)
    for i, text in enumerate(s.header):
        lay.centered(text, big=i == 0)
    if resent:
        lay.centered("RESENT: first print interrupted")
    lay.rule()
    title = "Refund" if sale["kind"] == "refund" else "Receipt"
    lay.pair(f"{title} {sale.get('receipt_no') or ''}", local_time(sale.get("completed_at")))
    if sale.get("refund_of_receipt"):
        lay.w.line(f"Refund of {sale['refund_of_receipt']}")
    lay.w.line(f"Register {sale['register_id']}")
    lay.rule()


def _footer(sale: Doc, lay: Layout, copy: bool) -> None:
    s = lay.settings
    customer = sale.get("customer")
    if customer:
        lay.rule()
        lay.wrapped(f"Customer: {customer.get('name', '')} ({customer.get('code', '')})")
    lay.w.line()
    for text in s.footer:
        lay.centered(text)
    receipt_no = sale.get("receipt_no")
    if receipt_no:
        lay.w.line()
        lay.w.align("center")
        lay.w.barcode(f"{s.receipt_prefix}{receipt_no}")
        lay.w.align("left")
    if s.qr and receipt_no:
        content = s.qr.format(
            receipt_no=receipt_no,
            sale_id=sale["id"],
            total=format_minor(sale["totals"]["total"], s.decimals),
            register_id=sale["register_id"],
        )
        lay.w.line()
        lay.w.align("center")
        lay.w.qr(content)
        lay.w.align("left")
    if copy:
        lay.w.line()
        lay.centered("*** COPY ***", big=True)
    lay.w.cut()


def receipt_bytes(
    sale: Doc,
    profile: PrinterProfile,
    settings: ReceiptSettings,
    *,
    copy: bool = False,
    resent: bool = False,
) -> bytes:
    """The ESC/POS job for one completed sale or refund."""
    lay = Layout(profile, settings)
    letters = _tax_letters(sale)
    _header(sale, lay, copy, resent)
    _lines(sale, lay, letters)
    _totals_and_tenders(sale, lay)
    _tax_table(
        sale["totals"]["taxes"],
        lay,
        lambda row: f"{letters[(row['category'], int(row['rate_ppm']))]} {_rate(row['rate_ppm'])}",
    )
    if sale["pricing"]["tax_mode"] == "inclusive":
        lay.w.line("Prices include tax.")
    _slips(sale, lay)
    _footer(sale, lay, copy)
    return lay.w.getvalue()


def report_bytes(
    report: Doc, title: str, profile: PrinterProfile, settings: ReceiptSettings
) -> bytes:
    """An X or Z report for the paper: counts, totals, tenders, tax per rate, cash."""
    lay = Layout(profile, settings)
    m = lay.money
    lay.centered(title, big=True)
    for text in settings.header[:1]:
        lay.centered(text)
    lay.rule()
    lay.pair("Register", str(report["register_id"]))
    lay.pair("Shift", str(report["shift_number"]))
    lay.pair("Opened", local_time(report["opened_at"]))
    if report.get("closed_at"):
        lay.pair("Closed", local_time(report["closed_at"]))
    printed = report.get("requested_at")
    lay.pair(
        "Printed",
        local_time(printed) if printed else datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"),
    )
    lay.rule()
    lay.pair("Sales", str(report["counts"]["sales"]))
    lay.pair("Refunds", str(report["counts"]["refunds"]))
    lay.pair("Sales total", m(report["sales_total"]))
    lay.pair("Refunds total", m(report["refunds_total"]))
    lay.w.style(bold=True)
    lay.pair("Net total", m(report["net_total"]))
    lay.w.style()
    lay.pair("Discounts", m(report["discounts"]))
    lay.pair("Cash rounding", m(report["cash_rounding"]))
    lay.rule()
    tenders = report["tenders"]
    order = list(TENDER_NAMES)
    for kind in sorted(tenders, key=lambda k: order.index(k) if k in order else len(order)):
        lay.pair(TENDER_NAMES.get(kind, kind.title()), m(tenders[kind]))
    if report["taxes"]:
        _tax_table(report["taxes"], lay, lambda row: f"{row['category']} {_rate(row['rate_ppm'])}")
        lay.pair("Tax total", m(report["tax_total"]))
    lay.rule()
    lay.pair("Float", m(report["float"]))
    lay.pair("Cash in", m(report["cash_in"]))
    lay.pair("Cash out", m(report["cash_out"]))
    lay.w.style(bold=True)
    lay.pair("Expected cash", m(report["expected_cash"]))
    lay.w.style()
    if "counted" in report:
        lay.pair("Counted cash", m(report["counted"]))
        lay.pair("Over/short", m(report["over_short"]))
    lay.w.cut()
    return lay.w.getvalue()

"""A sale's receipt as the printer would print it: text and PNG, for screens (issue 8).

The receipt is laid out as for the printer (``receipt_bytes``) and read back by the
virtual printer's interpreter, so the preview shows exactly what the paper shows —
code pages, wrapping and all. Pure functions of the sale document: get the sale on
the register's thread, render anywhere (PNG takes tens of milliseconds).

    text = receipt_text(sale, config)            # str, one line per printed line
    png = receipt_png(sale, config)              # bytes of a PNG picture of the paper
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from appliance.printing.receipt import ReceiptSettings, receipt_bytes
from drivers.printers.profiles import PrinterProfile, load_profile

if TYPE_CHECKING:
    from appliance.config import Config

Doc = dict[str, Any]


def render_preview(
    sale: Doc,
    profile: PrinterProfile,
    settings: ReceiptSettings,
    format: str = "text",
    copy: bool = False,
) -> bytes:
    from hil.escpos.interpreter import Interpreter
    from hil.escpos.render import render_png, render_text

    data = receipt_bytes(sale, profile, settings, copy=copy)
    interp = Interpreter(profile.numbering, profile.columns, profile.columns_font_b)
    interp.feed(data)
    interp.finish()
    if format == "png":
        out = io.BytesIO()
        render_png(interp.items, profile.dots, profile.columns, profile.dpi).save(out, "PNG")
        return out.getvalue()
    return render_text(interp.items, profile.columns, interp.font_b_width).encode("utf-8")


def receipt_text(sale: Doc, config: Config, *, copy: bool = False) -> str:
    """The receipt of ``sale`` as plain text, laid out for the configured printer."""
    profile = load_profile(config.printer.profile)
    settings = ReceiptSettings.from_config(config)
    return render_preview(sale, profile, settings, "text", copy).decode("utf-8")


def receipt_png(sale: Doc, config: Config, *, copy: bool = False) -> bytes:
    """The receipt of ``sale`` as a PNG picture of the paper."""
    profile = load_profile(config.printer.profile)
    return render_preview(sale, profile, ReceiptSettings.from_config(config), "png", copy)

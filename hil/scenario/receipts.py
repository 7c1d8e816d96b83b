"""Receipts as the printer got them: each job's text and a PNG of the paper.

The virtual printer stores every job (up to each cut) as ``NNNNNN.bin`` with its text
(``.txt``) and, when asked, its picture (``.png``); ``jobs_in`` reads such a folder and
draws the pictures that are missing with hil/escpos, so every tier's report can show
the receipts as they came out.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Receipt:
    number: int
    text: str
    png: bytes | None = None


def render(data: bytes, profile_name: str = "epson-tm-t88v") -> tuple[str, bytes]:
    """ESC/POS bytes → (text, PNG bytes), with the printer profile's geometry."""
    from drivers.printers.profiles import load_profile
    from hil.escpos.interpreter import Interpreter
    from hil.escpos.render import render_png, render_text

    profile = load_profile(profile_name)
    interp = Interpreter(profile.numbering, profile.columns, profile.columns_font_b)
    interp.feed(data)
    interp.finish()
    text = render_text(interp.items, profile.columns, interp.font_b_width)
    picture = render_png(interp.items, profile.dots, profile.columns, profile.dpi)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return text, out.getvalue()


def jobs_in(folder: Path | None, pictures: bool = False) -> list[Receipt]:
    """The jobs stored in a virtual printer's folder, oldest first."""
    if folder is None or not folder.is_dir():
        return []
    receipts = []
    for binary in sorted(folder.glob("*.bin")):
        if not binary.stem.isdigit():
            continue
        text_file, png_file = binary.with_suffix(".txt"), binary.with_suffix(".png")
        try:
            text = text_file.read_text(encoding="utf-8")
        except OSError:
            continue  # the job is being written: it shows on the next read
        png = png_file.read_bytes() if pictures and png_file.exists() else None
        if pictures and png is None:
            text, png = render(binary.read_bytes())
        receipts.append(Receipt(int(binary.stem), text, png))
    return receipts

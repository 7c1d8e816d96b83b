"""What the interpreter's items look like: plain text (the `hil render` contract) and PNG.

Plain text: each text line as printed (aligned within the paper's columns, trailing
spaces dropped); each barcode and 2D code as one line holding its data
(``[CODE128 RCPTR1-000042]``, ``[QR https://…]``); each image as ``[image WxH]``;
each cut as ``--- cut ---``; each drawer kick as ``--- drawer --- pin N``.

PNG (Pillow): the paper at the profile's dot width, text in a monospaced font sized
to the printer's columns, double width/height, bold, underline and reverse drawn,
barcodes drawn by python-barcode, QR codes by qrcode, raster images as sent.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from hil.escpos.interpreter import (
    Barcode,
    Cut,
    Drawer,
    Image,
    Item,
    Note,
    Segment,
    Style,
    TextLine,
)

if TYPE_CHECKING:
    from PIL import Image as PILImage
    from PIL import ImageFont

CUT_LINE = "--- cut ---"
DRAWER_LINE = "--- drawer ---"


def _pad(width: float, columns: int, align: str) -> int:
    if align == "center":
        return max(0, int((columns - width) // 2))
    if align == "right":
        return max(0, int(columns - width))
    return 0


def item_line(item: Item, columns: int, font_b_width: float = 0.75) -> str | None:
    """The text line for one item (None for items that print nothing)."""
    if isinstance(item, TextLine):
        width = sum(
            len(s.text) * s.style.width * (font_b_width if s.style.font else 1.0)
            for s in item.segments
        )
        return (" " * _pad(width, columns, item.align) + item.text).rstrip()
    if isinstance(item, Barcode):
        text = f"[{item.symbology} {item.data}]"
        return " " * _pad(len(text), columns, item.align) + text
    if isinstance(item, Image):
        text = f"[image {item.width}x{item.height}]" if item.width else f"[{item.source}]"
        return " " * _pad(len(text), columns, item.align) + text
    if isinstance(item, Cut):
        return CUT_LINE
    if isinstance(item, Drawer):
        return f"{DRAWER_LINE} pin {item.pin}"
    return None  # Note


def render_text(items: list[Item], columns: int = 42, font_b_width: float = 0.75) -> str:
    lines = [item_line(item, columns, font_b_width) for item in items]
    return "".join(f"{line}\n" for line in lines if line is not None)


# PNG -----------------------------------------------------------------------------------
@cache
def _font_file() -> str:
    """DejaVu Sans Mono as shipped with python-barcode, so every machine draws the same."""
    import barcode

    bundled = Path(barcode.__file__).parent / "fonts" / "DejaVuSansMono.ttf"
    if bundled.exists():
        return str(bundled)
    return "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"


@cache
def _font(cell: int) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont

    # DejaVu Sans Mono advances 0.602 em per character.
    return ImageFont.truetype(_font_file(), max(6, round(cell / 0.602)))


def _text_strip(item: TextLine, dots: int, columns: int, line_h: int) -> PILImage.Image:
    from PIL import Image as PIL
    from PIL import ImageDraw

    cell_a = dots / columns
    height = line_h * max((s.style.height for s in item.segments), default=1)
    strip = PIL.new("L", (dots, height), 255)
    parts = []
    for seg in item.segments:
        cell = cell_a * (0.75 if seg.style.font else 1.0)
        font = _font(round(cell))
        w = max(1, round(cell * len(seg.text)))
        part = PIL.new("L", (w, line_h), 0 if seg.style.reverse else 255)
        draw = ImageDraw.Draw(part)
        ink = 255 if seg.style.reverse else 0
        for i, ch in enumerate(seg.text):
            stroke = 1 if seg.style.bold else 0
            draw.text((round(i * cell), 2), ch, ink, font, stroke_width=stroke, stroke_fill=ink)
        if seg.style.underline:
            draw.line((0, line_h - 3, w, line_h - 3), fill=ink, width=seg.style.underline)
        if seg.style.width > 1 or seg.style.height > 1:
            part = part.resize((w * seg.style.width, line_h * seg.style.height))
        parts.append(part)
    total = sum(p.width for p in parts)
    x = {"center": (dots - total) // 2, "right": dots - total}.get(item.align, 0)
    for part in parts:
        strip.paste(part, (max(0, x), height - part.height))
        x += part.width
    return strip


def _place(img: PILImage.Image, dots: int, align: str) -> PILImage.Image:
    from PIL import Image as PIL

    img = img.convert("L")
    if img.width > dots:
        img = img.resize((dots, max(1, img.height * dots // img.width)))
    strip = PIL.new("L", (dots, img.height + 4), 255)
    x = {"center": (dots - img.width) // 2, "right": dots - img.width}.get(align, 0)
    strip.paste(img, (x, 2))
    return strip


def _barcode_image(item: Barcode, dots: int, dpi: int) -> PILImage.Image | None:
    try:
        if item.symbology in ("QR", "PDF417", "Aztec", "DataMatrix", "MaxiCode"):
            if item.symbology != "QR":
                return None
            import qrcode

            code = qrcode.QRCode(box_size=max(1, item.module), border=1)
            code.add_data(item.data)
            code.make(fit=True)
            img: PILImage.Image = code.make_image().get_image()
            return img
        import barcode
        from barcode.writer import ImageWriter

        names = {"CODE128": "code128", "EAN13": "ean13", "EAN8": "ean8", "UPC-A": "upca",
                 "CODE39": "code39", "ITF": "itf", "GS1-128": "gs1_128",
                 "CODABAR": "codabar"}  # fmt: skip
        name = names.get(item.symbology)
        if name is None:
            return None
        mm = 25.4 / dpi
        options = {
            "module_width": max(1, item.module) * mm,
            "module_height": max(20, item.height) * mm,
            "font_size": 8,
            "text_distance": 3.0,
            "quiet_zone": 2.0,
            "dpi": dpi,
            "write_text": item.hri != 0,
        }
        kwargs = {"add_checksum": False} if name == "code39" else {}
        drawn: PILImage.Image = barcode.get(name, item.data, writer=ImageWriter(), **kwargs).render(
            options
        )
        return drawn
    except Exception:  # a code the library refuses is drawn as its text line instead
        return None


def _raster(item: Image) -> PILImage.Image | None:
    from PIL import Image as PIL

    if not item.data or not item.width or not item.height:
        return None
    return PIL.frombytes("1", (item.width, item.height), item.data, "raw", "1;I")


def render_png(
    items: list[Item], dots: int = 512, columns: int = 42, dpi: int = 180, out: Path | None = None
) -> PILImage.Image:
    """The receipt as a picture of the paper (optionally saved as PNG to ``out``)."""
    from PIL import Image as PIL
    from PIL import ImageDraw

    line_h = max(12, round(dots / columns * 2))
    strips: list[PILImage.Image] = []
    for item in items:
        if isinstance(item, TextLine):
            strips.append(_text_strip(item, dots, columns, line_h))
            continue
        if isinstance(item, Note | Drawer):
            continue
        picture = None
        if isinstance(item, Barcode):
            picture = _barcode_image(item, dots, dpi)
        elif isinstance(item, Image):
            picture = _raster(item)
        if picture is not None:
            strips.append(_place(picture, dots, getattr(item, "align", "left")))
            continue
        line = item_line(item, columns)
        if isinstance(item, Cut):
            cut = PIL.new("L", (dots, line_h), 255)
            ImageDraw.Draw(cut).line((0, line_h // 2, dots, line_h // 2), fill=128, width=1)
            strips.append(cut)
        elif line is not None:
            plain = TextLine([Segment(line, Style())])
            strips.append(_text_strip(plain, dots, columns, line_h))
    height = sum(s.height for s in strips) or line_h
    paper = PIL.new("L", (dots, height), 255)
    y = 0
    for strip in strips:
        paper.paste(strip, (0, y))
        y += strip.height
    if out is not None:
        paper.save(out, format="PNG")
    return paper

"""Images for the printer: logos, and barcodes/QR codes for printers that only do graphics.

Conversion to 1-bit raster rows is python-escpos's ``EscposImage`` (alpha on white,
inverted, thresholded); this module scales to the paper, centres, and cuts the image
into GS v 0 bands. Barcodes are drawn by python-barcode, QR codes by qrcode.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image


def fit_to_paper(img: Image.Image, dots: int) -> Image.Image:
    """Scale down to the printable width (never up), then centre on a paper-wide strip."""
    from PIL import Image

    img = img.convert("RGBA")
    if img.width > dots:
        img = img.resize((dots, max(1, round(img.height * dots / img.width))))
    strip = Image.new("RGBA", (dots, img.height), (255, 255, 255, 255))
    strip.paste(img, ((dots - img.width) // 2, 0), img)
    return strip


def to_raster(img: Image.Image, dots: int, band_rows: int) -> Iterator[tuple[int, int, bytes]]:
    """(bytes per row, rows, data) of each GS v 0 band of the image on this paper."""
    from escpos.image import EscposImage

    fitted = fit_to_paper(img, dots)
    for top in range(0, fitted.height, band_rows):
        band = EscposImage(fitted.crop((0, top, fitted.width, min(top + band_rows, fitted.height))))
        yield band.width_bytes, band.height, band.to_raster_format()


def code128_image(data: str, dots: int, dpi: int, height_dots: int) -> Image.Image:
    """Code128 with its text below, at 2 dots per module, as python-barcode draws it."""
    from barcode import Code128
    from barcode.writer import ImageWriter

    mm_per_dot = 25.4 / dpi
    options = {
        "module_width": 2 * mm_per_dot,
        "module_height": height_dots * mm_per_dot,
        "quiet_zone": 2.0,
        "font_size": 8,
        "text_distance": 3.0,
        "dpi": dpi,
        "write_text": True,
    }
    image: Image.Image = Code128(data, writer=ImageWriter()).render(options)
    return image


def qr_image(data: str, module: int) -> Image.Image:
    import qrcode

    code = qrcode.QRCode(box_size=module, border=1, error_correction=qrcode.ERROR_CORRECT_M)
    code.add_data(data)
    code.make(fit=True)
    image: Image.Image = code.make_image().get_image()
    return image.convert("RGB")

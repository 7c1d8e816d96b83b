"""Building an ESC/POS job for one printer profile: text, styles, barcodes, images, cuts.

The command bytes are python-escpos's constants; what this adds is the profile: text
goes through the profile's code pages (``TextEncoder``), barcodes and QR codes are the
printer's own (GS k, GS ( k) where the model has them and raster images (GS v 0)
where it has only graphics, and a cut is a cut only on a printer with a cutter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from escpos import constants as C

from drivers.printers.profiles import PrinterProfile

if TYPE_CHECKING:
    from PIL import Image

ALIGN = {"left": b"\x1ba\x00", "center": b"\x1ba\x01", "right": b"\x1ba\x02"}
CODE128 = 73  # GS k m for CODE128 (function B)
MAX_RASTER_ROWS = 960  # one GS v 0 band; taller images are sent in bands


def _u16(n: int) -> bytes:
    return bytes((n & 0xFF, (n >> 8) & 0xFF))


class EscPosWriter:
    """Accumulates one job's bytes; ``getvalue()`` returns them."""

    def __init__(self, profile: PrinterProfile) -> None:
        self.profile = profile
        self.encoder = profile.encoder()
        self.buf = bytearray()
        self.buf += C.HW_INIT  # clean slate: styles, alignment, code page
        self.buf += self.encoder.select(self.encoder.preferred)

    @property
    def replaced(self) -> int:
        """Characters printed as '?' because no code page of the printer has them."""
        return self.encoder.replaced

    def getvalue(self) -> bytes:
        return bytes(self.buf)

    def raw(self, data: bytes) -> None:
        self.buf += data

    # text -------------------------------------------------------------------
    def style(
        self, *, bold: bool = False, wide: bool = False, tall: bool = False, underline: bool = False
    ) -> None:
        self.buf += C.TXT_STYLE["bold"][bold]
        self.buf += C.TXT_STYLE["underline"][1 if underline else 0]
        self.buf += C.TXT_SIZE + bytes([(0x10 if wide else 0) | (0x01 if tall else 0)])

    def align(self, where: str) -> None:
        self.buf += ALIGN[where]

    def text(self, text: str) -> None:
        self.buf += self.encoder.encode(text)

    def line(self, text: str = "") -> None:
        self.text(text)
        self.buf += C.CTL_LF

    def feed(self, lines: int) -> None:
        self.buf += b"\x1bd" + bytes([max(0, min(lines, 255))])

    # codes and images ---------------------------------------------------------
    def barcode(self, data: str, height: int = 60) -> None:
        """Code128 with its text below; as an image on printers without GS k."""
        ascii_data = data.encode("ascii", "replace")
        if self.profile.barcodes:
            module = self._module_width(len(ascii_data))
            payload = b"{B" + ascii_data.replace(b"{", b"{{")
            self.buf += C.BARCODE_HEIGHT + bytes([height])
            self.buf += C.BARCODE_WIDTH + bytes([module])
            self.buf += C.BARCODE_FONT_A + C.BARCODE_TXT_BLW
            self.buf += b"\x1dk" + bytes([CODE128, len(payload)]) + payload
        elif self.profile.graphics:
            from drivers.printers.images import code128_image

            self.image(code128_image(data, self.profile.dots, self.profile.dpi, height))
        else:
            self.line(data)

    def _module_width(self, chars: int) -> int:
        # Code128 B: 11 modules per character plus start, check (11 each) and stop (13).
        modules = 11 * (chars + 2) + 13 + 20  # and the quiet zones
        for width in (3, 2):
            if modules * width <= self.profile.dots:
                return width
        return 2  # narrower than 2 dots does not scan reliably; let the printer clip

    def qr(self, data: str, module: int = 5) -> None:
        payload = data.encode("utf-8")
        if self.profile.qr:

            def fn(code: int, params: bytes) -> bytes:
                body = b"1" + bytes([code]) + params
                return b"\x1d(k" + _u16(len(body)) + body

            self.buf += fn(65, b"2\x00")  # model 2
            self.buf += fn(67, bytes([module]))  # module size in dots
            self.buf += fn(69, b"1")  # error correction M
            self.buf += fn(80, b"0" + payload)  # store the data
            self.buf += fn(81, b"0")  # print it
        elif self.profile.graphics:
            from drivers.printers.images import qr_image

            self.image(qr_image(data, module))
        else:
            self.line(data)

    def image(self, img: Image.Image) -> None:
        """A raster image (GS v 0), scaled down to the paper and centred by the caller."""
        from drivers.printers.images import to_raster

        if not self.profile.graphics:
            return
        for width_bytes, rows, data in to_raster(img, self.profile.dots, MAX_RASTER_ROWS):
            self.buf += C.GS + b"v0\x00" + _u16(width_bytes) + _u16(rows) + data

    # paper and drawer -----------------------------------------------------------
    def cut(self) -> None:
        """Feed the last line past the cutter and cut (partial where the model can)."""
        if self.profile.cutter == "none":
            self.feed(4)
            return
        mode = 66 if self.profile.cutter == "partial" else 65  # feed n dots, then cut
        self.buf += C.GS + b"V" + bytes([mode, 3 * self.profile.dpi // 10])

    def drawer(self, pin: int) -> None:
        self.buf += drawer_pulse(pin)


def drawer_pulse(pin: int, realtime: bool = False) -> bytes:
    """Open the cash drawer on connector pin 2 or 5 (ESC p, or real-time DLE DC4)."""
    if pin not in (2, 5):
        raise ValueError(f"drawer pin must be 2 or 5, got {pin}")
    if realtime:  # DLE DC4 1 m t: executed on receipt, even while paper is out
        return b"\x10\x14\x01" + (b"\x00" if pin == 2 else b"\x01") + b"\x02"
    return C.CD_KICK_2 if pin == 2 else C.CD_KICK_5

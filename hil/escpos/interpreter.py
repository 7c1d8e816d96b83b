"""An ESC/POS interpreter: a byte stream in, the printed receipt out (as items).

It reads what a receipt printer reads — text in the active code page (``ESC t``),
styles, alignment, feeds, barcodes (``GS k``), 2D codes (``GS ( k``), raster images
(``GS v 0``, ``GS ( L``, ``ESC *``), cuts (``GS V``), drawer kicks (``ESC p``,
``DLE DC4``) — and skips every other command by its declared length. It is
incremental (``feed`` bytes as they arrive, ``step`` one command at a time) so the
virtual printer can stop in the middle of a job when its paper runs out.

Robustness is the point: every ``step`` either consumes at least one byte or waits
for more, declared lengths are bounded (huge ones are skipped as they stream past,
never buffered), and nothing in the input can raise — random and truncated streams
are fuzzed in tests/test_escpos_interpreter.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from drivers.printers.codepages import UNKNOWN_GLYPH, Numbering

MAX_DATA = 1 << 22  # a command declaring more than this is skipped, not buffered
LINE_DOTS = 30  # default line spacing (1/6 inch at 180 dpi), for ESC J feeds
ALIGNS = {0: "left", 48: "left", 1: "center", 49: "center", 2: "right", 50: "right"}
BARCODES = {
    0: "UPC-A", 1: "UPC-E", 2: "EAN13", 3: "EAN8", 4: "CODE39", 5: "ITF", 6: "CODABAR",
    65: "UPC-A", 66: "UPC-E", 67: "EAN13", 68: "EAN8", 69: "CODE39", 70: "ITF",
    71: "CODABAR", 72: "CODE93", 73: "CODE128", 74: "GS1-128",
    75: "GS1 DataBar Omnidirectional", 76: "GS1 DataBar Truncated",
    77: "GS1 DataBar Limited", 78: "GS1 DataBar Expanded", 79: "CODE128",
}  # fmt: skip
CODES_2D = {48: "PDF417", 49: "QR", 50: "MaxiCode", 51: "GS1 DataBar", 52: "Composite",
            53: "Aztec", 54: "DataMatrix"}  # fmt: skip
QR_EC = {48: "L", 49: "M", 50: "Q", 51: "H"}
# Fixed parameter counts of ESC x / GS x / FS x commands this printer only skips or
# handles without more data. Commands with data are parsed by their own methods.
ESC_PARAMS = {
    0x20: 1, 0x21: 1, 0x24: 2, 0x25: 1, 0x2D: 1, 0x32: 0, 0x33: 1, 0x3C: 0, 0x3D: 1,
    0x3F: 1, 0x40: 0, 0x45: 1, 0x47: 1, 0x4A: 1, 0x4B: 1, 0x4C: 0, 0x4D: 1, 0x52: 1,
    0x53: 0, 0x54: 1, 0x55: 1, 0x56: 1, 0x57: 8, 0x5C: 2, 0x61: 1, 0x63: 2, 0x64: 1,
    0x65: 1, 0x66: 2, 0x69: 0, 0x6A: 1, 0x6D: 0, 0x70: 3, 0x72: 1, 0x74: 1, 0x75: 1,
    0x76: 0, 0x7B: 1,
}  # fmt: skip
GS_PARAMS = {
    0x21: 1, 0x24: 2, 0x2F: 1, 0x3A: 0, 0x42: 1, 0x45: 1, 0x48: 1, 0x49: 1, 0x4C: 2,
    0x50: 2, 0x54: 1, 0x57: 2, 0x5C: 2, 0x5E: 3, 0x61: 1, 0x62: 1, 0x63: 0,
    0x66: 1, 0x67: 4, 0x68: 1, 0x6A: 1, 0x72: 1, 0x77: 1,
}  # fmt: skip
FS_PARAMS = {0x21: 1, 0x26: 0, 0x2E: 0, 0x2D: 1, 0x43: 1, 0x53: 2, 0x57: 1, 0x3F: 2, 0x70: 2}


@dataclass(frozen=True)
class Style:
    bold: bool = False
    underline: int = 0
    width: int = 1
    height: int = 1
    font: int = 0  # 0 = font A, 1 = font B
    reverse: bool = False


@dataclass
class Segment:
    text: str
    style: Style


@dataclass
class TextLine:
    segments: list[Segment]
    align: str = "left"

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments)


@dataclass
class Barcode:
    symbology: str
    data: str
    align: str = "left"
    hri: int = 0  # 0 none, 1 above, 2 below, 3 both
    height: int = 162
    module: int = 3


@dataclass
class Image:
    width: int
    height: int
    data: bytes | None  # raster rows, 1 bit per dot, MSB first, 1 = black
    source: str = "GS v 0"
    align: str = "left"


@dataclass
class Cut:
    partial: bool


@dataclass
class Drawer:
    pin: int
    on_ms: int
    off_ms: int
    realtime: bool = False


@dataclass
class Note:
    """Something the printer skipped (unknown command, truncated data); not printed."""

    text: str


Item = TextLine | Barcode | Image | Cut | Drawer | Note


@dataclass
class _State:
    style: Style = field(default_factory=Style)
    align: str = "left"
    page: int = 0
    hri: int = 0
    bar_height: int = 162
    bar_module: int = 3


def decode_code128(data: bytes) -> str:
    """The content of ESC/POS CODE128 data: code set selectors ({A {B {C) and FNCs removed."""
    out: list[str] = []
    mode = "B"
    i = 0
    while i < len(data):
        b = data[i]
        if b == 0x7B and i + 1 < len(data):  # "{"
            code = data[i + 1]
            i += 2
            if code in b"ABC":
                mode = chr(code)
            elif code == 0x7B:
                out.append("{")
            # {S shift and {1..{4 FNC: no characters of their own
            continue
        if mode == "C":
            out.append(f"{b:02d}" if b < 100 else UNKNOWN_GLYPH)
        else:
            out.append(chr(b) if 0x20 <= b < 0x7F else UNKNOWN_GLYPH)
        i += 1
    return "".join(out)


class Interpreter:
    """Turns ESC/POS bytes into printed items. Feed bytes; ``step`` or ``run``; take items."""

    def __init__(
        self, numbering: Numbering | None = None, columns: int = 42, columns_font_b: int = 56
    ) -> None:
        self.numbering = numbering or Numbering()
        self.columns = columns
        self.font_b_width = columns / columns_font_b
        self.buf = bytearray()
        self.pos = 0
        self.items: list[Item] = []
        self.state = _State()
        self._tables: dict[int, tuple[str, ...]] = {}
        self._pending: list[Segment] = []
        self._pending_cols = 0.0
        self._line_align: str | None = None
        self._after_strip = False  # an ESC * strip was the line: its LF adds no blank
        self._skip = 0  # bytes of an oversized command still to discard
        self._stored_2d: dict[int, bytes] = {}
        self._qr_module = 3
        self._qr_ec = "L"
        self._graphics: Image | None = None

    # feeding ------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self.pos > 65536 and self.pos * 2 > len(self.buf):
            del self.buf[: self.pos]
            self.pos = 0
        self.buf += data

    @property
    def pending_bytes(self) -> int:
        return len(self.buf) - self.pos

    def take_items(self) -> list[Item]:
        items, self.items = self.items, []
        return items

    def run(self) -> None:
        while self.step() is not None:
            pass

    def finish(self) -> None:
        """End of the stream: a command cut off by it is dropped, a started line printed."""
        self.run()
        if self.pending_bytes:
            cut = bytes(self.buf[self.pos : self.pos + 8])
            self.items.append(Note(f"stream ends inside a command: {cut.hex(' ')}"))
            self.pos = len(self.buf)
        if self._pending:
            self._print_line()

    def step(self) -> bytes | None:
        """Interpret one command or text run; its bytes, or None until more bytes come."""
        avail = len(self.buf) - self.pos
        if avail <= 0:
            return None
        start = self.pos
        n: int | None
        if self._skip:
            n = min(self._skip, avail)
            self._skip -= n
        else:
            n = self._dispatch(avail)
            if n is None:
                return None
        self.pos += n
        return bytes(self.buf[start : start + n])

    @classmethod
    def interpret(
        cls, data: bytes, numbering: Numbering | None = None, columns: int = 42, **kw: int
    ) -> list[Item]:
        interp = cls(numbering, columns, **kw)
        interp.feed(data)
        interp.finish()
        return interp.items

    # dispatch -------------------------------------------------------------------------
    def _byte(self, offset: int) -> int:
        return self.buf[self.pos + offset]

    def _dispatch(self, avail: int) -> int | None:
        b = self._byte(0)
        if b >= 0x20:
            return self._text_run()
        if b == 0x0A:
            self._line_feed()
            return 1
        if b == 0x09:
            self._add_text(" " * (8 - int(self._pending_cols) % 8))
            return 1
        if b == 0x0C:
            self._line_feed()
            return 1
        if b in (0x10, 0x1B, 0x1C, 0x1D):
            if avail < 2:
                return None
            if b == 0x1B:
                return self._esc(avail)
            if b == 0x1D:
                return self._gs(avail)
            return self._dle(avail) if b == 0x10 else self._fs(avail)
        return 1  # NUL, CR, CAN and other control bytes do nothing here

    def _text_run(self) -> int:
        end = self.pos
        buf = self.buf
        limit = len(buf)
        while end < limit and buf[end] >= 0x20:
            end += 1
        chunk = buf[self.pos : end]
        if chunk.isascii() and 0x7F not in chunk:
            self._add_text(chunk.decode("ascii"))
        else:
            self._add_text("".join(map(self._table().__getitem__, chunk)))
        return end - self.pos

    def _table(self) -> tuple[str, ...]:
        table = self._tables.get(self.state.page)
        if table is None:
            page = self.numbering.page(self.state.page)
            high = [page.decode(b) if page else UNKNOWN_GLYPH for b in range(0x80, 0x100)]
            low = [chr(b) if 0x20 <= b < 0x7F else "" for b in range(0x80)]
            table = tuple(low + high)
            self._tables[self.state.page] = table
        return table

    def _sized(self, total: int, avail: int) -> int | None:
        """A command of ``total`` bytes: None until it is all here; huge ones stream past."""
        if total > MAX_DATA:
            self.items.append(Note(f"skipped a command declaring {total} bytes"))
            self._skip = total - min(total, avail)
            return min(total, avail)
        return total if avail >= total else None

    # text and lines ---------------------------------------------------------------------
    def _char_width(self, style: Style) -> float:
        return style.width * (self.font_b_width if style.font else 1.0)

    def _add_text(self, text: str) -> None:
        if not text:
            return
        style = self.state.style
        width = self._char_width(style)
        while text:
            if self._line_align is None:
                self._line_align = self.state.align
            room = int((self.columns - self._pending_cols) / width + 1e-9)
            if room <= 0:
                if not self._pending:  # a character wider than the paper: print it alone
                    room = 1
                else:
                    self._print_line()
                    continue
            part, text = text[:room], text[room:]
            if self._pending and self._pending[-1].style == style:
                self._pending[-1].text += part
            else:
                self._pending.append(Segment(part, style))
            self._pending_cols += len(part) * width
            if text:
                self._print_line()

    def _print_line(self) -> None:
        self.items.append(TextLine(self._pending, self._line_align or self.state.align))
        self._pending = []
        self._pending_cols = 0.0
        self._line_align = None
        self._after_strip = False

    def _flush_line(self) -> None:
        if self._pending:
            self._print_line()

    def _line_feed(self) -> None:
        if not self._pending and self._after_strip:
            self._after_strip = False
            return
        self._print_line()

    def _feed_lines(self, lines: int) -> None:
        if self._pending:
            self._print_line()
            lines -= 1
        for _ in range(max(0, lines)):
            self._print_line()

    def _fixed(self, table: dict[int, int], prefix: str, avail: int) -> list[int] | int | None:
        """The parameters of a fixed-length command; 2 (skip it) for an unknown one."""
        cmd = self._byte(1)
        params = table.get(cmd)
        if params is None:
            self.items.append(Note(f"unknown command {prefix} 0x{cmd:02X}"))
            return 2
        if avail < 2 + params:
            return None
        return [self._byte(2 + i) for i in range(params)]

    # DLE: real-time commands -------------------------------------------------------------
    def _dle(self, avail: int) -> int | None:
        cmd = self._byte(1)
        if cmd == 0x04:  # DLE EOT n [a]: status request, answered by the device, not printed
            if avail < 3:
                return None
            size = 4 if self._byte(2) in (7, 8) else 3
            return size if avail >= size else None
        if cmd == 0x05:  # DLE ENQ n
            return 3 if avail >= 3 else None
        if cmd == 0x14:  # DLE DC4 fn ...
            if avail < 3:
                return None
            fn = self._byte(2)
            size = {1: 5, 2: 5, 7: 4, 8: 10}.get(fn, 3)
            if avail < size:
                return None
            if fn == 1:
                m, t = self._byte(3), self._byte(4)
                pin = 5 if m == 1 else 2
                ms = max(1, min(t, 8)) * 100
                self.items.append(Drawer(pin, ms, ms, realtime=True))
            return size
        return 1

    # ESC ------------------------------------------------------------------------------------
    def _esc(self, avail: int) -> int | None:
        cmd = self._byte(1)
        if cmd == 0x2A:  # ESC * m nL nH d: column bit image
            return self._esc_bit_image(avail)
        if cmd == 0x44:  # ESC D n1..nk NUL: tab stops
            end = self.buf.find(0, self.pos + 2, self.pos + 2 + 33)
            if end < 0:
                if avail < 35:
                    return None
                self.items.append(Note("ESC D without its NUL terminator"))
                return 2
            return end + 1 - self.pos
        if cmd == 0x26:  # ESC & y c1 c2 [x d1..d(y*x)]...: user-defined characters
            return self._esc_user_chars(avail)
        if cmd == 0x28:  # ESC ( X pL pH ...
            if avail < 5:
                return None
            return self._sized(5 + self._byte(3) + 256 * self._byte(4), avail)
        p = self._fixed(ESC_PARAMS, "ESC", avail)
        if not isinstance(p, list):
            return p
        params = len(p)
        st = self.state
        if cmd == 0x40:  # ESC @ initialise: modes reset, unprinted text discarded
            self.state = _State()
            self._pending, self._pending_cols, self._line_align = [], 0.0, None
        elif cmd == 0x21:  # ESC ! n: print mode
            n = p[0]
            st.style = replace(
                st.style,
                font=n & 1,
                bold=bool(n & 8),
                height=2 if n & 16 else 1,
                width=2 if n & 32 else 1,
                underline=1 if n & 128 else 0,
            )
        elif cmd in (0x45, 0x47):  # ESC E / ESC G n: emphasis, double strike
            st.style = replace(st.style, bold=bool(p[0] & 1))
        elif cmd == 0x2D:  # ESC - n: underline
            st.style = replace(st.style, underline={1: 1, 49: 1, 2: 2, 50: 2}.get(p[0], 0))
        elif cmd == 0x4D:  # ESC M n: font
            st.style = replace(st.style, font=p[0] & 1)
        elif cmd == 0x61:  # ESC a n: justification
            st.align = ALIGNS.get(p[0], st.align)
        elif cmd == 0x74:  # ESC t n: code page
            st.page = p[0]
            if self.numbering.page(p[0]) is None:
                self.items.append(Note(f"ESC t {p[0]}: no such code page on this printer"))
        elif cmd == 0x64:  # ESC d n: print and feed n lines
            self._feed_lines(p[0])
        elif cmd == 0x4A:  # ESC J n: print and feed n dots
            printed = bool(self._pending)
            self._flush_line()
            self._feed_lines(max(0, round(p[0] / LINE_DOTS) - (1 if printed else 0)))
        elif cmd == 0x70:  # ESC p m t1 t2: drawer kick
            self._flush_line()
            pin = 5 if p[0] in (1, 49) else 2
            self.items.append(Drawer(pin, p[1] * 2, p[2] * 2))
        return 2 + params

    def _esc_bit_image(self, avail: int) -> int | None:
        if avail < 5:
            return None
        m, n = self._byte(2), self._byte(3) + 256 * self._byte(4)
        rows = 24 if m in (32, 33) else 8
        total = 5 + n * rows // 8
        size = self._sized(total, avail)
        if size is None or size < total:
            return size
        cols = bytes(self.buf[self.pos + 5 : self.pos + total])
        self._add_strip(n, rows, cols)
        return total

    def _add_strip(self, width: int, rows: int, cols: bytes) -> None:
        """Column-format bytes (each column top to bottom) to raster rows, joined to the
        image above when it was a strip of the same width."""
        per_col = rows // 8
        row_bytes = (width + 7) // 8
        raster = bytearray(row_bytes * rows)
        for x in range(width):
            for k in range(per_col):
                byte = cols[x * per_col + k]
                for bit in range(8):
                    if byte & (0x80 >> bit):
                        y = k * 8 + bit
                        raster[y * row_bytes + x // 8] |= 0x80 >> (x % 8)
        last = self.items[-1] if self.items else None
        if (
            isinstance(last, Image)
            and last.source == "ESC *"
            and last.width == row_bytes * 8
            and last.data is not None
            and not self._pending
        ):
            last.data += bytes(raster)
            last.height += rows
        else:
            self._flush_line()
            self.items.append(Image(row_bytes * 8, rows, bytes(raster), "ESC *", self.state.align))
        self._after_strip = True

    def _esc_user_chars(self, avail: int) -> int | None:
        if avail < 5:
            return None
        y, c1, c2 = self._byte(2), self._byte(3), self._byte(4)
        offset = 5
        for _ in range(max(0, c2 - c1 + 1)):
            if avail < offset + 1:
                return None
            offset += 1 + y * self._byte(offset)
            if offset > MAX_DATA:
                return self._sized(offset, avail)
        return offset if avail >= offset else None

    # FS -------------------------------------------------------------------------------------
    def _fs(self, avail: int) -> int | None:
        cmd = self._byte(1)
        if cmd == 0x28:  # FS ( X pL pH ...
            if avail < 5:
                return None
            return self._sized(5 + self._byte(3) + 256 * self._byte(4), avail)
        if cmd == 0x71:  # FS q n [xL xH yL yH d...]...: define NV images
            return self._fs_define_nv(avail)
        if cmd == 0x32:  # FS 2 c1 c2 d1..d72: define a Kanji character
            return 76 if avail >= 76 else None
        if cmd == 0x67:  # FS g 1|2 m a1..a4 nL nH [data]: NV user memory
            if avail < 10:
                return None
            extra = self._byte(8) + 256 * self._byte(9) if self._byte(2) == 1 else 0
            return self._sized(10 + extra, avail)
        p = self._fixed(FS_PARAMS, "FS", avail)
        if not isinstance(p, list):
            return p
        if cmd == 0x70:  # FS p n m: print an NV image stored in the printer
            self._flush_line()
            self.items.append(Image(0, 0, None, f"NV image {p[0]}", self.state.align))
        return 2 + len(p)

    def _fs_define_nv(self, avail: int) -> int | None:
        if avail < 3:
            return None
        offset = 3
        for _ in range(self._byte(2)):
            if avail < offset + 4:
                return None
            w = self._byte(offset) + 256 * self._byte(offset + 1)
            h = self._byte(offset + 2) + 256 * self._byte(offset + 3)
            offset += 4 + w * h * 8
            if offset > MAX_DATA:
                return self._sized(offset, avail)
        return offset if avail >= offset else None

    # GS -------------------------------------------------------------------------------------
    def _gs(self, avail: int) -> int | None:
        cmd = self._byte(1)
        if cmd == 0x6B:  # GS k
            return self._gs_barcode(avail)
        if cmd == 0x28:  # GS ( X pL pH ...
            return self._gs_paren(avail)
        if cmd == 0x38:  # GS 8 L p1 p2 p3 p4 m fn ...: graphics with a 4-byte length
            if avail < 7:
                return None
            if self._byte(2) != 0x4C:
                return 3
            length = sum(self._byte(3 + i) << (8 * i) for i in range(4))
            size = self._sized(7 + length, avail)
            if size is not None and size == 7 + length:
                self._graphics_cmd(self.pos + 7, length)
            return size
        if cmd == 0x76:  # GS v 0 m xL xH yL yH d...
            return self._gs_raster(avail)
        if cmd == 0x2A:  # GS * x y d...: define a downloaded bit image
            if avail < 4:
                return None
            return self._sized(4 + self._byte(2) * self._byte(3) * 8, avail)
        if cmd == 0x56:  # GS V m [n]: cut
            if avail < 3:
                return None
            m = self._byte(2)
            size = 4 if m in (65, 66, 97, 98, 103, 104) else 3
            if avail < size:
                return None
            self._flush_line()
            self.items.append(Cut(partial=m in (1, 49, 66, 98, 104)))
            return size
        p = self._fixed(GS_PARAMS, "GS", avail)
        if not isinstance(p, list):
            return p
        st = self.state
        if cmd == 0x21:  # GS ! n: character size
            st.style = replace(st.style, width=((p[0] >> 4) & 7) + 1, height=(p[0] & 7) + 1)
        elif cmd == 0x42:  # GS B n: reverse
            st.style = replace(st.style, reverse=bool(p[0] & 1))
        elif cmd == 0x48:  # GS H n: barcode text position
            st.hri = p[0] & 3
        elif cmd == 0x68:  # GS h n: barcode height
            st.bar_height = p[0]
        elif cmd == 0x77:  # GS w n: barcode module width
            st.bar_module = p[0]
        elif cmd == 0x2F:  # GS / m: print the downloaded bit image
            self._flush_line()
            self.items.append(Image(0, 0, None, "downloaded bit image", st.align))
        return 2 + len(p)

    def _gs_barcode(self, avail: int) -> int | None:
        if avail < 3:
            return None
        m = self._byte(2)
        if m <= 6:  # data up to NUL
            end = self.buf.find(0, self.pos + 3, self.pos + 3 + 256)
            if end < 0:
                if avail < 3 + 256:
                    return None
                self.items.append(Note(f"GS k {m}: barcode data without its NUL"))
                return 3
            data, size = bytes(self.buf[self.pos + 3 : end]), end + 1 - self.pos
        elif 65 <= m <= 79:
            if avail < 4:
                return None
            size = 4 + self._byte(3)
            if avail < size:
                return None
            data = bytes(self.buf[self.pos + 4 : self.pos + size])
        else:
            self.items.append(Note(f"GS k {m}: no such barcode type"))
            return 3
        symbology = BARCODES[m]
        if symbology == "CODE128" and m == 73:
            text = decode_code128(data)
        else:
            text = "".join(chr(b) if 0x20 <= b < 0x7F else UNKNOWN_GLYPH for b in data)
        self._flush_line()
        st = self.state
        self.items.append(Barcode(symbology, text, st.align, st.hri, st.bar_height, st.bar_module))
        return size

    def _gs_paren(self, avail: int) -> int | None:
        if avail < 5:
            return None
        fn_class = self._byte(2)
        length = self._byte(3) + 256 * self._byte(4)
        size = self._sized(5 + length, avail)
        if size is None or size < 5 + length:
            return size
        if fn_class == 0x6B and length >= 2:  # GS ( k: 2D codes
            self._code_2d(bytes(self.buf[self.pos + 5 : self.pos + 5 + length]))
        elif fn_class == 0x4C:  # GS ( L: graphics
            self._graphics_cmd(self.pos + 5, length)
        return size

    def _code_2d(self, body: bytes) -> None:
        cn, fn, params = body[0], body[1], body[2:]
        if cn == 49 and fn == 67 and params:
            self._qr_module = params[0]
        elif cn == 49 and fn == 69 and params:
            self._qr_ec = QR_EC.get(params[0], self._qr_ec)
        elif fn == 80:  # store the data (params: m, data)
            self._stored_2d[cn] = params[1:]
        elif fn == 81:  # print what was stored
            data = self._stored_2d.get(cn, b"").decode("utf-8", "replace")
            self._flush_line()
            name = CODES_2D.get(cn, f"2D code {cn}")
            self.items.append(Barcode(name, data, self.state.align, 0, 0, self._qr_module))

    def _graphics_cmd(self, start: int, length: int) -> None:
        body = bytes(self.buf[start : start + length])
        if len(body) < 2:
            return
        fn = body[1]
        if fn == 112 and len(body) >= 10:  # store raster graphics in the print buffer
            width = body[6] + 256 * body[7]
            height = body[8] + 256 * body[9]
            data = body[10 : 10 + (width + 7) // 8 * height]
            if len(data) == (width + 7) // 8 * height:
                self._graphics = Image((width + 7) // 8 * 8, height, data, "GS ( L")
        elif fn in (2, 50) and self._graphics is not None:  # print the buffered graphics
            self._flush_line()
            self.items.append(replace(self._graphics, align=self.state.align))
            self._graphics = None

    def _gs_raster(self, avail: int) -> int | None:
        if avail < 3:
            return None
        if self._byte(2) not in (0x30, 0x00):
            self.items.append(Note("GS v: only GS v 0 is a raster image"))
            return 3
        if avail < 8:
            return None
        width_bytes = self._byte(4) + 256 * self._byte(5)
        rows = self._byte(6) + 256 * self._byte(7)
        total = 8 + width_bytes * rows
        size = self._sized(total, avail)
        if size is None:
            return None
        self._flush_line()
        data = bytes(self.buf[self.pos + 8 : self.pos + total]) if size == total else None
        self.items.append(Image(width_bytes * 8, rows, data, "GS v 0", self.state.align))
        return size

"""Printer code pages: which byte prints which character, and the numbers ESC t selects.

An ESC/POS printer prints bytes 0x20–0x7E as ASCII and bytes 0x80–0xFF through the
code page selected with ``ESC t n``. The numbers ``n`` are the model's: the default
numbering is Epson's TM-T88 family (``TM_T88``), which most ESC/POS printers copy
for the common pages; a profile may renumber pages its model puts elsewhere.

The register encodes text with ``TextEncoder`` (switching pages as a character needs
it, replacing a character no page has with a visible ``?``); the virtual printer
decodes with ``CodePage.decode`` — one table, so what is sent is what is read back.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache

# ESC t numbers of the Epson TM-T88 family (TM-T88IV/V/VI technical reference).
TM_T88: dict[int, str] = {
    0: "PC437",
    1: "Katakana",
    2: "PC850",
    3: "PC860",
    4: "PC863",
    5: "PC865",
    6: "Hiragana",
    7: "Kanji-1",
    8: "Kanji-2",
    11: "PC851",
    12: "PC853",
    13: "PC857",
    14: "PC737",
    15: "ISO8859-7",
    16: "WPC1252",
    17: "PC866",
    18: "PC852",
    19: "PC858",
    20: "Thai-42",
    21: "Thai-11",
    22: "Thai-13",
    23: "Thai-14",
    24: "Thai-16",
    25: "Thai-17",
    26: "Thai-18",
    30: "TCVN-3",
    31: "TCVN-3-caps",
    32: "PC720",
    33: "WPC775",
    34: "PC855",
    35: "PC861",
    36: "PC862",
    37: "PC864",
    38: "PC869",
    39: "ISO8859-2",
    40: "ISO8859-15",
    41: "PC1098",
    42: "PC1118",
    43: "PC1119",
    44: "PC1125",
    45: "WPC1250",
    46: "WPC1251",
    47: "WPC1253",
    48: "WPC1254",
    49: "WPC1255",
    50: "WPC1256",
    51: "WPC1257",
    52: "WPC1258",
    53: "KZ-1048",
    254: "User-defined-254",
    255: "User-defined-255",
}

# Python codecs for the pages Python knows; the others print as "unknown glyph" when
# read back and are never chosen to encode text.
CODECS: dict[str, str] = {
    "PC437": "cp437",
    "PC850": "cp850",
    "PC860": "cp860",
    "PC863": "cp863",
    "PC865": "cp865",
    "PC857": "cp857",
    "PC737": "cp737",
    "ISO8859-7": "iso8859_7",
    "WPC1252": "cp1252",
    "PC866": "cp866",
    "PC852": "cp852",
    "PC858": "cp858",
    "PC720": "cp720",
    "WPC775": "cp775",
    "PC855": "cp855",
    "PC861": "cp861",
    "PC862": "cp862",
    "PC864": "cp864",
    "PC869": "cp869",
    "ISO8859-2": "iso8859_2",
    "ISO8859-15": "iso8859_15",
    "PC1125": "cp1125",
    "WPC1250": "cp1250",
    "WPC1251": "cp1251",
    "WPC1253": "cp1253",
    "WPC1254": "cp1254",
    "WPC1255": "cp1255",
    "WPC1256": "cp1256",
    "WPC1257": "cp1257",
    "WPC1258": "cp1258",
    "KZ-1048": "kz1048",
}
KNOWN_PAGES = frozenset(TM_T88.values())
UNKNOWN_GLYPH = "\ufffd"
REPLACEMENT = "?"


def _katakana_high_half() -> list[str | None]:
    # JIS X 0201: 0xA1–0xDF are the half-width katakana U+FF61–U+FF9F.
    return [chr(0xFF61 + b - 0xA1) if 0xA1 <= b <= 0xDF else None for b in range(0x80, 0x100)]


@dataclass(frozen=True)
class CodePage:
    """One code page: the characters of bytes 0x80–0xFF (None where there is none)."""

    name: str
    high: tuple[str | None, ...]
    encode_map: Mapping[str, int] = field(repr=False)

    def decode(self, byte: int) -> str:
        if byte < 0x80:
            return chr(byte)
        return self.high[byte - 0x80] or UNKNOWN_GLYPH


@cache
def code_page(name: str) -> CodePage:
    """The code page called ``name`` (a TM-T88 table name such as "PC858")."""
    if name not in KNOWN_PAGES:
        raise KeyError(f"unknown code page {name!r}")
    high: list[str | None]
    if name == "Katakana":
        high = _katakana_high_half()
    elif name in CODECS:
        high = []
        for b in range(0x80, 0x100):
            try:
                ch = bytes([b]).decode(CODECS[name])
            except UnicodeDecodeError:
                ch = ""
            # C1 controls decoded by ISO-8859 codecs are not printable characters.
            high.append(ch if ch and unicodedata.category(ch) != "Cc" else None)
    else:
        high = [None] * 128
    encode_map: dict[str, int] = {}
    for i, glyph in enumerate(high):
        if glyph is not None and glyph not in encode_map:
            encode_map[glyph] = 0x80 + i
    return CodePage(name, tuple(high), encode_map)


class Numbering:
    """A model's ESC t numbers: TM-T88's, with the model's own numbers laid over them."""

    def __init__(self, overrides: Mapping[str, int] | None = None) -> None:
        by_number = dict(TM_T88)
        for name, number in (overrides or {}).items():
            if name not in KNOWN_PAGES:
                raise KeyError(f"unknown code page {name!r}")
            # A renumbered page leaves its TM-T88 number; the new number is its only one.
            by_number = {n: p for n, p in by_number.items() if p != name}
            by_number[number] = name
        self.by_number = by_number
        self.by_name = {name: n for n, name in sorted(by_number.items(), reverse=True)}

    def page(self, number: int) -> CodePage | None:
        name = self.by_number.get(number)
        return code_page(name) if name else None

    def number(self, name: str) -> int:
        return self.by_name[name]


def _printable_ascii(ch: str) -> bool:
    return " " <= ch <= "~"


class TextEncoder:
    """Text to printer bytes over the code pages a printer has, in order of preference.

    ASCII goes as it is; any other character is looked up in the current page, then in
    each page of the preference list (switching with ``ESC t n``). A character no page
    has — and any control character, which could otherwise inject printer commands —
    prints as ``?``, so a bad name shows on the paper instead of failing the job.
    """

    def __init__(self, pages: Iterable[str], numbering: Numbering) -> None:
        self.numbering = numbering
        self.pages = [(numbering.number(name), code_page(name)) for name in pages]
        if not self.pages:
            raise ValueError("a printer needs at least one code page")
        self.current: int | None = None
        self.replaced = 0

    @property
    def preferred(self) -> int:
        return self.pages[0][0]

    def select(self, number: int) -> bytes:
        self.current = number
        return b"\x1bt" + bytes([number])

    def encode(self, text: str) -> bytes:
        out = bytearray()
        current = self.numbering.page(self.current) if self.current is not None else None
        for ch in unicodedata.normalize("NFC", text):
            if _printable_ascii(ch):
                out.append(ord(ch))
                continue
            if current is not None and ch in current.encode_map:
                out.append(current.encode_map[ch])
                continue
            for number, page in self.pages:
                if ch in page.encode_map:
                    out += self.select(number)
                    current = page
                    out.append(page.encode_map[ch])
                    break
            else:
                self.replaced += 1
                out += REPLACEMENT.encode()
        return bytes(out)

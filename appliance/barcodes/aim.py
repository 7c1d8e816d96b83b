"""AIM symbology identifiers (ISO/IEC 15424): ``]`` + symbology letter + modifier.

Scanners set up to send them tell us which symbology was read, which settles questions
the digits alone cannot (is an 8-digit code EAN-8 or UPC-E? is this Code 128 a GS1-128
with FNC1?). They are recognised only for known symbology letters, so a plain code that
happens to start with ``]`` is not mangled.
"""

from __future__ import annotations

# Symbology letter → name, from ISO/IEC 15424 and the AIM registrations.
SYMBOLOGY_NAMES: dict[str, str] = {
    "A": "Code 39",
    "B": "Telepen",
    "C": "Code 128",
    "D": "Code One",
    "E": "EAN/UPC",
    "F": "Codabar",
    "G": "Code 93",
    "H": "Code 11",
    "I": "Interleaved 2 of 5",
    "J": "DotCode",
    "K": "Code 16K",
    "L": "PDF417",
    "M": "MSI",
    "N": "Anker",
    "O": "Codablock",
    "P": "Plessey",
    "Q": "QR Code",
    "R": "Straight 2 of 5 (two-bar start/stop)",
    "S": "Straight 2 of 5 (three-bar start/stop)",
    "T": "Code 49",
    "U": "MaxiCode",
    "X": "other symbology",
    "Z": "non-barcode input",
    "d": "Data Matrix",
    "e": "GS1 DataBar",
    "h": "Han Xin",
    "z": "Aztec",
}

# Identifiers whose data is a GS1 element string with an implied leading FNC1.
GS1_IDENTIFIERS = frozenset({"]C1", "]e0", "]e1", "]e2", "]d2", "]Q3", "]J1"})

# EAN/UPC modifiers: what the digits after the identifier hold.
EAN_MAIN = "]E0"  # EAN-13, UPC-A or UPC-E (without add-on)
EAN_ADDON_2 = "]E1"  # a two-digit add-on on its own
EAN_ADDON_5 = "]E2"  # a five-digit add-on on its own
EAN_WITH_ADDON = "]E3"  # main symbol followed by its add-on
EAN_8 = "]E4"

_MODIFIERS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def split_aim(text: str) -> tuple[str | None, str]:
    """``(identifier, data)``: the leading AIM identifier (or ``None``) and the rest."""
    if len(text) >= 3 and text[0] == "]" and text[1] in SYMBOLOGY_NAMES and text[2] in _MODIFIERS:
        return text[:3], text[3:]
    return None, text


def symbology_letter(identifier: str | None) -> str | None:
    return identifier[1] if identifier else None


def is_gs1_identifier(identifier: str | None) -> bool:
    return identifier in GS1_IDENTIFIERS


def describe(identifier: str) -> str:
    """Human name for error messages, e.g. ``]E4`` → "EAN/UPC (]E4)"."""
    name = SYMBOLOGY_NAMES.get(identifier[1:2], "unknown symbology")
    return f"{name} ({identifier})"

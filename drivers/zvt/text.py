"""Text in ZVT messages: CP437 by default; some terminals send ISO-8859-1/-15 instead.

Every byte maps to a character in these code pages, so decoding never fails; the
per-terminal choice lives in the terminal's configuration, not in the bytes.
"""

from __future__ import annotations

from drivers.zvt.pan import scrub_pans

ENCODINGS = {
    "cp437": "cp437",
    "iso-8859-1": "latin-1",
    "iso8859-1": "latin-1",
    "latin-1": "latin-1",
    "iso-8859-15": "iso8859_15",
    "iso8859-15": "iso8859_15",
}

DEFAULT_ENCODING = "cp437"


def normalize_encoding(name: str) -> str:
    try:
        return ENCODINGS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unsupported terminal text encoding {name!r}; use one of cp437, "
            "iso-8859-1, iso-8859-15"
        ) from None


def decode_text(data: bytes, encoding: str = DEFAULT_ENCODING) -> str:
    """Text of a field; NUL padding at the end (card names are NUL-terminated) is dropped,
    and anything that looks like a full card number is masked (see pan.scrub_pans)."""
    text = data.rstrip(b"\x00").decode(normalize_encoding(encoding), errors="replace")
    return scrub_pans(text)


def encode_text(text: str, encoding: str = DEFAULT_ENCODING) -> bytes:
    return text.encode(normalize_encoding(encoding), errors="replace")

"""Packed BCD as ZVT uses it: two digits a byte, big-endian, fixed width."""

from __future__ import annotations

from drivers.zvt.errors import ZvtDecodeError


def encode_bcd(value: int | str, nbytes: int) -> bytes:
    """Left-pad with zeros to ``nbytes``; a value that does not fit is a caller bug."""
    digits = str(value) if isinstance(value, int) else value
    if isinstance(value, int) and value < 0:
        raise ValueError(f"BCD value must not be negative: {value}")
    if not digits.isdigit() and digits != "":
        raise ValueError(f"BCD value must be digits: {digits!r}")
    if len(digits) > nbytes * 2:
        raise ValueError(f"{digits} does not fit in {nbytes} BCD bytes")
    digits = digits.rjust(nbytes * 2, "0")
    return bytes.fromhex(digits)


def decode_bcd_digits(data: bytes, offset: int = 0) -> str:
    """Digits of ``data``; a nibble above 9 is an error naming its byte."""
    text = data.hex()
    for i, ch in enumerate(text):
        if not ch.isdigit():
            raise ZvtDecodeError(offset + i // 2, f"byte 0x{data[i // 2]:02X} is not BCD")
    return text


def decode_bcd_int(data: bytes, offset: int = 0) -> int:
    return int(decode_bcd_digits(data, offset) or "0")

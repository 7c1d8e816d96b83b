"""APDU = CLASS INSTR LEN data.

LEN is one byte for 0–254 data bytes; LEN 0xFF means a 2-byte length follows,
little-endian (ZVT's extended length), for up to 65535 data bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.zvt.errors import ZvtDecodeError

MAX_DATA = 0xFFFF


@dataclass(frozen=True)
class Apdu:
    cls: int
    instr: int
    data: bytes = b""

    @property
    def command(self) -> str:
        """The control field as people write it: "04 0F"."""
        return f"{self.cls:02X} {self.instr:02X}"

    @property
    def control(self) -> tuple[int, int]:
        return (self.cls, self.instr)

    def encode(self) -> bytes:
        return encode_apdu(self.cls, self.instr, self.data)


def encode_length(n: int) -> bytes:
    if n < 0 or n > MAX_DATA:
        raise ValueError(f"APDU data length {n} is out of range 0..{MAX_DATA}")
    if n < 0xFF:
        return bytes([n])
    return bytes([0xFF, n & 0xFF, n >> 8])


def encode_apdu(cls: int, instr: int, data: bytes = b"") -> bytes:
    return bytes([cls & 0xFF, instr & 0xFF]) + encode_length(len(data)) + bytes(data)


def header_size(buf: bytes) -> int | None:
    """Size of CLASS INSTR LEN[+2]; None while too few bytes are known to tell."""
    if len(buf) < 3:
        return None
    return 5 if buf[2] == 0xFF else 3


def total_size(buf: bytes) -> int | None:
    """Size of the whole APDU that starts ``buf``; None until the header is complete."""
    hs = header_size(buf)
    if hs is None or len(buf) < hs:
        return None
    n = buf[2] if hs == 3 else buf[3] | (buf[4] << 8)
    return hs + n


def decode_apdu(buf: bytes, *, exact: bool = True) -> Apdu:
    """One APDU from ``buf``; with ``exact``, trailing bytes are an error."""
    if len(buf) < 3:
        raise ZvtDecodeError(len(buf), f"APDU header needs 3 bytes, only {len(buf)} given")
    hs = 5 if buf[2] == 0xFF else 3
    if len(buf) < hs:
        raise ZvtDecodeError(
            len(buf), "LEN 0xFF announces a 2-byte length but the APDU ends before it"
        )
    n = buf[2] if hs == 3 else buf[3] | (buf[4] << 8)
    end = hs + n
    if len(buf) < end:
        raise ZvtDecodeError(
            2 if hs == 3 else 3,
            f"length field declares {n} data bytes but only {len(buf) - hs} follow",
        )
    if exact and len(buf) > end:
        raise ZvtDecodeError(end, f"{len(buf) - end} bytes after the end of the APDU")
    return Apdu(buf[0], buf[1], bytes(buf[hs:end]))


def data_offset(buf: bytes) -> int:
    """Where the data of the APDU in ``buf`` starts (3 or 5)."""
    return 5 if len(buf) >= 3 and buf[2] == 0xFF else 3

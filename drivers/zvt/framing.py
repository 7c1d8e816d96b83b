"""ZVT serial framing: DLE STX, APDU with DLE doubled, DLE ETX, CRC16 low byte first.

The CRC is CCITT with the reflected polynomial 0x8408 and initial value 0 (the
variant also known as CRC-16/KERMIT), computed over the unescaped APDU and the ETX
byte. The receiver answers ACK (0x06) or NAK (0x15) to each frame.

``Deframer`` takes arbitrary chunks (as a serial port delivers them), skips and counts
garbage between frames, reports CRC errors and abandoned (truncated) frames, and never
raises on bad input: every byte moves it forward, so it cannot hang.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from drivers.zvt.errors import ZvtDecodeError

DLE = 0x10
STX = 0x02
ETX = 0x03
ACK = 0x06
NAK = 0x15

# APDU of at most 5 header bytes + 65535 data bytes.
MAX_APDU = 0xFFFF + 5


def _make_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _make_table()


def crc16(data: bytes, crc: int = 0) -> int:
    for b in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return crc


def frame_crc(apdu: bytes) -> int:
    return crc16(bytes([ETX]), crc16(apdu))


def encode_frame(apdu: bytes) -> bytes:
    crc = frame_crc(apdu)
    body = apdu.replace(b"\x10", b"\x10\x10")
    return b"\x10\x02" + body + b"\x10\x03" + bytes([crc & 0xFF, crc >> 8])


def decode_frame(buf: bytes) -> bytes:
    """The APDU inside exactly one frame; errors name the offset in ``buf``."""
    where = "frame"
    if len(buf) < 2 or buf[0] != DLE or buf[1] != STX:
        raise ZvtDecodeError(0, "a serial frame starts with 10 02 (DLE STX)", where=where)
    out = bytearray()
    i = 2
    while True:
        if i >= len(buf):
            raise ZvtDecodeError(i, "frame ends before DLE ETX", where=where)
        b = buf[i]
        if b != DLE:
            out.append(b)
            i += 1
            continue
        if i + 1 >= len(buf):
            raise ZvtDecodeError(i + 1, "frame ends after a DLE", where=where)
        nxt = buf[i + 1]
        if nxt == DLE:
            out.append(DLE)
            i += 2
        elif nxt == ETX:
            i += 2
            break
        else:
            raise ZvtDecodeError(
                i + 1, f"DLE followed by 0x{nxt:02X} (expected 10 or 03)", where=where
            )
    if len(buf) < i + 2:
        raise ZvtDecodeError(
            len(buf), f"CRC needs 2 bytes after DLE ETX, {len(buf) - i} given", where=where
        )
    got = buf[i] | (buf[i + 1] << 8)
    want = frame_crc(bytes(out))
    if got != want:
        raise ZvtDecodeError(
            i,
            f"CRC mismatch: frame carries {buf[i]:02X} {buf[i + 1]:02X}, "
            f"computed {want & 0xFF:02X} {want >> 8:02X}",
            where=where,
        )
    if len(buf) > i + 2:
        raise ZvtDecodeError(i + 2, f"{len(buf) - i - 2} bytes after the CRC", where=where)
    return bytes(out)


class Control(Enum):
    ACK = ACK
    NAK = NAK


@dataclass(frozen=True)
class Frame:
    apdu: bytes


@dataclass(frozen=True)
class CrcError:
    apdu: bytes
    expected: int
    received: int


@dataclass(frozen=True)
class Abandoned:
    """A frame that never finished: a new DLE STX, a stray DLE pair, or a timeout."""

    reason: str
    length: int


Event = Frame | CrcError | Abandoned | Control


class _S(Enum):
    IDLE = 0
    IDLE_DLE = 1
    BODY = 2
    BODY_DLE = 3
    CRC1 = 4
    CRC2 = 5


class Deframer:
    """Incremental de-framer; feed bytes, get events."""

    def __init__(self) -> None:
        self._state = _S.IDLE
        self._buf = bytearray()
        self._crc_lo = 0
        self.garbage_bytes = 0
        self.crc_errors = 0
        self.abandoned = 0
        self.frames = 0

    @property
    def in_frame(self) -> bool:
        return self._state not in (_S.IDLE, _S.IDLE_DLE)

    def abandon(self, reason: str = "inter-byte timeout") -> Abandoned | None:
        """Drop a half-received frame (the transport calls this after T1 of silence)."""
        if not self.in_frame:
            if self._state is _S.IDLE_DLE:
                self.garbage_bytes += 1
                self._state = _S.IDLE
            return None
        ev = Abandoned(reason, len(self._buf))
        self.abandoned += 1
        self._reset()
        return ev

    def _reset(self) -> None:
        self._state = _S.IDLE
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[Event]:
        events: list[Event] = []
        i = 0
        n = len(chunk)
        while i < n:
            st = self._state
            if st is _S.BODY:
                j = chunk.find(b"\x10", i)
                if j < 0:
                    self._buf += chunk[i:]
                    i = n
                else:
                    self._buf += chunk[i:j]
                    self._state = _S.BODY_DLE
                    i = j + 1
                if len(self._buf) > MAX_APDU:
                    events.append(Abandoned("frame longer than any APDU", len(self._buf)))
                    self.abandoned += 1
                    self._reset()
                continue
            b = chunk[i]
            i += 1
            if st is _S.IDLE:
                if b == DLE:
                    self._state = _S.IDLE_DLE
                elif b == ACK:
                    events.append(Control.ACK)
                elif b == NAK:
                    events.append(Control.NAK)
                else:
                    self.garbage_bytes += 1
            elif st is _S.IDLE_DLE:
                if b == STX:
                    self._state = _S.BODY
                    self._buf = bytearray()
                elif b == DLE:
                    self.garbage_bytes += 1  # the first DLE was noise; stay armed
                else:
                    self.garbage_bytes += 2
                    self._state = _S.IDLE
            elif st is _S.BODY_DLE:
                if b == DLE:
                    self._buf.append(DLE)
                    self._state = _S.BODY
                elif b == ETX:
                    self._state = _S.CRC1
                elif b == STX:
                    events.append(Abandoned("new DLE STX inside a frame", len(self._buf)))
                    self.abandoned += 1
                    self._state = _S.BODY
                    self._buf = bytearray()
                else:
                    events.append(
                        Abandoned(f"DLE followed by 0x{b:02X} inside a frame", len(self._buf))
                    )
                    self.abandoned += 1
                    self._reset()
            elif st is _S.CRC1:
                self._crc_lo = b
                self._state = _S.CRC2
            else:  # CRC2
                received = self._crc_lo | (b << 8)
                apdu = bytes(self._buf)
                expected = frame_crc(apdu)
                if received == expected:
                    self.frames += 1
                    events.append(Frame(apdu))
                else:
                    self.crc_errors += 1
                    events.append(CrcError(apdu, expected, received))
                self._reset()
        return events

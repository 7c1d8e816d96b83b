"""Byte streams to scans: the framer shared by serial and BLE scanners.

A scanner in serial mode sends the code followed by a terminator (CR, LF, CRLF) or
nothing (the end is a pause). Anything that cannot be a scan — control bytes other
than GS (the GS1 FNC1), over-long frames, framing errors reported by the port — is
counted and logged as noise and never becomes a scan. With ACK/NAK handshaking the
framer says what to answer: ACK for a good frame, NAK for a bad one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

ACK = b"\x06"
NAK = b"\x15"
GS = 0x1D
TERMINATORS = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n", "none": b""}
MAX_FRAME = 512


@dataclass
class FrameResult:
    scans: list[str] = field(default_factory=list)
    replies: list[bytes] = field(default_factory=list)  # ACK/NAK to send back, in order


@dataclass
class LineFramer:
    terminator: str = "cr"  # cr | lf | crlf | none
    timeout_s: float = 0.1  # with terminator "none": a pause this long ends a scan
    ack_nak: bool = False
    encoding: str = "latin-1"
    buffer: bytearray = field(default_factory=bytearray)
    last_at: float | None = None
    noise: int = 0  # frames thrown away (bad bytes, too long, framing errors)

    def __post_init__(self) -> None:
        if self.terminator not in TERMINATORS:
            raise ValueError(f"terminator {self.terminator!r}: use one of {', '.join(TERMINATORS)}")

    def _finish(self, frame: bytes, out: FrameResult) -> None:
        # CRLF framing tolerates a lone CR/LF pair split oddly; other terminators
        # leave stray CR/LF around a frame, which we trim rather than count as noise.
        frame = frame.strip(b"\r\n")
        if not frame:
            return
        bad = [b for b in frame if (b < 0x20 and b != GS) or b == 0x7F]
        if bad or len(frame) > MAX_FRAME:
            self.noise += 1
            why = "too long" if len(frame) > MAX_FRAME else f"control byte 0x{bad[0]:02X}"
            log.warning("scanner noise: frame of %d bytes dropped (%s)", len(frame), why)
            if self.ack_nak:
                out.replies.append(NAK)
            return
        out.scans.append(frame.decode(self.encoding))
        if self.ack_nak:
            out.replies.append(ACK)

    def feed(self, data: bytes, now: float) -> FrameResult:
        """Take bytes received at ``now`` (seconds); return finished scans and replies."""
        out = FrameResult()
        if self.terminator == "none":
            if self.buffer and self.last_at is not None and now - self.last_at >= self.timeout_s:
                self._finish(bytes(self.buffer), out)
                self.buffer.clear()
            self.buffer += data
            self.last_at = now
            return out
        term = TERMINATORS[self.terminator]
        self.buffer += data
        self.last_at = now
        while True:
            index = self.buffer.find(term)
            if index < 0:
                break
            frame = bytes(self.buffer[:index])
            del self.buffer[: index + len(term)]
            self._finish(frame, out)
        if len(self.buffer) > MAX_FRAME:
            self.noise += 1
            log.warning("scanner noise: %d bytes without a terminator dropped", len(self.buffer))
            self.buffer.clear()
            if self.ack_nak:
                out.replies.append(NAK)
        return out

    def flush(self, now: float) -> FrameResult:
        """Called when nothing arrived for a while (or the stream ended)."""
        out = FrameResult()
        if not self.buffer:
            return out
        idle = float("inf") if self.last_at is None else now - self.last_at
        if self.terminator == "none" and idle >= self.timeout_s:
            self._finish(bytes(self.buffer), out)
            self.buffer.clear()
        elif self.terminator != "none" and idle >= 1.0:
            # A partial frame that never got its terminator is noise, not a scan.
            self.noise += 1
            log.warning("scanner noise: %d bytes without a terminator", len(self.buffer))
            self.buffer.clear()
        return out

    def framing_error(self) -> FrameResult:
        """The port reported a parity/framing error: the frame in progress is noise."""
        self.noise += 1
        self.buffer.clear()
        out = FrameResult()
        if self.ack_nak:
            out.replies.append(NAK)
        return out

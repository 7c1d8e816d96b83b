"""Byte streams to scans: the framer shared by serial and BLE scanners.

A scanner in serial mode sends the code followed by a terminator (CR, LF, CRLF) or
nothing (the end is a pause). Anything that cannot be a scan — control bytes other
than GS (the GS1 FNC1), over-long frames, bytes the port marked as parity/framing
errors or a break, bytes left without a terminator — is counted and logged as noise
and never becomes a scan. A frame hit by an error is thrown away whole: the framer
discards up to the next terminator (or pause), so the tail of a damaged frame can
never come out as a shorter scan. With ACK/NAK handshaking the framer says what to
answer: ACK for a good frame, NAK for a bad one.

Error marks: Linux reports parity and framing errors in the byte stream only when
the port has PARMRK (and INPCK) set; the serial driver sets both, so an error arrives
as ``FF 00 x`` and a real 0xFF byte as ``FF FF`` (``parmrk=True`` here undoes that).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

ACK = b"\x06"
NAK = b"\x15"
GS = "\x1d"
TERMINATORS = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n", "none": b""}
MAX_FRAME = 512
STALE_S = 1.0  # bytes without their terminator this long are noise


def _bad_char(text: str) -> str | None:
    """The first character no barcode scanner sends in a scan (C0/C1 controls but GS)."""
    for char in text:
        if (char < " " and char != GS) or "\x7f" <= char <= "\x9f":
            return char
    return None


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
    parmrk: bool = False  # the stream carries PARMRK error marks (FF 00 x, FF FF)
    buffer: bytearray = field(default_factory=bytearray)
    last_at: float | None = None
    noise: int = 0  # frames thrown away (bad bytes, too long, port errors, cut off)
    received: int = 0  # bytes fed, as read (error marks included)
    discarding: bool = False  # inside a damaged frame: drop up to its end
    _pending: bytes = b""  # an error mark split across two reads

    def __post_init__(self) -> None:
        if self.terminator not in TERMINATORS:
            raise ValueError(f"terminator {self.terminator!r}: use one of {', '.join(TERMINATORS)}")

    # -- bookkeeping -----------------------------------------------------------------
    def _noise(self, out: FrameResult, why: str) -> None:
        self.noise += 1
        log.warning("scanner noise: %s", why)
        if self.ack_nak:
            out.replies.append(NAK)

    def _damaged(self, out: FrameResult, why: str) -> None:
        """The frame in progress is bad: count it once and drop it up to its end."""
        if not self.discarding:
            self._noise(out, why)
        self.discarding = True
        self.buffer.clear()

    def _finish(self, frame: bytes, out: FrameResult) -> None:
        # A CR or LF next to the terminator (a scanner sending CRLF to a CR framer)
        # is trimmed, not counted as noise.
        frame = frame.strip(b"\r\n")
        if not frame:
            return
        if len(frame) > MAX_FRAME:
            self._noise(out, f"frame of {len(frame)} bytes dropped (too long)")
            return
        try:
            text = frame.decode(self.encoding)
        except UnicodeDecodeError:
            self._noise(out, f"frame of {len(frame)} bytes dropped (not {self.encoding})")
            return
        bad = _bad_char(text)
        if bad is not None:
            self._noise(out, f"frame of {len(frame)} bytes dropped (control byte 0x{ord(bad):02X})")
            return
        out.scans.append(text)
        if self.ack_nak:
            out.replies.append(ACK)

    def _end_pause(self, now: float, out: FrameResult) -> None:
        """With terminator "none", a pause ends the frame (or the damaged run)."""
        if self.last_at is None or now - self.last_at < self.timeout_s:
            return
        if self.discarding:
            self.discarding = False
            self.buffer.clear()
        elif self.buffer:
            self._finish(bytes(self.buffer), out)
            self.buffer.clear()

    # -- PARMRK ----------------------------------------------------------------------
    def _unmark(self, data: bytes) -> list[bytes | None]:
        """Split a PARMRK stream into data runs and ``None`` for each error mark."""
        if not self.parmrk:
            return [data]
        data, self._pending = self._pending + data, b""
        pieces: list[bytes | None] = []
        run = bytearray()
        i = 0
        while i < len(data):
            mark = data.find(b"\xff", i)
            if mark < 0:
                run += data[i:]
                break
            run += data[i:mark]
            if mark + 1 >= len(data) or (data[mark + 1] == 0 and mark + 2 >= len(data)):
                self._pending = data[mark:]  # finish the mark with the next read
                break
            if data[mark + 1] == 0xFF:
                run.append(0xFF)
                i = mark + 2
            elif data[mark + 1] == 0:
                pieces += [bytes(run), None]
                run.clear()
                i = mark + 3
            else:  # not a mark the kernel makes; keep the byte as data
                run.append(0xFF)
                i = mark + 1
        if run:
            pieces.append(bytes(run))
        return pieces

    # -- input -----------------------------------------------------------------------
    def _take(self, data: bytes, out: FrameResult) -> None:
        if self.terminator == "none":
            if not self.discarding:
                self.buffer += data
                if len(self.buffer) > MAX_FRAME:
                    self._damaged(out, f"more than {MAX_FRAME} bytes without a pause")
            return
        term = TERMINATORS[self.terminator]
        self.buffer += data
        while True:
            index = self.buffer.find(term)
            if index < 0:
                break
            frame = bytes(self.buffer[:index])
            del self.buffer[: index + len(term)]
            if self.discarding:
                self.discarding = False  # the damaged frame ends here
            else:
                self._finish(frame, out)
        if len(self.buffer) > MAX_FRAME:
            if not self.discarding:
                self._damaged(out, f"more than {MAX_FRAME} bytes without a terminator")
            # keep what could be the start of a split terminator
            del self.buffer[: len(self.buffer) - (len(term) - 1)]

    def feed(self, data: bytes, now: float) -> FrameResult:
        """Take bytes received at ``now`` (seconds); return finished scans and replies."""
        out = FrameResult()
        self.received += len(data)
        if self.terminator == "none":
            self._end_pause(now, out)
        for piece in self._unmark(data):
            if piece is None:
                self._damaged(out, "the port reported a parity/framing error or a break")
            elif piece:
                self._take(piece, out)
        if data:
            self.last_at = now
        return out

    def flush(self, now: float) -> FrameResult:
        """Called when nothing arrived for a while (or the stream ended)."""
        out = FrameResult()
        if self.terminator == "none":
            self._end_pause(now, out)
            return out
        idle = float("inf") if self.last_at is None else now - self.last_at
        if (self.buffer or self.discarding) and idle >= STALE_S:
            if self.buffer and not self.discarding:
                # A partial frame that never got its terminator is noise, not a scan.
                self._noise(out, f"{len(self.buffer)} bytes without a terminator dropped")
            self.buffer.clear()
            self.discarding = False
        return out

    def framing_error(self) -> FrameResult:
        """The port reported a parity/framing error: the frame in progress is noise."""
        out = FrameResult()
        self._damaged(out, "the port reported a parity/framing error")
        return out

    def reset(self, why: str) -> None:
        """The link went away: whatever frame was in progress can never complete."""
        if self.buffer and not self.discarding:
            self.noise += 1
            log.warning("scanner noise: %d bytes dropped (%s)", len(self.buffer), why)
        self.buffer.clear()
        self.discarding = False
        self._pending = b""
        self.last_at = None

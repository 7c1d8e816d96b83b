"""Byte traces of ZVT sessions: record, read, replay.

Format (text, one event a line; ``#`` lines are headers/comments):

    # zvt-trace 1
    # transport: tcp            (or: serial — frames, ACK/NAK and noise as on the line)
    # started: 2024-05-01T10:00:00
    0.000000 ECR>PT 06 01 0A 04 00 00 00 00 12 34 49 09 78
    0.001820 PT>ECR 80 00 00

The timestamp is seconds since the session started; the direction names who sent the
bytes (ECR = the register, PT = the payment terminal); the bytes are upper-case hex,
exactly as read from or written to the link (chunks may split or join messages).
Only masked card data goes on the wire from the simulator, so traces hold no PAN.

Replay: ``replay_session`` plays the PT side of a trace against a live register: it
waits for the register's bytes (ECR>PT), compares them, and sends the recorded PT>ECR
bytes; mismatches are counted and reported, not fatal.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from drivers.zvt.transport import ByteStream, TraceHook

ECR_TO_PT = "ECR>PT"
PT_TO_ECR = "PT>ECR"


@dataclass
class TraceEvent:
    t: float
    direction: str
    data: bytes


@dataclass
class Trace:
    transport: str = "tcp"
    events: list[TraceEvent] = field(default_factory=list)


class TraceRecorder:
    """Writes events as they happen (flushed per line, so a crash keeps the trace)."""

    def __init__(self, path: Path, transport: str) -> None:
        self.path = path
        self.transport = transport
        self._f: TextIO = path.open("w", encoding="ascii")
        self._t0 = time.monotonic()
        self._f.write("# zvt-trace 1\n")
        self._f.write(f"# transport: {transport}\n")
        self._f.write(f"# started: {datetime.now().replace(microsecond=0).isoformat()}\n")
        self._f.flush()

    def record(self, direction: str, data: bytes) -> None:
        if self._f.closed or not data:
            return
        t = time.monotonic() - self._t0
        self._f.write(f"{t:.6f} {direction} {data.hex(' ').upper()}\n")
        self._f.flush()

    def hook(self, side: str) -> TraceHook:
        """A transport trace callback for the side that owns the transport ("PT"/"ECR")."""

        def cb(direction: str, data: bytes) -> None:
            sent = direction == "tx"
            if side == "PT":
                self.record(PT_TO_ECR if sent else ECR_TO_PT, data)
            else:
                self.record(ECR_TO_PT if sent else PT_TO_ECR, data)

        return cb

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


def read_trace(path: Path) -> Trace:
    trace = Trace()
    for lineno, line in enumerate(path.read_text(encoding="ascii").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            key, _, val = line[1:].partition(":")
            if key.strip() == "transport":
                trace.transport = val.strip()
            continue
        parts = line.split(None, 2)
        if len(parts) < 3 or parts[1] not in (ECR_TO_PT, PT_TO_ECR):
            raise ValueError(f"{path}:{lineno}: expected 'SECONDS ECR>PT|PT>ECR HEX…'")
        try:
            t = float(parts[0])
            data = bytes.fromhex(parts[2])
        except ValueError as e:
            raise ValueError(f"{path}:{lineno}: {e}") from None
        trace.events.append(TraceEvent(t, parts[1], data))
    return trace


@dataclass
class ReplayReport:
    sent: int = 0
    matched: int = 0
    mismatches: list[str] = field(default_factory=list)


async def replay_session(
    trace: Trace, stream: ByteStream, *, timeout: float = 5.0, keep_timing: bool = False
) -> ReplayReport:
    """Play the PT side of ``trace`` on ``stream`` (the register is on the other end)."""
    report = ReplayReport()
    pending = bytearray()
    last_t = 0.0
    for ev in trace.events:
        if keep_timing and ev.t > last_t:
            await asyncio.sleep(min(ev.t - last_t, 5.0))
        last_t = ev.t
        if ev.direction == PT_TO_ECR:
            await stream.write(ev.data)
            report.sent += 1
            continue
        while len(pending) < len(ev.data):
            try:
                chunk = await asyncio.wait_for(stream.read(), timeout)
            except TimeoutError:
                report.mismatches.append(
                    f"t={ev.t:.6f}: register sent {pending.hex(' ').upper() or 'nothing'}, "
                    f"trace expects {ev.data.hex(' ').upper()}"
                )
                return report
            if not chunk:
                report.mismatches.append(f"t={ev.t:.6f}: register closed the link")
                return report
            pending += chunk
        got = bytes(pending[: len(ev.data)])
        del pending[: len(ev.data)]
        if got == ev.data:
            report.matched += 1
        else:
            report.mismatches.append(
                f"t={ev.t:.6f}: register sent {got.hex(' ').upper()}, "
                f"trace expects {ev.data.hex(' ').upper()}"
            )
    return report

"""evemu's text format for input-device recordings, read and written.

    # EVEMU 1.3
    # layout: fr            <- our own hint for replay (a comment to evemu)
    N: Honeywell Scanner
    I: 0003 0c2e 0b61 0111
    E: 0.000000 0001 001e 0001	# EV_KEY / KEY_A  1
    E: 0.000000 0000 0000 0000	# ------------ SYN_REPORT (0) ----------

Header lines (N:, I:, P:, B:, A:, L:, S:) describe the device; E: lines are events:
seconds.microseconds, type (hex), code (hex), value (decimal). Recordings made with
`evemu-record` on a bench replay here unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from drivers.scanners.wedge import RawEvent

_E = re.compile(r"^E:\s*(\d+)\.(\d{1,6})\s+([0-9a-fA-F]{4})\s+([0-9a-fA-F]{4})\s+(-?\d+)")


class RecordingError(ValueError):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line


@dataclass
class EvemuRecording:
    name: str = ""
    bus: int = 0
    vendor: int = 0
    product: int = 0
    version: int = 0
    hints: dict[str, str] = field(default_factory=dict)  # "# key: value" comments
    events: list[RawEvent] = field(default_factory=list)


def parse_evemu(text: str) -> EvemuRecording:
    rec = EvemuRecording()
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            hint = re.match(r"^#\s*([a-z_]+):\s*(\S.*)$", line)
            if hint:
                rec.hints[hint.group(1)] = hint.group(2).strip()
            continue
        if line.startswith("N:"):
            rec.name = line[2:].strip()
        elif line.startswith("I:"):
            parts = line[2:].split()
            try:
                rec.bus, rec.vendor, rec.product, rec.version = (int(p, 16) for p in parts[:4])
            except ValueError:
                raise RecordingError(number, f"bad I: line {line!r}") from None
        elif line.startswith("E:"):
            match = _E.match(line)
            if match is None:
                raise RecordingError(number, f"bad event line {line!r}")
            sec, usec, etype, code, value = match.groups()
            rec.events.append(
                RawEvent(
                    int(sec), int(usec.ljust(6, "0")), int(etype, 16), int(code, 16), int(value)
                )
            )
        elif line[:2] in ("P:", "B:", "A:", "L:", "S:", "R:"):
            continue
        else:
            raise RecordingError(number, f"not an evemu line: {line[:40]!r}")
    return rec


def write_evemu(rec: EvemuRecording) -> str:
    lines = ["# EVEMU 1.3"]
    lines += [f"# {key}: {value}" for key, value in rec.hints.items()]
    lines.append(f"N: {rec.name}")
    lines.append(f"I: {rec.bus:04x} {rec.vendor:04x} {rec.product:04x} {rec.version:04x}")
    for ev in rec.events:
        lines.append(f"E: {ev.sec}.{ev.usec:06d} {ev.type:04x} {ev.code:04x} {ev.value:04d}")
    return "\n".join(lines) + "\n"

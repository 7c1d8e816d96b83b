"""Serial and BLE recordings: timestamped hex with direction, one chunk a line.

    # serial recording v1
    # terminator: cr
    0.000000 < 34 30 30 36 33 38 31 33 33 33 39 33 31 0d
    0.000950 > 06

``<`` is from the device, ``>`` is to the device (ACK/NAK); times are seconds from
the start. A BLE recording is the same text with ``# ble recording v1`` and the hint
``# transport: ble``: each ``<`` line is one notification of the scanner's
characteristic (``# characteristic: <uuid>``). Hints (``# key: value``) carry the
settings the replay needs: terminator, baud, ack_nak, characteristic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hil.evemu import RecordingError

_LINE = re.compile(r"^(\d+(?:\.\d+)?)\s+([<>])\s*((?:[0-9a-fA-F]{2}\s*)*)$")
_HINT = re.compile(r"^#\s*([a-z_]+):\s*(\S.*)$")


@dataclass
class SerialRecording:
    hints: dict[str, str] = field(default_factory=dict)
    chunks: list[tuple[float, str, bytes]] = field(default_factory=list)

    @property
    def transport(self) -> str:
        return self.hints.get("transport", "serial")


def parse_serial(text: str) -> SerialRecording:
    rec = SerialRecording()
    last = 0.0
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            hint = _HINT.match(line)
            if hint:
                rec.hints[hint.group(1)] = hint.group(2).strip()
                if rec.transport not in ("serial", "ble"):
                    raise RecordingError(number, f"transport {rec.transport!r}: use serial or ble")
            continue
        match = _LINE.match(line)
        if match is None:
            raise RecordingError(number, f"expected '<seconds> <|> <hex bytes>', got {line[:40]!r}")
        at = float(match.group(1))
        if at < last:
            raise RecordingError(number, f"time {at} goes back (previous line: {last})")
        last = at
        rec.chunks.append((at, match.group(2), bytes.fromhex(match.group(3))))
    return rec


def write_serial(rec: SerialRecording) -> str:
    lines = [f"# {rec.transport} recording v1"]
    lines += [f"# {key}: {value}" for key, value in rec.hints.items()]
    for at, direction, data in rec.chunks:
        lines.append(f"{at:.6f} {direction} {data.hex(' ')}")
    return "\n".join(lines) + "\n"

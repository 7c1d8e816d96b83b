"""Serial recordings: timestamped hex with direction, one chunk a line.

    # serial recording v1
    # terminator: cr
    0.000000 < 34 30 30 36 33 38 31 33 33 33 39 33 31 0d
    0.000950 > 06

``<`` is from the device, ``>`` is to the device; times are seconds from the start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hil.evemu import RecordingError

_LINE = re.compile(r"^(\d+(?:\.\d+)?)\s+([<>])\s*((?:[0-9a-fA-F]{2}\s*)*)$")


@dataclass
class SerialRecording:
    hints: dict[str, str] = field(default_factory=dict)
    chunks: list[tuple[float, str, bytes]] = field(default_factory=list)


def parse_serial(text: str) -> SerialRecording:
    rec = SerialRecording()
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            hint = re.match(r"^#\s*([a-z_]+):\s*(\S.*)$", line)
            if hint:
                rec.hints[hint.group(1)] = hint.group(2).strip()
            continue
        match = _LINE.match(line)
        if match is None:
            raise RecordingError(number, f"expected '<seconds> <|> <hex bytes>', got {line[:40]!r}")
        rec.chunks.append((float(match.group(1)), match.group(2), bytes.fromhex(match.group(3))))
    return rec


def write_serial(rec: SerialRecording) -> str:
    lines = ["# serial recording v1"]
    lines += [f"# {key}: {value}" for key, value in rec.hints.items()]
    for at, direction, data in rec.chunks:
        lines.append(f"{at:.6f} {direction} {data.hex(' ')}")
    return "\n".join(lines) + "\n"

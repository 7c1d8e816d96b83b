"""Printer status from DLE EOT answers: online, paper, cover, drawer — or unknown.

``DLE EOT n`` (10 04 n) asks for one status byte: n=1 printer, n=2 offline cause,
n=3 error cause, n=4 roll paper sensor. Every answer has the fixed bits 0xx1xx10
(bits 1 and 4 set, bits 0 and 7 clear), so an answer without them is garbage.
No answer, or garbage, is *unknown*: a printer that does not say it is ready is not
treated as ready (python-escpos's ``paper_status()`` returns "paper OK" when nothing
answers — a printer that is switched off would look fine).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

DLE_EOT = b"\x10\x04"
FIXED_MASK = 0x93
FIXED_BITS = 0x12
QUERIES = (1, 2, 4)  # n=3 (error cause) only when n=2 reports an error

Paper = Literal["ok", "near_end", "out"]


def status_request(n: int) -> bytes:
    return DLE_EOT + bytes([n])


def is_status_byte(value: int) -> bool:
    return (value & FIXED_MASK) == FIXED_BITS


@dataclass(frozen=True)
class PrinterStatus:
    """What the printer said about itself; ``known`` is False when it did not say."""

    known: bool
    online: bool | None = None
    paper: Paper | None = None
    cover_open: bool | None = None
    drawer_open: bool | None = None
    error: str | None = None
    reason: str | None = None  # why it is not ready or not known, in words

    @property
    def ready(self) -> bool:
        """Known, online, with paper, cover closed and no error: it can print now."""
        return bool(
            self.known
            and self.online
            and self.paper != "out"
            and not self.cover_open
            and self.error is None
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ready": self.ready}


def unknown(reason: str) -> PrinterStatus:
    return PrinterStatus(known=False, reason=reason)


NO_STATUS = PrinterStatus(
    known=True, online=True, reason="this printer model does not report its status"
)


def parse_status(answers: dict[int, int | None], drawer_open_level: str = "high") -> PrinterStatus:
    """Combine DLE EOT answers (n → byte, or None for no answer) into one status."""
    for n in (1, 2, 4):
        value = answers.get(n)
        if value is None:
            return unknown(f"no answer to status request DLE EOT {n}")
        if not is_status_byte(value):
            return unknown(f"garbage answer 0x{value:02X} to status request DLE EOT {n}")
    printer, offline, paper_byte = answers[1], answers[2], answers[4]
    assert printer is not None and offline is not None and paper_byte is not None
    pin3_high = bool(printer & 0x04)
    drawer_open = pin3_high if drawer_open_level == "high" else not pin3_high
    cover_open = bool(offline & 0x04)
    paper: Paper = "ok"
    if paper_byte & 0x60 or offline & 0x20:
        paper = "out"
    elif paper_byte & 0x0C:
        paper = "near_end"
    error = None
    if offline & 0x40:
        cause = answers.get(3)
        if cause is not None and is_status_byte(cause):
            if cause & 0x08:
                error = "autocutter error"
            elif cause & 0x20:
                error = "unrecoverable error: switch the printer off and on"
            elif cause & 0x40:
                error = "print head too hot (recovers by itself)"
        error = error or "printer error"
    online = not printer & 0x08
    reason = None
    if cover_open:
        reason = "cover open"
    elif paper == "out":
        reason = "paper out"
    elif error:
        reason = error
    elif not online:
        reason = "printer offline"
    return PrinterStatus(
        known=True,
        online=online,
        paper=paper,
        cover_open=cover_open,
        drawer_open=drawer_open,
        error=error,
        reason=reason,
    )


def encode_status(
    *,
    online: bool,
    paper: Paper,
    cover_open: bool,
    drawer_open: bool,
    drawer_open_level: str = "high",
) -> dict[int, int]:
    """The bytes a printer in this state answers to DLE EOT 1–4 (the virtual printer's)."""
    can_print = online and not cover_open and paper != "out"
    pin3_high = drawer_open if drawer_open_level == "high" else not drawer_open
    printer = FIXED_BITS | (0x04 if pin3_high else 0) | (0 if can_print else 0x08)
    offline = FIXED_BITS | (0x04 if cover_open else 0) | (0x20 if paper == "out" else 0)
    paper_byte = FIXED_BITS | {"ok": 0, "near_end": 0x0C, "out": 0x6C}[paper]
    return {1: printer, 2: offline, 3: FIXED_BITS, 4: paper_byte}

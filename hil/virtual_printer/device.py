"""The virtual ESC/POS receipt printer: paper, cover, buffer, status answers, jobs.

It behaves like an Epson TM printer where that matters to a register:

- real-time commands are acted on as the bytes arrive, even while the printer cannot
  print: ``DLE EOT n`` is answered with the status of the moment, ``DLE DC4`` pulses
  the drawer;
- everything else goes into the receive buffer and is printed while the printer can
  print (online, cover closed, paper in); when the paper runs out — also in the middle
  of a job — printing stops and the rest waits in the buffer until paper is loaded;
- a job ends at a cut, at an ESC @ (initialise) after printed content, or when the
  link closes after printed content (printers without a cutter); its bytes and its
  text (and optionally PNG) are stored.

Faults a test can switch while it runs: paper near end / out, paper running out after
N more lines, cover open, offline, a status channel that never answers or answers
garbage, and (for the network server) a disconnect after N more bytes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from drivers.printers.profiles import PrinterProfile
from drivers.printers.status import Paper, encode_status
from hil.escpos.interpreter import Cut, Drawer, Interpreter, Item, Note, TextLine
from hil.escpos.render import render_png, render_text

PAPER_STATES = ("ok", "near_end", "out")
STATUS_MODES = ("normal", "mute", "garbage")
GARBAGE = (0xFF, 0x00, 0x81, 0x5A)  # none has the fixed bits of a status byte


@dataclass
class Faults:
    paper: Paper = "ok"
    cover_open: bool = False
    online: bool = True
    status: str = "normal"  # normal | mute | garbage
    drawer_open: bool = False
    paper_lines: int | None = None  # paper runs out after this many more printed lines
    drawer_closes_after: float | None = None  # seconds until a kicked drawer is shut again
    disconnect_after: int | None = None  # network: drop the link after this many bytes

    def set(self, **changes: Any) -> None:
        for key, value in changes.items():
            if key not in self.__dataclass_fields__:
                raise ValueError(f"unknown printer setting {key!r}")
            if key == "paper" and value not in PAPER_STATES:
                raise ValueError(f"paper must be one of {', '.join(PAPER_STATES)}")
            if key == "status" and value not in STATUS_MODES:
                raise ValueError(f"status must be one of {', '.join(STATUS_MODES)}")
            if key in ("cover_open", "online", "drawer_open") and not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false")
            if key == "drawer_closes_after" and not (
                value is None or (isinstance(value, int | float) and not isinstance(value, bool))
            ):
                raise ValueError(f"{key} must be a number of seconds or null")
            if key in ("paper_lines", "disconnect_after") and not (
                value is None or (isinstance(value, int) and not isinstance(value, bool))
            ):
                raise ValueError(f"{key} must be a number or null")
            setattr(self, key, value)


@dataclass
class Job:
    number: int
    data: bytes
    text: str


@dataclass
class _RealtimeScanner:
    """Finds DLE EOT / DLE ENQ / DLE DC4 in the raw stream, across chunk boundaries."""

    tail: bytes = b""

    def scan(self, data: bytes) -> list[tuple[str, int, int]]:
        buf = self.tail + data
        self.tail = b""
        found: list[tuple[str, int, int]] = []
        i = buf.find(0x10)
        while i >= 0:
            rest = buf[i : i + 5]
            cmd = rest[1] if len(rest) > 1 else None
            need = 2
            if cmd == 0x04:
                need = 4 if len(rest) > 2 and rest[2] in (7, 8) else 3
            elif cmd == 0x14:
                need = 5 if len(rest) > 2 and rest[2] == 1 else 3
            elif cmd == 0x05:
                need = 3
            if len(rest) < need:
                self.tail = rest
                break
            if cmd == 0x04:
                found.append(("eot", rest[2], rest[3] if need == 4 else 0))
            elif cmd == 0x14 and rest[2] == 1:
                found.append(("pulse", rest[3], rest[4]))
            i = buf.find(0x10, i + 1)
        return found


@dataclass
class VirtualPrinter:
    profile: PrinterProfile
    jobs_dir: Path | None = None
    png: bool = False
    on_job: Callable[[Job], None] | None = None
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.interp = Interpreter(
            self.profile.numbering, self.profile.columns, self.profile.columns_font_b
        )
        self.realtime = _RealtimeScanner()
        self.jobs: list[Job] = []
        self.drawer_kicks = 0
        self.bytes_received = 0
        self.status_requests = 0
        self._garbage = 0
        self._drawer_opened_at = 0.0
        self._job_bytes = bytearray()
        self._job_items: list[Item] = []
        self._next_number = 1
        if self.jobs_dir is not None:
            self.jobs_dir.mkdir(parents=True, exist_ok=True)
            numbers = [int(p.stem) for p in self.jobs_dir.glob("*.bin") if p.stem.isdigit()]
            self._next_number = max(numbers, default=0) + 1

    # the host side ---------------------------------------------------------------------
    def receive(self, data: bytes) -> bytes:
        """Bytes from the register; returns the printer's answers (status bytes)."""
        with self.lock:
            self.bytes_received += len(data)
            answers = bytearray()
            for kind, a, _ in self.realtime.scan(data):
                if kind == "eot":
                    answers += self._answer(a)
                elif kind == "pulse" and not self.faults.cover_open:
                    self._kick()
            self.interp.feed(data)
            self._print()
            return bytes(answers)

    def _answer(self, n: int) -> bytes:
        self.status_requests += 1
        mode = self.faults.status
        if mode == "mute" or n not in (1, 2, 3, 4):
            return b""
        self._drawer_shut()
        if mode == "garbage":
            self._garbage += 1
            return bytes([GARBAGE[self._garbage % len(GARBAGE)]])
        f = self.faults
        table = encode_status(
            online=f.online,
            paper=f.paper,
            cover_open=f.cover_open,
            drawer_open=f.drawer_open,
            drawer_open_level=self.profile.drawer_open_level,
        )
        return bytes([table[n]])

    def _kick(self) -> None:
        self.drawer_kicks += 1
        self.faults.drawer_open = True
        self._drawer_opened_at = time.monotonic()

    def _drawer_shut(self) -> None:
        """Someone closes the drawer a while after it sprang open (when so configured)."""
        after = self.faults.drawer_closes_after
        if after is not None and time.monotonic() - self._drawer_opened_at >= after:
            self.faults.drawer_open = False

    # the paper side --------------------------------------------------------------------
    @property
    def can_print(self) -> bool:
        f = self.faults
        return f.online and not f.cover_open and f.paper != "out"

    @property
    def pending_bytes(self) -> int:
        return self.interp.pending_bytes

    def _print(self) -> None:
        while self.can_print:
            consumed = self.interp.step()
            if consumed is None:
                return
            if consumed[:2] == b"\x1b@" and self._has_content():
                self._end_job()
            self._job_bytes += consumed
            for item in self.interp.take_items():
                self._job_items.append(item)
                if isinstance(item, TextLine) and self.faults.paper_lines is not None:
                    self.faults.paper_lines -= 1
                    if self.faults.paper_lines <= 0:
                        self.faults.paper_lines = None
                        self.faults.paper = "out"
                elif isinstance(item, Drawer) and not item.realtime:
                    self._kick()
                elif isinstance(item, Cut):
                    self._end_job()

    def _has_content(self) -> bool:
        return any(not isinstance(i, Drawer | Note) for i in self._job_items)

    def link_closed(self) -> None:
        """The host hung up: what it printed since the last cut is a job (no-cutter models)."""
        with self.lock:
            if self._has_content() and not self.interp.pending_bytes:
                self._end_job()

    def _end_job(self) -> None:
        items, self._job_items = self._job_items, []
        data, self._job_bytes = bytes(self._job_bytes), bytearray()
        text = render_text(items, self.profile.columns, self.interp.font_b_width)
        job = Job(self._next_number, data, text)
        self._next_number += 1
        self.jobs.append(job)
        if self.jobs_dir is not None:
            stem = self.jobs_dir / f"{job.number:06d}"
            stem.with_suffix(".bin").write_bytes(data)
            stem.with_suffix(".txt").write_text(text, encoding="utf-8")
            if self.png:
                p = self.profile
                render_png(items, p.dots, p.columns, p.dpi, out=stem.with_suffix(".png"))
        if self.on_job is not None:
            self.on_job(job)

    # control --------------------------------------------------------------------------
    def set(self, **changes: Any) -> dict[str, Any]:
        with self.lock:
            self.faults.set(**changes)
            self._print()  # paper loaded / cover closed: the buffer prints now
            return self.state()

    def state(self) -> dict[str, Any]:
        with self.lock:
            self._drawer_shut()
            return {
                **asdict(self.faults),
                "can_print": self.can_print,
                "jobs": len(self.jobs),
                "drawer_kicks": self.drawer_kicks,
                "pending_bytes": self.pending_bytes,
                "bytes_received": self.bytes_received,
                "status_requests": self.status_requests,
            }

    def printed_text(self) -> str:
        """Everything on the paper so far: the finished jobs and the part after the last cut."""
        with self.lock:
            partial = render_text(self._job_items, self.profile.columns, self.interp.font_b_width)
            return "".join(job.text for job in self.jobs) + partial

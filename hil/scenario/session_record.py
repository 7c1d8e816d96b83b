"""Record a real session on a bench, so a bug seen in a shop becomes a scenario.

The recorder sits between the register and its devices, forwarding everything
unchanged and keeping a copy in the formats the replay tools read:

- scanner (``SerialTee``): reads the real serial scanner and writes the same bytes to
  a pty that the register's serial driver reads; the bytes and their timing go to
  ``scanner.serial`` (hil/serial_recording.py, what ``scan_recording`` replays);
- printer (``TcpTee`` + a virtual printer as the job splitter): a TCP port the
  register prints to, forwarded to the real network printer; every job up to each
  cut is stored as ``printer/NNNNNN.bin`` (the bytes ``hil render`` reads) and
  ``.txt``; the printer's own status answers go back to the register untouched;
- terminal (``TcpTee``): a TCP port the register's ZVT link uses, forwarded to the
  real terminal; each connection is a ``terminal/session-N.trace`` in the simulator's
  byte-trace format (``hil terminal --replay``).

``scenario_from_session`` then writes ``scenario.toml``: the scanner recording
replayed, the card payments with the outcomes the terminal gave (approve, decline
with its code, abort) and their amounts, the cash tender the receipt shows, and
expectations on the sale's total and the receipt's lines. A session is one sale
(split the recording for more); card attempts are replayed before cash.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from hil.json_lines import server_address
from hil.serial_recording import SerialRecording, write_serial
from hil.tcp_relay import relay
from hil.zvt_sim.trace import ECR_TO_PT, PT_TO_ECR, TraceRecorder, read_trace

Chunk = Callable[[bytes], None]


class TcpTee:
    """Forwards a listening port to ``target``; ``on_open`` gives each connection its
    two copy callbacks (register→device, device→register)."""

    def __init__(self, target: tuple[str, int], on_open: Callable[[], tuple[Chunk, Chunk]]):
        self.target, self.on_open = target, on_open
        self.server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.server = await asyncio.start_server(self._client, host, port)
        return server_address(self.server)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        to_device, to_register = self.on_open()
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(
                relay(reader, up_writer, to_device), relay(up_reader, writer, to_register)
            )
        finally:
            self._writers -= {writer, up_writer}

    def close(self) -> None:
        """Stop listening and drop the connections in flight: a tee that is gone must
        not keep copying (the next run's tee on the same port gets the reconnect)."""
        if self.server is not None:
            self.server.close()
        for writer in list(self._writers):
            writer.close()


def printer_tee(target: tuple[str, int], folder: Path) -> TcpTee:
    """A printer tee whose copy of the register's bytes is cut into jobs."""
    from drivers.printers.profiles import DEFAULT_PROFILE, load_profile
    from hil.virtual_printer.device import VirtualPrinter

    splitter = VirtualPrinter(load_profile(DEFAULT_PROFILE), folder / "printer")

    def to_printer(data: bytes) -> None:
        splitter.receive(data)  # its answers are dropped: the real printer answers

    def on_open() -> tuple[Chunk, Chunk]:
        return to_printer, (lambda data: None)

    return TcpTee(target, on_open)


def terminal_tee(target: tuple[str, int], folder: Path) -> TcpTee:
    """A ZVT tee writing one byte trace per connection."""
    folder = folder / "terminal"
    folder.mkdir(parents=True, exist_ok=True)
    count = [0]

    def on_open() -> tuple[Chunk, Chunk]:
        count[0] += 1
        trace = TraceRecorder(folder / f"session-{count[0]:03d}.trace", "tcp")
        return (lambda d: trace.record(ECR_TO_PT, d)), (lambda d: trace.record(PT_TO_ECR, d))

    return TcpTee(target, on_open)


class SerialTee:
    """The real scanner's serial port in, a pty out (the register reads ``path``)."""

    def __init__(self, port: str, baud: int, terminator: str) -> None:
        self.port, self.baud = port, baud
        self.recording = SerialRecording(hints={"terminator": terminator, "baud": str(baud)})
        self.master, self.slave = os.openpty()
        import tty

        tty.setraw(self.master)
        self.path = os.ttyname(self.slave)
        self._stop = asyncio.Event()

    async def run(self) -> None:
        import serial

        link = serial.Serial(self.port, baudrate=self.baud, timeout=0.05)
        start = time.monotonic()
        try:
            while not self._stop.is_set():
                data = await asyncio.to_thread(link.read, 4096)
                if data:
                    self.recording.chunks.append((time.monotonic() - start, "<", data))
                    os.write(self.master, data)
        finally:
            link.close()

    def stop(self) -> None:
        self._stop.set()

    def save(self, path: Path) -> None:
        path.write_text(write_serial(self.recording), encoding="utf-8")

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


# from the recordings to a scenario ---------------------------------------------------
def _apdus(data: bytes) -> list[bytes]:
    """Split a ZVT byte stream (TCP: no framing) into APDUs by their length fields."""
    out, i = [], 0
    while i + 3 <= len(data):
        length, head = data[i + 2], 3
        if length == 0xFF and i + 5 <= len(data):
            length, head = int.from_bytes(data[i + 3 : i + 5], "little"), 5
        out.append(data[i : i + head + length])
        i += head + length
    return out


def _bcd(data: bytes) -> int:
    return int(data.hex()) if data.hex().isdigit() else 0


def card_attempts(trace_file: Path) -> list[tuple[str, int]]:
    """(outcome spec, amount) of each authorization (06 01) in a terminal trace: the
    terminal's answers after it (04 0F with result code 27, or 06 1E abort) count."""
    attempts: list[tuple[str, int]] = []
    amount: int | None = None  # an authorization waiting for its outcome
    for event in read_trace(trace_file).events:
        for apdu in _apdus(event.data):
            if event.direction == ECR_TO_PT:
                if apdu[:2] == b"\x06\x01" and len(apdu) >= 10 and apdu[3] == 4:
                    amount = _bcd(apdu[4:10])
                continue
            if amount is None:
                continue
            if apdu[:2] == b"\x04\x0f" and len(apdu) > 4 and apdu[3] == 0x27:
                code = apdu[4]
                attempts.append(("approve" if code == 0 else f"decline:{code:02X}", amount))
                amount = None
            elif apdu[:2] == b"\x06\x1e":
                attempts.append(("abort", amount))
                amount = None
    return attempts


MONEY = r"(-?\d+)[.,](\d{2})"


def _minor(match: re.Match[str]) -> int:
    units, cents = match.group(1), match.group(2)
    sign = -1 if units.startswith("-") else 1
    return sign * (abs(int(units)) * 100 + int(cents))


def scenario_from_session(folder: Path, name: str | None = None) -> str:
    """scenario.toml for the session recorded in ``folder`` (see the module doc)."""
    from hil.scenario.capture import _toml_value

    steps: list[dict[str, object]] = []
    if (folder / "scanner.serial").exists():
        steps.append({"scan_recording": "scanner.serial", "scanner": "counter"})
    for trace in sorted((folder / "terminal").glob("*.trace")):
        for outcome, amount in card_attempts(trace):
            steps.append({"pay_card": outcome, "amount_minor": amount})
            if outcome.startswith("decline"):
                steps.append({"expect_error": "card_declined"})
            elif outcome == "abort":
                steps.append({"expect_error": "card_aborted"})
    receipts = [p.read_text(encoding="utf-8") for p in sorted((folder / "printer").glob("*.txt"))]
    receipt = next((r for r in receipts if "TOTAL" in r), None)
    expect_receipt: list[str] = []
    if receipt is not None:
        cash = re.search(rf"^Cash\s+{MONEY}\s*$", receipt, re.M)
        if cash:
            steps.append({"pay_cash": _minor(cash)})
        total = re.search(rf"^TOTAL\b.*?{MONEY}\s*$", receipt, re.M)
        expect: dict[str, object] = {"status": "completed"}
        if total:
            expect["total_minor"] = _minor(total)
        steps.append({"expect_sale": expect})
        lines = re.findall(rf"^(\S.*?\s{MONEY} [A-Z])$", receipt, re.M)
        expect_receipt = [line[0] for line in lines]
        if total:
            expect_receipt.append(total.group(0).strip())
        steps.append({"expect_receipt": {"contains": expect_receipt}})
    header = [
        f"name = {_toml_value(name or f'recorded session {folder.name}')}",
        f"description = {_toml_value('Recorded on a bench by hil record-session.')}",
        'tiers = ["inprocess", "virtual"]',
        "timeout_s = 120",
        "",
        "[setup]",
        "shift_float_minor = 0",
        "",
    ]
    body: list[str] = []
    for step in steps:
        body.append("[[step]]")
        body += [f"{key} = {_toml_value(value)}" for key, value in step.items()]
        body.append("")
    return "\n".join(header + body)

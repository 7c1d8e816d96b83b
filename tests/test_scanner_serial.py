"""Serial scanners over real ptys: framing, ACK/NAK, noise, unplug and reconnect, fuzz."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.scanners.events import ScanEvent
from drivers.scanners.framing import ACK, NAK, LineFramer
from drivers.scanners.manager import ScannerManager
from drivers.scanners.serial_scanner import SerialScanner, SerialSettings


class Pty:
    """A pty pair whose slave is reachable through a stable symlink (like by-id)."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.plug()

    def plug(self) -> None:
        self.master, slave = os.openpty()
        name = os.ttyname(slave)
        os.close(slave)
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        self.link.symlink_to(name)

    def unplug(self) -> None:
        os.close(self.master)
        self.link.unlink()

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def read_replies(self) -> bytes:
        os.set_blocking(self.master, False)
        try:
            return os.read(self.master, 100)
        except BlockingIOError:
            return b""


async def _collect(scanner: SerialScanner, count: int, timeout: float = 10) -> list[ScanEvent]:
    out: list[ScanEvent] = []

    async def run() -> None:
        async for scan in scanner.scans():
            out.append(scan)
            if len(out) >= count:
                return

    await asyncio.wait_for(run(), timeout)
    return out


def test_framer_terminators_and_noise() -> None:
    framer = LineFramer("crlf")
    assert framer.feed(b"4006381333931\r", 0).scans == []
    assert framer.feed(b"\nBAG\r\n", 0).scans == ["4006381333931", "BAG"]
    noisy = LineFramer("cr", ack_nak=True)
    result = noisy.feed(b"\x00\x07junk\rGOOD1\r", 0)
    assert result.scans == ["GOOD1"] and result.replies == [NAK, ACK] and noisy.noise == 1
    gs1 = LineFramer("lf").feed(b"]C10104012345000009\x1d10A\n", 0)
    assert gs1.scans == ["]C10104012345000009\x1d10A"]
    timed = LineFramer("none", timeout_s=0.1)
    assert timed.feed(b"123", 0.0).scans == []
    assert timed.feed(b"45", 0.01).scans == []
    assert timed.feed(b"999", 0.5).scans == ["12345"]
    assert timed.flush(1.0).scans == ["999"]
    partial = LineFramer("cr")
    partial.feed(b"40063", 0)
    assert partial.flush(5.0).scans == [] and partial.noise == 1


def test_serial_scanner_over_a_pty_with_ack_nak_and_reconnect() -> None:
    async def scenario() -> None:
        folder = Path(tempfile.mkdtemp())
        pty = Pty(folder / "scanner")
        scanner = SerialScanner(
            "front-serial",
            SerialSettings(port=str(pty.link), baud=115200, ack_nak=True, backoff_min_s=0.05),
        )
        task = asyncio.ensure_future(_collect(scanner, 3, timeout=15))
        await asyncio.sleep(0.3)
        pty.send(b"4006381333931\r")
        await asyncio.sleep(0.2)
        pty.send(b"\x01\x02\r")  # noise → NAK, no scan
        await asyncio.sleep(0.2)
        assert pty.read_replies() == ACK + NAK
        pty.send(b"4001686")  # half a scan, then the cable is pulled
        await asyncio.sleep(0.1)
        pty.unplug()
        await asyncio.sleep(0.5)
        pty.plug()  # plugged back (a new tty behind the same by-id link)
        await asyncio.sleep(0.6)
        pty.send(b"BAG\r")
        await asyncio.sleep(0.2)
        pty.send(b"2100002012341\r")
        scans = await task
        scanner.stop()
        assert [s.data for s in scans] == ["4006381333931", "BAG", "2100002012341"]
        assert {s.scanner_id for s in scans} == {"front-serial"}
        assert scanner.reconnects >= 1
        assert scanner.framer.noise >= 1

    asyncio.run(scenario())


def test_several_scanners_at_once_each_scan_says_which() -> None:
    async def scenario() -> None:
        folder = Path(tempfile.mkdtemp())
        a, b = Pty(folder / "a"), Pty(folder / "b")
        got: list[tuple[str, str]] = []
        done = asyncio.Event()

        async def on_scan(scan: ScanEvent) -> None:
            got.append((scan.scanner_id, scan.data))
            if len(got) == 4:
                done.set()

        manager = ScannerManager(on_scan)
        manager.add(SerialScanner("left", SerialSettings(port=str(a.link))))
        manager.add(SerialScanner("right", SerialSettings(port=str(b.link), terminator="lf")))
        await asyncio.sleep(0.3)
        a.send(b"111\r")
        b.send(b"222\n")
        a.send(b"333\r")
        b.send(b"444\n")
        await asyncio.wait_for(done.wait(), 10)
        await manager.stop()
        assert sorted(got) == [("left", "111"), ("left", "333"), ("right", "222"), ("right", "444")]

    asyncio.run(scenario())


@given(chunks=st.lists(st.binary(max_size=40), max_size=40),
       terminator=st.sampled_from(["cr", "lf", "crlf", "none"]))  # fmt: skip
@settings(max_examples=400, deadline=None)
def test_fuzz_framer_never_crashes_or_emits_garbage(chunks: list[bytes], terminator: str) -> None:
    framer = LineFramer(terminator, ack_nak=True)
    scans: list[str] = []
    for i, chunk in enumerate(chunks):
        scans += framer.feed(chunk, i * 0.05).scans
    scans += framer.flush(len(chunks) * 0.05 + 5).scans
    for scan in scans:
        assert scan and len(scan) <= 512
        assert all(ord(c) >= 0x20 or ord(c) == 0x1D for c in scan)
        assert "\x7f" not in scan


def test_hil_record_captures_a_serial_scanner_that_replays(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys
    import time

    bin_dir = Path(sys.executable).parent
    master, slave = os.openpty()
    port = os.ttyname(slave)
    out = tmp_path / "shop.serial"
    proc = subprocess.Popen(
        [str(bin_dir / "hil"), "record", "--serial", port, "--seconds", "2", "-o", str(out)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(0.8)
    os.write(master, b"4006381333931\r")
    os.write(master, b"BAG\r")
    assert proc.wait(20) == 0, proc.stderr.read() if proc.stderr else ""
    os.close(master)
    os.close(slave)
    replay = subprocess.run(
        [str(bin_dir / "hil"), "replay-scanner", str(out)], capture_output=True, text=True
    )
    assert replay.stdout.splitlines() == ["4006381333931", "BAG"], replay.stderr
    assert json.dumps(replay.stdout)  # printable


def test_hil_record_evdev_says_what_is_missing(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [str(Path(sys.executable).parent / "hil"), "record", "--evdev", "/dev/input/event99",
         "--seconds", "1", "-o", str(tmp_path / "x.evemu")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert "cannot open input device /dev/input/event99" in result.stderr

"""Serial scanners over real ptys: framing, line errors, ACK/NAK, noise, unplug and
reconnect, several scanners at once, recording; and the framer fuzzed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.scanners.events import ScanEvent
from drivers.scanners.framing import ACK, MAX_FRAME, NAK, TERMINATORS, LineFramer
from drivers.scanners.manager import ScannerManager
from drivers.scanners.serial_scanner import SerialScanner, SerialSettings
from tests.conftest import VENV_BIN


class Pty:
    """A pty pair whose tty side is reachable through a stable symlink (like by-id)."""

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


async def _run(scanner: SerialScanner, out: list[ScanEvent]) -> None:
    async for scan in scanner.scans():
        out.append(scan)


async def _until(condition: object, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_framer_terminators_and_noise(caplog: pytest.LogCaptureFixture) -> None:
    framer = LineFramer("crlf")
    assert framer.feed(b"4006381333931\r", 0).scans == []
    assert framer.feed(b"\nBAG\r\n", 0).scans == ["4006381333931", "BAG"]
    noisy = LineFramer("cr", ack_nak=True)
    with caplog.at_level(logging.WARNING):
        result = noisy.feed(b"\x00\x07junk\rGOOD1\r", 0)
    assert result.scans == ["GOOD1"] and result.replies == [NAK, ACK] and noisy.noise == 1
    assert "scanner noise: frame of 6 bytes dropped (control byte 0x00)" in caplog.text
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
    assert LineFramer("cr").feed(b"\x85C1 control\r", 0).scans == []  # C1 controls too


def test_a_damaged_frame_is_dropped_whole_never_its_tail() -> None:
    # PARMRK: FF 00 x marks a byte received with a parity/framing error
    marked = LineFramer("cr", ack_nak=True, parmrk=True)
    result = marked.feed(b"40063\xff\x00\x318133\r", 0)
    assert result.scans == [] and result.replies == [NAK] and marked.noise == 1
    assert marked.feed(b"BAG\r", 0.1).scans == ["BAG"]
    # the mark split across two reads, and a real 0xFF (doubled by the kernel)
    split = LineFramer("cr", parmrk=True)
    assert split.feed(b"123\xff", 0).scans == [] and split.feed(b"\x00", 0).scans == []
    assert split.feed(b"X45\rAB\xff", 0).scans == [] and split.noise == 1
    assert split.feed(b"\xffC\r", 0).scans == ["ABÿC"]
    # the port reports the error out of band
    oob = LineFramer("lf")
    oob.feed(b"40016", 0)
    assert oob.framing_error().replies == [] and oob.feed(b"86301265\nOK1\n", 0).scans == ["OK1"]
    # over-long: the whole run up to the terminator goes
    long = LineFramer("cr")
    assert long.feed(b"1" * (MAX_FRAME + 10), 0).scans == [] and long.noise == 1
    assert long.feed(b"TAIL\rBAG\r", 0).scans == ["BAG"] and long.noise == 1
    # the link lost mid-frame: the next connection starts clean
    lost = LineFramer("cr")
    lost.feed(b"40016", 0)
    lost.reset("unplugged")
    assert lost.noise == 1 and lost.feed(b"BAG\r", 1).scans == ["BAG"]
    # terminator "none": damage spoils the frame up to the pause
    none = LineFramer("none", timeout_s=0.1, parmrk=True)
    none.feed(b"4006\xff\x00\x00", 0.0)  # a break
    assert none.feed(b"381333931", 0.01).scans == [] and none.flush(0.5).scans == []
    assert none.feed(b"BAG", 1.0).scans == [] and none.flush(1.5).scans == ["BAG"]


# A stream of frames, some damaged, chunked at arbitrary places.
FRAME_TEXT = st.text(alphabet="0123456789ABCXYZabc-./ \x1dÿé", min_size=1, max_size=30).filter(
    lambda t: t.strip("\r\n") == t
)
SEGMENT = st.one_of(
    st.tuples(st.just("frame"), FRAME_TEXT, st.integers(0, 40)),
    st.tuples(st.just("noise"), FRAME_TEXT, st.integers(0, 40)),  # a control byte inside
    st.tuples(st.just("error"), FRAME_TEXT, st.integers(0, 40)),  # a parity/framing error
    st.tuples(st.just("break"), FRAME_TEXT, st.integers(0, 40)),  # a line break condition
    st.tuples(st.just("long"), FRAME_TEXT, st.integers(0, 40)),  # over MAX_FRAME
)


@given(segments=st.lists(SEGMENT, max_size=10), cuts=st.lists(st.integers(1, 60), max_size=40),
       terminator=st.sampled_from(sorted(TERMINATORS)), ack_nak=st.booleans())  # fmt: skip
@settings(max_examples=400, deadline=None)
def test_fuzz_framer_exactly_the_whole_frames_come_out(
    segments: list[tuple[str, str, int]], cuts: list[int], terminator: str, ack_nak: bool
) -> None:
    """Whatever the damage and wherever the reads split the bytes, exactly the intact
    frames come out, in order, each answered ACK, each damaged frame answered NAK once;
    no part of a damaged frame ever comes out."""
    term = TERMINATORS[terminator]
    framer = LineFramer(terminator, timeout_s=0.1, ack_nak=ack_nak, parmrk=True)
    expected, replies, got, got_replies = [], [], [], []
    now = 0.0
    for kind, text, at in segments:
        i = at % (len(text) + 1)
        head, tail = (part.encode("latin-1").replace(b"\xff", b"\xff\xff")  # as the kernel
                      for part in (text[:i], text[i:]))  # marks a real 0xFF  # fmt: skip
        damage = {"noise": b"\x07", "error": b"\xff\x00\x58",  # "X" with a framing error
                  "break": b"\xff\x00\x00", "long": b"9" * MAX_FRAME}  # fmt: skip
        wire = head + damage.get(kind, b"") + tail
        if kind == "frame":
            expected.append(text)
        replies.append(ACK if kind == "frame" else NAK)
        data = wire + term
        pos = 0
        for cut in [*cuts, len(data)]:  # reads split the frame anywhere
            if pos >= len(data):
                break
            result = framer.feed(data[pos : pos + cut], now)
            got += result.scans
            got_replies += result.replies
            pos += cut
            now += 0.001
        now += 0.5  # the pause between two scans
        result = framer.flush(now)
        got += result.scans
        got_replies += result.replies
    assert got == expected
    assert got_replies == (replies if ack_nak else [])
    assert framer.noise == len(segments) - len(expected)


def test_serial_scanner_over_a_pty_with_line_errors_ack_nak_and_reconnect() -> None:
    async def scenario() -> None:
        folder = Path(tempfile.mkdtemp())
        pty = Pty(folder / "scanner")
        scanner = SerialScanner(
            "front-serial",
            SerialSettings(port=str(pty.link), baud=115200, ack_nak=True, backoff_min_s=0.05),
        )
        scans: list[ScanEvent] = []
        task = asyncio.create_task(_run(scanner, scans))
        await asyncio.wait_for(scanner.listening.wait(), 5)
        pty.send(b"4006381333931\r")
        pty.send(b"\x01\x02\r")  # noise → NAK, no scan
        pty.send(b"AB\xffC\r")  # a real 0xFF byte: the kernel doubles it (PARMRK), we undo it
        await _until(lambda: len(scans) == 2)
        await _until(lambda: len(replies := pty.read_replies()) > 0 and replies == ACK + NAK + ACK)
        pty.send(b"4001686")  # half a scan, then the cable is pulled
        await _until(lambda: scanner.framer.received >= 17 + 4 + 7)
        pty.unplug()
        await _until(lambda: not scanner.listening.is_set())
        pty.plug()  # plugged back (a new tty behind the same by-id link)
        await asyncio.wait_for(scanner.listening.wait(), 5)
        pty.send(b"BAG\r")
        pty.send(b"2100002012341\r")
        await _until(lambda: len(scans) == 4)
        scanner.stop()
        await asyncio.wait_for(task, 5)
        assert [s.data for s in scans] == ["4006381333931", "ABÿC", "BAG", "2100002012341"]
        assert {(s.scanner_id, s.source, s.device) for s in scans} == {
            ("front-serial", "serial", str(pty.link))
        }
        assert scanner.reconnects == 1
        assert scanner.framer.noise == 2  # the control bytes, the half scan

    asyncio.run(scenario())


def test_bytes_sent_before_the_port_was_opened_are_not_a_scan() -> None:
    async def scenario() -> list[str]:
        master, slave = os.openpty()
        os.write(master, b"0063813339")  # the tail of a scan, before anyone listened
        scanner = SerialScanner("s", SerialSettings(port=os.ttyname(slave)))
        scans: list[ScanEvent] = []
        task = asyncio.create_task(_run(scanner, scans))
        await asyncio.wait_for(scanner.listening.wait(), 5)
        os.write(master, b"BAG\r")
        await _until(lambda: len(scans) >= 1)
        scanner.stop()
        await asyncio.wait_for(task, 5)
        os.close(master)
        os.close(slave)
        return [s.data for s in scans]

    assert asyncio.run(scenario()) == ["BAG"]  # not "0063813339BAG"


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
        left = SerialScanner("left", SerialSettings(port=str(a.link)))
        right = SerialScanner("right", SerialSettings(port=str(b.link), terminator="lf"))
        manager.add(left)
        manager.add(right)
        with pytest.raises(ValueError, match="two scanners named 'left'"):
            manager.add(SerialScanner("left", SerialSettings(port=str(b.link))))
        await asyncio.wait_for(left.listening.wait(), 5)
        await asyncio.wait_for(right.listening.wait(), 5)
        a.send(b"111\r")
        b.send(b"222\n")
        a.send(b"333\r")
        b.send(b"444\n")
        await asyncio.wait_for(done.wait(), 10)
        await manager.stop()
        assert sorted(got) == [("left", "111"), ("left", "333"), ("right", "222"), ("right", "444")]

    asyncio.run(scenario())


def test_a_profile_with_aim_on_drops_scans_without_an_identifier() -> None:
    async def scenario() -> tuple[list[str], int]:
        master, slave = os.openpty()
        got: list[str] = []

        async def on_scan(scan: ScanEvent) -> None:
            got.append(scan.data)

        manager = ScannerManager(on_scan)
        scanner = SerialScanner("aim", SerialSettings(port=os.ttyname(slave)))
        manager.add(scanner, aim=True)
        await asyncio.wait_for(scanner.listening.wait(), 5)
        os.write(master, b"]E04006381333931\r06381333931\r]A0BAG-1\r")  # middle: start lost
        await _until(lambda: len(got) == 2 and manager.rejected["aim"] == 1)
        await manager.stop()
        os.close(master)
        os.close(slave)
        return got, manager.rejected["aim"]

    assert asyncio.run(scenario()) == (["]E04006381333931", "]A0BAG-1"], 1)


def test_hil_record_captures_a_serial_scanner_that_replays(tmp_path: Path) -> None:
    import subprocess
    import time

    master, slave = os.openpty()
    port = os.ttyname(slave)
    out = tmp_path / "shop.serial"
    proc = subprocess.Popen(
        [str(VENV_BIN / "hil"), "record", "--serial", port, "--seconds", "2", "-o", str(out)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(0.8)
    os.write(master, b"4006381333931\r")
    os.write(master, b"BAG\r")
    assert proc.wait(20) == 0, proc.stderr.read() if proc.stderr else ""
    os.close(master)
    os.close(slave)
    replay = subprocess.run(
        [str(VENV_BIN / "hil"), "replay-scanner", str(out)], capture_output=True, text=True
    )
    assert replay.stdout.splitlines() == ["4006381333931", "BAG"], replay.stderr
    assert "(pty " in replay.stderr  # went through the serial driver on a pty


def test_hil_record_evdev_says_what_is_missing(tmp_path: Path) -> None:
    import subprocess

    result = subprocess.run(
        [str(VENV_BIN / "hil"), "record", "--evdev", "/dev/input/event99",
         "--seconds", "1", "-o", str(tmp_path / "x.evemu")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert "cannot open input device /dev/input/event99" in result.stderr


def test_a_port_glob_names_exactly_one_device(tmp_path: Path) -> None:
    """udev names serial scanners per port or serial (never one shared name), so a
    profile can name "the one Honeywell" by a glob; two matches are refused by name."""
    import serial

    from drivers.scanners.serial_scanner import resolve_port

    pattern = str(tmp_path / "serial-by-id" / "0c2e:*")
    (tmp_path / "serial-by-id").mkdir()
    with pytest.raises(serial.SerialException, match="no device matches"):
        resolve_port(pattern)
    first = tmp_path / "serial-by-id" / "0c2e:0b61-17011B4C32-if00"
    first.touch()
    assert resolve_port(pattern) == str(first)
    second = tmp_path / "serial-by-id" / "0c2e:0b61-17011B4C99-if00"
    second.touch()
    with pytest.raises(serial.SerialException, match=r"2 devices match .*17011B4C32.*17011B4C99"):
        resolve_port(pattern)
    assert resolve_port("/dev/ttyACM0") == "/dev/ttyACM0"  # a plain path is taken as is

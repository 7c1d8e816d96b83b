"""The evdev driver: which devices it takes, several at once, loss and return, and the
uinput tier with real kernel input devices.

This host has no /dev/input and no /dev/uinput (see the machine notes). So the
device-matching rules are checked on the names and ids real keyboards and scanners
report, and the driver's supervision (several devices per profile, a device lost
and found again, a device opened mid-scan) runs on devices whose event stream is a
pipe carrying the kernel's own 24-byte ``input_event`` records. What those cannot
show — the kernel matching, EVIOCGRAB, timestamps from the kernel — is the uinput
test's job; it runs wherever /dev/uinput exists (a developer machine, the QEMU tier)
and says plainly when it cannot run.
"""

from __future__ import annotations

import asyncio
import errno
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.scanners.evdev_source import EVENT, DeviceMatch, EvdevScanner, raw_events
from drivers.scanners.events import ScanEvent
from drivers.scanners.keymaps import get_layout, keystrokes
from drivers.scanners.wedge import RawEvent, WedgeSettings
from tests.conftest import ROOT, VENV_BIN

# (path, name, vendor, product) as real machines report them
KEYBOARD = ("/dev/input/event3", "AT Translated Set 2 keyboard", 0x0001, 0x0001)
USB_KEYBOARD = ("/dev/input/event5", "Logitech USB Keyboard", 0x046D, 0xC31C)
HONEYWELL = ("/dev/input/event7", "Honeywell Imaging & Mobility 1900", 0x0C2E, 0x0B61)
QEMU_KBD = ("/dev/input/event2", "QEMU QEMU USB Keyboard", 0x0627, 0x0001)


def test_only_the_profiles_device_is_taken_never_a_keyboard(tmp_path: Path) -> None:
    by_usb = DeviceMatch(usb_id="0c2e:0b61")
    assert by_usb.matches(*HONEYWELL)
    assert not by_usb.matches(*KEYBOARD) and not by_usb.matches(*USB_KEYBOARD)
    by_name = DeviceMatch(name="QEMU QEMU USB Keyboard")
    assert by_name.matches(*QEMU_KBD) and not by_name.matches(*USB_KEYBOARD)
    # by-id: the stable symlink udev makes; a different node is not it
    node = tmp_path / "event7"
    node.touch()
    link = tmp_path / "usb-Honeywell_1900-event-kbd"
    link.symlink_to(node)
    by_id = DeviceMatch(by_id=str(link))
    assert by_id.matches(str(node), *HONEYWELL[1:])
    assert not by_id.matches(str(tmp_path / "event3"), *KEYBOARD[1:])
    assert not DeviceMatch(by_id=str(tmp_path / "gone")).matches(str(node), *HONEYWELL[1:])
    both = DeviceMatch(usb_id="0c2e:0b61", name="Other name")  # every rule given must hold
    assert not both.matches(*HONEYWELL)
    with pytest.raises(ValueError, match="usb_id"):
        DeviceMatch(usb_id="0c2e-0b61")
    with pytest.raises(ValueError, match="needs"):
        DeviceMatch()


def test_the_qemu_profile_matches_the_guest_keyboard_with_the_us_layout() -> None:
    from drivers.scanners.profiles import build_scanner, load_profile

    scanner = build_scanner(load_profile("qemu-usb-kbd-us"), "qemu")
    assert isinstance(scanner, EvdevScanner)
    assert scanner.match.matches(*QEMU_KBD) and not scanner.match.matches(*KEYBOARD)
    assert scanner.settings.layout == "us" and scanner.settings.suffix == "enter"


def test_raw_kernel_records_decode() -> None:
    data = EVENT.pack(1700000000, 5, 1, 30, 1) + EVENT.pack(1700000000, 9, 0, 0, 0) + b"\x00" * 7
    assert list(raw_events(data)) == [
        RawEvent(1700000000, 5, 1, 30, 1),
        RawEvent(1700000000, 9, 0, 0, 0),
    ]  # a torn record at the end is not an event


class PipeDevice:
    """An input device seen through its event stream only: kernel input_event records
    on a pipe, stamped with the wall clock as the kernel stamps them. Closing the
    write end is the device being unplugged (reads fail with ENODEV)."""

    def __init__(self, path: str, name: str) -> None:
        self.path, self.name = path, name
        self.read_fd, self.write_fd = os.pipe()
        self.grabbed = False

    def grab(self) -> None:
        self.grabbed = True

    def close(self) -> None:
        if self.read_fd >= 0:
            os.close(self.read_fd)
            self.read_fd = -1

    async def async_read_loop(self) -> AsyncIterator[RawEvent]:
        loop = asyncio.get_running_loop()
        while True:
            ready = loop.create_future()
            loop.add_reader(self.read_fd, ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_reader(self.read_fd)
            data = os.read(self.read_fd, 24 * 64)
            if not data:
                raise OSError(errno.ENODEV, "No such device")
            for event in raw_events(data):
                yield event

    def type(self, text: str, enter: bool = True) -> None:
        records = []
        for code, shift, _ in keystrokes(text, get_layout("us")):
            for key, value in (
                ([(42, 1)] if shift else []) + [(code, 1), (code, 0)] + ([(42, 0)] if shift else [])
            ):
                now = time.time()
                records.append(EVENT.pack(int(now), int(now % 1 * 1e6), 1, key, value))
        if enter:
            now = time.time()
            records += [EVENT.pack(int(now), int(now % 1 * 1e6), 1, 28, v) for v in (1, 0)]
        os.write(self.write_fd, b"".join(records))

    def unplug(self) -> None:
        os.close(self.write_fd)


class Bench:
    """The devices plugged in right now, as the driver's finder sees them."""

    def __init__(self) -> None:
        self.plugged: dict[str, PipeDevice] = {}

    def plug(self, path: str, name: str) -> PipeDevice:
        self.plugged[path] = PipeDevice(path, name)
        return self.plugged[path]

    def find(self, match: DeviceMatch, skip: frozenset[str]) -> list[PipeDevice]:
        return [
            d for p, d in self.plugged.items() if p not in skip and match.matches(p, d.name, 0, 0)
        ]


async def _until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_several_devices_one_profile_each_scan_says_which_and_unplugged_ones_return() -> None:
    async def scenario() -> None:
        bench = Bench()
        left = bench.plug("/dev/input/event7", "Scanner")
        keyboard = bench.plug("/dev/input/event3", "AT Translated Set 2 keyboard")
        scanner = EvdevScanner("wedge", DeviceMatch(name="Scanner"), WedgeSettings(),
                               backoff_min_s=0.02, rescan_s=0.05, finder=bench.find)  # fmt: skip
        got: list[ScanEvent] = []

        async def read() -> None:
            async for scan in scanner.scans():
                got.append(scan)

        task = asyncio.create_task(read())
        await _until(lambda: "/dev/input/event7" in scanner.decoders)
        right = bench.plug("/dev/input/event8", "Scanner")  # a second one, plugged later
        await _until(lambda: "/dev/input/event8" in scanner.decoders)
        await asyncio.sleep(0.08)  # past the grab instant: a key now starts a clean scan
        keyboard.type("4006381333931")  # typed on the real keyboard: never read
        left.type("4006381333931")
        right.type("BAG")
        await _until(lambda: len(got) >= 2)
        assert left.grabbed and right.grabbed and not keyboard.grabbed
        assert sorted((s.device, s.data) for s in got) == [
            ("/dev/input/event7", "4006381333931"), ("/dev/input/event8", "BAG")
        ]  # fmt: skip
        assert {s.scanner_id for s in got} == {"wedge"}
        # Unplugged mid-scan: the half scan is gone with it; plugged back: read again.
        left.type("40016", enter=False)
        left.unplug()
        del bench.plugged["/dev/input/event7"]
        await asyncio.sleep(0.1)
        again = bench.plug("/dev/input/event7", "Scanner")
        await _until(lambda: again.grabbed)
        await asyncio.sleep(0.08)
        again.type("5449000000996")
        await _until(lambda: len(got) >= 3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert [s.data for s in got][2:] == ["5449000000996"]

    asyncio.run(scenario())


def test_a_device_opened_in_the_middle_of_a_scan_does_not_yield_its_tail() -> None:
    async def scenario() -> None:
        bench = Bench()
        device = bench.plug("/dev/input/event9", "Scanner")
        device.type("4006381333931")  # in flight while the driver opens the device
        scanner = EvdevScanner("wedge", DeviceMatch(name="Scanner"), finder=bench.find)
        got: list[ScanEvent] = []

        async def read() -> None:
            async for scan in scanner.scans():
                got.append(scan)

        task = asyncio.create_task(read())
        await asyncio.wait_for(scanner.listening.wait(), 5)
        await asyncio.sleep(0.1)
        device.type("BAG")
        await _until(lambda: len(got) >= 1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert [s.data for s in got] == ["BAG"]

    asyncio.run(scenario())


def test_uinput_tier_real_kernel_devices() -> None:
    """The evdev driver on real kernel input devices: a uinput "scanner" (0c2e:0b61) and
    a uinput "keyboard" type at scanner speed at the same time; only the scanner is
    grabbed and read. Unplugged and plugged again, it is read again. Then the CLI's
    uinput tier replays a recording through the same driver."""
    if not Path("/dev/uinput").exists():
        pytest.skip(
            "no /dev/uinput on this kernel (no uinput module here): the uinput tier cannot "
            "run on this machine; it runs where the kernel has uinput (QEMU tier)"
        )
    import json
    import subprocess

    from evdev import UInput, ecodes

    def uinput(name: str, vendor: int, product: int) -> UInput:
        return UInput({ecodes.EV_KEY: list(range(1, 120))}, name=name, vendor=vendor,
                      product=product, bustype=ecodes.BUS_USB)  # fmt: skip

    def type_on(device: UInput, text: str) -> None:
        for code, shift, _ in keystrokes(text, get_layout("us")):
            for key, value in (
                ([(42, 1)] if shift else []) + [(code, 1), (code, 0)] + ([(42, 0)] if shift else [])
            ):
                device.write(ecodes.EV_KEY, key, value)
                device.syn()
        for value in (1, 0):
            device.write(ecodes.EV_KEY, 28, value)
            device.syn()

    async def scenario() -> list[ScanEvent]:
        match = DeviceMatch(usb_id="0c2e:0b61")
        scanner = EvdevScanner("wedge", match, WedgeSettings(), backoff_min_s=0.05,
                               backoff_max_s=0.2, rescan_s=0.1)  # fmt: skip
        got: list[ScanEvent] = []

        async def read() -> None:
            async for scan in scanner.scans():
                got.append(scan)

        human = uinput("HIL human keyboard", 0x046D, 0xC31C)
        device = uinput("HIL uinput scanner", 0x0C2E, 0x0B61)
        task = asyncio.create_task(read())
        try:
            await asyncio.wait_for(scanner.listening.wait(), 10)
            await asyncio.sleep(0.1)
            type_on(human, "1234567")
            type_on(device, "4006381333931")
            type_on(human, "7654321")
            await _until(lambda: len(got) >= 1)
            device.close()  # unplugged
            await _until(lambda: not scanner.listening.is_set())
            device = uinput("HIL uinput scanner", 0x0C2E, 0x0B61)  # plugged back
            await asyncio.wait_for(scanner.listening.wait(), 10)
            await asyncio.sleep(0.1)
            type_on(device, "BAG")
            await _until(lambda: len(got) >= 2)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            device.close()
            human.close()
        return got

    got = asyncio.run(scenario())
    assert [s.data for s in got] == ["4006381333931", "BAG"]
    recording = ROOT / "hil" / "recordings" / "scanners" / "us-enter.evemu"
    result = subprocess.run(
        [str(VENV_BIN / "hil"), "replay-scanner", str(recording), "--tier", "uinput"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    expected = json.loads(recording.with_name("us-enter.expected.json").read_text())
    assert result.stdout.splitlines() == expected

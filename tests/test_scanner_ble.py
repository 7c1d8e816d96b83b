"""BLE scanners: the driver (through bleak) against a real BLE peripheral.

The peripheral is a bumble device serving the Nordic UART Service (or an HM-10
style FFE0/FFE1 service) on bumble's simulated radio; the driver's side is bleak
with the bumble backend, talking HCI over TCP on loopback to its own controller on
that radio — GATT discovery, CCCD writes, notifications chunked to the MTU, link
loss, all real. Only the radio is simulated; this host has no Bluetooth.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from drivers.scanners.ble import (
    NUS_TX,
    BleScanner,
    BleSettings,
    BluetoothUnavailable,
    no_stack_error,
)
from drivers.scanners.events import ScanEvent
from drivers.scanners.manager import ScannerManager
from drivers.scanners.profiles import build_scanner, load_profile, requires_aim
from drivers.scanners.serial_scanner import SerialScanner, SerialSettings, backoff
from hil.ble_rig import VirtualBleLink, VirtualBleScanner
from tests.conftest import VENV_BIN

GS1 = "]C10104012345000009\x1d10LOT-7\x1d3103000250"
FFE0, FFE1 = "0000ffe0-0000-1000-8000-00805f9b34fb", "0000ffe1-0000-1000-8000-00805f9b34fb"


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def _with_rig(body: Callable[[VirtualBleLink, str], Awaitable[None]]) -> None:
    link = VirtualBleLink()
    try:
        spec = await link.serve_controller()
        await body(link, spec)
    finally:
        await link.close()


async def _collect(scanner: BleScanner, out: list[ScanEvent]) -> None:
    async for scan in scanner.scans():
        out.append(scan)


async def _subscribed(
    link: VirtualBleLink, spec: str, backoff_max_s: float
) -> tuple[VirtualBleScanner, BleScanner, list[ScanEvent], asyncio.Task[None]]:
    """A virtual scanner, and the driver reading it (quick backoff), once subscribed."""
    peripheral = VirtualBleScanner(link, name="Counter BLE")
    await peripheral.start()
    settings = BleSettings(name="Counter BLE", transport=f"bumble:{spec}", scan_timeout_s=0.2,
                           backoff_min_s=0.05, backoff_max_s=backoff_max_s)  # fmt: skip
    scanner = BleScanner("ble-front", settings)
    scans: list[ScanEvent] = []
    task = asyncio.create_task(_collect(scanner, scans))
    await asyncio.wait_for(peripheral.subscribed.wait(), 5)
    return peripheral, scanner, scans, task


def test_nus_scans_split_over_notifications_and_reconnect_after_the_link_drops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body(link: VirtualBleLink, spec: str) -> None:
        peripheral, scanner, scans, task = await _subscribed(link, spec, backoff_max_s=0.2)
        sent = f"4006381333931\r{GS1}\r".encode()  # 53 bytes: 3 notifications
        await peripheral.send(sent)
        await _until(lambda: len(scans) == 2)
        await peripheral.send(b"40016")  # half a scan, then it walks out of range
        await _until(lambda: scanner.framer.received == len(sent) + 5)
        await peripheral.drop(come_back=False)
        await _until(lambda: not scanner.listening.is_set())
        await asyncio.sleep(0.8)  # away for a while: the driver keeps looking, backing off
        await peripheral.come_back()
        await asyncio.wait_for(peripheral.subscribed.wait(), 5)
        await peripheral.send(b"BAG\r")
        await _until(lambda: len(scans) == 3)
        scanner.stop()
        await asyncio.wait_for(task, 5)
        await peripheral.close()
        assert [s.data for s in scans] == ["4006381333931", GS1, "BAG"]
        assert {(s.scanner_id, s.source, s.device) for s in scans} == {
            ("ble-front", "ble", peripheral.address)
        }
        assert scanner.reconnects == 1 and scanner.framer.noise == 1  # the half scan
        assert peripheral.connections == 2
        waits = [float(w) for w in re.findall(r"not advertising; retry in ([\d.]+)s", caplog.text)]
        assert len(waits) >= 2 and waits[-1] > waits[0]  # backing off while it was away

    with caplog.at_level(logging.INFO, logger="drivers.scanners.ble"):
        asyncio.run(_with_rig(body))


def test_losing_the_hci_link_itself_ends_the_session_and_is_retried() -> None:
    """The controller's TCP link goes away (a bridge restarted): the driver notices, drops
    the half frame and keeps retrying (a refused HCI link is no "missing stack")."""

    async def scenario() -> None:
        link = VirtualBleLink()
        spec = await link.serve_controller()
        peripheral, scanner, scans, task = await _subscribed(link, spec, backoff_max_s=0.1)
        try:
            await peripheral.send(b"40016")
            await _until(lambda: scanner.framer.received == 5)
            await link.close()  # the HCI server goes: the TCP link drops
            await _until(lambda: not scanner.listening.is_set())
            await asyncio.sleep(0.3)  # refused while it is gone: retried, not fatal
            assert not task.done()
        finally:
            scanner.stop()
            await asyncio.wait_for(task, 5)
            await peripheral.close()
        assert scans == [] and scanner.framer.noise == 1

    asyncio.run(scenario())


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    delays = [0.5]
    for _ in range(8):
        delays.append(backoff(delays[-1], 30.0))
    for a, b in itertools.pairwise(delays):
        assert 0.8 * min(2 * a, 30) <= b <= 1.2 * min(2 * a, 30)
    assert max(delays) <= 36.0


def test_several_scanners_at_once_ble_by_name_ble_by_address_and_serial() -> None:
    """Two BLE scanners on one controller (one by name on NUS, one from the HM-10
    profile: by address, characteristic FFE1, CRLF, AIM on) and a serial scanner, in
    one manager: every scan says which scanner and which device sent it."""

    async def body(link: VirtualBleLink, spec: str) -> None:
        nus = VirtualBleScanner(link, name="Counter BLE", address="F0:5C:A0:00:00:01")
        hm10 = VirtualBleScanner(link, name="HMSoft", address="00:1A:7D:DA:71:13",
                                 service=FFE0, characteristic=FFE1)  # fmt: skip
        for peripheral in (nus, hm10):
            await peripheral.start()
        profile = load_profile("ble-hm10-uart-scanner")
        hm10_scanner = build_scanner(profile, "hm10")
        hm10_scanner.settings.transport = f"bumble:{spec}"  # the profile says "bleak"
        front = BleScanner("front", BleSettings(name="Counter BLE", transport=f"bumble:{spec}"))
        master, slave = os.openpty()
        serial = SerialScanner("serial", SerialSettings(port=os.ttyname(slave)))
        got: list[ScanEvent] = []

        async def on_scan(scan: ScanEvent) -> None:
            got.append(scan)

        manager = ScannerManager(on_scan)
        manager.add(front)
        manager.add(hm10_scanner, aim=requires_aim(profile))
        manager.add(serial)
        try:
            await asyncio.wait_for(nus.subscribed.wait(), 5)
            await asyncio.wait_for(hm10.subscribed.wait(), 5)
            await asyncio.wait_for(serial.listening.wait(), 5)
            await nus.send(b"4006381333931\r")
            await hm10.send(b"]E05449000000996\r\n")
            await hm10.send(b"5449000000996\r\n")  # no AIM id: its start was lost, dropped
            os.write(master, b"BAG\r")
            await _until(lambda: len(got) == 3 and manager.rejected["hm10"] == 1)
        finally:
            await manager.stop()
            os.close(master)
            os.close(slave)
            for peripheral in (nus, hm10):
                await peripheral.close()
        port = serial.settings.port
        assert sorted((s.scanner_id, s.source, s.device, s.data) for s in got) == [
            ("front", "ble", "F0:5C:A0:00:00:01", "4006381333931"),
            ("hm10", "ble", "00:1A:7D:DA:71:13", "]E05449000000996"),
            ("serial", "serial", port, "BAG"),
        ]
        assert manager.errors == {}

    asyncio.run(_with_rig(body))


def _has_system_bus() -> bool:
    return any(Path(p).exists() for p in ("/run/dbus/system_bus_socket",
                                          "/var/run/dbus/system_bus_socket"))  # fmt: skip


def test_no_bluetooth_stack_is_a_clear_error_not_a_bare_file_not_found() -> None:
    if _has_system_bus():
        pytest.skip("this machine has a D-Bus system bus, so bleak does not fail the way it "
                    "does without one; the no-stack path cannot be exercised here")  # fmt: skip

    async def scenario() -> dict[str, str]:
        manager = ScannerManager(lambda scan: asyncio.sleep(0))
        manager.add(BleScanner("ble", BleSettings(name="BarcodeScanner", scan_timeout_s=1)))
        await asyncio.wait_for(manager.tasks["ble"], 10)  # it stops by itself
        return manager.errors

    errors = asyncio.run(scenario())
    assert errors["ble"].startswith("no Bluetooth stack on this machine: bleak could not reach "
                                    "BlueZ: there is no D-Bus system bus")  # fmt: skip
    assert "bumble:<HCI transport>" in errors["ble"]


def test_the_other_no_stack_faults_are_named_too() -> None:
    from bleak.exc import BleakDBusError, BleakError

    dbus = BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown", ["org.bluez unknown"])
    assert "BlueZ (bluetoothd) is not running" in str(no_stack_error(dbus))
    assert "no Bluetooth adapter" in str(no_stack_error(BleakError("No Bluetooth adapters found.")))
    assert isinstance(no_stack_error(FileNotFoundError(2, "No such file")), BluetoothUnavailable)
    assert no_stack_error(BleakError("device disconnected")) is None  # retried, not fatal
    assert no_stack_error(TimeoutError()) is None
    assert no_stack_error(ConnectionRefusedError(111, "refused"), "bumble:tcp-client:x:1") is None


def test_ble_settings_and_profiles_refuse_what_cannot_work(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="address or its advertised name"):
        BleSettings()
    with pytest.raises(ValueError, match="transport 'bluez'"):
        BleSettings(name="x", transport="bluez")
    bad = tmp_path / "bad.toml"
    bad.write_text('interface = "ble"\n[ble]\nname = "x"\nterminator = "etx"\n')
    with pytest.raises(ValueError, match=r"bad.toml: terminator 'etx'"):
        load_profile(bad)
    nus = load_profile("ble-nus-scanner")
    assert nus.section("ble")["characteristic"] == NUS_TX


def test_hil_record_ble_over_hci_tcp_then_replay(tmp_path: Path) -> None:
    """`hil record --ble` in another process reaches the virtual scanner through a
    controller served on loopback TCP; the recording replays to the same scans."""
    out = tmp_path / "counter.ble"

    async def body(link: VirtualBleLink, spec: str) -> None:
        peripheral = VirtualBleScanner(link, name="Counter BLE")
        await peripheral.start()
        proc = await asyncio.create_subprocess_exec(
            str(VENV_BIN / "hil"), "record", "--ble", "Counter BLE", "--transport",
            f"bumble:{spec}", "--seconds", "30", "-o", str(out),
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await asyncio.wait_for(peripheral.subscribed.wait(), 20)
            await peripheral.send(f"4006381333931\r{GS1}\r".encode())
            await asyncio.sleep(0.1)
            await peripheral.drop(come_back=False)  # ends the recording
            _, stderr = await asyncio.wait_for(proc.communicate(), 20)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await peripheral.close()
        assert proc.returncode == 0, stderr.decode()

    asyncio.run(_with_rig(body))
    assert "# transport: ble" in out.read_text()
    from hil.scanner_replay import replay_recording

    got: list[str] = []
    asyncio.run(replay_recording(out.read_text(), got.append))
    assert got == ["4006381333931", GS1]

"""Scanner decoding speed, and scan-to-line latency through the register core.

Prints, in one run, each figure next to a baseline measured in the same run:

- wedge decoder throughput (key events/s), against unpacking the same events from
  the kernel's 24-byte input_event records (what reading the device costs);
- serial/BLE framer throughput (bytes/s, PARMRK on), against ``bytes.split`` on the
  terminator;
- scan → durable sale line latency, p50 and p99, for each driver path: keyboard
  wedge (the decoder on a live event source), serial (the serial driver on a pty,
  through pyserial and the kernel's tty layer) and BLE (bleak over bumble HCI/TCP
  to a virtual scanner). Each goes through the ScannerManager, the register service
  (its DB thread) and ``apply_scan`` to the COMMIT with fsync — the latency ends
  when the line is durable. Baselines: the same scan applied straight through the
  register service, and a bare write+fsync on the same disk.

Usage: python bench/scanner_decoder.py [--scans N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from appliance.config import config_from_dict
from appliance.peripherals import scan_handler
from appliance.register import Register
from appliance.scan import apply_scan
from appliance.service import RegisterService
from drivers.scanners.evdev_source import EVENT, raw_events
from drivers.scanners.events import ScanEvent
from drivers.scanners.framing import LineFramer
from drivers.scanners.keymaps import get_layout, keystrokes
from drivers.scanners.manager import ScannerManager
from drivers.scanners.wedge import RawEvent, WedgeDecoder, WedgeSettings
from hil.evemu import parse_evemu

RECORDINGS = Path(__file__).resolve().parent.parent / "hil" / "recordings" / "scanners"
CODES = ["4006381333931", "4001686301265", "5449000000996", "2100002012341"]
SALE_LINES = 20  # complete the sale every so many scans, as a shop would


def pct(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100)
    return f"{q[49]:7.3f} / {q[98]:7.3f} ms"


def best_of(runs: int, *jobs: Callable[[], object]) -> list[float]:
    """Each job's best time over ``runs`` rounds, the jobs alternating in every round,
    so a busy machine slows baseline and subject alike."""
    best = [float("inf")] * len(jobs)
    for _ in range(runs):
        for i, job in enumerate(jobs):
            t0 = time.perf_counter()
            job()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def decoder_throughput() -> None:
    events: list[RawEvent] = []
    for path in sorted(RECORDINGS.glob("*-enter.evemu")):
        events += parse_evemu(path.read_text()).events
    events = events * 20
    records = b"".join(EVENT.pack(e.sec, e.usec, e.type, e.code, e.value) for e in events)
    scans = sum(1 for _ in WedgeDecoder("bench").decode(events))
    assert sum(1 for _ in raw_events(records)) == len(events)
    baseline, elapsed = best_of(
        5,
        lambda: sum(1 for _ in raw_events(records)),
        lambda: sum(1 for _ in WedgeDecoder("bench", WedgeSettings(layout="us")).decode(events)),
    )
    print(f"wedge decoder                   : {len(events) / elapsed:12,.0f} events/s "
          f"({len(events)} events, {scans} scans; best of 5)")  # fmt: skip
    print(f"  baseline: unpack kernel records: {len(events) / baseline:12,.0f} events/s "
          f"-> decoding costs {elapsed / baseline:.1f}x reading")  # fmt: skip


def framer_throughput() -> None:
    frame = b"]C10104012345000009\x1d10LOT-7\x1d3103000250\r"
    data = frame * 10000
    chunks = [data[i : i + 64] for i in range(0, len(data), 64)]  # reads of 64 bytes

    def frame_all() -> int:
        framer = LineFramer("cr", parmrk=True)  # one stream: frames span the reads
        return sum(len(framer.feed(c, 0.0).scans) for c in chunks)

    assert frame_all() == 10000
    baseline, elapsed = best_of(5, lambda: [c.split(b"\r") for c in chunks], frame_all)
    print(f"serial/BLE framer (PARMRK)      : {len(data) / elapsed:12,.0f} bytes/s "
          f"({10000 / elapsed:,.0f} scans/s; best of 5)")  # fmt: skip
    print(f"  baseline: bytes.split          : {len(data) / baseline:12,.0f} bytes/s "
          f"-> framing costs {elapsed / baseline:.0f}x splitting")  # fmt: skip


def fsync_ms(folder: Path, count: int) -> list[float]:
    path = folder / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    samples = []
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            os.write(fd, b"x" * 128)
            os.fsync(fd)
            samples.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    return samples


class LiveWedge:
    """A keyboard-wedge scanner whose key events arrive on a queue, as from a device."""

    def __init__(self) -> None:
        self.scanner_id = "wedge"
        self.queue: asyncio.Queue[RawEvent] = asyncio.Queue()
        self.t = time.time()

    async def _events(self) -> AsyncIterator[RawEvent]:
        while True:
            yield await self.queue.get()

    def scans(self) -> AsyncIterator[ScanEvent]:
        return WedgeDecoder("wedge").decode_async(self._events())

    def type(self, text: str) -> None:
        self.t += 1.0  # a pause since the last scan
        for code, shift, _ in keystrokes(text, get_layout("us")):
            keys = [(42, 1), (code, 1), (code, 0), (42, 0)] if shift else [(code, 1), (code, 0)]
            for key, value in keys:
                self.t += 0.002
                self.queue.put_nowait(RawEvent(int(self.t), int(self.t % 1 * 1e6), 1, key, value))
        for value in (1, 0):  # Enter
            self.t += 0.002
            self.queue.put_nowait(RawEvent(int(self.t), int(self.t % 1 * 1e6), 1, 28, value))


async def measure(
    service: RegisterService,
    scanner: Any,
    inject: Callable[[str], Awaitable[None] | None],
    count: int,
    ready: Callable[[], Awaitable[Any]],
) -> list[float]:
    """Latency from handing a scan to the device side until its line is durable."""
    handler = scan_handler(service)
    done = asyncio.Event()

    async def on_scan(scan: ScanEvent) -> None:
        await handler(scan)  # returns once the line is committed
        done.set()

    manager = ScannerManager(on_scan)
    manager.add(scanner)
    await ready()
    samples = []
    try:
        for i in range(count):
            if i % SALE_LINES == 0:
                await complete_open_sale(service)
            done.clear()
            t0 = time.perf_counter()
            pending = inject(CODES[i % len(CODES)])
            if pending is not None:
                await pending
            await asyncio.wait_for(done.wait(), 10)
            samples.append((time.perf_counter() - t0) * 1000)
    finally:
        await manager.stop()
    return samples


async def complete_open_sale(service: RegisterService) -> None:
    def complete(register: Register) -> None:
        for sale in register.sales("open"):
            if sale["lines"] and not sale["tenders"]:
                register.add_tender(sale["id"], "cash", sale["totals"]["total"])

    await service.call(complete)


async def latencies(folder: Path, count: int) -> None:
    from drivers.scanners.ble import BleScanner, BleSettings
    from drivers.scanners.serial_scanner import SerialScanner, SerialSettings
    from hil.ble_rig import VirtualBleLink, VirtualBleScanner

    config = config_from_dict({"register": {"data_dir": str(folder / "data")}})
    service = RegisterService(config)
    await service.start()
    await service.call(Register.open_shift, 0)
    direct = []
    for i in range(count):
        if i % SALE_LINES == 0:
            await complete_open_sale(service)
        t0 = time.perf_counter()
        await service.call(apply_scan, CODES[i % len(CODES)])
        direct.append((time.perf_counter() - t0) * 1000)

    wedge = LiveWedge()
    wedge_ms = await measure(service, wedge, wedge.type, count, lambda: asyncio.sleep(0))

    master, slave = os.openpty()
    serial = SerialScanner("serial", SerialSettings(port=os.ttyname(slave)))

    def write(code: str) -> None:
        os.write(master, code.encode() + b"\r")

    serial_ms = await measure(service, serial, write, count, serial.listening.wait)
    os.close(master)
    os.close(slave)

    link = VirtualBleLink()
    spec = await link.serve_controller()
    peripheral = VirtualBleScanner(link, name="Bench BLE")
    await peripheral.start()
    ble = BleScanner("ble", BleSettings(name="Bench BLE", transport=f"bumble:{spec}"))
    ble_ms = await measure(
        service, ble, lambda code: peripheral.send(code.encode() + b"\r"), count,
        peripheral.subscribed.wait,
    )  # fmt: skip
    await peripheral.close()
    await link.close()
    await service.stop()

    fsync = fsync_ms(folder, count)
    base = statistics.quantiles(direct, n=100)[98]
    print(f"scan -> durable sale line, p50 / p99 ({count} scans each, one at a time):")
    print(f"  keyboard wedge (decoder)       : {pct(wedge_ms)}  p99 {_r(wedge_ms, base)}")
    print(f"  serial (pty, pyserial)         : {pct(serial_ms)}  p99 {_r(serial_ms, base)}")
    print(f"  BLE (bleak, bumble HCI/TCP)    : {pct(ble_ms)}  p99 {_r(ble_ms, base)}")
    print(f"  baseline: apply_scan via service: {pct(direct)}")
    print(f"  baseline: write + fsync        : {pct(fsync)}")


def _r(samples: list[float], base_p99: float) -> str:
    return f"{statistics.quantiles(samples, n=100)[98] / base_p99:.2f}x the core's"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scans", type=int, default=300)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    folder = Path(args.dir or tempfile.mkdtemp(prefix="bench-scan-"))
    decoder_throughput()
    framer_throughput()
    asyncio.run(latencies(folder, args.scans))


if __name__ == "__main__":
    main()

"""`hil record`: capture a real scanner into the formats the replay tools read.

    hil record --serial /dev/ttyACM0 [--baud 9600] [--seconds 30] -o scans.serial
    hil record --evdev /dev/input/by-id/usb-…-event-kbd [--layout de] [--seconds 30] -o scans.evemu
    hil record --ble NAME|ADDRESS [--characteristic UUID] [--transport bleak|bumble:…] -o scans.ble

Recording stops after --seconds or on Ctrl-C; the evdev device is grabbed while
recording so the scans do not also type into a terminal. A BLE scanner is found,
connected and subscribed exactly as the BLE driver does it; each notification is one
line of the recording.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("record", help="record a scanner (serial or evdev)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--serial", metavar="PORT")
    source.add_argument("--evdev", metavar="DEVICE")
    source.add_argument("--ble", metavar="NAME|ADDRESS", help="a BLE scanner's name or address")
    parser.add_argument("--characteristic", help="BLE notify characteristic (default: NUS TX)")
    parser.add_argument(
        "--transport", default="bleak", help='BLE transport: "bleak" or "bumble:<HCI transport>"'
    )
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--terminator", default="cr", choices=["cr", "lf", "crlf", "none"])
    parser.add_argument("--layout", default="us", help="hint stored in the recording")
    parser.add_argument("--suffix", default="enter", choices=["enter", "tab", "none"])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("-o", "--output", required=True, metavar="FILE")
    parser.set_defaults(handler=record)


def record(args: argparse.Namespace) -> int:
    from pathlib import Path

    try:
        if args.ble:
            import asyncio

            text = asyncio.run(_record_ble(args))
        else:
            text = _record_serial(args) if args.serial else _record_evdev(args)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"hil record: {exc}", file=sys.stderr)
        return 1
    Path(args.output).write_text(text, encoding="utf-8")
    print(f"hil record: wrote {args.output}", file=sys.stderr)
    return 0


def _record_serial(args: argparse.Namespace) -> str:
    import time

    import serial

    from hil.serial_recording import SerialRecording, write_serial

    rec = SerialRecording(hints={"terminator": args.terminator, "baud": str(args.baud)})
    try:
        port = serial.Serial(args.serial, baudrate=args.baud, timeout=0.1)
    except serial.SerialException as exc:
        raise RuntimeError(f"cannot open {args.serial}: {exc}") from None
    start = time.monotonic()
    try:
        while time.monotonic() - start < args.seconds:
            data = port.read(4096)
            if data:
                rec.chunks.append((time.monotonic() - start, "<", data))
    except KeyboardInterrupt:
        pass
    finally:
        port.close()
    return write_serial(rec)


def _record_evdev(args: argparse.Namespace) -> str:
    import select
    import time

    try:
        import evdev
    except ImportError as exc:
        raise RuntimeError(f"python-evdev is not installed: {exc}") from None
    from drivers.scanners.wedge import RawEvent
    from hil.evemu import EvemuRecording, write_evemu

    try:
        device = evdev.InputDevice(args.evdev)
    except OSError as exc:
        raise RuntimeError(f"cannot open input device {args.evdev}: {exc}") from None
    rec = EvemuRecording(
        name=device.name,
        bus=device.info.bustype,
        vendor=device.info.vendor,
        product=device.info.product,
        version=device.info.version,
        hints={"layout": args.layout, "suffix": args.suffix},
    )
    device.grab()
    start = time.monotonic()
    try:
        while time.monotonic() - start < args.seconds:
            ready, _, _ = select.select([device.fd], [], [], 0.2)
            if ready:
                for ev in device.read():
                    rec.events.append(RawEvent(ev.sec, ev.usec, ev.type, ev.code, ev.value))
    except KeyboardInterrupt:
        pass
    finally:
        device.ungrab()
        device.close()
    return write_evemu(rec)


async def _record_ble(args: argparse.Namespace) -> str:
    import asyncio
    import contextlib
    import re

    from drivers.scanners.ble import NUS_TX, BleSettings, no_stack_error, subscribed, transport_for
    from hil.serial_recording import SerialRecording, write_serial

    is_address = re.fullmatch(r"([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}", args.ble) is not None
    settings = BleSettings(
        address=args.ble if is_address else None,
        name=None if is_address else args.ble,
        characteristic=(args.characteristic or NUS_TX).lower(),
        terminator=args.terminator,
        transport=args.transport,
    )
    hints = {"transport": "ble", "terminator": args.terminator,
             "characteristic": settings.characteristic}  # fmt: skip
    rec = SerialRecording(hints=hints)
    loop = asyncio.get_running_loop()
    lost = asyncio.Event()
    transport = transport_for(settings)
    start = loop.time()
    try:
        async with subscribed(
            transport, settings,
            lambda data: rec.chunks.append((loop.time() - start, "<", data)), lost.set,
        ):  # fmt: skip
            print(f"hil record: recording {args.ble} for {args.seconds:g} s", file=sys.stderr)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), args.seconds)
    except Exception as exc:
        clear = no_stack_error(exc, transport.spec)
        raise RuntimeError(str(clear or f"{args.ble}: {type(exc).__name__}: {exc}")) from None
    finally:
        if transport.close is not None:
            await transport.close()
    if lost.is_set():
        print(f"hil record: {args.ble} disconnected; recording ends there", file=sys.stderr)
    return write_serial(rec)

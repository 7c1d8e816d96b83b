"""`hil replay-scanner RECORDING [--layout LAYOUT] [--realtime] [--tier TIER]`.

Decodes a scanner recording through the real driver code and prints each decoded
scan on its own line and nothing else on stdout (a summary and diagnostics go to
stderr). Evemu recordings go through the wedge decoder (tier ``inprocess``) or a
/dev/uinput keyboard read by the evdev driver (``uinput``); serial recordings
through the serial driver on a pty (``pty``); BLE recordings through the BLE driver
connected to a virtual bumble scanner (``ble``). See hil/scanner_replay.py.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("replay-scanner", help="decode a scanner recording")
    parser.add_argument("recording", metavar="RECORDING")
    parser.add_argument("--layout", help="keyboard layout (default: the recording's hint, else us)")
    parser.add_argument("--realtime", action="store_true", help="keep the recorded timing")
    parser.add_argument("--suffix", choices=["enter", "tab", "none"], help="wedge scan suffix")
    parser.add_argument(
        "--terminator", choices=["cr", "lf", "crlf", "none"], help="serial/BLE terminator"
    )
    parser.add_argument(
        "--tier",
        choices=["inprocess", "uinput", "pty", "ble"],
        help="how deep the replay goes (default: inprocess for evemu, pty for serial, "
        "ble for BLE recordings)",
    )
    parser.set_defaults(handler=replay)


def replay(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from hil.scanner_replay import replay_recording

    try:
        text = Path(args.recording).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"hil: {args.recording}: {exc}", file=sys.stderr)
        return 1

    def show(data: str) -> None:
        sys.stdout.write(data + "\n")
        sys.stdout.flush()

    try:
        stats = asyncio.run(
            replay_recording(
                text,
                on_scan=show,
                layout=args.layout,
                suffix=args.suffix,
                terminator=args.terminator,
                realtime=args.realtime,
                tier=args.tier,
            )
        )
    except ValueError as exc:
        print(f"hil: {args.recording}: {exc}", file=sys.stderr)
        return 1
    print(f"hil: {stats}", file=sys.stderr)
    return 0

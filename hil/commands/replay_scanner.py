"""`hil replay-scanner RECORDING [--layout LAYOUT] [--realtime]`.

Decodes a scanner recording through the real driver code — the wedge decoder for
evemu recordings, the serial framer for serial ones — and prints each decoded scan
on its own line and nothing else on stdout (diagnostics go to stderr).
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
        "--terminator", choices=["cr", "lf", "crlf", "none"], help="serial terminator"
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
            )
        )
    except ValueError as exc:
        print(f"hil: {args.recording}: {exc}", file=sys.stderr)
        return 1
    print(f"hil: {stats}", file=sys.stderr)
    return 0

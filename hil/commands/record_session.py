"""`hil record-session`: record a bench session (scanner, printer, terminal) as a scenario.

    hil record-session -o FOLDER [--seconds 300]
        [--serial /dev/ttyACM0 --baud 9600 --terminator cr]     scanner: give the register
                                                                 the printed pty instead
        [--printer 192.0.2.20:9100 --printer-listen 127.0.0.1:9101]
        [--terminal 192.0.2.30:20007 --terminal-listen 127.0.0.1:20008]

Point the register at the recorder (printer ``tcp:127.0.0.1:9101``, terminal
``tcp:127.0.0.1:20008``, scanner profile port = the pty) and ring up the sale. Output:
one line per device ("scanner PTY", "printer HOST:PORT", "terminal HOST:PORT"), and at
the end (after --seconds, Ctrl-C or SIGTERM) "scenario FOLDER/scenario.toml". The
folder holds scanner.serial, printer/NNNNNN.bin|txt, terminal/session-N.trace and the
scenario that replays them (hil/scenario/session_record.py).
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "record-session", help="record scanner, printer and terminal of a bench session"
    )
    p.add_argument("-o", "--output", required=True, metavar="FOLDER")
    p.add_argument("--serial", metavar="PORT", help="the real serial scanner")
    p.add_argument("--baud", type=int, default=9600)
    p.add_argument("--terminator", default="cr", choices=["cr", "lf", "crlf", "none"])
    p.add_argument("--printer", metavar="HOST:PORT", help="the real network printer")
    p.add_argument("--printer-listen", default="127.0.0.1:0", metavar="HOST:PORT")
    p.add_argument("--terminal", metavar="HOST:PORT", help="the real ZVT terminal (TCP)")
    p.add_argument("--terminal-listen", default="127.0.0.1:0", metavar="HOST:PORT")
    p.add_argument("--name", help="the scenario's name")
    p.add_argument("--seconds", type=float, default=600.0)
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import asyncio

    if not (args.serial or args.printer or args.terminal):
        print("hil record-session: give at least one of --serial, --printer, --terminal",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        return asyncio.run(_main(args))
    except (ValueError, OSError) as exc:
        print(f"hil record-session: {exc}", file=sys.stderr)
        return 2


async def _main(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import signal
    from pathlib import Path

    from hil.commands.terminal import _hostport
    from hil.scenario.session_record import (
        SerialTee,
        printer_tee,
        scenario_from_session,
        terminal_tee,
    )

    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tees = []
    scanner = None
    task = None
    if args.serial:
        scanner = SerialTee(args.serial, args.baud, args.terminator)
        task = asyncio.create_task(scanner.run())
        print(f"scanner {scanner.path}", flush=True)
    if args.printer:
        tee = printer_tee(_hostport(args.printer), folder)
        print(f"printer {await tee.start(*_hostport(args.printer_listen))}", flush=True)
        tees.append(tee)
    if args.terminal:
        tee = terminal_tee(_hostport(args.terminal), folder)
        print(f"terminal {await tee.start(*_hostport(args.terminal_listen))}", flush=True)
        tees.append(tee)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), args.seconds)
    for tee in tees:
        tee.close()
    if scanner is not None and task is not None:
        scanner.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
        scanner.save(folder / "scanner.serial")
        scanner.close()
    out = folder / "scenario.toml"
    out.write_text(scenario_from_session(folder, args.name), encoding="utf-8")
    print(f"scenario {out}", flush=True)
    return 0

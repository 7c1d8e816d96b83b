"""`hil printer`: the virtual ESC/POS receipt printer, as a network or serial printer.

    hil printer --listen 127.0.0.1:9100 --jobs DIR
    hil printer --pty --control 127.0.0.1:0 --paper out

Output: the first line is the bound HOST:PORT (--listen) or the pty path (--pty);
with --control a line "control HOST:PORT" follows; then one line per finished job
("job N: BYTES bytes -> DIR/N.txt"). Every job (up to each cut) is stored as
NNNNNN.bin (its bytes) and NNNNNN.txt (its text; .png with --png) in --jobs.
DLE EOT is answered with the fault state, which the control channel switches while
the printer runs (JSON lines, see hil/virtual_printer/server.py):

    {"cmd": "set", "paper": "out"}           paper ok | near_end | out
    {"cmd": "set", "paper_lines": 5}         paper runs out after 5 more lines
    {"cmd": "set", "cover_open": true}       also "online": false
    {"cmd": "set", "status": "mute"}         normal | mute (never answers) | garbage
    {"cmd": "set", "disconnect_after": 300}  drop the network link after 300 more bytes
    {"cmd": "state"} {"cmd": "jobs"} {"cmd": "printed"}
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from hil.commands import run_device


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("printer", help="virtual ESC/POS receipt printer (TCP or pty)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--listen", metavar="HOST:PORT", help="serve as a network printer")
    where.add_argument("--pty", action="store_true", help="serve as a serial printer on a pty")
    p.add_argument("--control", metavar="HOST:PORT", help="JSON-lines control channel")
    p.add_argument("--profile", metavar="NAME", help="printer profile (default epson-tm-t88v)")
    p.add_argument("--jobs", metavar="DIR", help="where to store jobs (default: a temp dir)")
    p.add_argument("--png", action="store_true", help="also draw every job as PNG")
    p.add_argument("--paper", choices=("ok", "near_end", "out"), default="ok")
    p.add_argument("--cover-open", action="store_true")
    p.add_argument("--offline", action="store_true")
    p.add_argument("--status", choices=("normal", "mute", "garbage"), default="normal")
    p.add_argument("--duration", type=float, help="exit after this many seconds")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from drivers.printers.profiles import ProfileError

    return run_device("printer", _main(args), (ValueError, ProfileError, OSError))


async def _main(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib

    from drivers.printers.profiles import DEFAULT_PROFILE, load_profile
    from hil.commands.terminal import _hostport
    from hil.virtual_printer.device import Job, VirtualPrinter
    from hil.virtual_printer.server import PtyPrinter, serve_control, serve_tcp, server_address

    jobs_dir = Path(args.jobs) if args.jobs else Path(tempfile.mkdtemp(prefix="hil-printer-"))

    def announce(job: Job) -> None:
        print(f"job {job.number}: {len(job.data)} bytes -> {jobs_dir / f'{job.number:06d}.txt'}",
              flush=True)  # fmt: skip

    printer = VirtualPrinter(
        load_profile(args.profile or DEFAULT_PROFILE), jobs_dir, png=args.png, on_job=announce
    )
    printer.faults.set(
        paper=args.paper, cover_open=args.cover_open, online=not args.offline, status=args.status
    )
    closers: list[Any] = []
    if args.pty:
        pty = PtyPrinter(printer)
        pty.start()
        closers.append(pty)
        print(pty.path, flush=True)
    else:
        tcp = await serve_tcp(printer, *_hostport(args.listen))
        closers.append(tcp)
        print(tcp.address, flush=True)
    if args.control:
        control = await serve_control(printer, *_hostport(args.control))
        closers.append(control)
        print(f"control {server_address(control)}", flush=True)
    with contextlib.suppress(TimeoutError):
        try:
            await asyncio.wait_for(asyncio.Event().wait(), args.duration)  # None: forever
        finally:
            for closer in closers:
                closer.close()
    return 0

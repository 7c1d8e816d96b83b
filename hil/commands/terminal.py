"""`hil terminal`: run the ZVT terminal simulator.

    hil terminal --listen 127.0.0.1:20007          TCP, plain APDUs
    hil terminal --pty                             prints the pty path on stdout; serial framing
    hil terminal --serial unix:/run/vm/s1.sock     serial framing to a QEMU chardev socket
    hil terminal --listen 127.0.0.1:0 --control 127.0.0.1:0 --outcome decline:05 --outcome abort
    hil terminal --listen 127.0.0.1:0 --record hil/recordings/zvt/mine
    hil terminal --listen 127.0.0.1:0 --replay hil/recordings/zvt/approve-tcp.trace
    hil terminal --listen 127.0.0.1:0 --host-offline --forward-result 00 --forward-result 05

Output: the first line is the pty path (--pty) or the bound HOST:PORT (--listen); with
--control a line "control HOST:PORT" follows. Outcomes: see hil/zvt_sim/script.py;
control channel commands: see hil/zvt_sim/server.py.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hil.commands import run_device


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("terminal", help="ZVT card terminal simulator (TCP or pty)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--listen", metavar="HOST:PORT", help="serve ZVT over TCP")
    where.add_argument("--pty", action="store_true", help="serve ZVT serial framing on a pty")
    where.add_argument(
        "--serial",
        metavar="TARGET",
        help="serial framing over unix:PATH or tcp:HOST:PORT (connects, e.g. to a QEMU "
        "chardev server wired to a guest's serial port) or on a serial device /dev/…",
    )
    p.add_argument("--baud", type=int, default=9600, help="with --serial on a device")
    p.add_argument("--control", metavar="HOST:PORT", help="JSON-lines control channel")
    p.add_argument(
        "--outcome",
        action="append",
        default=[],
        metavar="SPEC",
        help="queue an outcome for the next payment (repeatable), e.g. decline:05,pin=1",
    )
    p.add_argument("--host-offline", action="store_true", help="start with the host link down")
    p.add_argument("--offline-max-amount", type=int, help="store-and-forward per-payment cap")
    p.add_argument("--offline-max-count", type=int, help="store-and-forward count cap")
    p.add_argument("--offline-max-total", type=int, help="store-and-forward total cap")
    p.add_argument(
        "--forward-result",
        action="append",
        default=[],
        metavar="HEX",
        help="the host's answer to the next stored offline payment it is sent (repeatable; "
        "00 approves, e.g. 05 declines after the fact)",
    )
    p.add_argument(
        "--no-forward-on-reconnect",
        action="store_true",
        help="submit stored payments only when the register asks (06 51) or at end-of-day",
    )
    p.add_argument(
        "--entry-mode",
        choices=["chip", "contactless", "swipe", "keyed"],
        default="chip",
        help="how the simulated customer presents the card",
    )
    p.add_argument("--terminal-id", default="52500038")
    p.add_argument("--password", default="000000")
    p.add_argument("--encoding", default="cp437", help="text encoding the terminal sends")
    p.add_argument("--print-blocks", action="store_true", help="06 D3 text blocks, not lines")
    p.add_argument("--record", metavar="DIR", help="write one byte trace per session here")
    p.add_argument("--replay", metavar="TRACE", help="replay the terminal side of a trace")
    p.add_argument("--duration", type=float, help="exit after this many seconds")
    p.set_defaults(handler=_run)


def _hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host or "127.0.0.1", int(port)


def _run(args: argparse.Namespace) -> int:
    return run_device("terminal", _main(args), (ValueError,))


async def _main(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from drivers.zvt.text import normalize_encoding
    from drivers.zvt.transport import FdStream, SocketStream
    from hil.zvt_sim.script import parse_outcome
    from hil.zvt_sim.server import (
        PtyTerminal,
        SerialTerminal,
        bound_address,
        open_serial_target,
        serve_control,
        serve_tcp,
    )
    from hil.zvt_sim.terminal import SimTerminal
    from hil.zvt_sim.trace import read_trace, replay_session

    normalize_encoding(args.encoding)
    sim = SimTerminal(
        terminal_id=args.terminal_id,
        password=args.password,
        encoding=args.encoding,
        host_online=not args.host_offline,
        print_blocks=args.print_blocks,
    )
    if args.offline_max_amount is not None:
        sim.limits.max_amount = args.offline_max_amount
    if args.offline_max_count is not None:
        sim.limits.max_count = args.offline_max_count
    if args.offline_max_total is not None:
        sim.limits.max_total = args.offline_max_total
    sim.script(*[parse_outcome(s) for s in args.outcome])
    sim.forward_results.extend(int(code, 16) for code in args.forward_result)
    sim.forward_on_reconnect = not args.no_forward_on_reconnect
    sim.card.entry_mode = args.entry_mode
    record = Path(args.record) if args.record else None
    closers = []

    serial_terminal = None
    if args.replay:
        trace = read_trace(Path(args.replay))

        async def replay_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            _report(await replay_session(trace, SocketStream(r, w)))
            w.close()

        if args.pty or args.serial:
            if args.pty:
                pty = PtyTerminal(sim)
                print(pty.path, flush=True)
                stream: Any = FdStream(pty.master, owns_fd=False)
            else:
                stream = await open_serial_target(args.serial, args.baud)
                print(args.serial, flush=True)
            report = await replay_session(trace, stream)
            _report(report)
            await asyncio.sleep(0.2)  # let the register read the last bytes
            return 1 if report.mismatches else 0
        host, port = _hostport(args.listen)
        server = await asyncio.start_server(replay_client, host, port)
        print("{}:{}".format(*bound_address(server)), flush=True)
        closers.append(server)
    elif args.pty:
        pty = PtyTerminal(sim, record_dir=record)
        pty.start()
        print(pty.path, flush=True)
    elif args.serial:
        stream = await open_serial_target(args.serial, args.baud)
        serial_terminal = SerialTerminal(sim, stream, record_dir=record)
        serial_terminal.start()
        print(args.serial, flush=True)
    else:
        host, port = _hostport(args.listen)
        server, _rec = await serve_tcp(sim, host, port, record_dir=record)
        print("{}:{}".format(*bound_address(server)), flush=True)
        closers.append(server)
    if args.control:
        chost, cport = _hostport(args.control)
        control = await serve_control(sim, chost, cport)
        print("control {}:{}".format(*bound_address(control)), flush=True)
        closers.append(control)
    try:
        if args.duration is not None:
            await asyncio.sleep(args.duration)
        elif serial_terminal is not None:
            await serial_terminal.wait()  # until the other end closes the line
        else:
            await asyncio.Event().wait()
    finally:
        for s in closers:
            s.close()
        if serial_terminal is not None:
            await serial_terminal.close()
    return 0


def _report(report: Any) -> None:
    print(
        f"replay: {report.sent} sent, {report.matched} matched, "
        f"{len(report.mismatches)} mismatches",
        file=sys.stderr,
    )
    for line in report.mismatches:
        print(f"replay mismatch: {line}", file=sys.stderr)

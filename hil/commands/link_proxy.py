"""`hil link-proxy`: a network link the rig can cut (register ↔ back office).

    hil link-proxy --listen 127.0.0.1:0 --target 127.0.0.1:8800 --control 127.0.0.1:0

Output: the bound HOST:PORT, then "control HOST:PORT". Control: JSON lines
``{"cmd": "down"}`` (reset every connection, refuse new ones), ``{"cmd": "up"}``,
``{"cmd": "state"}`` (see hil/link_proxy.py).
"""

from __future__ import annotations

import argparse

from hil.commands import run_device


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("link-proxy", help="a TCP link the rig can cut (back office)")
    p.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT")
    p.add_argument("--target", required=True, metavar="HOST:PORT")
    p.add_argument("--control", default="127.0.0.1:0", metavar="HOST:PORT")
    p.add_argument("--down", action="store_true", help="start with the link down")
    p.add_argument("--duration", type=float, help="exit after this many seconds")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    return run_device("link-proxy", _main(args), (ValueError, OSError))


async def _main(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib

    from hil.commands.terminal import _hostport
    from hil.json_lines import serve_json_lines, server_address
    from hil.link_proxy import LinkProxy

    proxy = LinkProxy(*_hostport(args.target))
    if args.down:
        proxy.down()
    print(await proxy.start(*_hostport(args.listen)), flush=True)

    def handle(request: dict[str, object]) -> dict[str, object]:
        cmd = request.get("cmd")
        if cmd == "down":
            return {"ok": True, **proxy.down()}
        if cmd == "up":
            return {"ok": True, **proxy.up()}
        if cmd == "state":
            return {"ok": True, **proxy.state()}
        return {"ok": False, "error": f"unknown command {cmd!r} (down, up, state)"}

    control = await serve_json_lines(handle, *_hostport(args.control))
    print(f"control {server_address(control)}", flush=True)
    with contextlib.suppress(TimeoutError):
        try:
            await asyncio.wait_for(asyncio.Event().wait(), args.duration)
        finally:
            control.close()
            proxy.close()
    return 0

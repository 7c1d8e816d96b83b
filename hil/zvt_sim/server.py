"""Serving the simulated terminal: TCP (plain APDUs), serial framing on a pty, a socket
or a serial device, and the control channel.

Control channel: a TCP port taking one JSON object per line and answering one JSON
line each (``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``):

    {"cmd": "outcome", "spec": "decline:05,pin=0.5"}    queue outcomes (spec or list)
    {"cmd": "host_online", "value": false}             returns forwarded results
    {"cmd": "forward_results", "codes": [0, 5]}        host answers for next forwards
    {"cmd": "faults", "corrupt": 1, "nak": 1, "truncate": 1,
     "garbage": "AA BB", "garbage_frames": 2}        serial line faults on the next frames
    {"cmd": "set", "forward_on_reconnect": false, "drop_after_forward": 1,
     "entry_mode": "swipe", "print_blocks": true}       terminal behaviour (see terminal.py)
    {"cmd": "state"}                                   journal, pending forwards, …
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from pathlib import Path
from typing import Any

from drivers.zvt.transport import (
    ByteStream,
    FdStream,
    SerialPortStream,
    SerialTransport,
    SocketStream,
    TcpTransport,
    TraceHook,
    ZvtTimeouts,
    configure_serial,
    open_port,
)
from hil.json_lines import serve_json_lines
from hil.zvt_sim.script import ENTRY_MODES, parse_outcome
from hil.zvt_sim.terminal import SimTerminal, run_session
from hil.zvt_sim.trace import TraceRecorder

SIM_TIMEOUTS = ZvtTimeouts(t3=5.0, t4=180.0, ack=0.5, inter_byte=0.2, retries=3)


class Recorder:
    """One trace file per session: DIR/session-NNN-<transport>.trace."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.count = 0
        self.paths: list[Path] = []
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def open(self, transport: str) -> TraceRecorder | None:
        if self.directory is None:
            return None
        self.count += 1
        path = self.directory / f"session-{self.count:03d}-{transport}.trace"
        self.paths.append(path)
        return TraceRecorder(path, transport)


async def serve_tcp(
    sim: SimTerminal,
    host: str = "127.0.0.1",
    port: int = 0,
    record_dir: Path | None = None,
    timeouts: ZvtTimeouts | None = None,
) -> tuple[asyncio.Server, Recorder]:
    recorder = Recorder(record_dir)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        rec = recorder.open("tcp")
        trace: TraceHook | None = rec.hook("PT") if rec else None
        t = TcpTransport(SocketStream(reader, writer), timeouts or SIM_TIMEOUTS, trace)
        try:
            await run_session(sim, t)
        finally:
            if rec:
                rec.close()

    server = await asyncio.start_server(on_client, host, port)
    return server, recorder


class SerialTerminal:
    """The simulator speaking serial framing on a byte stream: a pty's master side, a
    unix or TCP socket (a QEMU ``-chardev socket,server=on`` wired to a guest's serial
    port), or a real serial device."""

    def __init__(
        self,
        sim: SimTerminal,
        stream: ByteStream | None = None,
        record_dir: Path | None = None,
        timeouts: ZvtTimeouts | None = None,
    ) -> None:
        self.sim = sim
        self.stream = stream
        self.recorder = Recorder(record_dir)
        self.timeouts = timeouts or SIM_TIMEOUTS
        self.transport: SerialTransport | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        assert self.stream is not None
        rec = self.recorder.open("serial")
        trace: TraceHook | None = rec.hook("PT") if rec else None
        self.transport = SerialTransport(self.stream, self.timeouts, trace)
        self.transport.start()

        async def run() -> None:
            assert self.transport is not None
            try:
                await run_session(self.sim, self.transport)
            finally:
                if rec:
                    rec.close()

        self._task = asyncio.get_running_loop().create_task(run())

    async def wait(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.transport is not None:
            await self.transport.close()


class PtyTerminal(SerialTerminal):
    """The simulator on the master side of a pty; the register opens ``path``."""

    def __init__(
        self,
        sim: SimTerminal,
        record_dir: Path | None = None,
        timeouts: ZvtTimeouts | None = None,
    ) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        configure_serial(self.slave, 9600)
        self.path = os.ttyname(self.slave)
        super().__init__(sim, None, record_dir, timeouts)

    def start(self) -> None:
        # The slave stays open here too, so the register can close and reopen the line.
        self.stream = FdStream(self.master, owns_fd=False)
        super().start()

    async def close(self) -> None:
        await super().close()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


async def open_serial_target(target: str, baudrate: int = 9600) -> ByteStream:
    """``unix:PATH`` or ``tcp:HOST:PORT`` (connect to a socket, e.g. QEMU's chardev
    server) or a serial device path (opened with pyserial, 8N2)."""
    if target.startswith("unix:"):
        reader, writer = await asyncio.open_unix_connection(target[5:])
        return SocketStream(reader, writer)
    if target.startswith("tcp:"):
        host, _, port = target[4:].rpartition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        return SocketStream(reader, writer)
    port = await asyncio.to_thread(open_port, target, baudrate)
    return SerialPortStream(port)


def control_command(sim: SimTerminal, req: dict[str, Any]) -> dict[str, Any]:
    cmd = req.get("cmd")
    if cmd == "outcome":
        specs = req.get("spec")
        items = specs if isinstance(specs, list) else [specs]
        sim.script(*[parse_outcome(str(s)) for s in items])
        return {"ok": True, "queued": len(sim.outcomes)}
    if cmd == "host_online":
        return {"ok": True, "forwarded": sim.set_host_online(bool(req.get("value")))}
    if cmd == "forward_results":
        sim.forward_results.extend(int(c) for c in req.get("codes", []))
        return {"ok": True, "queued": len(sim.forward_results)}
    if cmd == "faults":
        f = sim.faults
        f.corrupt += int(req.get("corrupt", 0))
        f.nak += int(req.get("nak", 0))
        f.truncate += int(req.get("truncate", 0))
        if "garbage" in req:
            f.garbage = bytes.fromhex(str(req["garbage"]))
            f.garbage_frames += int(req.get("garbage_frames", 1))
        return {"ok": True}
    if cmd == "set":
        return _set(sim, {k: v for k, v in req.items() if k != "cmd"})
    if cmd == "state":
        return {"ok": True, **sim.state()}
    return {"ok": False, "error": f"unknown command {cmd!r}"}


_SETTINGS: dict[str, type] = {
    "forward_on_reconnect": bool,
    "drop_after_forward": int,
    "print_blocks": bool,
    "disconnect_silence": float,
}


def _set(sim: SimTerminal, values: dict[str, Any]) -> dict[str, Any]:
    for key, value in values.items():
        if key == "entry_mode":
            if value not in ENTRY_MODES:
                return {"ok": False, "error": f"entry_mode must be one of {', '.join(ENTRY_MODES)}"}
            sim.card.entry_mode = str(value)
        elif key in _SETTINGS:
            setattr(sim, key, _SETTINGS[key](value))
        else:
            allowed = ", ".join([*_SETTINGS, "entry_mode"])
            return {"ok": False, "error": f"unknown setting {key!r} (allowed: {allowed})"}
    return {"ok": True}


async def serve_control(sim: SimTerminal, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    return await serve_json_lines(lambda req: control_command(sim, req), host, port)


def bound_address(server: asyncio.Server) -> tuple[str, int]:
    sock = server.sockets[0]
    host, port = sock.getsockname()[:2]
    return str(host), int(port)

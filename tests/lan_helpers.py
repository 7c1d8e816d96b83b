"""In-process registers with their LAN sync nodes on loopback, and a recording proxy.

Each register is the real thing — a RegisterService with its DB thread on a real
SQLite file, a LanNode with a real TCP server on 127.0.0.1 — only in one process,
so a test can look inside. Multi-process tests over real multicast are in
test_lan_netns.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.config import Config
from appliance.lan.node import LanNode
from appliance.lan.replicate import vector
from appliance.register import Register
from appliance.service import RegisterService
from tests.conftest import CATALOG_CSV, make_config

SECRET = "correct horse battery staple"


def lan_config(tmp: Path, rid: str, secret: str = SECRET, **lan: Any) -> Config:
    return make_config(
        tmp / rid,
        register={"id": rid, "name": f"Register {rid[1:]}"},
        lan={
            "enabled": True,
            "secret": secret,
            "port": 0,
            "bind": "127.0.0.1",
            "discovery": False,
            "heartbeat_seconds": 0.2,
            "peer_timeout_seconds": 1.0,
            "lease_seconds": 3.0,
            **lan,
        },
    )


class Reg:
    """One register and its sync node."""

    def __init__(self, config: Config, version: str | None = None) -> None:
        self.config = config
        self.service = RegisterService(config)
        kwargs = {"version": version} if version else {}
        self.node = LanNode(config, self.service, **kwargs)
        self.service.on_open.append(self.node.on_register_open)
        self.running = False

    @property
    def id(self) -> str:
        return self.config.register.id

    async def start(self) -> None:
        await self.service.start()
        await self.node.start()
        self.running = True

    async def stop(self) -> None:
        if self.running:
            self.running = False
            await self.node.stop()
            await self.service.stop()

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self.service.call(fn, *args, **kwargs)

    async def act(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A saved-sale action (appliance.lan.actions) with this register's peers."""
        return await self.service.call(fn, self.node.directory, *args)

    async def state(self) -> dict[str, Any]:
        return await self.call(lambda r: {s["id"]: s for s in r.state.sales()})

    async def op_count(self) -> int:
        count = await self.call(lambda r: r.conn.execute("SELECT count(*) FROM ops").fetchone())
        return int(count[0])


async def cluster(tmp: Path, ids: list[str], **lan: Any) -> list[Reg]:
    """Registers that know each other by static peer list (full mesh), all started."""
    regs = [Reg(lan_config(tmp, rid, **lan)) for rid in ids]
    for reg in regs:
        await reg.start()
    await regs[0].call(lambda r: r.import_catalog_csv(CATALOG_CSV, "t.csv"))
    for reg in regs:
        for other in regs:
            if other is not reg:
                reg.node.add_peer("127.0.0.1", other.node.port)
    await wait(lambda: all(len(r.node.sessions) == len(regs) - 1 for r in regs), 10, "full mesh")
    await in_step(regs)
    return regs


async def wait(check: Callable[[], Any], timeout: float, what: str) -> None:
    """Poll ``check`` (a function, or a coroutine function) until true or fail."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.03)


async def in_step(regs: list[Reg], timeout: float = 10.0) -> None:
    """Wait until every running register holds exactly the same ops."""
    running = [r for r in regs if r.running]

    async def same() -> bool:
        vectors = [await r.call(vector) for r in running]
        return all(v == vectors[0] for v in vectors)

    await wait(same, timeout, "the registers' op logs to agree")


async def stop_all(regs: list[Reg]) -> None:
    for reg in regs:
        with contextlib.suppress(Exception):
            await reg.stop()


def open_sale_with(register: Register, *codes: str, name: str | None = None) -> dict[str, Any]:
    sale = register.open_sale()
    for code in codes:
        sale = register.add_line(sale["id"], code)
    if name:
        sale = register.park(sale["id"], name)
    return sale


class Proxy:
    """A TCP relay on loopback that records each direction's bytes and can tamper."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.upstream = bytearray()  # client → server
        self.downstream = bytearray()
        # Makes, per connection, what is called with each chunk client → server and
        # returns the bytes to forward.
        self.tamper: Callable[[], Callable[[bytes], bytes]] = lambda: lambda data: data
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]
        tamper = self.tamper()

        async def pipe(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, log: bytearray, up: bool
        ) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    log += data
                    dst.write(tamper(data) if up else data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(
            pipe(reader, up_writer, self.upstream, True),
            pipe(up_reader, writer, self.downstream, False),
        )

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()

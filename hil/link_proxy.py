"""A TCP link the rig can cut: the network between a register and its back office.

``LinkProxy`` forwards a loopback port to a target. ``down()`` is the uplink gone:
every open connection is reset and new ones are reset at once, so the register sees
what it sees when a shop's router dies. ``up()`` forwards again. Counters say how
many connections and bytes went through, so a test can tell that traffic resumed.

    hil link-proxy --listen 127.0.0.1:0 --target 127.0.0.1:8800 --control 127.0.0.1:0

prints the bound HOST:PORT, then "control HOST:PORT"; the control channel takes JSON
lines: ``{"cmd": "down"}``, ``{"cmd": "up"}``, ``{"cmd": "state"}``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hil.json_lines import server_address
from hil.tcp_relay import relay, reset


class LinkProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.online = True
        self.connections = 0
        self.refused = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.server: asyncio.Server | None = None
        self._open: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.server = await asyncio.start_server(self._client, host, port)
        return self.address

    @property
    def address(self) -> str:
        assert self.server is not None
        return server_address(self.server)

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def down(self) -> dict[str, Any]:
        self.online = False
        for client, upstream in list(self._open):
            reset(client)
            reset(upstream)
        self._open.clear()
        return self.state()

    def up(self) -> dict[str, Any]:
        self.online = True
        return self.state()

    def state(self) -> dict[str, Any]:
        return {
            "online": self.online,
            "open": len(self._open),
            "connections": self.connections,
            "refused": self.refused,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
        }

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.online:
            self.refused += 1
            reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self.refused += 1
            reset(writer)
            return
        self.connections += 1
        pair = (writer, up_writer)
        self._open.add(pair)

        def up(data: bytes) -> None:
            self.bytes_up += len(data)

        def down(data: bytes) -> None:
            self.bytes_down += len(data)

        try:
            await asyncio.gather(relay(reader, up_writer, up), relay(up_reader, writer, down))
        finally:
            self._open.discard(pair)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for client, upstream in list(self._open):
            reset(client)
            reset(upstream)
        self._open.clear()

"""A TCP proxy process on loopback that a test controls: the network to the back office.

    python -m tests.tcp_proxy LISTEN_PORT TARGET_PORT CONTROL_PORT

Modes, set over the control port with one line ("up", "down", "503", "status"):
  up    forward bytes both ways
  down  the network is gone: every open connection is reset, new ones are accepted
        and closed at once (what a register sees when the uplink drops)
  503   every new connection gets an HTTP 503 answer (a load balancer whose back end
        is away)
"status" answers one JSON line: mode, open connections, how many of them carry a
request still waiting for its answer, and how many of those are pushes (a batch in
flight).
"""

from __future__ import annotations

import asyncio
import json
import sys

from hil.tcp_relay import relay, reset

_BODY_503 = b'{"error":{"code":"unavailable","message":"the back end is away"}}'
RESPONSE_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    + f"content-length: {len(_BODY_503)}\r\nconnection: close\r\n\r\n".encode()
    + _BODY_503
)


class Proxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "up"
        self.conns: dict[int, dict[str, object]] = {}
        self.next_id = 0

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "down":
            reset(writer)
            return
        if self.mode == "503":
            try:
                await asyncio.wait_for(reader.read(65536), 2)
                writer.write(RESPONSE_503)
                await writer.drain()
            finally:
                writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            reset(writer)
            return
        cid = self.next_id
        self.next_id += 1
        info: dict[str, object] = {
            "writers": (writer, up_writer),
            "waiting": False,
            "request": b"",
        }
        self.conns[cid] = info

        def request(data: bytes) -> None:
            info["waiting"] = True
            if data[:5] in (b"POST ", b"GET /"):
                info["request"] = data.split(b"\r\n", 1)[0]

        def answer(data: bytes) -> None:
            info["waiting"] = False

        try:
            await asyncio.gather(
                relay(reader, up_writer, request), relay(up_reader, writer, answer)
            )
        finally:
            self.conns.pop(cid, None)

    def drop_all(self) -> None:
        for info in list(self.conns.values()):
            client, upstream = info["writers"]  # type: ignore[misc]
            reset(client)
            reset(upstream)
        self.conns.clear()

    async def control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode().strip()
        if line in ("up", "down", "503"):
            self.mode = line
            if line != "up":
                self.drop_all()
        answer = {
            "mode": self.mode,
            "open": len(self.conns),
            "in_flight": sum(1 for c in self.conns.values() if c["waiting"]),
            "pushes_in_flight": sum(
                1
                for c in self.conns.values()
                if c["waiting"] and bytes(c["request"]).startswith(b"POST /api/v1/sync/push")  # type: ignore[call-overload]
            ),
        }
        writer.write(json.dumps(answer).encode() + b"\n")
        await writer.drain()
        writer.close()


async def main(listen: int, target: int, control: int) -> None:
    proxy = Proxy(target)
    server = await asyncio.start_server(proxy.client, "127.0.0.1", listen)
    ctl = await asyncio.start_server(proxy.control, "127.0.0.1", control)
    print("ready", flush=True)
    async with server, ctl:
        await asyncio.gather(server.serve_forever(), ctl.serve_forever())


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))

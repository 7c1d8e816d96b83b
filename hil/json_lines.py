"""A control channel for a virtual device: one JSON object per line in, one answer out.

Tests and people switch a running virtual device's state through it (the virtual
printer's faults, the ZVT simulator's outcomes). A line that is not a JSON object
gets ``{"ok": false, "error": …}`` and the channel stays open.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

Handler = Callable[[dict[str, Any]], dict[str, Any]]


async def serve_json_lines(handle: Handler, host: str, port: int) -> asyncio.Server:
    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async for line in reader:
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("send one JSON object per line")
                    answer = handle(request)
                except (ValueError, TypeError) as exc:
                    answer = {"ok": False, "error": str(exc)}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(on_client, host, port)


async def control_request(address: tuple[str, int], request: dict[str, Any]) -> dict[str, Any]:
    """One command on a device's control channel, bounded in time (the client side)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), 5)
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        answer: dict[str, Any] = json.loads(await asyncio.wait_for(reader.readline(), 10))
    finally:
        writer.close()
    return answer


def server_address(server: asyncio.Server) -> str:
    host, port = server.sockets[0].getsockname()[:2]
    return f"{host}:{port}"

"""Moving bytes between two TCP streams, shared by the rig's proxies.

The link proxy (cuts the back office link), the session recorder (tees a device's
traffic) and the test suite's uplink proxy all relay a connection the same way; what
differs is what they do with each chunk on its way.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0): a dead link, not a polite goodbye."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


async def relay(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, on_chunk: Callable[[bytes], None]
) -> None:
    """Copy ``src`` to ``dst`` until either side goes, showing each chunk to ``on_chunk``."""
    try:
        while data := await src.read(65536):
            on_chunk(data)
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        dst.close()

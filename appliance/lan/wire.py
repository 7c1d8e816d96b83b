"""Framing and the handshake of a sync connection (TCP, one per pair of registers).

Every frame is a 4-byte length and a body. The handshake:

1. client → server: ``RAL1`` + store key id (8) + client nonce (16), in clear;
2. server → client: ``RAL1`` + server nonce (16), then its hello sealed with the
   server→client session key (or ``RALX`` when it has no key of that id);
3. client → server: its hello sealed with the client→server session key.

Session keys come from the store key and both nonces, so only a holder of the store
key can open the other's hello: each side has proven it holds the key, and a
recorded handshake or frame is useless on a new connection (new nonces, new keys).
After that every message is a sealed JSON object; anything that fails to open, or
comes out of order, ends the connection.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from appliance.lan.crypto import (
    KEY_ID_LEN,
    NONCE_LEN,
    AuthFailed,
    ChannelError,
    Keyring,
    Opener,
    Sealer,
    StoreKey,
    new_nonce,
    session_keys,
)

MAGIC = b"RAL1"
REFUSED = b"RALX"
MAX_FRAME = 16 * 1024 * 1024
HANDSHAKE_TIMEOUT = 5.0

Message = dict[str, Any]


class UnknownKey(ChannelError):
    """The other side holds no store key with the id offered: another store's device."""

    reason = "unknown_key"


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(4)
    size = int.from_bytes(head, "big")
    if size > MAX_FRAME:
        raise ChannelError(f"frame of {size} bytes is over the {MAX_FRAME} limit")
    return await reader.readexactly(size)


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def _loads(data: bytes) -> Message:
    try:
        message = json.loads(data)
    except ValueError:
        raise ChannelError("sealed frame is not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("t"), str):
        raise ChannelError("message must be an object with a type 't'")
    return message


def _dumps(message: Message) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


@dataclass
class Channel:
    """An authenticated, encrypted, replay-proof message stream to one peer."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    sealer: Sealer
    opener: Opener
    hello: Message  # what the peer said about itself
    address: str

    def write(self, message: Message) -> int:
        """Seal and queue one message (frames go out whole and in order); returns
        how many bytes wait in the send buffer."""
        self.writer.write(frame(self.sealer.seal(_dumps(message))))
        return self.writer.transport.get_write_buffer_size()

    async def send(self, message: Message) -> None:
        self.write(message)
        await self.writer.drain()

    async def recv(self) -> Message:
        return _loads(self.opener.open(await read_frame(self.reader)))

    def close(self) -> None:
        # At once: a peer behind a pulled cable would hold a graceful close open
        # for as long as unsent data waits.
        self.writer.transport.abort()


def _address(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


async def connect(
    host: str, port: int, keyring: Keyring, hello: Message, timeout: float = HANDSHAKE_TIMEOUT
) -> Channel:
    """Connect and authenticate, offering the current store key, then older ones."""
    for n, key in enumerate(keyring.keys):
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        try:
            return await asyncio.wait_for(_client(reader, writer, key, hello), timeout)
        except UnknownKey:
            writer.close()
            if n == len(keyring.keys) - 1:
                raise
        except BaseException:
            writer.close()
            raise
    raise UnknownKey("no store key")


async def _client(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: StoreKey, hello: Message
) -> Channel:
    client_nonce = new_nonce()
    writer.write(frame(MAGIC + key.key_id + client_nonce))
    await writer.drain()
    answer = await read_frame(reader)
    if answer[:4] == REFUSED:
        raise UnknownKey("the peer holds another store key (not paired with this store)")
    if answer[:4] != MAGIC or len(answer) != 4 + NONCE_LEN:
        raise ChannelError("not a register sync peer")
    c2s, s2c = session_keys(key, client_nonce, answer[4:])
    sealer, opener = Sealer(c2s), Opener(s2c)
    try:
        their_hello = _loads(opener.open(await read_frame(reader)))
    except AuthFailed:
        raise AuthFailed("the peer could not prove it holds the store key") from None
    writer.write(frame(sealer.seal(_dumps(hello))))
    await writer.drain()
    return Channel(reader, writer, sealer, opener, their_hello, _address(writer))


async def accept(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    keyring: Keyring,
    hello: Message,
    timeout: float = HANDSHAKE_TIMEOUT,
) -> Channel:
    return await asyncio.wait_for(_server(reader, writer, keyring, hello), timeout)


async def _server(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keyring: Keyring, hello: Message
) -> Channel:
    opening = await read_frame(reader)
    if len(opening) != 4 + KEY_ID_LEN + NONCE_LEN or opening[:4] != MAGIC:
        raise ChannelError("not a register sync handshake")
    key = keyring.get(opening[4 : 4 + KEY_ID_LEN])
    if key is None:
        writer.write(frame(REFUSED))
        await writer.drain()
        raise UnknownKey("the peer offered a key this store does not hold")
    server_nonce = new_nonce()
    c2s, s2c = session_keys(key, opening[4 + KEY_ID_LEN :], server_nonce)
    sealer, opener = Sealer(s2c), Opener(c2s)
    writer.write(frame(MAGIC + server_nonce) + frame(sealer.seal(_dumps(hello))))
    await writer.drain()
    try:
        their_hello = _loads(opener.open(await read_frame(reader)))
    except AuthFailed:
        raise AuthFailed("the peer could not prove it holds the store key") from None
    return Channel(reader, writer, sealer, opener, their_hello, _address(writer))

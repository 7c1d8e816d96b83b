"""Trust between registers, over real sockets on loopback.

Registers of one store pair with the store secret; a device without it can neither
read saved sales nor inject operations; recorded traffic replayed — into a new
connection, or a frame repeated inside a live one — is rejected. A relay between
two registers records every byte they exchange, which is what an eavesdropper on the
shop's network would see.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path

from appliance.lan import wire
from appliance.lan.crypto import Keyring, Sealer
from tests.lan_helpers import Proxy, Reg, in_step, lan_config, open_sale_with, stop_all, wait


def _frames(data: bytes) -> list[bytes]:
    out, at = [], 0
    while at + 4 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        if at + 4 + size > len(data):
            break
        out.append(data[at + 4 : at + 4 + size])
        at += 4 + size
    return out


async def _pair_through_proxy(tmp: Path) -> tuple[Reg, Reg, Proxy]:
    a, b = Reg(lan_config(tmp, "R1")), Reg(lan_config(tmp, "R2"))
    await a.start()
    await b.start()
    await b.call(lambda r: r.import_catalog_csv(open_catalog(), "t.csv"))
    proxy = Proxy(a.node.port)
    await proxy.start()
    b.node.add_peer("127.0.0.1", proxy.port)  # only B knows the way: via the relay
    await wait(lambda: "R2" in a.node.sessions, 10, "R2 to connect through the relay")
    return a, b, proxy


def open_catalog() -> str:
    from tests.conftest import CATALOG_CSV

    return CATALOG_CSV


def test_paired_registers_sync_and_the_wire_carries_no_sale_data(tmp_path: Path) -> None:
    async def run() -> None:
        a, b, proxy = await _pair_through_proxy(tmp_path)
        try:
            sale = await b.call(open_sale_with, "BEER", "COFFEE", name="Table Seven")
            await in_step([a, b])
            assert (await a.state())[sale["id"]] == (await b.state())[sale["id"]]
            wire_bytes = bytes(proxy.upstream + proxy.downstream)
            assert len(wire_bytes) > 2000  # the catalog and the sale did cross it
            for secret_text in (b"Table Seven", b"BEER", b"Coffee 250", sale["id"].encode()):
                assert secret_text not in wire_bytes, secret_text
            assert b"sale.line_add" not in wire_bytes and b"Register" not in wire_bytes
        finally:
            await proxy.stop()
            await stop_all([a, b])

    asyncio.run(run())


def test_a_device_without_the_store_secret_can_neither_read_nor_inject(tmp_path: Path) -> None:
    async def run() -> None:
        a = Reg(lan_config(tmp_path, "R1"))
        rogue = Reg(lan_config(tmp_path, "R9", secret="another store's secret!!"))
        await a.start()
        await rogue.start()
        try:
            await a.call(lambda r: r.import_catalog_csv(open_catalog(), "t.csv"))
            sale = await a.call(open_sale_with, "BEER", name="Table 1")
            await rogue.call(lambda r: r.import_catalog_csv(open_catalog(), "t.csv"))
            await rogue.call(open_sale_with, "BEER", name="Injected")
            before_a, before_rogue = await a.op_count(), await rogue.op_count()
            rogue.node.add_peer("127.0.0.1", a.node.port)
            await wait(lambda: rogue.node.stats["dial_unknown_key"] >= 2, 10, "refusals")
            assert a.node.sessions == {} and rogue.node.sessions == {}
            assert a.node.stats["refused_unknown_key"] >= 2
            assert "127.0.0.1" in a.node.directory.unpaired
            # A raw client that knows the store's key id (it is advertised) but not the
            # key: it gets a sealed hello it cannot open, and its forged frame is refused.
            key_id = bytes.fromhex(a.node.status()["key_id"])
            reader, writer = await asyncio.open_connection("127.0.0.1", a.node.port)
            writer.write(wire.frame(wire.MAGIC + key_id + os.urandom(16)))
            await writer.drain()
            answer = await wire.read_frame(reader)
            assert answer[:4] == wire.MAGIC
            sealed_hello = await wire.read_frame(reader)
            assert b"Register" not in sealed_hello and b"R1" not in sealed_hello
            forged_key = Keyring("store1", ["a guess at the secret!!"]).current.key
            forged = {
                "t": "hello",
                "register_id": "R9",
                "store_id": "store1",
                "proto": 1,
                "version": a.node.version,
            }
            writer.write(wire.frame(Sealer(forged_key).seal(json.dumps(forged).encode())))
            ops = json.dumps({"t": "ops", "ops": [{"op_id": "evil"}]}).encode()
            writer.write(wire.frame(Sealer(forged_key).seal(ops)))
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5) == b""  # A hung up
            writer.close()
            assert a.node.stats["refused_auth"] >= 1
            assert await a.op_count() == before_a
            assert await rogue.op_count() == before_rogue
            rogue_ids = set(await rogue.state())
            assert sale["id"] not in rogue_ids
            assert not [s for s in (await a.state()).values() if s.get("name") == "Injected"]
        finally:
            await stop_all([a, rogue])

    asyncio.run(run())


def test_recorded_traffic_replayed_to_another_register_is_rejected(tmp_path: Path) -> None:
    async def run() -> None:
        a, b, proxy = await _pair_through_proxy(tmp_path)
        fresh = Reg(lan_config(tmp_path, "R3"))
        await fresh.start()
        try:
            await b.call(open_sale_with, "BEER", name="Table Seven")
            await in_step([a, b])
            recorded = bytes(proxy.upstream)
            assert len(_frames(recorded)) >= 3  # opening, hello, then messages with ops
            reader, writer = await asyncio.open_connection("127.0.0.1", fresh.node.port)
            writer.write(recorded)
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5) != b""  # its own handshake…
            writer.close()
            await wait(lambda: fresh.node.stats["refused_auth"] >= 1, 5, "the replay refused")
            assert await fresh.op_count() == 0  # …and nothing of the replay was applied
            assert fresh.node.sessions == {}
        finally:
            await proxy.stop()
            await stop_all([a, b, fresh])

    asyncio.run(run())


def test_a_frame_repeated_inside_a_session_is_rejected(tmp_path: Path) -> None:
    async def run() -> None:
        a, b, proxy = await _pair_through_proxy(tmp_path)
        try:
            attacked = {"done": False}

            def repeat_one_frame() -> Callable[[bytes], bytes]:
                seen = bytearray()

                def tamper(data: bytes) -> bytes:
                    # Forward as is, but send the first frame after the handshake twice.
                    if attacked["done"]:
                        return data
                    seen.extend(data)
                    frames = _frames(bytes(seen))
                    if len(frames) < 3:
                        return data
                    attacked["done"] = True
                    return data + wire.frame(frames[2])

                return tamper

            proxy.tamper = repeat_one_frame
            a.node.sessions["R2"].close()  # reconnect through the tampering relay
            await wait(lambda: a.node.stats["rejected_replay"] >= 1, 10, "the repeat refused")
            # The session was dropped and re-established; sync goes on, nothing doubled.
            sale = await b.call(open_sale_with, "BEER", name="After")
            await in_step([a, b])
            assert (await a.state())[sale["id"]] == (await b.state())[sale["id"]]
            assert await a.op_count() == await b.op_count()
        finally:
            await proxy.stop()
            await stop_all([a, b])

    asyncio.run(run())

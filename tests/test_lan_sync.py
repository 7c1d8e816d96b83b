"""The sync node between registers over real sockets on loopback.

An edit reaches every peer by push; a register that was away catches up with
exactly the ops it missed (pulled once, by version vector, even from a peer that is
not their origin); a register on another app version is listed as such, told which
to update, and not synced with; a checkout lease is renewed while its register lives,
refuses payment elsewhere, and lapses when its register disappears.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from appliance.errors import Conflict
from appliance.lan import actions
from appliance.lan.api import saved_sales
from appliance.register import Register
from tests.conftest import CATALOG_CSV
from tests.lan_helpers import Reg, cluster, in_step, lan_config, open_sale_with, stop_all, wait


def test_an_edit_is_pushed_to_every_peer(tmp_path: Path) -> None:
    async def run() -> None:
        regs = await cluster(tmp_path, ["R1", "R2", "R3"])
        try:
            pulls_before = sum(r.node.stats["pulls"] for r in regs)
            sale = await regs[1].call(open_sale_with, "BEER", name="Table 2")

            async def everywhere() -> bool:
                states = [await r.state() for r in regs]
                return all(sale["id"] in s for s in states)

            await wait(everywhere, 5, "the sale on every register")
            docs = [(await r.state())[sale["id"]] for r in regs]
            assert docs[0] == docs[1] == docs[2]
            # It came by push, not by anti-entropy.
            assert sum(r.node.stats["pulls"] for r in regs) == pulls_before
            assert regs[1].node.stats["ops_pushed"] >= 2 * 3
        finally:
            await stop_all(regs)

    asyncio.run(run())


def test_a_register_that_was_away_catches_up_with_exactly_what_it_missed(
    tmp_path: Path,
) -> None:
    async def run() -> None:
        regs = await cluster(tmp_path, ["R1", "R2", "R3"])
        away = regs[2]
        try:
            had = await away.op_count()
            await away.stop()
            for i in range(5):
                await regs[0].call(open_sale_with, "BEER", name=f"R1 tab {i}")
                await regs[1].call(open_sale_with, "COFFEE", name=f"R2 tab {i}")
            await in_step(regs[:2])
            missed = await regs[0].op_count() - had
            # R1, the origin of half of what R3 missed, is off when R3 comes back.
            await regs[0].stop()
            # It comes back knowing R2 only from its static peer list (no multicast).
            back = Reg(lan_config(tmp_path, "R3", peers=[f"127.0.0.1:{regs[1].node.port}"]))
            regs[2] = back
            await back.start()
            await in_step([regs[1], back])
            assert await back.state() == await regs[1].state()
            assert back.node.stats["ops_received"] == missed  # no op twice
            assert back.node.stats["ops_applied"] == missed
        finally:
            await stop_all(regs)

    asyncio.run(run())


def test_another_app_version_is_listed_and_not_synced(tmp_path: Path) -> None:
    async def run() -> None:
        old, new = Reg(lan_config(tmp_path, "R1")), Reg(lan_config(tmp_path, "R2"), "0.2.0")
        regs = [old, new]
        try:
            for reg in regs:
                await reg.start()
                await reg.call(lambda r: r.import_catalog_csv(CATALOG_CSV, "t.csv"))
            await new.call(open_sale_with, "BEER", name="Table 9")
            new.node.add_peer("127.0.0.1", old.node.port)
            await wait(lambda: "R2" in old.node.sessions, 5, "the session")
            await wait(lambda: old.node.directory.entries["R2"].held, 5, "R2's saved sales")
            rows = {r["register_id"]: r for r in old.node.directory.register_list()}
            assert rows["R2"]["status"] == "other_version"
            assert "update this register (R1) to 0.2.0" in rows["R2"]["message"]
            rows = {r["register_id"]: r for r in new.node.directory.register_list()}
            assert "update R1 to 0.2.0" in rows["R1"]["message"]
            await asyncio.sleep(1.0)  # several heartbeats: still no op crossed
            assert old.node.stats["ops_received"] == new.node.stats["ops_received"] == 0
            sale_id = old.node.directory.entries["R2"].held[0]["id"]
            expected = re.escape("not synced with this register: Register 2 (R2) runs version 0.2")
            with pytest.raises(Exception, match=expected):
                await old.act(actions.find, sale_id)
        finally:
            await stop_all(regs)

    asyncio.run(run())


def test_checkout_lease_is_renewed_refuses_payment_elsewhere_and_lapses(
    tmp_path: Path,
) -> None:
    async def run() -> None:
        regs = await cluster(tmp_path, ["R1", "R2"], lease_seconds=1.5)
        r1, r2 = regs
        try:
            await r1.call(lambda r: r.open_shift(0))
            await r2.call(lambda r: r.open_shift(0))
            sale = await r1.call(open_sale_with, "BEER")
            await r1.act(actions.take_checkout, sale["id"], 1.5)
            await asyncio.sleep(2.5)  # past the lease: renewed while R1 lives
            await in_step(regs)
            with pytest.raises(Conflict, match="in checkout on Register 1"):
                await r2.call(lambda r: r.add_tender(sale["id"], "cash", 500))

            def charge_card(r: Register) -> None:  # what a card payment asks first
                for guard in r.before_charge:
                    guard(r, sale["id"])

            with pytest.raises(Conflict, match="in checkout on Register 1"):
                await r2.call(charge_card)
            listed = await r2.act(saved_sales)
            assert listed[0]["checkout"]["message"] == "in checkout on Register 1 (R1)"
            await r1.stop()  # R1 disappears: its lease lapses for R2 at once
            await wait(lambda: "R1" not in r2.node.sessions, 5, "R1 to be gone")
            paid = await r2.call(lambda r: r.add_tender(sale["id"], "cash", 500))
            assert paid["status"] == "completed"
        finally:
            await stop_all(regs)

    asyncio.run(run())

"""Chaos run: registers keep selling while the back office and the network fail.

Three real `appliance run` registers (two with their clocks skewed by libfaketime,
two hours behind and ninety minutes ahead) sell over HTTP from one thread each,
each through its own TCP proxy process to a real `appliance backoffice serve`
process. Meanwhile: the network is cut and restored, the back office is SIGKILLed
and restarted, and a register is SIGKILLed while one of its batches is in flight
(the proxy sees the push request waiting for its answer), then restarted. At the
end, with everything up again: each register's pending count is zero, nothing is
errored, every sale any register recorded — and every sale whose completion the
register acknowledged — exists exactly once in the back office, and the back office
holds exactly each register's own ops.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RegisterProcess
from tests.sync_support import (
    Admin,
    BackOfficeProcess,
    ProxyProcess,
    new_store_ids,
    register_toml,
    seed,
    wait_until,
)

pytestmark = pytest.mark.slow

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
SKEWS = {"R1": None, "R2": "-2h", "R3": "+90m"}
SALES_PER_REGISTER = 80
LOAD_SECONDS = 40
SETTLE_SECONDS = 45
CODES = ("4006381333931", "4001686301265", "BEER-EAN")


def _env(skew: str | None) -> dict[str, str]:
    if skew is None:
        return {}
    if not os.path.exists(FAKETIME_LIB):
        pytest.fail(f"{FAKETIME_LIB} missing: install Debian's libfaketime (bootstrap.sh does)")
    # FAKETIME alone: with FAKETIME_DONT_FAKE_MONOTONIC the library takes a slow path
    # on every clock read and the register runs several times slower.
    return {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": skew}


class Seller(threading.Thread):
    """Sells until it has sold enough or time is up; rides out its register's restarts."""

    def __init__(self, reg: RegisterProcess, deadline: float, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.reg, self.deadline, self.rng = reg, deadline, rng
        self.acknowledged: dict[str, str] = {}
        self.errors: list[str] = []

    def run(self) -> None:
        with self.reg.client(timeout=5) as client:
            while len(self.acknowledged) < SALES_PER_REGISTER and time.monotonic() < self.deadline:
                try:
                    self._sale(client)
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    self.errors.append(repr(exc))
                    time.sleep(0.1)  # the register is being killed or restarted

    def _sale(self, client: httpx.Client) -> None:
        sale_id = client.post("/api/sales").json()["id"]
        for code in self.rng.sample(CODES, self.rng.randint(1, 3)):
            client.post(f"/api/sales/{sale_id}/lines", json={"code": code}).raise_for_status()
        if self.rng.random() < 0.15:  # a saved sale, picked up again a moment later
            client.post(f"/api/sales/{sale_id}/park", json={"name": "tab"}).raise_for_status()
            client.post(f"/api/sales/{sale_id}/resume").raise_for_status()
        resp = client.post(
            f"/api/sales/{sale_id}/tenders", json={"kind": "cash", "amount_minor": 10_000}
        )
        resp.raise_for_status()
        sale = resp.json()
        assert sale["status"] == "completed"
        self.acknowledged[sale_id] = sale["receipt_no"]


def _own(db: Path, register_id: str) -> tuple[dict[str, str], int]:
    conn = sqlite3.connect(db)
    try:
        sales = dict(
            conn.execute(
                "SELECT id, receipt_no FROM sales WHERE status = 'completed' AND receipt_no LIKE ?",
                (f"{register_id}-%",),
            ).fetchall()
        )
        ops = conn.execute(
            "SELECT count(*) FROM ops WHERE register_id = ?", (register_id,)
        ).fetchone()[0]
    finally:
        conn.close()
    return sales, int(ops)


def _kill_mid_batch(proxy: ProxyProcess, reg: RegisterProcess, timeout: float) -> bool:
    """SIGKILL the register while the proxy sees one of its pushes waiting for an answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proxy.command("status")["pushes_in_flight"]:
            reg.kill()
            return True
        time.sleep(0.002)
    reg.kill()
    return False


def test_chaos_every_sale_exactly_once_and_nothing_pending(tmp_path: Path) -> None:
    rng = random.Random(20261124)
    started = time.monotonic()
    db_url = f"sqlite:///{tmp_path / 'bo.db'}"
    store = new_store_ids(1)[0]
    seed(db_url, (store,))
    office = BackOfficeProcess(db_url, tmp_path)
    office.start()
    admin = Admin(office.url)
    proxies: dict[str, ProxyProcess] = {}
    registers: dict[str, RegisterProcess] = {}
    sellers: dict[str, Seller] = {}
    try:
        for rid, skew in SKEWS.items():
            proxies[rid] = ProxyProcess(office.port)
            reg = RegisterProcess(tmp_path / rid, tmp_path / f"{rid}.toml", env=_env(skew))
            reg.config_file.write_text(  # type: ignore[union-attr]
                register_toml(rid, tmp_path / rid, reg.port, batch_size=20)
            )
            registers[rid] = reg
        starting = [threading.Thread(target=reg.start) for reg in registers.values()]
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join(60)
        for rid, reg in registers.items():
            with reg.client() as client:
                client.post("/api/shifts", json={"float_minor": 0}).raise_for_status()
                code = admin.pairing_code(store)
                pair = client.post("/api/sync/pair", json={"url": proxies[rid].url, "code": code})
                assert pair.status_code == 200, pair.text
        deadline = time.monotonic() + LOAD_SECONDS
        for rid, reg in registers.items():
            sellers[rid] = Seller(reg, deadline, random.Random(rng.random()))
            sellers[rid].start()

        # 1. The network to the back office drops for everyone, then comes back.
        time.sleep(1.0)
        for proxy in proxies.values():
            proxy.command("down")
        time.sleep(2.0)
        for proxy in proxies.values():
            proxy.command("up")
        # 2. A register is killed while a batch of its backlog is in flight.
        killed_mid_batch = _kill_mid_batch(proxies["R2"], registers["R2"], 5.0)
        registers["R2"].start()
        # 3. The back office is SIGKILLed under load and restarted.
        time.sleep(rng.uniform(0.3, 1.0))
        office.kill()
        time.sleep(1.5)
        office.start()
        # 4. The link of one register flaps while its backlog drains; another is killed.
        for _ in range(3):
            proxies["R3"].command("down")
            time.sleep(0.4)
            proxies["R3"].command("up")
            time.sleep(0.3)
        registers["R1"].kill()
        registers["R1"].start()
        for seller in sellers.values():
            seller.join(max(0.0, deadline - time.monotonic()) + 10)

        # Settle: everything up; every register drains on its own.
        def settled() -> bool:
            for reg in registers.values():
                st = httpx.get(f"{reg.url}/api/sync/status", headers=reg.headers, timeout=5).json()
                if not st["online"] or st["pending"] or st["errored"]:
                    return False
            return True

        wait_until(settled, SETTLE_SECONDS, "registers did not drain after the chaos", interval=0.2)
        bo_sales = admin.sales(store, status="completed")
        bo_receipts = [s["receipt_no"] for s in bo_sales]
        assert len(bo_receipts) == len(set(bo_receipts)), "a sale is in the back office twice"
        for rid, reg in registers.items():
            own, own_ops = _own(reg.data_dir / "register.db", rid)
            acked = sellers[rid].acknowledged
            assert len(acked) >= 20, f"{rid} hardly sold: {sellers[rid].errors[:3]}"
            assert all(own.get(sid) == receipt for sid, receipt in acked.items()), (
                f"{rid} lost an acknowledged sale"
            )
            in_bo = {s["sale_id"]: s["receipt_no"] for s in bo_sales if s["completed_by"] == rid}
            assert in_bo == own, f"{rid}: back office and register disagree"
            held = _bo_ops(office, store, rid)
            assert held == own_ops, f"{rid}: {own_ops} own ops, back office holds {held}"
        assert killed_mid_batch, "no push was in flight when R2 was killed"
        assert time.monotonic() - started < 150, "the chaos run ran over its time budget"
    finally:
        for reg in registers.values():
            reg.stop()
        for proxy in proxies.values():
            proxy.stop()
        admin.close()
        office.stop()


def _bo_ops(office: BackOfficeProcess, store: str, register_id: str) -> Any:
    from appliance.backoffice.storage import open_database

    db = open_database(office.db_url)
    try:
        with db.read() as tx:
            return tx.scalar(
                "SELECT count(*) FROM ops WHERE store_id = ? AND register_id = ?",
                (store, register_id),
            )
    finally:
        db.close()

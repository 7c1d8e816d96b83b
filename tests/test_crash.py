"""Kill -9 a register under load, many times: no sale it reported complete is ever lost.

A real `appliance run` process takes sales over HTTP from two client threads; at a
random moment it is SIGKILLed, restarted, and every sale whose completion the API had
acknowledged must be there, completed, with its receipt number; at the end the
database passes `PRAGMA integrity_check` and the op-log replay check.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import VENV_BIN, RegisterProcess

ROUNDS = 15
MAX_SECONDS = 120


def _sell_until_error(
    proc: RegisterProcess, acknowledged: dict[str, str], stop: threading.Event
) -> None:
    client = proc.client(timeout=5)
    try:
        while not stop.is_set():
            sid = client.post("/api/sales").json()["id"]
            for code in ("4006381333931", "4001686301265", "BAG"):
                client.post(f"/api/sales/{sid}/lines", json={"code": code}).raise_for_status()
            resp = client.post(
                f"/api/sales/{sid}/tenders", json={"kind": "cash", "amount_minor": 1_000}
            )
            resp.raise_for_status()
            sale = resp.json()
            assert sale["status"] == "completed"
            acknowledged[sid] = sale["receipt_no"]
    except (httpx.HTTPError, ValueError):
        return  # the register was killed under us
    finally:
        client.close()


def test_sigkill_under_load_loses_no_completed_sale(tmp_path: Path) -> None:
    rng = random.Random(20261123)
    proc = RegisterProcess(tmp_path / "data")
    acknowledged: dict[str, str] = {}
    started = time.monotonic()
    checked = 0
    try:
        proc.start()
        with proc.client() as client:
            client.post("/api/shifts", json={"float_minor": 0}).raise_for_status()
        for _ in range(ROUNDS):
            assert time.monotonic() - started < MAX_SECONDS, "crash test ran out of time"
            stop = threading.Event()
            workers = [
                threading.Thread(target=_sell_until_error, args=(proc, acknowledged, stop))
                for _ in range(2)
            ]
            for w in workers:
                w.start()
            time.sleep(rng.uniform(0.3, 1.2))
            proc.kill()
            stop.set()
            for w in workers:
                w.join(10)
            proc.start()
            with proc.client() as client:
                for sid in list(acknowledged)[checked:]:
                    resp = client.get(f"/api/sales/{sid}")
                    assert resp.status_code == 200, f"acknowledged sale {sid} lost"
                    sale = resp.json()
                    assert sale["status"] == "completed"
                    assert sale["receipt_no"] == acknowledged[sid]
            checked = len(acknowledged)
        assert len(acknowledged) > ROUNDS  # the load really ran
        receipts = list(acknowledged.values())
        assert len(set(receipts)) == len(receipts)
    finally:
        proc.stop()
    check = subprocess.run(
        [str(VENV_BIN / "appliance"), "db", "check", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "integrity_check: ok" in check.stdout
    # And every acknowledged sale of every round is still there after all the kills.
    conn = sqlite3.connect(tmp_path / "data" / "register.db")
    stored = dict(conn.execute("SELECT id, receipt_no FROM sales WHERE status = 'completed'"))
    conn.close()
    missing = {sid for sid in acknowledged if stored.get(sid) != acknowledged[sid]}
    assert not missing

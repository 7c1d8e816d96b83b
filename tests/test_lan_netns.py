"""Registers as real processes on a real (namespaced) LAN: discover, sync, split, heal.

Four ``appliance run`` processes, each in its own network namespace behind one
bridge, find each other by multicast DNS alone (no peer list), and keep the saved
sales in step. Pulling one register's cable is a partition: the others list it as
disconnected, a sale made there is "not found" with the reason, both sides go on
editing the same saved sale; plugging it back in heals everything to one identical
state, and each database still passes ``appliance db check``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unavailable
from tests.lan_netns import VENV_BIN, NetnsUnavailable, ShopLan

COUNT = 4
LAN = {
    "enabled": True,
    "secret": "netns-test-store-secret",
    "heartbeat_seconds": 0.3,
    "peer_timeout_seconds": 1.5,
}
COFFEE = "4006381333931"  # in the demo catalog


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[ShopLan]:
    lan = ShopLan(tmp_path, COUNT)
    try:
        try:
            lan.create()
        except NetnsUnavailable as exc:
            unavailable(
                f"cannot create network namespaces on this machine (needs root and iproute2): {exc}"
            )
        for i in range(COUNT):
            lan.start(i, LAN)
        lan.wait_ready()
        yield lan
    finally:
        lan.close()


def _connected(lan: ShopLan, i: int) -> set[str]:
    rows = lan.get(i, "/api/lan/registers")["registers"]
    return {r["register_id"] for r in rows if r["status"] == "connected"}


def _saved(lan: ShopLan, i: int) -> list[tuple[Any, ...]]:
    rows = lan.get(i, "/api/lan/sales")
    return sorted((s["id"], s["name"], s["status"], s["total"], s["lines"]) for s in rows)


def _in_step(lan: ShopLan, indices: range | list[int]) -> bool:
    views = [_saved(lan, i) for i in indices]
    return all(v == views[0] for v in views) and bool(views[0])


def test_registers_discover_sync_partition_and_heal(shop: ShopLan) -> None:
    everyone = {f"R{i + 1}" for i in range(COUNT)}
    for i in range(COUNT):
        shop.wait(lambda i=i: _connected(shop, i) == everyone - {f"R{i + 1}"}, 30, "discovery")
        assert shop.get(i, "/api/lan/status")["discovery"] is True

    # A sale saved on R1 appears on every register.
    sale = shop.post(0, "/api/sales").json()
    shop.post(0, f"/api/sales/{sale['id']}/lines", {"code": COFFEE})
    shop.post(0, f"/api/sales/{sale['id']}/park", {"name": "Table 5"})
    shop.wait(lambda: _in_step(shop, range(COUNT)), 10, "the saved sale everywhere")
    assert _saved(shop, 3)[0][:2] == (sale["id"], "Table 5")

    # Partition: R4's cable is out.
    shop.link(3, up=False)
    shop.wait(lambda: _connected(shop, 0) == {"R2", "R3"}, 10, "R1 to see R4 gone")
    r4 = next(r for r in shop.get(0, "/api/lan/registers")["registers"] if r["register_id"] == "R4")
    assert r4["status"] == "disconnected" and "disconnected since" in r4["message"]
    # Both sides edit the same saved sale; R4 also starts a sale of its own.
    assert shop.post(0, f"/api/lan/sales/{sale['id']}/rename", {"name": "Window"}).is_success
    assert shop.post(3, f"/api/lan/sales/{sale['id']}/resume").is_success
    assert shop.post(3, f"/api/sales/{sale['id']}/lines", {"code": COFFEE}).is_success
    assert shop.post(3, f"/api/sales/{sale['id']}/park", {"name": "Table 5"}).is_success
    lonely = shop.post(3, "/api/sales").json()
    shop.post(3, f"/api/sales/{lonely['id']}/lines", {"code": COFFEE})
    shop.post(3, f"/api/sales/{lonely['id']}/park", {"name": "Bar"})
    missing = shop.client.get(
        f"{shop.url(0)}/api/lan/sales/{lonely['id']}", headers=shop.headers(0)
    )
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["code"] == "sale_not_found" and error["holder"] == "R4"
    assert "held by Till 4 (R4), which is unreachable" in error["message"]
    assert error["reachable"] is False

    # Heal: every register ends with the same saved sales, both edits merged.
    shop.link(3, up=True)
    shop.wait(lambda: _in_step(shop, range(COUNT)), 20, "the partition to heal")
    docs = [shop.get(i, f"/api/sales/{sale['id']}") for i in range(COUNT)]
    assert all(doc == docs[0] for doc in docs)
    assert len(docs[0]["lines"]) == 2 and docs[0]["status"] == "parked"
    # The rename on R1 and the park on R4 both named it: the later edit (R4's) wins.
    assert docs[0]["name"] == "Table 5"
    assert shop.get(0, f"/api/lan/sales/{lonely['id']}")["name"] == "Bar"
    assert _connected(shop, 0) == {"R2", "R3", "R4"}
    for i in range(COUNT):
        check = subprocess.run(
            [str(VENV_BIN / "appliance"), "db", "check", "--db", str(shop.db_path(i))],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert check.returncode == 0, check.stdout + check.stderr

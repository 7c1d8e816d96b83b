"""Registers syncing with a real back office process over loopback TCP.

Each register runs its full app (outbox, engine, routes) on a real SQLite file; the
back office is a real `appliance backoffice serve` process; between them a real TCP
proxy process stands for the network, which the tests cut, restore or make answer
503. Asserted: automatic offline mode and drain, exactly once; 5xx retried; 4xx
set aside as errored with the server's reason, retried and downloaded; what is
refused offline; updates held while a sale is in progress; the "synced by" banner;
saved sales across registers, web orders, the saved-sales toggle; reset data.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from appliance.api import create_app
from appliance.auth.tokens import bearer_headers
from tests.conftest import CATALOG_CSV, VENV_BIN, make_config
from tests.sync_support import (
    FAST_SYNC,
    Admin,
    BackOfficeProcess,
    ProxyProcess,
    add_stores,
    new_store_ids,
    register_toml,
    seed,
    sell,
    wait_until,
)


@pytest.fixture(scope="module")
def backoffice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackOfficeProcess]:
    folder = tmp_path_factory.mktemp("bo")
    url = f"sqlite:///{folder / 'bo.db'}"
    seed(url)
    proc = BackOfficeProcess(url, folder)
    proc.start()
    yield proc
    proc.stop()


class Shop:
    """One store of the back office, its admin, and registers made on demand."""

    def __init__(self, backoffice: BackOfficeProcess, tmp_path: Path) -> None:
        from appliance.backoffice.storage import open_database

        self.store = new_store_ids(1)[0]
        db = open_database(backoffice.db_url)
        add_stores(db, (self.store,))
        db.close()
        self.bo = backoffice
        self.tmp_path = tmp_path
        self.admin = Admin(backoffice.url)
        self.proxy = ProxyProcess(backoffice.port)
        self.clients: list[TestClient] = []

    def register(self, register_id: str, direct: bool = False, **sync: Any) -> httpx.Client:
        config = make_config(
            self.tmp_path / register_id, register={"id": register_id}, sync={**FAST_SYNC, **sync}
        )
        client = TestClient(create_app(config))
        client.__enter__()
        client.headers.update(bearer_headers(config.data_dir))
        self.clients.append(client)
        client.post("/api/catalog/import", content=CATALOG_CSV).raise_for_status()
        client.post("/api/shifts", json={"float_minor": 0}).raise_for_status()
        url = self.bo.url if direct else self.proxy.url
        code = self.admin.pairing_code(self.store)
        resp = client.post("/api/sync/pair", json={"url": url, "code": code})
        assert resp.status_code == 200, resp.text
        wait_until(lambda: status(client)["online"], 10, f"{register_id} did not come online")
        return client

    def close(self) -> None:
        for client in self.clients:
            client.__exit__(None, None, None)
        self.proxy.stop()
        self.admin.close()


@pytest.fixture
def shop(backoffice: BackOfficeProcess, tmp_path: Path) -> Iterator[Shop]:
    s = Shop(backoffice, tmp_path)
    yield s
    s.close()


def status(client: httpx.Client) -> dict[str, Any]:
    result: dict[str, Any] = client.get("/api/sync/status").json()
    return result


def drained(client: httpx.Client) -> bool:
    st = status(client)
    return bool(st["online"] and st["pending"] == 0)


def test_offline_mode_is_automatic_and_the_outbox_drains_exactly_once(shop: Shop) -> None:
    r1 = shop.register("R1")
    online = [sell(r1)["receipt_no"] for _ in range(3)]
    wait_until(lambda: drained(r1), 10, "online sales not sent")
    shop.proxy.command("down")
    offline = [sell(r1)["receipt_no"] for _ in range(4)]  # selling never waits for the link
    wait_until(lambda: not status(r1)["online"], 10, "register did not notice the outage")
    st = status(r1)
    assert list(st) == ["online", "pending", "errored", "last_synced_at"]
    assert st["pending"] >= 4 * 3 and st["errored"] == []
    # Offline: new customers and products work, editing an existing customer and
    # inventory look-ups are refused with a message that says why.
    assert r1.post("/api/customers", json={"code": "NEW-1", "name": "Ann"}).status_code == 201
    edit = r1.post("/api/customers", json={"code": "NEW-1", "name": "Ann B"})
    assert edit.status_code == 503 and edit.json()["error"]["code"] == "needs_connection"
    assert "editing an existing customer" in edit.json()["error"]["message"]
    stock = r1.get("/api/sync/inventory/COFFEE")
    assert stock.status_code == 503 and "needs the connection" in stock.json()["error"]["message"]
    new = {"sku": "PIE", "name": "Offline pie", "price_minor": 250, "barcodes": ["777"]}
    assert r1.put("/api/products/PIE", json=new).status_code == 200
    assert r1.get("/api/products", params={"q": "pie"}).json()[0]["sku"] == "PIE"
    shop.proxy.command("up")
    wait_until(lambda: drained(r1), 15, "outbox did not drain after the outage")
    assert r1.post("/api/customers", json={"code": "NEW-1", "name": "Ann B"}).status_code == 201
    sales = shop.admin.sales(shop.store, status="completed")
    receipts = [s["receipt_no"] for s in sales]
    assert sorted(receipts) == sorted(online + offline)  # each exactly once
    products = shop.admin.http.get(f"/api/v1/stores/{shop.store}/products").json()
    assert "PIE" in {p["sku"] for p in products}
    assert status(r1)["last_synced_at"] is not None


def test_status_command_prints_the_contract(shop: Shop, tmp_path: Path) -> None:
    config_file = tmp_path / "r9.toml"
    data = tmp_path / "r9-data"
    config_file.write_text(register_toml("R9", data, 0))
    out = subprocess.run(
        [str(VENV_BIN / "appliance"), "sync", "status", "--config", str(config_file)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and "does not exist" in out.stderr  # no database yet
    client = TestClient(
        create_app(make_config(tmp_path, register={"id": "R9", "data_dir": str(data)}))
    )
    with client:
        client.headers.update(bearer_headers(data))
        sell_setup = client.post("/api/shifts", json={"float_minor": 0})
        assert sell_setup.status_code == 201
        client.post("/api/customers", json={"code": "X", "name": "Y"})
    out = subprocess.run(
        [str(VENV_BIN / "appliance"), "sync", "status", "--config", str(config_file)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc == {"online": False, "pending": 2, "errored": [], "last_synced_at": None}


def test_5xx_is_retried_and_4xx_is_set_aside_with_the_reason(shop: Shop) -> None:
    r1 = shop.register("R1")
    r2 = shop.register("R2", direct=True)
    shop.proxy.command("503")
    receipt = sell(r1)["receipt_no"]
    wait_until(lambda: not status(r1)["online"], 10, "503 did not show as a link problem")
    st = status(r1)
    assert st["pending"] > 0 and st["errored"] == []  # 5xx is not the op's fault
    shop.proxy.command("up")
    wait_until(lambda: drained(r1), 15, "not retried after the 503s")
    assert receipt in {s["receipt_no"] for s in shop.admin.sales(shop.store)}
    # While R1 is offline, R2 registers customer code C9 and R1 gives C9 to someone
    # else: the back office refuses R1's C9 (4xx) and says why.
    shop.proxy.command("down")
    wait_until(lambda: not status(r1)["online"], 10, "outage not noticed")
    r2.post("/api/customers", json={"code": "C9", "name": "Carla"}).raise_for_status()
    wait_until(lambda: drained(r2), 10, "R2 did not send its customer")
    r1.post("/api/customers", json={"code": "C9", "name": "Carl"}).raise_for_status()
    later = sell(r1)["receipt_no"]  # ops after the refused one still go through
    shop.proxy.command("up")
    errored = wait_until(lambda: status(r1)["errored"], 10, "no errored item")
    assert len(errored) == 1 and set(errored[0]) == {"id", "kind", "error", "at"}
    assert errored[0]["kind"] == "customer.upsert"
    assert "C9" in errored[0]["error"] and "already belongs" in errored[0]["error"]
    wait_until(lambda: status(r1)["pending"] == 0, 10, "ops after the errored one not sent")
    assert later in {s["receipt_no"] for s in shop.admin.sales(shop.store)}
    download = r1.get("/api/sync/errored/download")
    assert "attachment" in download.headers["content-disposition"]
    item = download.json()["errored"][0]
    assert item["op"]["payload"]["customer"]["name"] == "Carl"
    still = r1.post(f"/api/sync/errored/{errored[0]['id']}/retry").json()
    assert still["still_errored"] and status(r1)["errored"]
    # The manager frees the code in the back office; retrying now succeeds.
    customers = shop.admin.http.get(f"/api/v1/stores/{shop.store}/customers").json()
    shop.admin.http.delete(
        f"/api/v1/stores/{shop.store}/customers/{customers[0]['customer_id']}"
    ).raise_for_status()
    done = r1.post("/api/sync/errored/retry").json()
    assert done["synced"] == [errored[0]["id"]] and status(r1)["errored"] == []
    codes = shop.admin.http.get(f"/api/v1/stores/{shop.store}/customers").json()
    assert [(c["code"], c["name"]) for c in codes] == [("C9", "Carl")]


def test_updates_wait_while_a_sale_is_in_progress(shop: Shop) -> None:
    r1 = shop.register("R1")
    wait_until(lambda: drained(r1), 10, "catalog not sent")
    sale_id = r1.post("/api/sales").json()["id"]
    r1.post(f"/api/sales/{sale_id}/lines", json={"code": "COFFEE"}).raise_for_status()
    shop.admin.http.put(
        f"/api/v1/stores/{shop.store}/products/COFFEE",
        json={
            "name": "Coffee 250 g",
            "price_minor": 555,
            "barcodes": ["4006381333931"],
            "tax_category": "reduced",
        },
    ).raise_for_status()
    wait_until(
        lambda: r1.get("/api/sync").json()["waiting_updates"] == ["catalog"],
        10,
        "the price change did not arrive",
    )
    assert r1.get("/api/products/COFFEE").json()["price"] == 499  # not mid-sale
    held = r1.post("/api/sync/now", json={"by": "Bob"}).json()  # answers, applies later
    assert held["synced"] is False and held["waiting_updates"] == ["catalog"]
    sale = r1.post(f"/api/sales/{sale_id}/tenders", json={"kind": "cash", "amount_minor": 499})
    assert sale.json()["totals"]["total"] == 499
    wait_until(
        lambda: r1.get("/api/products/COFFEE").json()["price"] == 555,
        10,
        "the held update was not applied right after the sale",
    )
    assert r1.get("/api/sync").json()["waiting_updates"] == []
    wait_until(
        lambda: shop.admin.registers(shop.store)["R1"]["last_sync_by"] == "Bob",
        10,
        "the held sync was not reported when it completed",
    )


def test_a_sync_from_the_back_office_shows_who_synced(shop: Shop) -> None:
    r1 = shop.register("R1")
    shop.register("R2")
    tax = {"mode": "inclusive", "rates": {"standard": "20", "reduced": "7", "zero": "0"}}
    shop.admin.http.put(f"/api/v1/stores/{shop.store}/bundles/taxes", json=tax).raise_for_status()
    result = shop.admin.http.post(f"/api/v1/stores/{shop.store}/registers/sync").json()
    assert sorted(result["requested"]) == ["R1", "R2"]
    banner = wait_until(lambda: r1.get("/api/sync/banner").json(), 10, "no banner")
    assert banner["by"] == "Alice Admin" and "Alice Admin synced" in banner["text"]
    sale = sell(r1, ("BEER",))  # the pushed standard rate (20 %) is in force
    assert sale["lines"][0]["rate_ppm"] == 200_000
    registers = wait_until(
        lambda: (regs := shop.admin.registers(shop.store))["R2"]["last_sync_by"] and regs,
        10,
        "last synced not reported",
    )
    assert registers["R1"]["last_sync_by"] == "Alice Admin" and registers["R1"]["online"]
    r1.post("/api/sync/banner/dismiss").raise_for_status()
    assert r1.get("/api/sync/banner").json() is None
    # A sync started at the register updates "last synced" too.
    assert r1.post("/api/sync/now", json={"by": "Bob at the counter"}).json()["synced"]
    assert shop.admin.registers(shop.store)["R1"]["last_sync_by"] == "Bob at the counter"


def _parked(client: httpx.Client) -> dict[str, str]:
    return {
        s["id"]: s["name"] for s in client.get("/api/sales", params={"status": "parked"}).json()
    }


def test_saved_sales_travel_between_registers_and_the_toggle_hands_them_over(shop: Shop) -> None:
    r1, r2 = shop.register("R1"), shop.register("R2")
    sale_id = r1.post("/api/sales").json()["id"]
    r1.post(f"/api/sales/{sale_id}/lines", json={"code": "BEER"}).raise_for_status()
    r1.post(f"/api/sales/{sale_id}/park", json={"name": "table 7"}).raise_for_status()
    wait_until(lambda: sale_id in _parked(r2), 10, "saved sale did not reach R2")
    key = shop.admin.http.post(
        f"/api/v1/stores/{shop.store}/webshop-keys", json={"name": "web"}
    ).json()["key"]
    order = httpx.post(
        f"{shop.bo.url}/api/v1/webshop/orders",
        json={"order_id": "W-77", "lines": [{"sku": "COFFEE", "qty": 2}]},
        headers={"Authorization": f"Bearer {key}"},
    ).json()
    for client in (r1, r2):
        wait_until(lambda c=client: order["sale_id"] in _parked(c), 10, "web order missing")
    # A register paired now has the store's saved sales at once.
    r3 = shop.register("R3")
    wait_until(lambda: set(_parked(r3)) == {sale_id, order["sale_id"]}, 10, "R3 lacks them")
    # R2 finishes the web order; the others see it finished.
    r2.post(f"/api/sales/{order['sale_id']}/resume").raise_for_status()
    r2.post(
        f"/api/sales/{order['sale_id']}/tenders", json={"kind": "cash", "amount_minor": 998}
    ).raise_for_status()
    wait_until(lambda: order["sale_id"] not in _parked(r1), 10, "completion not relayed")
    # R1 turns saved-sales sync off: its saved sales go to the others, then leave R1.
    mine = r1.post("/api/sales").json()["id"]
    r1.post(f"/api/sales/{mine}/lines", json={"code": "CARD"}).raise_for_status()
    r1.post(f"/api/sales/{mine}/park", json={"name": "R1 only"}).raise_for_status()
    off = r1.put("/api/sync/settings", json={"saved_sales_sync": False})
    assert off.status_code == 200, off.text
    assert off.json()["handed_over"] == 2
    assert _parked(r1) == {}
    wait_until(lambda: {sale_id, mine} <= set(_parked(r2)), 10, "not handed to R2")
    check = r1.post("/api/sales").json()["id"]  # R1 still sells; its new saved sales stay
    r1.post(f"/api/sales/{check}/lines", json={"code": "BEER"}).raise_for_status()
    r1.post(f"/api/sales/{check}/park", json={"name": "local"}).raise_for_status()
    wait_until(lambda: drained(r1), 10, "R1 stopped sending")
    assert check not in _parked(r2)
    assert status(r1)["errored"] == []
    assert check in {s["sale_id"] for s in shop.admin.sales(shop.store)}  # still backed up
    on = r1.put("/api/sync/settings", json={"saved_sales_sync": True}).json()
    assert on["saved_sales_sync"]
    wait_until(lambda: {sale_id, mine} <= set(_parked(r1)), 10, "saved sales not back on R1")


def test_reset_warns_refuses_unexported_data_and_restores(shop: Shop) -> None:
    r1 = shop.register("R1")
    first = sell(r1)["receipt_no"]
    wait_until(lambda: drained(r1), 10, "not sent")
    shop.proxy.command("down")
    unsynced = sell(r1)["receipt_no"]
    wait_until(lambda: not status(r1)["online"], 10, "outage not noticed")
    preview = r1.get("/api/sync/reset").json()
    assert preview["export_required"] and preview["sales"]["completed"] == [unsynced]
    assert "1 completed sale(s) not yet in the back office" in preview["warning"]
    refused = r1.post("/api/sync/reset", json={"confirm": True})
    assert refused.status_code == 409 and "Export" in refused.json()["error"]["message"]
    export = r1.get("/api/sync/export")
    assert "attachment" in export.headers["content-disposition"]
    assert {op["sale_id"] for op in export.json()["ops"] if op["sale_id"]}
    assert not r1.get("/api/sync/reset").json()["export_required"]
    offline = r1.post("/api/sync/reset", json={"confirm": True})
    assert offline.status_code == 503  # restoring needs the back office
    shop.proxy.command("up")
    wait_until(lambda: drained(r1), 15, "not drained")
    done = r1.post("/api/sync/reset", json={"confirm": True})
    assert done.status_code == 200, done.text
    assert done.json()["restored_ops"] > 0 and Path(done.json()["backup"]).exists()
    assert r1.get(f"/api/receipts/{first}").json()["receipt_no"] == first
    wait_until(lambda: r1.get("/api/products/COFFEE").status_code == 200, 10, "no catalog")
    shift = r1.get("/api/shifts/current").json()
    assert shift is not None  # the open shift came back with the register's history
    after = sell(r1)["receipt_no"]
    assert after == "R1-000003"  # numbering goes on; no receipt number used twice
    wait_until(lambda: drained(r1), 10, "not sent after reset")
    receipts = [s["receipt_no"] for s in shop.admin.sales(shop.store, status="completed")]
    assert sorted(receipts) == sorted([first, unsynced, after])


def test_retry_now_and_network_changes_probe_at_once(shop: Shop) -> None:
    r1 = shop.register("R1", probe_min_seconds=30.0, probe_max_seconds=60.0)
    shop.proxy.command("down")
    sell(r1)
    wait_until(lambda: not status(r1)["online"], 10, "outage not noticed")
    shop.proxy.command("up")
    engine = r1.app.state.sync  # type: ignore[attr-defined]
    # Well inside the 15-30 s backoff: only the network change can bring it back now.
    r1.portal.call(engine.network_changed)  # type: ignore[attr-defined]
    wait_until(lambda: drained(r1), 5, "a network change did not trigger a probe")
    shop.proxy.command("down")
    sell(r1)
    wait_until(lambda: not status(r1)["online"], 10, "outage not noticed")
    started = time.monotonic()
    assert r1.post("/api/sync/now").json()["synced"] is False  # says so, does not hang
    assert time.monotonic() - started < 5
    shop.proxy.command("up")
    assert r1.post("/api/sync/now").json()["synced"]
    assert drained(r1)


def test_accounts_pushed_by_the_back_office_log_in_at_the_register(shop: Shop) -> None:
    import hashlib

    salt = bytes(range(16))
    key = hashlib.scrypt(b"counter-pass-1", salt=salt, n=2**14, r=8, p=1, dklen=32)
    users = {
        "users": [
            {
                "username": "maria",
                "name": "Maria Manager",
                "role": "manager",
                "password_hash": f"scrypt${2**14}$8$1${salt.hex()}${key.hex()}",
                "pin_hash": None,
                "disabled": False,
            }
        ]
    }
    r1 = shop.register("R1")
    shop.admin.http.put(f"/api/v1/stores/{shop.store}/bundles/users", json=users).raise_for_status()
    shop.admin.http.post(f"/api/v1/stores/{shop.store}/registers/sync").raise_for_status()
    listed = wait_until(
        lambda: {u["username"]: u for u in r1.get("/api/users").json()}.get("maria"),
        10,
        "the pushed account did not arrive",
    )
    assert listed["role"] == "manager" and listed["name"] == "Maria Manager"
    origin = {"origin": "http://testserver"}
    wrong = r1.post(
        "/auth/login", json={"username": "maria", "password": "not-her-pass"}, headers=origin
    )
    assert wrong.status_code == 401
    ok = r1.post(
        "/auth/login", json={"username": "maria", "password": "counter-pass-1"}, headers=origin
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["user"]["role"] == "manager"

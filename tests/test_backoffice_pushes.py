"""What the back office pushes to registers: catalog removals, customers, and reset.

Real registers (the full app on SQLite files, in-process) pair with a real
`appliance backoffice serve` process over a real TCP proxy, once on a SQLite and
once on a PostgreSQL back office. Asserted:

- a product removed in the back office (or a barcode taken off one) is refused by
  the registers with "not found" after their next sync, while sales made with it
  and saved sales holding it are untouched; the removal waits for the sale in
  progress like every update;
- a customer edited in the back office reaches every register of the store; a
  register's offline-created customer reaches the back office exactly once; last
  writer wins by HLC on both sides, so an older version never clobbers a newer one;
- "reset data" drops the back office's rows of the settings overlay (the admin
  panel's stay) and the back office sends them again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance import settings
from appliance.config import Config
from appliance.register import Register
from appliance.sync import bundles, reset
from tests.conftest import make_config
from tests.sync_support import BackOfficeProcess, backoffice_db_url, sell, wait_until
from tests.test_sync_register import Shop, drained, status

__all__ = ["backoffice_db_url"]


@pytest.fixture(scope="module")
def backoffice(
    backoffice_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BackOfficeProcess]:
    proc = BackOfficeProcess(backoffice_db_url, tmp_path_factory.mktemp("bo"))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def shop(backoffice: BackOfficeProcess, tmp_path: Path) -> Iterator[Shop]:
    s = Shop(backoffice, tmp_path)
    yield s
    s.close()


def _bo(shop: Shop, method: str, path: str, **kw: Any) -> httpx.Response:
    return shop.admin.http.request(method, f"/api/v1/stores/{shop.store}{path}", **kw)


def _lookup(client: httpx.Client, code: str) -> httpx.Response:
    return client.get("/api/catalog/lookup", params={"code": code})


def test_a_product_removed_in_the_back_office_is_not_found_after_the_next_sync(
    shop: Shop,
) -> None:
    r1, r2 = shop.register("R1"), shop.register("R2")
    sold = sell(r1, ("4006381333931",))  # COFFEE, before it goes
    saved = r1.post("/api/sales").json()["id"]
    r1.post(f"/api/sales/{saved}/lines", json={"code": "COFFEE"}).raise_for_status()
    r1.post(f"/api/sales/{saved}/park", json={"name": "table 3"}).raise_for_status()
    for client in (r1, r2):
        wait_until(lambda c=client: drained(c), 10, "not drained")
    skus = {p["sku"] for p in _bo(shop, "GET", "/products").json()}
    assert {"COFFEE", "BEER"} <= skus
    # R2 has a sale in progress: the removal waits for it, as every update does.
    busy = r2.post("/api/sales").json()["id"]
    r2.post(f"/api/sales/{busy}/lines", json={"code": "COFFEE"}).raise_for_status()
    gone = _bo(shop, "DELETE", "/products/COFFEE")
    assert gone.status_code == 200, gone.text
    # BEER loses one of its two barcodes (a change, not a removal).
    beer = {"name": "Beer 0.5 l", "price_minor": 249, "barcodes": ["BEER-EAN"]}
    _bo(shop, "PUT", "/products/BEER", json=beer).raise_for_status()
    assert "COFFEE" not in {p["sku"] for p in _bo(shop, "GET", "/products").json()}
    again = _bo(shop, "DELETE", "/products/COFFEE")
    assert again.status_code == 404 and "COFFEE" in again.json()["error"]["message"]

    # Two changes, two bundle versions: wait for both (the removal may land first).
    wait_until(
        lambda: (
            _lookup(r1, "COFFEE").status_code == 404
            and _lookup(r1, "4001686301265").status_code == 404
        ),
        10,
        "R1 still sells COFFEE or BEER by its removed barcode",
    )
    for code in ("4006381333931", "COFFEE", "4001686301265"):
        refused = _lookup(r1, code)
        assert refused.status_code == 404, (code, refused.text)
        assert refused.json()["error"]["code"] == "not_found"
        assert code in refused.json()["error"]["message"]
    line = r1.post(
        f"/api/sales/{r1.post('/api/sales').json()['id']}/lines", json={"code": "COFFEE"}
    )
    assert line.status_code == 404 and line.json()["error"]["code"] == "not_found"
    assert _lookup(r1, "BEER-EAN").json()["sku"] == "BEER"
    # What was sold and saved with it is untouched, and the saved sale still completes.
    receipt = r1.get(f"/api/receipts/{sold['receipt_no']}").json()
    assert [x["sku"] for x in receipt["lines"]] == ["COFFEE"]
    r1.post(f"/api/sales/{saved}/resume").raise_for_status()
    done = r1.post(f"/api/sales/{saved}/tenders", json={"kind": "cash", "amount_minor": 499})
    assert done.status_code == 201, done.text
    assert done.json()["status"] == "completed" and done.json()["totals"]["total"] == 499

    # R2 keeps selling COFFEE in the sale it had open; the removal applies right after.
    wait_until(
        lambda: set(r2.get("/api/sync").json()["waiting_updates"]) == {"catalog"},
        10,
        "the removal did not reach R2",
    )
    assert _lookup(r2, "COFFEE").status_code == 200
    r2.post(
        f"/api/sales/{busy}/tenders", json={"kind": "cash", "amount_minor": 499}
    ).raise_for_status()
    wait_until(lambda: _lookup(r2, "COFFEE").status_code == 404, 10, "not applied after the sale")
    for client in (r1, r2):
        wait_until(lambda c=client: drained(c), 10, "not drained")
        assert status(client)["errored"] == []
    completed = {s["sale_id"] for s in shop.admin.sales(shop.store, status="completed")}
    assert {sold["id"], saved, busy} <= completed
    # Putting the product back makes it sellable again.
    coffee = {"name": "Coffee", "price_minor": 520, "barcodes": ["4006381333931"]}
    _bo(shop, "PUT", "/products/COFFEE", json={**coffee, "tax_category": "reduced"})
    wait_until(
        lambda: _lookup(r1, "4006381333931").status_code == 200, 10, "COFFEE did not come back"
    )
    assert _lookup(r1, "4006381333931").json()["price"] == 520


def test_customers_edited_in_the_back_office_reach_every_register(shop: Shop) -> None:
    r1, r2 = shop.register("R1"), shop.register("R2")
    shop.proxy.command("down")
    wait_until(lambda: not status(r1)["online"], 10, "outage not noticed")
    made = r1.post("/api/customers", json={"code": "C-100", "name": "Ann Offline"})
    assert made.status_code == 201, made.text  # new customers work offline
    customer_id = made.json()["id"]
    shop.proxy.command("up")
    wait_until(lambda: drained(r1), 15, "offline customer not sent")
    rows = _bo(shop, "GET", "/customers").json()
    assert [(c["customer_id"], c["name"]) for c in rows] == [(customer_id, "Ann Offline")]

    edit = _bo(shop, "PUT", f"/customers/{customer_id}", json={"code": "C-200", "name": "Ann B"})
    assert edit.status_code == 200, edit.text
    for client in (r1, r2):
        wait_until(
            lambda c=client: c.get("/api/customers/C-200").status_code == 200,
            10,
            "the back office's edit did not arrive",
        )
        assert client.get("/api/customers/C-200").json() == {
            "id": customer_id,
            "code": "C-200",
            "name": "Ann B",
            "email": None,
        }
        assert client.get("/api/customers/C-100").status_code == 404
    # R1 edits her afterwards: its version is newer, the back office and R2 take it,
    # and the back office's older version never comes back over it.
    r1.post("/api/customers", json={"code": "C-200", "name": "Ann Register"}).raise_for_status()
    wait_until(lambda: drained(r1), 10, "edit not sent")
    wait_until(
        lambda: r2.get("/api/customers/C-200").json()["name"] == "Ann Register",
        10,
        "R1's edit did not reach R2",
    )
    rows = _bo(shop, "GET", "/customers").json()
    assert [(c["customer_id"], c["name"]) for c in rows] == [(customer_id, "Ann Register")]
    assert r1.get("/api/customers/C-200").json()["name"] == "Ann Register"
    # A code another customer holds is refused with the reason, nothing changed.
    other = r2.post("/api/customers", json={"code": "C-300", "name": "Bob"}).json()["id"]
    wait_until(lambda: drained(r2), 10, "not sent")
    taken = _bo(shop, "PUT", f"/customers/{other}", json={"code": "C-200", "name": "Bob"})
    assert taken.status_code == 409 and "C-200" in taken.json()["error"]["message"]
    for client in (r1, r2):
        assert status(client)["errored"] == []


def _register(tmp_path: Path, name: str = "R9") -> Register:
    return Register(make_config(tmp_path / name, register={"id": name}))


def _bo_hlc(wall_ms: int) -> str:
    return f"{wall_ms:013d}.000000.bo"


def test_an_older_customer_version_from_the_back_office_changes_nothing(tmp_path: Path) -> None:
    reg = _register(tmp_path)
    try:
        mine = reg.upsert_customer("K-1", "Kim (register)")
        older = {**mine, "name": "Kim (old back office)", "hlc": _bo_hlc(1)}
        newer_other = {"id": "x1", "code": "K-2", "name": "Lee", "hlc": _bo_hlc(2)}
        out = bundles.apply_bundles(
            reg, [{"kind": "customers", "version": 5, "payload": {"customers": [older]}}]
        )
        assert out == [{"kind": "customers", "version": 5, "applied": True}]
        assert reg.customer("K-1")["name"] == "Kim (register)"
        newer = {**mine, "name": "Kim (back office)", "hlc": "9" * 13 + ".000000.bo"}
        bad = {"id": "x2", "code": "K-1", "name": "Clash", "hlc": _bo_hlc(3)}
        out = bundles.apply_bundles(
            reg,
            [{"kind": "customers", "version": 6, "payload": {"customers": [newer, bad]}}],
        )
        assert not out[0]["applied"] and "K-1" in out[0]["error"]  # all or nothing
        assert reg.customer("K-1")["name"] == "Kim (register)"
        assert reg.state.customer_by_code("K-2") is None
        out = bundles.apply_bundles(
            reg,
            [
                {
                    "kind": "customers",
                    "version": 7,
                    "payload": {"customers": [newer, newer_other]},
                }
            ],
        )
        assert out[0]["applied"], out
        assert reg.customer("K-1")["name"] == "Kim (back office)"
        assert reg.customer("K-2")["name"] == "Lee"
        # The bo ops are never sent back (the outbox sends only the register's own).
        kinds = reg.conn.execute(
            "SELECT register_id, count(*) FROM ops WHERE kind = 'customer.upsert'"
            " GROUP BY register_id ORDER BY register_id"
        ).fetchall()
        assert kinds == [("R9", 1), ("bo", 2)]
    finally:
        reg.close()


def test_reset_drops_the_back_offices_settings_rows_and_keeps_the_admin_ones(
    tmp_path: Path,
) -> None:
    base = make_config(tmp_path / "R9", register={"id": "R9"})  # the config file
    reg = Register(base)
    try:
        seen: list[Config] = []
        settings.watch(reg, seen.append)
        header = ["FROM THE BACK OFFICE"]
        out = bundles.apply_bundles(
            reg, [{"kind": "settings", "version": 3, "payload": {"receipt": {"header": header}}}]
        )
        assert out[0]["applied"], out
        settings.change(reg, {"store.receipt_footer": ["admin footer"]}, "admin", "alice")
        assert reg.config.store.receipt_header == header
        backup = reset.wipe(reg, tmp_path)
        settings.reload(reg, base)
        rows = reg.conn.execute("SELECT key, source FROM settings_overlay").fetchall()
        assert rows == [("store.receipt_footer", "admin")]
        assert reg.conn.execute("SELECT count(*) FROM sync_bundles").fetchone()[0] == 0
        assert reg.config.store.receipt_header == base.store.receipt_header != header
        assert reg.config.store.receipt_footer == ["admin footer"]
        assert seen[-1] is reg.config  # the printing/payments watchers heard of it
        with sqlite3.connect(backup) as old:  # the backup still holds what was wiped
            kept = old.execute("SELECT value FROM settings_overlay WHERE source = 'backoffice'")
            assert [json.loads(v) for (v,) in kept] == [header]
    finally:
        reg.close()


def test_after_reset_the_register_holds_what_the_back_office_holds_now(shop: Shop) -> None:
    r1 = shop.register("R1")
    default = r1.get("/api/settings").json()["values"]["store.receipt_header"]
    old, footer = ["Old header"], ["Thanks, from the back office"]
    _bo(shop, "PUT", "/bundles/settings", json={"receipt": {"header": old}}).raise_for_status()

    def values() -> dict[str, Any]:
        found: dict[str, Any] = r1.get("/api/settings").json()["values"]
        return found

    wait_until(lambda: values()["store.receipt_header"] == old, 10, "settings not applied")
    # The back office's settings now name only a footer: the overlay keeps the old
    # header (a bundle changes the keys it names) until a reset starts afresh.
    _bo(shop, "PUT", "/bundles/settings", json={"receipt": {"footer": footer}})
    wait_until(lambda: values()["store.receipt_footer"] == footer, 10, "footer not applied")
    assert values()["store.receipt_header"] == old
    wait_until(lambda: drained(r1), 10, "not drained")
    done = r1.post("/api/sync/reset", json={"confirm": True})
    assert done.status_code == 200, done.text
    wait_until(lambda: values()["store.receipt_footer"] == footer, 10, "not sent again")
    assert values()["store.receipt_header"] == default != old
    changed = r1.get("/api/settings").json()["changed"]
    assert [(c["key"], c["source"]) for c in changed] == [("store.receipt_footer", "backoffice")]

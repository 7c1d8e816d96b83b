"""The back office on SQLite and on PostgreSQL: the same behaviour on both.

Real ops from real registers (``Register`` on SQLite files) are pushed to the back
office's HTTP API (in-process ASGI, the real database): every op is stored exactly
once however often and in whatever batches it arrives; hostile payloads are refused
with an error naming the field and store nothing; pairing codes work once and tokens
only reach their own store; only users with the sites permission sync registers;
saved sales and web orders are relayed to the store's registers.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from appliance.backoffice.app import create_backoffice_app
from appliance.backoffice.storage import Database, open_database
from appliance.register import Register
from appliance.replication import apply_remote, ops_since
from tests.conftest import CATALOG_CSV, make_config
from tests.sync_support import ADMIN_PASSWORD, add_stores, backoffice_db_url, new_store_ids

__all__ = ["backoffice_db_url"]


class BO:
    def __init__(self, db_url: str) -> None:
        self.db: Database = open_database(db_url)
        self.s1, self.s2 = new_store_ids(2)
        add_stores(self.db, (self.s1, self.s2))
        self.client = TestClient(create_backoffice_app(self.db))
        self.client.__enter__()
        token = self.login("admin", ADMIN_PASSWORD)
        self.admin = {"Authorization": f"Bearer {token}"}

    def login(self, username: str, password: str) -> str:
        resp = self.client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        assert resp.status_code == 200, resp.text
        token: str = resp.json()["token"]
        return token

    def pair(self, register_id: str, store: str | None = None) -> dict[str, str]:
        store = store or self.s1
        code = self.client.post(
            f"/api/v1/stores/{store}/pairing-codes", json={}, headers=self.admin
        ).json()["code"]
        resp = self.client.post("/api/v1/pair", json={"code": code, "register_id": register_id})
        assert resp.status_code == 200, resp.text
        return {"Authorization": f"Bearer {resp.json()['token']}"}

    def push(self, headers: dict[str, str], ops: list[dict[str, Any]]) -> Any:
        return self.client.post("/api/v1/sync/push", json={"ops": ops}, headers=headers)

    def count(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        with self.db.read() as tx:
            return int(tx.scalar(sql, params))

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.db.close()


@pytest.fixture
def bo(backoffice_db_url: str) -> Iterator[BO]:
    office = BO(backoffice_db_url)
    yield office
    office.close()


def make_register(tmp_path: Path, register_id: str) -> Register:
    reg = Register(make_config(tmp_path / register_id, register={"id": register_id}))
    return reg


def ring_up(reg: Register, n: int) -> list[str]:
    reg.open_shift(0)
    receipts = []
    for i in range(n):
        sale = reg.open_sale()
        reg.add_line(sale["id"], "4006381333931", qty=1 + i % 3)
        receipts.append(reg.add_tender(sale["id"], "cash", 10**5)["receipt_no"])
    return receipts


def test_every_op_is_stored_exactly_once_in_any_batches_and_order(bo: BO, tmp_path: Path) -> None:
    reg = make_register(tmp_path, "R1")
    reg.import_catalog_csv(CATALOG_CSV, "c.csv")
    receipts = ring_up(reg, 12)
    reg.upsert_customer("C-1", "Ann")
    parked = reg.open_sale()
    reg.add_line(parked["id"], "BEER")
    reg.park(parked["id"], "table 4")
    reg.close_shift(0)
    ops = [{k: v for k, v in op.items() if k != "seq"} for op in ops_since(reg, 0, 10**6)]
    headers = bo.pair("R1")
    rng = random.Random(7)
    for _ in range(3):  # the same ops again and again, in random overlapping batches
        shuffled = ops[:]
        rng.shuffle(shuffled)
        while shuffled:
            size = rng.randint(1, 15)
            batch, shuffled = shuffled[:size], shuffled[size:]
            resp = bo.push(headers, batch + batch[:1])  # a duplicate inside the batch too
            assert resp.status_code == 200, resp.text
    assert bo.count("SELECT count(*) FROM ops WHERE store_id = ?", (bo.s1,)) == len(ops)
    sales = bo.client.get(f"/api/v1/stores/{bo.s1}/sales", headers=bo.admin).json()
    completed = [s for s in sales if s["status"] == "completed"]
    assert sorted(s["receipt_no"] for s in completed) == sorted(receipts)
    mine = {s["id"]: s for s in reg.state.sales()}
    for sale in completed:
        assert sale["total"] == mine[sale["sale_id"]]["totals"]["total"]
        assert sale["fold_error"] is None
    assert [s["name"] for s in sales if s["status"] == "parked"] == ["table 4"]
    shifts = bo.client.get(f"/api/v1/stores/{bo.s1}/shifts", headers=bo.admin).json()
    assert [(s["status"], s["z_no"]) for s in shifts] == [("closed", 1)]
    customers = bo.client.get(f"/api/v1/stores/{bo.s1}/customers", headers=bo.admin).json()
    assert [c["code"] for c in customers] == ["C-1"]
    products = bo.client.get(f"/api/v1/stores/{bo.s1}/products", headers=bo.admin).json()
    assert {p["sku"] for p in products} >= {"COFFEE", "BEER", "APPLES"}
    # Nothing leaked into the other store.
    assert bo.count("SELECT count(*) FROM ops WHERE store_id = ?", (bo.s2,)) == 0
    reg.close()


def _sale_open_op(register_id: str = "R1", **changes: Any) -> dict[str, Any]:
    op = {
        "op_id": "op-1",
        "register_id": register_id,
        "hlc": "1790000000000.000000.R1",
        "sale_id": "sale1",
        "kind": "sale.open",
        "payload": {
            "kind": "sale",
            "pricing": {
                "tax_mode": "inclusive",
                "tax_rounding": "per_total",
                "cash_rounding": 1,
                "currency": "EUR",
            },
            "opened_at": "2026-01-01T10:00:00.000Z",
        },
    }
    op.update(changes)
    return op


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


HOSTILE: list[tuple[str, Any, str]] = [
    ("not JSON", b"{ops: [", "body"),
    ("deeply nested JSON", ('{"ops": ' + _nested(100_000) + "}").encode(), "body"),
    ("ops not a list", {"ops": {"a": 1}}, "ops"),
    ("op not an object", {"ops": [42]}, "ops[0]"),
    (
        "missing op_id",
        {"ops": [{k: v for k, v in _sale_open_op().items() if k != "op_id"}]},
        "ops[0].op_id",
    ),
    ("bad HLC", {"ops": [_sale_open_op(hlc="yesterday")]}, "ops[0].hlc"),
    ("op id with SQL", {"ops": [_sale_open_op(op_id="x'); DROP TABLE ops;--")]}, "ops[0].op_id"),
    ("kind with spaces", {"ops": [_sale_open_op(kind="sale open")]}, "ops[0].kind"),
    ("unknown envelope key", {"ops": [{**_sale_open_op(), "evil": 1}]}, "ops[0].evil"),
    ("payload wrong type", {"ops": [_sale_open_op(payload=[1, 2])]}, "ops[0].payload"),
    (
        "sale.open with a bad pricing",
        {"ops": [_sale_open_op(payload={"kind": "sale", "pricing": "cheap", "opened_at": "x"})]},
        "ops[0].payload.pricing",
    ),
    (
        "line with a text price",
        {
            "ops": [
                _sale_open_op(),
                _sale_open_op(
                    op_id="op-2",
                    kind="sale.line_add",
                    payload={
                        "line": {
                            "id": "l",
                            "no": 1,
                            "sku": "A",
                            "name": "A",
                            "unit": "unit",
                            "qty": 1,
                            "unit_price": "1e9",
                            "tax_category": "standard",
                            "rate_ppm": 190000,
                        }
                    },
                ),
            ]
        },
        "ops[1].payload.line.unit_price",
    ),
    ("sale op without sale id", {"ops": [_sale_open_op(sale_id=None)]}, "ops[0].sale_id"),
    ("another register's op", {"ops": [_sale_open_op(register_id="R9")]}, "ops[0].register_id"),
    ("too many ops", {"ops": [_sale_open_op(op_id=f"o{i}") for i in range(1001)]}, "ops"),
    (
        "huge payload",
        {"ops": [_sale_open_op(payload={**_sale_open_op()["payload"], "x": "y" * 300_000})]},
        "ops[0].payload",
    ),
    ("body over the limit", b'{"ops": ["' + b"x" * (17 * 1024 * 1024) + b'"]}', "body"),
]


def test_hostile_pushes_are_refused_with_a_clear_error_and_store_nothing(bo: BO) -> None:
    headers = bo.pair("R1")
    for what, body, field in HOSTILE:
        if isinstance(body, bytes):
            resp = bo.client.post(
                "/api/v1/sync/push",
                content=body,
                headers={**headers, "content-type": "application/json"},
            )
        else:
            resp = bo.client.post("/api/v1/sync/push", json=body, headers=headers)
        assert 400 <= resp.status_code < 500, (what, resp.status_code, resp.text)
        error = resp.json()["error"]
        assert error["message"], what
        assert str(error.get("field", "body")).startswith(field), (what, error)
        assert bo.count("SELECT count(*) FROM ops WHERE store_id = ?", (bo.s1,)) == 0, what
        assert bo.count("SELECT count(*) FROM sales WHERE store_id = ?", (bo.s1,)) == 0, what
    # And a good push still goes through afterwards.
    assert bo.push(headers, [_sale_open_op()]).status_code == 200
    assert bo.count("SELECT count(*) FROM ops WHERE store_id = ?", (bo.s1,)) == 1


def test_conflicts_the_register_could_not_know_are_4xx_with_the_reason(bo: BO) -> None:
    r1, r2 = bo.pair("R1"), bo.pair("R2")

    def customer_op(register_id: str, customer_id: str, op_id: str) -> dict[str, Any]:
        return {
            "op_id": op_id,
            "register_id": register_id,
            "hlc": f"1790000000000.000000.{register_id}",
            "sale_id": None,
            "kind": "customer.upsert",
            "payload": {"customer": {"id": customer_id, "code": "CUST-7", "name": "Ann"}},
        }

    assert bo.push(r1, [customer_op("R1", "c-a", "op-a")]).status_code == 200
    resp = bo.push(r2, [_sale_open_op("R2", op_id="op-b"), customer_op("R2", "c-b", "op-c")])
    assert resp.status_code == 409
    error = resp.json()["error"]
    assert error["op_id"] == "op-c" and error["field"] == "ops[1].payload.customer.code"
    assert "CUST-7" in error["message"] and "already belongs" in error["message"]
    # nothing of the refused batch
    assert bo.count("SELECT count(*) FROM ops WHERE store_id = ?", (bo.s1,)) == 1


def test_pairing_codes_work_once_and_tokens_reach_only_their_store(bo: BO) -> None:
    code = bo.client.post(f"/api/v1/stores/{bo.s1}/pairing-codes", json={}, headers=bo.admin).json()
    first = bo.client.post("/api/v1/pair", json={"code": code["code"], "register_id": "R1"})
    assert first.status_code == 200
    again = bo.client.post("/api/v1/pair", json={"code": code["code"], "register_id": "R7"})
    assert again.status_code == 401 and "already used" in again.json()["error"]["message"]
    token = first.json()["token"]
    with bo.db.read() as tx:  # secrets are stored as digests only
        stored = json.dumps(tx.all("SELECT * FROM registers")) + json.dumps(
            tx.all("SELECT * FROM pairing_codes")
        )
    assert token not in stored and code["code"] not in stored
    assert bo.client.post("/api/v1/sync/pull", json={}).status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert bo.client.post("/api/v1/sync/pull", json={}, headers=bad).status_code == 401
    # A saved sale parked in store s2 never reaches store s1's register.
    s2 = bo.pair("R1", store=bo.s2)
    park = _sale_open_op(op_id="s2-open")
    park_op = {
        **park,
        "op_id": "s2-park",
        "kind": "sale.park",
        "hlc": "1790000000001.000000.R1",
        "payload": {"name": "t", "at": "x"},
    }
    assert bo.push(s2, [park, park_op]).status_code == 200
    s1 = {"Authorization": f"Bearer {token}"}
    assert bo.client.post("/api/v1/sync/pull", json={}, headers=s1).json()["relay"] == []
    r2 = bo.pair("R2", store=bo.s2)
    relayed = bo.client.post("/api/v1/sync/pull", json={}, headers=r2).json()["relay"]
    assert {op["op_id"] for op in relayed} == {"s2-open", "s2-park"}
    # The same register id in another store of the same code: refused without a code for it.
    dup = bo.client.post(f"/api/v1/stores/{bo.s1}/pairing-codes", json={}, headers=bo.admin).json()
    resp = bo.client.post("/api/v1/pair", json={"code": dup["code"], "register_id": "R1"})
    assert resp.status_code == 409


def test_only_users_with_the_sites_permission_sync_registers(bo: BO) -> None:
    bo.pair("R1")
    for username, role in (("cat", "catalog"), ("rep", "reporting"), ("man", "manager")):
        resp = bo.client.post(
            "/api/v1/users",
            json={
                "username": username,
                "name": username.title(),
                "password": "password1",
                "role": role,
            },
            headers=bo.admin,
        )
        assert resp.status_code == 201, resp.text
    for username in ("cat", "rep"):
        headers = {"Authorization": f"Bearer {bo.login(username, 'password1')}"}
        for path in ("registers/R1/sync", "registers/sync", "pairing-codes"):
            resp = bo.client.post(f"/api/v1/stores/{bo.s1}/{path}", json={}, headers=headers)
            assert resp.status_code == 403, (username, path)
            assert "sites permission" in resp.json()["error"]["message"]
    manager = {"Authorization": f"Bearer {bo.login('man', 'password1')}"}
    resp = bo.client.post(f"/api/v1/stores/{bo.s1}/registers/R1/sync", headers=manager)
    assert resp.status_code == 200 and resp.json()["requested"] == ["R1"]
    assert (
        bo.client.post(
            "/api/v1/auth/login", json={"username": "man", "password": "nope"}
        ).status_code
        == 401
    )


def test_sync_requests_last_synced_and_online_state(bo: BO) -> None:
    r1 = bo.pair("R1")
    bo.pair("R2")  # paired, never seen: offline
    pulled = bo.client.post("/api/v1/sync/pull", json={}, headers=r1).json()
    assert pulled["sync_request"] is None
    result = bo.client.post(f"/api/v1/stores/{bo.s1}/registers/sync", headers=bo.admin).json()
    assert result == {"requested": ["R1"], "skipped_offline": ["R2"]}
    request = bo.client.post("/api/v1/sync/pull", json={}, headers=r1).json()["sync_request"]
    assert request["by"] == "Alice Admin"
    # Handed out once; not again while the register works on it.
    assert bo.client.post("/api/v1/sync/pull", json={}, headers=r1).json()["sync_request"] is None
    done = bo.client.post("/api/v1/sync/synced", json={"request_id": request["id"]}, headers=r1)
    assert done.json()["by"] == "Alice Admin"
    registers = {
        r["register_id"]: r
        for r in bo.client.get(f"/api/v1/stores/{bo.s1}/registers", headers=bo.admin).json()
    }
    assert registers["R1"]["online"] and not registers["R2"]["online"]
    assert registers["R1"]["last_sync_by"] == "Alice Admin"
    assert registers["R1"]["last_synced_at"] and registers["R1"]["sync_waiting"] is None
    # A sync the register did by itself also counts as "last synced".
    bo.client.post("/api/v1/sync/synced", json={"by": "register R1"}, headers=r1)
    r1_row = bo.client.get(f"/api/v1/stores/{bo.s1}/registers", headers=bo.admin).json()[0]
    assert r1_row["last_sync_by"] == "register R1"


def test_saved_sales_relay_to_the_stores_registers_and_to_a_new_one(bo: BO, tmp_path: Path) -> None:
    regs = {rid: make_register(tmp_path, rid) for rid in ("R1", "R2", "R3")}
    headers = {rid: bo.pair(rid) for rid in ("R1", "R2")}
    catalog = [op for op in ops_since(regs["R1"], 0)]
    regs["R1"].import_catalog_csv(CATALOG_CSV, "c.csv")
    for reg in regs.values():
        reg.import_catalog_csv(CATALOG_CSV, "c.csv")
    assert catalog == []
    r1 = regs["R1"]
    r1.open_shift(0)
    kept = r1.open_sale()
    r1.add_line(kept["id"], "COFFEE")
    r1.park(kept["id"], "Mrs Smith")
    done = r1.open_sale()
    r1.add_line(done["id"], "BEER")
    r1.park(done["id"], "table 2")
    own = [op for op in ops_since(r1, 0) if op["register_id"] == "R1" and op["sale_id"]]
    assert bo.push(headers["R1"], own).status_code == 200
    pulled = bo.client.post("/api/v1/sync/pull", json={}, headers=headers["R2"]).json()
    apply_remote(regs["R2"], pulled["relay"])
    assert regs["R2"].sale(done["id"])["status"] == "parked"
    # R1 finishes one saved sale: R2 pulls from its cursor and sees it finished.
    r1.resume(done["id"])
    r1.add_tender(done["id"], "cash", 1000)
    newer = [op for op in ops_since(r1, max(op["seq"] for op in own)) if op["register_id"] == "R1"]
    assert bo.push(headers["R1"], newer).status_code == 200
    pulled = bo.client.post(
        "/api/v1/sync/pull", json={"relay_after": pulled["relay_cursor"]}, headers=headers["R2"]
    ).json()
    apply_remote(regs["R2"], pulled["relay"])
    r2_sales = {s["id"]: s for s in regs["R2"].state.sales()}
    assert r2_sales[kept["id"]]["status"] == "parked"
    assert r2_sales[kept["id"]]["lines"][0]["sku"] == "COFFEE"
    assert r2_sales[done["id"]]["status"] == "completed"
    # R2 pulls again from its cursor: nothing new.
    again = bo.client.post(
        "/api/v1/sync/pull", json={"relay_after": pulled["relay_cursor"]}, headers=headers["R2"]
    ).json()
    assert again["relay"] == []
    # A register paired now gets the open saved sales at once (not the finished ones).
    r3 = bo.pair("R3")
    first = bo.client.post("/api/v1/sync/pull", json={}, headers=r3).json()
    assert {op["sale_id"] for op in first["relay"]} == {kept["id"]}
    apply_remote(regs["R3"], first["relay"])
    assert regs["R3"].sale(kept["id"])["name"] == "Mrs Smith"
    for reg in regs.values():
        reg.close()


def test_web_orders_arrive_as_saved_sales(bo: BO, tmp_path: Path) -> None:
    put = bo.client.put(
        f"/api/v1/stores/{bo.s1}/products/COFFEE",
        json={
            "name": "Coffee 250 g",
            "price_minor": 499,
            "barcodes": ["4006381333931"],
            "tax_category": "reduced",
        },
        headers=bo.admin,
    )
    assert put.status_code == 200, put.text
    key = bo.client.post(
        f"/api/v1/stores/{bo.s1}/webshop-keys", json={"name": "shop"}, headers=bo.admin
    ).json()["key"]
    shop = {"Authorization": f"Bearer {key}"}
    order = {"order_id": "W-1001", "lines": [{"sku": "COFFEE", "qty": 2}]}
    first = bo.client.post("/api/v1/webshop/orders", json=order, headers=shop)
    assert first.status_code == 201, first.text
    again = bo.client.post("/api/v1/webshop/orders", json=order, headers=shop).json()
    assert again["sale_id"] == first.json()["sale_id"] and again["duplicate"]
    missing = bo.client.post(
        "/api/v1/webshop/orders", json={"order_id": "W-2", "lines": [{"sku": "NOPE"}]}, headers=shop
    )
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "lines[0].sku"
    assert bo.client.post("/api/v1/webshop/orders", json=order).status_code == 401
    reg = make_register(tmp_path, "R1")
    reg.import_catalog_csv(CATALOG_CSV, "c.csv")
    pulled = bo.client.post("/api/v1/sync/pull", json={}, headers=bo.pair("R1")).json()
    apply_remote(reg, pulled["relay"])
    sale = reg.sale(first.json()["sale_id"])
    assert sale["status"] == "parked" and sale["name"] == "Web order W-1001"
    assert sale["totals"]["total"] == 998
    reg.open_shift(0)
    reg.resume(sale["id"])
    assert reg.add_tender(sale["id"], "cash", 998)["status"] == "completed"
    reg.close()


def test_bundles_are_checked_and_sent_once_per_version(bo: BO) -> None:
    r1 = bo.pair("R1")
    bad = bo.client.put(
        f"/api/v1/stores/{bo.s1}/bundles/taxes",
        json={"rates": {"standard": "250"}},
        headers=bo.admin,
    )
    assert bad.status_code == 422 and "rates" in bad.json()["error"]["field"]
    ok = bo.client.put(
        f"/api/v1/stores/{bo.s1}/bundles/taxes",
        json={"mode": "inclusive", "rates": {"standard": "20", "reduced": "5.5", "zero": "0"}},
        headers=bo.admin,
    )
    users = bo.client.put(
        f"/api/v1/stores/{bo.s1}/bundles/users", json={"users": [{"name": "Bob"}]}, headers=bo.admin
    )
    assert ok.status_code == 200 and users.status_code == 200
    pulled = bo.client.post("/api/v1/sync/pull", json={}, headers=r1).json()
    kinds = {b["kind"]: b for b in pulled["bundles"]}
    assert set(kinds) == {"taxes", "users"}
    known = {k: b["version"] for k, b in kinds.items()}
    again = bo.client.post("/api/v1/sync/pull", json={"known": known}, headers=r1).json()
    assert again["bundles"] == []

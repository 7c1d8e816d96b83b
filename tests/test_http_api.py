"""The HTTP JSON API: a full sale, park/resume, refunds, shifts, and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from appliance.config import Config
from tests.conftest import CATALOG_CSV, RegisterProcess, api_client


@pytest.fixture
def client(config: Config) -> Iterator[TestClient]:
    with api_client(config) as c:
        assert c.post("/api/catalog/import", content=CATALOG_CSV).status_code == 200
        yield c


def _ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json()


def test_full_sale_over_http(client: TestClient) -> None:
    assert (
        _ok(client.get("/api/catalog/lookup", params={"code": "4006381333931"}))["sku"] == "COFFEE"
    )
    _ok(client.post("/api/shifts", json={"float_minor": 5_000}), 201)
    sale = _ok(client.post("/api/sales"), 201)
    sid = sale["id"]
    _ok(client.post(f"/api/sales/{sid}/lines", json={"code": "4006381333931", "qty": 2}), 201)
    _ok(client.post(f"/api/sales/{sid}/lines", json={"code": "APPLES", "weight_g": 500}), 201)
    sale = _ok(client.post(f"/api/sales/{sid}/discount", json={"percent_bp": 1000}))
    assert sale["totals"]["total"] == 998 + 150 - 115
    refused = client.post(f"/api/sales/{sid}/tenders", json={"kind": "card", "amount_minor": 500})
    assert refused.status_code == 409 and f"/api/sales/{sid}/payments" in refused.text
    # Card money only through the terminal (the default simulated one approves).
    payment = _ok(
        client.post(f"/api/sales/{sid}/payments?wait=10", json={"amount_minor": 500}), 202
    )
    assert payment["state"] == "approved" and payment["pan_masked"] == "541333******0011"
    sale = _ok(
        client.post(f"/api/sales/{sid}/tenders", json={"kind": "cash", "amount_minor": 1000}), 201
    )
    assert sale["status"] == "completed"
    assert sale["totals"]["change"] == 1000 + 500 - 1033
    receipt = _ok(client.get(f"/api/receipts/RCPT{sale['receipt_no']}"))
    assert receipt["id"] == sid
    refund = _ok(client.post("/api/refunds", json={"receipt_no": sale["receipt_no"]}), 201)
    refund = _ok(
        client.post(f"/api/refunds/{refund['id']}/lines", json={"original_line_no": 1, "qty": 1}),
        201,
    )
    plain = client.post(f"/api/refunds/{refund['id']}/complete", json={})
    assert plain.status_code == 409 and f"/api/refunds/{refund['id']}/card" in plain.text
    refund = _ok(client.post(f"/api/refunds/{refund['id']}/card"))
    assert refund["status"] == "completed" and refund["totals"]["total"] < 0
    assert [t["kind"] for t in refund["tenders"]] == ["card"]
    assert refund["tenders"][0]["card"]["pan_masked"] == "541333******0011"
    x = _ok(client.get("/api/reports/x"))
    assert x["counts"] == {"sales": 1, "refunds": 1}
    z = _ok(client.post("/api/shifts/current/close", json={"counted_minor": 5_533}))
    assert z["z_no"] == 1 and z["over_short"] == 0
    assert z["card_terminal"]["ok"] is True  # the terminal's end-of-day next to the Z
    assert z["card_terminal"]["amount_minor"] == 500  # the terminal's payment turnover
    assert z["card_terminal"]["totals"]["eurocard"] == {"count": 1, "amount_minor": 500}
    assert _ok(client.get("/api/reports/z"))["z_no"] == 1


def test_park_and_resume_over_http(client: TestClient) -> None:
    sid = _ok(client.post("/api/sales"), 201)["id"]
    _ok(client.post(f"/api/sales/{sid}/lines", json={"code": "BEER"}), 201)
    _ok(client.post(f"/api/sales/{sid}/park", json={"name": "Bob"}))
    parked = _ok(client.get("/api/sales", params={"status": "parked"}))
    assert [s["name"] for s in parked] == ["Bob"]
    assert _ok(client.post(f"/api/sales/{sid}/resume"))["status"] == "open"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("post", "/api/sales/{sid}/lines", {"code": "999"}, 404, "code"),
        ("post", "/api/sales/{sid}/lines", {"code": "BEER", "qty": 0}, 422, "qty"),
        ("post", "/api/sales/{sid}/lines", {"code": "BEER", "qty": -1}, 422, "qty"),
        ("post", "/api/sales/{sid}/lines", {"code": "BEER", "qty": "2"}, 422, "qty"),
        ("post", "/api/sales/{sid}/lines", {"code": "BEER", "qty": 2**64}, 422, "qty"),
        ("post", "/api/sales/{sid}/lines", {"code": "BEER", "colour": 1}, 422, "colour"),
        (
            "post",
            "/api/sales/{sid}/lines/1/price",
            {"unit_price_minor": -5, "reason": "x"},
            422,
            "unit_price_minor",
        ),
        ("post", "/api/sales/{sid}/lines/1/discount", {"percent_bp": 10_001}, 422, "percent_bp"),
        ("post", "/api/sales/{sid}/discount", {"amount_minor": 10**6}, 422, "discount.amount"),
        (
            "post",
            "/api/sales/{sid}/tenders",
            {"kind": "cash", "amount_minor": 10**30},
            422,
            "amount_minor",
        ),
        ("post", "/api/sales/{sid}/tenders", {"kind": "gold", "amount_minor": 1}, 422, "kind"),
        (
            "post",
            "/api/sales/{sid}/tenders",
            {"kind": "cash", "amount_minor": 1.5},
            422,
            "amount_minor",
        ),
        ("post", "/api/sales/nosuchsale/lines", {"code": "BEER"}, 404, "sale_id"),
        ("post", "/api/shifts", {"float_minor": -1}, 422, "float_minor"),
    ],
)
def test_bad_requests_name_the_field_and_change_nothing(
    client: TestClient, method: str, path: str, body: Any, status: int, field: str
) -> None:
    _ok(client.post("/api/shifts", json={"float_minor": 0}), 201)
    sid = _ok(client.post("/api/sales"), 201)["id"]
    before = _ok(client.post(f"/api/sales/{sid}/lines", json={"code": "BEER"}), 201)
    resp = getattr(client, method)(path.format(sid=sid), json=body)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["field"] == field
    assert error["message"]
    assert _ok(client.get(f"/api/sales/{sid}")) == before


def test_malformed_json_is_a_clear_error(client: TestClient) -> None:
    sid = _ok(client.post("/api/sales"), 201)["id"]
    resp = client.post(
        f"/api/sales/{sid}/lines",
        content=b'{"code": "BEER",',
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["message"].startswith("malformed JSON")
    assert _ok(client.get(f"/api/sales/{sid}"))["lines"] == []


def test_tender_on_completed_or_voided_sale_is_a_conflict(client: TestClient) -> None:
    _ok(client.post("/api/shifts", json={"float_minor": 0}), 201)
    sid = _ok(client.post("/api/sales"), 201)["id"]
    _ok(client.post(f"/api/sales/{sid}/lines", json={"code": "BEER"}), 201)
    _ok(client.post(f"/api/sales/{sid}/tenders", json={"kind": "cash", "amount_minor": 300}), 201)
    resp = client.post(f"/api/sales/{sid}/tenders", json={"kind": "cash", "amount_minor": 1})
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "conflict"
    vid = _ok(client.post("/api/sales"), 201)["id"]
    _ok(client.post(f"/api/sales/{vid}/void", json={"reason": "walked out"}))
    resp = client.post(f"/api/sales/{vid}/tenders", json={"kind": "cash", "amount_minor": 1})
    assert resp.status_code == 409


def test_over_refund_is_refused(client: TestClient) -> None:
    _ok(client.post("/api/shifts", json={"float_minor": 0}), 201)
    sid = _ok(client.post("/api/sales"), 201)["id"]
    _ok(client.post(f"/api/sales/{sid}/lines", json={"code": "BEER"}), 201)
    sale = _ok(
        client.post(f"/api/sales/{sid}/tenders", json={"kind": "cash", "amount_minor": 249}), 201
    )
    rid = _ok(client.post("/api/refunds", json={"receipt_no": sale["receipt_no"]}), 201)["id"]
    resp = client.post(f"/api/refunds/{rid}/lines", json={"original_line_no": 1, "qty": 2})
    assert resp.status_code == 422 and resp.json()["error"]["field"] == "qty"


def test_catalog_import_reports_every_bad_row(client: TestClient) -> None:
    bad = "sku,name,price_minor\nOK1,Fine,100\n,No sku,100\nX2,Bad price,1.99\n"
    resp = client.post("/api/catalog/import", content=bad)
    assert resp.status_code == 422
    errors = resp.json()["error"]["errors"]
    assert errors == [
        "upload.csv:3: sku: required, 1-64 printable characters without spaces",
        "upload.csv:4: price_minor: '1.99' is not an integer number of minor units (e.g. 199)",
    ]
    assert client.get("/api/products/OK1").status_code == 404  # nothing imported


def test_openapi_is_published(client: TestClient) -> None:
    spec = _ok(client.get("/openapi.json"))
    for path in ("/api/sales", "/api/sales/{sale_id}/tenders", "/api/refunds", "/api/reports/x"):
        assert path in spec["paths"]


def test_real_process_serves_the_demo_catalog(register_process: RegisterProcess) -> None:
    ready_s = register_process.start()
    assert ready_s < 15
    with register_process.client() as client:
        product = client.get("/api/catalog/lookup", params={"code": "4006381333931"}).json()
        assert product["name"] == "Ground coffee 250 g"
        missing = client.get("/api/catalog/lookup", params={"code": "12345"})
    assert missing.status_code == 404 and missing.json()["error"]["value"] == "12345"

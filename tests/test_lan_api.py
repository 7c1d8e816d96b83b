"""The LAN routes the sell screen and admin panel call (/api/lan/...), over HTTP.

Runs the real app (LAN sync off: the routes work on a single register too) and
checks each saved-sale action, the register list and the "sale not found" answer.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import CATALOG_CSV, VENV_BIN, RegisterProcess, api_client, make_config


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    config = make_config(tmp_path, register={"id": "R1", "name": "Front"})
    with api_client(config) as c:
        assert c.post("/api/catalog/import", content=CATALOG_CSV).status_code == 200
        yield c


def _sale(client: TestClient, *codes: str, name: str | None = None) -> dict[str, Any]:
    sale = client.post("/api/sales").json()
    for code in codes:
        sale = client.post(f"/api/sales/{sale['id']}/lines", json={"code": code}).json()
    if name:
        sale = client.post(f"/api/sales/{sale['id']}/park", json={"name": name}).json()
    return sale


def test_saved_sale_actions_over_http(client: TestClient) -> None:
    a = _sale(client, "BEER", "COFFEE", "CARD", name="Table 1")
    b = _sale(client, "BEER", name="Bar")
    assert a["id"].startswith("R1-")
    renamed = client.post(f"/api/lan/sales/{a['id']}/rename", json={"name": "Window"})
    assert renamed.json()["name"] == "Window"
    split = client.post(f"/api/lan/sales/{a['id']}/split", json={"line_nos": [3], "name": "Kid"})
    assert split.status_code == 201
    new = split.json()["new"]
    assert [x["sku"] for x in new["lines"]] == ["CARD"] and new["name"] == "Kid"
    merged = client.post(f"/api/lan/sales/{a['id']}/merge", json={"from": b["id"]}).json()
    assert [x["sku"] for x in merged["lines"]] == ["BEER", "COFFEE", "BEER"]
    gone = client.get(f"/api/sales/{b['id']}").json()
    assert gone["status"] == "voided" and gone["merged_into"] == a["id"]
    listed = {s["id"]: s for s in client.get("/api/lan/sales").json()}
    assert set(listed) == {a["id"], new["id"]}
    assert listed[a["id"]]["holder"] == "R1" and listed[a["id"]]["holder_name"] == "Front (R1)"
    held = client.post(f"/api/lan/sales/{a['id']}/checkout").json()
    assert held["status"] == "open" and held["checkout"]["register_id"] == "R1"
    assert (
        client.get("/api/lan/sales")
        .json()[0]["checkout"]["message"]
        .startswith("in checkout on Front")
    )
    released = client.delete(f"/api/lan/sales/{a['id']}/checkout").json()
    assert released["checkout"] is None
    resumed = client.post(f"/api/lan/sales/{new['id']}/resume").json()
    assert resumed["status"] == "open"


def test_bad_requests_name_the_field_and_change_nothing(client: TestClient) -> None:
    a = _sale(client, "BEER", name="Table 1")
    cases = [
        (f"/api/lan/sales/{a['id']}/transfer", {"to": "R7"}, "to", "no register 'R7'"),
        (f"/api/lan/sales/{a['id']}/transfer", {"to": "bad id!"}, "to", ""),
        (f"/api/lan/sales/{a['id']}/split", {"line_nos": [1], "name": "x"}, "line_nos", "least"),
        (f"/api/lan/sales/{a['id']}/split", {"line_nos": [5, 1], "name": "x"}, "line_nos", ""),
        (f"/api/lan/sales/{a['id']}/merge", {"from": a["id"]}, "from", "itself"),
        (f"/api/lan/sales/{a['id']}/rename", {"name": ""}, "name", ""),
        (f"/api/lan/sales/{a['id']}/rename", {"name": "x", "extra": 1}, "extra", ""),
    ]
    for path, body, field, text in cases:
        response = client.post(path, json=body)
        assert response.status_code == 422, (path, body, response.text)
        error = response.json()["error"]
        assert error["field"] == field and text in error["message"], error
    assert client.get(f"/api/sales/{a['id']}").json() == a


def test_register_list_and_a_sale_from_a_register_never_reached(client: TestClient) -> None:
    registers = client.get("/api/lan/registers").json()
    assert registers["registers"] == [
        {
            "register_id": "R1",
            "name": "Front",
            "version": registers["registers"][0]["version"],
            "status": "this_register",
            "message": "this register",
        }
    ]
    assert client.get("/api/lan/status").json()["enabled"] is False
    missing = client.post("/api/lan/sales/R9-0123456789abcdef/resume")
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["code"] == "sale_not_found" and error["holder"] == "R9"
    assert "made on register R9, which this register has never reached" in error["message"]
    mine = client.get("/api/lan/sales/R1-0123456789abcdef").json()["error"]
    assert mine["message"] == "sale R1-0123456789abcdef is not on this register"


def test_cli_new_secret_and_register_list_of_a_running_register(tmp_path: Path) -> None:
    secret = subprocess.run(
        [str(VENV_BIN / "appliance"), "lan", "new-secret"], capture_output=True, text=True
    ).stdout.strip()
    assert len(secret) >= 40 and secret != subprocess.getoutput(
        f"{VENV_BIN / 'appliance'} lan new-secret"
    )
    proc = RegisterProcess(tmp_path / "data")
    config = tmp_path / "register.toml"
    config.write_text(
        f'[register]\nid = "R3"\nname = "Back"\n[http]\nport = {proc.port}\n'
        f'[lan]\nenabled = true\nsecret = "{secret}"\nport = 0\nbind = "127.0.0.1"\n'
        "discovery = false\n"
    )
    proc.config_file = config
    proc.start()
    try:
        out = subprocess.run(
            [str(VENV_BIN / "appliance"), "lan", "registers", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.split()[:2] == ["R3", "this_register"]
    finally:
        proc.stop()

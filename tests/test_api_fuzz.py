"""Fuzz the HTTP API with hostile JSON: never a 500, never a half-applied change.

Random bodies (wrong types, huge and negative numbers, unknown keys, nested junk,
non-JSON bytes) go to every state-changing endpoint of a register holding an open
sale, a parked sale and a completed sale. Every answer must be a success or one of
the documented client errors with the error shape; at the end the op log still
replays to the stored state.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.api import create_app
from appliance.auth.tokens import bearer_headers
from tests.conftest import CATALOG_CSV, make_config

ENDPOINTS = [
    ("post", "/api/sales/{open}/lines"),
    ("patch", "/api/sales/{open}/lines/1"),
    ("post", "/api/sales/{open}/lines/1/price"),
    ("post", "/api/sales/{open}/lines/1/discount"),
    ("post", "/api/sales/{open}/discount"),
    ("post", "/api/sales/{open}/customer"),
    ("post", "/api/sales/{open}/park"),
    ("post", "/api/sales/{parked}/resume"),
    ("post", "/api/sales/{open}/void"),
    ("post", "/api/sales/{open}/tenders"),
    ("post", "/api/sales/{done}/tenders"),
    ("post", "/api/refunds"),
    ("post", "/api/shifts/current/cash"),
    ("post", "/api/scan"),
    ("post", "/api/customers"),
    ("put", "/api/products/FUZZ"),
    ("post", "/api/catalog/import"),
    ("put", "/api/users/fuzzer"),
    ("post", "/api/users/fuzzer/unlock"),
]
FIELDS = [
    "code",
    "qty",
    "weight_g",
    "unit_price_minor",
    "reason",
    "percent_bp",
    "amount_minor",
    "kind",
    "name",
    "reference",
    "receipt_no",
    "float_minor",
    "counted_minor",
    "sale_id",
    "original_line_no",
    "price_minor",
    "sku",
    "barcodes",
    "sold_by",
    "tax_category",
    "role",
    "password",
    "pin",
    "disabled",
    "clear_pin",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["cash", "card", "BEER", "4006381333931", "R1-000001", "in", "out"])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
bodies = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), values, max_size=5)
ALLOWED = {200, 201, 400, 404, 409, 422}


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_hostile_bodies_never_break_the_register(
    tmp_path_factory: Any, data: st.DataObject
) -> None:
    state = _state(tmp_path_factory)
    client, ids = state["client"], state["ids"]
    method, path = data.draw(st.sampled_from(ENDPOINTS))
    url = path.format(**ids)
    if data.draw(st.booleans()):
        body = data.draw(bodies)
        resp = getattr(client, method)(url, content=json.dumps(body, default=str))
    else:
        raw = data.draw(st.binary(max_size=60))
        resp = getattr(client, method)(
            url, content=raw, headers={"content-type": "application/json"}
        )
    assert resp.status_code in ALLOWED, (url, resp.status_code, resp.text)
    if resp.status_code >= 400:
        error = resp.json()["error"]
        assert error["code"] and error["message"]


_STATE: dict[str, Any] = {}


def _state(tmp_path_factory: Any) -> dict[str, Any]:
    if _STATE:
        return _STATE
    config = make_config(tmp_path_factory.mktemp("fuzz"))
    client = TestClient(create_app(config))
    client.__enter__()
    client.headers.update(bearer_headers(config.data_dir))
    client.post("/api/catalog/import", content=CATALOG_CSV)
    client.post("/api/shifts", json={"float_minor": 1000})

    def sale_with_line() -> str:
        sid = client.post("/api/sales").json()["id"]
        client.post(f"/api/sales/{sid}/lines", json={"code": "BEER"})
        return str(sid)

    open_id, parked, done = sale_with_line(), sale_with_line(), sale_with_line()
    client.post(f"/api/sales/{parked}/park", json={"name": "tab"})
    client.post(f"/api/sales/{done}/tenders", json={"kind": "cash", "amount_minor": 500})
    _STATE.update(client=client, ids={"open": open_id, "parked": parked, "done": done})
    return _STATE


def test_zz_state_still_replays_after_fuzzing() -> None:
    if not _STATE:
        return
    client: TestClient = _STATE["client"]
    svc = client.app.state.service  # type: ignore[attr-defined]
    result = svc.register.check()
    client.__exit__(None, None, None)
    assert result.ok, result.differences

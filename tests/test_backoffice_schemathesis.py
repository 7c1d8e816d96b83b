"""The back office API against its own OpenAPI document (schemathesis), on both engines.

Every operation of ``/openapi.json`` gets generated requests — valid and invalid
bodies, odd path and query values — with a real owner session, a real register
token and a real web-shop key, so the calls get past authentication and reach the
database. No answer may be a 5xx, and every documented answer must match its schema
and content type.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from appliance.backoffice.app import create_backoffice_app
from appliance.backoffice.storage import open_database
from tests.sync_support import ADMIN_PASSWORD, add_stores, backoffice_db_url, new_store_ids

__all__ = ["backoffice_db_url"]


@pytest.fixture(scope="module")
def api(backoffice_db_url: str) -> Iterator[dict[str, Any]]:
    db = open_database(backoffice_db_url)
    (store,) = new_store_ids(1)
    add_stores(db, (store,))
    app = create_backoffice_app(db)
    with TestClient(app) as client:
        token = client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        ).json()["token"]
        admin = {"Authorization": f"Bearer {token}"}
        code = client.post(f"/api/v1/stores/{store}/pairing-codes", json={}, headers=admin)
        register = client.post(
            "/api/v1/pair", json={"code": code.json()["code"], "register_id": "R1"}
        ).json()["token"]
        key = client.post(
            f"/api/v1/stores/{store}/webshop-keys", json={"name": "shop"}, headers=admin
        ).json()["key"]
        yield {
            "schema": schemathesis.openapi.from_asgi("/openapi.json", app),
            "admin": admin,
            "register": {"Authorization": f"Bearer {register}"},
            "webshop": {"Authorization": f"Bearer {key}"},
            "store": store,
        }
    db.close()


def _headers(api: dict[str, Any], path: str) -> dict[str, str]:
    if path == "/api/v1/auth/logout":
        return {"Authorization": "Bearer not-a-session"}  # keep the session for the rest
    if path.startswith("/api/v1/sync/"):
        return dict(api["register"])
    if path.startswith("/api/v1/webshop/"):
        return dict(api["webshop"])
    return dict(api["admin"])


def test_backoffice_api_conforms_to_its_openapi_document(api: dict[str, Any]) -> None:
    # Driven through hypothesis directly: schemathesis' pytest plugin does not load
    # under this pytest (9.x).
    operations = [result.ok() for result in api["schema"].get_all_operations()]
    assert len(operations) > 25
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            if case.path == "/api/v1/sync/pull" and isinstance(case.body, dict):
                case.body["wait"] = 0  # a generated long poll only makes the run slow
            params = case.path_parameters or {}
            if "store_id" in params and len(str(case.body)) % 2:
                params["store_id"] = api["store"]  # half of the calls reach the store
            case.call_and_validate(
                headers=_headers(api, case.path),
                checks=[
                    checks.not_a_server_error,
                    checks.response_schema_conformance,
                    checks.content_type_conformance,
                ],
            )

        check()

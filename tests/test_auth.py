"""Authentication and authorisation: nothing protected answers without the right role.

Most tests talk to a real `appliance run` process over loopback HTTP, as a browser
or a machine client would; the route list comes from the app itself, so a route a
feature adds later is covered without touching this file.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from appliance.api import create_app
from appliance.auth import lockout
from appliance.auth.guard import leaf_routes
from appliance.auth.passwords import hash_secret, verify_secret
from appliance.auth.permissions import PUBLIC, route_permission
from appliance.auth.tokens import bearer_headers
from appliance.auth.users import get_user, upsert_user
from appliance.register import Register
from appliance.replication import apply_remote, ops_since
from tests.conftest import VENV_BIN, RegisterProcess, make_config

EXPECTED_PUBLIC = {
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("GET", "/static"),
    ("GET", "/login"),
    ("GET", "/setup"),
    ("POST", "/auth/login"),
    ("POST", "/auth/setup"),
}


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


@pytest.fixture(scope="module")
def proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegisterProcess]:
    process = RegisterProcess(tmp_path_factory.mktemp("auth") / "data")
    process.start()
    with process.client() as api:
        for username, doc in {
            "mia": {"name": "Mia", "role": "manager", "password": "counter-top-42"},
            "carla": {"name": "Carla", "role": "cashier", "pin": "2468"},
            "sam": {"name": "Sam", "role": "supervisor", "pin": "1357"},
        }.items():
            assert api.put(f"/api/users/{username}", json=doc).status_code == 200
        assert api.post("/api/shifts", json={"float_minor": 0}).status_code == 201
    yield process
    process.stop()


@contextmanager
def session(proc: RegisterProcess, username: str, **secret: str) -> Iterator[tuple[Any, str]]:
    """A browser-like session: logged in from the register's own origin."""
    with httpx.Client(base_url=proc.url, headers={"Origin": proc.url}, timeout=10) as client:
        resp = client.post("/auth/login", json={"username": username, **secret})
        assert resp.status_code == 200, resp.text
        yield client, resp.json()["csrf"]


def app_routes(tmp_path: Path) -> list[tuple[str, str]]:
    app = create_app(make_config(tmp_path))
    routes = []
    for path, methods in leaf_routes(app):
        for method in sorted((methods or {"GET"}) - {"HEAD"}):
            routes.append((method, path))
    return routes


def test_every_protected_route_refuses_an_anonymous_user(
    proc: RegisterProcess, tmp_path: Path
) -> None:
    routes = app_routes(tmp_path)
    public = {r for r in routes if route_permission(*r) == PUBLIC}
    assert public == EXPECTED_PUBLIC  # a new public route must be added here on purpose
    checked = 0
    with httpx.Client(base_url=proc.url, timeout=10) as anonymous:
        for method, path in routes:
            if (method, path) in public:
                continue
            resp = anonymous.request(method, concrete(path), json={})
            assert resp.status_code == 401, (method, path, resp.status_code)
            assert resp.json()["error"]["code"] == "unauthenticated"
            if path.startswith("/admin") or path == "/":
                page = anonymous.get(concrete(path), headers={"Accept": "text/html"})
                assert page.status_code == 303 and page.headers["location"].startswith("/login")
            checked += 1
        # A wrong machine token is refused too, not treated as anonymous.
        bad = anonymous.post("/api/sales", headers={"Authorization": "Bearer rat_guess"})
        assert bad.status_code == 401
    assert checked >= 60


def test_a_cashier_gets_only_what_the_role_allows(proc: RegisterProcess, tmp_path: Path) -> None:
    with session(proc, "carla", pin="2468") as (client, csrf):
        for method, path in app_routes(tmp_path):
            need = route_permission(method, path)
            if need in (PUBLIC, "view", "sell"):
                continue
            resp = client.request(method, concrete(path), json={}, headers={"X-CSRF-Token": csrf})
            assert resp.status_code == 403, (method, path, resp.text)
            assert resp.json()["error"] == {
                "code": "permission",
                "message": f"Carla (cashier) may not do this: it needs '{need}'",
                "permission": need,
            }
        sale = client.post("/api/sales", headers={"X-CSRF-Token": csrf})
        assert sale.status_code == 201  # selling is the cashier's job


def test_csrf_token_and_origin_are_required_for_changes(proc: RegisterProcess) -> None:
    with session(proc, "carla", pin="2468") as (client, csrf):
        missing = client.post("/api/sales")
        assert missing.status_code == 403 and missing.json()["error"]["code"] == "csrf"
        wrong = client.post("/api/sales", headers={"X-CSRF-Token": csrf[:-2] + "xx"})
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "csrf"
        cross = client.post(
            "/api/sales", headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
        )
        assert cross.status_code == 403
        fetch_site = client.post(
            "/api/sales", headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"}
        )
        assert fetch_site.status_code == 403
        assert client.post("/api/sales", headers={"X-CSRF-Token": csrf}).status_code == 201
        assert client.get("/api/sales").status_code == 200  # reads need no token
    # Logging in from another site is refused (no login CSRF).
    with httpx.Client(base_url=proc.url, timeout=10) as other:
        resp = other.post(
            "/auth/login",
            json={"username": "carla", "pin": "2468"},
            headers={"Origin": "http://evil.example"},
        )
        assert resp.status_code == 403


def test_session_cookie_flags_and_logout(proc: RegisterProcess) -> None:
    with httpx.Client(base_url=proc.url, headers={"Origin": proc.url}) as client:
        resp = client.post("/auth/login", json={"username": "mia", "password": "counter-top-42"})
        cookie = resp.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert "secure" not in cookie  # plain HTTP on loopback; Secure is set over TLS
        csrf = resp.json()["csrf"]
        assert client.get("/admin").status_code == 200
        assert client.post("/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
        assert client.get("/api/sales").status_code == 401


def test_lock_out_after_repeated_failures_and_unlock(proc: RegisterProcess) -> None:
    with httpx.Client(base_url=proc.url, headers={"Origin": proc.url}, timeout=10) as client:
        answers = [
            client.post("/auth/login", json={"username": "sam", "pin": "0000"}).status_code
            for _ in range(5)
        ]
        assert answers == [401, 401, 401, 401, 429]
        locked = client.post("/auth/login", json={"username": "sam", "pin": "1357"})
        assert locked.status_code == 429
        assert "locked" in locked.json()["error"]["message"]
        # Unknown names are counted (and locked) like real ones.
        for _ in range(5):
            last = client.post("/auth/login", json={"username": "nobody", "pin": "1111"})
        assert last.status_code == 429
    with proc.client() as api:
        users = {u["username"]: u for u in api.get("/api/users").json()}
        assert users["sam"]["locked_until"] is not None
        assert api.post("/api/users/sam/unlock").status_code == 200
    with session(proc, "sam", pin="1357"):
        pass


def test_lock_expires_and_a_success_resets_the_count(tmp_path: Path) -> None:
    reg = Register(make_config(tmp_path))
    try:
        for i in range(2):
            assert lockout.record_failure(reg, "ann", 100.0 + i, 3, 60) is None
        assert lockout.record_failure(reg, "ann", 102.0, 3, 60) == 162.0
        assert lockout.locked_until(reg, "ann", 150.0) == 162.0
        assert lockout.locked_until(reg, "ann", 163.0) is None
        assert lockout.record_failure(reg, "ann", 163.0, 3, 60) is None  # a fresh count
        lockout.clear_failures(reg, "ann")
        assert lockout.locked_until(reg, "ann", 163.0) is None
    finally:
        reg.close()


def test_supervisor_approval_lets_a_cashier_discount(proc: RegisterProcess) -> None:
    with session(proc, "carla", pin="2468") as (client, csrf):
        headers = {"X-CSRF-Token": csrf}
        sale = client.post("/api/sales", headers=headers).json()
        client.post(f"/api/sales/{sale['id']}/lines", json={"code": "BREAD"}, headers=headers)
        path = f"/api/sales/{sale['id']}/discount"
        assert client.post(path, json={"percent_bp": 1000}, headers=headers).status_code == 403
        own = client.post(
            "/auth/approve",
            json={"username": "carla", "secret": "2468", "permission": "discount"},
            headers=headers,
        )
        assert own.status_code == 401  # a cashier cannot approve a discount
        ok = client.post(
            "/auth/approve",
            json={"username": "sam", "secret": "1357", "permission": "discount"},
            headers=headers,
        )
        assert ok.status_code == 200 and ok.json()["by"] == "sam"
        done = client.post(path, json={"percent_bp": 1000}, headers=headers)
        assert done.status_code == 200 and done.json()["discount"]["value"] == 1000


def test_admin_answers_other_hosts_only_when_configured(tmp_path: Path) -> None:
    for from_lan, expected in ((False, 403), (True, 200)):
        config = make_config(tmp_path / str(from_lan), web={"admin_from_lan": from_lan})
        app = create_app(config)
        with TestClient(app, base_url="http://register", client=("192.0.2.7", 40000)) as lan:
            lan.headers.update(bearer_headers(config.data_dir))
            lan.put(
                "/api/users/mia",
                json={"name": "Mia", "role": "manager", "password": "counter-top-42"},
            ).raise_for_status()
            lan.headers.pop("Authorization")
            lan.headers["Origin"] = "http://register"
            login = lan.post("/auth/login", json={"username": "mia", "password": "counter-top-42"})
            assert login.status_code == 200
            assert lan.get("/admin").status_code == expected
            assert lan.get("/").status_code == 200  # the sell screen is for the LAN


def test_accounts_replicate_as_ops_newest_wins(tmp_path: Path) -> None:
    first = Register(make_config(tmp_path / "a"))
    second = Register(make_config(tmp_path / "b", register={"id": "R2"}))
    try:
        older = upsert_user(
            first,
            {"username": "ann", "name": "Ann", "role": "cashier",
             "pin_hash": hash_secret("2468"), "password_hash": None, "disabled": False},
        )  # fmt: skip
        assert older["has_pin"] and not older["has_password"]
        newer = {
            "username": "ann",
            "name": "Ann B.",
            "role": "supervisor",
            "pin_hash": hash_secret("8642"),
            "password_hash": None,
            "disabled": False,
        }
        upsert_user(second, newer)  # made later, on the other register
        # Exchange ops in both directions: both end with the newer account.
        apply_remote(second, ops_since(first))
        apply_remote(first, ops_since(second))
        for reg in (first, second):
            user = get_user(reg, "ann")
            assert user is not None and user["role"] == "supervisor" and user["name"] == "Ann B."
            assert verify_secret(user["pin_hash"], "8642")
            assert reg.check().ok  # the users table is state replayed from the op log
        with pytest.raises(Exception, match="role"):
            upsert_user(first, {**newer, "role": "owner"})
    finally:
        first.close()
        second.close()


def test_user_command_creates_a_manager_without_showing_secrets(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run: Any = lambda *args, stdin="": subprocess.run(  # noqa: E731
        [str(VENV_BIN / "appliance"), "user", *args, "--data-dir", str(data)],
        input=stdin, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    add = ("add", "boss", "--name", "The Boss", "--role", "manager", "--stdin")
    short = run(*add, stdin="short\n")
    assert short.returncode == 1 and "at least 8 characters" in short.stderr
    made = run(*add, stdin="a-long-password\n")
    assert made.returncode == 0, made.stderr
    listed = run("list")
    assert listed.stdout.split("\t")[:4] == ["boss", "manager", "password", "active"]
    assert "a-long-password" not in made.stdout + listed.stdout


def test_back_office_users_bundle_with_scrypt_hashes(tmp_path: Path) -> None:
    """The back office hashes with scrypt; a pushed list applies whole or not at all."""
    import hashlib

    from appliance.auth.users import apply_users_bundle

    salt = bytes(range(16))
    key = hashlib.scrypt(b"office-password", salt=salt, n=2**14, r=8, p=1)
    scrypt_hash = f"scrypt$16384$8$1${salt.hex()}${key.hex()}"
    assert verify_secret(scrypt_hash, "office-password")
    assert not verify_secret(scrypt_hash, "office-passwort")
    assert not verify_secret(f"scrypt$1099511627776$8$1${salt.hex()}${key.hex()}", "x")
    boss = {"username": "boss", "name": "Boss", "role": "manager",
            "password_hash": scrypt_hash, "pin_hash": None, "disabled": False}  # fmt: skip
    reg = Register(make_config(tmp_path))
    try:
        with pytest.raises(Exception, match=r"users\[1\]\.role"):
            apply_users_bundle(reg, {"users": [boss, {**boss, "username": "x", "role": "god"}]})
        assert get_user(reg, "boss") is None  # nothing of a refused bundle
        assert apply_users_bundle(reg, {"users": [boss]}) == 1
        assert apply_users_bundle(reg, {"users": [boss]}) == 0  # unchanged: no new op
        assert reg.check().ok
    finally:
        reg.close()


def test_login_page_goes_back_only_to_this_register(proc: RegisterProcess) -> None:
    with httpx.Client(base_url=proc.url) as client:
        targets = [("/admin/sales", True), ("//evil.example", False)]
        targets += [("/\\evil.example", False), ("https://evil.example", False)]
        for target, kept in targets:
            page = client.get("/login", params={"next": target}).text
            expected = target if kept else "/"
            assert f'data-next="{expected}"' in page, target

"""Test support for back office and sync tests: real databases, real processes.

- ``backoffice_db_url`` fixture: the back office database, once on SQLite and once
  on the machine's PostgreSQL (127.0.0.1:5432, trust auth) in a uniquely named
  database that is dropped afterwards. Without PostgreSQL the PostgreSQL half says
  so and is skipped — except under CI, where it fails (CI must have one: .ci/run
  starts it).
- ``BackOfficeProcess``: `appliance backoffice serve` on a loopback port.
- ``ProxyProcess``: tests/tcp_proxy.py, the network between registers and back
  office, which the test cuts, restores or turns into a 503 answer.
"""

from __future__ import annotations

import getpass
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, VENV_BIN, RegisterProcess, free_port, unavailable

PG_HOST, PG_PORT = "127.0.0.1", 5432
ADMIN_PASSWORD = "correct horse"


def pg_url(dbname: str) -> str:
    return f"postgresql://{getpass.getuser()}@{PG_HOST}:{PG_PORT}/{dbname}"


def postgres_available() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


def require_postgres() -> None:
    if postgres_available():
        return
    message = (
        f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT}: the back office's PostgreSQL "
        "tests need it (.ci/run installs and starts Debian's postgresql)"
    )
    unavailable(message)


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(pg_url("postgres"), autocommit=True) as conn:
        conn.execute(sql)


def make_db_url(engine: str, tmp_path: Path) -> Iterator[str]:
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'backoffice.db'}"
        return
    require_postgres()
    name = f"bo_test_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url(name)
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backoffice_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One database per engine and test module, with the owner ``admin``; tests add
    their own stores (``add_stores``), so they share it without seeing each other."""
    for url in make_db_url(request.param, tmp_path_factory.mktemp("backoffice")):
        seed(url)
        yield url


def seed(db_url: str, stores: tuple[str, ...] = ()) -> None:
    """Stores and an owner ``admin`` (password ADMIN_PASSWORD)."""
    from appliance.backoffice.storage import open_database
    from appliance.backoffice.users import add_user

    db = open_database(db_url)
    try:
        with db.write() as tx:
            add_user(tx, "admin", "Alice Admin", ADMIN_PASSWORD, "owner")
        add_stores(db, stores)
    finally:
        db.close()


def add_stores(db: Any, stores: tuple[str, ...]) -> None:
    from appliance.backoffice.registers import create_store

    with db.write() as tx:
        for store in stores:
            create_store(tx, store, f"Shop {store}")


def new_store_ids(n: int) -> tuple[str, ...]:
    tag = uuid.uuid4().hex[:8]
    return tuple(f"s{i + 1}-{tag}" for i in range(n))


class BackOfficeProcess(RegisterProcess):
    """`appliance backoffice serve` on a loopback port (kill and stop as a register's)."""

    def __init__(self, db_url: str, log_dir: Path, port: int | None = None) -> None:
        super().__init__(log_dir, port=port)
        self.db_url = db_url
        self.log = log_dir / f"backoffice-{self.port}.log"

    def start(self, timeout: float = 30.0) -> float:
        cmd = [str(VENV_BIN / "appliance"), "backoffice", "serve", "--db", self.db_url]
        cmd += ["--port", str(self.port)]
        started = time.monotonic()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        wait_until(
            lambda: _answers(f"{self.url}/api/v1/health"),
            timeout,
            f"back office did not start: {self.log}",
            self.proc,
        )
        return time.monotonic() - started


class ProxyProcess:
    def __init__(self, target_port: int) -> None:
        self.port, self.control = free_port(), free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.tcp_proxy", *map(str, self.ports(target_port))],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == b"ready"

    def ports(self, target_port: int) -> tuple[int, int, int]:
        return self.port, target_port, self.control

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, line: str) -> dict[str, Any]:
        with socket.create_connection(("127.0.0.1", self.control), timeout=5) as sock:
            sock.sendall(line.encode() + b"\n")
            data = sock.makefile().readline()
        result: dict[str, Any] = json.loads(data)
        return result

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(
    check: Callable[[], Any],
    timeout: float,
    message: str,
    proc: subprocess.Popen[bytes] | None = None,
    interval: float = 0.05,
) -> Any:
    """Poll ``check`` until it is truthy (bounded); fail with ``message`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{message} (process exited {proc.returncode})")
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} (after {timeout} s)")
        time.sleep(interval)


class Admin:
    """A back office user session over HTTP."""

    def __init__(self, base_url: str, username: str = "admin", password: str = ADMIN_PASSWORD):
        self.http = httpx.Client(base_url=base_url, timeout=10)
        token = self.http.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        ).json()["token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    def pairing_code(self, store: str = "s1", register_id: str | None = None) -> str:
        resp = self.http.post(
            f"/api/v1/stores/{store}/pairing-codes", json={"register_id": register_id}
        )
        resp.raise_for_status()
        code: str = resp.json()["code"]
        return code

    def sales(self, store: str = "s1", **params: Any) -> list[dict[str, Any]]:
        resp = self.http.get(f"/api/v1/stores/{store}/sales", params={"limit": 100000, **params})
        resp.raise_for_status()
        rows: list[dict[str, Any]] = resp.json()
        return rows

    def registers(self, store: str = "s1") -> dict[str, dict[str, Any]]:
        resp = self.http.get(f"/api/v1/stores/{store}/registers")
        resp.raise_for_status()
        return {r["register_id"]: r for r in resp.json()}

    def close(self) -> None:
        self.http.close()


FAST_SYNC = {
    "probe_min_seconds": 0.2,
    "probe_max_seconds": 1.0,
    "retry_min_seconds": 0.1,
    "retry_max_seconds": 0.5,
    "long_poll_seconds": 2.0,
    "request_timeout_seconds": 3.0,
    "batch_size": 50,
}


def register_toml(register_id: str, data_dir: Path, port: int, **sync: Any) -> str:
    values = {**FAST_SYNC, **sync}
    lines = [
        "[register]",
        f'id = "{register_id}"',
        f'data_dir = "{data_dir}"',
        "[http]",
        f"port = {port}",
        "[sync]",
    ]
    for key, value in values.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def sell(client: httpx.Client, codes: tuple[str, ...] = ("4006381333931",)) -> dict[str, Any]:
    """One cash sale through the register's API; returns the completed sale."""
    sale_id = client.post("/api/sales").json()["id"]
    for code in codes:
        client.post(f"/api/sales/{sale_id}/lines", json={"code": code}).raise_for_status()
    resp = client.post(
        f"/api/sales/{sale_id}/tenders", json={"kind": "cash", "amount_minor": 10**6}
    )
    resp.raise_for_status()
    sale: dict[str, Any] = resp.json()
    assert sale["status"] == "completed"
    return sale

"""Shared fixtures: real SQLite files in tmp folders, real register processes on loopback.

Authentication: the core API answers only with the right role. Machine clients (these
tests, the HIL tiers) send the register's machine token, which the register writes to
``<data_dir>/api-token`` at first start: ``bearer_headers(data_dir)``. Use
``api_client(config)`` for an in-process app and ``RegisterProcess.client()`` /
``.headers`` for a real process; browser tests log in like a person (tests/web/).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
import pytest
from hypothesis import settings

from appliance.auth.tokens import bearer_headers
from appliance.config import Config, config_from_dict
from appliance.register import Register

# CI runs the property tests on a fixed sequence of examples, so a red run can be
# reproduced and a green one does not depend on the draw; locally each run explores
# new examples (and `--hypothesis-seed` replays one).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

CATALOG_CSV = """sku,name,price_minor,barcodes,tax_category,sold_by
COFFEE,Coffee 250 g,499,4006381333931,reduced,unit
BEER,Beer 0.5 l,249,4001686301265 BEER-EAN,standard,unit
APPLES,Apples,299,2100001000004,reduced,weight
CARD,Greeting card,300,,standard,unit
FREE,Free sample,0,,zero,unit
"""


def unavailable(message: str) -> NoReturn:
    """Something a test needs is missing: under CI that is a failure, elsewhere a skip.

    The message must say what is missing and how to get it.
    """
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def make_config(tmp_path: Path, **sections: dict[str, Any]) -> Config:
    data: dict[str, Any] = {
        "register": {"data_dir": str(tmp_path / "data")},
        "demo": {"catalog": False},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return config_from_dict(data)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def register(config: Config) -> Iterator[Register]:
    reg = Register(config)
    reg.import_catalog_csv(CATALOG_CSV, "test.csv")
    yield reg
    reg.close()


@pytest.fixture
def shift_register(register: Register) -> Register:
    register.open_shift(10_000)
    return register


if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from appliance.service import RegisterService


@contextmanager
def api_client(config: Config, service: RegisterService | None = None) -> Iterator[TestClient]:
    """The app in-process (lifespan run), authenticated with the machine token."""
    from fastapi.testclient import TestClient

    from appliance.api import create_app

    with TestClient(create_app(config, service)) as client:
        client.headers.update(bearer_headers(config.data_dir))
        yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RegisterProcess:
    """A real `appliance run` process on a loopback port."""

    def __init__(
        self,
        data_dir: Path,
        config_file: Path | None = None,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.config_file = config_file
        self.port = port or free_port()
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"register-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        """The machine token's Authorization header (the register writes it at start)."""
        return bearer_headers(self.data_dir)

    def client(self, timeout: float = 10.0) -> httpx.Client:
        """An HTTP client on this register that acts with the machine token."""
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=timeout)

    def start(self, timeout: float = 20.0) -> float:
        cmd = [str(VENV_BIN / "appliance"), "run", "--data-dir", str(self.data_dir)]
        cmd += ["--port", str(self.port)]
        if self.config_file:
            cmd += ["--config", str(self.config_file)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        start = time.monotonic()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = start + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"register exited with {self.proc.returncode}: {self.log.read_text()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return time.monotonic() - start
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"register did not become ready in {timeout}s: {self.log.read_text()}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def register_process(tmp_path: Path) -> Iterator[RegisterProcess]:
    proc = RegisterProcess(tmp_path / "data")
    yield proc
    proc.stop()


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Debian chromium per test module, driven by Playwright.

    Debian's chromium (bootstrap.sh installs it); Playwright's own browser download
    is never used. Tests open their own contexts (cookies) and pages on it. Module
    scope, not session: Playwright's sync API keeps an event loop running on the
    test thread while it is open, which would break ``asyncio.run`` in every later
    test module (keep browser tests together in a module; run asyncio on a thread).
    """
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run ./bootstrap.sh setup (apt package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()

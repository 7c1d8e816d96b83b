"""Shared rig for the card payment tests: a register app (with its start/stop hooks, so
the payments feature runs as in `appliance run`) on a real SQLite file, driven over
its HTTP API in-process, and a ZVT terminal simulator on a real loopback TCP port —
either the register's own "simulated" terminal or one the test owns (so the terminal
outlives a register restart, as a real one does)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from appliance.api import create_app
from appliance.auth.tokens import bearer_headers
from appliance.config import config_from_dict
from appliance.payments.service import PaymentService
from hil.zvt_sim.script import parse_outcome
from hil.zvt_sim.server import bound_address, serve_tcp
from hil.zvt_sim.terminal import SimTerminal
from tests.conftest import CATALOG_CSV

Doc = dict[str, Any]
FAST = {"t3_seconds": 1.0, "t4_seconds": 3.0, "poll_seconds": 0.1, "link_check_seconds": 0}


def run(coro: Awaitable[Any], limit: float = 30.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, limit)

    return asyncio.run(bounded())


@dataclass
class Rig:
    client: httpx.AsyncClient
    payments: PaymentService
    sim: SimTerminal
    app: Any

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        resp = await self.client.request(method, path, json=body)
        assert resp.status_code == status, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json()

    async def refused(self, method: str, path: str, body: Any = None) -> Doc:
        resp = await self.client.request(method, path, json=body)
        assert resp.status_code >= 400, f"{method} {path} was accepted: {resp.text}"
        error: Doc = resp.json()["error"]
        return error

    async def sale(self, *codes: str) -> Doc:
        sale: Doc = await self.ok("POST", "/api/sales", status=201)
        for code in codes:
            sale = await self.ok("POST", f"/api/sales/{sale['id']}/lines", {"code": code}, 201)
        return sale

    async def pay(
        self, sale_id: str, outcome: str | None = None, wait: float = 10, **body: Any
    ) -> Doc:
        if outcome is not None:
            self.sim.script(parse_outcome(outcome))
        path = f"/api/sales/{sale_id}/payments" + (f"?wait={wait:g}" if wait else "")
        doc: Doc = await self.ok("POST", path, body, 202)
        return doc

    async def get_sale(self, sale_id: str) -> Doc:
        doc: Doc = await self.ok("GET", f"/api/sales/{sale_id}")
        return doc

    async def until(self, path: str, check: Any, seconds: float = 5.0) -> Doc:
        """Poll a GET until ``check(doc)`` holds (bounded)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            doc: Doc = await self.ok("GET", path)
            if check(doc):
                return doc
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{path} never satisfied the check: {doc}")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def own_terminal(**sim_kw: Any) -> AsyncIterator[tuple[SimTerminal, str]]:
    """A simulator the test owns, on 127.0.0.1: (sim, "tcp:127.0.0.1:PORT")."""
    sim = SimTerminal(**sim_kw)
    server, _ = await serve_tcp(sim, "127.0.0.1", 0)
    host, port = bound_address(server)
    try:
        yield sim, f"tcp:{host}:{port}"
    finally:
        server.close()


@contextlib.asynccontextmanager
async def register_app(
    tmp_path: Path,
    terminal: str = "simulated",
    sim: SimTerminal | None = None,
    offline: Doc | None = None,
    shift: bool = True,
    **payments: Any,
) -> AsyncIterator[Rig]:
    cfg: Doc = {
        "register": {"data_dir": str(tmp_path / "data")},
        "demo": {"catalog": False},
        "payments": {**FAST, "terminal": terminal, **payments, "offline": offline or {}},
    }
    app = create_app(config_from_dict(cfg))
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://r",
            headers=bearer_headers(app.state.features.config.data_dir),
        )
        stack.push_async_callback(client.aclose)
        svc: PaymentService = app.state.payments
        await svc.ensure_started()  # it starts in the background; the rig needs its simulator
        terminal_sim = sim if sim is not None else svc.link.sim
        assert terminal_sim is not None, "give the test's own simulator with terminal=tcp:…"
        rig = Rig(client, svc, terminal_sim, app)
        await setup_catalog(rig, shift)
        yield rig


async def setup_catalog(rig: Rig, shift: bool = True) -> None:
    resp = await rig.client.post("/api/catalog/import", content=CATALOG_CSV)
    assert resp.status_code == 200, resp.text
    if shift and (await rig.client.get("/api/shifts/current")).json() is None:
        await rig.ok("POST", "/api/shifts", {"float_minor": 0}, 201)


class ThreadedTerminal:
    """A simulator on 127.0.0.1 served by its own event loop in a thread, for tests
    that drive a real register process synchronously. ``do(fn)`` runs ``fn(sim)`` on
    the terminal's loop (scripting, reading the journal) and returns its result."""

    def __init__(self, **sim_kw: Any) -> None:
        import threading

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sim = SimTerminal(**sim_kw)
        self.server = self._run(serve_tcp(self.sim, "127.0.0.1", 0))[0]
        host, port = bound_address(self.server)
        self.address = f"tcp:{host}:{port}"

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def do(self, fn: Any) -> Any:
        async def call() -> Any:
            return fn(self.sim)

        return self._run(call())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

"""The register's own overhead per card authorization (ms), against the ZVT simulator.

    .venv/bin/python bench/payments_overhead.py [--payments 100] [--rounds 3]

Both paths talk to the same simulated terminal over loopback TCP in the same run:

- bare: ``ZvtClient.authorize`` (the driver alone: one ZVT exchange, 15 terminal
  messages, 10 of them slip lines);
- register: ``POST /api/sales/{id}/payments?wait=…`` on the register's app (in-process
  ASGI, real SQLite file with WAL + fsync): checks, the durable payment row before the
  terminal is asked, the same exchange, the state changes, the card tender that
  completes the sale, and the answer. Sales are rung up before the clock starts.

Overhead = register median − bare median. Rounds alternate the two paths so machine
load hits both alike. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from appliance.api import create_app
from appliance.auth.tokens import bearer_headers
from appliance.config import config_from_dict
from drivers.zvt.client import ZvtClient
from drivers.zvt.transport import ZvtTimeouts, open_tcp
from hil.zvt_sim.server import bound_address, serve_tcp
from hil.zvt_sim.terminal import SimTerminal

T = ZvtTimeouts(t3=5.0, t4=10.0)


def summary(name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    return (
        f"{name:9} mean {statistics.mean(ms):6.2f} ms  median {statistics.median(ms):6.2f} ms"
        f"  p95 {ms[int(len(ms) * 0.95)]:6.2f} ms  (n={len(ms)})"
    )


async def bare(host: str, port: int, n: int) -> list[float]:
    client = ZvtClient(await open_tcp(host, port, T))
    times = []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            res = await client.authorize(100 + i)
            times.append((time.perf_counter() - t0) * 1000)
            assert res.approved, res.message
    finally:
        await client.close()
    return times


async def register(client: httpx.AsyncClient, n: int) -> list[float]:
    sales = []
    for _ in range(n):
        sale = (await client.post("/api/sales")).json()
        await client.post(f"/api/sales/{sale['id']}/lines", json={"code": "4006381333931"})
        sales.append(sale["id"])
    times = []
    for sid in sales:
        t0 = time.perf_counter()
        resp = await client.post(f"/api/sales/{sid}/payments?wait=10", json={})
        times.append((time.perf_counter() - t0) * 1000)
        assert resp.status_code == 202 and resp.json()["state"] == "approved", resp.text
    return times


async def main(payments: int, rounds: int) -> None:
    sim = SimTerminal()
    server, _ = await serve_tcp(sim, "127.0.0.1", 0, timeouts=T)
    host, port = bound_address(server)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config_from_dict(
            {
                "register": {"data_dir": tmp},
                "payments": {"terminal": f"tcp:{host}:{port}", "link_check_seconds": 3600},
            }
        )
        app = create_app(cfg)
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://register",
                headers=bearer_headers(cfg.data_dir),
            )
            stack.push_async_callback(client.aclose)
            await client.post("/api/shifts", json={"float_minor": 0})
            await register(client, 5)  # warm-up: connection, registration, caches
            await bare(host, port, 5)
            bare_ms: list[float] = []
            reg_ms: list[float] = []
            for _ in range(rounds):
                bare_ms += await bare(host, port, payments)
                reg_ms += await register(client, payments)
    server.close()
    print(summary("bare", bare_ms))
    print(summary("register", reg_ms))
    overhead = statistics.median(reg_ms) - statistics.median(bare_ms)
    print(
        f"register overhead per authorization: {overhead:.2f} ms (median register − median "
        f"bare; ×{statistics.median(reg_ms) / statistics.median(bare_ms):.2f})"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--payments", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    asyncio.run(main(args.payments, args.rounds))

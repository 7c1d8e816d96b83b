"""Back office ingest: 50 registers pushing their sales at once.

A real `appliance backoffice serve` process (SQLite, then PostgreSQL when one answers
on 127.0.0.1:5432); 50 paired registers (real tokens), spread over ``--stores``
stores (5 a store by default, as a back office serving many shops has them), each push ``--batches``
batches of ``--per-batch`` sales (open, line, tender, complete: 4 ops a sale, the
shapes a register writes) concurrently over loopback HTTP. Printed: sales/s taken
in (stored exactly once and folded into sales), and push latency p50/p99. Baseline in
the same run: one register pushing alone.

Usage: python bench/backoffice_ingest.py [--registers 50] [--stores 10] [--batches 20]
                                         [--per-batch 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.sync_support import (  # noqa: E402
    Admin,
    BackOfficeProcess,
    make_db_url,
    postgres_available,
    seed,
)

Doc = dict[str, Any]


def sale_ops(register_id: str, n: int, wall_ms: int) -> list[Doc]:
    """The ops of sale number ``n`` of a register, as the register writes them."""
    sale_id = uuid.uuid4().hex
    pricing = {
        "tax_mode": "inclusive",
        "tax_rounding": "per_total",
        "cash_rounding": 1,
        "currency": "EUR",
    }
    line = {
        "id": uuid.uuid4().hex[:16],
        "no": 1,
        "sku": "COFFEE",
        "name": "Coffee",
        "code": "4006381333931",
        "unit": "unit",
        "qty": 2,
        "unit_price": 499,
        "tax_category": "reduced",
        "rate_ppm": 70000,
        "override": None,
        "discount": None,
        "voided": False,
    }
    tender = {"id": uuid.uuid4().hex[:12], "kind": "cash", "amount": 1000, "reference": None}
    at = "2026-11-24T10:00:00.000Z"
    payloads = [
        ("sale.open", {"kind": "sale", "pricing": pricing, "opened_at": at}),
        ("sale.line_add", {"line": line}),
        ("sale.tender", {"tender": tender}),
        (
            "sale.complete",
            {
                "receipt_no": f"{register_id}-{n:06d}",
                "receipt_seq": n,
                "shift_id": f"shift-{register_id}",
                "completed_at": at,
                "snapshot": {
                    "lines": [line],
                    "tenders": [tender],
                    "discount": None,
                    "customer": None,
                },
            },
        ),
    ]
    return [
        {
            "op_id": uuid.uuid4().hex,
            "register_id": register_id,
            "hlc": f"{wall_ms:013d}.{n * 4 + i:06d}.{register_id}",
            "sale_id": sale_id,
            "kind": kind,
            "payload": payload,
        }
        for i, (kind, payload) in enumerate(payloads)
    ]


def bodies(register_id: str, batches: int, per_batch: int) -> list[bytes]:
    wall = int(time.time() * 1000)
    out = []
    n = 0
    for _ in range(batches):
        ops: list[Doc] = []
        for _ in range(per_batch):
            n += 1
            ops += sale_ops(register_id, n, wall)
        out.append(json.dumps({"ops": ops, "pending": 0}).encode())
    return out


async def push_all(url: str, token: str, payloads: list[bytes], latencies: list[float]) -> None:
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
        for body in payloads:
            t0 = time.perf_counter()
            resp = await client.post("/api/v1/sync/push", content=body)
            latencies.append((time.perf_counter() - t0) * 1000)
            if resp.status_code != 200:
                raise SystemExit(f"push failed: {resp.status_code} {resp.text[:300]}")


def pair(office: BackOfficeProcess, admin: Admin, store: str, register_id: str) -> str:
    resp = httpx.post(
        f"{office.url}/api/v1/pair",
        json={"code": admin.pairing_code(store), "register_id": register_id},
    )
    resp.raise_for_status()
    token: str = resp.json()["token"]
    return token


def run(engine: str, work: Path, registers: int, stores: int, batches: int, per_batch: int) -> None:
    urls = make_db_url(engine, work / engine)
    (work / engine).mkdir(parents=True, exist_ok=True)
    db_url = next(urls)
    store_ids = [f"s{i + 1}" for i in range(stores)]
    seed(db_url, tuple(store_ids))
    office = BackOfficeProcess(db_url, work)
    office.start()
    admin = Admin(office.url)
    try:
        ids = [f"R{i + 1}" for i in range(registers)]
        store_of = {rid: store_ids[i % stores] for i, rid in enumerate(ids)}
        store_of["SOLO"] = store_ids[0]
        tokens = {rid: pair(office, admin, store_of[rid], rid) for rid in [*ids, "SOLO"]}
        work_of = {rid: bodies(rid, batches, per_batch) for rid in [*ids, "SOLO"]}

        solo: list[float] = []
        t0 = time.perf_counter()
        asyncio.run(push_all(office.url, tokens["SOLO"], work_of["SOLO"], solo))
        solo_rate = batches * per_batch / (time.perf_counter() - t0)

        latencies: list[float] = []

        async def everyone() -> None:
            await asyncio.gather(
                *(push_all(office.url, tokens[rid], work_of[rid], latencies) for rid in ids)
            )

        t0 = time.perf_counter()
        asyncio.run(everyone())
        elapsed = time.perf_counter() - t0
        total = registers * batches * per_batch
        held = sum(len(admin.sales(store, status="completed")) for store in store_ids)
        assert held == total + batches * per_batch, f"{engine}: holds {held}"
        q = statistics.quantiles(latencies, n=100)
        sq = statistics.quantiles(solo, n=100)
        print(
            f"{engine}: 1 register alone          : {solo_rate:8.0f} sales/s, push p50 "
            f"{sq[49]:6.1f} ms  p99 {sq[98]:6.1f} ms"
        )
        print(
            f"{engine}: {registers} registers in {stores} stores: {total / elapsed:8.0f} sales/s, "
            f"push p50 {q[49]:6.1f} ms  p99 {q[98]:6.1f} ms  ({total} sales, "
            f"{per_batch} sales = {per_batch * 4} ops per push, {elapsed:.1f} s)"
        )
    finally:
        admin.close()
        office.stop()
        for _ in urls:
            pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--registers", type=int, default=50)
    parser.add_argument("--stores", type=int, default=10)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--per-batch", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    engines = ["sqlite"] + (["postgresql"] if postgres_available() else [])
    if len(engines) == 1:
        print("postgresql: not measured (nothing answers on 127.0.0.1:5432)")
    for engine in engines:
        run(engine, work, args.registers, args.stores, args.batches, args.per_batch)


if __name__ == "__main__":
    main()

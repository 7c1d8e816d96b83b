"""Durable completed sales per second (10 lines, 2 tenders) against the fsync rate.

Runs the register core in-process on a real SQLite file (WAL, synchronous=FULL) and
measures, in the same run:
- fsync/s of a small append-and-fsync loop in the same folder (the disk's ceiling);
- completed sales/s, each sale = open + 10 add-line-by-barcode + 2 tenders, every
  operation its own transaction, exactly as the API does it, in both durability
  modes: every_change (each commit fsynced: 13 per sale) and completed (cart edits
  not fsynced; the tenders and the completion are: 2 per sale);
- p50/p99 latency of "add line by barcode" including its durable write.

Usage: python bench/register_throughput.py [--sales N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from appliance.config import config_from_dict
from appliance.register import Register
from appliance.service import RegisterService

BARCODES = [f"20000{n:07d}" for n in range(10)]


def fsync_rate(folder: Path, seconds: float = 1.0) -> float:
    path = folder / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        n = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            os.write(fd, b"x" * 128)
            os.fsync(fd)
            n += 1
        return n / (time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()


def single(folder: Path, durability: str, sales: int) -> tuple[float, list[float]]:
    """One client on the bare Register: sales/s and add-line latencies (ms)."""
    config = config_from_dict(
        {
            "register": {"data_dir": str(folder / f"data-{durability}"), "durability": durability},
            "demo": {"catalog": False},
        }
    )
    reg = Register(config)
    csv = "sku,name,price_minor,barcodes,tax_category\n" + "".join(
        f"P{i},Product {i},{100 + 37 * i},{code},{'reduced' if i % 2 else 'standard'}\n"
        for i, code in enumerate(BARCODES)
    )
    reg.import_catalog_csv(csv, "bench.csv")
    reg.open_shift(0)
    add_line_ms: list[float] = []
    start = time.perf_counter()
    for _ in range(sales):
        sale = reg.open_sale()
        for code in BARCODES:
            t0 = time.perf_counter()
            sale = reg.add_line(sale["id"], code)
            add_line_ms.append((time.perf_counter() - t0) * 1000)
        total = sale["totals"]["total"]
        reg.add_tender(sale["id"], "other", total // 2, "voucher")
        done = reg.add_tender(sale["id"], "cash", total)
        assert done["status"] == "completed"
    elapsed = time.perf_counter() - start
    reg.close()
    return sales / elapsed, add_line_ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sales", type=int, default=600)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    folder = Path(args.dir or tempfile.mkdtemp(prefix="bench-register-"))
    fsyncs = fsync_rate(folder)
    results = {mode: single(folder, mode, args.sales) for mode in ("every_change", "completed")}
    fsyncs_after = fsync_rate(folder)
    fsync_mean = (fsyncs + fsyncs_after) / 2

    print(f"fsync/s (before, after)          : {fsyncs:8.0f} {fsyncs_after:8.0f}")
    print(f"completed sales per mode         : {args.sales} (open, 10 lines, voucher + cash)")
    fsyncs_per_sale = {"every_change": 13, "completed": 2}
    for mode, (rate, add_line_ms) in results.items():
        q = statistics.quantiles(add_line_ms, n=100)
        print(f"register.durability = {mode!r}")
        print(f"  durable completed sales/s      : {rate:8.1f}  (target >= 300)")
        print(f"  fsyncs per sale                : {fsyncs_per_sale[mode]}")
        print(f"  sales/s ÷ fsync/s              : {rate / fsync_mean:8.4f}")
        print(f"  add line p50 / p99 ms          : {q[49]:.3f} / {q[98]:.3f}  (target p99 <= 5 ms)")
    for cashiers in (1, 4, 8):
        rate, groups = concurrent(folder, cashiers, max(1, args.sales // cashiers))
        print(
            f"service, {cashiers} concurrent clients    : {rate:8.1f} sales/s "
            f"({groups} group commits, every_change)"
        )


async def _cashier(service: RegisterService, sales: int) -> None:
    for _ in range(sales):
        sale = await service.call(Register.open_sale)
        for code in BARCODES:
            sale = await service.call(Register.add_line, sale["id"], code)
        total = sale["totals"]["total"]
        await service.call(Register.add_tender, sale["id"], "other", total // 2, "voucher")
        done = await service.call(Register.add_tender, sale["id"], "cash", total)
        assert done["status"] == "completed"


def concurrent(folder: Path, cashiers: int, sales_each: int) -> tuple[float, int]:
    """Several clients at once through the asyncio service (group commit)."""
    config = config_from_dict(
        {"register": {"data_dir": str(folder / f"data-c{cashiers}")}, "demo": {"catalog": False}}
    )

    async def run() -> tuple[float, int]:
        service = RegisterService(config)
        await service.start()
        csv = "sku,name,price_minor,barcodes\n" + "".join(
            f"P{i},Product {i},{100 + i},{code}\n" for i, code in enumerate(BARCODES)
        )
        await service.call(Register.import_catalog_csv, csv, "bench.csv")
        await service.call(Register.open_shift, 0)
        start = time.perf_counter()
        await asyncio.gather(*(_cashier(service, sales_each) for _ in range(cashiers)))
        elapsed = time.perf_counter() - start
        groups = service.groups
        await service.stop()
        return cashiers * sales_each / elapsed, groups

    return asyncio.run(run())


if __name__ == "__main__":
    main()

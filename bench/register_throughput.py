"""Durable completed sales per second (10 lines, 2 tenders) against the machine's fsync rate.

Runs the register core in-process on a real SQLite file (WAL, synchronous=FULL) and
measures, in the same run:
- fsync/s of a small append-and-fsync loop in the same folder (the disk's ceiling);
- completed sales/s, each sale = open + 10 add-line-by-barcode + 2 tenders, every
  operation its own durable transaction, exactly as the API does it;
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sales", type=int, default=600)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    folder = Path(args.dir or tempfile.mkdtemp(prefix="bench-register-"))
    config = config_from_dict(
        {"register": {"data_dir": str(folder / "data")}, "demo": {"catalog": False}}
    )
    reg = Register(config)
    csv = "sku,name,price_minor,barcodes,tax_category\n" + "".join(
        f"P{i},Product {i},{100 + 37 * i},{code},{'reduced' if i % 2 else 'standard'}\n"
        for i, code in enumerate(BARCODES)
    )
    reg.import_catalog_csv(csv, "bench.csv")
    reg.open_shift(0)

    fsyncs = fsync_rate(folder)
    add_line_ms: list[float] = []
    start = time.perf_counter()
    for _ in range(args.sales):
        sale = reg.open_sale()
        for code in BARCODES:
            t0 = time.perf_counter()
            sale = reg.add_line(sale["id"], code)
            add_line_ms.append((time.perf_counter() - t0) * 1000)
        total = sale["totals"]["total"]
        reg.add_tender(sale["id"], "card", total // 2)
        done = reg.add_tender(sale["id"], "cash", total)
        assert done["status"] == "completed"
    elapsed = time.perf_counter() - start
    sales_per_s = args.sales / elapsed
    fsyncs_after = fsync_rate(folder)
    reg.close()

    q = statistics.quantiles(add_line_ms, n=100)
    print(f"fsync/s (before, after)          : {fsyncs:8.0f} {fsyncs_after:8.0f}")
    print(f"completed sales                  : {args.sales}")
    print(f"durable completed sales/s        : {sales_per_s:8.1f}  (target >= 300)")
    print("durable transactions per sale    : 13 (open, 10 lines, 2 tenders; the last completes)")
    ratio = sales_per_s / ((fsyncs + fsyncs_after) / 2)
    print(f"sales/s ÷ fsync/s                : {ratio:8.4f}")
    print(f"add line by barcode p50 / p99 ms : {q[49]:.3f} / {q[98]:.3f}  (target p99 <= 5 ms)")
    for cashiers in (1, 4, 8):
        rate, groups = concurrent(folder, cashiers, max(1, args.sales // cashiers))
        print(
            f"service, {cashiers} concurrent clients    : {rate:8.1f} sales/s "
            f"({groups} group commits)"
        )


async def _cashier(service: RegisterService, sales: int) -> None:
    for _ in range(sales):
        sale = await service.call(Register.open_sale)
        for code in BARCODES:
            sale = await service.call(Register.add_line, sale["id"], code)
        total = sale["totals"]["total"]
        await service.call(Register.add_tender, sale["id"], "card", total // 2)
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

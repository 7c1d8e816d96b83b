"""Drain after an outage: 10,000 sales queued on a register, then the back office returns.

A register database is filled with N completed sales while it has no back office
(each sale: open, a line, a cash tender that completes it — 3 ops), then a real
`appliance run` process on it is paired with a real `appliance backoffice serve`
process, on SQLite and on PostgreSQL (when one answers on 127.0.0.1:5432). Timed:
from pairing until the register's pending count is 0 and the back office holds all
N sales. Baseline in the same run: how fast the register recorded the sales
(durably, grouped) in the first place.

Usage: python bench/sync_drain.py [--sales 10000] [--batch 500]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from appliance.config import config_from_dict  # noqa: E402
from appliance.register import Register  # noqa: E402
from tests.conftest import CATALOG_CSV, RegisterProcess  # noqa: E402
from tests.sync_support import (  # noqa: E402
    Admin,
    BackOfficeProcess,
    make_db_url,
    postgres_available,
    register_toml,
    seed,
)


def fill(folder: Path, sales: int) -> float:
    """N completed sales on a fresh register database; returns sales/s recorded."""
    config = config_from_dict(
        {"register": {"id": "R1", "data_dir": str(folder)}, "demo": {"catalog": False}}
    )
    reg = Register(config)
    reg.import_catalog_csv(CATALOG_CSV, "bench.csv")
    reg.open_shift(0)
    start = time.perf_counter()
    done = 0
    while done < sales:
        with reg.group_commit():
            for _ in range(min(200, sales - done)):
                sale = reg.open_sale()
                reg.add_line(sale["id"], "4006381333931")
                reg.add_tender(sale["id"], "cash", 1000)
                done += 1
    rate = sales / (time.perf_counter() - start)
    reg.close()
    return rate


def drain(engine: str, template: Path, work: Path, sales: int, batch: int) -> tuple[float, int]:
    data = work / f"register-{engine}"
    shutil.copytree(template, data)
    urls = make_db_url(engine, work)
    db_url = next(urls)
    try:
        seed(db_url, ("s1",))
        office = BackOfficeProcess(db_url, work)
        office.start()
        admin = Admin(office.url)
        config = work / f"r1-{engine}.toml"
        reg = RegisterProcess(data, config)
        config.write_text(
            register_toml(
                "R1",
                data,
                reg.port,
                batch_size=batch,
                long_poll_seconds=20.0,
                request_timeout_seconds=60.0,
            )
        )
        try:
            reg.start()
            client = reg.client(timeout=60)
            start = time.perf_counter()
            resp = client.post(
                "/api/sync/pair", json={"url": office.url, "code": admin.pairing_code()}
            )
            resp.raise_for_status()
            deadline = time.monotonic() + 600
            while client.get("/api/sync/status").json()["pending"] > 0:
                if time.monotonic() > deadline:
                    raise SystemExit("drain did not finish in 10 minutes")
                time.sleep(0.05)
            elapsed = time.perf_counter() - start
            held = len(admin.sales("s1", status="completed"))
            client.close()
        finally:
            reg.stop()
            admin.close()
            office.stop()
        return elapsed, held
    finally:
        for _ in urls:  # drop the PostgreSQL database
            pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sales", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-drain-"))
    try:
        template = work / "template"
        recorded = fill(template, args.sales)
        print(f"queued sales (3 ops each)            : {args.sales}")
        print(f"baseline: sales recorded/s (grouped) : {recorded:8.0f}")
        engines = ["sqlite"] + (["postgresql"] if postgres_available() else [])
        if len(engines) == 1:
            print("postgresql                           : not measured (nothing on 127.0.0.1:5432)")
        for engine in engines:
            elapsed, held = drain(engine, template, work, args.sales, args.batch)
            assert held == args.sales, f"{engine}: back office holds {held} of {args.sales}"
            rate = args.sales / elapsed
            print(
                f"drain to {engine:<10} back office : {elapsed:7.2f} s  {rate:8.0f} sales/s "
                f"({rate / recorded:.2f} × recording rate), batches of {args.batch} ops"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

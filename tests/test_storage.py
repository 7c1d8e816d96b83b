"""Storage: durability settings, migrations, and refusing writes cleanly when the disk can't."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from appliance.errors import StorageUnavailable
from appliance.register import Register
from appliance.storage.db import MIGRATIONS, SCHEMA_VERSION, SchemaTooNew, connect, migrate
from tests.conftest import CATALOG_CSV, make_config


def test_database_is_wal_with_full_sync(register: Register) -> None:
    assert register.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert register.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_old_database_upgrades_on_start(tmp_path: Path) -> None:
    path = tmp_path / "data" / "register.db"
    conn = connect(path)
    migrate(conn, target=1)  # a database written by schema version 1
    conn.execute(
        "INSERT INTO ops (op_id, register_id, hlc, sale_id, kind, payload) VALUES"
        " ('o1', 'R1', '0000000000001.000000.R1', NULL, 'customer.upsert',"
        ' \'{"customer": {"id": "c1", "code": "C1", "name": "Old", "email": null}}\')'
    )
    conn.execute("INSERT INTO customers (id, code, name) VALUES ('c1', 'C1', 'Old')")
    conn.close()
    reg = Register(make_config(tmp_path))
    assert (
        reg.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
    )
    assert reg.customer("C1")["name"] == "Old"
    assert "meta" in {r[0] for r in reg.conn.execute("SELECT name FROM sqlite_master")}
    assert reg.check().ok
    reg.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "register.db"
    conn = connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNew, match="newer than this software"):
        Register(make_config(tmp_path))


def test_database_of_another_register_is_refused(tmp_path: Path) -> None:
    Register(make_config(tmp_path)).close()
    with pytest.raises(StorageUnavailable, match="belongs to register 'R1'"):
        Register(make_config(tmp_path, register={"id": "R2"}))


def _fill_until_full(reg: Register) -> StorageUnavailable:
    reg.open_shift(0)
    for i in range(100_000):
        try:
            sale = reg.open_sale()
            reg.add_line(sale["id"], "COFFEE")
            reg.add_tender(sale["id"], "cash", 499)
        except StorageUnavailable as exc:
            return exc
        assert i < 99_999
    raise AssertionError("the disk never filled")


def _assert_no_half_sale(reg: Register) -> None:
    # Every completed sale is whole, the log matches the state, the file is intact.
    for sale in reg.sales("completed", limit=10**6):
        assert sale["tenders"] and sale["lines"] and sale["receipt_no"]
    result = reg.check()
    assert result.ok, result.differences


def test_full_database_refuses_new_sales_cleanly(tmp_path: Path) -> None:
    reg = Register(make_config(tmp_path))
    reg.import_catalog_csv(CATALOG_CSV, "t.csv")
    pages = reg.conn.execute("PRAGMA page_count").fetchone()[0]
    reg.conn.execute(f"PRAGMA max_page_count = {pages + 40}")  # SQLite's own "disk full"
    err = _fill_until_full(reg)
    assert err.details["reason"] == "disk_full"
    assert "nothing was recorded" in err.message
    _assert_no_half_sale(reg)
    reg.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tiny tmpfs needs root")
def test_real_full_disk_refuses_new_sales_cleanly(tmp_path: Path) -> None:
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mnt)])
    if mounted.returncode != 0:
        pytest.fail("could not mount a tmpfs as root (needed to fill a real filesystem)")
    try:
        reg = Register(make_config(mnt))
        reg.import_catalog_csv(CATALOG_CSV, "t.csv")
        err = _fill_until_full(reg)
        assert err.details["reason"] in ("disk_full", "io_error")
        # The register still answers reads and rejects writes with the same clear error.
        assert reg.lookup("COFFEE")["sku"] == "COFFEE"
        with pytest.raises(StorageUnavailable):
            reg.open_sale()
        reg.close()
        # Copy out (the tmpfs is full) and check the file is intact with nothing half-written.
        for name in os.listdir(mnt / "data"):
            shutil.copy(mnt / "data" / name, tmp_path / name)
        conn = sqlite3.connect(tmp_path / "register.db")
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
        reg2 = Register(make_config(tmp_path, register={"data_dir": str(tmp_path)}))
        _assert_no_half_sale(reg2)
        reg2.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


def test_read_only_database_refuses_writes(tmp_path: Path) -> None:
    reg = Register(make_config(tmp_path))
    reg.import_catalog_csv(CATALOG_CSV, "t.csv")
    path = reg.db_path
    reg.close()
    ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    reg = Register(make_config(tmp_path))
    reg.conn.close()
    reg.conn = ro
    reg.state.conn = ro
    with pytest.raises(StorageUnavailable) as err:
        reg.open_sale()
    assert err.value.details["reason"] == "read_only"
    assert reg.lookup("BEER")["sku"] == "BEER"

"""When the register fsyncs, counted from the real system calls (strace).

``register.durability = "every_change"`` fsyncs every commit; ``"completed"`` skips the
fsync for cart edits of an open sale and makes them durable with the next tender,
completion or park, and before any op leaves the box (outbox batch, LAN replication).
The counts come from strace watching a real register on a real SQLite file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from appliance.config import config_from_dict
from appliance.register import Register

CODES = [f"20000{n:07d}" for n in range(10)]

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from appliance.config import config_from_dict
    from appliance.register import Register
    from appliance.replication import ops_since
    from appliance.sync import outbox

    def mark(name):
        os.write(2, f"MARK {name}\\n".encode())

    codes = [f"20000{n:07d}" for n in range(10)]
    reg = Register(config_from_dict({
        "register": {"data_dir": sys.argv[1], "durability": sys.argv[2]},
        "demo": {"catalog": False},
    }))
    reg.import_catalog_csv(
        "sku,name,price_minor,barcodes\\n"
        + "".join(f"P{i},N{i},{100 + i},{c}\\n" for i, c in enumerate(codes)),
        "t.csv",
    )
    reg.open_shift(0)
    mark("cart")
    sale = reg.open_sale()
    for code in codes:
        sale = reg.add_line(sale["id"], code)
    mark("outbox")
    outbox.next_batch(reg, 100)
    mark("cart2")
    sale = reg.add_line(sale["id"], codes[0])
    mark("lan")
    ops_since(reg, 0)
    ops_since(reg, 0)
    mark("cart3")
    sale = reg.add_line(sale["id"], codes[1])
    mark("tender")
    sale = reg.add_tender(sale["id"], "other", 100, "voucher")
    mark("complete")
    sale = reg.add_tender(sale["id"], "cash", sale["totals"]["total"])
    assert sale["status"] == "completed"
    mark("end")
    """
)


def _fsyncs_between_marks(tmp_path: Path, durability: str) -> dict[str, int]:
    strace = shutil.which("strace")
    if strace is None:
        pytest.fail("strace is missing: run ./bootstrap.sh setup (apt package strace)")
    log = tmp_path / "strace.log"
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    subprocess.run(
        [strace, "-f", "-o", str(log), "-e", "trace=fsync,fdatasync,write",
         sys.executable, str(script), str(tmp_path / "data"), durability],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    counts: dict[str, int] = {}
    current: str | None = None
    for line in log.read_text().splitlines():
        if "MARK " in line:
            current = line.split("MARK ", 1)[1].split("\\n", 1)[0]
            counts[current] = 0
        elif current is not None and ("fdatasync(" in line or "fsync(" in line):
            counts[current] += 1
    return counts


def test_every_change_fsyncs_every_commit(tmp_path: Path) -> None:
    counts = _fsyncs_between_marks(tmp_path, "every_change")
    assert counts["cart"] == 11  # open + 10 lines, one fsync each
    assert counts["outbox"] == 0 and counts["lan"] == 0  # nothing left to sync
    assert counts["tender"] == 1 and counts["complete"] == 1


def test_completed_mode_fsyncs_money_and_anything_leaving_the_box(tmp_path: Path) -> None:
    counts = _fsyncs_between_marks(tmp_path, "completed")
    assert counts["cart"] == 0  # cart edits: committed, not fsynced
    assert counts["outbox"] == 1  # the back office batch is read only after an fsync
    assert counts["cart2"] == 0
    assert counts["lan"] == 1  # once for the LAN read; the second read finds it synced
    assert counts["cart3"] == 0
    assert counts["tender"] == 1  # money: fsynced before the answer
    assert counts["complete"] == 1  # the completed sale, and every line before it


def test_completed_mode_cart_edits_survive_kill_9(tmp_path: Path) -> None:
    """Not fsynced is not lost to a crash of the register: the OS holds the frames."""
    data = tmp_path / "data"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(
            f"""
            import sys, time
            from appliance.config import config_from_dict
            from appliance.register import Register
            codes = {CODES!r}
            reg = Register(config_from_dict({{
                "register": {{"data_dir": {str(data)!r}, "durability": "completed"}},
                "demo": {{"catalog": False}},
            }}))
            reg.import_catalog_csv("sku,name,price_minor,barcodes\\n" + "".join(
                f"P{{i}},N{{i}},{{100 + i}},{{c}}\\n" for i, c in enumerate(codes)), "t.csv")
            sale = reg.open_sale()
            for code in codes:
                sale = reg.add_line(sale["id"], code)
            print(sale["id"], flush=True)
            time.sleep(60)
            """
        )],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        sale_id = child.stdout.readline().strip()
        assert sale_id, "the register process printed no sale id"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
    config = config_from_dict(
        {"register": {"data_dir": str(data), "durability": "completed"}, "demo": {"catalog": False}}
    )
    reg = Register(config)
    try:
        sale = reg.sale(sale_id)
        assert [line["sku"] for line in sale["lines"]] == [f"P{i}" for i in range(10)]
        assert reg.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        reg.close()

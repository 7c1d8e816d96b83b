"""Receipts waiting for paper survive a register killed with SIGKILL: each printed once.

Real processes: `hil printer --listen … --control …` (the virtual network printer)
and `appliance run` talking to it over loopback TCP. The paper runs out in the middle
of the first receipt (the printer holds its rest); the next waits in the queue; the
register is killed and started again; it keeps selling; paper is loaded over the
control channel; every receipt is on the paper exactly once, none sent twice.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from hil.virtual_printer.control import PrinterControl
from tests.conftest import CATALOG_CSV, VENV_BIN, RegisterProcess
from tests.printer_rig import barcode_count, wait_until


@contextmanager
def hil_printer(jobs: Path, *where: str) -> Iterator[tuple[str, PrinterControl, Any]]:
    """`hil printer WHERE --control …` as a process: (its address or pty, control, stdout)."""
    command = [str(VENV_BIN / "hil"), "printer", *where, "--control", "127.0.0.1:0"]
    proc = subprocess.Popen([*command, "--jobs", str(jobs)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        control = proc.stdout.readline().strip().removeprefix("control ")
        assert address and control, "hil printer did not announce its addresses"
        handle = PrinterControl(control)
        yield address, handle, proc.stdout
        handle.close()
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def printer(tmp_path: Path) -> Iterator[tuple[str, PrinterControl]]:
    with hil_printer(tmp_path / "jobs", "--listen", "127.0.0.1:0") as (address, control, _):
        yield address, control


def sell_cash(client: httpx.Client) -> dict[str, str]:
    sale = client.post("/api/sales").json()
    client.post(f"/api/sales/{sale['id']}/lines", json={"code": "BEER"}).raise_for_status()
    done = client.post(
        f"/api/sales/{sale['id']}/tenders", json={"kind": "cash", "amount_minor": 500}
    )
    done.raise_for_status()
    result: dict[str, str] = done.json()
    assert result["status"] == "completed"
    return result


def test_receipt_waits_through_a_register_kill_and_prints_once(
    tmp_path: Path, printer: tuple[str, PrinterControl]
) -> None:
    address, control = printer
    config = tmp_path / "register.toml"
    config.write_text(
        f'[printer]\nconnection = "tcp:{address}"\npoll_seconds = 0.1\n'
        "status_timeout_seconds = 0.3\n[demo]\ncatalog = false\n"
    )
    register = RegisterProcess(tmp_path / "data", config)
    try:
        register.start()
        with register.client() as client:
            client.post("/api/catalog/import", content=CATALOG_CSV).raise_for_status()
            client.post("/api/shifts", json={"float_minor": 0}).raise_for_status()
            control.set(paper_lines=8)  # the roll ends inside the first receipt
            before = [sell_cash(client) for _ in range(2)]
            wait_until(
                lambda: (
                    "printing stopped: paper out" in str(client.get("/api/printer/jobs").json())
                ),
                what="the register to see the paper out",
            )
        register.kill()
        register.start()
        with register.client() as client:
            after = [sell_cash(client)]  # selling goes on while the receipts wait
            jobs = client.get("/api/printer/jobs").json()
            # the first is in the printer's buffer, half printed; the others never left
            assert [j["status"] for j in reversed(jobs)] == ["sent", "queued", "queued"]
            assert control.state()["jobs"] == 0 and control.state()["pending_bytes"] > 300
            control.set(paper="ok")
            wait_until(
                lambda: all(j["status"] == "done" for j in client.get("/api/printer/jobs").json()),
                what="all receipts printed",
            )
        printed = control.printed()
        for sale in (*before, *after):
            assert barcode_count(printed, sale["receipt_no"]) == 1
        assert len(control.jobs()) == 3
        assert "RESENT" not in printed  # the buffered one was not sent again
    finally:
        register.stop()


def test_hil_printer_on_a_pty_answers_status_and_buffers_while_paper_is_out(
    tmp_path: Path,
) -> None:
    import serial

    from drivers.printers.profiles import load_profile
    from drivers.printers.writer import EscPosWriter

    with hil_printer(tmp_path / "jobs", "--pty") as (path, control, stdout):
        with serial.Serial(path, 38400, timeout=2) as line:
            line.write(b"\x10\x04\x04")
            assert line.read(1) == b"\x12"  # paper present
            control.set(paper="out")
            line.write(b"\x10\x04\x04")
            assert line.read(1) == b"\x7e"  # paper near end and out
            w = EscPosWriter(load_profile())
            w.line("Grüße aus dem Drucker")
            w.cut()
            line.write(w.getvalue())
            line.flush()
            wait_until(lambda: control.state()["pending_bytes"] > 20, what="the job buffered")
            assert control.state()["jobs"] == 0
            control.set(paper="ok")
            jobs = wait_until(control.jobs, what="the job printed")
        assert jobs[0]["text"] == "Grüße aus dem Drucker\n--- cut ---\n"
        assert stdout.readline().startswith("job 1: ")
        assert (tmp_path / "jobs" / "000001.txt").read_text(encoding="utf-8") == jobs[0]["text"]

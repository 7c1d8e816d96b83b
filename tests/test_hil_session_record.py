"""Recording a bench session end to end on loopback, then replaying it as a scenario.

The "bench": a serial scanner (a pty the test types into), the virtual printer on TCP
and the ZVT simulator on TCP standing in for the shop's devices; a real register
process reaches all three through `hil record-session`. The sale rung up (a declined
card, then cash) becomes a scenario folder, which then passes on the virtual tier.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import tty
from pathlib import Path

import httpx

from hil.scenario.devices import printer_process, terminal_process
from hil.scenario.format import load_scenario
from hil.scenario.runner import run_scenario
from tests.conftest import ROOT, RegisterProcess


def _line(proc: subprocess.Popen[str], prefix: str) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line.startswith(prefix + " "), line
    return line.split(" ", 1)[1]


def test_recorded_session_becomes_a_scenario_that_passes(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    printer = loop.run_until_complete(printer_process(tmp_path / "shop-printer",
                                                      tmp_path / "p.log").start())  # fmt: skip
    terminal = loop.run_until_complete(terminal_process(tmp_path / "t.log").start())
    master, slave = os.openpty()  # the shop's serial scanner
    tty.setraw(master)
    session = tmp_path / "session"
    recorder = subprocess.Popen(
        [sys.executable, "-m", "hil.cli", "record-session", "-o", str(session),
         "--serial", os.ttyname(slave), "--terminator", "cr", "--seconds", "60",
         "--printer", printer.hostport, "--terminal", terminal.hostport],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    register = None
    try:
        scanner_pty = _line(recorder, "scanner")
        printer_at = _line(recorder, "printer")
        terminal_at = _line(recorder, "terminal")
        profile = tmp_path / "scanner.toml"
        profile.write_text(
            'name = "bench scanner"\ninterface = "serial"\n[serial]\n'
            f'port = "{scanner_pty}"\nbaud = 9600\nterminator = "cr"\n'
        )
        config = tmp_path / "register.toml"
        config.write_text(
            f'[printer]\nconnection = "tcp:{printer_at}"\n'
            f'[payments]\nterminal = "tcp:{terminal_at}"\n'
            f'[scanners]\nprofiles = ["{profile}"]\n'
        )
        register = RegisterProcess(tmp_path / "data", config)
        register.start()
        with register.client(timeout=30) as api:
            api.post("/api/shifts", json={"float_minor": 0}).raise_for_status()
            for code in (b"4006381333931\r", b"BAG\r"):
                os.write(master, code)
                time.sleep(0.2)
            sale = _wait(api, lambda: _open_sale_with(api, 2), "two scanned lines")
            answer = loop.run_until_complete(
                terminal.control({"cmd": "outcome", "spec": "decline:05"})
            )
            assert answer["ok"], answer
            paid = api.post(f"/api/sales/{sale['id']}/payments?wait=20", json={}).json()
            assert paid["state"] == "declined", paid
            done = api.post(
                f"/api/sales/{sale['id']}/tenders", json={"kind": "cash", "amount_minor": 1000}
            ).json()
            assert done["status"] == "completed", done
            _wait(api, lambda: list((session / "printer").glob("*.txt")), "the receipt's job")
        recorder.send_signal(signal.SIGTERM)
        scenario_file = Path(_line(recorder, "scenario"))
        assert recorder.wait(20) == 0
    finally:
        if recorder.poll() is None:
            recorder.kill()
        if register is not None:
            register.stop()
        loop.run_until_complete(printer.stop())
        loop.run_until_complete(terminal.stop())
        os.close(master)
        os.close(slave)
        loop.close()

    # What was recorded: the scanner's bytes, the printed job, the terminal's trace.
    assert "34 30 30 36" in (session / "scanner.serial").read_text()  # "4006…"
    job = next((session / "printer").glob("*.bin"))
    assert done["receipt_no"] in job.with_suffix(".txt").read_text()
    assert list((session / "terminal").glob("session-*.trace"))
    scenario = load_scenario(scenario_file)
    actions = [s.action for s in scenario.steps]
    assert actions == ["scan_recording", "pay_card", "expect_error", "pay_cash", "expect_sale",
                       "expect_receipt"], actions  # fmt: skip
    assert scenario.steps[1].value == "decline:05"
    assert scenario.steps[3].value == 1000
    assert scenario.steps[4].value == {"status": "completed", "total_minor": 519}

    result = asyncio.run(run_scenario(scenario, "virtual"))
    assert result.ok, [(s.title, s.error) for s in result.steps] + [result.error]


def _open_sale_with(api: httpx.Client, lines: int) -> dict | None:  # type: ignore[type-arg]
    for sale in api.get("/api/sales?status=open").json():
        if len([x for x in sale["lines"] if not x["voided"]]) >= lines:
            return dict(sale)
    return None


def _wait(api: httpx.Client, check: object, what: str, timeout: float = 20) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")

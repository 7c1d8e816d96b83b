"""The print queue against a virtual printer on real sockets: every receipt exactly once.

The register runs in-process (FastAPI app with its lifespan, real SQLite file); the
printer is the virtual ESC/POS printer on a loopback TCP port (or a pty), reached
through the same driver code as a real one. Faults are switched while jobs are in
flight; afterwards every receipt's barcode must be on the paper exactly once, and
the register must have kept selling throughout.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from appliance.api import create_app
from appliance.auth.tokens import bearer_headers
from hil.virtual_printer.control import PrinterControl
from tests.conftest import CATALOG_CSV, make_config
from tests.printer_rig import PrinterRig, barcode_count, wait_until


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[PrinterRig]:
    printer = PrinterRig(tmp_path / "printer-jobs")
    yield printer
    printer.close()


def start_register(tmp_path: Path, connection: str, **printer: Any) -> TestClient:
    settings = {"connection": connection, "poll_seconds": 0.05, "status_timeout_seconds": 0.2}
    config = make_config(tmp_path, printer={**settings, **printer})
    client = TestClient(create_app(config))
    client.__enter__()
    client.headers.update(bearer_headers(config.data_dir))
    client.post("/api/catalog/import", content=CATALOG_CSV).raise_for_status()
    client.post("/api/shifts", json={"float_minor": 10_000}).raise_for_status()
    return client


@pytest.fixture
def register(tmp_path: Path, rig: PrinterRig) -> Iterator[TestClient]:
    client = start_register(tmp_path, rig.connection)
    yield client
    client.__exit__(None, None, None)


def sell(client: TestClient, kind: str = "cash", codes: tuple[str, ...] = ("COFFEE",)) -> Any:
    """A whole sale through the API; it must complete fast whatever the printer does."""
    started = time.monotonic()
    sale = client.post("/api/sales").json()
    for code in codes:
        client.post(f"/api/sales/{sale['id']}/lines", json={"code": code}).raise_for_status()
    total = client.get(f"/api/sales/{sale['id']}").json()["totals"]["total"]
    if kind == "card":  # through the register's simulated card terminal
        path = f"/api/sales/{sale['id']}/payments?wait=10"
        paid = client.post(path, json={"amount_minor": total})
        assert paid.status_code == 202 and paid.json()["state"] == "approved", paid.text
        done = client.get(f"/api/sales/{sale['id']}")
    else:
        body = {"kind": kind, "amount_minor": total + 500}
        done = client.post(f"/api/sales/{sale['id']}/tenders", json=body)
    done.raise_for_status()
    assert done.json()["status"] == "completed"
    assert time.monotonic() - started < 10, "selling was held up by the printer"
    return done.json()


def job_of(client: TestClient, sale_id: str, kind: str = "receipt") -> dict[str, Any]:
    jobs = client.get("/api/printer/jobs").json()
    return next(j for j in jobs if j["sale_id"] == sale_id and j["kind"] == kind)


def wait_done(client: TestClient, sale_id: str, kind: str = "receipt") -> dict[str, Any]:
    return wait_until(  # type: ignore[no-any-return]
        lambda: (j := job_of(client, sale_id, kind))["status"] == "done" and j,
        what=f"{kind} of sale {sale_id} printed",
    )


def test_receipt_printed_once_and_drawer_kicked_for_cash_only(
    register: TestClient, rig: PrinterRig
) -> None:
    cash = sell(register, "cash", ("COFFEE", "BEER"))
    wait_done(register, cash["id"])
    card = sell(register, "card")
    wait_done(register, card["id"])
    text = rig.printed()
    assert barcode_count(text, cash["receipt_no"]) == 1
    assert barcode_count(text, card["receipt_no"]) == 1
    # the card slip as the terminal sent it, with the masked PAN only
    tender = card["tenders"][0]["card"]
    card_receipt = rig.printer.jobs[1].text
    assert tender["pan_masked"] in card_receipt and tender["slip"]
    assert all(line.strip()[:20] in card_receipt for line in tender["slip"] if line.strip())
    assert rig.printer.drawer_kicks == 1  # the cash sale, not the card sale
    assert text.count("--- drawer ---") == 1
    assert len(rig.printer.jobs) == 2
    status = register.get("/api/printer/status").json()
    assert status["printer"]["ready"] is True and status["printer"]["drawer_open"] is True
    assert status["jobs"]["done"] == 2 and status["drawer"]["kicks"] == 1
    # the barcode on the paper, scanned back, finds the sale (to start a refund)
    code = re.search(r"\[CODE128 (\S+)\]", rig.printer.jobs[0].text)
    assert code is not None
    scanned = register.post("/api/scan", json={"code": code.group(1)}).json()
    assert scanned["action"] == "receipt" and scanned["sale"]["id"] == cash["id"]


def test_paper_runs_out_mid_job_and_the_rest_prints_once(
    register: TestClient, rig: PrinterRig
) -> None:
    rig.set(paper_lines=6)  # the roll ends six lines into the next receipt
    first = sell(register)
    wait_until(lambda: rig.printer.faults.paper == "out", what="paper out")
    job = wait_until(
        lambda: "paper out" in ((j := job_of(register, first["id"]))["last_error"] or "") and j
    )
    assert job["status"] == "sent"
    assert rig.printer.pending_bytes > 0  # the rest of the job waits in the printer
    later = [sell(register) for _ in range(2)]  # the register keeps selling
    status = register.get("/api/printer/status").json()
    assert status["printer"]["paper"] == "out" and status["printer"]["ready"] is False
    assert [job_of(register, s["id"])["status"] for s in later] == ["queued", "queued"]

    rig.set(paper="ok")  # a new roll
    for sale in (first, *later):
        wait_done(register, sale["id"])
    text = rig.printed()
    for sale in (first, *later):
        assert barcode_count(text, sale["receipt_no"]) == 1
    assert "RESENT" not in text  # nothing was resent: the printer had it all
    assert len(rig.printer.jobs) == 3  # three cuts, the first receipt in one piece
    assert rig.printer.jobs[0].text.count("TOTAL") == 1


def test_cover_open_holds_the_job_until_closed(register: TestClient, rig: PrinterRig) -> None:
    control = PrinterControl(rig.control_address)  # switched over the control channel
    try:
        control.set(cover_open=True)
        sale = sell(register)
        wait_until(lambda: "cover open" in (job_of(register, sale["id"])["last_error"] or ""))
        assert job_of(register, sale["id"])["status"] == "queued"
        # only status requests and the drawer pulse wait in its buffer, no receipt
        assert control.state()["jobs"] == 0 and control.state()["pending_bytes"] < 64
        control.set(cover_open=False)
        wait_done(register, sale["id"])
        assert barcode_count(control.printed(), sale["receipt_no"]) == 1
        assert len(control.jobs()) == 1
    finally:
        control.close()


def test_printer_dropping_the_link_mid_job_gets_it_once_whole(
    register: TestClient, rig: PrinterRig
) -> None:
    rig.set(disconnect_after=400)  # a few status requests, then part of the receipt
    sale = sell(register)
    job = wait_done(register, sale["id"])
    assert job["interrupted"] is True and job["attempts"] == 1
    text = rig.printed()
    assert barcode_count(text, sale["receipt_no"]) == 1  # the torn part has no barcode
    assert "RESENT: first print interrupted" in text
    assert text.count("Receipt " + sale["receipt_no"]) == 2  # torn part + whole receipt


@pytest.mark.parametrize(("mode", "reason"), [("garbage", "garbage answer"), ("mute", "no answer")])
def test_unknown_status_is_not_ok(
    register: TestClient, rig: PrinterRig, mode: str, reason: str
) -> None:
    rig.set(status=mode)
    sale = sell(register)
    wait_until(lambda: reason in (job_of(register, sale["id"])["last_error"] or ""))
    status = register.get("/api/printer/status").json()["printer"]
    assert status["known"] is False and status["ready"] is False and reason in status["reason"]
    assert "Receipt" not in rig.printer.printed_text()  # no job was sent
    sell(register)  # still selling
    rig.set(status="normal")
    wait_done(register, sale["id"])
    assert barcode_count(rig.printed(), sale["receipt_no"]) == 1


def test_printer_switched_off_and_on(register: TestClient, rig: PrinterRig) -> None:
    rig.stop()
    sale = sell(register)
    wait_until(lambda: "cannot open" in (job_of(register, sale["id"])["last_error"] or ""))
    assert register.get("/api/printer/status").json()["printer"]["known"] is False
    rig.start()
    wait_done(register, sale["id"])
    assert barcode_count(rig.printed(), sale["receipt_no"]) == 1


def test_failed_job_is_visible_and_retried(tmp_path: Path, rig: PrinterRig) -> None:
    client = start_register(tmp_path, rig.connection, max_attempts=1)
    try:
        rig.set(disconnect_after=400)
        sale = sell(client)
        failed = wait_until(lambda: client.get("/api/printer/jobs?status=failed").json())
        assert failed[0]["sale_id"] == sale["id"]
        assert "connection" in failed[0]["last_error"] or "link" in failed[0]["last_error"]
        assert client.post("/api/printer/jobs/999/retry").status_code == 404
        again = client.post(f"/api/printer/jobs/{failed[0]['id']}/retry")
        assert again.status_code == 200 and again.json()["status"] in ("queued", "sent", "done")
        wait_done(client, sale["id"])
        conflict = client.post(f"/api/printer/jobs/{failed[0]['id']}/retry")
        assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "conflict"
        assert barcode_count(rig.printed(), sale["receipt_no"]) == 1
    finally:
        client.__exit__(None, None, None)


def test_copies_reports_and_drawer_on_demand(register: TestClient, rig: PrinterRig) -> None:
    sale = sell(register)
    wait_done(register, sale["id"])
    copy = register.post("/api/printer/reprint-last")
    assert copy.status_code == 202 and copy.json()["kind"] == "copy"
    x = register.post("/api/printer/reports/x").json()
    register.post("/api/shifts/current/close", json={"counted_minor": 10_000}).raise_for_status()
    z_explicit = register.post("/api/printer/reports/z", json={"number": 1}).json()
    wait_until(lambda: register.get("/api/printer/status").json()["jobs"]["done"] == 5)
    texts = [job.text for job in rig.printer.jobs]
    assert "*** COPY ***" in texts[1] and barcode_count(texts[1], sale["receipt_no"]) == 1
    assert "X REPORT" in texts[2] and x["kind"] == "report"
    assert "Z REPORT 1" in texts[3] and "Z REPORT 1" in texts[4]  # on close, and on request
    assert z_explicit["kind"] == "report"
    kicks = rig.printer.drawer_kicks
    opened = register.post("/api/printer/drawer", json={"pin": 5})
    assert opened.status_code == 200 and opened.json()["pin"] == 5
    assert rig.printer.drawer_kicks == kicks + 1
    assert register.post("/api/printer/drawer", json={"pin": 3}).status_code == 422
    rig.stop()
    refused = register.post("/api/printer/drawer")
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "printer_unavailable"


def test_serial_printer_on_a_pty(tmp_path: Path) -> None:
    rig = PrinterRig(tmp_path / "jobs", pty=True)
    client = start_register(tmp_path, rig.connection)
    try:
        sale = sell(client)
        wait_done(client, sale["id"])
        assert barcode_count(rig.printed(), sale["receipt_no"]) == 1
        rig.set(paper="out")
        client.post("/api/printer/status/refresh")
        status = client.get("/api/printer/status").json()["printer"]
        assert status["paper"] == "out" and status["reason"] == "paper out"
        assert rig.printer.drawer_kicks == 1
    finally:
        client.__exit__(None, None, None)
        rig.close()


def test_simulated_printer_keeps_jobs_under_the_data_folder(tmp_path: Path) -> None:
    client = start_register(tmp_path, "simulated")
    try:
        client.put("/api/printer/simulated", json={"paper": "out"}).raise_for_status()
        sale = sell(client)
        wait_until(lambda: "paper out" in (job_of(client, sale["id"])["last_error"] or ""))
        assert client.put("/api/printer/simulated", json={"paper": "wet"}).status_code == 422
        client.put("/api/printer/simulated", json={"paper": "ok"}).raise_for_status()
        wait_done(client, sale["id"])
        folder = tmp_path / "data" / "printer"
        texts = sorted(folder.glob("*.txt"))
        assert len(texts) == 1 and (folder / "000001.bin").exists()
        assert barcode_count(texts[0].read_text(encoding="utf-8"), sale["receipt_no"]) == 1
        preview = client.get(f"/api/printer/preview/{sale['id']}")
        assert preview.headers["content-type"].startswith("text/plain")
        printed = texts[0].read_text(encoding="utf-8")  # the drawer pulse came before it
        assert printed == "--- drawer --- pin 2\n" + preview.text
        png = client.get(f"/api/printer/preview/{sale['id']}?format=png")
        assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
        drawer = client.post("/api/printer/status/refresh").json()["printer"]["drawer_open"]
        assert drawer is True  # kicked by the cash sale, not shut yet (5 s)
        client.put("/api/printer/simulated", json={"drawer_closes_after": 0}).raise_for_status()
        status = client.post("/api/printer/status/refresh").json()["printer"]
        assert status["drawer_open"] is False and status["ready"] is True
    finally:
        client.__exit__(None, None, None)


def test_no_printer_means_no_jobs_and_no_routes(tmp_path: Path) -> None:
    client = start_register(tmp_path, "none")
    try:
        sell(client)
        assert client.get("/api/printer/status").status_code == 404
    finally:
        client.__exit__(None, None, None)

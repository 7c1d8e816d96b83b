"""Card payments in a real `appliance run` process against the ZVT terminal simulator
over loopback TCP: a kill -9 in the middle of a payment, and a whole session of card
payments searched afterwards for anything that looks like a full card number."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.zvt.pan import find_full_pans, luhn_ok
from hil.zvt_sim.script import parse_outcome
from tests.conftest import CATALOG_CSV, RegisterProcess
from tests.payments_kit import ThreadedTerminal

PAN = "5413330089020011"


@pytest.fixture
def terminal() -> Iterator[ThreadedTerminal]:
    t = ThreadedTerminal(leak_clear_pan=True)  # the worst terminal: clear PANs on the wire
    yield t
    t.close()


@pytest.fixture
def running(tmp_path: Path, terminal: ThreadedTerminal) -> Iterator[tuple[RegisterProcess, Api]]:
    """A register process with the demo catalog and an open shift, on ``terminal``."""
    proc = start_register(tmp_path, terminal)
    try:
        api = Api(proc)
        assert api.http.post("/api/catalog/import", content=CATALOG_CSV).status_code == 200
        api.ok("POST", "/api/shifts", {"float_minor": 0}, 201)
        yield proc, api
    finally:
        proc.stop()


def start_register(tmp_path: Path, terminal: ThreadedTerminal) -> RegisterProcess:
    config = tmp_path / "register.toml"
    config.write_text(
        f'[register]\ndata_dir = "{tmp_path / "data"}"\n[demo]\ncatalog = false\n'
        f'[payments]\nterminal = "{terminal.address}"\nt3_seconds = 1.0\nt4_seconds = 5.0\n'
        "poll_seconds = 0.1\nlink_check_seconds = 0\n"
        "[payments.offline]\nenabled = true\nmax_amount = 1000\nmax_count = 5\n"
    )
    proc = RegisterProcess(tmp_path / "data", config)
    proc.start()
    return proc


class Api:
    def __init__(self, proc: RegisterProcess) -> None:
        self.http = proc.client(timeout=15)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        resp = self.http.request(method, path, json=body)
        assert resp.status_code == status, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json()

    def sale(self, *codes: str) -> dict[str, Any]:
        sale = self.ok("POST", "/api/sales", status=201)
        for code in codes:
            sale = self.ok("POST", f"/api/sales/{sale['id']}/lines", {"code": code}, 201)
        return sale  # type: ignore[no-any-return]

    def pay(self, sale_id: str, wait: float = 10) -> dict[str, Any]:
        q = f"?wait={wait:g}" if wait else ""
        return self.ok("POST", f"/api/sales/{sale_id}/payments{q}", {}, 202)  # type: ignore[no-any-return]

    def until(self, path: str, check: Callable[[Any], bool], seconds: float = 10) -> Any:
        deadline = time.monotonic() + seconds
        while True:
            doc = self.ok("GET", path)
            if check(doc):
                return doc
            assert time.monotonic() < deadline, f"{path}: {doc}"
            time.sleep(0.05)


def test_kill_9_mid_payment_is_resolved_on_restart_without_a_second_charge(
    running: tuple[RegisterProcess, Api], terminal: ThreadedTerminal
) -> None:
    proc, api = running
    sale = api.sale("COFFEE", "BEER")
    terminal.do(lambda s: s.script(parse_outcome("approve,pin=0.6,interval=0.05")))
    p = api.pay(sale["id"], wait=0)
    api.until(f"/api/payments/{p['id']}", lambda d: d["status_text"] == "please watch PIN pad")
    proc.kill()  # the register dies while the customer types the PIN
    # The terminal does not care: the customer finishes, the host approves.
    deadline = time.monotonic() + 5
    while not terminal.do(lambda s: len(s.journal)):
        assert time.monotonic() < deadline, "the terminal never finished the payment"
        time.sleep(0.05)
    proc.start()
    api = Api(proc)
    done = api.until(f"/api/payments/{p['id']}", lambda d: d["state"] != "unknown")
    assert done["state"] == "approved" and "repeat receipt" in done["resolution"]
    assert [e["state"] for e in done["events"]] == [
        "requested",
        "in_progress",
        "unknown",
        "approved",
    ]
    sale = api.ok("GET", f"/api/sales/{sale['id']}")
    assert sale["status"] == "completed" and len(sale["tenders"]) == 1
    assert sale["tenders"][0]["card"]["pan_masked"] == "541333******0011"
    journal = terminal.do(lambda s: [(t.kind, t.amount_minor, t.approved) for t in s.journal])
    assert journal == [("payment", 748, True)]  # charged once


def _session(api: Api, terminal: ThreadedTerminal) -> dict[str, Any]:
    """Approvals, declines, aborts, a lost link, offline approvals (one refused, one
    declined after the fact), a refund and a reversal to the card, end-of-day."""
    script: Callable[[str], Any] = lambda spec: terminal.do(  # noqa: E731
        lambda s: s.script(parse_outcome(spec))
    )
    out: dict[str, Any] = {}
    a = api.sale("COFFEE", "BEER")
    script("approve,pin=0.2,interval=0.05")
    assert api.pay(a["id"])["state"] == "approved"
    b = api.sale("COFFEE")
    for spec in ("decline:05", "abort", "disconnect:after-approval"):
        script(spec)
        out[spec] = api.pay(b["id"])["state"]
    assert out == {
        "decline:05": "declined",
        "abort": "aborted",
        "disconnect:after-approval": "approved",
    }
    terminal.do(lambda s: s.set_host_online(False))
    c, d = api.sale("BEER"), api.sale("CARD")
    assert api.pay(c["id"])["offline"] and api.pay(d["id"])["offline"]
    big = api.sale("COFFEE", "COFFEE", "COFFEE")
    refused = api.http.post(f"/api/sales/{big['id']}/payments", json={})
    assert refused.status_code == 409 and refused.json()["error"]["limit"] == "max_amount"
    terminal.do(lambda s: s.forward_results.extend([0x00, 0x05]))
    terminal.do(lambda s: s.set_host_online(True))
    api.until("/api/payments/offline", lambda o: len(o["declined_after_the_fact"]) == 1)
    refund = api.ok(
        "POST",
        "/api/refunds",
        {"receipt_no": api.ok("GET", f"/api/sales/{a['id']}")["receipt_no"]},
        201,
    )
    api.ok("POST", f"/api/refunds/{refund['id']}/lines", {"original_line_no": 2, "qty": 1}, 201)
    assert api.ok("POST", f"/api/refunds/{refund['id']}/card")["status"] == "completed"
    e = api.sale("COFFEE", "BEER")
    pe = api.ok("POST", f"/api/sales/{e['id']}/payments?wait=10", {"amount_minor": 300}, 202)
    assert api.ok("POST", f"/api/payments/{pe['id']}/reverse")["state"] == "approved"
    z = api.ok("POST", "/api/shifts/current/close", {"counted_minor": 0})
    assert z["card_terminal"]["ok"]
    return z  # type: ignore[no-any-return]


def _cells(db: Path) -> str:
    """Every value in every table of the database (WAL applied), JSON documents opened
    into their strings and numbers, one per line: what the register stores, unglued."""
    import sqlite3

    out: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                out.append(str(k))
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and value[:1] in "[{":
            try:
                walk(json.loads(value))
            except ValueError:
                out.append(value)
        elif value is not None:
            out.append(str(value))

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    walk(value.decode("latin-1") if isinstance(value, bytes) else value)
    finally:
        conn.close()
    return "\n".join(out)


def _texts(data_dir: Path, log: Path, api: Api) -> dict[str, str]:
    assert (data_dir / "register.db-wal").exists(), "expected the WAL while the register runs"
    texts = {"database": _cells(data_dir / "register.db"), "log": log.read_text("utf-8", "replace")}
    sales = api.ok("GET", "/api/sales")
    # What receipts print for card tenders: the card data and the terminal's slip lines.
    texts["receipts"] = "\n".join(
        line
        for sale in sales
        for tender in sale["tenders"]
        if tender.get("card")
        for line in [json.dumps(tender["card"]), *tender["card"]["slip"]]
    )
    texts["payments"] = json.dumps(api.ok("GET", "/api/payments"))
    texts["end-of-day"] = json.dumps(api.ok("GET", "/api/payments/end-of-day"))
    # What the (simulated) receipt printer actually received and printed.
    completed = sum(1 for sale in sales if sale["status"] == "completed")
    printed = api.until(
        "/api/printer/jobs?status=done",
        lambda jobs: sum(1 for j in jobs if j["kind"] == "receipt") >= completed,
    )
    assert printed, "no receipt was printed"
    jobs = sorted((data_dir / "printer").glob("*.txt"))
    assert len(jobs) >= completed, f"{len(jobs)} printed receipts for {completed} sales"
    texts["printed receipts"] = "\n".join(p.read_text("utf-8") for p in jobs)
    assert "541333******0011" in texts["printed receipts"]  # the slip was printed, masked
    return texts


# Benign digit runs in text: HLC timestamps (13-digit ms + counter) and hex ids that
# happen to hold 13+ digits in a row. A card number is all digits, so it survives this.
_HLC = re.compile(r"\d{13}\.\d{6}")
_HEX_ID = re.compile(r"(?<![0-9a-f])(?=[0-9a-f]{0,31}[a-f])[0-9a-f]{12,32}(?![0-9a-f])")
# In the raw files (every page version in the WAL), values sit glued to each other, so
# there a card number is a run of 13-19 digits delimited as text delimits it.
_DELIMITED = re.compile(r"(?<=[\s\"',:=\[{(*])\d{13,19}(?=[\s\"',:\]})*])")


def pan_like(text: str) -> list[str]:
    return find_full_pans(_HEX_ID.sub(" ", _HLC.sub(" ", text)))


def raw_pan_like(data: bytes) -> list[str]:
    text = data.decode("latin-1")
    return [m.group(0) for m in _DELIMITED.finditer(text) if luhn_ok(m.group(0))]


def _bcd_forms(pan: str) -> list[bytes]:
    padded = pan if len(pan) % 2 == 0 else pan + "F"
    return [bytes.fromhex(padded), bytes.fromhex("0" + pan[:-1])]


def test_no_full_pan_in_database_wal_logs_or_receipts(
    tmp_path: Path, running: tuple[RegisterProcess, Api], terminal: ThreadedTerminal
) -> None:
    proc, api = running
    _session(api, terminal)
    slips = json.dumps(api.ok("GET", "/api/sales"))
    assert "541333******0011" in slips  # masked card data is there...
    assert terminal.do(lambda s: s.leak_clear_pan)  # ...although the terminal sent clear PANs
    texts = _texts(tmp_path / "data", proc.log, api)
    raw = {p.name: p.read_bytes() for p in (tmp_path / "data").glob("register.db*")}
    raw.update({p.name: p.read_bytes() for p in (tmp_path / "data" / "printer").glob("*.bin")})
    proc.stop()
    texts["log after stop"] = proc.log.read_text("utf-8", "replace")
    texts["database after stop"] = _cells(tmp_path / "data" / "register.db")
    for p in (tmp_path / "data").glob("register.db*"):
        raw[f"{p.name} after stop"] = p.read_bytes()
    assert "register.db-wal" in raw
    for where, text in texts.items():
        assert pan_like(text) == [], f"full PAN in {where}"
        assert PAN not in re.sub(r"[ \-]", "", text), f"full PAN in {where}"
    for where, data in raw.items():
        assert raw_pan_like(data) == [], f"full PAN in {where}"
        for form in [PAN.encode(), *_bcd_forms(PAN)]:
            assert form not in data, f"{where} holds the PAN as {form.hex()}"

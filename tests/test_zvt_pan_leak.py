"""A session of card payments through the simulator leaves no full PAN anywhere:
not in the recorded byte traces, the logs, the client's results, nor the card slips."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from drivers.zvt.client import ZvtClient
from drivers.zvt.pan import find_full_pans
from drivers.zvt.transport import ZvtTimeouts, open_serial, open_tcp
from hil.zvt_sim.script import parse_outcome
from hil.zvt_sim.server import PtyTerminal, bound_address, serve_tcp
from hil.zvt_sim.terminal import SimTerminal
from hil.zvt_sim.trace import read_trace

T = ZvtTimeouts(t3=1.0, t4=2.0, ack=0.3, inter_byte=0.1)
PAN = "5413330089020011"


def pan_forms(pan: str) -> list[bytes]:
    """How a PAN can sit in bytes: ASCII digits, packed BCD (even/odd aligned)."""
    padded = pan if len(pan) % 2 == 0 else pan + "F"
    return [pan.encode(), bytes.fromhex(padded), bytes.fromhex("0" + pan[:-1])]


async def session(c: ZvtClient, sim: SimTerminal) -> list[dict[str, Any]]:
    results = []
    await c.register()
    sim.script(
        parse_outcome("approve,pin=0.1,interval=0.05"),
        parse_outcome("decline:05"),
        parse_outcome("abort"),
    )
    for amount in (1234, 500, 777, 4321):
        results.append((await c.authorize(amount)).to_dict())
    results.append((await c.reversal(1)).to_dict())
    results.append((await c.refund(300)).to_dict())
    sim.set_host_online(False)
    results.append((await c.authorize(900)).to_dict())
    sim.set_host_online(True)
    results.append((await c.repeat_receipt()).to_dict())
    results.append((await c.status_enquiry()).to_dict())
    results.append((await c.end_of_day()).to_dict())
    return results


@pytest.mark.parametrize("kind", ["tcp", "pty"])
def test_no_full_pan_in_traces_logs_results_or_slips(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sim = SimTerminal()
    assert sim.card.pan == PAN

    async def go() -> list[dict[str, Any]]:
        if kind == "tcp":
            server, _ = await serve_tcp(sim, record_dir=tmp_path)
            host, port = bound_address(server)
            c = ZvtClient(await open_tcp(host, port, T))
            try:
                return await session(c, sim)
            finally:
                await c.close()
                server.close()
        pty = PtyTerminal(sim, record_dir=tmp_path)
        pty.start()
        c = ZvtClient(await open_serial(pty.path, 9600, T))
        try:
            return await session(c, sim)
        finally:
            await c.close()
            await pty.close()

    results = asyncio.run(asyncio.wait_for(go(), 30))
    assert sum(1 for r in results if r["outcome"] == "approved") >= 5
    slips = [line for r in results for rc in r["receipts"] for line in rc["lines"]]
    assert any("541333******0011" in line for line in slips)

    texts = {
        "results": json.dumps(results, ensure_ascii=False),
        "slips": "\n".join(slips),
        "logs": caplog.text,
        "simulator state": json.dumps(sim.state()),
    }
    traces = sorted(tmp_path.glob("*.trace"))
    assert traces, "the simulator recorded no trace"
    for p in traces:
        texts[p.name] = p.read_text()
        raw = b"".join(ev.data for ev in read_trace(p).events)
        for form in pan_forms(PAN):
            assert form not in raw, f"{p.name} holds the PAN as {form.hex()}"
    assert caplog.text, "expected the client to log the session"
    for where, text in texts.items():
        assert find_full_pans(text) == [], f"full PAN in {where}"
        assert PAN not in text, f"full PAN in {where}"


def test_terminal_sending_clear_pan_never_reaches_results_slips_or_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sim = SimTerminal(leak_clear_pan=True)

    async def go() -> dict[str, Any]:
        server, _ = await serve_tcp(sim)
        host, port = bound_address(server)
        c = ZvtClient(await open_tcp(host, port, T))
        try:
            return (await c.authorize(1234)).to_dict()
        finally:
            await c.close()
            server.close()

    r = asyncio.run(asyncio.wait_for(go(), 10))
    assert r["outcome"] == "approved"
    assert r["pan_masked"] == "541333******0011"
    slip = "\n".join(line for rc in r["receipts"] for line in rc["lines"])
    assert "541333******0011" in slip
    for text in (json.dumps(r), slip, caplog.text):
        assert PAN not in text and find_full_pans(text) == []

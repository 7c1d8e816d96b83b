"""ZvtClient against the terminal simulator over real TCP (127.0.0.1) and real ptys."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.zvt.client import (
    ABORTED,
    ACKNOWLEDGED,
    APPROVED,
    DECLINED,
    REJECTED,
    TransactionResult,
    ZvtClient,
    ZvtTransactionInterrupted,
)
from drivers.zvt.errors import ZvtConnectionLost, ZvtTimeout
from drivers.zvt.transport import ZvtTimeouts, open_serial, open_tcp
from hil.zvt_sim.script import Outcome, parse_outcome
from hil.zvt_sim.server import PtyTerminal, bound_address, serve_control, serve_tcp
from hil.zvt_sim.terminal import SimTerminal
from hil.zvt_sim.trace import read_trace, replay_session

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RECORDINGS = ROOT / "hil" / "recordings" / "zvt"

CLIENT_T = ZvtTimeouts(t3=1.0, t4=1.0, ack=0.3, inter_byte=0.1, retries=3)
SIM_T = ZvtTimeouts(t3=2.0, t4=5.0, ack=0.3, inter_byte=0.1, retries=3)
TRANSPORTS = ["tcp", "pty"]


def run(coro: Awaitable[Any], limit: float = 20.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, limit))


@contextlib.asynccontextmanager
async def connected(
    sim: SimTerminal, kind: str, record_dir: Path | None = None, encoding: str = "cp437"
) -> AsyncIterator[ZvtClient]:
    sim.reply_timeout = SIM_T.t3
    if kind == "tcp":
        server, _ = await serve_tcp(sim, record_dir=record_dir, timeouts=SIM_T)
        host, port = bound_address(server)
        client = ZvtClient(await open_tcp(host, port, CLIENT_T), encoding=encoding)
        try:
            yield client
        finally:
            await client.close()
            server.close()
    else:
        pty = PtyTerminal(sim, record_dir=record_dir, timeouts=SIM_T)
        pty.start()
        client = ZvtClient(await open_serial(pty.path, 9600, CLIENT_T), encoding=encoding)
        try:
            yield client
        finally:
            await client.close()
            await pty.close()


def scenario(
    kind: str, body: Callable[[SimTerminal, ZvtClient], Awaitable[Any]], **sim_kw: Any
) -> Any:
    sim = SimTerminal(**sim_kw)

    async def go() -> Any:
        async with connected(sim, kind) as client:
            return await body(sim, client)

    return run(go())


# ---- scripted outcomes, both transports ----


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_approve_with_pin_delay_statuses_slip_and_masked_pan(kind: str) -> None:
    seen: list[int] = []

    async def body(sim: SimTerminal, c: ZvtClient) -> TransactionResult:
        reg = await c.register()
        assert reg.terminal_id == "52500038" and c.terminal_id == "52500038"
        sim.script(parse_outcome("approve,pin=0.3,interval=0.05"))
        return await c.authorize(1234, on_status=lambda s: seen.append(s.status))

    r = scenario(kind, body)
    assert r.outcome == APPROVED and r.approved and r.result_code == 0
    assert r.amount_minor == 1234 and r.currency == 978
    assert r.receipt_no == 1 and r.trace == 1 and r.turnover_no == 1
    assert r.pan_masked == "541333******0011"
    assert r.card_name == "Mastercard" and r.card_type == 6 and r.terminal_id == "52500038"
    assert not r.offline
    assert seen[0] == 0x0A and seen.count(0x01) >= 3 and seen[-1] == 0x04
    assert any("541333******0011" in line for line in r.slip)
    assert r.slip[-1] == "Danke schön"  # CP437 text
    assert "5413330089020011" not in json.dumps(r.to_dict())


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_decline_with_result_code(kind: str) -> None:
    async def body(sim: SimTerminal, c: ZvtClient) -> TransactionResult:
        sim.script(parse_outcome("decline:05"))
        return await c.authorize(500)

    r = scenario(kind, body)
    assert r.outcome == DECLINED and r.result_code == 0x05
    assert "do not honour" in r.message
    assert any("Abgelehnt" in line for line in r.slip)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_customer_abort(kind: str) -> None:
    async def body(sim: SimTerminal, c: ZvtClient) -> TransactionResult:
        sim.script(Outcome(kind="abort", pin_delay=0.1, status_interval=0.05))
        return await c.authorize(500)

    r = scenario(kind, body)
    assert r.outcome == ABORTED and r.result_code == 0x6C
    assert r.message.startswith("aborted")


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_register_abort_during_pin_entry(kind: str) -> None:
    async def body(sim: SimTerminal, c: ZvtClient) -> tuple[TransactionResult, SimTerminal]:
        sim.script(Outcome(pin_delay=3.0, status_interval=0.05))

        async def on_status(s: Any) -> None:
            if s.status == 0x01:
                await c.abort()

        return await c.authorize(700, on_status=on_status), sim

    r, sim = scenario(kind, body)
    assert r.outcome == ABORTED and r.abort_sent and r.result_code == 0x6C
    assert sim.journal == []  # nothing was charged


def test_terminal_that_ignores_abort_completes_the_payment() -> None:
    async def body(sim: SimTerminal, c: ZvtClient) -> tuple[TransactionResult, SimTerminal]:
        sim.script(parse_outcome("approve,pin=3,interval=0.05,ignore-abort"))

        async def on_status(s: Any) -> None:
            if s.status == 0x01:
                await c.abort()

        return await c.authorize(700, on_status=on_status), sim

    r, sim = scenario("tcp", body)
    assert r.abort_sent and r.outcome == APPROVED and sim.aborts_ignored == 1


def test_abort_while_idle_is_acknowledged() -> None:
    async def body(sim: SimTerminal, c: ZvtClient) -> Any:
        return await c.abort()

    r = scenario("tcp", body)
    assert r is not None and r.outcome == ACKNOWLEDGED


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_no_answer_times_out_after_t3_and_link_still_works(kind: str) -> None:
    async def body(sim: SimTerminal, c: ZvtClient) -> TransactionResult:
        sim.script(parse_outcome("no-answer"))
        t0 = time.monotonic()
        with pytest.raises(ZvtTransactionInterrupted) as e:
            await c.authorize(100)
        assert isinstance(e.value.cause, ZvtTimeout)
        assert 0.9 <= time.monotonic() - t0 < 3.0
        assert "outcome is unknown" in str(e.value)
        return await c.status_enquiry()

    r = scenario(kind, body)
    assert r.outcome == APPROVED and r.terminal_id == "52500038"


def test_hang_after_ack_times_out_after_t4_with_partial() -> None:
    async def body(sim: SimTerminal, c: ZvtClient) -> None:
        sim.script(parse_outcome("hang"))
        with pytest.raises(ZvtTransactionInterrupted) as e:
            await c.authorize(100)
        assert isinstance(e.value.cause, ZvtTimeout)
        assert e.value.partial.outcome == ACKNOWLEDGED and e.value.partial.statuses == []

    scenario("tcp", body)


def test_tcp_disconnect_mid_transaction_then_resolve_with_repeat_receipt() -> None:
    sim = SimTerminal()

    async def go() -> None:
        sim.script(parse_outcome("disconnect:after-approval"))
        async with connected(sim, "tcp") as c:
            with pytest.raises(ZvtTransactionInterrupted) as e:
                await c.authorize(2500)
            assert isinstance(e.value.cause, ZvtConnectionLost)
            assert e.value.partial.statuses  # it got as far as the card
        async with connected(sim, "tcp") as c:  # reconnect: what happened?
            last = await c.repeat_receipt()
            assert last.outcome == APPROVED and last.amount_minor == 2500
            assert last.receipt_no == 1 and last.slip[0] == "** Belegkopie **"
            rev = await c.reversal(last.receipt_no or 0)
            assert rev.outcome == APPROVED
            again = await c.reversal(last.receipt_no or 0)
            assert again.outcome == DECLINED and again.result_code == 0xB4

    run(go())


def test_pty_disconnect_before_result_is_silence_then_nothing_charged() -> None:
    async def body(sim: SimTerminal, c: ZvtClient) -> TransactionResult:
        sim.disconnect_silence = 0.3
        sim.script(parse_outcome("disconnect"))
        with pytest.raises(ZvtTransactionInterrupted) as e:
            await c.authorize(2500)
        assert isinstance(e.value.cause, ZvtTimeout)
        await asyncio.sleep(0.4)
        return await c.repeat_receipt()

    r = scenario("pty", body)
    assert r.outcome == DECLINED and r.result_code == 0x83  # no transaction in the journal


# ---- host offline: store-and-forward inside the terminal ----


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_host_offline_store_and_forward(kind: str) -> None:
    async def body(sim: SimTerminal, c: ZvtClient) -> Any:
        sim.limits.max_amount = 3000
        sim.limits.max_count = 2
        sim.set_host_online(False)
        ok1 = await c.authorize(1000)
        too_big = await c.authorize(3001)
        ok2 = await c.authorize(2000)
        over_count = await c.authorize(100)
        enq = await c.status_enquiry()
        sim.forward_results.extend([0x00, 0x05])
        forwarded = sim.set_host_online(True)
        eod = await c.end_of_day()
        return ok1, too_big, ok2, over_count, enq, forwarded, eod

    ok1, too_big, ok2, over_count, enq, forwarded, eod = scenario(kind, body)
    assert ok1.approved and ok1.offline and "OFFLINE" in (ok1.additional_text or "")
    assert any("OFFLINE" in line for line in ok1.slip)
    assert too_big.outcome == DECLINED and too_big.result_code == 0x9B
    assert ok2.approved and ok2.offline
    assert over_count.outcome == DECLINED
    assert enq.status_info["tlv"][0]["tag"] == "1F11" and enq.status_info["tlv"][0]["int"] == 0
    assert [f["approved"] for f in forwarded] == [True, False]
    assert forwarded[1]["pan_masked"] == "541333******0011"
    assert eod.outcome == APPROVED and eod.amount_minor == 1000  # declined forward left out
    assert eod.totals is not None and eod.totals["eurocard"] == {"count": 1, "amount_minor": 1000}
    assert any("abgelehnt" in line for line in eod.slip)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_send_offline_transactions_reports_each_stored_payment_once_submitted(
    kind: str,
) -> None:
    async def body(sim: SimTerminal, c: ZvtClient) -> Any:
        sim.forward_on_reconnect = False
        sim.set_host_online(False)
        refused = await c.send_offline()  # no host: nothing can be submitted
        a = await c.authorize(1000)
        sim.script(parse_outcome("approve,entry=contactless"))
        b = await c.authorize(700)
        sim.forward_results.extend([0x00, 0x05])
        sim.set_host_online(True)
        first = await c.send_offline()
        again = await c.send_offline()
        return refused, a, b, first, again

    refused, a, b, first, again = scenario(kind, body)
    assert refused.outcome == DECLINED and not refused.completed
    assert a.offline and a.entry_mode == "chip" and b.entry_mode == "contactless"
    assert a.auth_code and b.auth_code
    assert first.outcome == APPROVED and first.completed
    got = [(i["receipt_no"], i["amount_minor"], i["result_code"]) for i in first.status_infos]
    assert got == [(a.receipt_no, 1000, 0x00), (b.receipt_no, 700, 0x05)]
    assert first.status_infos[1]["pan_masked"] == "541333******0011"
    assert [(i["receipt_no"], i["result_code"]) for i in again.status_infos] == [
        (a.receipt_no, 0),
        (b.receipt_no, 5),
    ]


def test_simulated_terminal_finishes_a_payment_when_the_register_vanishes() -> None:
    sim = SimTerminal()

    async def go() -> Any:
        async with connected(sim, "tcp") as c:
            sim.script(parse_outcome("approve,pin=0.3,interval=0.05"))
            task = asyncio.create_task(c.authorize(1234))
            await asyncio.sleep(0.1)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for _ in range(40):
            if sim.journal:
                break
            await asyncio.sleep(0.05)
        async with connected(sim, "tcp") as c:
            return await c.repeat_receipt()

    last = run(go())
    assert last.outcome == APPROVED and last.amount_minor == 1234
    assert [t.kind for t in sim.journal] == ["payment"]


# ---- other commands ----


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_refund_reversal_end_of_day_diagnosis_log_off(kind: str) -> None:
    async def body(sim: SimTerminal, c: ZvtClient) -> Any:
        p1 = await c.authorize(1000)
        p2 = await c.authorize(250)
        rev = await c.reversal(p2.receipt_no or 0)
        ref = await c.refund(300)
        diag = await c.diagnosis()
        eod = await c.end_of_day()
        eod2 = await c.end_of_day()
        off = await c.log_off()
        return p1, rev, ref, diag, eod, eod2, off

    p1, rev, ref, diag, eod, eod2, off = scenario(kind, body)
    assert rev.approved and rev.status_info["original_trace"] == 2
    assert ref.approved and ref.amount_minor == 300
    assert diag.outcome == APPROVED
    assert eod.amount_minor == 1000 and eod.totals["receipt_from"] == 1
    assert eod.totals["eurocard"]["count"] == 1
    assert eod2.amount_minor == 0  # a new batch
    assert off.outcome == ACKNOWLEDGED
    assert p1.receipt_no == 1


def test_wrong_password_is_rejected() -> None:
    async def body(sim: SimTerminal, c: ZvtClient) -> TransactionResult:
        c.password = "999999"
        return await c.end_of_day()

    r = scenario("tcp", body)
    assert r.outcome == REJECTED and r.result_code == 0x83 and "not possible" in r.message


def test_print_text_blocks_and_iso_8859_terminal() -> None:
    sim = SimTerminal(print_blocks=True, encoding="iso-8859-1")

    async def go() -> TransactionResult:
        async with connected(sim, "tcp", encoding="iso-8859-1") as c:
            return await c.authorize(990)

    r = run(go())
    assert len(r.receipts) == 1 and r.receipts[0].receipt_type == 2
    assert r.receipts[0].lines[-1] == "Danke schön"


# ---- serial line faults over a real pty ----


def _serial(client: ZvtClient) -> Any:
    return client.transport


def test_pty_bad_crc_is_naked_and_retransmitted() -> None:
    async def body(sim: SimTerminal, c: ZvtClient) -> Any:
        sim.faults.corrupt = 2
        r = await c.authorize(100)
        return r, _serial(c).naks_sent

    r, naks = scenario("pty", body)
    assert r.approved and naks == 2


def test_pty_terminal_naks_and_client_retransmits() -> None:
    async def body(sim: SimTerminal, c: ZvtClient) -> Any:
        sim.faults.nak = 2
        r = await c.authorize(100)
        return r, _serial(c).retransmits, _serial(c).naks_received

    r, retransmits, naks = scenario("pty", body)
    assert r.approved and retransmits == 2 and naks == 2


def test_pty_garbage_between_frames_and_truncated_frames() -> None:
    async def body(sim: SimTerminal, c: ZvtClient) -> Any:
        sim.faults.garbage = bytes.fromhex("AA 55 00 FF 02 03")
        sim.faults.garbage_frames = 3
        sim.faults.truncate = 2
        r = await c.authorize(100)
        d = _serial(c).deframer
        return r, d.garbage_bytes, d.abandoned

    r, garbage, abandoned = scenario("pty", body)
    assert r.approved
    assert garbage == 18 and abandoned == 2


def test_pty_terminal_that_never_acks_fails_after_retries() -> None:
    async def body(sim: SimTerminal, c: ZvtClient) -> None:
        sim.faults.nak = 10
        with pytest.raises(ZvtTransactionInterrupted) as e:
            await c.authorize(100)
        assert "4 transmissions" in str(e.value)
        assert _serial(c).retransmits == 3

    scenario("pty", body)


# ---- recording, replay, control channel, CLI ----


def test_record_and_replay_tcp_session(tmp_path: Path) -> None:
    sim = SimTerminal()

    async def go() -> None:
        async with connected(sim, "tcp", record_dir=tmp_path) as c:
            first = await c.authorize(4200)
        trace = read_trace(tmp_path / "session-001-tcp.trace")
        assert trace.transport == "tcp"
        assert trace.events[0].direction == "ECR>PT"
        assert trace.events[0].data == bytes.fromhex("06 01 0A 04 00 00 00 00 42 00 49 09 78")

        reports = []

        async def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            from drivers.zvt.transport import SocketStream

            reports.append(await replay_session(trace, SocketStream(r, w), timeout=2))
            w.close()

        server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        host, port = bound_address(server)
        c = ZvtClient(await open_tcp(host, port, CLIENT_T))
        again = await c.authorize(4200)
        await c.close()
        for _ in range(50):
            if reports:
                break
            await asyncio.sleep(0.02)
        server.close()
        assert reports and reports[0].mismatches == []
        assert again.to_dict() == first.to_dict()

    run(go())


RECORDED = sorted(p.name for p in RECORDINGS.glob("*.trace"))


def test_recordings_are_committed() -> None:
    assert any(n.endswith("-tcp.trace") for n in RECORDED)
    assert any(n.endswith("-serial.trace") for n in RECORDED)


@pytest.mark.parametrize("name", RECORDED)
def test_committed_recordings_replay(name: str) -> None:
    """The client replays every committed trace byte for byte (TCP or a real pty)."""
    import os
    import tty

    from drivers.zvt.framing import decode_frame
    from drivers.zvt.transport import FdStream, SocketStream

    trace = read_trace(RECORDINGS / name)
    first = trace.events[0].data
    if trace.transport == "serial":
        first = decode_frame(first)
    assert first[:2] == b"\x06\x01"
    amount = int(first[4:10].hex())

    async def go() -> TransactionResult:
        reports = []
        if trace.transport == "tcp":

            async def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                reports.append(await replay_session(trace, SocketStream(r, w), timeout=2))
                w.close()

            server = await asyncio.start_server(on_client, "127.0.0.1", 0)
            host, port = bound_address(server)
            c = ZvtClient(await open_tcp(host, port, CLIENT_T))
            res = await c.authorize(amount)
            await c.close()
            await asyncio.sleep(0.05)
            server.close()
        else:
            master, slave = os.openpty()
            tty.setraw(slave)
            stream = FdStream(master)
            c = ZvtClient(await open_serial(os.ttyname(slave), 9600, CLIENT_T))
            task = asyncio.ensure_future(replay_session(trace, stream, timeout=2))
            res = await c.authorize(amount)
            reports.append(await task)
            await c.close()
            await stream.close()
            os.close(slave)
        assert reports and reports[0].mismatches == []
        return res

    r = run(go())
    assert r.outcome in (APPROVED, DECLINED, ABORTED)


def test_control_channel() -> None:
    sim = SimTerminal()

    async def go() -> list[dict[str, Any]]:
        server = await serve_control(sim)
        host, port = bound_address(server)
        reader, writer = await asyncio.open_connection(host, port)
        answers = []
        for req in (
            {"cmd": "outcome", "spec": ["decline:51", "abort"]},
            {"cmd": "host_online", "value": False},
            {"cmd": "forward_results", "codes": [5]},
            {"cmd": "faults", "corrupt": 1, "garbage": "AA", "garbage_frames": 1},
            {"cmd": "set", "forward_on_reconnect": False, "entry_mode": "swipe"},
            {"cmd": "set", "colour": "red"},
            {"cmd": "state"},
            {"cmd": "nope"},
        ):
            writer.write(json.dumps(req).encode() + b"\n")
            answers.append(json.loads(await reader.readline()))
        writer.write(b"not json\n")
        answers.append(json.loads(await reader.readline()))
        writer.close()
        server.close()
        return answers

    a = run(go())
    assert a[0] == {"ok": True, "queued": 2}
    assert sim.outcomes[0].result_code == 0x51 and sim.outcomes[1].kind == "abort"
    assert a[1] == {"ok": True, "forwarded": []} and not sim.host_online
    assert list(sim.forward_results) == [5]
    assert sim.faults.corrupt == 1 and sim.faults.garbage == b"\xaa"
    assert a[4] == {"ok": True} and not sim.forward_on_reconnect
    assert sim.card.entry_mode == "swipe"
    assert a[5]["ok"] is False and "colour" in a[5]["error"]
    assert a[6]["host_online"] is False and a[6]["queued_outcomes"] == 2
    assert a[7]["ok"] is False and "nope" in a[7]["error"]
    assert a[8]["ok"] is False


def _start_hil(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [str(BIN / "hil"), "terminal", *args, "--duration", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline().strip()]
    if "--control" in args:
        lines.append(proc.stdout.readline().strip())
    return proc, lines


def test_hil_terminal_cli_pty_and_tcp_with_control() -> None:
    proc, lines = _start_hil("--pty", "--outcome", "decline:05")
    proc2, lines2 = _start_hil(
        "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--host-offline"
    )
    try:
        assert lines[0].startswith("/dev/pts/")
        assert lines2[1].startswith("control 127.0.0.1:")

        async def go() -> tuple[TransactionResult, TransactionResult]:
            c = ZvtClient(await open_serial(lines[0], 9600, CLIENT_T))
            r1 = await c.authorize(100)
            await c.close()
            host, _, port = lines2[0].rpartition(":")
            c2 = ZvtClient(await open_tcp(host, int(port), CLIENT_T))
            r2 = await c2.authorize(100)
            await c2.close()
            chost, _, cport = lines2[1].split()[1].rpartition(":")
            reader, writer = await asyncio.open_connection(chost, int(cport))
            writer.write(b'{"cmd": "state"}\n')
            state = json.loads(await reader.readline())
            writer.close()
            assert state["pending_forward"] == 1
            return r1, r2

        r1, r2 = run(go())
        assert r1.outcome == DECLINED and r1.result_code == 5
        assert r2.approved and r2.offline
    finally:
        for p in (proc, proc2):
            p.terminate()
            p.wait(timeout=5)


def test_hil_terminal_cli_serial_framing_over_a_unix_socket(tmp_path: Path) -> None:
    """As the full-system tier wires it: QEMU's chardev is a unix socket server, the
    simulator connects and speaks serial framing (here the test plays the guest)."""
    from drivers.zvt.transport import SerialTransport, SocketStream

    path = tmp_path / "s1.sock"

    async def go() -> TransactionResult:
        accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        server = await asyncio.start_unix_server(
            lambda r, w: accepted.put_nowait((r, w)), str(path)
        )
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "hil"),
            "terminal",
            "--serial",
            f"unix:{path}",
            "--outcome",
            "approve,pin=0.1",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            reader, writer = await asyncio.wait_for(accepted.get(), 10)
            line = SerialTransport(SocketStream(reader, writer), CLIENT_T)
            c = ZvtClient(line)
            res = await c.authorize(4321)
            await c.close()
            await asyncio.wait_for(proc.wait(), 5)  # the line closed: the simulator ends
            return res
        finally:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
            server.close()

    r = run(go())
    assert r.approved and r.amount_minor == 4321 and r.statuses

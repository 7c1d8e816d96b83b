"""Card payments through the register's own payment path, against the ZVT terminal
simulator over loopback TCP: states, live statuses, tenders only from approvals,
unknown payments resolved with the terminal, serialization, reversals, refunds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from appliance.errors import Conflict
from appliance.register import Register
from hil.zvt_sim.script import parse_outcome
from tests.payments_kit import Rig, own_terminal, register_app, run

TENDER_CARD_KEYS = {
    "name",
    "pan_masked",
    "terminal_id",
    "trace",
    "receipt_no",
    "auth_code",
    "entry_mode",
    "offline",
    "slip",
}


def charged(rig: Rig) -> list[Any]:
    """Payments the terminal charged and did not take back."""
    return [t for t in rig.sim.journal if t.kind == "payment" and t.approved and not t.reversed]


def test_approved_payment_streams_statuses_and_makes_the_agreed_card_tender(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with register_app(tmp_path) as rig:
            sale = await rig.sale("COFFEE", "BEER")  # 7.48
            rig.sim.script(parse_outcome("approve,pin=0.3,interval=0.05"))
            started = await rig.pay(sale["id"], wait=0)
            assert started["state"] in ("requested", "in_progress")
            # The sell screen's stream: every status as it happens, ending with the outcome.
            async with rig.client.stream("GET", f"/api/payments/{started['id']}/events") as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                text = (await r.aread()).decode()
            events = [
                json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")
            ]
            assert events[-1]["state"] == "approved"
            texts = [s["text"] for s in events[-1]["statuses"]]
            assert "insert card" in texts and "please watch PIN pad" in texts
            assert events[-1]["status_text"] == "approved"
            done = await rig.ok("GET", f"/api/payments/{started['id']}")
            assert [e["state"] for e in done["events"]] == ["requested", "in_progress", "approved"]
            sale = await rig.get_sale(sale["id"])
            assert sale["status"] == "completed"
            (tender,) = sale["tenders"]
            assert tender["kind"] == "card" and tender["amount"] == 748
            assert tender["payment_id"] == started["id"] and tender["reference"]
            assert set(tender["card"]) == TENDER_CARD_KEYS
            card = tender["card"]
            assert card["pan_masked"] == "541333******0011" and card["offline"] is False
            assert card["entry_mode"] == "chip" and card["terminal_id"] == "52500038"
            assert "Karte        541333******0011" in card["slip"]
            assert len(charged(rig)) == 1

    run(body())


def test_decline_and_customer_abort_leave_the_sale_open_for_another_tender(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with register_app(tmp_path) as rig:
            sale = await rig.sale("COFFEE")
            declined = await rig.pay(sale["id"], "decline:05")
            assert declined["state"] == "declined" and "code 05" in declined["message"]
            aborted = await rig.pay(sale["id"], "abort")
            assert aborted["state"] == "aborted" and "abort" in aborted["message"]
            assert (await rig.get_sale(sale["id"]))["tenders"] == []
            cash = await rig.ok(
                "POST",
                f"/api/sales/{sale['id']}/tenders",
                {"kind": "cash", "amount_minor": 500},
                201,
            )
            assert cash["status"] == "completed" and charged(rig) == []

    run(body())


def test_cashier_aborts_during_pin_entry(tmp_path: Path) -> None:
    async def body() -> None:
        async with register_app(tmp_path) as rig:
            sale = await rig.sale("COFFEE")
            p = await rig.pay(sale["id"], "approve,pin=5,interval=0.05", wait=0)
            await rig.until(f"/api/payments/{p['id']}", lambda d: d["state"] == "in_progress")
            await rig.ok("POST", f"/api/payments/{p['id']}/abort")
            done = await rig.ok("GET", f"/api/payments/{p['id']}?wait=5")
            assert done["state"] == "aborted" and charged(rig) == []

    run(body())


def test_sale_is_held_while_its_payment_runs(tmp_path: Path) -> None:
    async def body() -> None:
        async with register_app(tmp_path) as rig:
            sale = await rig.sale("COFFEE")
            sid = sale["id"]
            p = await rig.pay(sid, "approve,pin=0.6,interval=0.05", wait=0)
            for method, path, req in [
                ("POST", f"/api/sales/{sid}/tenders", {"kind": "cash", "amount_minor": 500}),
                ("POST", f"/api/sales/{sid}/lines", {"code": "BEER"}),
                ("POST", f"/api/sales/{sid}/void", {"reason": "x"}),
                ("POST", f"/api/sales/{sid}/payments", {}),  # no second payment
                ("POST", "/api/shifts/current/close", {"counted_minor": 0}),
            ]:
                err = await rig.refused(method, path, req)
                assert err["code"] == "conflict", (path, err)
                assert p["id"] in err["message"] or "running" in err["message"], err
            done = await rig.ok("GET", f"/api/payments/{p['id']}?wait=5")
            assert done["state"] == "approved"
            assert (await rig.get_sale(sid))["status"] == "completed"

    run(body())


def test_payments_are_serialized_per_terminal(tmp_path: Path) -> None:
    async def body() -> None:
        async with register_app(tmp_path) as rig:
            a, b = await rig.sale("COFFEE"), await rig.sale("BEER")
            rig.sim.script(parse_outcome("approve,pin=0.4,interval=0.05"), parse_outcome("approve"))
            pa = await rig.pay(a["id"], wait=0)
            pb = await rig.pay(b["id"], wait=0)
            await asyncio.sleep(0.2)
            mid = await rig.ok("GET", f"/api/payments/{pb['id']}")
            assert mid["state"] == "requested"  # waits for the terminal
            done_a = await rig.ok("GET", f"/api/payments/{pa['id']}?wait=5")
            done_b = await rig.ok("GET", f"/api/payments/{pb['id']}?wait=5")
            assert done_a["state"] == done_b["state"] == "approved"
            assert done_a["receipt_no"] < done_b["receipt_no"]
            assert rig.sim.commands.count("06 01") == 2

    run(body())


def test_terminal_vanishes_mid_payment_then_is_asked_never_charging_twice(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with register_app(tmp_path) as rig:
            # The terminal approved, then the link broke before the register heard it.
            sale = await rig.sale("COFFEE")
            p = await rig.pay(sale["id"], "disconnect:after-approval")
            assert p["state"] == "approved", p
            assert "repeat receipt" in p["resolution"]
            assert [
                e["state"] for e in (await rig.ok("GET", f"/api/payments/{p['id']}"))["events"]
            ] == [
                "requested",
                "in_progress",
                "unknown",
                "approved",
            ]
            assert len((await rig.get_sale(sale["id"]))["tenders"]) == 1
            # The link broke before the host was asked: nothing charged, retry is allowed.
            sale2 = await rig.sale("BEER")
            lost = await rig.pay(sale2["id"], "disconnect")
            assert lost["state"] == "aborted" and "nothing was charged" in lost["message"]
            # The terminal never answered at all.
            silent = await rig.pay(sale2["id"], "no-answer")
            assert silent["state"] == "aborted"
            again = await rig.pay(sale2["id"], "approve")
            assert again["state"] == "approved"
            assert len(charged(rig)) == 2
            for sid in (sale["id"], sale2["id"]):
                s = await rig.get_sale(sid)
                assert s["status"] == "completed" and len(s["tenders"]) == 1

    run(body())


def test_unknown_payment_blocks_its_sale_until_the_terminal_answers(tmp_path: Path) -> None:
    async def body() -> None:
        async with (
            own_terminal() as (sim, address),
            register_app(tmp_path, address, sim, poll_seconds=0.1) as rig,
        ):
            sale = await rig.sale("COFFEE")
            sim.script(parse_outcome("disconnect:after-approval"))
            sim.reply_timeout = 0.5
            # The terminal stays unreachable after the break: take it off the network.
            real_serve = sim.serve
            blocked = asyncio.Event()

            async def refuse(t: Any) -> None:
                if blocked.is_set():
                    await t.close()
                    return
                blocked.set()
                await real_serve(t)

            sim.serve = refuse  # type: ignore[method-assign]
            p = await rig.pay(sale["id"])
            assert p["state"] == "unknown", p
            err = await rig.refused(
                "POST", f"/api/sales/{sale['id']}/tenders", {"kind": "cash", "amount_minor": 500}
            )
            assert "unknown outcome" in err["message"] and err["payment_id"] == p["id"]
            err = await rig.refused("POST", f"/api/sales/{sale['id']}/payments", {})
            assert "unknown outcome" in err["message"]
            status = await rig.ok("GET", "/api/payments/terminal")
            assert status["unknown_payments"] == [{"id": p["id"], "sale_id": sale["id"]}]
            sim.serve = real_serve  # type: ignore[method-assign]
            done = await rig.until(f"/api/payments/{p['id']}", lambda d: d["state"] != "unknown")
            assert done["state"] == "approved"
            assert (await rig.get_sale(sale["id"]))["status"] == "completed"
            assert len(charged(rig)) == 1

    run(body())


def test_reversal_on_an_open_sale_takes_the_tender_back(tmp_path: Path) -> None:
    async def body() -> None:
        async with register_app(tmp_path) as rig:
            sale = await rig.sale("COFFEE", "BEER")
            p = await rig.pay(sale["id"], amount_minor=500)
            assert p["state"] == "approved"
            err = await rig.refused("POST", f"/api/sales/{sale['id']}/void", {"reason": "left"})
            assert "reverse it on the terminal" in err["message"]
            rev = await rig.ok("POST", f"/api/payments/{p['id']}/reverse")
            assert rev["kind"] == "reversal" and rev["state"] == "approved"
            assert rev["original_id"] == p["id"]
            s = await rig.get_sale(sale["id"])
            assert [t["amount"] for t in s["tenders"]] == [500, -500]
            assert s["tenders"][1]["reverses"] == s["tenders"][0]["id"]
            assert s["totals"]["due"] == 748
            original = await rig.ok("GET", f"/api/payments/{p['id']}")
            assert original["reversed_by"] == rev["id"]
            err = await rig.refused("POST", f"/api/payments/{p['id']}/reverse")
            assert "already reversed" in err["message"]
            await rig.ok("POST", f"/api/sales/{sale['id']}/void", {"reason": "left"})
            assert charged(rig) == []

    run(body())


def test_refunds_go_back_to_the_card_tied_to_the_original_payment(tmp_path: Path) -> None:
    async def body() -> None:
        async with register_app(tmp_path) as rig:
            sale = await rig.sale("COFFEE", "BEER")
            await rig.pay(sale["id"])
            sale = await rig.get_sale(sale["id"])
            payment_id = sale["tenders"][0]["payment_id"]
            # Part of it: a refund (06 31) against the original payment.
            refund = await rig.ok("POST", "/api/refunds", {"receipt_no": sale["receipt_no"]}, 201)
            await rig.ok(
                "POST", f"/api/refunds/{refund['id']}/lines", {"original_line_no": 2, "qty": 1}, 201
            )
            err = await rig.refused("POST", f"/api/refunds/{refund['id']}/complete", {})
            assert f"/api/refunds/{refund['id']}/card" in err["message"]
            done = await rig.ok("POST", f"/api/refunds/{refund['id']}/card")
            assert done["status"] == "completed" and done["tenders"][0]["amount"] == -249
            (row,) = await rig.ok("GET", f"/api/sales/{refund['id']}/payments")
            assert row["kind"] == "refund" and row["original_id"] == payment_id
            assert row["state"] == "approved" and row["tender_id"] == done["tenders"][0]["id"]
            assert rig.sim.journal[-1].kind == "refund" and rig.sim.journal[-1].amount_minor == 249
            # The rest, while the terminal's host is down: a refund needs the host.
            rig.sim.set_host_online(False)
            await rig.ok("POST", "/api/payments/offline/forward")  # learns the link state
            refund2 = await rig.ok("POST", "/api/refunds", {"receipt_no": sale["receipt_no"]}, 201)
            await rig.ok(
                "POST",
                f"/api/refunds/{refund2['id']}/lines",
                {"original_line_no": 1, "qty": 1},
                201,
            )
            rig.payments.link.host_online = False
            err = await rig.refused("POST", f"/api/refunds/{refund2['id']}/card")
            assert "host link" in err["message"] and "tender_kind" in err["message"]
            cash = await rig.ok(
                "POST", f"/api/refunds/{refund2['id']}/complete", {"tender_kind": "cash"}
            )
            assert cash["status"] == "completed"
            # A whole payment within the terminal's batch goes back as a reversal.
            rig.sim.set_host_online(True)
            sale3 = await rig.sale("COFFEE")
            await rig.pay(sale3["id"])
            sale3 = await rig.get_sale(sale3["id"])
            refund3 = await rig.ok("POST", "/api/refunds", {"receipt_no": sale3["receipt_no"]}, 201)
            await rig.ok(
                "POST",
                f"/api/refunds/{refund3['id']}/lines",
                {"original_line_no": 1, "qty": 1},
                201,
            )
            done3 = await rig.ok("POST", f"/api/refunds/{refund3['id']}/card")
            assert done3["status"] == "completed"
            (rev,) = await rig.ok("GET", f"/api/sales/{refund3['id']}/payments")
            assert rev["kind"] == "reversal" and rig.sim.journal[-1].kind == "reversal"

    run(body())


def test_shift_close_runs_the_terminal_end_of_day_next_to_the_z_report(tmp_path: Path) -> None:
    async def body() -> None:
        async with register_app(tmp_path) as rig:
            diag = await rig.ok("POST", "/api/payments/terminal/diagnosis")
            assert diag["ok"] and diag["host_link"] == "online"
            rig.sim.set_host_online(False)
            diag = await rig.ok("POST", "/api/payments/terminal/diagnosis")
            assert not diag["ok"] and diag["host_link"] == "offline"
            rig.sim.set_host_online(True)
            for code in ("COFFEE", "BEER"):
                await rig.pay((await rig.sale(code))["id"])
            z = await rig.ok("POST", "/api/shifts/current/close", {"counted_minor": 0})
            section = z["card_terminal"]
            assert section["ok"] is True and section["amount_minor"] == 748
            assert z["tenders"]["card"] == section["amount_minor"]
            assert section["totals"]["eurocard"] == {"count": 2, "amount_minor": 748}
            assert (await rig.ok("GET", "/api/reports/z"))["card_terminal"] == section
            (run_,) = await rig.ok("GET", "/api/payments/end-of-day")
            assert run_["ok"] and any("Kassenschnitt" in line for line in run_["slip"])
            sim = rig.sim
        assert sim.commands[-1] == "06 02"  # the register logged off when it stopped

    run(body())


def test_no_terminal_configured_refuses_card_payments(tmp_path: Path) -> None:
    async def body() -> None:
        async with own_terminal() as (sim, _address), register_app(tmp_path, "", sim) as rig:
            sale = await rig.sale("COFFEE")
            err = await rig.refused("POST", f"/api/sales/{sale['id']}/payments", {})
            assert err["code"] == "terminal_unavailable" and "another tender" in err["message"]

    run(body())


def test_a_charge_refused_before_the_terminal_is_asked_charges_nothing(tmp_path: Path) -> None:
    """A register's before-charge guard (LAN sync: "in checkout on Till 2") stops a card
    payment before any byte goes to the terminal, and records no payment."""

    def in_checkout_elsewhere(register: Register, sale_id: str) -> None:
        raise Conflict(f"sale {sale_id} is in checkout on Till 2 (R2)", field="sale_id")

    async def body() -> None:
        async with register_app(tmp_path) as rig:
            service = rig.app.state.service
            await service.call(lambda r: r.before_charge.append(in_checkout_elsewhere))
            sale = await rig.sale("COFFEE")
            err = await rig.refused("POST", f"/api/sales/{sale['id']}/payments", {})
            assert err["code"] == "conflict" and "in checkout on Till 2" in err["message"]
            assert rig.sim.journal == []
            assert (await rig.get_sale(sale["id"]))["tenders"] == []
            await service.call(lambda r: r.before_charge.remove(in_checkout_elsewhere))
            assert (await rig.pay(sale["id"]))["state"] == "approved"

    run(body())

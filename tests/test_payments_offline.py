"""Offline card acceptance (store-and-forward) through the register, against the
simulated terminal over loopback TCP: limits and their refusals, the manager override,
entry modes, "switched on in advance", forwarding when the link returns (idempotent),
declined after the fact, the register-wide offline signal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from appliance.config import OfflineCardSection
from appliance.payments import offline
from appliance.register import Register
from appliance.sync.link import link_for
from tests.payments_kit import Rig, own_terminal, register_app, run

LIMITS = {
    "enabled": True,
    "max_amount": 1000,
    "max_count": 3,
    "max_total": 2400,
    "manager_override": True,
    "manager_pin": "1234",
}


async def pending(rig: Rig) -> dict[str, Any]:
    status: dict[str, Any] = (await rig.ok("GET", "/api/payments/terminal"))["pending_forward"]
    return status


def test_offline_limits_refuse_naming_the_limit_and_offering_other_tenders(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with register_app(tmp_path, offline=LIMITS) as rig:
            rig.sim.set_host_online(False)
            a = await rig.sale("COFFEE")
            pa = await rig.pay(a["id"])
            assert pa["state"] == "approved" and pa["offline"] and pa["forward_state"] == "pending"
            tender = (await rig.get_sale(a["id"]))["tenders"][0]
            assert tender["card"]["offline"] is True  # the receipt says so
            assert "OFFLINE - wird nachgereicht" in tender["card"]["slip"]
            status = await rig.ok("GET", "/api/payments/terminal")
            assert status["offline"] and status["host_link"] == "offline"
            assert status["pending_forward"]["count"] == 1
            assert status["pending_forward"]["amount_minor"] == 499

            big = await rig.sale("COFFEE", "COFFEE", "COFFEE")  # 14.97
            err = await rig.refused("POST", f"/api/sales/{big['id']}/payments", {})
            assert err["code"] == "card_offline_refused" and err["limit"] == "max_amount"
            assert "14.97 is over the offline maximum of 10.00" in err["message"]
            assert "A manager may approve it" in err["message"]
            assert err["other_tenders"] == ["cash", "other"] and err["override_possible"]
            wrong = {"manager_override": {"manager": "Mia", "pin": "0000"}}
            err = await rig.refused("POST", f"/api/sales/{big['id']}/payments", wrong)
            assert err["field"] == "manager_override.pin"
            right = {"manager_override": {"manager": "Mia", "pin": "1234"}}
            pb = await rig.pay(big["id"], **right)
            assert pb["state"] == "approved" and pb["offline"] and pb["override_by"] == "Mia"

            c = await rig.sale("COFFEE")
            err = await rig.refused("POST", f"/api/sales/{c['id']}/payments", {})
            assert err["limit"] == "max_total" and "19.96 is already waiting" in err["message"]
            d = await rig.sale("BEER")
            assert (await rig.pay(d["id"]))["offline"]
            e = await rig.sale("BEER")
            err = await rig.refused("POST", f"/api/sales/{e['id']}/payments", {})
            assert err["limit"] == "max_count" and "3 card payments" in err["message"]
            assert await pending(rig) == {
                "count": 3,
                "amount_minor": 499 + 1497 + 249,
                "oldest_at": pa["created_at"],
                "oldest_age_hours": (await pending(rig))["oldest_age_hours"],
            }
            # Nothing of the refused ones reached the terminal.
            assert rig.sim.commands.count("06 01") == 3

    run(body())


def test_swiped_card_approved_offline_by_the_terminal_is_reversed(tmp_path: Path) -> None:
    async def body() -> None:
        async with register_app(tmp_path, offline=LIMITS) as rig:
            rig.sim.limits.entry_modes = ("chip", "contactless", "swipe")  # a lax terminal
            rig.sim.set_host_online(False)
            sale = await rig.sale("COFFEE")
            p = await rig.pay(sale["id"], "approve,entry=swipe")
            assert p["state"] == "declined" and p["entry_mode"] == "swipe"
            assert "read by swipe" in p["message"] and "reversed" in p["message"]
            assert p["reversed_by"]
            assert [t.kind for t in rig.sim.journal] == ["payment", "reversal"]
            assert rig.sim.pending_forward() == []  # cancelled in the terminal, never forwarded
            assert (await rig.get_sale(sale["id"]))["tenders"] == []
            assert (await pending(rig))["count"] == 0
            contactless = await rig.pay(sale["id"], "approve,entry=contactless")
            assert contactless["state"] == "approved" and contactless["offline"]

    run(body())


def test_forwarded_when_the_link_returns_once_each_with_declines_after_the_fact(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with register_app(tmp_path, offline=LIMITS) as rig:
            rig.sim.forward_on_reconnect = False  # the register's 06 51 does it
            rig.sim.drop_after_forward = 1  # and the link breaks right after submitting
            await rig.ok("POST", "/api/customers", {"code": "C7", "name": "Ada Lovelace"}, 201)
            rig.sim.set_host_online(False)
            a, b = await rig.sale("COFFEE"), await rig.sale("BEER")
            await rig.ok("POST", f"/api/sales/{b['id']}/customer", {"code": "C7"})
            pa, pb = await rig.pay(a["id"]), await rig.pay(b["id"])
            assert pa["offline"] and pb["offline"]
            rig.sim.forward_results.extend([0x00, 0x05])
            rig.sim.set_host_online(True)
            overview = await rig.until(
                "/api/payments/offline", lambda d: d["pending_forward"]["count"] == 0
            )
            (declined,) = overview["declined_after_the_fact"]
            assert declined["payment_id"] == pb["id"] and declined["amount_minor"] == 249
            assert declined["pan_masked"] == "541333******0011"
            assert declined["customer"]["name"] == "Ada Lovelace"
            assert declined["at"] == pb["created_at"] and declined["receipt_no"]
            assert "code 05" in declined["message"]
            flagged = (await rig.get_sale(b["id"]))["card_declined_after_the_fact"]
            assert flagged[0]["payment_id"] == pb["id"]
            assert "card_declined_after_the_fact" not in await rig.get_sale(a["id"])
            assert (await rig.ok("GET", f"/api/payments/{pa['id']}"))[
                "forward_state"
            ] == "forwarded"
            # Asking again changes nothing; the host saw each payment exactly once.
            again = await rig.ok("POST", "/api/payments/offline/forward")
            assert again["forwarded"] == again["declined"] == 0
            submitted = [f["receipt_no"] for f in rig.sim.forwarded]
            assert sorted(submitted) == sorted({pa["receipt_no"], pb["receipt_no"]})
            assert rig.sim.commands.count("06 51") >= 2  # the broken one was asked again
            status = await rig.ok("GET", "/api/payments/terminal")
            assert status["declined_after_the_fact"] == {"count": 1, "amount_minor": 249}
            assert status["offline"] is False
            check = await rig.payments.call(Register.check)  # the flag replays from the op log
            assert check.ok, check.differences[:3]

    run(body())


def test_register_wide_offline_signal_applies_the_limits(tmp_path: Path) -> None:
    async def body() -> None:
        async with register_app(tmp_path, offline=LIMITS) as rig:
            link = link_for(rig.app.state.service)
            link.paired = True  # as the sync engine marks a paired register
            link.set_online(False, "back office unreachable")
            status = await rig.ok("GET", "/api/payments/terminal")
            assert status["offline"] and status["register_offline"]["offline"]
            assert "back office unreachable" in status["offline_reasons"][0]
            big = await rig.sale("COFFEE", "COFFEE", "COFFEE")
            err = await rig.refused("POST", f"/api/sales/{big['id']}/payments", {})
            assert err["limit"] == "max_amount"
            small = await rig.sale("COFFEE")
            p = await rig.pay(small["id"])  # the terminal itself is online: approved online
            assert p["state"] == "approved" and not p["offline"] and p["forward_state"] is None
            link.set_online(True)
            assert (await rig.pay(big["id"]))["state"] == "approved"

    run(body())


def test_offline_acceptance_switched_on_during_an_outage_waits_for_the_next(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with own_terminal() as (sim, address):
            sim.set_host_online(False)
            async with register_app(tmp_path, address, sim) as rig:
                sale = await rig.sale("COFFEE")
                err = await rig.refused("POST", f"/api/sales/{sale['id']}/payments", {})
                assert err["limit"] == "disabled"
            async with register_app(tmp_path, address, sim, offline=LIMITS, shift=False) as rig:
                err = await rig.refused("POST", f"/api/sales/{sale['id']}/payments", {})
                assert err["limit"] == "not_in_advance"
                assert "applies from the next outage" in err["message"]
                sim.set_host_online(True)
                await rig.ok("POST", "/api/payments/offline/forward")
                assert (await rig.ok("GET", "/api/payments/terminal"))["offline"] is False
                sim.set_host_online(False)
                p = await rig.pay(sale["id"])
                assert p["state"] == "approved" and p["offline"]

    run(body())


def test_no_offline_payments_once_the_oldest_is_too_old(tmp_path: Path) -> None:
    async def body() -> None:
        async with register_app(tmp_path, offline=LIMITS) as rig:
            rig.sim.set_host_online(False)
            assert (await rig.pay((await rig.sale("BEER"))["id"]))["offline"]
            rig.payments.clock = lambda: datetime.now(UTC) + timedelta(hours=25)
            sale = await rig.sale("BEER")
            err = await rig.refused("POST", f"/api/sales/{sale['id']}/payments", {})
            assert (
                err["limit"] == "max_age" and "over the offline maximum of 24 h" in err["message"]
            )

    run(body())


def test_offline_check_rules_in_order() -> None:
    lim = OfflineCardSection(**LIMITS)
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    ok = offline.Outstanding(1, 100, "2024-05-01T11:00:00Z")

    def limit(**kw: Any) -> str | None:
        args: dict[str, Any] = {"limits": lim, "outstanding": ok, "amount": 100, "now": now}
        try:
            offline.check(**{**args, **kw})
        except offline.OfflineRefused as e:
            return str(e.details["limit"])
        return None

    assert limit() is None
    assert limit(limits=OfflineCardSection()) == "disabled"
    assert limit(armed_problem="switched on late") == "not_in_advance"
    assert limit(amount=1001) == "max_amount"
    assert limit(amount=1001, override_by="Mia") is None
    assert limit(outstanding=offline.Outstanding(3, 100, None)) == "max_count"
    assert limit(amount=1000, outstanding=offline.Outstanding(2, 1600, None)) == "max_total"
    assert limit(outstanding=offline.Outstanding(1, 100, "2024-04-30T11:00:00Z")) == "max_age"
    assert limit(entry_mode="keyed", check_entry_mode=True) == "entry_mode"
    assert limit(entry_mode=None, check_entry_mode=True) == "entry_mode"
    assert limit(entry_mode="chip", check_entry_mode=True) is None

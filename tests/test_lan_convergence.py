"""Convergence as issue 7 defines it, scenario by scenario, on real register databases.

Two or three registers act on the same saved sale without having seen each other's
ops, then exchange their logs in both orders: concurrent line adds both survive; the
same field edited twice resolves to the later HLC edit (ties by register id);
completed or voided is final, a payment wins over a void, a sale paid on two
registers keeps both payments; merge and split lose no line; the checkout lease
holds, lapses when its register disappears, is taken over once, and a completed
payment wins over it. Every register ends identical and its replay check passes.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.errors import Conflict
from appliance.hlc import HybridLogicalClock
from appliance.lan import actions
from appliance.lan.registry import PeerDirectory, PeerEntry
from appliance.lan.replicate import vector
from appliance.lan.saved import holder_of
from appliance.register import Register
from appliance.replication import apply_remote, numbered_ops, ops_since
from appliance.storage.db import connect, migrate
from appliance.storage.state import StateStore
from tests.conftest import CATALOG_CSV, make_config


class Node:
    def __init__(self, tmp: Path, rid: str) -> None:
        self.reg = Register(make_config(tmp / rid, register={"id": rid, "name": f"Till {rid}"}))
        self.peers = PeerDirectory(rid, f"Till {rid}", "0.1.0")
        self.reg.in_transaction.append(actions.payment_guard(self.peers, 60.0))

    def act(self, fn: Any, *args: Any) -> Any:
        return fn(self.reg, self.peers, *args)

    def sees(self, other: Node, connected: bool) -> None:
        rid = other.reg.register_id
        entry = PeerEntry(rid, f"Till {rid}", "store1", "0.1.0", "", "t0", "t0")
        entry.connected = connected
        self.peers.entries[rid] = entry


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[Node]]:
    made = [Node(tmp_path, rid) for rid in ("R1", "R2", "R3")]
    made[0].reg.import_catalog_csv(CATALOG_CSV, "t.csv")
    for node in made:
        share(made[0], node)
        node.reg.open_shift(0)
        for other in made:
            if other is not node:
                node.sees(other, connected=True)
    yield made
    for node in made:
        node.reg.close()


def share(src: Node, dst: Node) -> None:
    """Everything ``src`` holds, as LAN sync carries it (with origin numbers)."""
    if src is not dst:
        apply_remote(dst.reg, numbered_ops(src.reg, "1", (), "seq", 10**6))


def exchange(nodes: list[Node]) -> None:
    for src, dst in itertools.permutations(nodes, 2):
        share(src, dst)


def converged(nodes: list[Node], sale_id: str) -> dict[str, Any]:
    docs = [n.reg.sale(sale_id) for n in nodes]
    assert all(doc == docs[0] for doc in docs)
    states = [{s["id"]: s for s in n.reg.state.sales()} for n in nodes]
    assert all(state == states[0] for state in states)
    assert all(vector(n.reg) == vector(nodes[0].reg) for n in nodes)
    for node in nodes:
        result = node.reg.check()
        assert result.ok, result.differences[:5]
    return docs[0]


def fixed_clock(node: Node, wall: float) -> None:
    node.reg.hlc = HybridLogicalClock(node.reg.register_id, wall_clock=lambda: wall)


def test_lines_added_on_two_registers_both_survive(nodes: list[Node]) -> None:
    r1, r2, _ = nodes
    sale = r1.reg.add_line(r1.reg.open_sale()["id"], "BEER")
    share(r1, r2)
    a = r1.reg.add_line(sale["id"], "COFFEE")["lines"][-1]
    b = r2.reg.add_line(sale["id"], "CARD")["lines"][-1]
    exchange(nodes)
    doc = converged(nodes, sale["id"])
    assert {x["id"] for x in doc["lines"]} == {sale["lines"][0]["id"], a["id"], b["id"]}
    assert sorted(x["no"] for x in doc["lines"]) == [1, 2, 3]


@pytest.mark.parametrize("first", ["R1", "R2"])
def test_same_field_later_edit_wins_and_ties_break_by_register(
    nodes: list[Node], first: str
) -> None:
    r1, r2, r3 = nodes
    sale = r1.reg.park(r1.reg.add_line(r1.reg.open_sale()["id"], "BEER")["id"], "Table 1")
    exchange(nodes)
    r1.act(actions.rename, sale["id"], "Early")
    r2.act(actions.rename, sale["id"], "Late")  # its clock is later: it wins
    order = [r1, r2] if first == "R1" else [r2, r1]
    for src in order:
        share(src, r3)
    exchange(nodes)
    assert converged(nodes, sale["id"])["name"] == "Late"
    # Same wall time and counter on both: the register id breaks the tie (R2 > R1).
    for node in (r1, r2):
        fixed_clock(node, 4_000_000_000.0)
    r2.act(actions.rename, sale["id"], "by R2")
    r1.act(actions.rename, sale["id"], "by R1")
    for src in order:
        share(src, r3)
    exchange(nodes)
    assert converged(nodes, sale["id"])["name"] == "by R2"


def test_completed_is_final_and_a_payment_wins_over_a_void(nodes: list[Node]) -> None:
    r1, r2, r3 = nodes
    sale = r1.reg.add_line(r1.reg.open_sale()["id"], "BEER")
    share(r1, r2)
    share(r1, r3)
    r2.reg.void_sale(sale["id"], "customer left")  # r2 voids...
    paid = r1.reg.add_tender(sale["id"], "cash", 500)  # ...while r1 takes the money
    assert paid["status"] == "completed"
    # r3 has seen neither and adds a line after the payment.
    late = r3.reg.add_line(sale["id"], "CARD")["lines"][-1]
    exchange(nodes)
    doc = converged(nodes, sale["id"])
    assert doc["status"] == "completed" and doc["receipt_no"] == paid["receipt_no"]
    assert any("completed_after_void" in c for c in doc["conflicts"])
    # The late line is not in what was paid, but it stays on record.
    assert [x["sku"] for x in doc["lines"]] == ["BEER"]
    assert doc["totals"]["total"] == paid["totals"]["total"]
    kept = [x["id"] for c in doc["conflicts"] for x in c.get("late_lines", [])]
    assert kept == [late["id"]]


def test_a_sale_paid_on_two_registers_keeps_both_payments(nodes: list[Node]) -> None:
    r1, r2, _ = nodes
    sale = r1.reg.add_line(r1.reg.open_sale()["id"], "BEER")
    share(r1, r2)
    first = r1.reg.add_tender(sale["id"], "cash", 249)
    second = r2.reg.add_tender(sale["id"], "cash", 300)  # change 51
    exchange(nodes)
    doc = converged(nodes, sale["id"])
    assert doc["receipt_no"] == first["receipt_no"]
    dup_id = next(c["also_completed"] for c in doc["conflicts"] if "also_completed" in c)
    dup = nodes[2].reg.sale(dup_id)
    assert dup["duplicate_of"] == sale["id"] and dup["receipt_no"] == second["receipt_no"]
    assert nodes[2].reg.sale_by_receipt(second["receipt_no"])["id"] == dup_id
    # Each register's drawer counts the cash it took.
    assert r1.reg.x_report()["tenders"]["cash"] == 249
    assert r2.reg.x_report()["tenders"]["cash"] == 249


@pytest.mark.parametrize("add_first", [True, False])
def test_merge_while_a_line_is_added_to_the_source_loses_nothing(
    nodes: list[Node], add_first: bool
) -> None:
    r1, r2, _ = nodes
    into = r1.reg.park(r1.reg.add_line(r1.reg.open_sale()["id"], "BEER")["id"], "Table 1")
    source = r1.reg.park(r1.reg.add_line(r1.reg.open_sale()["id"], "COFFEE")["id"], "Bar")
    exchange(nodes)
    r2.reg.resume(source["id"])
    if add_first:
        added = r2.reg.add_line(source["id"], "CARD")["lines"][-1]
        merged = r1.act(actions.merge, into["id"], source["id"])
    else:
        merged = r1.act(actions.merge, into["id"], source["id"])
        added = r2.reg.add_line(source["id"], "CARD")["lines"][-1]
    assert [x["sku"] for x in merged["lines"]] == ["BEER", "COFFEE"]
    exchange(nodes)
    doc_into = converged(nodes, into["id"])
    doc_source = converged(nodes, source["id"])
    assert [x["sku"] for x in doc_into["lines"]] == ["BEER", "COFFEE"]
    # The line added meanwhile stays on the source, which is a saved sale again.
    assert [x["id"] for x in doc_source["lines"]] == [added["id"]]
    assert doc_source["status"] in ("open", "parked")


def test_split_moves_lines_to_a_new_saved_sale_on_every_register(nodes: list[Node]) -> None:
    r1, r2, r3 = nodes
    sale = r1.reg.open_sale()
    for code in ("BEER", "COFFEE", "CARD"):
        sale = r1.reg.add_line(sale["id"], code)
    total = sale["totals"]["total"]
    share(r1, r2)
    result = r2.act(actions.split, sale["id"], [2, 3], "Guest 2")
    assert result["new"]["status"] == "parked" and result["new"]["name"] == "Guest 2"
    exchange(nodes)
    left, new = converged(nodes, sale["id"]), converged(nodes, result["new"]["id"])
    assert [x["sku"] for x in left["lines"]] == ["BEER"]
    assert [x["sku"] for x in new["lines"]] == ["COFFEE", "CARD"]
    assert left["totals"]["total"] + new["totals"]["total"] == total
    assert new["id"].startswith("R2-") and holder_of(new) == "R2"
    with pytest.raises(Exception, match="at least one line"):
        r3.act(actions.split, sale["id"], [1], "nothing left")


def test_checkout_lease_holds_lapses_is_taken_over_once_and_payment_wins(
    nodes: list[Node],
) -> None:
    r1, r2, r3 = nodes
    sale = r1.reg.add_line(r1.reg.open_sale()["id"], "BEER")
    leased = r1.act(actions.take_checkout, sale["id"], 60.0)
    assert leased["checkout"]["register_id"] == "R1"
    exchange(nodes)
    with pytest.raises(Conflict, match="in checkout on Till R1"):
        r2.reg.add_tender(sale["id"], "cash", 500)
    with pytest.raises(Conflict, match="in checkout on Till R1"):
        r2.act(actions.rename, sale["id"], "mine now")
    assert r2.reg.sale(sale["id"])["tenders"] == []
    assert r2.act(actions.checkout_blocker, sale["id"]) == "in checkout on Till R1 (R1)"
    # A card payment the terminal already approved is recorded all the same.
    card = {"name": "girocard", "pan_masked": "############1234", "offline": False}
    approved = r2.reg.add_tender(sale["id"], "card", 100, "T1", card=card, payment_id="p1")
    assert approved["tenders"][0]["amount"] == 100
    # R1 disappears: for R2 and R3 its lease lapses at once, and both take over.
    r2.sees(r1, connected=False)
    r3.sees(r1, connected=False)
    r2.act(actions.take_checkout, sale["id"], 60.0)
    r3.act(actions.take_checkout, sale["id"], 60.0)
    share(r2, r3)
    share(r3, r2)
    doc = converged([r2, r3], sale["id"])
    assert doc["checkout"]["register_id"] == "R2"  # the earlier takeover holds it
    with pytest.raises(Conflict, match="in checkout on Till R2"):
        r3.reg.add_tender(sale["id"], "cash", 500)
    # R1 was only cut off and completed the payment meanwhile: the payment wins.
    paid = r1.reg.add_tender(sale["id"], "cash", 500)
    exchange(nodes)
    doc = converged(nodes, sale["id"])
    assert doc["status"] == "completed" and doc["receipt_no"] == paid["receipt_no"]
    # R2's card money, which R1 had not seen when it completed, stays on record.
    set_aside = [t for c in doc["conflicts"] for t in c.get("set_aside_tenders", [])]
    assert [(t["kind"], t["amount"]) for t in set_aside] == [("card", 100)]


def test_transfer_and_resume_move_the_holder(nodes: list[Node]) -> None:
    r1, _, r3 = nodes
    sale = r1.reg.add_line(r1.reg.open_sale()["id"], "BEER")
    moved = r1.act(actions.transfer, sale["id"], "R2")
    assert moved["holder"] == "R2" and moved["status"] == "parked"
    assert moved["name"] == "from R1"
    with pytest.raises(Exception, match="no register 'R7'"):
        r1.act(actions.transfer, sale["id"], "R7")
    exchange(nodes)
    assert converged(nodes, sale["id"])["holder"] == "R2"
    r3.act(actions.resume, sale["id"])
    exchange(nodes)
    doc = converged(nodes, sale["id"])
    assert doc["holder"] == "R3" and doc["status"] == "open"


def test_a_sale_not_yet_here_says_where_it_is(nodes: list[Node]) -> None:
    r1, r2, _ = nodes
    sale = r2.reg.park(r2.reg.add_line(r2.reg.open_sale()["id"], "BEER")["id"], "Table 4")
    r1.sees(r2, connected=False)
    r1.peers.entries["R2"].last_seen = "2024-05-01T12:01:07Z"
    with pytest.raises(Exception) as caught:
        r1.act(actions.find, sale["id"])
    error = caught.value.to_dict()  # type: ignore[attr-defined]
    assert error["code"] == "sale_not_found" and error["holder"] == "R2"
    assert error["reachable"] is False
    assert (
        "held by Till R2 (R2), which is unreachable (last seen 2024-05-01T12:01:07Z)"
        in (error["message"])
    )
    r1.sees(r2, connected=True)
    with pytest.raises(Exception, match="is connected: it has not reached this register"):
        r1.act(actions.find, sale["id"])
    share(r2, r1)
    assert r1.act(actions.find, sale["id"])["name"] == "Table 4"


def test_migration_numbers_the_registers_own_ops_and_the_trigger_goes_on(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path, register={"id": "R5"})
    conn = connect(config.db_path)
    migrate(conn, target=5)  # a database from before LAN sync
    conn.execute("INSERT INTO meta (key, value) VALUES ('register_id', 'R5')")
    for i in range(3):  # as the register wrote them then (no origin_seq column yet)
        payload = {"customer": {"id": f"c{i}", "code": f"C{i}", "name": "N"}}
        conn.execute(
            "INSERT INTO ops (op_id, register_id, hlc, kind, payload) VALUES (?,?,?,?,?)",
            (
                f"op{i}",
                "R5",
                f"{1_700_000_000_000 + i:013d}.000000.R5",
                "customer.upsert",
                json.dumps(payload),
            ),
        )
        StateStore(conn).put_customer(payload["customer"])
    conn.close()
    reg = Register(config)
    try:
        reg.upsert_customer("C9", "New")
        numbers = reg.conn.execute("SELECT origin_seq FROM ops ORDER BY seq").fetchall()
        assert [n for (n,) in numbers] == [1, 2, 3, 4]
        assert vector(reg) == {"R5": 4}
        assert reg.check().ok
        # A number used twice (e.g. a wiped register re-using its id) is reported.
        reg.conn.execute("UPDATE ops SET origin_seq = 2 WHERE origin_seq = 3")
        assert reg.check().differences == ["ops of register R5: number 2 is used 2 times"]
    finally:
        reg.close()


def test_merging_inside_the_services_group_commit_uses_a_savepoint(nodes: list[Node]) -> None:
    r1, r2, _ = nodes
    sale = r1.reg.add_line(r1.reg.open_sale()["id"], "BEER")
    ops = ops_since(r1.reg, 0, 10**6)
    with r2.reg.group_commit():  # as when the service groups queued requests
        other = r2.reg.open_sale()
        with pytest.raises(Exception, match="is missing"):
            apply_remote(r2.reg, [*ops, {"op_id": "broken"}])  # refused whole…
        assert apply_remote(r2.reg, ops) > 0  # …and the group goes on
    assert r2.reg.sale(sale["id"]) == r1.reg.sale(sale["id"])
    assert r2.reg.sale(other["id"])["status"] == "open"
    assert r2.reg.check().ok

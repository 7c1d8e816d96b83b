"""Merging op logs between registers: same ops in any order → identical state.

Random actions on random registers over shared saved sales — line edits, park and
resume, payments, and the saved-sale actions of LAN sync (rename, transfer, merge,
split, checkout lease taken, released, lapsed and taken over) — with random partial
and duplicated delivery in random order, anti-entropy pulls by version vector, and
partitions; then the partition heals by anti-entropy alone: every register ends
with the same state for every sale, the same version vector, no line added anywhere
is lost, and every register's state equals the HLC-order replay of its log.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.errors import ApplianceError
from appliance.lan import actions
from appliance.lan.registry import PeerDirectory, PeerEntry
from appliance.lan.replicate import apply_batch, ops_missing, vector
from appliance.register import Register
from appliance.replication import apply_remote, ops_since
from tests.conftest import CATALOG_CSV, make_config

ACTIONS = [
    "open",
    "add",
    "add",
    "add",
    "qty",
    "void_line",
    "discount",
    "park",
    "resume",
    "pay",
    "pay",
    "deliver",
    "deliver",
    "rename",
    "transfer",
    "merge",
    "split",
    "checkout",
    "release",
    "peer_away",
    "sync",
    "sync",
    "partition",
]


def _all_ops(reg: Register) -> list[dict[str, Any]]:
    return ops_since(reg, 0, 10**6)


def _sales(reg: Register) -> dict[str, Any]:
    return {s["id"]: s for s in reg.state.sales()}


def _pull(src: Register, dst: Register) -> int:
    """Anti-entropy as the sync node does it: dst pulls what its vector lacks."""
    have = vector(dst)
    wanted = {origin: have.get(origin, 0) for origin in vector(src)}
    new, _ = apply_batch(dst, ops_missing(src, wanted, limit=50), have)
    return new


def _act(
    reg: Register,
    peers: PeerDirectory,
    regs: list[Register],
    action: str,
    pick: int,
    sale: dict[str, Any],
    rng: random.Random,
    added: set[str],
) -> None:
    """One saved-sale action of LAN sync on ``reg``'s view (may be refused)."""
    sid = sale["id"]
    saved = [s for s in reg.state.sales() if s["status"] in ("open", "parked")]
    if action == "rename":
        actions.rename(reg, peers, sid, f"table {pick % 9}")
    elif action == "transfer":
        actions.transfer(reg, peers, sid, regs[pick % len(regs)].register_id)
    elif action == "merge":
        others = [s for s in saved if s["id"] != sid and s["lines"]]
        if others:
            actions.merge(reg, peers, sid, others[pick % len(others)]["id"])
    elif action == "split":
        splittable = [s for s in saved if len([x for x in s["lines"] if not x["voided"]]) > 1]
        if splittable:
            sale = splittable[pick % len(splittable)]
            active = [x["no"] for x in sale["lines"] if not x["voided"]]
            actions.split(reg, peers, sale["id"], active[: 1 + pick % (len(active) - 1)], "s")
    elif action == "checkout":
        actions.take_checkout(reg, peers, sid, rng.choice([0.001, 60.0]))
    elif action == "release":
        actions.release_checkout(reg, peers, sid)
    elif action == "peer_away":
        # This register now believes another one is gone (or back): its leases lapse.
        other = regs[pick % len(regs)].register_id
        if other != reg.register_id:
            entry = peers.entries.setdefault(
                other, PeerEntry(other, other, "store1", peers.version, "", "", "")
            )
            entry.connected = not entry.connected


@given(
    steps=st.lists(
        st.tuples(st.integers(0, 2), st.sampled_from(ACTIONS), st.integers(0, 10**6)),
        min_size=15,
        max_size=60,
    ),
    seed=st.integers(0, 10**6),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_registers_converge_whatever_the_delivery_order(
    steps: list[tuple[int, str, int]], seed: int
) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        regs = [
            Register(make_config(Path(tmp) / f"r{i}", register={"id": f"R{i + 1}"}))
            for i in range(3)
        ]
        directories = [PeerDirectory(r.register_id, r.register_id, "0.1.0") for r in regs]
        for reg, peers in zip(regs, directories, strict=True):
            reg.in_transaction.append(actions.payment_guard(peers, 60.0))
        try:
            regs[0].import_catalog_csv(CATALOG_CSV, "t.csv")
            for reg in regs[1:]:
                apply_remote(reg, _all_ops(regs[0]))
            for reg in regs:
                reg.open_shift(0)
            added: set[str] = set()
            isolated: Register | None = None  # cut off from the others while set
            for who, action, pick in steps:
                reg = regs[who]
                sales = [s for s in reg.state.sales() if s["status"] in ("open", "parked")]
                # Mostly the two oldest saved sales: concurrent edits of one sale.
                sale = sales[pick % min(len(sales), 2 + pick % 2)] if sales else None
                src, dst = rng.sample(regs, 2)
                linked = isolated is None or isolated not in (src, dst)
                try:
                    if action == "open" or sale is None:
                        reg.open_sale()
                    elif action == "add" and sale["status"] == "open" and not sale["tenders"]:
                        doc = reg.add_line(sale["id"], rng.choice(["BEER", "COFFEE", "CARD"]))
                        added.add(doc["lines"][-1]["id"])
                    elif action == "qty" and sale["lines"]:
                        line = sale["lines"][pick % len(sale["lines"])]
                        reg.set_quantity(sale["id"], line["no"], 1 + pick % 5)
                    elif action == "void_line" and sale["lines"]:
                        reg.void_line(sale["id"], sale["lines"][pick % len(sale["lines"])]["no"])
                    elif action == "discount":
                        reg.discount_sale(sale["id"], percent_bp=pick % 3000)
                    elif action == "park":
                        reg.park(sale["id"], f"tab {pick % 7}")
                    elif action == "resume":
                        actions.resume(reg, directories[who], sale["id"])
                    elif action == "pay" and sale["totals"]["total"] > 0:
                        reg.add_tender(sale["id"], "cash", sale["totals"]["total"])
                    elif action == "deliver" and linked:
                        # Some of one register's ops to another, shuffled, maybe twice.
                        ops = _all_ops(src)
                        part = rng.sample(ops, k=rng.randint(0, len(ops)))
                        apply_remote(dst, part)
                        if rng.random() < 0.3:
                            apply_remote(dst, part[: len(part) // 2])
                    elif action == "sync" and linked:
                        _pull(src, dst)
                    elif action == "partition":
                        isolated = None if isolated is not None else regs[pick % 3]
                    else:
                        _act(reg, directories[who], regs, action, pick, sale, rng, added)
                except ApplianceError:
                    pass  # refused on that register's view: nothing changed
            # Heal by anti-entropy alone: pulls by version vector until nobody lacks
            # anything (bounded: each round moves at least one batch or stops).
            for _ in range(200):
                moved = sum(_pull(a, b) for a in regs for b in regs if a is not b)
                if not moved:
                    break
            vectors = [vector(reg) for reg in regs]
            assert vectors[0] == vectors[1] == vectors[2]
            states = [_sales(reg) for reg in regs]
            assert states[0] == states[1] == states[2]
            # Redelivering everything, in any order and in batches, changes nothing.
            everything = {op["op_id"]: op for reg in regs for op in _all_ops(reg)}
            for reg in regs:
                ops = list(everything.values())
                rng.shuffle(ops)
                for start in range(0, len(ops), 7):
                    assert apply_remote(reg, ops[start : start + 7]) == 0
            assert [_sales(reg) for reg in regs] == states
            # No line added anywhere was lost: each is in a sale (the one it was added
            # to, or the one a merge or split moved it to), or kept in a sale's
            # conflicts by a completion that had not seen it.
            kept = set()
            for sale in states[0].values():
                kept |= {x["id"] for x in sale["lines"]}
                for conflict in sale.get("conflicts", []):
                    for key in ("set_aside_lines", "replaced_lines", "late_lines"):
                        kept |= {x["id"] for x in conflict.get(key, [])}
            assert added <= kept
            for reg in regs:
                result = reg.check()
                assert result.ok, result.differences[:5]
        finally:
            for reg in regs:
                reg.close()


def test_merge_is_idempotent_and_rejects_malformed_ops(tmp_path: Path) -> None:
    a = Register(make_config(tmp_path / "a", register={"id": "A"}))
    b = Register(make_config(tmp_path / "b", register={"id": "B"}))
    a.import_catalog_csv(CATALOG_CSV, "t.csv")
    sale = a.add_line(a.open_sale()["id"], "BEER")
    ops = ops_since(a)
    assert apply_remote(b, ops) == len(ops)
    assert apply_remote(b, ops) == 0
    assert b.sale(sale["id"]) == a.sale(sale["id"])
    before = b.conn.execute("SELECT count(*) FROM ops").fetchone()[0]
    try:
        apply_remote(b, [*ops_since(a), {"op_id": "x", "hlc": "yesterday"}])
        raise AssertionError("malformed op accepted")
    except ApplianceError as exc:
        assert exc.field == "ops[" + str(len(ops)) + "].register_id"
    assert b.conn.execute("SELECT count(*) FROM ops").fetchone()[0] == before
    a.close()
    b.close()

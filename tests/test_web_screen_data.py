"""What the screens list as saved sales (appliance/web/screen_data.py), on a real
register database and the LAN register directory: sales of unreachable registers
are marked, their last-known ones shown but not resumable here."""

from __future__ import annotations

from appliance.lan.registry import PeerDirectory, PeerEntry
from appliance.register import Register
from appliance.web.screen_data import saved_sales_view


def peer(rid: str, connected: bool, held: list[dict[str, object]]) -> PeerEntry:
    return PeerEntry(
        register_id=rid,
        name=f"Till {rid[1:]}",
        store_id="store1",
        version="1.0",
        address="127.0.0.1:8470",
        first_seen="2026-11-23T08:00:00Z",
        last_seen="2026-11-23T09:15:00Z",
        held=held,
        connected=connected,
    )


def test_unreachable_registers_and_their_last_known_sales(register: Register) -> None:
    sale = register.open_sale()
    register.add_line(sale["id"], "BEER")
    register.park(sale["id"], "Table 1")
    away_sale = {
        "id": "R2-0123abcd",
        "name": "Table 7",
        "status": "parked",
        "total": 498,
        "lines": 2,
    }
    peers = PeerDirectory("R1", "Till 1", "1.0")
    peers.entries["R2"] = peer("R2", False, [away_sale])
    peers.entries["R3"] = peer("R3", True, [])

    view = saved_sales_view(register, peers, parked_only=True)
    by_name = {row["name"]: row for row in view["sales"]}
    assert set(by_name) == {"Table 1", "Table 7"}
    assert by_name["Table 1"]["available"] and not by_name["Table 1"]["unreachable"]
    away = by_name["Table 7"]
    assert not away["available"] and away["unreachable"]
    assert away["holder"] == "R2" and away["total"] == 498
    assert "unreachable (last seen 2026-11-23T09:15:00Z)" in away["message"]
    assert [r["register_id"] for r in view["unreachable"]] == ["R2"]
    assert view["unreachable"][0]["saved_sales"] == 1
    assert "disconnected since 2026-11-23T09:15:00Z" in view["unreachable"][0]["message"]
    # The available ones come first.
    assert [r["name"] for r in view["sales"]] == ["Table 1", "Table 7"]

    # Once R2 is back, its sales are synced ones again: nothing marked.
    peers.entries["R2"].connected = True
    view = saved_sales_view(register, peers, parked_only=True)
    assert view["unreachable"] == []
    assert [r["name"] for r in view["sales"]] == ["Table 1"]


def test_without_lan_sync_the_list_is_this_registers(register: Register) -> None:
    sale = register.open_sale()
    register.add_line(sale["id"], "BEER")
    register.park(sale["id"], "Tab A")
    register.open_sale()
    view = saved_sales_view(register, None, parked_only=True)
    assert [r["name"] for r in view["sales"]] == ["Tab A"]
    assert view["unreachable"] == []
    assert len(saved_sales_view(register, None)["sales"]) == 2

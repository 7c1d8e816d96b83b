"""The runtime settings overlay (appliance/settings.py): one way settings change —
from the admin panel or a back office bundle — validated, durable in the register's
SQLite file, in force at once and again after a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import settings
from appliance.config import Config
from appliance.errors import ValidationError
from appliance.register import Register
from appliance.sync.bundles import apply_bundles
from tests.conftest import api_client, make_config


def test_change_is_live_durable_and_reapplied_at_start(config: Config) -> None:
    reg = Register(config)
    seen: list[Config] = []
    settings.watch(reg, seen.append)
    settings.change(reg, {"store.receipt_header": ["Corner Shop", "Main St 1"]}, "admin", "mia")
    assert reg.config.store.receipt_header == ["Corner Shop", "Main St 1"]
    assert seen[-1].store.receipt_header == ["Corner Shop", "Main St 1"]
    reg.close()
    assert config.store.receipt_header == ["Demo Shop"]  # the file's value
    again = Register(config)  # opening lays the stored change over it
    assert again.config.store.receipt_header == ["Corner Shop", "Main St 1"]
    rows = settings.overview(again)["changed"]
    assert [(r["key"], r["source"], r["by"]) for r in rows] == [
        ("store.receipt_header", "admin", "mia")
    ]
    again.close()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"payments.offline.max_amount": 0}, "payments.offline.max_amount"),
        ({"payments.offline.entry_modes": ["swipe"]}, "payments.offline.entry_modes.0"),
        ({"printer.profile": "no-such-printer"}, "printer.profile"),
        ({"scanners.layouts": {"wedge": "klingon"}}, "scanners.layouts"),
        ({"register.id": "R9"}, "register.id"),
        ({"store.currency": "USD"}, "store.currency"),
        ({"payments.offline.no_such": 1}, "payments.offline.no_such"),
    ],
)
def test_bad_values_name_the_field_and_change_nothing(
    register: Register, changes: dict[str, object], field: str
) -> None:
    before = register.config
    with pytest.raises(ValidationError) as info:
        settings.change(register, changes, "admin")
    assert info.value.field == field
    assert register.config is before
    assert register.conn.execute("SELECT count(*) FROM settings_overlay").fetchone()[0] == 0


def test_back_office_bundles_go_through_the_same_overlay(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    reg = Register(config)
    outcomes = apply_bundles(
        reg,
        [
            {"kind": "settings", "version": 3, "payload": {"receipt": {"footer": ["Bye"]}}},
            {"kind": "taxes", "version": 2, "payload": {"rates": {"standard": "0.2"}}},
            {"kind": "settings", "version": 4, "payload": {"store": {"cash_rounding": 0}}},
        ],
    )
    assert [o["applied"] for o in outcomes] == [True, True, False]
    assert "store.cash_rounding" in outcomes[2]["error"]
    assert reg.config.store.receipt_footer == ["Bye"]
    assert str(reg.config.tax.rates["standard"]) == "0.2"
    # A later change at the register wins over the bundle, also after a restart.
    settings.change(reg, {"store.receipt_footer": ["See you"]}, "admin", "mia")
    reg.close()
    again = Register(config)
    assert again.config.store.receipt_footer == ["See you"]
    assert str(again.config.tax.rates["standard"]) == "0.2"
    sources = {r["key"]: r["source"] for r in settings.overview(again)["changed"]}
    assert sources == {"store.receipt_footer": "admin", "tax": "backoffice"}
    again.close()


def test_settings_api_changes_the_next_receipt(tmp_path: Path) -> None:
    """Through the HTTP API: the printing service renders the next receipt with the new
    header, and the offline card limits the payment service checks are the new ones."""
    config = make_config(tmp_path, printer={"connection": "simulated"})
    with api_client(config) as client:
        bad = client.put("/api/settings", json={"changes": {"store.receipt_footer": "x"}})
        assert bad.status_code == 422
        assert bad.json()["error"]["field"] == "store.receipt_footer"
        resp = client.put(
            "/api/settings",
            json={
                "changes": {
                    "store.receipt_header": ["Header From Admin"],
                    "payments.offline.max_amount": 2_500,
                }
            },
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["values"]["store.receipt_header"] == ["Header From Admin"]
        app = client.app
        assert app.state.printing.settings.header == ("Header From Admin",)  # type: ignore[attr-defined]
        assert app.state.payments.limits.max_amount == 2_500  # type: ignore[attr-defined]


def test_scanner_layout_from_the_settings_wins_over_the_profile(tmp_path: Path) -> None:
    from appliance.peripherals import scanner_profiles

    config = make_config(tmp_path, scanners={"profiles": ["generic-usb-wedge-us"]})
    reg = Register(config)
    assert (
        scanner_profiles(reg.config)["generic-usb-wedge-us"].section("keyboard")["layout"] == "us"
    )
    settings.change(reg, {"scanners.layouts": {"generic-usb-wedge-us": "de"}}, "admin")
    profile = scanner_profiles(reg.config)["generic-usb-wedge-us"]
    assert profile.section("keyboard")["layout"] == "de"
    reg.close()


def test_a_new_layout_restarts_the_scanner_with_it(tmp_path: Path) -> None:
    """The running register's keyboard-wedge scanner is rebuilt with the new layout."""
    import time

    config = make_config(tmp_path, scanners={"profiles": ["generic-usb-wedge-us"]})
    with api_client(config) as client:
        manager = client.app.state.scanners  # type: ignore[attr-defined]
        assert manager.scanners["generic-usb-wedge-us"].settings.layout == "us"
        resp = client.put(
            "/api/settings", json={"changes": {"scanners.layouts": {"generic-usb-wedge-us": "de"}}}
        )
        assert resp.status_code == 200, resp.text
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            scanner = manager.scanners.get("generic-usb-wedge-us")
            if scanner is not None and scanner.settings.layout == "de":
                break
            time.sleep(0.05)
        assert manager.scanners["generic-usb-wedge-us"].settings.layout == "de"
        assert "generic-usb-wedge-us" in manager.tasks


@pytest.mark.parametrize(
    "key", ["store.", "store.receipt_header.x", "tax.rates.standard.x", "", "storex", "store..id"]
)
def test_odd_keys_are_refused_by_name(register: Register, key: str) -> None:
    with pytest.raises(ValidationError) as info:
        settings.change(register, {key: 1}, "admin")
    assert info.value.field is not None

"""Printer driver parts: DLE EOT status, connection specs, profiles, config, USB messages,
the network link on real sockets, and python-escpos kept out of start-up and logs."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from appliance.config import config_from_dict
from appliance.errors import ConfigError
from drivers.printers.connection import (
    ConnectionSpec,
    NetworkConnection,
    PrinterUnreachable,
    TransmitError,
    explain_usb_failure,
    parse_spec,
)
from drivers.printers.profiles import ProfileError, load_profile
from drivers.printers.status import encode_status, parse_status
from tests.conftest import ROOT


# status ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("online", "paper", "cover_open", "drawer_open"),
    list(itertools.product([True, False], ["ok", "near_end", "out"], [True, False], [True, False])),
)
def test_status_bytes_mean_what_the_printer_says(
    online: bool, paper: str, cover_open: bool, drawer_open: bool
) -> None:
    for level in ("high", "low"):
        answers = encode_status(
            online=online,
            paper=paper,  # type: ignore[arg-type]
            cover_open=cover_open,
            drawer_open=drawer_open,
            drawer_open_level=level,
        )
        status = parse_status(dict(answers), level)
        assert status.known
        assert status.paper == paper and status.cover_open == cover_open
        assert status.drawer_open == drawer_open
        assert status.ready == (online and paper != "out" and not cover_open)
        if not status.ready:
            assert status.reason in ("cover open", "paper out", "printer offline")


def test_no_answer_or_garbage_is_unknown_never_ok() -> None:
    ok = encode_status(online=True, paper="ok", cover_open=False, drawer_open=False)
    assert parse_status(dict(ok)).ready
    for n in (1, 2, 4):
        silent = parse_status({**ok, n: None})
        assert not silent.known and not silent.ready and f"DLE EOT {n}" in (silent.reason or "")
        for garbage in (0x00, 0xFF, 0x13, 0x92):
            bad = parse_status({**ok, n: garbage})
            assert not bad.known and not bad.ready and "garbage" in (bad.reason or "")


def test_printer_errors_are_named() -> None:
    ok = encode_status(online=True, paper="ok", cover_open=False, drawer_open=False)
    cutter = parse_status({**ok, 1: ok[1] | 0x08, 2: ok[2] | 0x40, 3: ok[3] | 0x08})
    assert not cutter.ready and cutter.error == "autocutter error" and cutter.reason == cutter.error


# connection specs and profiles --------------------------------------------------------------
def test_connection_specs() -> None:
    assert parse_spec("tcp:10.0.0.5") == ConnectionSpec("tcp", host="10.0.0.5", port=9100)
    assert parse_spec("tcp:printer.local:9101").port == 9101
    assert parse_spec("serial:/dev/ttyUSB0") == ConnectionSpec("serial", device="/dev/ttyUSB0")
    assert parse_spec("usb:04B8:0202").usb_id == (0x04B8, 0x0202)
    assert parse_spec("usb", (0x0416, 0x5011)).usb_id == (0x0416, 0x5011)
    for bad in ("tcp:", "usb:4b8:202", "lpt1", "serial:ttyS0", "tcp:host:99999"):
        with pytest.raises(ValueError, match="printer connection"):
            parse_spec(bad)
    with pytest.raises(ValueError, match="usb:VVVV:PPPP"):
        parse_spec("usb")


def test_profiles_and_their_errors(tmp_path: Path) -> None:
    t88 = load_profile("epson-tm-t88v")
    assert (t88.columns, t88.dots, t88.cutter, t88.usb_id) == (42, 512, "partial", (0x04B8, 0x0202))
    small = load_profile("generic-58mm")
    assert (small.columns, small.cutter, small.barcodes, small.graphics) == (
        32,
        "none",
        False,
        True,
    )
    base = 'paper_mm = 80\ndots = 512\ncolumns = 42\ncode_pages = ["PC858"]\n'
    cases = {
        base + "colour = true\n": "colour: unknown key",
        base.replace("PC858", "KOI8"): "'KOI8' is not a code page",
        base.replace("columns = 42\n", ""): "columns: is required",
        base.replace("42", '"42"'): "columns: wrong type",
        base + 'cutter = "laser"\n': "cutter",
        base + '[usb]\nvendor = "xyz"\nproduct = "0001"\n': "usb.vendor",
        "paper_mm = [": "not valid TOML",
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.toml"
        path.write_text(text)
        with pytest.raises(ProfileError, match=message) as err:
            load_profile(path)
        assert str(path) in str(err.value)


def test_printer_config_is_checked_at_load() -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict({"printer": {"profile": "epson-tm-t1000"}}, "shop.toml")
    assert "shop.toml: printer.profile" in err.value.message and "generic-58mm" in err.value.message
    with pytest.raises(ConfigError, match=r"printer\.connection"):
        config_from_dict({"printer": {"connection": "lpt:1"}})
    with pytest.raises(ConfigError, match=r"printer\.qr"):
        config_from_dict({"printer": {"qr": "https://x/{receipt}"}})
    with pytest.raises(ConfigError, match=r"printer\.drawer_pin"):
        config_from_dict({"printer": {"drawer_pin": 3}})
    ok = config_from_dict({"printer": {"connection": "usb:04b8:0202", "qr": "x/{receipt_no}"}})
    assert ok.printer.connection == "usb:04b8:0202"


# USB ------------------------------------------------------------------------------------------
def fake_usb(root: Path, driver: str | None, lp: bool = False) -> tuple[Path, Path]:
    """A sysfs tree (real files and symlinks) with one printer 04b8:0202 at 1-2."""
    sysfs = root / "sys"
    dev = sysfs / "bus" / "usb" / "devices" / "1-2"
    intf = sysfs / "bus" / "usb" / "devices" / "1-2:1.0"
    dev.mkdir(parents=True)
    intf.mkdir(parents=True)
    (dev / "idVendor").write_text("04b8\n")
    (dev / "idProduct").write_text("0202\n")
    if driver:
        target = sysfs / "bus" / "usb" / "drivers" / driver
        target.mkdir(parents=True)
        (intf / "driver").symlink_to(target)
    if lp:
        (intf / "usbmisc" / "lp0").mkdir(parents=True)
    proc = root / "proc"
    proc.mkdir()
    return sysfs, proc


def test_usb_messages_name_usblp_cups_and_permissions(tmp_path: Path) -> None:
    sysfs, proc = fake_usb(tmp_path / "a", "usblp", lp=True)
    held = explain_usb_failure(0x04B8, 0x0202, "[Errno 16] Resource busy", sysfs, proc)
    assert "usblp" in held and "/dev/usb/lp0" in held and "blacklist" in held

    sysfs, proc = fake_usb(tmp_path / "b", None)
    (proc / "812").mkdir()
    (proc / "812" / "comm").write_text("cupsd\n")
    cups = explain_usb_failure(0x04B8, 0x0202, "[Errno 16] Resource busy", sysfs, proc)
    assert "CUPS" in cups and "lpadmin -x" in cups

    sysfs, proc = fake_usb(tmp_path / "c", None)
    denied = explain_usb_failure(0x04B8, 0x0202, "[Errno 13] Access denied", sysfs, proc)
    assert "61-appliance-printers.rules" in denied

    missing = explain_usb_failure(0x04B8, 0x0E15, "Device not found", sysfs, proc)
    assert "not found" in missing and "04b8:0e15" in missing


def test_udev_rule_and_blacklist_are_shipped() -> None:
    rules = (ROOT / "firmware_configs" / "udev" / "61-appliance-printers.rules").read_text()
    assert 'ATTR{idVendor}=="04b8' in rules and 'GROUP="appliance"' in rules
    assert "0701" in rules  # any USB printer-class interface
    blacklist = (ROOT / "firmware_configs" / "modprobe" / "appliance-usblp.conf").read_text()
    assert "blacklist usblp" in blacklist.splitlines()


# the network link on real sockets -----------------------------------------------------------
def one_client_server(accept_bytes: int | None) -> tuple[socket.socket, threading.Event]:
    """A listener that never answers: it reads ``accept_bytes`` and hangs up, or (None)
    reads everything until told to stop."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        conn.settimeout(0.05)
        got = 0
        while not stop.is_set() and (accept_bytes is None or got < accept_bytes):
            try:
                chunk = conn.recv(4096 if accept_bytes is None else min(4096, accept_bytes - got))
            except TimeoutError:
                continue
            if not chunk:
                break
            got += len(chunk)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server, stop


def test_a_printer_that_never_answers_costs_one_timeout() -> None:
    server, stop = one_client_server(None)
    spec = ConnectionSpec("tcp", host="127.0.0.1", port=server.getsockname()[1])
    conn = NetworkConnection(spec, timeout=2)
    try:
        conn.write(b"\x10\x04\x01")
        started = time.monotonic()
        assert conn.read_byte(0.2) is None
        assert 0.15 < time.monotonic() - started < 1.0
    finally:
        stop.set()
        conn.close()
        server.close()


def test_a_link_lost_mid_job_says_how_much_went_out() -> None:
    server, stop = one_client_server(1000)
    port = server.getsockname()[1]
    conn = NetworkConnection(ConnectionSpec("tcp", host="127.0.0.1", port=port), timeout=2)
    try:
        with pytest.raises(TransmitError) as err:
            for _ in range(500):  # the peer hung up: the kernel says so within a few writes
                conn.write(b"x" * 65536)
        assert err.value.sent >= 0 and "connection lost after" in str(err.value)
        assert not conn.is_open
    finally:
        stop.set()
        conn.close()
        server.close()
    off = NetworkConnection(ConnectionSpec("tcp", host="127.0.0.1", port=port), timeout=1)
    with pytest.raises(PrinterUnreachable, match="cannot open"):
        off.write(b"x")


def test_python_escpos_stays_out_of_start_up_and_logs(tmp_path: Path) -> None:
    script = f"""
import logging, sys, os
logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
from appliance.config import config_from_dict
from appliance.api import create_app
create_app(config_from_dict({{"register": {{"data_dir": {str(tmp_path / "d")!r}}},
                              "printer": {{"connection": "tcp:127.0.0.1:9"}}}}))
print("after create_app:", "escpos.printer" in sys.modules, "PIL.Image" in sys.modules)
handlers = list(logging.getLogger().handlers)
from drivers.printers.connection import load_escpos, NetworkConnection, ConnectionSpec
from pathlib import Path
import socket
load_escpos(Path({str(tmp_path / "cache")!r}))
print("handlers unchanged:", logging.getLogger().handlers == handlers)
srv = socket.create_server(("127.0.0.1", 0))
c = NetworkConnection(ConnectionSpec("tcp", host="127.0.0.1", port=srv.getsockname()[1]), timeout=1)
c.open(); c.close()
print("cache:", sorted(os.listdir({str(tmp_path / "cache")!r})) != [])
"""
    env = {**os.environ, "ESCPOS_CAPABILITIES_PICKLE_DIR": ""}
    env.pop("ESCPOS_CAPABILITIES_PICKLE_DIR")
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "after create_app: False False",
        "handlers unchanged: True",
        "cache: True",
    ]
    assert "printer enabled" not in out.stderr and "Closing" not in out.stderr

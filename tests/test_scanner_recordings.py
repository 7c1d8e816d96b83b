"""The recording library under hil/recordings/scanners: what it covers, that every
recording decodes to its expected scans on every tier this machine has, that those
scans mean what they should to the register, and the `hil replay-scanner` contract."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from appliance.barcodes import parse_barcode
from appliance.config import Config
from appliance.register import Register
from appliance.scan import apply_scan
from drivers.scanners.keymaps import LAYOUTS
from hil.evemu import parse_evemu
from hil.scanner_replay import TIERS_FOR, recording_kind, replay_recording
from hil.serial_recording import parse_serial
from tests.conftest import ROOT, VENV_BIN

RECORDINGS = ROOT / "hil" / "recordings" / "scanners"
FILES = sorted(p for p in RECORDINGS.iterdir() if not p.name.endswith(".expected.json"))


def expected(path: Path) -> list[str]:
    return list(json.loads(path.with_name(path.name.split(".")[0] + ".expected.json").read_text()))


CASES = [
    (path.name, tier)
    for path in FILES
    for tier in TIERS_FOR[recording_kind(path.read_text())]
    if tier != "uinput"  # no /dev/uinput here: tests/test_scanner_evdev.py runs that tier
]


@pytest.mark.parametrize(("recording", "tier"), CASES)
def test_every_recording_decodes_to_its_expected_scans(recording: str, tier: str) -> None:
    """pty and ble tiers run the real serial and BLE drivers (see hil/scanner_replay.py)."""
    path = RECORDINGS / recording
    got: list[str] = []
    asyncio.run(replay_recording(path.read_text(), got.append, tier=tier))
    assert got == expected(path)


def test_the_library_covers_what_the_bench_meets() -> None:
    evemu = {p.name: parse_evemu(p.read_text()) for p in FILES if p.suffix == ".evemu"}
    streams = {p.name: parse_serial(p.read_text()) for p in FILES if p.suffix != ".evemu"}
    scans = [scan for p in FILES for scan in expected(p)]
    assert {r.hints["layout"] for r in evemu.values()} == set(LAYOUTS)  # each layout
    wedge_suffixes = {p.split("-", 1)[1].split(".")[0] for p in evemu if "-" in p}
    assert {"enter", "tab", "kpenter", "none"} <= wedge_suffixes  # suffix variants
    assert {r.hints["terminator"] for r in streams.values()} == {"cr", "lf", "crlf", "none"}
    assert {r.transport for r in streams.values()} == {"serial", "ble"}
    aim = {scan[:3] for scan in scans if scan.startswith("]")}
    assert {"]E0", "]E4", "]A0", "]C1", "]d2"} <= aim  # AIM prefixes
    assert any("\x1d" in scan for scan in scans)  # GS1 with FNC1
    kinds = {parse_barcode(scan).kind for scan in scans}
    assert {"ean13", "ean8", "upce", "gs1", "variable_measure", "customer", "receipt"} <= kinds
    labels = [parse_barcode(s) for s in expected(RECORDINGS / "fr-scale-labels.evemu")]
    assert [(b.weight_g, b.price_minor) for b in labels] == [(1234, None), (None, 349)]
    human = RECORDINGS / "us-human-typing.evemu"
    assert len(expected(human)) == 2  # the two scans; the person's typing is no scan
    # every scan in the library is a good read: a misread would be a recording bug
    assert [s for s in scans if not parse_barcode(s).valid] == []


CATALOG = """sku,name,price_minor,barcodes,tax_category,sold_by
COFFEE,Coffee 250 g,499,4006381333931,reduced,unit
MILK,Milk 1 l,129,4001686301265,reduced,unit
APPLES,Apples,299,2100001000004,reduced,weight
BANANAS,Bananas,199,2100002000003,reduced,weight
CHEESE,Cheese by the piece,0,2300005000004,reduced,unit
WATER,Water 6 x 1.5 l,389,5449000000996,standard,unit
CHOC,Chocolate,189,7622210449283,reduced,unit
GS1ITEM,Flour 250 g,99,04012345000009,reduced,weight
DM,Vaccine,1500,09501101020917,standard,unit
UPCE,Gum,50,042100005264,standard,unit
EAN8,Mints,80,01234565,standard,unit
BAG,Shopping bag,20,,standard,unit
ABC-123,Code 39 item,100,,standard,unit
"""


def test_the_library_scans_mean_what_they_should_to_the_register(config: Config) -> None:
    register = Register(config)
    register.import_catalog_csv(CATALOG, "library.csv")
    register.upsert_customer("4711", "Grace Hopper")
    register.upsert_customer("0815", "Ada Lovelace")
    register.open_shift(10_000)
    first = register.open_sale()
    register.add_line(first["id"], "BAG")
    register.add_tender(first["id"], "cash", 20)  # receipt R1-000001
    actions: dict[str, str] = {}
    for path in FILES:
        for scan in expected(path):
            try:
                result = apply_scan(register, scan)
            except Exception as exc:
                actions[scan] = type(exc).__name__
                continue
            action = result["action"]
            if action == "line":
                line = result["line"]
                price = (line["override"] or {}).get("unit_price", line["unit_price"])
                action = f"line {line['sku']} {line.get('weight_g') or line['qty']} @{price}"
            actions[scan] = action
    assert actions == {
        "4006381333931": "line COFFEE 1 @499", "]E04006381333931": "line COFFEE 1 @499",
        "4001686301265": "line MILK 1 @129", "BAG": "line BAG 1 @20",
        "5449000000996": "line WATER 1 @389", "]E05449000000996": "line WATER 1 @389",
        "7622210449283": "line CHOC 1 @189",
        "2100002012341": "line BANANAS 1234 @199", "]E02100002012341": "line BANANAS 1234 @199",
        "2100001012342": "line APPLES 1234 @299",  # scale labels: weight …
        "2300005003494": "line CHEESE 1 @349",  # … and price
        "CUST4711": "customer", "CUST0815": "customer", "RCPTR1-000001": "receipt",
        "]E004252614": "line UPCE 1 @50", "]E401234565": "line EAN8 1 @80",
        "]A0ABC-123": "line ABC-123 1 @100", "ABC-123": "line ABC-123 1 @100",
        # GS1: net weight 250 g; a price label (392n); DataMatrix with expiry and serial
        "]C10104012345000009\x1d10LOT-7\x1d3103000250": "line GS1ITEM 250 @99",
        "]C1010401234500000910LOT7\x1d3103000250": "line GS1ITEM 250 @99",
        "]C1010401234500000910AB\x1d3922499": "line GS1ITEM 1 @499",
        "]C10104012345000009\x1d10LOT-7": "ValidationError",  # weighed, and no weight on it
        "]d2010950110102091717251231\x1d10B-47\x1d21SN0001": "line DM 1 @1500",
        "zyZY-09": "NotFound",  # not in this catalog
        "REF#12@A": "NotFound", "LOTE#7@B|2": "NotFound",
    }  # fmt: skip
    register.close()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / "hil"), "replay-scanner", *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.mark.parametrize("recording", ["fr-enter.evemu", "serial-crlf-gs1.serial",
                                       "ble-nus-cr.ble"])  # fmt: skip
def test_replay_scanner_cli_prints_each_scan_on_its_own_line_and_nothing_else(
    recording: str,
) -> None:
    path = RECORDINGS / recording
    result = _cli(str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "".join(f"{scan}\n" for scan in expected(path))
    assert result.stderr.startswith("hil: ") or "\nhil: " in result.stderr  # the summary


def test_replay_scanner_cli_layout_realtime_and_errors(tmp_path: Path) -> None:
    fr = RECORDINGS / "fr-enter.evemu"
    wrong = _cli(str(fr), "--layout", "us")
    assert wrong.returncode == 0 and wrong.stdout.splitlines() != expected(fr)  # layout matters
    short = tmp_path / "short.evemu"
    lines = fr.read_text().splitlines()  # up to the first Enter's release: the first scan
    enter_up = next(i for i, x in enumerate(lines) if x.endswith(" 0001 001c 0000"))
    short.write_text("\n".join(lines[: enter_up + 2]) + "\n")
    timed = _cli(str(short), "--realtime")
    assert timed.returncode == 0 and timed.stdout == "4006381333931\n"
    bad_tier = _cli(str(fr), "--tier", "pty")
    assert bad_tier.returncode == 1 and bad_tier.stdout == ""
    assert "evemu recordings replay on inprocess or uinput, not pty" in bad_tier.stderr
    broken = tmp_path / "broken.serial"
    broken.write_text("# serial recording v1\n0.0 < 41 42\n0.5 ? 43\n")
    result = _cli(str(broken))
    assert result.returncode == 1 and result.stdout == ""
    assert "line 3: expected '<seconds> <|> <hex bytes>'" in result.stderr

"""The `appliance terminal decode|encode` contracts, run as subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def appliance(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "appliance"), "terminal", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_encode_authorization_plain_and_serial() -> None:
    r = appliance("encode", "authorization", "--amount-minor", "1234", "--currency", "978")
    assert r.returncode == 0
    assert r.stdout.strip() == "06 01 0A 04 00 00 00 00 12 34 49 09 78"
    r = appliance(
        "encode", "authorization", "--amount-minor", "1234", "--currency", "978", "--serial"
    )
    assert r.stdout.strip() == "10 02 06 01 0A 04 00 00 00 00 12 34 49 09 78 10 03 B0 91"


def test_encode_registration_and_status_enquiry() -> None:
    r = appliance(
        "encode", "registration", "--password", "000000", "--config", "0xBA", "--currency", "978"
    )
    assert r.stdout.strip() == "06 00 06 00 00 00 BA 09 78"
    r = appliance("encode", "status-enquiry", "--password", "123456", "--serial")
    out = r.stdout.strip().split()
    assert out[:8] == ["10", "02", "05", "01", "03", "12", "34", "56"]
    assert out[8:10] == ["10", "03"]
    r = appliance("encode", "status-enquiry", "--password", "12x456")
    assert r.returncode != 0 and "6 digits" in r.stderr


def test_decode_status_information_keys() -> None:
    hexdata = (
        "04-0F-3C 27 00 04 00 00 00 00 12 34 49 09 78 0B 00 01 23 29 52 50 00 38 87 00 07 "
        "88 00 00 09 8A 06 8B F0 F4 56 49 53 41 22 F0 F8 54 13 33 EE EE EE 00 11 "
        "3C F0 F0 F2 4F 4B 06 04 1F 07 01 01"
    )
    parts = hexdata.split()
    r = appliance("decode", *parts)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["command"] == "04 0F" and out["framing"] == "apdu"
    assert out["result_code"] == 0 and out["amount_minor"] == 1234 and out["currency"] == 978
    assert out["terminal_id"] == "52500038" and out["trace"] == 123
    assert out["receipt_no"] == 7 and out["turnover_no"] == 9
    assert out["card_type"] == 6 and out["card_name"] == "VISA"
    assert out["pan_masked"] == "541333******0011"
    assert out["additional_text"] == "OK"
    assert out["tlv"] == [
        {
            "tag": "1F07",
            "class": "universal",
            "constructed": False,
            "name": "receipt type",
            "length": 1,
            "hex": "01",
            "int": 1,
        }
    ]


def test_decode_serial_frame_with_dle_doubling() -> None:
    # amount 10.10 → BCD 10 10, doubled on the line
    r = appliance("decode", "10 02 06 01 0A 04 00 00 00 00 10 10 10 10 49 09 78 10 03 67 D4")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["framing"] == "serial" and out["command"] == "06 01"
    assert out["amount_minor"] == 1010 and out["currency"] == 978


def test_decode_errors_name_offsets() -> None:
    cases = {
        "10 02 80 00 00 10 03 F5 1E": "frame byte offset 7",  # bad CRC
        "04 0F 06 8B F0 F8 4D 61 73": "APDU byte offset 3",  # truncated field
        "06 01 0A 04 00 00": "APDU byte offset 2",  # length past the end
        "04 0F 03 27 00 99": "APDU byte offset 5",  # unknown BMP
        "06 01 0Z": "byte offset 2",  # bad hex
        "06 01 0": "byte offset 2",  # half a byte
    }
    for text, needle in cases.items():
        r = appliance("decode", text)
        assert r.returncode != 0, text
        assert needle in r.stderr, (text, r.stderr)
        assert r.stdout == ""


def test_decode_never_prints_track_or_full_pan() -> None:
    r = appliance(
        "decode", "06 01 17 04 00 00 00 00 01 00 22 F0 F8 54 13 33 00 89 02 00 11 23 F0 F2 12 34"
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["pan_masked"] == "541333******0011"
    assert out["track2"] == {"redacted": True, "length": 2}
    assert "5413330089020011" not in r.stdout


def test_decode_skips_unknown_bmps_and_names_handshake_bytes() -> None:
    r = appliance("decode", "04 0F 0A 27 00 99 F0 F2 AA BB 87 00 07")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["receipt_no"] == 7 and out["unknown_bmps"] == [{"bmp": "99", "length": 2}]
    r = appliance("decode", "06")
    assert json.loads(r.stdout) == {
        "command": "06",
        "framing": "serial",
        "name": "ACK",
        "control": "ACK",
    }

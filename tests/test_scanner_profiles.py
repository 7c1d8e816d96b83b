"""Scanner profiles and udev rules in firmware_configs: every shipped file is valid,
and a broken profile is refused with its file and key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.scanners.ble import BleScanner
from drivers.scanners.evdev_source import EvdevScanner
from drivers.scanners.profiles import PROFILE_DIR, ProfileError, build_scanner, load_profile
from drivers.scanners.serial_scanner import SerialScanner

DRIVERS = {"evdev": EvdevScanner, "serial": SerialScanner, "ble": BleScanner}


@pytest.mark.parametrize("path", sorted(PROFILE_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_profile_loads_and_builds_its_driver(path: Path) -> None:
    profile = load_profile(path)
    assert isinstance(build_scanner(profile, path.stem), DRIVERS[profile.interface])
    assert profile.name != path.stem  # each says what scanner and setup it is for


def test_the_shipped_profiles_cover_every_interface() -> None:
    interfaces = {load_profile(p).interface for p in PROFILE_DIR.glob("*.toml")}
    assert interfaces == {"evdev", "serial", "ble"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('interface = "usb"\n', "interface: must be evdev, serial or ble, got 'usb'"),
        ('interface = "evdev"\n[keyboard]\nlayout = "us"\n', "match: an evdev scanner needs"),
        ('interface = "evdev"\n[match]\nname = "x"\n[keyboard]\nsufix = "tab"\n',
         "keyboard.sufix: unknown key (allowed: layout, suffix"),
        ('interface = "evdev"\n[match]\nusb_id = "0c2e"\n', "usb_id '0c2e' must look like"),
        ('interface = "serial"\n[serial]\nbaud = 9600\n', "serial.port: required"),
        ('interface = "serial"\n[serial]\nport = "/dev/x"\nbaud = "fast"\n',
         "serial.baud: wrong type str"),
        ('interface = "serial"\n[serial]\nport = "/dev/x"\nparity = "M"\n', "parity 'M'"),
        ('interface = "ble"\n[ble]\ncharacteristic = "ffe1"\n', "ble: a BLE scanner needs"),
        ('interface = "ble"\n[ble]\nname = "x"\n[symbology]\naim = "yes"\n',
         "symbology.aim: wrong type str"),
        ("interface = \n", "not valid TOML"),
    ],
)  # fmt: skip
def test_a_broken_profile_is_refused_naming_file_and_key(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "shop-scanner.toml"
    path.write_text(text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(info.value).startswith(f"{path}: ")
    assert problem in str(info.value)


# The udev rules are checked in tests/test_udev_rules.py (and in the QEMU stage).

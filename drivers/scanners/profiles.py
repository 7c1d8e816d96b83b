"""Scanner device profiles: one TOML file per scanner model or setup.

    name = "Honeywell Voyager 1250g, USB keyboard wedge"
    interface = "evdev"                 # evdev | serial | ble
    [match]                             # evdev: any of usb_id, by_id, name
    usb_id = "0c2e:0b61"
    [keyboard]                          # evdev
    layout = "us"                       # us uk de fr es it
    suffix = "enter"                    # enter tab none
    max_gap_ms = 60
    min_length = 3
    [serial]                            # serial
    port = "/dev/scanner/serial-by-id/0c2e:*"   # a path, or a glob for exactly one
    baud = 9600
    bytesize = 8
    parity = "N"
    stopbits = 1
    terminator = "cr"                   # cr lf crlf none
    ack_nak = false
    [ble]                               # ble: address and/or advertised name
    name = "BarcodeScanner"
    characteristic = "6e400003-b5a3-f393-e0a9-e50e24dcca9e"  # notify (NUS TX default)
    terminator = "cr"
    transport = "bleak"                 # or "bumble:<HCI transport>"
    [symbology]
    aim = false                         # true: the scanner prefixes AIM ids (]E0 …), and
                                        # a scan without one is dropped as damaged

Unknown keys and bad values are refused with the file and key named.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.scanners.keymaps import LAYOUTS
from drivers.scanners.wedge import SUFFIXES

PROFILE_DIR = Path(__file__).resolve().parents[2] / "firmware_configs" / "scanners"
SECTIONS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "match": {"usb_id": str, "by_id": str, "name": str},
    "keyboard": {"layout": str, "suffix": str, "max_gap_ms": (int, float),
                 "end_gap_ms": (int, float), "min_length": int},
    "serial": {"port": str, "baud": int, "bytesize": int, "parity": str,
               "stopbits": (int, float), "terminator": str, "ack_nak": bool,
               "timeout_ms": (int, float)},
    "ble": {"address": str, "name": str, "characteristic": str, "terminator": str,
            "timeout_ms": (int, float), "transport": str, "adapter": str,
            "scan_timeout_s": (int, float), "connect_timeout_s": (int, float),
            "backoff_min_s": (int, float), "backoff_max_s": (int, float)},
    "symbology": {"aim": bool},
}  # fmt: skip


class ProfileError(ValueError):
    pass


@dataclass(frozen=True)
class ScannerProfile:
    path: Path
    name: str
    interface: str
    sections: dict[str, dict[str, Any]]

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.sections.get(name, {}))


def load_profile(path: Path | str) -> ScannerProfile:
    file = Path(path)
    if not file.is_absolute() and not file.exists():
        file = PROFILE_DIR / (str(path) if str(path).endswith(".toml") else f"{path}.toml")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{file}: cannot read scanner profile: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{file}: not valid TOML: {exc}") from None
    interface = data.pop("interface", None)
    name = data.pop("name", file.stem)
    if interface not in ("evdev", "serial", "ble"):
        raise ProfileError(f"{file}: interface: must be evdev, serial or ble, got {interface!r}")
    sections: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        allowed = SECTIONS.get(key)
        if allowed is None or not isinstance(value, dict):
            raise ProfileError(
                f"{file}: {key}: unknown key (allowed: name, interface, {', '.join(SECTIONS)})"
            )
        for sub, item in value.items():
            kind = allowed.get(sub)
            if kind is None:
                raise ProfileError(
                    f"{file}: {key}.{sub}: unknown key (allowed: {', '.join(allowed)})"
                )
            if (isinstance(item, bool) and kind is not bool) or not isinstance(item, kind):
                raise ProfileError(f"{file}: {key}.{sub}: wrong type {type(item).__name__}")
        sections[key] = value
    kb = sections.get("keyboard", {})
    if kb.get("layout", "us") not in LAYOUTS:
        raise ProfileError(f"{file}: keyboard.layout: use one of {', '.join(LAYOUTS)}")
    if kb.get("suffix", "enter") not in SUFFIXES:
        raise ProfileError(f"{file}: keyboard.suffix: use one of {', '.join(SUFFIXES)}")
    if interface == "evdev" and not sections.get("match"):
        raise ProfileError(f"{file}: match: an evdev scanner needs usb_id, by_id or name")
    if interface == "serial" and "port" not in sections.get("serial", {}):
        raise ProfileError(f"{file}: serial.port: required for a serial scanner")
    ble = sections.get("ble", {})
    if interface == "ble" and not (ble.get("address") or ble.get("name")):
        raise ProfileError(f"{file}: ble: a BLE scanner needs its address or its name")
    profile = ScannerProfile(file, str(name), interface, sections)
    try:
        build_scanner(profile, "check")  # every value checked now, not at first use
    except ValueError as exc:
        raise ProfileError(f"{file}: {exc}") from None
    return profile


def build_scanner(profile: ScannerProfile, scanner_id: str) -> Any:
    """The driver object for a profile (EvdevScanner, SerialScanner or BleScanner)."""
    if profile.interface == "evdev":
        from drivers.scanners.evdev_source import DeviceMatch, EvdevScanner
        from drivers.scanners.wedge import WedgeSettings

        settings = WedgeSettings(**profile.section("keyboard"))
        return EvdevScanner(scanner_id, DeviceMatch(**profile.section("match")), settings)
    if profile.interface == "serial":
        from drivers.scanners.serial_scanner import SerialScanner, SerialSettings

        return SerialScanner(scanner_id, SerialSettings(**profile.section("serial")))
    from drivers.scanners.ble import BleScanner, BleSettings

    return BleScanner(scanner_id, BleSettings(**profile.section("ble")))


def requires_aim(profile: ScannerProfile) -> bool:
    return bool(profile.section("symbology").get("aim", False))

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
    port = "/dev/scanner-serial"
    baud = 9600
    bytesize = 8
    parity = "N"
    stopbits = 1
    terminator = "cr"                   # cr lf crlf none
    ack_nak = false
    [symbology]
    aim = false                         # the scanner prefixes AIM ids (]E0 …)

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
    "ble": {"address": str, "name": str, "characteristic": str, "terminator": str},
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
    return ScannerProfile(file, str(name), interface, sections)


def build_scanner(profile: ScannerProfile, scanner_id: str) -> Any:
    """The driver object for a profile (EvdevScanner, SerialScanner or BleScanner)."""
    if profile.interface == "evdev":
        from drivers.scanners.evdev_source import DeviceMatch, EvdevScanner
        from drivers.scanners.wedge import WedgeDecoder, WedgeSettings

        decoder = WedgeDecoder(scanner_id, WedgeSettings(**profile.section("keyboard")))
        return EvdevScanner(scanner_id, DeviceMatch(**profile.section("match")), decoder)
    if profile.interface == "serial":
        from drivers.scanners.serial_scanner import SerialScanner, SerialSettings

        return SerialScanner(scanner_id, SerialSettings(**profile.section("serial")))
    raise ProfileError(f"{profile.path}: BLE scanners are built with drivers.scanners.ble")

"""What a scanner driver produces: one decoded scan and who sent it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScanEvent:
    scanner_id: str  # the profile/instance name, e.g. "front-wedge"
    data: str  # the decoded code, suffix removed (GS kept for GS1)
    at: float  # device timestamp (evdev) or monotonic time of the last byte
    source: str  # "evdev", "serial", "ble" or "replay"
    device: str = ""  # which device of that scanner: event node, port or BLE address

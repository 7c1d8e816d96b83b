"""Start the counter's peripherals named in the config and connect them to the register.

Scanners: every profile in ``scanners.profiles`` becomes a driver; each scan goes
through ``appliance.scan.apply_scan`` on the register's thread, exactly like a scan
typed into the sell screen. A scan that is refused (misread, unknown code) is logged
and the scanner keeps going.
"""

from __future__ import annotations

import logging
from pathlib import Path

from appliance.config import Config
from appliance.service import RegisterService
from drivers.scanners.events import ScanEvent
from drivers.scanners.manager import ScannerManager

log = logging.getLogger(__name__)


async def start_scanners(config: Config, service: RegisterService) -> ScannerManager:
    from appliance.scan import apply_scan

    async def on_scan(scan: ScanEvent) -> None:
        result = await service.call(apply_scan, scan.data)
        log.info("scan %r from %s: %s", scan.data, scan.scanner_id, result["action"])

    manager = ScannerManager(on_scan)
    if config.scanners.profiles:
        from drivers.scanners.profiles import build_scanner, load_profile

        for name in config.scanners.profiles:
            profile = load_profile(name)
            manager.add(build_scanner(profile, Path(name).stem))
    return manager

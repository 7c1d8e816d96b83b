"""Start the counter's peripherals named in the config and connect them to the register.

Scanners: every profile in ``scanners.profiles`` becomes a driver; each scan goes
through ``appliance.scan.apply_scan`` on the register's thread, exactly like a scan
typed into the sell screen. A scan that is refused (misread, unknown code) is logged
and the scanner keeps going.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.config import Config
from appliance.service import RegisterService
from drivers.scanners.events import ScanEvent
from drivers.scanners.manager import ScannerManager

if TYPE_CHECKING:
    from drivers.scanners.profiles import ScannerProfile

log = logging.getLogger(__name__)


def scan_handler(service: RegisterService) -> Callable[[ScanEvent], Awaitable[None]]:
    """What a scanner's scan does: apply it on the register's thread; returns once the
    resulting line (or customer, or refund) is durably committed."""
    from appliance.scan import apply_scan

    async def on_scan(scan: ScanEvent) -> None:
        result = await service.call(apply_scan, scan.data)
        log.info("scan %r from %s: %s", scan.data, scan.scanner_id, result["action"])

    return on_scan


def scanners_status(manager: ScannerManager) -> list[dict[str, Any]]:
    """Each scanner's state (for GET /api/scanners and the admin panel)."""
    return [
        {
            "scanner_id": sid,
            "running": not task.done(),
            "error": manager.errors.get(sid),
            "last_scan": manager.last[sid].data if sid in manager.last else None,
            "device": manager.last[sid].device if sid in manager.last else None,
            "rejected": manager.rejected.get(sid, 0),
            "noise": manager.noise(sid),
        }
        for sid, task in manager.tasks.items()
    ]


async def start_scanners(config: Config, service: RegisterService) -> ScannerManager:
    manager = ScannerManager(scan_handler(service))
    _add_configured(manager, config)
    return manager


def _add_configured(manager: ScannerManager, config: Config) -> None:
    if config.scanners.profiles:
        from drivers.scanners.profiles import build_scanner, requires_aim

        for scanner_id, profile in scanner_profiles(config).items():
            manager.add(build_scanner(profile, scanner_id), aim=requires_aim(profile))


async def redetect_scanners(manager: ScannerManager, config: Config) -> list[dict[str, Any]]:
    """Stop every scanner and start them again from ``config``: each looks for its
    device afresh (a scanner plugged in since, a new layout from the settings page)."""
    await manager.stop()
    manager.scanners.clear()
    manager.errors.clear()
    try:
        _add_configured(manager, config)
    except Exception as exc:  # a bad profile: say so on the page, keep the register up
        manager.errors["profiles"] = str(exc)
    return scanners_status(manager)


def scanner_profiles(config: Config) -> dict[str, ScannerProfile]:
    """The configured scanner profiles by scanner id (the profile's file name), loaded
    and checked; a bad one raises ProfileError naming the file and the key. Paths are
    relative to the config file's folder, names are looked up in firmware_configs."""
    from drivers.scanners.profiles import ProfileError, load_profile

    profiles: dict[str, ScannerProfile] = {}
    for name in config.scanners.profiles:
        path = Path(name)
        if not path.is_absolute() and config.source not in ("<defaults>", "<dict>"):
            beside = Path(config.source).parent / path
            path = beside if beside.exists() else path
        if path.stem in profiles:
            raise ProfileError(
                f"{config.source}: scanners.profiles: two profiles named {path.stem!r}"
            )
        profile = load_profile(path)
        layout = config.scanners.layouts.get(path.stem)
        if layout is not None and profile.interface == "evdev":
            # The settings page's layout for this scanner wins over the profile file's.
            sections = {
                **profile.sections,
                "keyboard": {**profile.section("keyboard"), "layout": layout},
            }
            profile = replace(profile, sections=sections)
        profiles[path.stem] = profile
    terminal = config.payments.terminal.removeprefix("serial:")
    if config.payments.terminal.startswith("serial:"):
        for stem, profile in profiles.items():
            port = profile.section("serial").get("port")
            if profile.interface == "serial" and port and same_device(port, terminal):
                raise ProfileError(
                    f"{profile.path}: serial.port {port} is the card terminal's port "
                    f"(payments.terminal = {config.payments.terminal!r}): scanner {stem!r} "
                    "would take the terminal's bytes; name the scanner's own port"
                )
    return profiles


def same_device(port: str, terminal: str) -> bool:
    """A scanner's port (a path or a glob) names the terminal's device: the same path,
    or a link to the same node (a generic USB-serial adapter has several names:
    ttyUSB0, /dev/serial/by-*, udev's /dev/appliance/serial-*)."""
    import glob

    candidates = glob.glob(port) if any(c in port for c in "*?[") else [port]
    target = Path(terminal)
    return port == terminal or any(
        c == terminal or (target.exists() and Path(c).exists() and Path(c).samefile(target))
        for c in candidates
    )

"""The register's HTTP server: uvicorn, plus READY and watchdog keep-alives for systemd.

Kept apart from ``appliance.commands.run`` so that other sub-commands do not import
uvicorn (every command module is imported to build the CLI).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import uvicorn

from appliance.service import RegisterService
from appliance.systemd_notify import Notifier, watchdog_loop

log = logging.getLogger(__name__)
# How long READY waits for configured scanners to read their devices.
SCANNER_WAIT_S = 10.0


class NotifyingServer(uvicorn.Server):
    """uvicorn's server that tells systemd once the register can take a scan.

    ``startup`` returns after the app's lifespan start (register open, scanners and
    features started) and with the socket listening; READY follows once every
    configured scanner reads its device (keys typed before that are lost), or after
    ``SCANNER_WAIT_S`` with the missing ones named — scans from the sell screen work
    either way. From then on the watchdog task pings systemd while the loop and the
    register's thread answer.
    """

    def __init__(self, config: uvicorn.Config, ready_status: str, service: RegisterService) -> None:
        super().__init__(config)
        self.notifier = Notifier()
        self.ready_status = ready_status
        self.service = service
        self.watchdog: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.started or self.should_exit:
            return
        service = self.service
        status = self.ready_status
        missing = await scanners_listening(self.config.app, SCANNER_WAIT_S)
        if missing:
            status += f"; scanners not found: {', '.join(missing)}"
            log.warning("ready without scanner(s) %s: no matching device", ", ".join(missing))
        self.notifier.ready(status)
        self.watchdog = asyncio.create_task(
            watchdog_loop(self.notifier, lambda: service.call(_noop)), name="sd-watchdog"
        )

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.notifier.stopping()
        if self.watchdog is not None:
            self.watchdog.cancel()
        await super().shutdown(sockets=sockets)


async def scanners_listening(app: Any, timeout: float) -> list[str]:
    """Wait until every scanner of the app reads its device; the ids that do not in time."""
    manager = getattr(app.state, "scanners", None)
    events = {sid: s.listening for sid, s in getattr(manager, "scanners", {}).items()
              if isinstance(getattr(s, "listening", None), asyncio.Event)}  # fmt: skip
    if not events:
        return []
    waits = {sid: asyncio.ensure_future(event.wait()) for sid, event in events.items()}
    await asyncio.wait(waits.values(), timeout=timeout)
    for task in waits.values():
        task.cancel()
    return sorted(sid for sid, event in events.items() if not event.is_set())


def _noop(register: Any) -> None:
    """The watchdog's probe: proves the register's DB thread takes work."""

"""The register's HTTP server: uvicorn, plus READY and watchdog keep-alives for systemd.

Kept apart from ``appliance.commands.run`` so that other sub-commands do not import
uvicorn (every command module is imported to build the CLI).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn

from appliance.service import RegisterService
from appliance.systemd_notify import Notifier, watchdog_loop


class NotifyingServer(uvicorn.Server):
    """uvicorn's server that tells systemd once the register can take a scan.

    ``startup`` returns after the app's lifespan start (register open, scanners and
    features started) and with the socket listening: that is READY. From then on the
    watchdog task pings systemd while the loop and the register's thread answer.
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
        self.notifier.ready(self.ready_status)
        self.watchdog = asyncio.create_task(
            watchdog_loop(self.notifier, lambda: service.call(_noop)), name="sd-watchdog"
        )

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.notifier.stopping()
        if self.watchdog is not None:
            self.watchdog.cancel()
        await super().shutdown(sockets=sockets)


def _noop(register: Any) -> None:
    """The watchdog's probe: proves the register's DB thread takes work."""

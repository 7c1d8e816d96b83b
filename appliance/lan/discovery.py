"""Finding the store's other registers: DNS-SD over multicast DNS (zeroconf).

Each register advertises ``<store>-<register>._register-sync._tcp.local.`` with its
sync port and TXT records for the store, register id and name, app version, sync
protocol and store key id (which key, never the key). It browses the same type and
reports every register of its own store it resolves. Where multicast is blocked the
static peer list (``lan.peers``) does the same job.

zeroconf is imported here only, inside ``start``: the register's cold start does not
pay for it when LAN sync is off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

SERVICE_TYPE = "_register-sync._tcp.local."

Found = Callable[[dict[str, Any]], None]


def local_addresses(pinned: list[str]) -> list[str]:
    """The IPv4 addresses to advertise: the pinned ones, else every non-loopback one."""
    if pinned:
        return list(pinned)
    import ifaddr

    out = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ip.ip.startswith("127."):
                out.append(ip.ip)
    return out


class Discovery:
    def __init__(self, txt: dict[str, str], port: int, interfaces: list[str], found: Found) -> None:
        self.txt = txt
        self.port = port
        self.interfaces = interfaces
        self.found = found
        self._zc: Any = None
        self._browser: Any = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def instance(self) -> str:
        return f"{self.txt['store']}-{self.txt['register']}.{SERVICE_TYPE}"

    async def start(self) -> None:
        from zeroconf import InterfaceChoice, IPVersion
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

        interfaces: Any = self.interfaces or InterfaceChoice.All
        self._zc = AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
        info = AsyncServiceInfo(
            SERVICE_TYPE,
            self.instance,
            parsed_addresses=local_addresses(self.interfaces),
            port=self.port,
            properties=self.txt,
            server=f"{self.txt['store']}-{self.txt['register']}.local.",
        )
        await self._zc.async_register_service(info, allow_name_change=False)
        self._browser = AsyncServiceBrowser(
            self._zc.zeroconf, SERVICE_TYPE, handlers=[self._on_change]
        )

    def _on_change(self, zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        if state_change.name in ("Added", "Updated") and name != self.instance:
            task = asyncio.ensure_future(self._resolve(service_type, name))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _resolve(self, service_type: str, name: str) -> None:
        from zeroconf.asyncio import AsyncServiceInfo

        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(self._zc.zeroconf, 3000):
            return
        txt = {
            k.decode(errors="replace"): (v or b"").decode(errors="replace")
            for k, v in info.properties.items()
        }
        addresses = info.parsed_addresses()
        if not addresses or info.port is None:
            return
        self.found({**txt, "host": addresses[0], "port": info.port})

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._zc is not None:
            await self._zc.async_unregister_all_services()
            await self._zc.async_close()

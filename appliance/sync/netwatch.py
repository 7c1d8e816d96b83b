"""Noticing network changes (a cable plugged in, an address or route added) at once.

A netlink socket subscribed to link, address and route changes; any message means
"the network changed", and the sync engine probes the back office right away instead
of waiting for its backoff. Linux only; elsewhere (or without netlink) it does
nothing and the backoff probes still bring the register back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV6_ROUTE = 0x400
GROUPS = (
    RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE
)


class NetworkWatcher:
    def __init__(self, on_change: Callable[[], None]) -> None:
        self.on_change = on_change
        self.sock: socket.socket | None = None

    def start(self) -> bool:
        """Start watching on the running loop; False where netlink is not available."""
        family = getattr(socket, "AF_NETLINK", None)
        if family is None:
            return False
        try:
            sock = socket.socket(family, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            sock.bind((0, GROUPS))
            sock.setblocking(False)
        except OSError as exc:
            log.info("network changes not watched (netlink: %s)", exc)
            return False
        self.sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
        return True

    def _readable(self) -> None:
        assert self.sock is not None
        changed = False
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self.sock.recv(65536):
                changed = True
        if changed:
            self.on_change()

    def stop(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

"""Tell systemd when the register can take a scan, and that it still can (sd_notify).

The register runs as a ``Type=notify`` service with ``WatchdogSec``. systemd counts
it started only when it sends ``READY=1`` — after the app's start-up (register open,
scanners and features started) and with the HTTP socket listening — so units ordered
after it, and the kiosk, see a register that answers. While it runs, a task on the
event loop sends ``WATCHDOG=1`` at half the watchdog interval, but only after the
register's DB thread has answered a no-op call: a blocked event loop or a stuck DB
thread stops the keep-alives, and systemd kills and restarts the service.

The protocol is a datagram per message on the unix socket named by
``$NOTIFY_SOCKET`` (``@name`` is the abstract namespace); no library is needed.
Outside systemd (no ``$NOTIFY_SOCKET``) every call does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping

log = logging.getLogger(__name__)


class Notifier:
    """One service's channel to systemd; a no-op when not started by systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        self.address: str | bytes | None = None
        if raw.startswith("@"):
            self.address = b"\0" + raw[1:].encode()
        elif raw.startswith("/"):
            self.address = raw
        self.watchdog_s = _watchdog_seconds(env)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines as one datagram; False when it could not be sent."""
        if self.address is None:
            return False
        message = "\n".join(assignments).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, self.address)
        except OSError as exc:  # systemd gone or socket unreachable: keep running
            log.warning("sd_notify to %r failed: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def stopping(self, status: str = "stopping") -> bool:
        return self.send("STOPPING=1", f"STATUS={status}")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def keep_alive(self) -> bool:
        return self.send("WATCHDOG=1")


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """The watchdog interval systemd set for this process, or None.

    ``WATCHDOG_PID``, when present, names the process the watchdog is meant for; a
    child that inherited the environment must not answer for its parent.
    """
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000


async def watchdog_loop(
    notifier: Notifier,
    probe: Callable[[], Awaitable[object]],
    interval_s: float | None = None,
) -> None:
    """Send ``WATCHDOG=1`` every half interval while the loop runs and ``probe`` answers.

    ``probe`` gets a quarter of the interval to answer; one that does not (a stuck DB
    thread) or that fails means no keep-alive this round, so consecutive keep-alives
    are never more than three quarters of the interval apart while all is well. Runs
    until cancelled; returns at once when there is no watchdog.
    """
    interval = interval_s if interval_s is not None else notifier.watchdog_s
    if interval is None or not notifier.enabled:
        return
    loop = asyncio.get_running_loop()
    missed = 0
    while True:
        started = loop.time()
        try:
            await asyncio.wait_for(probe(), timeout=interval / 4)
        except Exception as exc:  # TimeoutError or the probe's own failure
            missed += 1
            log.warning("watchdog: register did not answer (%s); no keep-alive",
                        str(exc) or type(exc).__name__)  # fmt: skip
        else:
            if missed:
                log.info("watchdog: register answers again after %d missed rounds", missed)
                missed = 0
            notifier.keep_alive()
        await asyncio.sleep(max(0.0, started + interval / 2 - loop.time()))

"""The register's one card terminal: where it is, the ZVT connection, its host link.

``terminal`` in the config: "simulated" starts the ZVT terminal simulator in this
process on a loopback port (the quick start's default), "tcp:HOST:PORT" and
"serial:/dev/…" reach a real terminal, "" means none. The connection is opened when
first needed (with a registration, 06 00) and dropped when a conversation breaks, so
the next use reconnects. ``lock`` serializes everything that talks to the terminal:
one payment, resolution, forward or end-of-day at a time.

The host link state is what the terminal last said: the TLV online flag of a status
enquiry or a payment, or a result code that means "no host" (communication errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from appliance.config import PaymentsSection
from appliance.errors import ApplianceError

if TYPE_CHECKING:
    from drivers.zvt.client import TransactionResult, ZvtClient

log = logging.getLogger("appliance.payments")

T = TypeVar("T")

# Result codes by which a terminal says it could not reach its host.
HOST_UNREACHABLE = {0x7D, 0x9B, 0xA0, 0xA1, 0xA3}


class TerminalUnavailable(ApplianceError):
    """The register cannot talk to its card terminal (none configured, unreachable)."""

    code = "terminal_unavailable"
    http_status = 503


class TerminalLink:
    def __init__(self, cfg: PaymentsSection) -> None:
        self.cfg = cfg
        self.address = cfg.terminal
        self.lock = asyncio.Lock()
        self.client_: ZvtClient | None = None
        self.terminal_id: str | None = None
        self.host_online: bool | None = None
        self.checked_at: float | None = None  # loop time of the last word on the host link
        self.last_error: str | None = None
        self.sim: Any = None  # the SimTerminal when the terminal is simulated
        self._sim_server: asyncio.Server | None = None
        self._target: tuple[str, str] | None = None  # ("tcp", "host:port") / ("serial", path)

    @property
    def configured(self) -> bool:
        return bool(self.address)

    @property
    def connected(self) -> bool:
        return self.client_ is not None

    async def start(self) -> None:
        if self.address == "simulated" and self._sim_server is None:
            from hil.zvt_sim.server import bound_address, serve_tcp
            from hil.zvt_sim.terminal import SimTerminal

            self.sim = SimTerminal(password=self.cfg.password, encoding=self.cfg.encoding)
            self._sim_server, _ = await serve_tcp(self.sim, "127.0.0.1", 0)
            host, port = bound_address(self._sim_server)
            self._target = ("tcp", f"{host}:{port}")
            log.info("card terminal: simulated, on %s:%s", host, port)
        elif self.address.startswith("tcp:"):
            self._target = ("tcp", self.address[4:])
        elif self.address.startswith("serial:"):
            self._target = ("serial", self.address[7:])

    async def close(self) -> None:
        """Log off (06 02) politely, then close; a terminal that does not answer is left."""
        if self.client_ is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client_.log_off(), self.cfg.t3_seconds)
        await self.drop()
        if self._sim_server is not None:
            self._sim_server.close()
            self._sim_server = None

    async def drop(self) -> None:
        client, self.client_ = self.client_, None
        if client is not None:
            try:
                await client.close()
            except Exception as exc:  # a broken link may fail to close; it is gone anyway
                log.debug("closing the terminal link: %s", exc)

    async def client(self) -> ZvtClient:
        """The connected, registered client; connects (and registers) when needed."""
        if self.client_ is not None:
            return self.client_
        if self._target is None:
            raise TerminalUnavailable(
                "no card terminal is configured (payments.terminal): take another tender",
                field="terminal",
            )
        from drivers.zvt.client import APPROVED, ZvtClient
        from drivers.zvt.errors import ZvtError
        from drivers.zvt.transport import ZvtTimeouts, open_serial, open_tcp

        timeouts = ZvtTimeouts(t3=self.cfg.t3_seconds, t4=self.cfg.t4_seconds)
        kind, where = self._target
        try:
            if kind == "tcp":
                host, _, port = where.rpartition(":")
                transport: Any = await open_tcp(
                    host, int(port), timeouts, connect_timeout=self.cfg.t3_seconds
                )
            else:
                transport = await open_serial(where, self.cfg.baudrate, timeouts)
            client = ZvtClient(
                transport,
                password=self.cfg.password,
                currency=self.cfg.currency,
                encoding=self.cfg.encoding,
            )
            res = await client.register()
        except ZvtError as exc:
            self.last_error = why(exc)
            raise TerminalUnavailable(
                f"card terminal {self.address} is not reachable: {why(exc)}",
                field="terminal",
            ) from exc
        if res.outcome != APPROVED:
            await client.close()
            self.last_error = res.message
            raise TerminalUnavailable(
                f"card terminal {self.address} refused the register: {res.message}",
                field="terminal",
            )
        self.client_ = client
        self.terminal_id = client.terminal_id or self.terminal_id
        self.last_error = None
        return client

    async def call(self, fn: Callable[[ZvtClient], Awaitable[T]]) -> T:
        """Run one conversation; a broken one drops the connection (the next reconnects)."""
        from drivers.zvt.errors import ZvtError

        client = await self.client()
        try:
            return await fn(client)
        except ZvtError as exc:
            self.last_error = why(exc)
            await self.drop()
            raise

    def note(self, res: TransactionResult, loop_time: float) -> None:
        """Learn the host link state from a terminal's answer."""
        online: bool | None = None
        flag = _online_flag(res)
        if flag is not None:
            online = flag
        elif res.offline or res.result_code in HOST_UNREACHABLE:
            online = False
        elif res.approved and res.command in ("06 01", "06 31", "06 70", "06 51", "06 50"):
            online = True
        if online is not None:
            self.host_online = online
            self.checked_at = loop_time

    def fresh(self, loop_time: float) -> bool:
        return (
            self.checked_at is not None
            and loop_time - self.checked_at <= self.cfg.link_check_seconds
        )


def why(exc: ApplianceError) -> str:
    """The underlying reason of a terminal error (a broken conversation names its cause)."""
    cause = getattr(exc, "cause", None)
    return cause.message if isinstance(cause, ApplianceError) else exc.message


def _online_flag(res: TransactionResult) -> bool | None:
    """The TLV online flag (1F11) of the last status information, if the terminal sent one."""
    for item in res.status_info.get("tlv", []):
        if item.get("tag") == "1F11" and "int" in item:
            return bool(item["int"])
    return None

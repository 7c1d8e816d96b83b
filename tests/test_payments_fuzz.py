"""Bad bytes on the terminal link never leave a payment inconsistent with the terminal.

Over TCP the link is cut after every possible number of bytes of a payment (ZVT over
TCP has no checksum, so a cut is the damage it can suffer); over a serial line (a real
pty) frames are corrupted, truncated, NAKed and buried in noise. Whatever happens, the
register ends with the terminal's truth: approved exactly when the terminal charged
the card (then exactly one card tender), otherwise nothing charged and no tender.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hil.zvt_sim.server import PtyTerminal, bound_address, serve_tcp
from hil.zvt_sim.terminal import SimTerminal
from tests.payments_kit import Rig, register_app, run

FUZZ = {"t3_seconds": 0.5, "t4_seconds": 1.0}


class CuttingProxy:
    """Loopback TCP proxy to the terminal. ``cut_after = n`` cuts the live connection
    once the terminal has sent n more bytes through it; the register reconnects."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.cut_after: int | None = None
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        host, port = bound_address(self.server)
        return f"tcp:{host}:{port}"

    async def _client(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        tr, tw = await asyncio.open_connection(*self.target)

        def close() -> None:
            for writer in (w, tw):
                writer.close()

        async def to_terminal() -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while chunk := await r.read(4096):
                    tw.write(chunk)
                    await tw.drain()
            close()

        async def to_register() -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while chunk := await tr.read(4096):
                    budget = self.cut_after
                    if budget is not None and len(chunk) >= budget:
                        self.cut_after = None
                        w.write(chunk[:budget])
                        await w.drain()
                        break
                    if budget is not None:
                        self.cut_after = budget - len(chunk)
                    w.write(chunk)
                    await w.drain()
            close()

        await asyncio.gather(to_terminal(), to_register())


@contextlib.asynccontextmanager
async def proxied(tmp_path: Path) -> AsyncIterator[tuple[Rig, CuttingProxy]]:
    sim = SimTerminal()
    server, _ = await serve_tcp(sim, "127.0.0.1", 0)
    proxy = CuttingProxy(bound_address(server))
    address = await proxy.start()
    try:
        async with register_app(tmp_path, address, sim, **FUZZ) as rig:
            yield rig, proxy
    finally:
        server.close()
        if proxy.server is not None:
            proxy.server.close()


async def consistent(rig: Rig, sale_id: str, payment: dict[str, Any], charged_before: int) -> int:
    """The payment agrees with the terminal's journal; returns the terminal's charge count."""
    if payment["state"] == "unknown":  # the background task asks again
        payment = await rig.until(
            f"/api/payments/{payment['id']}", lambda d: d["state"] != "unknown", 5
        )
    charged = [t for t in rig.sim.journal if t.kind == "payment" and t.approved]
    sale = await rig.get_sale(sale_id)
    cards = [t for t in sale["tenders"] if t["kind"] == "card"]
    assert len(charged) - charged_before in (0, 1), "charged twice"
    if payment["state"] == "approved":
        assert len(charged) == charged_before + 1, f"approved without a charge: {payment}"
        assert len(cards) == 1 and cards[0]["payment_id"] == payment["id"]
        assert sale["status"] == "completed"
    else:
        assert payment["state"] in ("declined", "aborted"), payment
        assert len(charged) == charged_before, f"charged but {payment['state']}: {payment}"
        assert cards == [] and sale["status"] == "open"
    return len(charged)


def test_link_cut_after_any_byte_of_a_payment(tmp_path: Path) -> None:
    async def body() -> None:
        async with proxied(tmp_path) as (rig, proxy):
            # The length of a whole payment as the terminal sends it.
            first = await rig.sale("COFFEE")
            await rig.pay(first["id"])
            full = 0
            for line in rig.sim.journal[-1:]:
                full = 60 + 30 * len(rig.sim._slip(line))
            charged = 1
            outcomes, resolved = set(), 0
            for i, cut in enumerate(range(0, full, max(1, full // 40))):
                sale = await rig.sale("BEER")
                proxy.cut_after = cut
                # The terminal finishes a payment even when the register's link is gone.
                p = await rig.pay(sale["id"], "approve" if i % 2 else "decline:05")
                charged = await consistent(rig, sale["id"], p, charged)
                done = await rig.ok("GET", f"/api/payments/{p['id']}")
                outcomes.add(done["state"])
                resolved += done["resolution"] is not None
                if done["state"] != "approved":  # not charged: paying again works
                    again = await rig.pay(sale["id"], "approve")
                    charged = await consistent(rig, sale["id"], again, charged)
            assert outcomes == {"approved", "declined"}
            assert 0 < resolved < 40  # cuts before the end were resolved with the terminal

    run(body(), 60)


SERIAL_FAULTS = {
    "bad-crc": {"corrupt": 1},
    "bad-crc-and-nak": {"corrupt": 2, "nak": 1},
    "truncated-frames": {"truncate": 2},
    "garbage-between-frames": {"garbage": b"\xaa\x10\x55\x06\x15", "garbage_frames": 4},
    "all-at-once": {"nak": 3, "corrupt": 1, "garbage": b"\x10\x10\x02\xff", "garbage_frames": 2},
    "nak-past-the-retries": {"nak": 5},  # the register's command never gets through
}


@pytest.mark.parametrize("faults", SERIAL_FAULTS.values(), ids=SERIAL_FAULTS.keys())
def test_serial_line_noise_during_a_payment(tmp_path: Path, faults: dict[str, Any]) -> None:
    async def body() -> None:
        sim = SimTerminal()
        pty = PtyTerminal(sim)
        pty.start()
        try:
            async with register_app(
                tmp_path,
                f"serial:{pty.path}",
                sim,
                t3_seconds=1.0,
                t4_seconds=1.5,
                link_check_seconds=60,
            ) as rig:
                sale = await rig.sale("COFFEE")
                await rig.ok("POST", "/api/payments/offline/forward")  # connect and register
                for key, value in faults.items():  # the faults hit the payment itself
                    setattr(sim.faults, key, value)
                p = await rig.pay(sale["id"], "approve,pin=0.1,interval=0.05")
                charged = await consistent(rig, sale["id"], p, 0)
                if charged == 0:
                    again = await rig.pay(sale["id"], "approve")
                    await consistent(rig, sale["id"], again, 0)
        finally:
            await pty.close()

    run(body(), 30)

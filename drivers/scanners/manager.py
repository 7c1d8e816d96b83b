"""Run several scanners at once and hand every scan, tagged by scanner, to one callback.

Each scanner runs in its own task, so a slow or failed scanner never holds up the
others; scans reach the callback one at a time per scanner, in the order read. A
scanner that stops with an error keeps its message for the status API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from appliance.barcodes.aim import split_aim
from drivers.scanners.events import ScanEvent

log = logging.getLogger(__name__)


class Scanner(Protocol):
    scanner_id: str

    def scans(self) -> AsyncIterator[ScanEvent]: ...


class ScannerManager:
    def __init__(self, on_scan: Callable[[ScanEvent], Awaitable[Any]]) -> None:
        self.on_scan = on_scan
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.scanners: dict[str, Scanner] = {}
        self.last: dict[str, ScanEvent] = {}
        self.errors: dict[str, str] = {}
        self.rejected: dict[str, int] = {}  # scans dropped here (no AIM id where required)

    def add(self, scanner: Scanner, aim: bool = False) -> None:
        """Start ``scanner``. With ``aim``, the scanner is set to prefix AIM identifiers,
        so a scan without one lost its beginning (or is not from the scanner) and is
        dropped."""
        sid = scanner.scanner_id
        if sid in self.tasks:
            raise ValueError(f"two scanners named {sid!r}: give each profile its own file name")
        self.scanners[sid] = scanner
        self.rejected[sid] = 0
        self.tasks[sid] = asyncio.create_task(self._run(scanner, aim), name=f"scanner-{sid}")

    async def _run(self, scanner: Scanner, aim: bool) -> None:
        try:
            async for scan in scanner.scans():
                if aim and split_aim(scan.data)[0] is None:
                    self.rejected[scanner.scanner_id] += 1
                    log.warning(
                        "scan %r from %s dropped: the profile says the scanner sends an AIM "
                        "identifier and this one has none", scan.data, scan.scanner_id,
                    )  # fmt: skip
                    continue
                self.last[scan.scanner_id] = scan
                try:
                    await self.on_scan(scan)
                except Exception as exc:  # a refused scan must not stop the scanner
                    log.info("scan %r from %s refused: %s", scan.data, scan.scanner_id, exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.errors[scanner.scanner_id] = str(exc)
            log.error("scanner %s stopped: %s", scanner.scanner_id, exc)

    def noise(self, scanner_id: str) -> int | None:
        """Frames a serial or BLE scanner threw away as noise (None for keyboard wedges)."""
        framer = getattr(self.scanners.get(scanner_id), "framer", None)
        return None if framer is None else int(framer.noise)

    async def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks.clear()

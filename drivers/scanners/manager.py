"""Run several scanners at once and hand every scan, tagged by scanner, to one callback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from drivers.scanners.events import ScanEvent

log = logging.getLogger(__name__)


class Scanner(Protocol):
    scanner_id: str

    def scans(self) -> AsyncIterator[ScanEvent]: ...


class ScannerManager:
    def __init__(self, on_scan: Callable[[ScanEvent], Awaitable[Any]]) -> None:
        self.on_scan = on_scan
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.last: dict[str, ScanEvent] = {}
        self.errors: dict[str, str] = {}

    def add(self, scanner: Scanner) -> None:
        self.tasks[scanner.scanner_id] = asyncio.create_task(
            self._run(scanner), name=f"scanner-{scanner.scanner_id}"
        )

    async def _run(self, scanner: Scanner) -> None:
        try:
            async for scan in scanner.scans():
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

    async def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks.clear()

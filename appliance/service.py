"""The register as an asyncio service: one thread owns SQLite, the event loop never blocks.

Every call runs on a single dedicated worker thread, in order, so requests from the
HTTP API, the scanners and sync are serialized exactly like a cashier's keystrokes
and fsync time is spent off the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from appliance.config import Config
from appliance.register import Register

P = ParamSpec("P")
T = TypeVar("T")

DEMO_CATALOG = Path(__file__).parent / "data" / "demo_catalog.csv"


class RegisterService:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="register-db"
        )
        self._register: Register | None = None

    @property
    def register(self) -> Register:
        if self._register is None:
            raise RuntimeError("register service not started")
        return self._register

    async def start(self) -> None:
        self._register = await self._run(Register, self.config)
        if self.config.demo.catalog:
            await self.call(load_demo_catalog)

    async def stop(self) -> None:
        if self._register is not None:
            await self._run(self._register.close)
            self._register = None
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(register, *args, **kwargs)`` on the register's thread."""
        return await self._run(fn, self.register, *args, **kwargs)


def load_demo_catalog(register: Register) -> int:
    """Load the shipped demo catalog once, on a register whose catalog is empty."""
    if register.state.product_count() > 0:
        return 0
    text = DEMO_CATALOG.read_text(encoding="utf-8")
    return register.import_catalog_csv(text, DEMO_CATALOG.name)

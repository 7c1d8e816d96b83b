"""The register as an asyncio service: one thread owns SQLite, the event loop never blocks.

Every call runs on a single dedicated thread, in arrival order, so requests from the
HTTP API, the scanners and sync are serialized exactly like a cashier's keystrokes,
and fsync time is spent off the loop. When requests queue up while one is being
written, the thread takes them together as a group commit: each in its own savepoint
(a failing one changes nothing), one fsync for the group, and no caller hears back
before that fsync has returned.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from appliance.config import Config
from appliance.errors import StorageUnavailable
from appliance.register import Register

T = TypeVar("T")

DEMO_CATALOG = Path(__file__).parent / "data" / "demo_catalog.csv"
MAX_GROUP = 64

_Job = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class RegisterService:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._register: Register | None = None
        self.groups = 0  # group commits done (for benchmarks and diagnostics)
        # Run on the register's thread right after it opens, before any request:
        # features install their in-transaction hooks and listeners here.
        self.on_open: list[Callable[[Register], None]] = []

    @property
    def register(self) -> Register:
        if self._register is None:
            raise RuntimeError("register service not started")
        return self._register

    async def start(self) -> None:
        ready: asyncio.Future[Register] = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._worker, args=(loop, ready), name="register-db", daemon=True
        )
        self._thread.start()
        self._register = await ready
        if self.config.demo.catalog:
            await self.call(load_demo_catalog)

    async def stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
            self._thread = None
            self._register = None

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(register, *args, **kwargs)`` on the register's thread."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((functools.partial(fn, self.register, *args, **kwargs), loop, future))
        return await future

    # the register's thread -----------------------------------------------------
    def _worker(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[Register]) -> None:
        try:
            register = Register(self.config)
        except BaseException as exc:
            loop.call_soon_threadsafe(_settle, ready, None, exc)
            return
        try:
            for hook in self.on_open:
                hook(register)
        except BaseException as exc:
            register.close()
            loop.call_soon_threadsafe(_settle, ready, None, exc)
            return
        loop.call_soon_threadsafe(_settle, ready, register, None)
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                group = [job]
                while len(group) < MAX_GROUP:
                    try:
                        more = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        self._jobs.put(None)
                        break
                    group.append(more)
                self._run_group(register, group)
        finally:
            register.close()

    def _run_group(self, register: Register, group: list[_Job]) -> None:
        if len(group) == 1:
            fn, loop, future = group[0]
            try:
                result, error = fn(), None
            except BaseException as exc:
                result, error = None, exc
            loop.call_soon_threadsafe(_settle, future, result, error)
            return
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            with register.group_commit():
                for fn, _, _ in group:
                    if not register.conn.in_transaction:
                        # SQLite rolled the whole group back (e.g. disk full): stop here.
                        raise StorageUnavailable("storage failed: nothing was recorded")
                    try:
                        outcomes.append((fn(), None))
                    except Exception as exc:
                        outcomes.append((None, exc))
            self.groups += 1
        except BaseException as exc:  # the group's COMMIT failed: nobody succeeded
            outcomes = [(None, err or exc) for _, err in outcomes]
            outcomes += [(None, exc)] * (len(group) - len(outcomes))
        for (_, loop, future), (result, error) in zip(group, outcomes, strict=True):
            loop.call_soon_threadsafe(_settle, future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def load_demo_catalog(register: Register) -> int:
    """Load the shipped demo catalog once, on a register whose catalog is empty."""
    if register.state.product_count() > 0:
        return 0
    text = DEMO_CATALOG.read_text(encoding="utf-8")
    return register.import_catalog_csv(text, DEMO_CATALOG.name)

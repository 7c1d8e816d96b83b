"""How the register's optional parts plug into the app.

Printing, card payments, back-office sync, LAN sync and the web UI each live in their
own package and attach through one function, ``attach(ctx)``, in a module named
``feature``. That keeps ``api.py`` the core API, lets each feature be read on its own,
and keeps slow imports (python-escpos, zeroconf) out of start-up: a feature imports
its heavy parts inside the start callbacks it registers, not at module level.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from appliance.config import Config
from appliance.service import RegisterService

if TYPE_CHECKING:
    from fastapi import FastAPI

# Attach order is start order; stops run in reverse.
FEATURES = (
    "appliance.printing.feature",
    "appliance.payments.feature",
    "appliance.sync.feature",
    "appliance.lan.feature",
    "appliance.web.feature",
)

Hook = Callable[[], Awaitable[None]]
# Contributes a named section to the Z report: (name, section) or None to add nothing.
ShiftCloseHook = Callable[[], Awaitable[tuple[str, dict[str, Any]] | None]]


@dataclass
class Context:
    """What a feature gets to attach itself: the config, the service and the app."""

    config: Config
    service: RegisterService
    app: FastAPI
    starts: list[Hook] = field(default_factory=list)
    stops: list[Hook] = field(default_factory=list)
    shift_closes: list[ShiftCloseHook] = field(default_factory=list)

    def on_start(self, hook: Hook) -> None:
        """Run after the register is open (and the scanners started)."""
        self.starts.append(hook)

    def on_stop(self, hook: Hook) -> None:
        """Run before the register closes, in reverse attach order."""
        self.stops.append(hook)

    def on_shift_close(self, hook: ShiftCloseHook) -> None:
        """Run when a shift is about to close (e.g. the card terminal's end-of-day);
        the section it returns is stored in the Z report under its name."""
        self.shift_closes.append(hook)

    async def shift_close_sections(self) -> dict[str, Any]:
        sections: dict[str, Any] = {}
        for hook in self.shift_closes:
            named = await hook()
            if named is not None:
                sections[named[0]] = named[1]
        return sections


def attach_all(ctx: Context) -> None:
    for name in FEATURES:
        importlib.import_module(name).attach(ctx)

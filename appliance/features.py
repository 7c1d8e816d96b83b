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
from typing import TYPE_CHECKING

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


@dataclass
class Context:
    """What a feature gets to attach itself: the config, the service and the app."""

    config: Config
    service: RegisterService
    app: FastAPI
    starts: list[Hook] = field(default_factory=list)
    stops: list[Hook] = field(default_factory=list)

    def on_start(self, hook: Hook) -> None:
        """Run after the register is open (and the scanners started)."""
        self.starts.append(hook)

    def on_stop(self, hook: Hook) -> None:
        """Run before the register closes, in reverse attach order."""
        self.stops.append(hook)


def attach_all(ctx: Context) -> None:
    for name in FEATURES:
        importlib.import_module(name).attach(ctx)

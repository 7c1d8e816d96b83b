"""Sub-commands of the `hil` CLI, discovered like `appliance.commands`."""

from __future__ import annotations

import sys
from collections.abc import Coroutine
from typing import Any


def run_device(
    name: str, main: Coroutine[Any, Any, int], errors: tuple[type[Exception], ...]
) -> int:
    """Run a virtual device or proxy until it ends or Ctrl-C; ``errors`` become one
    stderr line naming the command, and exit status 2."""
    import asyncio  # here: every hil command imports this package, few run a device

    try:
        return asyncio.run(main)
    except KeyboardInterrupt:
        return 0
    except errors as exc:
        print(f"hil {name}: {exc}", file=sys.stderr)
        return 2

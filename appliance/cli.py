"""Entry point of the `appliance` command (register, back office and tools)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from appliance import commands
from appliance.cli_discovery import run


def main(argv: Sequence[str] | None = None) -> int:
    return run("appliance", "Point-of-sale register appliance", commands, argv)


if __name__ == "__main__":
    sys.exit(main())

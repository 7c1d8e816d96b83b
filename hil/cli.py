"""Entry point of the `hil` command (the hardware-in-the-loop rig)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from appliance.cli_discovery import run
from hil import commands


def main(argv: Sequence[str] | None = None) -> int:
    return run("hil", "Hardware-in-the-loop rig for the register appliance", commands, argv)


if __name__ == "__main__":
    sys.exit(main())

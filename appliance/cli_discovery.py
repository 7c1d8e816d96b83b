"""Build an argparse CLI from the command modules of a package.

Discovery keeps each feature's commands next to its code and avoids one big file
that every change must touch.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType


def build_parser(prog: str, description: str, package: ModuleType) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def run(prog: str, description: str, package: ModuleType, argv: Sequence[str] | None = None) -> int:
    parser = build_parser(prog, description, package)
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    result = handler(args)
    return int(result or 0)

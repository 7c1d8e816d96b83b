"""`appliance firstboot`: the first-boot file on the data partition becomes the config.

An appliance's register service does this itself on its first start (``appliance run
--first-boot FILE``); this command is the same step on its own, for installers and
for checking a file. See appliance/firstboot.py for the file and what is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "firstboot", help="write the register's config from the first-boot file (once)"
    )
    parser.add_argument(
        "--from", dest="source", metavar="FILE", required=True,
        help="first-boot TOML: the register config plus [pairing] code",
    )  # fmt: skip
    parser.add_argument(
        "--data-dir", metavar="DIR", required=True,
        help="where register.toml and pairing.toml go (the data partition)",
    )  # fmt: skip
    parser.set_defaults(handler=firstboot)


def firstboot(args: argparse.Namespace) -> int:
    return first_boot(Path(args.source), Path(args.data_dir))


def first_boot(source: Path, data_dir: Path) -> int:
    """Apply the first-boot file, report what happened; 1 (nothing written) when invalid."""
    from appliance.errors import ConfigError
    from appliance.firstboot import apply_first_boot

    try:
        result = apply_first_boot(source, data_dir)
    except ConfigError as exc:
        print(f"appliance firstboot: nothing written:\n{exc.message}", file=sys.stderr)
        return 1
    messages = {
        "configured": f"wrote {result.config_path} from {source}",
        "defaults": f"no {source}: wrote {result.config_path} with the defaults",
        "already-configured": f"{result.config_path} exists: nothing to do",
    }
    print(f"appliance firstboot: {messages[result.action]}", file=sys.stderr)
    if result.pairing_path is not None:
        print(f"appliance firstboot: pairing code kept in {result.pairing_path}", file=sys.stderr)
    return 0

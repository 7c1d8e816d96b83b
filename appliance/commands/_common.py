"""Options shared by the register's sub-commands (config file, data folder)."""

from __future__ import annotations

import argparse
import sys

from appliance.config import Config


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config file (default: $APPLIANCE_CONFIG, else built-in defaults)",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="override register.data_dir")


def load(args: argparse.Namespace) -> Config | None:
    """The validated config, or None after printing why it is invalid."""
    from appliance.config import load_config
    from appliance.errors import ConfigError

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"appliance: invalid configuration:\n{exc.message}", file=sys.stderr)
        return None
    if getattr(args, "data_dir", None):
        register = config.register.model_copy(update={"data_dir": args.data_dir})
        config = config.model_copy(update={"register": register})
    return config

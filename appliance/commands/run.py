"""`appliance run`: start the register (HTTP API on the configured address)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from appliance.commands._common import add_config_args, load


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="start the register")
    add_config_args(parser)
    parser.add_argument("--host", help="override http.host")
    parser.add_argument("--port", type=int, help="override http.port")
    parser.add_argument(
        "--first-boot",
        metavar="FILE",
        help="when the --config file does not exist yet, write it from this first-boot "
        "file (see `appliance firstboot`) before starting",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.first_boot and args.config and not Path(args.config).exists():
        # An appliance's first start: one process instead of two (start-up is slow
        # on small boxes), the same code as `appliance firstboot`.
        from appliance.commands.firstboot import first_boot

        if first_boot(Path(args.first_boot), Path(args.config).parent) != 0:
            return 1
    config = load(args)
    if config is None:
        return 2
    from appliance.peripherals import scanner_profiles

    try:
        scanner_profiles(config)  # a bad scanner profile stops the start, named
    except ValueError as exc:
        print(f"appliance: {exc}", file=sys.stderr)
        return 2
    import logging

    import uvicorn

    from appliance.api import create_app
    from appliance.errors import ApplianceError
    from appliance.server import NotifyingServer

    host = args.host or config.http.host
    port = args.port if args.port is not None else config.http.port
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        app = create_app(config)
        if args.first_boot and args.config:
            from appliance.firstboot import PAIRING_NAME, attach_pairing

            # The first-boot file's pairing code: paired once the register runs.
            attach_pairing(app.state.features, Path(args.config).parent / PAIRING_NAME)
        print(
            f"appliance: register {config.register.id} data in {config.data_dir}, "
            f"http://{host}:{port}/",
            file=sys.stderr,
        )
        # Open event streams (sell screens) must not hold a restart: they reconnect.
        server = NotifyingServer(
            uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                           timeout_graceful_shutdown=3),
            f"register {config.register.id} ready on http://{host}:{port}/",
            app.state.service,
        )  # fmt: skip
        server.run()
    except ApplianceError as exc:
        print(f"appliance: {exc}", file=sys.stderr)
        return 1
    return 0

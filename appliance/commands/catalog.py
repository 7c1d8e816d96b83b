"""`appliance catalog import FILE.csv`: all-or-nothing catalog import."""

from __future__ import annotations

import argparse
import sys

from appliance.commands._common import add_config_args, load


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("catalog", help="catalog tools")
    sub = parser.add_subparsers(dest="catalog_command", metavar="COMMAND")
    sub.required = True
    imp = sub.add_parser("import", help="import products from CSV (all or nothing)")
    imp.add_argument("file", metavar="FILE.csv")
    add_config_args(imp)
    imp.set_defaults(handler=import_csv)


def import_csv(args: argparse.Namespace) -> int:
    config = load(args)
    if config is None:
        return 2
    from appliance.catalog import CatalogImportError
    from appliance.errors import ApplianceError
    from appliance.register import Register

    try:
        with open(args.file, encoding="utf-8-sig") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{args.file}: cannot read: {exc}", file=sys.stderr)
        return 1
    register = Register(config)
    try:
        count = register.import_catalog_csv(text, args.file)
    except CatalogImportError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        print(f"nothing imported: {len(exc.errors)} problem(s)", file=sys.stderr)
        return 1
    except ApplianceError as exc:
        print(f"appliance: {exc}", file=sys.stderr)
        return 1
    finally:
        register.close()
    print(f"imported {count} products from {args.file}")
    return 0

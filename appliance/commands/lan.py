"""`appliance lan`: the store secret for LAN sync, and the running register's list.

``appliance lan new-secret`` prints a fresh store secret to put in every register's
``[lan] secret`` (or in the file ``secret_file`` names). ``appliance lan registers``
asks the running register (its HTTP address from the config) for the register list.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request

from appliance.commands._common import add_config_args, load


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("lan", help="LAN sync of saved sales between registers")
    sub = parser.add_subparsers(dest="lan_command", metavar="COMMAND")
    sub.required = True
    secret = sub.add_parser("new-secret", help="print a new store secret for pairing")
    secret.set_defaults(handler=new_secret)
    registers = sub.add_parser("registers", help="the running register's register list")
    add_config_args(registers)
    registers.add_argument("--json", action="store_true", help="print the JSON as served")
    registers.set_defaults(handler=list_registers)


def new_secret(args: argparse.Namespace) -> int:
    from appliance.lan.crypto import new_secret as make

    print(make())
    return 0


def list_registers(args: argparse.Namespace) -> int:
    config = load(args)
    if config is None:
        return 2
    host = "127.0.0.1" if config.http.host in ("0.0.0.0", "") else config.http.host
    url = f"http://{host}:{config.http.port}/api/lan/registers"
    from appliance.auth.tokens import bearer_headers

    try:
        # A local tool: it acts with the register's machine token from the data folder.
        request = urllib.request.Request(url, headers=bearer_headers(config.data_dir))
        with urllib.request.urlopen(request, timeout=5) as response:
            data = json.load(response)
    except (urllib.error.URLError, OSError) as exc:
        print(f"appliance: cannot reach the register at {url}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for row in data["registers"]:
        print(
            f"{row['register_id']:<17}{row['status']:<17}{row.get('version') or '-':<10}"
            f"{row['message']}"
        )
    for device in data.get("unpaired", []):
        print(f"unpaired device at {device['address']} ({device['at']}): {device['reason']}")
    return 0

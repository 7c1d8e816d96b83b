"""`appliance barcode parse CODE`: what the register makes of a scanned code, as JSON.

Other tools (HIL replay checks, the back office, shell scripts) rely on the output
shape, so it is one JSON object on one line, ASCII only, and the exit status is 0 for
any code — the JSON says whether it is valid. Bad options exit 2 (argparse).
"""

from __future__ import annotations

import argparse
import re
import sys

_EPILOG = """\
output: one JSON object on one line with at least
  valid (bool), kind (ean13|ean8|upca|upce|gs1|variable_measure|customer|receipt|other),
  gtin (14 digits or null), ais (AI -> value, {} unless GS1), weight_g, price_minor
  (int or null), error (text or null); also symbology, data, customer_code,
  receipt_no, item_code, currency, expiry, addon and lookup_codes.

variable-measure layouts (scale labels, EAN-13 prefixes 20-29; UPC-A NS 2 is "02"):
  --vm-layout PREFIX:ITEM_DIGITS:price|weight[:PRICE_CHECK]
  The 13 digits are: prefix (2), item code (ITEM_DIGITS), price check digit when
  PRICE_CHECK is 1, the value (the remaining digits; minor units for price, grams for
  weight), EAN check digit. Repeat the option for several prefixes; given at all, it
  replaces the defaults (21:5:weight:0 and 23:5:price:0). "--vm-layout none" turns
  scale labels off.

bare 8-digit codes: read as EAN-8 when that check digit holds, else as UPC-E (see
--eight-digit); with an AIM identifier, ]E4 means EAN-8 and ]E0 means UPC-E.

examples:
  appliance barcode parse 4006381333931
  appliance barcode parse --escapes ']C10109501101020917\\x1d10ABC'
  appliance barcode parse '(01)09501101020917(3103)001250'
  appliance barcode parse --vm-layout 28:4:price:1 2812341012349
  appliance barcode parse -- -starts-with-a-dash
"""

_ESCAPE_RE = re.compile(r"\\x([0-9A-Fa-f]{2})|\\u([0-9A-Fa-f]{4})|\\([\\trn])|<GS>|<FNC1>")
_SIMPLE_ESCAPES = {"\\": "\\", "t": "\t", "r": "\r", "n": "\n"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "barcode",
        help="barcode semantics: parse scanned codes",
        description="Barcode semantics of the register.",
    )
    actions = parser.add_subparsers(dest="barcode_action", metavar="ACTION")
    actions.required = True
    parse = actions.add_parser(
        "parse",
        help="print what the register makes of CODE, as one JSON line",
        description="Parse one scanned code the way the register does and print JSON.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parse.add_argument("code", metavar="CODE", help="the scanned text (AIM prefix allowed)")
    parse.add_argument(
        "--customer-prefix",
        default="CUST",
        help="prefix of customer-card codes (default CUST; '' turns them off)",
    )
    parse.add_argument(
        "--receipt-prefix",
        default="RCPT",
        help="prefix of receipt barcodes (default RCPT; '' turns them off)",
    )
    parse.add_argument(
        "--vm-layout",
        action="append",
        type=_layout_arg,
        metavar="PREFIX:ITEM_DIGITS:price|weight[:PRICE_CHECK]",
        help="a scale-label layout (repeatable; replaces the defaults; 'none' for no layouts)",
    )
    parse.add_argument(
        "--eight-digit",
        choices=("ean8", "upce"),
        default="ean8",
        help="first reading of a bare 8-digit code (default ean8)",
    )
    parse.add_argument(
        "--currency",
        metavar="NNN",
        help="register currency as ISO 4217 numeric code; GS1 393n prices in others are refused",
    )
    parse.add_argument(
        "--minor-digits",
        type=int,
        default=2,
        help="decimals of the register currency, for GS1 392n prices (default 2)",
    )
    parse.add_argument(
        "--gs",
        default="",
        metavar="CHARS",
        help="extra characters a scanner sends for FNC1, besides ASCII 29 (e.g. '|')",
    )
    parse.add_argument(
        "--escapes",
        action="store_true",
        help=r"decode \x1d, \u001d, \t, \r, \n, \\, <GS> and <FNC1> in CODE",
    )
    parse.set_defaults(handler=_parse_handler)


def _layout_arg(spec: str) -> object:
    if spec.strip().lower() == "none":
        return None
    from appliance.barcodes.variable_measure import VariableMeasureLayout

    try:
        return VariableMeasureLayout.from_spec(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def decode_escapes(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        hex2, hex4, simple = match.group(1), match.group(2), match.group(3)
        if hex2 or hex4:
            return chr(int(hex2 or hex4, 16))
        if simple:
            return _SIMPLE_ESCAPES[simple]
        return "\x1d"

    return _ESCAPE_RE.sub(one, text)


def _parse_handler(args: argparse.Namespace) -> int:
    import json
    from dataclasses import replace

    from appliance.barcodes import DEFAULT_SETTINGS, GS, parse_barcode

    code = decode_escapes(args.code) if args.escapes else args.code
    layouts = args.vm_layout
    try:
        settings = replace(
            DEFAULT_SETTINGS,
            customer_prefix=args.customer_prefix,
            receipt_prefix=args.receipt_prefix,
            eight_digit=args.eight_digit,
            currency_numeric=args.currency,
            currency_minor_digits=args.minor_digits,
            group_separators=GS + "".join(ch for ch in args.gs if ch != GS),
            vm_layouts=DEFAULT_SETTINGS.vm_layouts
            if layouts is None
            else tuple(layout for layout in layouts if layout is not None),
        )
    except ValueError as exc:
        print(f"appliance barcode parse: error: {exc}", file=sys.stderr)
        return 2
    result = parse_barcode(code, settings)
    sys.stdout.write(json.dumps(result.to_json_dict(), ensure_ascii=True) + "\n")
    return 0

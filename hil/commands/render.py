"""`hil render FILE [--width N] [--profile NAME] [--png OUT.png]`: read an ESC/POS job.

Prints the receipt as plain text on stdout: each text line as printed; each barcode
and QR code as a line containing its data; each cut as a line containing
``--- cut ---``; each drawer kick as a line containing ``--- drawer ---``. Code page
numbers (ESC t) are the profile's; the default profile numbers them as Epson's
TM-T88 family does. ``--png`` also draws the receipt, barcodes and QR codes as images.
``-`` reads the job from stdin.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("render", help="render an ESC/POS byte stream as text (and PNG)")
    p.add_argument("file", metavar="FILE", help="ESC/POS bytes (a print job), or - for stdin")
    p.add_argument("--width", type=int, metavar="N", help="characters per line (font A)")
    p.add_argument(
        "--profile",
        metavar="NAME",
        help="printer profile (firmware_configs/printers/NAME.toml or a path); "
        "default: epson-tm-t88v (TM-T88 code page numbers, 42 columns)",
    )
    p.add_argument("--png", metavar="OUT.png", help="also draw the receipt into this PNG file")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from drivers.printers.profiles import DEFAULT_PROFILE, ProfileError, load_profile
    from hil.escpos.interpreter import Interpreter
    from hil.escpos.render import render_png, render_text

    try:
        profile = load_profile(args.profile or DEFAULT_PROFILE)
    except ProfileError as exc:
        print(f"hil render: {exc}", file=sys.stderr)
        return 2
    if args.width is not None:
        if not 8 <= args.width <= 200:
            print(f"hil render: --width: must be 8-200, got {args.width}", file=sys.stderr)
            return 2
        profile = profile.with_columns(args.width)
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        print(f"hil render: {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    interp = Interpreter(profile.numbering, profile.columns, profile.columns_font_b)
    interp.feed(data)
    interp.finish()
    sys.stdout.write(render_text(interp.items, profile.columns, interp.font_b_width))
    if args.png:
        try:
            render_png(interp.items, profile.dots, profile.columns, profile.dpi, out=Path(args.png))
        except OSError as exc:
            print(f"hil render: {args.png}: {exc.strerror}", file=sys.stderr)
            return 2
    return 0

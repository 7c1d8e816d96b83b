"""`hil image build`: build (or find in the cache) the appliance image.

    hil image build                 print the image's files, size and build time
    hil image build --kiosk         with cage + chromium for the counter screen
    hil image build --cache DIR     another cache (default ~/.cache/register-appliance/image)

See hil/qemu/image.py for what the image holds and how it is cached.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("image", help="the appliance's bootable image")
    sub = parser.add_subparsers(dest="image_command", metavar="COMMAND")
    sub.required = True
    build = sub.add_parser("build", help="build the image (or reuse the cached one)")
    build.add_argument("--cache", metavar="DIR", help="cache folder for the layers")
    build.add_argument("--kiosk", action="store_true", help="add cage + chromium (kiosk)")
    build.set_defaults(handler=_build)


def _build(args: argparse.Namespace) -> int:
    from hil.qemu.image import ImageError, ensure_image

    try:
        image = ensure_image(Path(args.cache) if args.cache else None, kiosk=args.kiosk)
    except ImageError as exc:
        print(f"hil image: {exc}", file=sys.stderr)
        return 1
    print(f"kernel  {image.kernel}  ({image.kernel_version})")
    print(f"initrd  {image.initrd}")
    for layer in image.layers:
        print(f"layer   {layer}  ({layer.stat().st_size / 2**20:.0f} MiB)")
    what = " and ".join(image.built) + " layer built" if image.built else "all from the cache"
    print(f"size    {image.size_bytes() / 2**20:.0f} MiB; {what} in {image.built_s:.1f} s")
    return 0

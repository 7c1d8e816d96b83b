"""ESC/POS interpreter throughput (KB/s): the virtual printer's reading speed.

Three streams, each ~1 MB: receipts as the register prints them (text, code page
switches, barcode, QR, cut), the same with a raster logo per receipt, and random
bytes (the fuzzing worst case: every byte a command or garbage). Baseline in the
same run: decoding the text stream with Python's cp858 codec (a lower bound for any
byte-by-byte reader in Python is far below it; the ratio shows the distance).

Usage: python bench/escpos_interpreter.py [--mb N]
"""

from __future__ import annotations

import argparse
import random
import time

from PIL import Image, ImageDraw

from drivers.printers.profiles import load_profile
from drivers.printers.writer import EscPosWriter
from hil.escpos.interpreter import Interpreter


def receipt(logo: bool) -> bytes:
    w = EscPosWriter(load_profile())
    if logo:
        img = Image.new("RGB", (384, 96), "white")
        ImageDraw.Draw(img).ellipse((100, 8, 284, 88), fill="black")
        w.image(img)
    w.align("center")
    w.style(bold=True, wide=True, tall=True)
    w.line("Bäckerei Größe")
    w.style()
    w.align("left")
    for i in range(20):
        w.line(f"Brötchen Nr. {i:<3} {i} x 0.45 €".ljust(36) + f"{i * 0.45:6.2f} A")
    w.line("Łódź pierogi · Водка · Crème brûlée")
    w.align("center")
    w.barcode("RCPTR1-000042")
    w.qr("https://shop.example/r/R1-000042")
    w.cut()
    return w.getvalue()


def throughput(data: bytes) -> float:
    start = time.perf_counter()
    interp = Interpreter()
    for pos in range(0, len(data), 4096):  # as it arrives from a socket
        interp.feed(data[pos : pos + 4096])
        interp.run()
        interp.take_items()
    interp.finish()
    return len(data) / 1024 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=1.0)
    args = parser.parse_args()
    size = int(args.mb * 1024 * 1024)
    text = receipt(False) * (size // len(receipt(False)) + 1)
    logo = receipt(True) * (size // len(receipt(True)) + 1)
    rng = random.Random(4)
    noise = bytes(rng.getrandbits(8) for _ in range(size))
    start = time.perf_counter()
    text.decode("cp858")
    base = len(text) / 1024 / (time.perf_counter() - start)
    print(f"baseline bytes.decode('cp858')              : {base:12.0f} KB/s")
    for name, data in (("receipts (text)", text), ("receipts with logo", logo),
                       ("random bytes (mostly skipped)", noise)):  # fmt: skip
        kbs = throughput(data)
        print(f"interpreter, {name:30}: {kbs:12.0f} KB/s  ({base / kbs:6.0f}x slower)")


if __name__ == "__main__":
    main()

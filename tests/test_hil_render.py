"""`hil render FILE [--width N] [--profile NAME] [--png OUT.png]`: the command's contract.

Run as a real process on real ESC/POS files: plain text on stdout, one line per
printed line; barcode and QR lines hold their data; ``--- cut ---`` and
``--- drawer ---`` lines; code page numbers as the profile numbers them (TM-T88 by
default); ``--png`` draws the receipt with the barcode and QR code as images.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from PIL import Image

from drivers.printers.profiles import load_profile
from drivers.printers.writer import EscPosWriter
from tests.conftest import VENV_BIN


def hil_render(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(VENV_BIN / "hil"), "render", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def job_file(tmp_path: Path) -> Path:
    w = EscPosWriter(load_profile())
    w.align("center")
    w.style(bold=True, wide=True, tall=True)
    w.line("Bäckerei")
    w.style()
    w.align("left")
    w.line("Brötchen 6 x 0,45 € = 2,70 €")
    w.align("center")
    w.barcode("RCPTR1-000007")
    w.qr("https://shop.example/r/R1-000007")
    w.drawer(5)
    w.cut()
    path = tmp_path / "job.bin"
    path.write_bytes(w.getvalue())
    return path


def test_text_contract(tmp_path: Path) -> None:
    out = hil_render(str(job_file(tmp_path)))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode("utf-8").splitlines()
    assert lines[0] == " " * 13 + "Bäckerei"  # double width, centred on 42 columns
    assert lines[1] == "Brötchen 6 x 0,45 € = 2,70 €"
    assert "RCPTR1-000007" in lines[2] and "CODE128" in lines[2]
    assert "https://shop.example/r/R1-000007" in lines[3]
    assert "--- drawer ---" in lines[4]
    assert lines[5] == "--- cut ---"
    assert len(lines) == 6


def test_width_profile_and_stdin(tmp_path: Path) -> None:
    path = job_file(tmp_path)
    narrow = hil_render(str(path), "--width", "20").stdout.decode().splitlines()
    assert narrow[0] == "  Bäckerei" and narrow[1] == "Brötchen 6 x 0,45 €"
    assert narrow[2] == "= 2,70 €"
    # ESC t 44 is ISO-8859-15 on a Rongta RP326, PC1125 (Ukrainian) on an Epson.
    euro = b"\x1b@\x1bt\x2c\xa4\n"
    assert hil_render("-", "--profile", "rongta-rp326", stdin=euro).stdout.decode() == "€\n"
    assert hil_render("-", stdin=euro).stdout.decode() == bytes([0xA4]).decode("cp1125") + "\n"
    assert hil_render("-", stdin=b"\x1bt\x13\xd5\n").stdout.decode() == "€\n"  # PC858 on TM-T88


def test_png_draws_barcode_and_qr(tmp_path: Path) -> None:
    png = tmp_path / "out.png"
    out = hil_render(str(job_file(tmp_path)), "--png", str(png))
    assert out.returncode == 0, out.stderr
    with Image.open(png) as img:
        assert img.format == "PNG" and img.width == 512
        gray = img.convert("L")
        rows = [sum(1 for x in range(img.width) if gray.getpixel((x, y)) < 128)
                for y in range(img.height)]  # fmt: skip
    # barcode and QR are drawn as pictures: many rows with a lot of black
    assert sum(1 for n in rows if n > 60) > 60
    assert img.height > 300


def test_bad_input_is_named(tmp_path: Path) -> None:
    missing = hil_render(str(tmp_path / "nope.bin"))
    assert missing.returncode == 2 and b"nope.bin" in missing.stderr
    bad = hil_render(str(job_file(tmp_path)), "--profile", "no-such-printer")
    assert bad.returncode == 2 and b"no such printer profile" in bad.stderr
    assert b"epson-tm-t88v" in bad.stderr  # the names that exist

"""The ESC/POS interpreter on real ESC/POS bytes, and fuzzed: it never crashes or hangs.

The reference bytes come from python-escpos (its Dummy printer), an encoder written
independently of ours, so the interpreter is checked against what other software
really sends: code pages its magic encoder picks, its three image encodings, native
QR, hardware barcodes, drawer kicks and cuts.
"""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage
from PIL import ImageDraw

from drivers.printers.profiles import load_profile
from drivers.printers.writer import EscPosWriter
from hil.escpos.interpreter import (
    MAX_DATA,
    Barcode,
    Cut,
    Drawer,
    Image,
    Interpreter,
    Item,
    Note,
    TextLine,
    decode_code128,
)
from hil.escpos.render import render_png, render_text


def interpret(data: bytes, columns: int = 42) -> list[Item]:
    return Interpreter.interpret(data, columns=columns)


def square(size: int = 48) -> PILImage.Image:
    img = PILImage.new("RGB", (size + 16, size), "white")
    ImageDraw.Draw(img).rectangle((8, 8, 8 + size // 2, 8 + size // 2), fill="black")
    return img


def test_python_escpos_output_reads_back(capsys: object) -> None:
    from escpos.printer import Dummy

    p = Dummy(profile="TM-T88V")
    p.set(align="center", bold=True, double_height=True, double_width=True)
    p.textln("Grüße €5")
    p.set(normal_textsize=True, bold=False, align="left")
    p.textln("Straße ñ é £ ß")
    p.barcode("4006381333931", "EAN13")
    p.qr("https://example.com/r/1", native=True)
    for impl in ("bitImageRaster", "graphics", "bitImageColumn"):
        p.image(square(), impl=impl)
    p.cashdraw(2)
    p.cashdraw(5)
    p.cut()
    items = [i for i in interpret(p.output) if not isinstance(i, Note)]
    lines = [i for i in items if isinstance(i, TextLine)]
    assert lines[0].text == "Grüße €5" and lines[0].align == "center"
    assert lines[0].segments[0].style.bold and lines[0].segments[0].style.width == 2
    assert lines[1].text == "Straße ñ é £ ß"
    codes = [i for i in items if isinstance(i, Barcode)]
    assert [(c.symbology, c.data) for c in codes] == [
        ("EAN13", "4006381333931"),
        ("QR", "https://example.com/r/1"),
    ]
    images = [i for i in items if isinstance(i, Image)]
    assert [(i.source, i.width >= 64, i.height) for i in images] == [
        ("GS v 0", True, 48),
        ("GS ( L", True, 48),
        ("ESC *", True, 48),  # two 24-dot strips joined into one picture
    ]
    for image in images:  # the black square is where it was drawn, in every encoding
        assert image.data is not None
        row = 20 * (image.width // 8)
        assert image.data[row + 2] == 0xFF and image.data[row] & 0x80 == 0
    assert [(d.pin, d.realtime) for d in items if isinstance(d, Drawer)] == [(2, False), (5, False)]
    assert isinstance(items[-1], Cut)


def test_unknown_commands_are_skipped_by_their_declared_length() -> None:
    data = (
        b"\x1d(A\x02\x00AB"  # GS ( A: test print, 2 parameter bytes that look like text
        b"\x1b(A\x04\x00\x30\x41\x03\x0a"  # ESC ( A: beeper
        b"\x1c(e\x02\x00\x33\x08"  # FS ( e: auto status back
        b"\x1d8L\x05\x00\x00\x00XYZWV"  # GS 8 L with a 4-byte length
        b"\x1b\x99"  # an ESC command nobody knows: two bytes dropped, noted
        b"\x1d\xfe"
        b"\x10\x04\x01\x10\x04\x04"  # status requests print nothing
        b"ok\n"
    )
    items = interpret(data)
    assert [i.text for i in items if isinstance(i, TextLine)] == ["ok"]
    notes = [i.text for i in items if isinstance(i, Note)]
    assert notes == ["unknown command ESC 0x99", "unknown command GS 0xFE"]


def test_an_oversized_declaration_streams_past_without_buffering() -> None:
    size = MAX_DATA + 1000
    header = b"\x1d8L" + size.to_bytes(4, "little")
    interp = Interpreter()
    interp.feed(b"before\n" + header)
    interp.run()
    chunk = b"\x00" * 65536
    sent = 0
    while sent < size:
        part = chunk[: min(len(chunk), size - sent)]
        interp.feed(part)
        interp.run()
        sent += len(part)
        assert interp.pending_bytes == 0  # nothing of it is kept
    interp.feed(b"after\n")
    interp.finish()
    lines = [i.text for i in interp.items if isinstance(i, TextLine)]
    assert lines == ["before", "after"]


def test_code128_code_sets() -> None:
    assert decode_code128(b"{BRCPT{CR1-") == "RCPT" + "".join(f"{b:02d}" for b in b"R1-")
    assert decode_code128(b"{C\x0c\x22\x38{Bx{{y") == "123456x{y"
    data = EscPosWriter(load_profile()).getvalue()
    w = EscPosWriter(load_profile())
    w.barcode("RCPTR1-000042")
    items = interpret(w.getvalue()[len(data) :])
    assert [(i.symbology, i.data) for i in items if isinstance(i, Barcode)] == [
        ("CODE128", "RCPTR1-000042")
    ]


def test_lines_wrap_at_the_paper_width_and_esc_at_discards_unprinted_text() -> None:
    items = interpret(b"x" * 50 + b"\n\x1b!\x30" + b"W" * 25 + b"\n" + b"lost\x1b@kept\n", 42)
    texts = [i.text for i in items if isinstance(i, TextLine)]
    assert texts == ["x" * 42, "x" * 8, "W" * 21, "W" * 4, "kept"]


def test_every_prefix_of_a_receipt_interprets() -> None:
    w = EscPosWriter(load_profile())
    w.line("Käse € 1,99")
    w.barcode("RCPTR1-000001")
    w.qr("https://example.com")
    w.image(square())
    w.drawer(2)
    w.cut()
    data = w.getvalue()
    for end in range(len(data) + 1):
        items = interpret(data[:end])
        render_text(items)
    assert isinstance(interpret(data)[-1], Cut)
    truncated = interpret(data[:-1])
    assert isinstance(truncated[-1], Note) and "ends inside a command" in truncated[-1].text


COMMAND_BYTES = [
    b"\x1b", b"\x1d", b"\x1c", b"\x10", b"\n", b"(", b"k", b"v0", b"L", b"8L", b"\x00",
    b"\xff", b"\x04", b"\x14\x01", b"1P0", b"1Q0", b"*", b"t", b"!", b"V", b"p", b"A",
    b"\x7f", b"{B", b"{C", b"\x80\x81",
]  # fmt: skip
streams = st.one_of(
    st.binary(max_size=600),
    st.lists(st.one_of(st.sampled_from(COMMAND_BYTES), st.binary(max_size=6)), max_size=200).map(
        b"".join
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams)
def test_fuzz_random_streams_never_crash_or_hang(data: bytes) -> None:
    started = time.monotonic()
    interp = Interpreter()
    interp.feed(data)
    steps = 0
    while interp.step() is not None:
        steps += 1
        assert steps <= len(data)  # every step consumes at least one byte
    interp.finish()
    render_text(interp.items)
    assert time.monotonic() - started < 2.0


@settings(max_examples=150, deadline=None)
@given(streams, st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=20))
def test_fuzz_fed_in_pieces_reads_the_same(data: bytes, cuts: list[int]) -> None:
    whole = render_text(interpret(data))
    interp = Interpreter()
    pos = 0
    for size in cuts * (len(data) // max(1, sum(cuts)) + 1):
        if pos >= len(data):
            break
        interp.feed(data[pos : pos + size])
        interp.run()
        pos += size
    interp.finish()
    assert render_text(interp.items) == whole


@settings(max_examples=25, deadline=None)
@given(streams)
def test_fuzz_png_rendering_never_crashes(data: bytes) -> None:
    render_png(interpret(data), dots=384, columns=32, dpi=203)

"""Code pages: € £ ä ö ü ß é ñ print right on every profile; what cannot print shows as "?".

Text goes through the register's encoder (choosing and switching code pages by the
profile's numbering) into the virtual printer — over a real TCP socket for the
fixed cases — and is read back by its interpreter with the same profile.
"""

from __future__ import annotations

import socket
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.printers.codepages import TM_T88, Numbering, code_page
from drivers.printers.profiles import available_profiles, load_profile
from drivers.printers.writer import EscPosWriter
from hil.escpos.interpreter import Cut, Interpreter, TextLine
from tests.printer_rig import PrinterRig, wait_until

SAMPLES = [
    "€ £ ä ö ü ß é ñ Ä Ö Ü",
    "Crème brûlée à la française, ç",
    "Jalapeño · señor · ¿qué? ¡olé!",
    "Ærøskøbing Øl, Ångström",
    "Łódź: pierogi z żurawiną",  # PC852: switches page and back
    "Водка «Столичная»",  # PC866
]


@pytest.mark.parametrize("profile", available_profiles())
def test_round_trip_through_the_virtual_printer_over_tcp(profile: str, tmp_path: Path) -> None:
    p = load_profile(profile)
    rig = PrinterRig(tmp_path / "jobs", profile=profile)
    try:
        w = EscPosWriter(p)
        for text in SAMPLES:
            w.line(text)
        w.cut()
        with socket.create_connection(("127.0.0.1", rig.port), timeout=5) as sock:
            sock.sendall(w.getvalue())
        wait_until(lambda: rig.printer.jobs, what="the job printed")  # cut, or hang-up
        printed = rig.printer.jobs[0].text.splitlines()
    finally:
        rig.close()
    assert w.replaced == 0
    assert all(len(s) <= p.columns for s in SAMPLES)
    assert printed[: len(SAMPLES)] == SAMPLES


def test_a_character_no_page_has_prints_visibly_and_the_job_completes() -> None:
    p = load_profile()
    w = EscPosWriter(p)
    w.line("Gift ✓ 😀 中 ok")
    w.line("evil\x1dV\x00name\x1b@\x07")  # control characters cannot inject commands
    w.cut()
    items = Interpreter.interpret(w.getvalue(), p.numbering, p.columns)
    assert [i.text for i in items if isinstance(i, TextLine)] == [
        "Gift ? ? ? ok",
        "evil?V?name?@?",
    ]
    assert sum(isinstance(i, Cut) for i in items) == 1
    assert w.replaced == 7


def test_renumbered_pages_use_the_models_numbers() -> None:
    rongta = load_profile("rongta-rp326")
    w = EscPosWriter(rongta)
    w.line("Водка")  # PC866 is ESC t 7 on the RP326, ESC t 17 on an Epson
    assert b"\x1bt\x07" in w.getvalue() and b"\x1bt\x11" not in w.getvalue()
    epson = Interpreter.interpret(w.getvalue(), Numbering(), 42)
    assert [i.text for i in epson if isinstance(i, TextLine)] != ["Водка"]
    assert Numbering(rongta.code_page_numbers).page(17) == code_page("WPC1253")


def test_tm_t88_numbering_is_the_default() -> None:
    n = Numbering()
    assert (n.number("PC437"), n.number("PC850"), n.number("WPC1252")) == (0, 2, 16)
    assert (n.number("PC858"), n.number("ISO8859-15"), n.number("PC866")) == (19, 40, 17)
    assert code_page(TM_T88[19]).decode(0xD5) == "€"


def _printable_somewhere(ch: str, pages: list[str]) -> bool:
    return " " <= ch <= "~" or any(ch in code_page(p).encode_map for p in pages)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_text_reads_back_as_itself_or_with_visible_replacements(text: str) -> None:
    p = load_profile()
    w = EscPosWriter(p)
    w.text(text)
    items = Interpreter.interpret(w.getvalue(), p.numbering, columns=10_000)
    got = "".join(i.text for i in items if isinstance(i, TextLine))
    normal = unicodedata.normalize("NFC", text)
    expected = "".join(ch if _printable_somewhere(ch, list(p.code_pages)) else "?" for ch in normal)
    assert got == expected.rstrip() or got == expected

"""Keyboard-wedge decoding: real layout facts, the recording library, replay, fuzz."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.scanners.keymaps import LAYOUTS, get_layout, keystrokes
from drivers.scanners.wedge import RawEvent, WedgeDecoder, WedgeSettings
from hil.evemu import RecordingError, parse_evemu, write_evemu
from hil.scanner_replay import replay_recording
from tests.conftest import ROOT, VENV_BIN

RECORDINGS = ROOT / "hil" / "recordings" / "scanners"
SHIFT, ALTGR, CTRL, ENTER, TAB = 42, 100, 29, 28, 15


class Keys:
    """Hand-written key events (press/release), 5 ms apart unless told."""

    def __init__(self) -> None:
        self.t = 100.0
        self.events: list[RawEvent] = []

    def ev(self, code: int, value: int, gap: float = 0.005) -> Keys:
        self.t += gap
        sec = int(self.t)
        self.events.append(RawEvent(sec, int((self.t - sec) * 1e6), 1, code, value))
        return self

    def tap(self, code: int, *mods: int, gap: float = 0.005) -> Keys:
        for mod in mods:
            self.ev(mod, 1, gap)
        self.ev(code, 1, gap).ev(code, 0, 0.001)
        for mod in mods:
            self.ev(mod, 0, 0.001)
        return self


def decode(keys: Keys, layout: str = "us", suffix: str = "enter") -> list[str]:
    decoder = WedgeDecoder("t", WedgeSettings(layout=layout, suffix=suffix))
    return [s.data for s in decoder.decode(keys.events)]


# Real layout facts, written by hand (not generated from the keymaps).
def test_french_digits_need_shift() -> None:
    keys = Keys().tap(2, SHIFT).tap(3, SHIFT).tap(4, SHIFT).tap(2).tap(ENTER)  # 1 2 3 &
    assert decode(keys, "fr") == ["123&"]


def test_german_y_and_z_are_swapped_and_at_is_altgr_q() -> None:
    keys = Keys().tap(44).tap(21).tap(16, ALTGR).tap(12).tap(ENTER)  # KEY_Z KEY_Y AltGr+Q ß
    assert decode(keys, "de") == ["yz@ß"]


def test_uk_shift_2_is_quote_and_us_is_at() -> None:
    keys = Keys().tap(3, SHIFT).tap(3, SHIFT).tap(3, SHIFT).tap(ENTER)
    assert decode(keys, "uk") == ['"""']
    assert decode(keys, "us") == ["@@@"]


def test_spanish_ntilde_and_italian_egrave() -> None:
    assert decode(Keys().tap(39).tap(39, SHIFT).tap(2).tap(ENTER), "es") == ["ñÑ1"]
    assert decode(Keys().tap(26).tap(26, SHIFT).tap(2).tap(ENTER), "it") == ["èé1"]


def test_caps_lock_shifts_letters_only() -> None:
    keys = Keys().tap(58).tap(30).tap(2).tap(30, SHIFT).tap(ENTER)  # Caps, a, 1, Shift+a
    assert decode(keys, "us") == ["A1a"]
    fr = Keys().tap(58).tap(16).tap(2).tap(2, SHIFT).tap(ENTER)  # on fr digits still need shift
    assert decode(fr, "fr") == ["A&1"]


def test_ctrl_bracket_and_alt_numpad_give_gs() -> None:
    keys = Keys().tap(2).tap(27, CTRL).tap(3)
    keys.ev(56, 1).tap(82).tap(80).tap(73).ev(56, 0)  # Alt + KP0 KP2 KP9
    keys.tap(4).tap(ENTER)
    assert decode(keys, "us") == ["1\x1d2\x1d3"]


def test_key_repeat_is_ignored_and_tab_suffix() -> None:
    keys = Keys().tap(2).ev(3, 1).ev(3, 2).ev(3, 2).ev(3, 0).tap(4).tap(TAB)
    assert decode(keys, "us", "tab") == ["123"]


def test_no_suffix_ends_on_a_pause_and_partial_scans_are_never_emitted() -> None:
    keys = Keys().tap(2).tap(3).tap(4).tap(5, gap=0.5).tap(6).tap(7)
    assert decode(keys, "us", "none") == ["123", "456"]
    unfinished = Keys().tap(2).tap(3).tap(4)  # no Enter before the stream ends
    assert decode(unfinished, "us", "enter") == []


def test_human_typing_is_not_a_scan() -> None:
    keys = Keys()
    for code in (35, 18, 38, 38, 24):  # h e l l o, a person: 150 ms apart
        keys.tap(code, gap=0.15)
    keys.tap(ENTER, gap=0.15)
    assert decode(keys, "us") == []


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_round_trips_what_scanners_type(layout: str) -> None:
    lay = get_layout(layout)
    text = "4006381333931RCPT-R1-000042CUST4711"
    keys = Keys()
    for code, shift, altgr in keystrokes(text, lay):
        keys.tap(code, *([SHIFT] if shift else []), *([ALTGR] if altgr else []))
    keys.tap(ENTER)
    assert decode(keys, layout) == [text]


@pytest.mark.parametrize(
    "recording",
    [
        *sorted(p.name for p in RECORDINGS.glob("*.evemu")),
        "serial-cr.serial",
        "serial-crlf-gs1.serial",
    ],
)
def test_recording_library_decodes_to_its_expected_scans(recording: str) -> None:
    import asyncio

    path = RECORDINGS / recording
    expected = json.loads(path.with_name(path.name.split(".")[0] + ".expected.json").read_text())
    got: list[str] = []
    asyncio.run(replay_recording(path.read_text(), got.append))
    assert got == expected


def test_replay_scanner_cli_prints_only_scans() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "hil"), "replay-scanner", str(RECORDINGS / "fr-enter.evemu")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == json.loads(
        (RECORDINGS / "fr-enter.expected.json").read_text()
    )
    wrong = subprocess.run(
        [str(VENV_BIN / "hil"), "replay-scanner", str(RECORDINGS / "fr-enter.evemu"),
         "--layout", "us"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert wrong.stdout.splitlines() != result.stdout.splitlines()  # the layout matters


def test_evemu_round_trip_and_errors(tmp_path: Path) -> None:
    rec = parse_evemu((RECORDINGS / "us-tab.evemu").read_text())
    assert rec.vendor == 0x0C2E and rec.hints["suffix"] == "tab"
    again = parse_evemu(write_evemu(rec))
    assert again.events == rec.events
    with pytest.raises(RecordingError, match="line 2"):
        parse_evemu("N: x\nE: nonsense\n")


def test_uinput_tier_needs_a_uinput_device() -> None:
    if not Path("/dev/uinput").exists():
        pytest.skip("/dev/uinput missing on this kernel: the uinput tier runs in QEMU (issue 9)")
    from evdev import UInput, ecodes

    with UInput(name="hil test scanner") as ui:
        ui.write(ecodes.EV_KEY, ecodes.KEY_1, 1)
        ui.syn()


events = st.lists(
    st.builds(
        lambda sec, usec, t, c, v: RawEvent(sec, usec, t, c, v),
        st.integers(0, 5), st.integers(0, 999_999), st.sampled_from([0, 1, 4]),
        st.integers(0, 120), st.integers(-1, 3),
    ),
    max_size=200,
)  # fmt: skip


@given(events=events, layout=st.sampled_from(sorted(LAYOUTS)),
       suffix=st.sampled_from(["enter", "tab", "none"]))  # fmt: skip
@settings(max_examples=400, deadline=None)
def test_fuzz_decoder_never_crashes_or_emits_partial_scans(
    events: list[RawEvent], layout: str, suffix: str
) -> None:
    decoder = WedgeDecoder("fuzz", WedgeSettings(layout=layout, suffix=suffix))
    scans = list(decoder.decode(sorted(events, key=lambda e: (e.sec, e.usec))))
    for scan in scans:
        assert len(scan.data) >= decoder.settings.min_length
        assert "\n" not in scan.data
        if suffix == "tab":
            assert "\t" not in scan.data
    if suffix != "none":
        presses = {e.code for e in events if e.type == 1 and e.value == 1}
        terminator = ENTER if suffix == "enter" else TAB
        if terminator not in presses and 96 not in presses:
            assert scans == []  # no suffix key ever pressed: nothing may come out

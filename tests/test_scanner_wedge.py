"""Keyboard-wedge decoding: real layout facts, the recording library, replay, fuzz."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.scanners.keymaps import LAYOUTS, get_layout, keystrokes
from drivers.scanners.wedge import RawEvent, WedgeDecoder, WedgeSettings
from hil.evemu import RecordingError, parse_evemu, write_evemu
from tests.conftest import ROOT

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

    def tap(self, code: int, *mods: int, gap: float = 0.005, mod_gap: float | None = None) -> Keys:
        for mod in mods:
            self.ev(mod, 1, gap if mod_gap is None else mod_gap)
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


def test_a_key_with_no_character_spoils_the_whole_scan_not_just_its_start() -> None:
    keys = Keys().tap(2).tap(3).tap(4).tap(59).tap(5).tap(6).tap(7).tap(ENTER)  # F1 mid-scan
    assert decode(keys) == []  # "456" would be a partial scan
    keys.tap(8, gap=0.2).tap(9).tap(10).tap(ENTER)  # the next scan after a pause is clean
    assert decode(keys) == ["789"]


def test_events_lost_by_the_kernel_spoil_the_scan_in_progress() -> None:
    keys = Keys().tap(2).tap(3).tap(4)
    keys.events.append(RawEvent(int(keys.t), 0, 0, 3, 0))  # EV_SYN / SYN_DROPPED
    keys.tap(5).tap(6).tap(7).tap(ENTER)
    keys.tap(8, gap=0.2).tap(9).tap(10).tap(ENTER)
    assert decode(keys) == ["789"]


def test_a_release_never_pressed_means_we_came_in_mid_scan() -> None:
    keys = Keys().ev(4, 0).tap(5).tap(6).tap(7).tap(ENTER)  # KEY_3 up: its press was missed
    keys.tap(8, gap=0.2).tap(9).tap(10).tap(ENTER)
    assert decode(keys) == ["789"]
    decoder = WedgeDecoder("t", WedgeSettings())
    decoder.resync(100.0)  # the device was opened at t=100 s
    early = Keys()  # keys from t=100.005 s: possibly a scan's tail
    early.tap(2).tap(3).tap(4).tap(ENTER).tap(5, gap=0.2).tap(6).tap(7).tap(ENTER)
    assert [s.data for s in decoder.decode(early.events)] == ["456"]


def test_live_source_without_suffix_ends_a_scan_when_the_keys_stop() -> None:
    """With suffix "none" the last scan must come out after end_gap_ms of quiet, not when
    the next key (maybe minutes later) arrives."""
    import asyncio

    async def scenario() -> list[str]:
        queue: asyncio.Queue[RawEvent] = asyncio.Queue()
        for event in Keys().tap(2).tap(3).tap(4).events:
            queue.put_nowait(event)

        async def live() -> AsyncIterator[RawEvent]:
            while True:
                yield await queue.get()

        decoder = WedgeDecoder("t", WedgeSettings(suffix="none", end_gap_ms=50))
        stream = decoder.decode_async(live())
        scan = await asyncio.wait_for(anext(stream), 2)
        await stream.aclose()
        return [scan.data]

    assert asyncio.run(scenario()) == ["123"]


def test_evemu_round_trip_and_errors(tmp_path: Path) -> None:
    rec = parse_evemu((RECORDINGS / "us-tab.evemu").read_text())
    assert rec.vendor == 0x0C2E and rec.hints["suffix"] == "tab"
    again = parse_evemu(write_evemu(rec))
    assert again.events == rec.events
    with pytest.raises(RecordingError, match="line 2"):
        parse_evemu("N: x\nE: nonsense\n")


def test_reads_what_evemu_record_writes() -> None:
    """evemu-record's own output (header comments, bit masks, trailing comments)."""
    text = """# EVEMU 1.3
# Kernel: 6.1.0-18-amd64
# DMI: dmi:bvnLENOVO:bvrN2IET98W:bd01/01/2022
# Input device name: "Honeywell Imaging & Mobility 1900"
# Input device ID: bus 0x03 vendor 0xc2e product 0xb61 version 0x111
# Supported events:
#   Event type 0 (EV_SYN)
#   Event type 1 (EV_KEY)
#     Event code 2 (KEY_1)
# Properties:
N: Honeywell Imaging & Mobility 1900
I: 0003 0c2e 0b61 0111
P: 00 00 00 00 00 00 00 00
B: 00 13 00 00 00 00 00 00 00
B: 01 fe ff ff ff ff ff ff ff
B: 04 10 00 00 00 00 00 00 00
L: 00 1f 00 00 00 00 00 00 00
################################
#      Waiting for events      #
################################
E: 0.000001 0004 0004 458782	# EV_MSC / MSC_SCAN             458782
E: 0.000001 0001 0002 0001	# EV_KEY / KEY_1                1
E: 0.000001 0000 0000 0000	# ------------ SYN_REPORT (0) ---------- +0ms
E: 0.002934 0004 0004 458782	# EV_MSC / MSC_SCAN             458782
E: 0.002934 0001 0002 0000	# EV_KEY / KEY_1                0
E: 0.002934 0000 0000 0000	# ------------ SYN_REPORT (0) ---------- +2ms
E: 0.006011 0001 0003 0001	# EV_KEY / KEY_2                1
E: 0.008100 0001 0003 0000	# EV_KEY / KEY_2                0
E: 0.012000 0001 0004 0001	# EV_KEY / KEY_3                1
E: 0.014000 0001 0004 0000	# EV_KEY / KEY_3                0
E: 0.018000 0001 001c 0001	# EV_KEY / KEY_ENTER            1
E: 0.020000 0001 001c 0000	# EV_KEY / KEY_ENTER            0
"""
    rec = parse_evemu(text)
    assert rec.name == "Honeywell Imaging & Mobility 1900" and rec.product == 0x0B61
    assert rec.hints == {}  # the tool's own comments are not our hints
    assert rec.events[0] == RawEvent(0, 1, 4, 4, 458782)
    assert [s.data for s in WedgeDecoder().decode(rec.events)] == ["123"]


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
@settings(max_examples=300, deadline=None)
def test_fuzz_decoder_never_crashes_on_arbitrary_events(
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


# A session at the counter: whole scans, and things that must never come out as one.
SCAN_TEXT = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz-./", min_size=3,
                    max_size=20)  # fmt: skip
SEGMENT = st.one_of(
    st.tuples(st.just("scan"), SCAN_TEXT, st.integers(1, 50)),  # typed 1-50 ms apart
    st.tuples(st.just("repeat"), SCAN_TEXT, st.integers(1, 20)),  # with key repeat inside
    st.tuples(st.just("human"), SCAN_TEXT, st.integers(100, 300)),  # a person, + suffix
    st.tuples(st.just("dropped"), SCAN_TEXT, st.integers(0, 19)),  # SYN_DROPPED at a key
    st.tuples(st.just("cut"), SCAN_TEXT, st.integers(0, 19)),  # keys lost mid-scan
    st.tuples(st.just("unmapped"), SCAN_TEXT, st.integers(0, 19)),  # an F-key mid-scan
)


@given(segments=st.lists(SEGMENT, max_size=8), layout=st.sampled_from(sorted(LAYOUTS)),
       suffix=st.sampled_from(["enter", "tab", "none"]))  # fmt: skip
@settings(max_examples=300, deadline=None)
def test_fuzz_exactly_the_whole_scans_come_out(
    segments: list[tuple[str, str, int]], layout: str, suffix: str
) -> None:
    """Whole scans come out exactly, in order; no part of a damaged scan, no person's
    typing, ever comes out as a scan."""
    lay = get_layout(layout)
    suffix_key = {"enter": [ENTER], "tab": [TAB], "none": []}[suffix]
    keys = Keys()
    expected = []
    for kind, text, n in segments:
        strokes = keystrokes(text, lay)
        gap = n / 1000 if kind in ("scan", "human") else 0.004
        for i, (code, shift, altgr) in enumerate(strokes):
            if kind == "dropped" and i == n % len(strokes):
                keys.events.append(RawEvent(int(keys.t), int(keys.t % 1 * 1e6), 0, 3, 0))
            if kind == "cut" and i == n % len(strokes):
                keys.ev(code, 0, gap)  # only the release of a key whose press was lost
                continue
            if kind == "unmapped" and i == n % len(strokes):
                keys.tap(59, gap=gap)  # F1
            mods = [m for m, on in ((SHIFT, shift), (ALTGR, altgr)) if on]
            if kind == "repeat" and i == n % len(strokes):
                for mod in mods:
                    keys.ev(mod, 1, 0.001)
                keys.ev(code, 1, gap).ev(code, 2, 0.003).ev(code, 2, 0.003).ev(code, 0, 0.001)
                for mod in mods:
                    keys.ev(mod, 0, 0.001)
                continue
            keys.tap(code, *mods, gap=gap, mod_gap=0.001)
        for key in suffix_key:
            keys.tap(key, gap=gap)
        keys.t += 0.3  # the pause between two scans
        if kind in ("scan", "repeat"):
            expected.append(text)
    assert decode(keys, layout, suffix) == expected

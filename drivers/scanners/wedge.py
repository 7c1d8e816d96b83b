"""The keyboard-wedge decoder: evdev key events → scans.

It consumes an (async) iterable of input events — from a grabbed evdev device, a
uinput device, or a recording — and uses the events' own timestamps, so a replay
decodes exactly as the device did. Rules (each a field of ``WedgeSettings``):

- keys are decoded with the scanner's layout, tracking Shift, AltGr, Ctrl and Caps
  Lock; Ctrl+<@A-Z[\\]^_> gives the control character (Ctrl+] = GS, the GS1 FNC1) and
  Alt+keypad digits give the character of that code (Alt+0,2,9 = GS);
- key repeat (value 2) is ignored;
- a scan ends on the suffix key (Enter or Tab), or, with suffix "none", when no key
  follows within ``end_gap_ms``;
- scanners type 1-50 ms apart, people 100-300 ms: a gap over ``max_gap_ms`` inside
  a scan means a person is typing, and the keys so far are dropped, never emitted;
  a scan shorter than ``min_length`` is dropped too. Nothing partial is ever a scan.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from drivers.scanners.events import ScanEvent
from drivers.scanners.keymaps import (
    CTRLS,
    KEY_CAPSLOCK,
    KEY_ENTER,
    KEY_KPENTER,
    KEY_LEFTALT,
    KEY_RIGHTALT,
    KEY_TAB,
    KEYPAD,
    SHIFTS,
    Layout,
    get_layout,
)

log = logging.getLogger(__name__)

EV_KEY = 0x01
KEY_UP, KEY_DOWN, KEY_REPEAT = 0, 1, 2
SUFFIXES = ("enter", "tab", "none")


class InputEventLike(Protocol):
    """evdev.InputEvent, RawEvent, or anything with these read-only fields."""

    @property
    def sec(self) -> int: ...
    @property
    def usec(self) -> int: ...
    @property
    def type(self) -> int: ...
    @property
    def code(self) -> int: ...
    @property
    def value(self) -> int: ...


@dataclass(frozen=True)
class RawEvent:
    """An input event without python-evdev (recordings, raw kernel records)."""

    sec: int
    usec: int
    type: int
    code: int
    value: int


@dataclass
class WedgeSettings:
    layout: str = "us"
    suffix: str = "enter"
    max_gap_ms: float = 60.0
    end_gap_ms: float = 80.0
    min_length: int = 3

    def __post_init__(self) -> None:
        get_layout(self.layout)
        if self.suffix not in SUFFIXES:
            raise ValueError(f"suffix {self.suffix!r}: use one of {', '.join(SUFFIXES)}")


@dataclass
class WedgeDecoder:
    scanner_id: str = "wedge"
    settings: WedgeSettings = field(default_factory=WedgeSettings)
    source: str = "evdev"

    def __post_init__(self) -> None:
        self.layout: Layout = get_layout(self.settings.layout)
        self.buffer: list[str] = []
        self.last_key_at: float | None = None
        self.shift: set[int] = set()
        self.ctrl: set[int] = set()
        self.left_alt = False
        self.altgr = False
        self.caps = False
        self.alt_digits = ""
        self.dropped = 0  # sequences thrown away as human typing or too short

    # -- state machine -------------------------------------------------------------
    def _emit(self, at: float) -> list[ScanEvent]:
        text = "".join(self.buffer)
        self.buffer.clear()
        if len(text) < self.settings.min_length:
            if text:
                self.dropped += 1
            return []
        return [ScanEvent(self.scanner_id, text, at, self.source)]

    def _drop(self, why: str) -> None:
        if self.buffer:
            self.dropped += 1
            log.debug("wedge %s: dropped %d keys (%s)", self.scanner_id, len(self.buffer), why)
        self.buffer.clear()

    def feed(self, event: InputEventLike) -> list[ScanEvent]:
        if event.type != EV_KEY or event.value == KEY_REPEAT:
            return []
        code, down = event.code, event.value == KEY_DOWN
        at = event.sec + event.usec / 1e6
        if code in SHIFTS:
            (self.shift.add if down else self.shift.discard)(code)
            return []
        if code in CTRLS:
            (self.ctrl.add if down else self.ctrl.discard)(code)
            return []
        if code == KEY_RIGHTALT:
            self.altgr = down
            return []
        if code == KEY_LEFTALT:
            self.left_alt = down
            if not down and self.alt_digits:
                value, self.alt_digits = int(self.alt_digits), ""
                if 0 < value < 256:
                    return self._key(bytes([value]).decode("latin-1"), at)
            return []
        if not down:
            return []
        if code == KEY_CAPSLOCK:
            self.caps = not self.caps
            return []
        if self.left_alt and code in KEYPAD and KEYPAD[code].isdigit():
            self.alt_digits += KEYPAD[code]
            self._gap_check(at)
            return []
        suffix = self.settings.suffix
        if (code in (KEY_ENTER, KEY_KPENTER) and suffix == "enter") or (
            code == KEY_TAB and suffix == "tab"
        ):
            out = self._gap_check(at)
            out += self._emit(at) if self.buffer else []
            self.last_key_at = None
            return out
        char = self.layout.char(code, bool(self.shift), self.altgr, self.caps)
        if char is None:
            return self._key(None, at)
        if self.ctrl:
            upper = char.upper()
            if "@" <= upper <= "_":
                char = chr(ord(upper) & 0x1F)
            else:
                return self._key(None, at)
        return self._key(char, at)

    def _gap_check(self, at: float) -> list[ScanEvent]:
        out: list[ScanEvent] = []
        if self.last_key_at is not None and self.buffer:
            gap_ms = (at - self.last_key_at) * 1000
            if self.settings.suffix == "none" and gap_ms > self.settings.end_gap_ms:
                out = self._emit(self.last_key_at)
            elif gap_ms > self.settings.max_gap_ms:
                self._drop(f"{gap_ms:.0f} ms between keys: a person typing")
        self.last_key_at = at
        return out

    def _key(self, char: str | None, at: float) -> list[ScanEvent]:
        out = self._gap_check(at)
        if char is None:
            self._drop("a key with no character in this layout")
        else:
            self.buffer.append(char)
        return out

    def finish(self, now: float | None = None) -> list[ScanEvent]:
        """The input ended or went quiet: a suffix-less scan is complete, anything else
        without its suffix is dropped."""
        if self.settings.suffix == "none" and self.buffer and self.last_key_at is not None:
            if now is None or (now - self.last_key_at) * 1000 >= self.settings.end_gap_ms:
                out = self._emit(self.last_key_at)
                self.last_key_at = None
                return out
            return []
        self._drop("no suffix before the input ended")
        return []

    # -- drivers ---------------------------------------------------------------------
    def decode(self, events: Iterable[InputEventLike]) -> Iterator[ScanEvent]:
        for event in events:
            yield from self.feed(event)
        yield from self.finish()

    async def decode_async(self, events: AsyncIterable[InputEventLike]) -> AsyncIterator[ScanEvent]:
        async for event in events:
            for scan in self.feed(event):
                yield scan
        for scan in self.finish():
            yield scan

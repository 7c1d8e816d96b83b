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
  a scan shorter than ``min_length`` is dropped too;
- a sequence with a hole in it is dropped whole, up to its suffix or the next pause:
  a key with no character in the layout, a release of a key never seen pressed (we
  started reading mid-scan), the kernel's SYN_DROPPED (its buffer overflowed), or
  ``resync()`` when a device was just opened. Nothing partial is ever a scan.
"""

from __future__ import annotations

import asyncio
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

EV_SYN, EV_KEY = 0x00, 0x01
SYN_DROPPED = 3
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
    device: str = ""  # which input device, for the ScanEvent

    def __post_init__(self) -> None:
        self.layout: Layout = get_layout(self.settings.layout)
        self.buffer: list[str] = []
        self.last_key_at: float | None = None
        self.pressed: set[int] = set()
        self.caps = False
        self.alt_digits = ""
        self.tainted = False  # input was missed inside the current key sequence
        self.dropped = 0  # sequences thrown away: human typing, too short, damaged

    # -- state machine -------------------------------------------------------------
    def _emit(self, at: float) -> list[ScanEvent]:
        text = "".join(self.buffer)
        self.buffer.clear()
        if self.tainted:
            self.tainted = False
            if text:
                self.dropped += 1
            return []
        if len(text) < self.settings.min_length:
            if text:
                self.dropped += 1
            return []
        return [ScanEvent(self.scanner_id, text, at, self.source, self.device)]

    def _drop(self, why: str) -> None:
        if self.buffer:
            self.dropped += 1
            log.debug("wedge %s: dropped %d keys (%s)", self.scanner_id, len(self.buffer), why)
        self.buffer.clear()

    def resync(self, at: float, why: str = "input may have been missed") -> None:
        """Events before ``at`` may be lost (device just opened, SYN_DROPPED): the key
        sequence going on at ``at`` is damaged and is dropped up to its end; a key
        after a pause starts a clean one."""
        self._drop(why)
        self.tainted = True
        self.last_key_at = at
        self.pressed.clear()
        self.alt_digits = ""

    def feed(self, event: InputEventLike) -> list[ScanEvent]:
        at = event.sec + event.usec / 1e6
        out: list[ScanEvent] = []
        if (
            self.settings.suffix == "none"
            and self.last_key_at is not None
            and (self.buffer or self.tainted)
            and (at - self.last_key_at) * 1000 > self.settings.end_gap_ms
        ):  # the quiet after a suffix-less scan ended it, whatever this event is
            out = self._emit(self.last_key_at)
        return out + self._feed(event, at) if out else self._feed(event, at)

    def _feed(self, event: InputEventLike, at: float) -> list[ScanEvent]:
        if event.type == EV_SYN and event.code == SYN_DROPPED:
            self.resync(at, "the kernel dropped events (SYN_DROPPED)")
            return []
        if event.type != EV_KEY or event.value not in (KEY_UP, KEY_DOWN):
            return []  # key repeat (2) and anything else is not a key stroke
        code, down = event.code, event.value == KEY_DOWN
        if down:
            self.pressed.add(code)
        elif code in self.pressed:
            self.pressed.discard(code)
        else:  # a release without its press: we came in (or lost events) mid-scan
            self._drop("a key released that was never pressed")
            self.tainted = True
            self.last_key_at = at  # the damaged sequence is the one going on now
            return []
        if code in SHIFTS or code in CTRLS or code == KEY_RIGHTALT:
            return []
        if code == KEY_LEFTALT:
            if not down and self.alt_digits:
                value, self.alt_digits = int(self.alt_digits), ""
                char = bytes([value]).decode("latin-1") if 0 < value < 256 else None
                return self._key(char, at)
            return []
        if not down:
            return []
        if code == KEY_CAPSLOCK:
            self.caps = not self.caps
            return []
        if KEY_LEFTALT in self.pressed and code in KEYPAD and KEYPAD[code].isdigit():
            self.alt_digits += KEYPAD[code]
            return self._gap_check(at)
        suffix = self.settings.suffix
        if (code in (KEY_ENTER, KEY_KPENTER) and suffix == "enter") or (
            code == KEY_TAB and suffix == "tab"
        ):
            out = self._gap_check(at)
            out += self._emit(at) if self.buffer or self.tainted else []
            self.last_key_at = None
            return out
        char = self.layout.char(
            code, bool(self.pressed & SHIFTS), KEY_RIGHTALT in self.pressed, self.caps
        )
        if char is not None and self.pressed & CTRLS:
            upper = char.upper()
            char = chr(ord(upper) & 0x1F) if "@" <= upper <= "_" else None
        return self._key(char, at)

    def _gap_check(self, at: float) -> list[ScanEvent]:
        """A key press at ``at``: a long pause before it ends the sequence so far."""
        out: list[ScanEvent] = []
        if self.last_key_at is not None:
            gap_ms = (at - self.last_key_at) * 1000
            if self.settings.suffix == "none" and gap_ms > self.settings.end_gap_ms:
                out = self._emit(self.last_key_at) if self.buffer or self.tainted else []
            elif gap_ms > self.settings.max_gap_ms:
                self._drop(f"{gap_ms:.0f} ms between keys: a person typing")
            if gap_ms > self.settings.max_gap_ms:
                self.tainted = False  # a new key sequence starts here
        self.last_key_at = at
        return out

    def _key(self, char: str | None, at: float) -> list[ScanEvent]:
        out = self._gap_check(at)
        if char is None:
            self._drop("a key with no character in this layout")
            self.tainted = True  # the rest of this sequence is not the whole code
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
        """Scans from a live (or paced) event source. With suffix "none" a scan ends when
        no key follows within ``end_gap_ms`` of real time, so the last scan before a
        quiet spell comes out then, not when the next key arrives."""
        iterator = aiter(events)
        pending: asyncio.Future[InputEventLike] | None = None
        try:
            while True:
                quiet = self.settings.suffix == "none" and bool(self.buffer)
                try:
                    if pending is None and not quiet:
                        event = await anext(iterator)  # the fast path: no timer needed
                    else:
                        if pending is None:  # never cancelled mid-read: events would be lost
                            pending = asyncio.ensure_future(anext(iterator))
                        done, _ = await asyncio.wait(
                            {pending}, timeout=self.settings.end_gap_ms / 1000 if quiet else None
                        )
                        if not done:
                            for scan in self.finish():
                                yield scan
                            continue
                        event, pending = pending.result(), None
                except StopAsyncIteration:
                    pending = None
                    break
                for scan in self.feed(event):
                    yield scan
        finally:
            if pending is not None:
                pending.cancel()
        for scan in self.finish():
            yield scan

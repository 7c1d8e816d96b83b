"""Hybrid logical clock: timestamps that order operations across registers.

A wall clock alone goes backwards (NTP steps, a register with a flat RTC battery);
a counter alone says nothing about real time. The HLC keeps the larger of the wall
clock and the last timestamp seen, with a counter to break ties, so every operation
a register writes sorts after everything it has seen. The string form sorts
lexicographically in the same order, which is what the op log and sync compare.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Timestamp:
    wall_ms: int
    counter: int
    node: str

    def __str__(self) -> str:
        return f"{self.wall_ms:013d}.{self.counter:06d}.{self.node}"

    @classmethod
    def parse(cls, text: str) -> Timestamp:
        wall, counter, node = text.split(".", 2)
        if len(wall) != 13 or len(counter) != 6 or not wall.isdigit() or not counter.isdigit():
            raise ValueError(f"not an HLC timestamp: {text!r}")
        return cls(int(wall), int(counter), node)


class HybridLogicalClock:
    def __init__(self, node: str, wall_clock: Callable[[], float] = time.time) -> None:
        self.node = node
        self._wall_clock = wall_clock
        self._last = Timestamp(0, 0, node)
        self._lock = threading.Lock()

    def _wall_ms(self) -> int:
        return int(self._wall_clock() * 1000)

    def now(self) -> Timestamp:
        with self._lock:
            wall = self._wall_ms()
            if wall > self._last.wall_ms:
                self._last = Timestamp(wall, 0, self.node)
            else:
                self._last = Timestamp(self._last.wall_ms, self._last.counter + 1, self.node)
            return self._last

    def observe(self, remote: Timestamp | str) -> None:
        """Move past a timestamp seen from elsewhere (another register, or our own log)."""
        if isinstance(remote, str):
            remote = Timestamp.parse(remote)
        with self._lock:
            if (remote.wall_ms, remote.counter) > (self._last.wall_ms, self._last.counter):
                self._last = Timestamp(remote.wall_ms, remote.counter, self.node)

"""Exponential backoff with jitter, for probes and retries.

The n-th delay is drawn from [d/2, d] with d = min(cap, base·2ⁿ): it doubles like
plain exponential backoff, but registers that lost the back office at the same moment
do not come back in lock-step (the jitter), and no delay is shorter than half the
base (a probe "every few seconds" really waits a few seconds).
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self.base, self.cap = base, cap
        self.attempt = 0
        self.rng = rng or random.Random()

    def next(self) -> float:
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt = min(self.attempt + 1, 60)
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0

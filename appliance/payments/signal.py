"""The register-wide offline signal: "this register cannot reach the outside world".

Card payments count as offline when the terminal reports its host link down OR when
this signal is set. Back-office sync (issue 6) owns the signal; from its feature:

    from appliance.payments.signal import offline_signal

    offline_signal(ctx.service).set(True, "back office unreachable since 10:02")
    offline_signal(ctx.service).set(False)

``offline_signal(service)`` returns the one signal of that register (created on first
use, so attach order does not matter). While it is set, a card payment is checked
against the offline limits before the terminal is asked; if the terminal then
approves online anyway, the payment is simply approved online (nothing to forward).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from datetime import UTC, datetime


class OfflineSignal:
    def __init__(self) -> None:
        self.offline = False
        self.reason = ""
        self.since: str | None = None
        self._listeners: list[Callable[[bool], None]] = []

    def set(self, offline: bool, reason: str = "") -> None:
        """Say whether the register is offline now (idempotent; call it as often as known)."""
        changed = bool(offline) != self.offline
        self.offline = bool(offline)
        self.reason = reason if offline else ""
        if changed:
            self.since = (
                datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
                if offline
                else None
            )
            for listener in list(self._listeners):
                listener(self.offline)

    def subscribe(self, listener: Callable[[bool], None]) -> None:
        self._listeners.append(listener)

    def to_dict(self) -> dict[str, object]:
        return {"offline": self.offline, "reason": self.reason, "since": self.since}


_SIGNALS: weakref.WeakKeyDictionary[object, OfflineSignal] = weakref.WeakKeyDictionary()


def offline_signal(service: object) -> OfflineSignal:
    """The offline signal of the register run by ``service`` (a RegisterService)."""
    signal = _SIGNALS.get(service)
    if signal is None:
        signal = _SIGNALS[service] = OfflineSignal()
    return signal

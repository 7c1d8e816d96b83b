"""The register-wide "offline" signal: is the back office reachable right now?

Other features read it (card payments decide on store-and-forward, the sell screen
shows the offline banner) with one call::

    from appliance.sync.link import is_offline
    if is_offline(ctx.service):      # or is_offline(register) on the DB thread
        ...

``is_offline`` is True only for a register paired with a back office that cannot be
reached (or refuses it); a standalone register is never offline. ``link_for(owner)``
gives the whole state (since when, why, next probe) and ``on_change`` callbacks,
which run on the event loop when the state flips. The sync engine is what flips it
(``set_online``); card payments read it to decide on store-and-forward.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Link:
    paired: bool = False
    online: bool = False
    since: str | None = None
    reason: str | None = None
    next_probe_at: str | None = None
    listeners: list[Callable[[bool], None]] = field(default_factory=list)

    @property
    def offline(self) -> bool:
        return self.paired and not self.online

    def on_change(self, callback: Callable[[bool], None]) -> None:
        """``callback(online)`` after each change (called on the event loop)."""
        self.listeners.append(callback)

    def set_online(self, online: bool, reason: str | None = None) -> bool:
        """Record what is known now; on a change, note since when and tell the listeners."""
        self.reason = None if online else reason
        if online == self.online:
            return False
        self.online = online
        self.since = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if online:
            self.next_probe_at = None
        for callback in list(self.listeners):
            try:
                callback(online)
            except Exception:
                log.exception("offline-signal listener failed")
        return True

    def as_dict(self) -> dict[str, Any]:
        return {
            "paired": self.paired,
            "online": self.online,
            "offline": self.offline,
            "since": self.since,
            "reason": self.reason,
            "next_probe_at": self.next_probe_at,
        }


_links: weakref.WeakKeyDictionary[Any, Link] = weakref.WeakKeyDictionary()


def link_for(owner: Any) -> Link:
    """The link of a RegisterService or a Register (the same object for both)."""
    link = _links.get(owner)
    if link is None:
        link = _links[owner] = Link()
    return link


def share(link: Link, *owners: Any) -> None:
    for owner in owners:
        _links[owner] = link


def is_offline(owner: Any) -> bool:
    return link_for(owner).offline

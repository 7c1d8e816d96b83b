"""Offline card acceptance: the shop's limits, checked before and after the terminal.

Before the terminal is asked (the register knows it is offline): is offline acceptance
switched on, and was it switched on before this outage began; is the amount within the
per-payment maximum (or approved over it by a manager, when the shop allows that);
would the stored payments stay within the maximum count and total; is the oldest one
still younger than the maximum age. After the terminal approved offline (the register
may not have known): the same limits plus the entry mode (chip and contactless by
default, never swipe or keyed); a payment that breaks one is reversed on the terminal.

Every refusal names the limit, the figures and the other tenders the cashier can take.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from appliance.config import OfflineCardSection
from appliance.errors import Conflict
from appliance.money import format_minor

OTHER_TENDERS = ["cash", "other"]


@dataclass(frozen=True)
class Outstanding:
    """Offline approvals not yet forwarded to the host."""

    count: int = 0
    amount: int = 0
    oldest_at: str | None = None

    def age_hours(self, now: datetime) -> float:
        if self.oldest_at is None:
            return 0.0
        oldest = datetime.fromisoformat(self.oldest_at.replace("Z", "+00:00"))
        return max(0.0, (now - oldest).total_seconds() / 3600)


class OfflineRefused(Conflict):
    """A card payment the register refuses while offline; ``limit`` names the rule."""

    code = "card_offline_refused"


def refusal(limit: str, message: str, **details: object) -> OfflineRefused:
    return OfflineRefused(
        f"{message} Take cash or another tender.",
        field="amount_minor",
        limit=limit,
        other_tenders=OTHER_TENDERS,
        **details,
    )


def check(
    limits: OfflineCardSection,
    outstanding: Outstanding,
    amount: int,
    now: datetime,
    *,
    decimals: int = 2,
    armed_problem: str | None = None,
    override_by: str | None = None,
    entry_mode: str | None = None,
    check_entry_mode: bool = False,
) -> None:
    """Raise OfflineRefused if an offline card payment of ``amount`` breaks a limit."""

    def m(value: int) -> str:
        return format_minor(value, decimals)

    if not limits.enabled:
        raise refusal(
            "disabled",
            "Card payments are not possible while offline: offline card acceptance is "
            "switched off for this register.",
        )
    if armed_problem is not None:
        raise refusal("not_in_advance", armed_problem)
    if amount > limits.max_amount and override_by is None:
        raise refusal(
            "max_amount",
            f"{m(amount)} is over the offline maximum of {m(limits.max_amount)} per payment."
            + (" A manager may approve it." if limits.manager_override else ""),
            limit_minor=limits.max_amount,
            amount_minor=amount,
            override_possible=limits.manager_override,
        )
    if outstanding.count + 1 > limits.max_count:
        raise refusal(
            "max_count",
            f"{outstanding.count} card payments are already waiting to be forwarded, "
            f"the offline maximum is {limits.max_count}.",
            limit_count=limits.max_count,
            pending_count=outstanding.count,
        )
    if outstanding.amount + amount > limits.max_total:
        raise refusal(
            "max_total",
            f"{m(outstanding.amount)} is already waiting to be forwarded; with "
            f"{m(amount)} it would exceed the offline maximum total of "
            f"{m(limits.max_total)}.",
            limit_minor=limits.max_total,
            pending_minor=outstanding.amount,
            amount_minor=amount,
        )
    age = outstanding.age_hours(now)
    if age > limits.max_age_hours:
        raise refusal(
            "max_age",
            f"The oldest card payment waiting to be forwarded is {age:.1f} h old, over the "
            f"offline maximum of {limits.max_age_hours:g} h; no more offline card payments "
            "until it is forwarded.",
            limit_hours=limits.max_age_hours,
            oldest_at=outstanding.oldest_at,
        )
    if check_entry_mode and entry_mode not in limits.entry_modes:
        how = entry_mode or "an entry mode the terminal did not report"
        raise refusal(
            "entry_mode",
            f"The card was read by {how}; offline only "
            f"{' and '.join(limits.entry_modes)} are accepted.",
            entry_mode=entry_mode,
            allowed=list(limits.entry_modes),
        )


def check_override(limits: OfflineCardSection, manager: str | None, pin: str | None) -> str | None:
    """The manager's name when a valid override of the per-payment maximum was given."""
    if manager is None:
        return None
    if not limits.manager_override:
        raise OfflineRefused(
            "this register does not allow a manager to approve over the offline maximum",
            field="manager_override",
            limit="max_amount",
        )
    if limits.manager_pin and pin != limits.manager_pin:
        raise OfflineRefused(
            "manager PIN is wrong: the override is not approved",
            field="manager_override.pin",
            limit="max_amount",
        )
    return manager

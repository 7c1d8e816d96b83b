"""Back-office sync in the running register (issue 6): outbox sender, offline mode."""

from __future__ import annotations

from appliance.features import Context


def attach(ctx: Context) -> None:
    """Not built yet: the sync loop and its status routes attach here."""

"""Card payments in the running register (issue 5): terminal, offline store-and-forward."""

from __future__ import annotations

from appliance.features import Context


def attach(ctx: Context) -> None:
    """Not built yet: the terminal connection and payment routes attach here."""

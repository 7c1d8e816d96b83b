"""Receipt printing in the running register (issue 4): worker, status and routes."""

from __future__ import annotations

from appliance.features import Context


def attach(ctx: Context) -> None:
    """Not built yet: the print worker and its routes attach here."""

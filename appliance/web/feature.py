"""The browser UI in the running register (issue 8): sell screen, /admin, sessions."""

from __future__ import annotations

from appliance.features import Context


def attach(ctx: Context) -> None:
    """Not built yet: pages, static assets and authentication attach here."""

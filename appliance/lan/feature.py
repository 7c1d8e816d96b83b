"""LAN sync of saved sales in the running register (issue 7): discovery, peers."""

from __future__ import annotations

from appliance.features import Context


def attach(ctx: Context) -> None:
    """Not built yet: discovery, peer replication and the register list attach here."""

"""LAN sync of saved sales in the running register (issue 7): discovery, peers, routes.

The routes (register list, saved sales of all registers, saved-sale actions) are
always there; with ``lan.enabled`` the sync node runs too: it guards payments with
the checkout lease, pushes this register's ops and pulls what it lacks. The node and
its crypto and zeroconf imports load only when LAN sync is on.
"""

from __future__ import annotations

from typing import Any

from appliance import __version__
from appliance.features import Context


def attach(ctx: Context) -> None:
    from appliance.lan.api import make_router
    from appliance.lan.registry import PeerDirectory

    config = ctx.config
    if not config.lan.enabled:
        directory = PeerDirectory(config.register.id, config.register.name, __version__)

        def status() -> dict[str, Any]:
            return {"enabled": False, "register_id": config.register.id, "vector": {}}

        ctx.app.include_router(make_router(config, ctx.service, directory, status))
        return

    from appliance.lan.node import LanNode

    node = LanNode(config, ctx.service)
    ctx.app.state.lan = node
    ctx.service.on_open.append(node.on_register_open)
    router = make_router(config, ctx.service, node.directory, node.status, node.wait_until)
    ctx.app.include_router(router)
    ctx.on_start(node.start)
    ctx.on_stop(node.stop)

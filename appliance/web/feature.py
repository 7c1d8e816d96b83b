"""The browser UI in the running register (issue 8): sell screen, /admin, sessions.

Attaches the guard (appliance.auth) in front of every route, the log-in and account
routes, the sell screen and admin pages, the event stream, and the static assets.
On open it makes the machine token and, while there is no manager, the setup code.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from appliance.features import Context
from appliance.register import Register

log = logging.getLogger(__name__)


def attach(ctx: Context) -> None:
    from fastapi.staticfiles import StaticFiles

    from appliance.auth.guard import Auth, AuthGuard
    from appliance.auth.routes import router as auth_router
    from appliance.web import admin, sell
    from appliance.web.events import EventHub
    from appliance.web.render import STATIC

    auth = Auth(ctx.config, ctx.app, ctx.service)
    hub = EventHub()
    ctx.app.state.auth = auth
    ctx.app.state.events = hub
    ctx.app.add_middleware(AuthGuard, auth=auth)
    ctx.app.include_router(auth_router)
    ctx.app.include_router(sell.router)
    ctx.app.include_router(admin.router)
    ctx.app.include_router(admin.api_router)
    ctx.app.mount("/static", StaticFiles(directory=STATIC), name="static")

    ctx.service.on_open.append(lambda register: _on_open(register, auth, hub))
    if ctx.config.sync.enabled:
        # Accounts the back office pushes (a `users` bundle) become this register's.
        from appliance.auth.users import apply_users_bundle
        from appliance.sync.bundles import register_bundle_handler

        def apply_users(register: Register, payload: dict[str, Any]) -> None:
            apply_users_bundle(register, payload)

        register_bundle_handler("users", apply_users)

    async def start() -> None:
        hub.bind(asyncio.get_running_loop())
        if getattr(ctx.app.state, "sync", None) is not None:
            # The back office link going down or up changes the banners at once.
            from appliance.sync.link import link_for

            link_for(ctx.service).on_change(
                lambda online: hub.publish({"type": "status", "online": online})
            )

    async def stop() -> None:
        hub.close()

    ctx.on_start(start)
    ctx.on_stop(stop)


def _on_open(register: Register, auth: Any, hub: Any) -> None:
    """On the register's thread before the first request: secrets and listeners."""
    from appliance.auth.tokens import ensure_machine_token, ensure_setup_code, token_hashes
    from appliance.web.events import op_events, scan_event

    data_dir = register.config.data_dir
    ensure_machine_token(register, data_dir)
    auth.token_hashes = token_hashes(register)
    auth.setup_code = ensure_setup_code(register, data_dir)
    if auth.setup_code is not None:
        print(
            f"appliance: no manager account yet: open /setup in the browser and enter the "
            f"setup code {auth.setup_code} (also in {data_dir / 'setup-code'})",
            file=sys.stderr,
        )

    def on_ops(ops: list[dict[str, Any]]) -> None:
        for op in ops:
            if op["kind"] == "user.upsert":
                user = op["payload"]["user"]
                auth.sessions.drop_user(
                    user["username"], keep_role=None if user["disabled"] else user["role"]
                )
                if user["role"] == "manager" and not user["disabled"]:
                    auth.setup_code = None
        for event in op_events(ops):
            hub.publish_threadsafe(event)

    register.listeners.append(on_ops)
    register.scan_listeners.append(
        lambda code, result, error: hub.publish_threadsafe(scan_event(code, result, error))
    )

"""Back-office sync in the running register (issue 6): outbox sender, offline mode.

The engine's module (httpx) is imported when the feature attaches, which is when the
app is built — not when the register package is imported — and the network starts
only in the start hook.
"""

from __future__ import annotations

from appliance.features import Context


def attach(ctx: Context) -> None:
    if not ctx.config.sync.enabled:
        return
    from appliance.sync.engine import SyncEngine
    from appliance.sync.routes import build_router

    engine = SyncEngine(ctx.service, ctx.config.sync)
    ctx.service.on_open.append(engine.on_open)
    ctx.app.state.sync = engine
    ctx.app.include_router(build_router(engine))
    ctx.on_start(engine.start)
    ctx.on_stop(engine.stop)

"""Receipt printing in the running register (issue 4): worker, status, drawer and routes.

With ``printer.connection = "none"`` nothing attaches: no receipts are queued and the
routes are absent. Otherwise the printing service installs its hooks when the
register opens, starts its worker (which builds the printer in the background) and
adds its routes under /api/printer. Nothing here imports python-escpos.
"""

from __future__ import annotations

from appliance.features import Context


def attach(ctx: Context) -> None:
    if ctx.config.printer.connection == "none":
        return
    from appliance.printing.routes import build_router
    from appliance.printing.service import PrintingService

    printing = PrintingService(ctx.config, ctx.service)
    ctx.service.on_open.append(printing.on_open)
    ctx.on_start(printing.start)
    ctx.on_stop(printing.stop)
    ctx.app.include_router(build_router(printing))
    ctx.app.state.printing = printing

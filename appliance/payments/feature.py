"""Card payments in the running register (issue 5): terminal, offline store-and-forward."""

from __future__ import annotations

from appliance.features import Context


def attach(ctx: Context) -> None:
    """The payment service, its routes, the register hook and the shift-close section.

    The terminal connection (and the in-process simulator of the default "simulated"
    terminal) starts with the register, or on first use when the app's start hooks
    do not run (an ASGI client without lifespan).
    """
    from appliance.payments import store
    from appliance.payments.api import router
    from appliance.payments.service import PaymentService

    payments = PaymentService(ctx.config, ctx.service)
    ctx.app.state.payments = payments
    ctx.app.include_router(router(payments))
    ctx.service.on_open.append(store.install)
    ctx.on_start(payments.ensure_started)
    ctx.on_stop(payments.stop)
    ctx.on_shift_close(payments.z_report_section)

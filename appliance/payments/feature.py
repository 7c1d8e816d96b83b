"""Card payments in the running register (issue 5): terminal, offline store-and-forward."""

from __future__ import annotations

from appliance.features import Context


def attach(ctx: Context) -> None:
    """The payment service, its routes, the register hook and the shift-close section.

    The terminal side (the in-process simulator of the default "simulated" terminal,
    restart recovery, the background task) starts alongside the register, without
    delaying its readiness, or on first use when the app's start hooks do not run.
    """
    from appliance.payments import store
    from appliance.payments.api import router
    from appliance.payments.service import PaymentService

    payments = PaymentService(ctx.config, ctx.service)
    ctx.app.state.payments = payments
    ctx.app.include_router(router(payments))
    ctx.service.on_open.append(store.install)
    ctx.service.on_open.append(payments.on_open)
    ctx.on_start(payments.start_in_background)
    ctx.on_stop(payments.stop)
    ctx.on_shift_close(payments.z_report_section)

"""HTTP routes of card payments (the sell screen's and the admin panel's view).

    POST /api/sales/{id}/payments       start a card payment (202; ?wait=S waits for the end)
    GET  /api/sales/{id}/payments       the sale's payments
    GET  /api/payments/{id}             one payment: state, message, card, live status text
    GET  /api/payments/{id}/events      the same as a server-sent event stream while it runs
    POST /api/payments/{id}/abort       the cashier cancels
    POST /api/payments/{id}/resolve     ask the terminal now about an unknown payment
    POST /api/payments/{id}/reverse     reverse an approved payment of an open sale
    POST /api/refunds/{id}/card         pay a refund's card part back through the terminal
    GET  /api/payments/terminal         terminal, host link, offline state, pending forward
    POST /api/payments/terminal/diagnosis   the terminal checks its host connection (06 70)
    GET  /api/payments/offline          offline acceptance, pending list, declined after the fact
    POST /api/payments/offline/forward  forward pending offline payments now
    GET|POST /api/payments/end-of-day   the terminal's end-of-day runs / run one now
    POST /api/payments/simulator        script the simulated terminal (simulated only)

Refusals use the register's one error shape; offline refusals have code
``card_offline_refused`` with ``limit`` (disabled, not_in_advance, max_amount,
max_count, max_total, max_age, entry_mode) and ``other_tenders``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from appliance.errors import NotFound
from appliance.money import MAX_AMOUNT
from appliance.payments import store
from appliance.payments.service import PaymentService

Doc = dict[str, Any]
Wait = Annotated[float, Query(ge=0, le=600, description="seconds to wait for the outcome")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OverrideIn(_Body):
    manager: StrictStr = Field(min_length=1, max_length=64)
    pin: StrictStr | None = Field(default=None, max_length=8)


class PaymentIn(_Body):
    amount_minor: Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT)] | None = Field(
        default=None, description="default: what is still due"
    )
    manager_override: OverrideIn | None = Field(
        default=None, description="a manager approves over the offline per-payment maximum"
    )


class SimulatorIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    cmd: Literal["outcome", "host_online", "forward_results", "faults", "state"]


def router(payments: PaymentService) -> APIRouter:
    r = APIRouter(tags=["card payments"])

    @r.post("/api/sales/{sale_id}/payments", status_code=202)
    async def start(sale_id: str, body: PaymentIn, wait: Wait = 0) -> Doc:
        override = body.manager_override
        doc = await payments.start_payment(
            sale_id,
            body.amount_minor,
            override.manager if override else None,
            override.pin if override else None,
        )
        return await payments.wait(doc["id"], wait) if wait else doc

    @r.get("/api/sales/{sale_id}/payments")
    async def for_sale(sale_id: str) -> list[Doc]:
        rows: list[Doc] = await payments.call(store.select, "sale_id = ?", (sale_id,))
        return rows

    @r.get("/api/payments")
    async def recent(
        state: Literal["requested", "in_progress", "approved", "declined", "aborted", "unknown"]
        | None = None,
    ) -> list[Doc]:
        rows: list[Doc] = await payments.call(store.recent, state)
        return rows

    @r.get("/api/payments/terminal")
    async def terminal() -> Doc:
        await payments.ensure_started()
        return await payments.terminal_status()

    @r.post("/api/payments/terminal/diagnosis")
    async def diagnosis() -> Doc:
        return await payments.diagnosis()

    @r.get("/api/payments/offline")
    async def offline() -> Doc:
        await payments.ensure_started()
        return await payments.offline_overview()

    @r.post("/api/payments/offline/forward")
    async def forward() -> Doc:
        return await payments.forward()

    @r.get("/api/payments/end-of-day")
    async def eod_runs() -> list[Doc]:
        return await payments.eod_runs()

    @r.post("/api/payments/end-of-day")
    async def eod() -> Doc:
        return await payments.end_of_day()

    @r.post("/api/payments/simulator")
    async def simulator(body: SimulatorIn) -> Doc:
        await payments.ensure_started()
        sim = payments.link.sim
        if sim is None:
            raise NotFound("the card terminal is not simulated", field="terminal")
        from hil.zvt_sim.server import control_command

        result: Doc = control_command(sim, body.model_dump())
        payments.wake.set()  # e.g. the host link came back: forward now
        return result

    @r.get("/api/payments/{payment_id}")
    async def one(payment_id: str, wait: Wait = 0) -> Doc:
        if wait:
            return await payments.wait(payment_id, wait)
        return await payments.payment(payment_id, with_events=True)

    @r.get("/api/payments/{payment_id}/events")
    async def events(payment_id: str) -> StreamingResponse:
        await payments.payment(payment_id)  # 404 before the stream starts

        async def sse() -> AsyncIterator[str]:
            async for doc in payments.stream(payment_id):
                yield f"event: payment\ndata: {json.dumps(doc, ensure_ascii=False)}\n\n"

        return StreamingResponse(sse(), media_type="text/event-stream")

    @r.post("/api/payments/{payment_id}/abort")
    async def abort(payment_id: str) -> Doc:
        return await payments.abort(payment_id)

    @r.post("/api/payments/{payment_id}/resolve")
    async def resolve(payment_id: str) -> Doc:
        return await payments.resolve(payment_id)

    @r.post("/api/payments/{payment_id}/reverse")
    async def reverse(payment_id: str) -> Doc:
        return await payments.reverse(payment_id)

    @r.post("/api/refunds/{refund_id}/card")
    async def refund_card(refund_id: str) -> Doc:
        return await payments.refund_to_card(refund_id)

    return r

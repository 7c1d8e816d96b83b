"""HTTP routes of the receipt printer and cash drawer (mounted under /api/printer).

GET  /api/printer/status              printer status (DLE EOT), queue counts, drawer
POST /api/printer/status/refresh      ask the printer now
GET  /api/printer/jobs?status=failed  jobs, newest first, with the reason they wait/failed
POST /api/printer/jobs/{id}/retry     put a failed job back in the queue
POST /api/printer/reprint-last        queue a COPY of the last receipt
POST /api/printer/drawer              open the cash drawer now ({"pin": 2|5})
POST /api/printer/reports/x           print the X report of the open shift
POST /api/printer/reports/z           print a Z report ({"number": N}, default: last)
GET  /api/printer/preview/{sale_id}   the receipt as text (?format=png: as a picture)
PUT  /api/printer/simulated           switch the simulated printer's faults (demo, tests)
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from appliance.printing import queue
from appliance.printing.service import PrintingService
from appliance.register import Register

Doc = dict[str, Any]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DrawerIn(_Body):
    pin: Literal[2, 5] | None = None


class ZReportIn(_Body):
    number: Annotated[StrictInt, Field(ge=1, le=10**9)] | None = None


class PrintRequestIn(_Body):
    request_id: StrictStr | None = Field(default=None, min_length=8, max_length=64)


class ReceiptChoiceIn(_Body):
    print: StrictBool


class SimulatedIn(_Body):
    paper: Literal["ok", "near_end", "out"] | None = None
    cover_open: StrictBool | None = None
    online: StrictBool | None = None
    status: Literal["normal", "mute", "garbage"] | None = None
    drawer_open: StrictBool | None = None
    paper_lines: Annotated[StrictInt, Field(ge=1, le=10**6)] | None = None
    drawer_closes_after: Annotated[float, Field(ge=0, le=3600)] | None = None


def build_router(printing: PrintingService) -> APIRouter:
    router = APIRouter(prefix="/api/printer", tags=["printer"])
    call = printing.service.call

    async def queued(job_id: int) -> Doc:
        if printing.worker is not None:
            printing.worker.wake()
        found: Doc = await call(queue.job, job_id)
        return found

    @router.get("/status")
    async def status() -> Doc:
        return await printing.status()

    @router.post("/status/refresh")
    async def refresh() -> Doc:
        return await printing.refresh()

    @router.get("/jobs")
    async def jobs(
        status: Literal["queued", "sending", "sent", "done", "failed", "skipped"] | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[Doc]:
        found: list[Doc] = await call(queue.jobs, status, limit)
        return found

    @router.post("/jobs/{job_id}/retry")
    async def retry(job_id: int) -> Doc:
        await call(queue.retry, job_id)
        return await queued(job_id)

    @router.post("/reprint-last", status_code=202)
    async def reprint_last(body: PrintRequestIn | None = None) -> Doc:
        """A COPY of the last receipt; ``request_id`` makes a repeated request (a
        retry after a lost answer) return the job the first one queued."""
        return await queued(await call(queue.reprint_last, body.request_id if body else None))

    @router.put("/receipts/{sale_id}")
    async def receipt_choice(sale_id: str, body: ReceiptChoiceIn) -> Doc:
        """``{"print": false}``: no receipt (before or right after the sale completes);
        ``{"print": true}``: the receipt after all — printed once, however often asked."""
        found: Doc | None = await call(queue.choose_receipt, sale_id, body.print)
        if found is not None and found["status"] == "queued" and printing.worker is not None:
            printing.worker.wake()
        return {"sale_id": sale_id, "print": body.print, "job": found}

    @router.post("/drawer")
    async def drawer(body: DrawerIn | None = None) -> Doc:
        return await printing.kick_drawer(body.pin if body else None)

    @router.post("/reports/x", status_code=202)
    async def x_report() -> Doc:
        return await queued(await call(queue.print_x_report))

    @router.post("/reports/z", status_code=202)
    async def z_report(body: ZReportIn | None = None) -> Doc:
        return await queued(await call(queue.print_z_report, body.number if body else None))

    @router.get("/preview/{sale_id}")
    async def preview(sale_id: str, format: Literal["text", "png"] = "text") -> Response:
        from appliance.printing.preview import render_preview

        sale: Doc = await call(Register.sale, sale_id)
        body = await asyncio.to_thread(
            render_preview, sale, printing.profile, printing.settings, format
        )
        media = "image/png" if format == "png" else "text/plain; charset=utf-8"
        return Response(body, media_type=media)

    @router.put("/simulated")
    async def simulated(body: SimulatedIn) -> Doc:
        return await printing.set_simulated(**body.model_dump(exclude_none=True))

    return router

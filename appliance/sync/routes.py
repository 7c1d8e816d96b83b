"""The register's sync routes for the admin panel and the sell screen (``/api/sync``).

GET  /api/sync/status            the contract of `appliance sync status`, exactly
GET  /api/sync                   everything the admin panel shows (link, banner, …)
POST /api/sync/now               sync now ("retry now"): push, pull, apply
POST /api/sync/pair              pair with a back office {url, code}
GET  /api/sync/errored           errored items with the server's reasons
POST /api/sync/errored/retry     retry all errored items; …/{id}/retry one
GET  /api/sync/errored/download  all errored items as one JSON file
GET  /api/sync/reset             what a reset would lose (the warning)
GET  /api/sync/export            every unsynced op as one JSON file (allows a reset)
POST /api/sync/reset             reset {confirm: true}
PUT  /api/sync/settings          {saved_sales_sync: bool}
GET  /api/sync/banner            "<user> synced this register" (or null); POST …/dismiss
GET  /api/sync/inventory/{sku}   stock from the back office (needs the connection)
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from appliance.errors import Conflict, NotFound
from appliance.register import Register
from appliance.sync import outbox
from appliance.sync import reset as reset_data
from appliance.sync.client import Rejected, SyncError
from appliance.sync.engine import SyncEngine
from appliance.sync.offline import refuse

Doc = dict[str, Any]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PairIn(_Body):
    url: StrictStr = Field(pattern=r"^https?://[^\s]{1,200}$")
    code: StrictStr = Field(min_length=4, max_length=32)
    name: StrictStr | None = Field(default=None, max_length=100)


class SyncNowIn(_Body):
    by: StrictStr | None = Field(default=None, max_length=100, description="who asked")


class ResetIn(_Body):
    confirm: StrictBool = False


class SettingsIn(_Body):
    saved_sales_sync: StrictBool


def _attachment(doc: Doc, name: str) -> Response:
    return Response(
        json.dumps(doc, indent=2, sort_keys=True),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def build_router(engine: SyncEngine) -> APIRouter:
    router = APIRouter(prefix="/api/sync", tags=["sync"])
    call = engine.call

    def contract(register: Register) -> Doc:
        return outbox.contract(register.conn, register.register_id, engine.link.online)

    @router.get("/status")
    async def status() -> Doc:
        """online, pending, errored [{id, kind, error, at}], last_synced_at."""
        result: Doc = await call(contract)
        return result

    @router.get("")
    async def details() -> Doc:
        base: Doc = await call(contract)
        st = engine.state
        return {
            **base,
            "paired": engine.client is not None,
            "backoffice_url": st.get("url"),
            "store_id": st.get("store_id"),
            "store_name": st.get("store_name"),
            "link": engine.link.as_dict(),
            "saved_sales_sync": engine.saved_sales_sync,
            "banner": st.get("banner"),
            "waiting_updates": [b["kind"] for b in engine.waiting],
            "update_errors": engine.update_errors,
            "relay_errors": engine.relay_errors,
            "applied_versions": st.get("applied", {}),
            "last_error": engine.last_error,
            "restoring": engine.restoring,
        }

    @router.post("/now")
    async def sync_now(body: SyncNowIn | None = None) -> Doc:
        """Sync now; while a sale is in progress the updates apply right after it."""
        done = await engine.sync_now(body.by if body else None)
        result: Doc = await call(contract)
        return {**result, "synced": done, "waiting_updates": [b["kind"] for b in engine.waiting]}

    @router.post("/pair")
    async def pair(body: PairIn) -> Doc:
        return await engine.pair(body.url, body.code, body.name)

    @router.get("/errored")
    async def errored() -> list[Doc]:
        result: list[Doc] = await call(lambda r: outbox.errored(r.conn))
        return result

    async def _retry(op_ids: list[str] | None) -> Doc:
        if engine.client is None:
            raise Conflict("this register is not paired with a back office", field="sync")
        if not engine.link.online:
            raise refuse("retrying errored items")
        ops = await call(outbox.errored_ops, op_ids)
        if op_ids is not None and not ops:
            raise NotFound(f"no errored item {op_ids[0]!r}", field="id")
        done, still = [], []
        for op in ops:
            sendable = {k: v for k, v in op.items() if k != "seq"}
            try:
                await engine.client.push([sendable], 0, engine.saved_sales_sync)
            except Rejected as exc:
                await call(outbox.mark_errored, op, exc.message, exc.status)
                still.append({"id": op["op_id"], "error": exc.message})
                continue
            except SyncError as exc:
                raise Conflict(f"the back office cannot take it now: {exc.message}") from None
            await call(outbox.clear_errored, [op["op_id"]])
            done.append(op["op_id"])
        return {"synced": done, "still_errored": still}

    @router.post("/errored/retry")
    async def retry_all() -> Doc:
        return await _retry(None)

    @router.post("/errored/{op_id}/retry")
    async def retry_one(op_id: str) -> Doc:
        return await _retry([op_id])

    @router.get("/errored/download")
    async def download_errored() -> Response:
        def collect(register: Register) -> Doc:
            items = outbox.errored(register.conn)
            ops = {op["op_id"]: op for op in outbox.errored_ops(register)}
            return {
                "register_id": register.register_id,
                "store_id": outbox.get(register.conn, "store_id"),
                "downloaded_at": outbox.now_iso(),
                "errored": [{**item, "op": ops.get(item["id"])} for item in items],
            }

        doc: Doc = await call(collect)
        return _attachment(doc, f"errored-{engine.register_id}.json")

    @router.get("/reset")
    async def reset_preview() -> Doc:
        result: Doc = await call(reset_data.preview)
        return result

    @router.get("/export")
    async def export() -> Response:
        doc: Doc = await call(reset_data.export)
        return _attachment(doc, f"unsynced-{engine.register_id}-{doc['exported_at']}.json")

    @router.post("/reset")
    async def reset(body: ResetIn) -> Doc:
        return await engine.reset(body.confirm)

    @router.put("/settings")
    async def settings(body: SettingsIn) -> Doc:
        return await engine.set_saved_sales_sync(body.saved_sales_sync)

    @router.get("/banner")
    async def banner() -> Doc | None:
        value: Doc | None = engine.state.get("banner")
        return value

    @router.post("/banner/dismiss")
    async def dismiss_banner() -> Doc:
        await call(engine._remember, {"banner": None})
        return {"dismissed": True}

    @router.get("/inventory/{sku}")
    async def inventory(sku: str, request: Request) -> Doc:
        """Stock counted by the back office: an inventory look-up needs the connection."""
        if engine.client is None:
            raise Conflict("inventory look-ups need a back office: pair the register first")
        if not engine.link.online:
            raise refuse("inventory look-ups")
        try:
            return await engine.client.inventory(sku)
        except Rejected as exc:
            raise NotFound(exc.message, field="sku") from None
        except SyncError:
            raise refuse("inventory look-ups") from None

    return router

"""The back office API for registers: pair, push ops, pull updates, report syncs.

Every route but ``/health`` and ``/pair`` takes the register's token and works in
the register's own store only.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from starlette.concurrency import run_in_threadpool

from appliance import __version__
from appliance.backoffice import auth, ingest, registers
from appliance.backoffice.app import BO, RegisterAuth
from appliance.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["registers"])
MAX_WAIT = 25.0
RECHECK_SECONDS = 5.0
Doc = dict[str, Any]
Versions = Annotated[dict[Annotated[str, Field(max_length=32)], StrictInt], Field(max_length=64)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PairIn(_Body):
    code: StrictStr = Field(min_length=1, max_length=32)
    register_id: StrictStr = Field(pattern=r"^[A-Za-z0-9]{1,16}$")
    name: StrictStr | None = Field(default=None, max_length=100)


class PushIn(_Body):
    ops: list[Any] = Field(max_length=1000)
    pending: Annotated[StrictInt, Field(ge=0, le=10**9)] | None = None
    saved_sales_sync: StrictBool | None = None


class PullIn(_Body):
    relay_after: Annotated[StrictInt, Field(ge=0)] = 0
    known: Versions = Field(default_factory=dict, description="bundle versions it has")
    applied: Versions = Field(default_factory=dict, description="bundle versions applied")
    pending: Annotated[StrictInt, Field(ge=0, le=10**9)] | None = None
    saved_sales_sync: StrictBool = True
    wait: float = Field(default=0, ge=0, le=60, description="long-poll seconds")
    software: StrictStr | None = Field(default=None, max_length=40)


class SyncedIn(_Body):
    request_id: StrictInt | None = None
    by: StrictStr | None = Field(default=None, max_length=100)


class HandoverIn(_Body):
    sale_ids: list[Annotated[StrictStr, Field(max_length=64)]] = Field(max_length=10_000)


@router.get("/health", tags=["health"])
def health() -> Doc:
    return {"status": "ok", "service": "backoffice", "version": __version__, "time": auth.now_iso()}


@router.post("/pair")
def pair(bo: BO, body: PairIn) -> Doc:
    """Trade a one-time pairing code for this register's token."""
    with bo.write() as tx:
        return registers.pair(tx, body.code, body.register_id, body.name)


@router.post("/sync/push")
def push(bo: BO, reg: RegisterAuth, body: PushIn) -> Doc:
    """Store a batch of the register's ops, exactly once each (all or nothing)."""
    with bo.write() as tx:
        registers.seen(tx, reg, pending=body.pending, saved_sales_sync=body.saved_sales_sync)
        relay = (
            body.saved_sales_sync
            if body.saved_sales_sync is not None
            else bool(reg["saved_sales_sync"])
        )
        result = ingest.push(tx, reg["store_id"], reg["register_id"], body.ops, relay=relay)
    if result["accepted"]:
        bo.notifier.notify(reg["store_id"])
    return {**result, "server_time": auth.now_iso()}


def _collect(bo: Any, reg: Doc, body: PullIn) -> Doc:
    with bo.write() as tx:
        versions = {"known": body.known, "applied": body.applied}
        registers.seen(
            tx,
            reg,
            pending=body.pending,
            saved_sales_sync=body.saved_sales_sync,
            versions=versions,
            software=body.software,
        )
        relay: list[Doc] = []
        cursor = body.relay_after
        if body.saved_sales_sync:
            relay, cursor = ingest.relay_ops(tx, reg["store_id"], reg["register_id"], cursor)
        bundles, more = ingest.bundles_after(tx, reg["store_id"], body.known)
        request = registers.open_request(tx, reg)
    return {
        "relay": relay,
        "relay_cursor": cursor,
        "bundles": bundles,
        "more": more or len(relay) >= ingest.RELAY_PAGE,
        "sync_request": request,
        "server_time": auth.now_iso(),
    }


@router.post("/sync/pull")
async def pull(bo: BO, reg: RegisterAuth, body: PullIn) -> Doc:
    """Saved-sale ops of the other registers, newer bundles and sync requests.

    With ``wait`` > 0 the answer is held until something arrives or the wait ends.
    """
    deadline = time.monotonic() + min(body.wait, MAX_WAIT)
    while True:
        seen = bo.notifier.generation[reg["store_id"]]
        result: Doc = await run_in_threadpool(_collect, bo, reg, body)
        left = deadline - time.monotonic()
        moved = result["relay_cursor"] != body.relay_after
        if moved or result["bundles"] or result["sync_request"] or left <= 0:
            return result
        await bo.notifier.wait(reg["store_id"], seen, min(left, RECHECK_SECONDS))


@router.post("/sync/synced")
def synced(bo: BO, reg: RegisterAuth, body: SyncedIn) -> Doc:
    """The register finished a sync (asked for by a user, by staff, or by itself)."""
    with bo.write() as tx:
        return registers.synced(tx, reg, body.request_id, body.by)


@router.post("/sync/handover")
def handover(bo: BO, reg: RegisterAuth, body: HandoverIn) -> Doc:
    """Give the store's other registers these saved sales (before removing them here)."""
    with bo.write() as tx:
        tx.lock_store(reg["store_id"])
        missing = []
        for sale_id in body.sale_ids:
            row = tx.one(
                "SELECT sale_id FROM sales WHERE store_id = ? AND sale_id = ?",
                (reg["store_id"], sale_id),
            )
            if row is None:
                missing.append(sale_id)
            else:
                ingest.relay_sale(tx, reg["store_id"], sale_id)
    bo.notifier.notify(reg["store_id"])
    return {"handed_over": len(body.sale_ids) - len(missing), "missing": missing}


@router.get("/sync/restore")
def restore(
    bo: BO,
    reg: RegisterAuth,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 2000,
) -> Doc:
    """This register's own ops as the back office holds them (after a data reset)."""
    with bo.read() as tx:
        ops = ingest.own_ops(tx, reg["store_id"], reg["register_id"], after, limit)
    return {"ops": ops, "next_after": ops[-1]["seq"] if ops else after, "more": len(ops) == limit}


@router.get("/sync/inventory/{sku}")
def inventory(bo: BO, reg: RegisterAuth, sku: str) -> Doc:
    """Stock of a product in the register's store, as the back office counts it."""
    with bo.read() as tx:
        row = tx.one(
            "SELECT sku, name, on_hand, updated_at FROM products WHERE store_id = ? AND sku = ?"
            " AND removed_at IS NULL",
            (reg["store_id"], sku),
        )
    if row is None:
        raise NotFound(f"no product {sku!r} in the back office catalog", field="sku")
    return {**row, "store_id": reg["store_id"]}

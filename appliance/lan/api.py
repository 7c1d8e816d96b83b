"""HTTP routes of LAN sync (``/api/lan/...``) for the sell screen and admin panel.

The register list, the saved sales of all registers (with who holds each one and
whether it is in checkout elsewhere), and the saved-sale actions. Errors have the
API's one shape; a sale this register does not have answers 404 ``sale_not_found``
with the register that holds it and whether that register is reachable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from appliance.config import Config
from appliance.lan import actions
from appliance.lan.registry import CONNECTED, PeerDirectory
from appliance.lan.saved import SAVED, holder_of, lease_of
from appliance.register import Register
from appliance.service import RegisterService

Doc = dict[str, Any]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NameIn(_Body):
    name: StrictStr = Field(min_length=1, max_length=64)


class TransferIn(_Body):
    to: StrictStr = Field(pattern=r"^[A-Za-z0-9]{1,16}$", description="register id")


class MergeIn(_Body):
    from_sale_id: StrictStr = Field(min_length=1, max_length=80, alias="from")


class SplitIn(_Body):
    line_nos: list[Annotated[StrictInt, Field(ge=1, le=10**6)]] = Field(
        min_length=1, max_length=500
    )
    name: StrictStr = Field(min_length=1, max_length=64)


def saved_sales(register: Register, peers: PeerDirectory) -> list[Doc]:
    """Every saved sale this register knows, with holder and checkout, then the saved
    sales that registers out of sync reported and this register does not have."""
    now, me = actions.now_ms(), register.register_id
    out = []
    for doc in register.state.sales("status IN ('open', 'parked')"):
        if doc["kind"] != "sale" or doc["status"] not in SAVED:
            continue
        holder = holder_of(doc)
        lease = lease_of(doc, now, me, peers.status)
        checkout = None
        if lease is not None:
            who = peers.label(lease["register_id"])
            text = f"checkout on {who} lapsed" if lease["lapsed"] else f"in checkout on {who}"
            checkout = {**lease, "message": text}
        out.append(
            {
                "id": doc["id"],
                "name": doc.get("name"),
                "status": doc["status"],
                "holder": holder,
                "holder_name": peers.label(holder),
                "holder_status": peers.status(holder),
                "checkout": checkout,
                "total": doc["totals"]["total"],
                "lines": len([x for x in doc["lines"] if not x.get("voided")]),
                "opened_at": doc.get("opened_at"),
                "available": True,
            }
        )
    have = {s["id"] for s in out}
    for entry in peers.entries.values():
        if peers.status(entry.register_id) == CONNECTED:
            continue  # its sales are synced; any not here yet arrive in a moment
        for sale in entry.held:
            if sale.get("id") in have:
                continue
            problem = peers.not_found(str(sale["id"]))
            out.append(
                {
                    **sale,
                    "holder": entry.register_id,
                    "holder_name": peers.label(entry.register_id),
                    "holder_status": peers.status(entry.register_id),
                    "checkout": None,
                    "available": False,
                    "message": problem.message,
                }
            )
    return out


def make_router(
    config: Config,
    service: RegisterService,
    peers: PeerDirectory,
    status: Callable[[], Doc],
    waiter: Callable[[str, int, float], Awaitable[bool]] | None = None,
) -> APIRouter:
    router = APIRouter(prefix="/api/lan", tags=["lan sync"])
    lease_seconds = config.lan.lease_seconds

    async def call(fn: Any, *args: Any) -> Doc:
        """Run a saved-sale action with this register's view of its peers."""
        result: Doc = await service.call(fn, peers, *args)
        return result

    @router.get("/status")
    async def lan_status() -> Doc:
        """Whether LAN sync runs, this register's sync port and key id, peers, counters."""
        return status()

    @router.get("/registers")
    async def registers() -> Doc:
        """The register list: this register, connected, on another version, away."""
        vector: dict[str, int] = status().get("vector", {})
        return {
            "registers": peers.register_list(vector),
            "unpaired": list(peers.unpaired.values()),
        }

    @router.get("/wait")
    async def wait(
        origin: Annotated[str, Query(pattern=r"^[A-Za-z0-9]{1,16}$")],
        seq: Annotated[int, Query(ge=1)],
        timeout: Annotated[float, Query(gt=0, le=60)] = 10.0,
    ) -> Doc:
        """Answer when this register holds register ``origin``'s ops up to number
        ``seq`` (or after ``timeout`` seconds, with ``reached`` false)."""
        if waiter is None:
            return {"reached": origin == config.register.id, "origin": origin, "seq": seq}
        reached = await waiter(origin, seq, timeout)
        return {"reached": reached, "origin": origin, "seq": seq}

    @router.get("/sales")
    async def all_saved_sales() -> list[Doc]:
        """Saved sales of all registers (open and parked), with holder and checkout."""
        found: list[Doc] = await service.call(saved_sales, peers)
        return found

    @router.get("/sales/{sale_id}")
    async def get_sale(sale_id: str) -> Doc:
        return await call(actions.find, sale_id)

    @router.post("/sales/{sale_id}/resume")
    async def resume(sale_id: str) -> Doc:
        return await call(actions.resume, sale_id)

    @router.post("/sales/{sale_id}/rename")
    async def rename(sale_id: str, body: NameIn) -> Doc:
        return await call(actions.rename, sale_id, body.name)

    @router.post("/sales/{sale_id}/transfer")
    async def transfer(sale_id: str, body: TransferIn) -> Doc:
        return await call(actions.transfer, sale_id, body.to)

    @router.post("/sales/{sale_id}/merge")
    async def merge(sale_id: str, body: MergeIn) -> Doc:
        """Move every line of the sale ``from`` into this one; ``from`` is closed."""
        return await call(actions.merge, sale_id, body.from_sale_id)

    @router.post("/sales/{sale_id}/split", status_code=201)
    async def split(sale_id: str, body: SplitIn) -> Doc:
        """Move the lines ``line_nos`` into a new saved sale ``name``."""
        return await call(actions.split, sale_id, body.line_nos, body.name)

    @router.post("/sales/{sale_id}/checkout")
    async def checkout(sale_id: str) -> Doc:
        """Hold the sale for payment on this register (others show "in checkout")."""
        return await call(actions.take_checkout, sale_id, lease_seconds)

    @router.delete("/sales/{sale_id}/checkout")
    async def release(sale_id: str) -> Doc:
        return await call(actions.release_checkout, sale_id)

    return router

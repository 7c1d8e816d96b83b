"""Server push to the screens: committed ops and scan outcomes as Server-Sent Events.

The register calls its listeners on its DB thread; the hub hands each event to the
event loop, which fans it out to every open ``GET /events`` stream. A screen that
misses events (a reconnect) reloads what it shows, so events only say what changed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request

Doc = dict[str, Any]
QUEUE_LIMIT = 500  # a stalled screen drops events beyond this, then reloads
KEEPALIVE_S = 15.0
STREAM_MAX_S = 300.0  # streams end now and then; EventSource reconnects by itself


class EventHub:
    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.queues: set[asyncio.Queue[Doc | None]] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def publish_threadsafe(self, event: Doc) -> None:
        """From any thread (the register's): deliver on the loop."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.publish, event)

    def publish(self, event: Doc) -> None:
        for queue in self.queues:
            if queue.qsize() < QUEUE_LIMIT:
                queue.put_nowait(event)

    def close(self) -> None:
        for queue in self.queues:
            queue.put_nowait(None)

    async def stream(self, request: Request) -> AsyncIterator[str]:
        queue: asyncio.Queue[Doc | None] = asyncio.Queue()
        self.queues.add(queue)
        loop = asyncio.get_running_loop()
        ends = loop.time() + STREAM_MAX_S
        try:
            yield "retry: 2000\nevent: hello\ndata: {}\n\n"
            while loop.time() < ends:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": keepalive\n\n"
                    continue
                if event is None:
                    return
                yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
        finally:
            self.queues.discard(queue)


def op_events(ops: list[Doc]) -> list[Doc]:
    """The screen events of one commit: which sales changed, users, catalog."""
    events: list[Doc] = []
    sales: dict[str, Doc] = {}
    for op in ops:
        kind = op["kind"]
        if op.get("sale_id"):
            event = sales.setdefault(
                op["sale_id"],
                {
                    "type": "sale",
                    "sale_id": op["sale_id"],
                    "register_id": op["register_id"],
                    "kinds": [],
                },
            )
            event["kinds"].append(kind)
        elif kind.startswith("shift."):
            events.append({"type": "shift", "kind": kind})
        elif kind == "catalog.import":
            events.append({"type": "catalog", "count": len(op["payload"].get("products", []))})
        elif kind == "user.upsert":
            events.append({"type": "users", "username": op["payload"]["user"]["username"]})
    return events + list(sales.values())


def scan_event(code: str, result: Doc | None, error: Exception | None) -> Doc:
    if error is not None:
        info = error.to_dict() if hasattr(error, "to_dict") else {"message": str(error)}
        return {"type": "scan", "ok": False, "code": code, "error": info}
    assert result is not None
    sale = result.get("sale") or {}
    return {
        "type": "scan",
        "ok": True,
        "code": code,
        "action": result.get("action"),
        "sale_id": sale.get("id"),
        "receipt_no": result.get("receipt_no"),
    }

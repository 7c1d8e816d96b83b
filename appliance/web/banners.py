"""The banners on the sell screen: what the cashier must know before the next sale.

Each source returns zero or more ``{"level", "id", "text"}``; ``level`` is ``error``
(selling is affected), ``warning`` or ``info``. The browser adds one of its own: the
register itself unreachable (the event stream dropped).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from appliance.register import Register

Doc = dict[str, Any]


def _register_banners(register: Register) -> list[Doc]:
    out: list[Doc] = []
    if register.current_shift() is None:
        out.append(
            {
                "level": "warning",
                "id": "no-shift",
                "text": "No shift is open: payments need an open shift (Admin › Shifts).",
            }
        )
    row = register.conn.execute(
        "SELECT register_id, json_array_length(payload, '$.products') FROM ops"
        " WHERE kind = 'catalog.import' ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    if row is not None and row[0] != register.register_id:
        out.append(
            {
                "level": "info",
                "id": "catalog-updated",
                "text": f"Catalog updated by {row[0]} ({row[1]} products).",
            }
        )
    return out


def _scanner_banners(request: Request) -> list[Doc]:
    manager = getattr(request.app.state, "scanners", None)
    if manager is None:
        return []
    return [
        {"level": "error", "id": f"scanner-{sid}", "text": f"Scanner {sid} stopped: {error}"}
        for sid, error in manager.errors.items()
    ]


async def collect_banners(request: Request) -> list[Doc]:
    svc = request.app.state.service
    banners: list[Doc] = await svc.call(_register_banners)
    return banners + _scanner_banners(request)

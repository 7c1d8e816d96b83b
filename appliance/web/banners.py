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
        by = "the back office" if row[0] == "bo" else f"register {row[0]}"
        out.append(
            {
                "level": "info",
                "id": "catalog-updated",
                "text": f"Catalog updated by {by} ({row[1]} products).",
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


async def _sync_banners(request: Request) -> list[Doc]:
    """Offline (with what waits to be sent) and "synced by <user>" (appliance/sync)."""
    engine = getattr(request.app.state, "sync", None)
    if engine is None:
        return []
    from appliance.sync import outbox
    from appliance.sync.link import link_for

    out: list[Doc] = []
    link = link_for(request.app.state.service)
    if link.offline:
        pending: int = await request.app.state.service.call(
            lambda r: outbox.pending_count(r.conn, r.register_id)
        )
        cards = await _pending_offline_cards(request)
        waiting = f"{pending} change(s) wait to be sent"
        if cards:
            waiting += f", {cards} offline card payment(s) wait to be forwarded"
        out.append(
            {
                "level": "error",
                "id": "offline",
                "text": "Offline: the back office cannot be reached "
                f"({link.reason or 'no answer'}). Keep selling: cash, park, barcode and SKU "
                f"work; {waiting}.",
            }
        )
    banner = engine.state.get("banner")
    if banner:
        out.append({"level": "info", "id": "synced-by", "text": banner["text"]})
    return out


async def _pending_offline_cards(request: Request) -> int:
    payments = getattr(request.app.state, "payments", None)
    if payments is None:
        return 0
    status = await payments.terminal_status()
    return int(status["pending_forward"]["count"])


async def _terminal_banners(request: Request) -> list[Doc]:
    """The card terminal unreachable (appliance/payments)."""
    payments = getattr(request.app.state, "payments", None)
    if payments is None or not payments.link.address or payments.link.connected:
        return []
    if not payments.link.last_error:
        return []
    return [
        {
            "level": "warning",
            "id": "terminal",
            "text": f"Card terminal unreachable: {payments.link.last_error}. Take cash "
            "or try the card again.",
        }
    ]


async def _printer_banners(request: Request) -> list[Doc]:
    """Out of paper, cover open, receipts that failed (appliance/printing)."""
    printing = getattr(request.app.state, "printing", None)
    if printing is None:
        return []
    status = await printing.status()
    printer = status.get("printer") or {}
    out: list[Doc] = []
    if printer.get("known") and not printer.get("ready"):
        if printer.get("paper") == "out":
            text = "Printer out of paper: receipts wait and print once paper is in."
        elif printer.get("cover_open"):
            text = "Printer cover open: close it; receipts wait and print then."
        else:
            text = f"Printer not ready: {printer.get('reason') or printer.get('error')}."
        out.append({"level": "error", "id": "printer", "text": text})
    elif printer.get("paper") == "near_end":
        out.append({"level": "warning", "id": "printer", "text": "Printer paper is running low."})
    failed = status.get("jobs", {}).get("failed", 0)
    if failed:
        out.append(
            {
                "level": "warning",
                "id": "print-failed",
                "text": f"{failed} print job(s) failed: retry them in Admin › Peripherals.",
            }
        )
    return out


async def collect_banners(request: Request) -> list[Doc]:
    svc = request.app.state.service
    banners: list[Doc] = await svc.call(_register_banners)
    banners += await _sync_banners(request)
    banners += await _terminal_banners(request)
    banners += await _printer_banners(request)
    return banners + _scanner_banners(request)

"""The admin panel (/admin): server-rendered pages over the register's API.

Each page reads on the register's thread and renders; every button calls the JSON
API, so the panel can do exactly what a manager's API client can, with the same
checks. Pages for parts another feature provides show what that feature exposes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from appliance.auth.users import list_users
from appliance.errors import ApplianceError
from appliance.register import Register
from appliance.service import RegisterService
from appliance.web import screen_data
from appliance.web.render import page

Doc = dict[str, Any]
router = APIRouter(prefix="/admin", include_in_schema=False)
api_router = APIRouter(prefix="/api/peripherals", tags=["peripherals"])

SECTIONS = (
    ("status", "/admin", "Status"),
    ("registers", "/admin/registers", "Registers"),
    ("peripherals", "/admin/peripherals", "Peripherals"),
    ("sales", "/admin/sales", "Saved sales"),
    ("shifts", "/admin/shifts", "Shifts"),
    ("payments", "/admin/payments", "Offline payments"),
    ("catalog", "/admin/catalog", "Catalog"),
    ("users", "/admin/users", "Users"),
    ("settings", "/admin/settings", "Settings"),
    ("receipt", "/admin/receipt-preview", "Receipt preview"),
)


def _svc(request: Request) -> RegisterService:
    svc: RegisterService = request.app.state.service
    return svc


def _admin(request: Request, section: str, template: str, **context: Any) -> Response:
    printing = getattr(request.app.state, "printing", None) is not None
    return page(request, template, sections=SECTIONS, section=section, printing=printing, **context)


@router.get("", response_class=HTMLResponse)
async def status(request: Request) -> Response:
    info: Doc = await _svc(request).call(screen_data.status)
    return _admin(request, "status", "admin/status.html", info=info, sync=await _sync(request))


async def _sync(request: Request) -> Doc | None:
    """The back office link as the status page shows it (None without sync)."""
    engine = getattr(request.app.state, "sync", None)
    if engine is None:
        return None
    from appliance.sync import outbox
    from appliance.sync import reset as reset_data

    def read(register: Register) -> Doc:
        return {
            **outbox.contract(register.conn, register.register_id, engine.link.online),
            "reset": reset_data.preview(register),
        }

    found: Doc = await _svc(request).call(read)
    return {
        **found,
        "paired": engine.client is not None,
        "link": engine.link.as_dict(),
        "saved_sales_sync": engine.saved_sales_sync,
    }


@router.get("/registers", response_class=HTMLResponse)
async def registers(request: Request) -> Response:
    from appliance.web.sell import has_route

    info: Doc = await _svc(request).call(screen_data.status)
    lan = has_route(request, "/api/lan/registers")
    return _admin(request, "registers", "admin/registers.html", info=info, lan=lan)


@router.get("/peripherals", response_class=HTMLResponse)
async def peripherals(request: Request) -> Response:
    from appliance.peripherals import scanners_status

    manager = getattr(request.app.state, "scanners", None)
    scanners = scanners_status(manager) if manager is not None else []
    service = getattr(request.app.state, "payments", None)
    terminal = await service.terminal_status() if service is not None else None
    printing = getattr(request.app.state, "printing", None)
    printer = await printing.status() if printing is not None else None
    failed: list[Doc] = []
    if printing is not None:
        from appliance.printing import queue

        failed = await _svc(request).call(queue.jobs, "failed", 50)
    return _admin(
        request,
        "peripherals",
        "admin/peripherals.html",
        scanners=scanners,
        terminal=terminal,
        printer=printer,
        failed_jobs=failed,
        redetected=getattr(request.app.state, "redetected", None),
    )


@api_router.post("/redetect")
async def redetect(request: Request) -> Doc:
    """Look for every peripheral again: scanners restart (each finds its device afresh,
    with the runtime settings' layouts), the printer's link is reopened and asked for
    its status, the terminal's link is dropped and re-established. Returns what was
    found; the peripherals page shows it."""
    from datetime import UTC, datetime

    from appliance.peripherals import redetect_scanners

    state = request.app.state
    found: Doc = {"at": datetime.now(UTC).isoformat(timespec="seconds")}
    manager = getattr(state, "scanners", None)
    if manager is not None:
        config = await _svc(request).call(lambda register: register.config)
        found["scanners"] = await redetect_scanners(manager, config)
    printing = getattr(state, "printing", None)
    if printing is not None:
        printer = await printing.redetect()
        inner = printer.get("printer") or {}
        found["printer"] = {
            "ready": bool(inner.get("ready")),
            "reason": inner.get("reason") or printer.get("error"),
            "model": printer.get("model"),
        }
    payments = getattr(state, "payments", None)
    if payments is not None:
        terminal = await payments.redetect()
        found["terminal"] = {
            "connected": terminal.get("connected"),
            "redetect": terminal.get("redetect"),
            "terminal": terminal.get("terminal"),
        }
    state.redetected = found
    return found


@router.get("/sales", response_class=HTMLResponse)
async def sales(request: Request) -> Response:
    svc = _svc(request)
    from appliance.web.sell import lan_peers

    view: Doc = await svc.call(screen_data.saved_sales_view, lan_peers(request))
    recent: list[Doc] = await svc.call(screen_data.recent_sales)
    return _admin(request, "sales", "admin/sales.html", recent=recent, **view)


@router.get("/sales/{sale_id}", response_class=HTMLResponse)
async def sale(request: Request, sale_id: str) -> Response:
    from appliance.web.sell import has_route

    doc: Doc = await _svc(request).call(Register.sale, sale_id)
    lan = has_route(request, "/api/lan/sales/{sale_id}/transfer")
    return _admin(request, "sales", "admin/sale.html", sale=doc, lan=lan)


@router.get("/shifts", response_class=HTMLResponse)
async def shifts(request: Request) -> Response:
    svc = _svc(request)
    current: Doc | None = await svc.call(Register.current_shift)
    x_report = await svc.call(Register.x_report) if current else None
    history: list[Doc] = await svc.call(screen_data.shifts)
    return _admin(
        request,
        "shifts",
        "admin/shifts.html",
        current=current,
        x_text=_report_text(request, x_report, "X report") if x_report else "",
        history=[s for s in history if s["status"] == "closed"],
    )


def _report_text(request: Request, report: Doc, title: str) -> str:
    """The report as the printer prints it (one label and value per line)."""
    from appliance.reports import format_report

    decimals = request.app.state.features.config.store.currency_decimals
    return format_report(report, title, decimals)


@router.get("/shifts/{number}", response_class=HTMLResponse)
async def z_report(request: Request, number: int) -> Response:
    try:
        report: Doc = await _svc(request).call(Register.z_report, number)
    except ApplianceError as exc:
        return _admin(request, "shifts", "admin/message.html", message=exc.message)
    text = _report_text(request, report, f"Z report {report.get('z_no', number)}")
    return _admin(request, "shifts", "admin/z.html", report=report, text=text)


@router.get("/payments", response_class=HTMLResponse)
async def payments(request: Request) -> Response:
    service = getattr(request.app.state, "payments", None)
    overview = await service.offline_overview() if service is not None else None
    return _admin(request, "payments", "admin/payments.html", overview=overview)


@router.get("/catalog", response_class=HTMLResponse)
async def catalog(request: Request, q: str = "") -> Response:
    svc = _svc(request)
    products: list[Doc] = await svc.call(Register.search_products, q[:64], 200)
    updates: list[Doc] = await svc.call(screen_data.catalog_updates)
    return _admin(request, "catalog", "admin/catalog.html", products=products, q=q, updates=updates)


@router.get("/users", response_class=HTMLResponse)
async def users(request: Request) -> Response:
    import time

    from appliance.auth.lockout import locked_accounts

    svc = _svc(request)
    found: list[Doc] = await svc.call(list_users)
    locked: dict[str, float] = await svc.call(locked_accounts, time.time())
    return _admin(request, "users", "admin/users.html", users=found, locked=locked)


SECRETS = {"password", "secret", "manager_pin", "secret_file"}


def _hide_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "(hidden)" if k in SECRETS else _hide_secrets(v) for k, v in value.items()}
    return value


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request) -> Response:
    from appliance import settings
    from drivers.printers.profiles import PROFILE_DIR
    from drivers.scanners.keymaps import LAYOUTS

    svc = _svc(request)
    current: Doc = await svc.call(settings.overview)
    config = await svc.call(lambda register: register.config)
    keys: list[Doc] = await svc.call(screen_data.quick_keys, list(config.web.quick_keys))
    sections = {
        name: _hide_secrets(getattr(config, name).model_dump(mode="json"))
        for name in type(config).model_fields
        if name != "source"
    }
    manager = getattr(request.app.state, "scanners", None)
    scanner_ids = sorted(manager.scanners) if manager is not None else []
    return _admin(
        request,
        "settings",
        "admin/settings.html",
        config_sections=sections,
        keys=keys,
        current=current,
        printer_profiles=sorted(p.stem for p in PROFILE_DIR.glob("*.toml")),
        layouts=list(LAYOUTS),
        scanner_ids=scanner_ids,
        sync=await _sync(request),
    )


@router.get("/receipt-preview", response_class=HTMLResponse)
async def receipt_preview(request: Request) -> Response:
    last: Doc | None = await _svc(request).call(screen_data.last_completed)
    text = None
    service = getattr(request.app.state, "printing", None)
    if last is not None and service is not None:
        import asyncio

        from appliance.printing.preview import render_preview

        raw = await asyncio.to_thread(
            render_preview, last, service.profile, service.settings, "text"
        )
        text = raw.decode("utf-8", errors="replace")
    return _admin(request, "receipt", "admin/receipt.html", sale=last, text=text)

"""The sell screen: the page, its server-rendered fragments, and the event stream.

The page is rendered once; the cart, search results, parked sales, refund form and
banners are HTML fragments the screen's script fetches and swaps in when the user
acts or when ``/events`` says something changed (a scan from a hardware scanner, a
sale parked on another screen). Every change goes through the JSON API (``/api``),
so the screen can do nothing a client of the API could not.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from appliance.auth.routes import setup_pending
from appliance.errors import ApplianceError
from appliance.register import Register
from appliance.service import RegisterService
from appliance.web import screen_data
from appliance.web.banners import collect_banners
from appliance.web.render import page

Doc = dict[str, Any]
router = APIRouter(include_in_schema=False)


def _svc(request: Request) -> RegisterService:
    svc: RegisterService = request.app.state.service
    return svc


@router.get("/", response_class=HTMLResponse)
async def sell_page(request: Request) -> Response:
    svc = _svc(request)
    config = request.app.state.features.config
    keys = await svc.call(screen_data.quick_keys, list(config.web.quick_keys))
    sale = await svc.call(screen_data.current_sale)
    categories: list[str] = await svc.call(lambda register: register.tax_categories)
    return page(
        request,
        "sell.html",
        quick_keys=keys,
        sale_id=sale["id"] if sale else "",
        card_terminal=has_route(request, "/api/sales/{sale_id}/payments"),
        lan=has_route(request, "/api/lan/sales/{sale_id}/resume"),
        printing_receipts=has_route(request, "/api/printer/receipts/{sale_id}"),
        tax_categories=categories,
    )


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/") -> Response:
    if await setup_pending(request):
        return RedirectResponse("/setup", status_code=303)
    users: list[Doc] = await _svc(request).call(_login_names)
    # Only a path of this register: no "//host" or "/\\host" (browsers read both as a host).
    target = next if re.fullmatch(r"/(?![/\\])[\w\-./?=&%]*", next) else "/"
    return page(request, "login.html", users=users, next=target)


def _login_names(register: Register) -> list[Doc]:
    from appliance.auth.users import list_users

    return [u for u in list_users(register) if not u["disabled"]]


@router.get("/setup", response_class=HTMLResponse)
async def setup_page(request: Request) -> Response:
    if not await setup_pending(request):
        return RedirectResponse("/login", status_code=303)
    return page(request, "setup.html", data_dir=str(request.app.state.features.config.data_dir))


@router.get("/events")
async def events(request: Request) -> StreamingResponse:
    """Server-Sent Events: ``sale``, ``scan``, ``shift``, ``catalog``, ``users`` and
    ``status`` (the back office link went down or up)."""
    hub = request.app.state.events
    return StreamingResponse(
        hub.stream(request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/sell/cart", response_class=HTMLResponse)
async def cart(request: Request, sale_id: str = "") -> Response:
    sale = await _sale_or(request, sale_id, screen_data.current_sale)
    return page(request, "_cart.html", sale=sale)


async def _sale_or(request: Request, sale_id: str, default: Any) -> Doc | None:
    """The sale asked for (None if there is no such sale), else ``default(register)``."""
    svc = _svc(request)
    if not sale_id:
        found: Doc | None = await svc.call(default)
        return found
    try:
        sale: Doc = await svc.call(Register.sale, sale_id)
    except ApplianceError:
        return None
    return sale


@router.get("/sell/search", response_class=HTMLResponse)
async def search(request: Request, q: Annotated[str, Query(max_length=64)] = "") -> Response:
    found: list[Doc] = await _svc(request).call(Register.search_products, q) if q.strip() else []
    return page(request, "_search.html", products=found, q=q)


@router.get("/sell/parked", response_class=HTMLResponse)
async def parked(request: Request) -> Response:
    """The resume list: parked sales of every register (LAN sync), the state of the
    registers that are unreachable and their last-known saved sales, marked."""
    view: Doc = await _svc(request).call(screen_data.saved_sales_view, lan_peers(request), True)
    return page(request, "_parked.html", **view)


def lan_peers(request: Request) -> Any:
    """The LAN node's register directory (None without LAN sync)."""
    node = getattr(request.app.state, "lan", None)
    return node.directory if node is not None else None


@router.get("/sell/refund", response_class=HTMLResponse)
async def refund_form(
    request: Request, receipt: Annotated[str, Query(min_length=1, max_length=64)]
) -> Response:
    try:
        found: Doc = await _svc(request).call(screen_data.refundable, receipt)
    except ApplianceError as exc:
        return page(request, "_message.html", message=exc.message, kind="error")
    return page(request, "_refund.html", **found)


@router.get("/sell/receipt", response_class=HTMLResponse)
async def receipt(request: Request, sale_id: str = "") -> Response:
    """The finished sale: change due and the receipt choices (print, reprint, none)."""
    sale = await _sale_or(request, sale_id, screen_data.last_completed)
    printing = printing_routes(request)
    service = getattr(request.app.state, "printing", None)
    if sale and service is not None:
        jobs = await _svc(request).call(_receipt_jobs, sale["id"])
        printing["job"] = jobs[0]["status"] if jobs else None
    return page(request, "_receipt.html", sale=sale, printing=printing)


def _receipt_jobs(register: Register, sale_id: str) -> list[Doc]:
    from appliance.printing import queue

    return [j for j in queue.jobs(register, None, 50) if j["sale_id"] == sale_id]


@router.get("/sell/banners", response_class=HTMLResponse)
async def banners(request: Request) -> Response:
    return page(request, "_banners.html", banners=await collect_banners(request))


def has_route(request: Request, path: str) -> bool:
    """Whether a feature added this route (card payments, printing, LAN sync)."""
    from appliance.auth.guard import leaf_routes

    return any(p == path for p, _ in leaf_routes(request.app))


def printing_routes(request: Request) -> Doc:
    """Which printing routes this register has (the printing feature adds them)."""
    return {"receipt": has_route(request, "/api/printer/reprint-last")}

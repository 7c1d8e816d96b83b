"""Jinja2 templates of the screens (shipped in the package) and their filters."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from appliance import __version__
from appliance.money import format_minor

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def money(minor: Any, decimals: int = 2) -> str:
    """1234 → "12.34" (minus sign for refunds); anything but an integer → ""."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        return ""
    return format_minor(minor, decimals)


def grams(value: Any) -> str:
    if not isinstance(value, int):
        return ""
    return f"{value / 1000:.3f} kg"


@cache
def environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["grams"] = grams
    return env


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a template with what every page needs (user, CSRF token, store, money)."""
    config = request.app.state.features.config
    principal = getattr(request.state, "principal", None)
    decimals = config.store.currency_decimals
    base = {
        "request": request,
        "user": principal,
        "csrf": principal.session.csrf if principal and principal.session else "",
        "config": config,
        "version": __version__,
        "currency": config.store.currency,
        "money": lambda minor: money(minor, decimals),
    }
    html = environment().get_template(template).render(**base, **context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

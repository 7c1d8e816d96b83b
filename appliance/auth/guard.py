"""The guard: every request passes here, and goes on only with the right role.

It finds the route a request is for (the app's own route table, so routes added by any
feature are covered), looks up the permission it needs (``permissions.ROUTES``), and
resolves who is asking: a machine token in ``Authorization: Bearer`` or a session
cookie. Session requests that change state must carry the session's CSRF token in
``X-CSRF-Token`` and must not come from another origin. Admin pages and manager-only
routes answer session users on this machine only, unless ``web.admin_from_lan``.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import compile_path

from appliance.auth.permissions import PUBLIC, UNSAFE_METHODS, route_permission
from appliance.auth.sessions import COOKIE, CSRF_HEADER, Principal, SessionStore

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Receive, Scope, Send

    from appliance.config import Config
    from appliance.service import RegisterService

LOCAL_ONLY = frozenset({"admin", "users", "catalog"})


def leaf_routes(app: FastAPI) -> list[tuple[str, set[str] | None]]:
    """Every route of the app as (path template, methods); mounts have methods None.

    Newer FastAPI keeps included routers as one lazy entry; ``iter_route_contexts``
    flattens them. Older FastAPI copied included routes into ``app.routes``.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before lazily included routers
        contexts: Any = app.router.routes
    else:
        contexts = iter_route_contexts(app.router.routes)
    out: list[tuple[str, set[str] | None]] = []
    for route in contexts:
        path = getattr(route, "path", None)
        if path is None:
            continue
        methods = getattr(route, "methods", None)
        out.append((path, set(methods) if methods is not None else None))
    return out


def route_table(app: FastAPI) -> list[tuple[re.Pattern[str], str, set[str] | None]]:
    return [(compile_path(path)[0], path, methods) for path, methods in leaf_routes(app)]


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def same_origin(conn: HTTPConnection) -> bool:
    """False when the browser says the request comes from another site or origin."""
    if conn.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = conn.headers.get("origin")
    if origin is None:
        return True  # not a browser, or an old one: the CSRF token still has to match
    return urlsplit(origin).netloc == conn.headers.get("host", "")


def refusal(status: int, code: str, message: str, **details: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **details}}, status)


class Auth:
    """The register's authentication state: sessions, machine tokens, the setup code."""

    def __init__(self, config: Config, app: FastAPI, service: RegisterService) -> None:
        web = config.web
        self.config = config
        self.app = app
        self.service = service
        self._tokens_read = 0.0
        self._table: list[tuple[re.Pattern[str], str, set[str] | None]] = []
        self._table_size = -1
        self.sessions = SessionStore(web.session_idle_minutes * 60, web.session_max_hours * 3600)
        self.token_hashes: set[str] = set()
        self.setup_code: str | None = None
        self.login_lock = asyncio.Lock()

    def template(self, scope: Scope) -> str:
        """The route path the request matches ("/api/sales/{sale_id}"), or its own path."""
        if self._table_size != len(self.app.router.routes):
            self._table = route_table(self.app)
            self._table_size = len(self.app.router.routes)
        path, method = scope["path"], scope.get("method", "GET")
        partial = None
        for regex, template, methods in self._table:
            if methods is None:  # a mount: everything under its path
                if path == template or path.startswith(template.rstrip("/") + "/"):
                    return template
            elif regex.match(path):
                if method in methods or (method == "HEAD" and "GET" in methods):
                    return template
                partial = partial or template
        return partial or path

    async def principal(self, conn: HTTPConnection) -> Principal | bool | None:
        """The principal; None without credentials; False for credentials that are wrong."""
        header = conn.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer" and await self.known_token(token.strip()):
                return Principal.machine()
            return False
        cookie = conn.cookies.get(COOKIE)
        if cookie:
            session = self.sessions.get(cookie, time.time())
            return Principal.of_session(session) if session else None
        return None

    async def known_token(self, token: str) -> bool:
        """Tokens are cached; an unknown one re-reads the table (at most once a second),
        so a token made by another process or before the app was attached works."""
        from appliance.auth.tokens import token_hash, token_hashes

        digest = token_hash(token)
        if digest not in self.token_hashes and time.monotonic() - self._tokens_read > 1.0:
            self._tokens_read = time.monotonic()
            self.token_hashes = await self.service.call(token_hashes)
        return digest in self.token_hashes


def _wants_html(conn: HTTPConnection, path: str) -> bool:
    return (
        conn.scope.get("method") in ("GET", "HEAD")
        and not path.startswith(("/api/", "/auth/", "/events"))
        and "text/html" in conn.headers.get("accept", "")
    )


class AuthGuard:
    """ASGI middleware applying the rules above to every HTTP and WebSocket request."""

    def __init__(self, app: ASGIApp, auth: Auth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        response = await self.check(scope)
        if response is not None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def check(self, scope: Scope) -> Response | None:
        """None to let the request through, else the refusal to send."""
        conn = HTTPConnection(scope)
        method = scope.get("method", "GET")
        path = scope["path"]
        need = route_permission(method, self.auth.template(scope))
        if need == PUBLIC:
            return None
        principal = await self.auth.principal(conn)
        if principal is False:
            return refusal(401, "unauthenticated", "the machine token is not valid")
        if principal is None:
            if _wants_html(conn, path):
                return RedirectResponse(f"/login?next={quote(path)}", status_code=303)
            return refusal(
                401, "unauthenticated", "log in first (machines: Authorization: Bearer TOKEN)"
            )
        assert isinstance(principal, Principal)
        if principal.session is not None:
            if method in UNSAFE_METHODS:
                sent = conn.headers.get(CSRF_HEADER, "")
                if not same_origin(conn) or not hmac.compare_digest(
                    sent.encode(), principal.session.csrf.encode()
                ):
                    return refusal(
                        403, "csrf", "missing or wrong CSRF token: reload the page and try again"
                    )
            local = need in LOCAL_ONLY or path == "/admin" or path.startswith("/admin/")
            client = scope.get("client")
            if (
                local
                and not self.auth.config.web.admin_from_lan
                and not is_loopback(client[0] if client else None)
            ):
                return refusal(
                    403,
                    "admin_local_only",
                    "the admin panel answers on this register only (web.admin_from_lan is off)",
                )
        state = scope.setdefault("state", {})
        if need not in principal.permissions:
            if not (
                principal.session is not None
                and SessionStore.has_grant(principal.session, need, time.time())
            ):
                return refusal(
                    403,
                    "permission",
                    f"{principal.name} ({principal.role}) may not do this: it needs '{need}'",
                    permission=need,
                )
            # Allowed by a supervisor's approval: the routes record who approved.
            assert principal.session is not None
            state["approved_by"] = principal.session.approvers.get(need)
        state["principal"] = principal
        return None

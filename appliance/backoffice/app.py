"""The back office service: a FastAPI app over one database (SQLite or PostgreSQL).

Routes for registers (``routes_sync``: pair, push, pull, …), for people and the
web shop (``routes_admin``). Database work runs in the thread pool; a pulling
register's long poll waits on an in-process notifier (woken by pushes, catalog and
settings changes, sync requests and web orders) and re-checks the database every few
seconds, so several back office processes over one PostgreSQL also work.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appliance import __version__
from appliance.backoffice import registers, users
from appliance.backoffice.registers import Unauthorized
from appliance.backoffice.storage import Database, IntegrityError, Tx
from appliance.http_errors import install_error_handlers

MAX_BODY = 16 * 1024 * 1024
Doc = dict[str, Any]


class Notifier:
    """Wakes long polls of a store when something for its registers changed."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.generation: dict[str, int] = defaultdict(int)
        self._waiters: dict[str, set[asyncio.Future[None]]] = defaultdict(set)

    def notify(self, store_id: str) -> None:
        """Thread-safe: called from the thread pool after a commit."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._wake, store_id)

    def _wake(self, store_id: str) -> None:
        self.generation[store_id] += 1
        for fut in self._waiters.pop(store_id, set()):
            if not fut.done():
                fut.set_result(None)

    async def wait(self, store_id: str, seen: int, timeout: float) -> None:
        if self.generation[store_id] != seen or timeout <= 0:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[store_id].add(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters[store_id].discard(fut)


class BodyLimit:
    """Refuse request bodies over ``MAX_BODY`` bytes before they are read whole."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY:
            await _too_large(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > MAX_BODY:
                raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(send)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Send) -> None:
    body = (
        b'{"error":{"code":"too_large","field":"body","message":"request body over '
        + str(MAX_BODY).encode()
        + b' bytes"}}'
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BackOffice:
    """What every route needs: the database and the notifier."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.notifier = Notifier()

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with self.db.write() as tx:
            yield tx

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self.db.read() as tx:
            yield tx


_bearer = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]


def backoffice(request: Request) -> BackOffice:
    bo: BackOffice = request.app.state.backoffice
    return bo


BO = Annotated[BackOffice, Depends(backoffice)]


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("send Authorization: Bearer <token>")
    return credentials.credentials


def current_register(bo: BO, credentials: Credentials) -> Doc:
    token = _token(credentials)
    with bo.read() as tx:
        return registers.register_for_token(tx, token)


def current_user(bo: BO, credentials: Credentials) -> Doc:
    token = _token(credentials)
    with bo.read() as tx:
        return users.user_for_token(tx, token)


RegisterAuth = Annotated[Doc, Depends(current_register)]
UserAuth = Annotated[Doc, Depends(current_user)]


def create_backoffice_app(db: Database) -> FastAPI:
    from appliance.backoffice import routes_admin, routes_sync

    bo = BackOffice(db)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bo.notifier.loop = asyncio.get_running_loop()
        yield

    app = FastAPI(
        title="Register appliance back office",
        version=__version__,
        lifespan=lifespan,
        description=(
            "Stores, registers, catalog and settings pushed to registers, sales and shifts "
            "from every register exactly once, saved-sale relay and web-shop orders. "
            "Money is integer minor units."
        ),
    )
    app.state.backoffice = bo
    app.add_middleware(BodyLimit)
    install_error_handlers(app)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # The checks before each write name the conflict; this is the schema's backstop.
        return JSONResponse(
            {"error": {"code": "conflict", "message": f"conflicts with stored data: {exc}"}},
            status_code=409,
        )

    app.include_router(routes_sync.router)
    app.include_router(routes_admin.router)
    return app

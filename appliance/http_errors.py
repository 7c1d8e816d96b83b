"""One error shape for every HTTP API of the project (register and back office).

``{"error": {"code", "message", "field"?, ...}}`` with the field that was wrong, so a
client (the sell screen, a register talking to the back office) can point at it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from appliance.errors import ApplianceError


def field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApplianceError)
    async def _appliance_error(request: Request, exc: ApplianceError) -> JSONResponse:
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        return JSONResponse(
            {"error": {"code": code, "message": str(exc.detail), "field": "body"}},
            status_code=exc.status_code,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first: dict[str, Any] = (
            dict(errors[0]) if errors else {"loc": ("body",), "msg": "invalid request"}
        )
        field = field_of(tuple(first.get("loc", ())))
        message = str(first.get("msg", "invalid"))
        if first.get("type") == "json_invalid":
            field, message = "body", f"malformed JSON: {first.get('ctx', {}).get('error', '')}"
        return JSONResponse(
            {
                "error": {
                    "code": "invalid",
                    "field": field,
                    "message": message,
                    "problems": [
                        {"field": field_of(tuple(e.get("loc", ()))), "message": e.get("msg")}
                        for e in errors
                    ],
                }
            },
            status_code=422,
        )

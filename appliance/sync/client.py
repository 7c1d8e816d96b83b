"""Talking to the back office over HTTP, and sorting out what went wrong.

Every failure is one of four kinds, because each is handled differently:
  Unreachable   no answer (refused, reset, timed out) or not a back office: go offline
  ServerTrouble 5xx, 408, 429: the back office is there but cannot take it now; retry
                with backoff
  AuthRefused   401/403: the token is not (or no longer) valid; stay offline, say why
  Rejected      any other 4xx: this request (this op) is refused for a reason the
                server names; retrying the same bytes will not help
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

Doc = dict[str, Any]


class SyncError(Exception):
    def __init__(self, message: str, status: int = 0, error: Doc | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error = error or {}


class Unreachable(SyncError):
    pass


class ServerTrouble(SyncError):
    pass


class AuthRefused(SyncError):
    pass


class Rejected(SyncError):
    @property
    def op_id(self) -> str | None:
        value = self.error.get("op_id")
        return value if isinstance(value, str) else None


def _error_doc(resp: httpx.Response) -> Doc | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def _reason(error: Doc | None, resp: httpx.Response) -> str:
    if error is None:
        return f"HTTP {resp.status_code}"
    field = error.get("field")
    message = str(error.get("message", ""))
    return f"{field}: {message}" if field else message


class BackOfficeClient:
    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        import httpx  # here, not at import: the register's cold start does not pay for it

        self.url = url.rstrip("/")
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)

    async def close(self) -> None:
        await self.http.aclose()

    async def request(
        self, method: str, path: str, body: Doc | None = None, timeout: float | None = None
    ) -> Doc:
        import httpx

        try:
            resp = await self.http.request(method, path, json=body, timeout=timeout or self.timeout)
        except httpx.TransportError as exc:
            raise Unreachable(f"back office {self.url} unreachable: {exc!r}") from None
        error = _error_doc(resp)
        status = resp.status_code
        if status >= 500 or status in (408, 425, 429):
            raise ServerTrouble(f"back office answered {status}: {_reason(error, resp)}", status)
        if status in (401, 403):
            raise AuthRefused(_reason(error, resp), status, error)
        if status >= 400 and error is None:
            raise Unreachable(f"{self.url}{path} is not a back office (HTTP {status})", status)
        if status >= 400:
            raise Rejected(_reason(error, resp), status, error)
        try:
            data = resp.json()
        except ValueError:
            raise ServerTrouble(f"back office answered {status} without JSON", status) from None
        if not isinstance(data, dict):
            raise ServerTrouble("back office answered with an unexpected document", status)
        return data

    async def push(self, ops: list[Doc], pending: int, saved_sales_sync: bool) -> Doc:
        body = {"ops": ops, "pending": pending, "saved_sales_sync": saved_sales_sync}
        return await self.request("POST", "/api/v1/sync/push", body)

    async def pull(self, body: Doc) -> Doc:
        return await self.request(
            "POST", "/api/v1/sync/pull", body, timeout=float(body.get("wait", 0)) + self.timeout
        )

    async def synced(self, request_id: int | None, by: str | None) -> Doc:
        return await self.request(
            "POST", "/api/v1/sync/synced", {"request_id": request_id, "by": by}
        )

    async def handover(self, sale_ids: list[str]) -> Doc:
        return await self.request("POST", "/api/v1/sync/handover", {"sale_ids": sale_ids})

    async def restore(self, after: int, limit: int) -> Doc:
        return await self.request("GET", f"/api/v1/sync/restore?after={after}&limit={limit}")

    async def inventory(self, sku: str) -> Doc:
        from urllib.parse import quote

        return await self.request("GET", f"/api/v1/sync/inventory/{quote(sku, safe='')}")

    async def pair(self, code: str, register_id: str, name: str) -> Doc:
        body = {"code": code, "register_id": register_id, "name": name}
        return await self.request("POST", "/api/v1/pair", body)

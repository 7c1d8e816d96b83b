"""Errors the register reports to people.

Every error names what was wrong (``field``) and why (``message``); the HTTP layer
turns them into one JSON shape and an HTTP status, the CLI into one stderr line.
Raising one of these never leaves state half-changed: domain code validates before
it appends an operation.
"""

from __future__ import annotations

from typing import Any


class ApplianceError(Exception):
    """Base class: ``code`` is a stable machine-readable name, ``http_status`` its status."""

    code = "error"
    http_status = 400

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        out.update(self.details)
        return out

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ValidationError(ApplianceError):
    code = "invalid"
    http_status = 422


class NotFound(ApplianceError):
    code = "not_found"
    http_status = 404


class Conflict(ApplianceError):
    """The request is well-formed but the state does not allow it (e.g. tender on a void sale)."""

    code = "conflict"
    http_status = 409


class StorageUnavailable(ApplianceError):
    """The database cannot take writes (disk full, read-only): nothing was recorded."""

    code = "storage_unavailable"
    http_status = 507


class ConfigError(ApplianceError):
    code = "config"
    http_status = 500

"""Errors of the ZVT driver.

Decode errors carry the byte offset so a person holding a capture can find the bad
byte; transport errors say which step of the handshake failed.
"""

from __future__ import annotations

from appliance.errors import ApplianceError, ValidationError


class ZvtDecodeError(ValidationError):
    """Bytes that cannot be decoded; ``offset`` counts from the start of ``where``."""

    code = "zvt_decode"

    def __init__(self, offset: int, message: str, *, where: str = "APDU") -> None:
        super().__init__(f"{where} byte offset {offset}: {message}", offset=offset, where=where)
        self.offset = offset
        self.where = where
        self.reason = message

    def shifted(self, delta: int, where: str | None = None) -> ZvtDecodeError:
        """The same error with the offset moved into an enclosing buffer."""
        return ZvtDecodeError(self.offset + delta, self.reason, where=where or self.where)


class ZvtError(ApplianceError):
    """The terminal link failed (timeout, lost connection, protocol violation)."""

    code = "zvt"
    http_status = 502


class ZvtTimeout(ZvtError):
    code = "zvt_timeout"
    http_status = 504


class ZvtConnectionLost(ZvtError):
    code = "zvt_connection_lost"


class ZvtProtocolError(ZvtError):
    code = "zvt_protocol"

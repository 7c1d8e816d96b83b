"""What a register does while the back office cannot be reached, and what it refuses.

Works offline (everything is local): cash sales, new customers, new products, park,
resume and discard, products by barcode, SKU and name (the register holds the whole
catalog the back office pushed), customers by code, shifts and reports. Offline
ops simply wait in the outbox.

Refused offline, with a message that says it needs the connection
(``NeedsConnection``, HTTP 503, code ``needs_connection``):
- editing a customer that already exists (the back office holds the master record;
  two registers editing one customer apart would silently lose one edit),
- inventory look-ups (stock is counted by the back office across registers),
- gift cards and loyalty redemption (balances live in the back office): features that
  add them call ``require_online(owner, "redeeming a gift card")`` first.

The customer rule is enforced below the API, in the register's transaction (an
in-transaction hook), so no path — HTTP, the sell screen, a scanner — can get past it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from appliance.errors import ApplianceError
from appliance.reducer import Op
from appliance.register import Register
from appliance.sync.link import Link, link_for


class NeedsConnection(ApplianceError):
    code = "needs_connection"
    http_status = 503


class Restoring(ApplianceError):
    code = "restoring"
    http_status = 503


NEEDS_CONNECTION = (
    "editing an existing customer",
    "inventory look-ups",
    "gift cards",
    "loyalty redemption",
)


def refuse(what: str) -> NeedsConnection:
    return NeedsConnection(
        f"{what}: not possible offline, it needs the connection to the back office "
        "(sales, new customers and new products still work; the register reconnects "
        "by itself)",
        needs="backoffice",
    )


def require_online(owner: Any, what: str) -> None:
    """Raise NeedsConnection naming ``what`` when ``owner``'s register is offline."""
    if link_for(owner).offline:
        raise refuse(what)


def _customer_exists(register: Register, op: Op) -> bool:
    customer_id = op["payload"]["customer"]["id"]
    row = register.conn.execute(
        "SELECT count(*) FROM ops WHERE kind = 'customer.upsert'"
        " AND json_extract(payload, '$.customer.id') = ?",
        (customer_id,),
    ).fetchone()
    return int(row[0]) > 1  # the op being committed is already in the log


def guard(link: Link, restoring: Callable[[], bool]) -> Callable[[Register, list[Op]], None]:
    """The in-transaction hook: refuse what needs the connection, atomically."""

    def check(register: Register, ops: list[Op]) -> None:
        if restoring() and any(op["register_id"] == register.register_id for op in ops):
            raise Restoring(
                "the register is restoring its data from the back office after a reset: "
                "try again in a moment"
            )
        if not link.offline:
            return
        for op in ops:
            if (
                op["kind"] == "customer.upsert"
                and op["register_id"] == register.register_id  # not a back-office push
                and _customer_exists(register, op)
            ):
                raise refuse("editing an existing customer")

    return check

"""Applying what the back office pushes: catalog, prices, taxes, settings, users, ….

The channel is generic: the back office sends bundles ``{kind, version, payload}``;
a handler per kind applies one on the register's DB thread. Another feature adds a
kind with ``register_bundle_handler("users", fn)`` where ``fn(register, payload)``
validates the payload whole (raising an ``ApplianceError`` changes nothing) and
applies it. A bundle of a kind with no handler is kept (``sync_bundles``) and
applied when a handler for it is registered (at the next start).

Bundles are applied only when no sale is in progress on this register (see
``sale_in_progress``); the engine holds one that arrives mid-sale and applies it
right after the sale is completed, parked or voided.

- catalog: the changed products and the SKUs taken out of the catalog
  (``removed``: the product and its barcodes are dropped, so a scan says "not
  found"; sale lines carry their own copy, so sales made and saved sales keep
  theirs), as one ``catalog.import`` op made by the node ``bo`` with a
  deterministic op id, so registers that share ops on the LAN see the same op once
  and the outbox never echoes it back.
- customers: the customers changed in the back office (edited there, or made by
  another register), one ``customer.upsert`` op each, in one commit, carrying the
  HLC of that version. Last writer wins by HLC: a customer whose newest op here is
  as new or newer (an edit made on this register, not yet in the back office's
  version) is left as it is, so an older back-office version never clobbers it.
- taxes / settings: changes of the runtime settings overlay (appliance/settings.py),
  the one way settings change, shared with the admin panel: durable and live.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from appliance.catalog import CatalogImportError
from appliance.errors import ValidationError
from appliance.hlc import Timestamp
from appliance.register import Register
from appliance.sale import OPEN
from appliance.storage.db import transaction
from appliance.sync import outbox

Doc = dict[str, Any]
Handler = Callable[[Register, Doc], None]
BO_NODE = "bo"


def _catalog(register: Register, payload: Doc, version: int = 0) -> None:
    products = payload.get("products")
    if not isinstance(products, list):
        raise ValidationError("catalog bundle without a products list", field="products")
    removed = payload.get("removed") or []
    if not isinstance(removed, list) or not all(isinstance(s, str) and s for s in removed):
        raise ValidationError("catalog bundle: removed must be a list of SKUs", field="removed")
    problems = []
    categories = register.tax_categories
    for product in products:
        if not isinstance(product, dict) or product.get("tax_category") not in categories:
            problems.append(
                f"product {product.get('sku') if isinstance(product, dict) else product!r}: "
                f"tax category not one of {', '.join(categories)}"
            )
    if problems:
        raise CatalogImportError(problems)
    store = outbox.get(register.conn, "store_id", "store")
    op_id = f"bo:{store}:catalog:{version}:{len(products)}" + (
        f"-{len(removed)}" if removed else ""
    )
    body: Doc = {"products": products, "origin": "backoffice", "version": version}
    op = {
        "op_id": op_id,
        "register_id": BO_NODE,
        "hlc": str(register.hlc.now()),
        "sale_id": None,
        "kind": "catalog.import",
        "payload": {**body, "removed": removed} if removed else body,
    }
    exists = register.conn.execute("SELECT 1 FROM ops WHERE op_id = ?", (op["op_id"],))
    if exists.fetchone() is None:
        register.commit([op])


def _customer_versions(payload: Doc) -> list[Doc]:
    customers = payload.get("customers")
    if not isinstance(customers, list):
        raise ValidationError("customers bundle without a customers list", field="customers")
    for i, c in enumerate(customers):
        ok = isinstance(c, dict) and all(
            isinstance(c.get(k), str) and c[k] for k in ("id", "code", "name", "hlc")
        )
        if not ok or not isinstance(c.get("email"), str | None):
            raise ValidationError(
                "customers bundle: each customer needs id, code, name and hlc",
                field=f"customers[{i}]",
            )
        try:
            Timestamp.parse(c["hlc"])
        except ValueError as exc:
            raise ValidationError(str(exc), field=f"customers[{i}].hlc") from None
    return customers


def _customers(register: Register, payload: Doc, version: int = 0) -> None:
    conn = register.conn
    store = outbox.get(conn, "store_id", "store")
    ops = []
    for c in _customer_versions(payload):
        newest = conn.execute(
            "SELECT max(hlc) FROM ops WHERE kind = 'customer.upsert'"
            " AND json_extract(payload, '$.customer.id') = ?",
            (c["id"],),
        ).fetchone()[0]
        if newest is not None and newest >= c["hlc"]:
            continue  # this register holds this version or a newer one
        holder = register.state.customer_by_code(c["code"])
        if holder is not None and holder["id"] != c["id"]:
            raise ValidationError(
                f"customer code {c['code']!r} is held here by {holder['name']!r} "
                f"(customer {holder['id']}), not by {c['name']!r} as in the back office",
                field="customers.code",
            )
        customer = {k: c.get(k) for k in ("id", "code", "name", "email")}
        ops.append(
            {
                "op_id": f"bo:{store}:customer:{c['id']}:{c['hlc']}",
                "register_id": BO_NODE,
                "hlc": c["hlc"],
                "sale_id": None,
                "kind": "customer.upsert",
                "payload": {"customer": customer},
            }
        )
        register.hlc.observe(c["hlc"])
    if ops:
        register.commit(ops)


def _config_bundle(kind: str) -> Handler:
    """Taxes and settings go into the one runtime settings overlay (appliance/settings),
    the same way the admin panel changes them: validated whole, durable, live."""

    def apply(register: Register, payload: Doc) -> None:
        from appliance import settings

        changes = settings.bundle_changes(kind, payload)
        if changes:
            settings.change(register, changes, source="backoffice", by=f"back office ({kind})")

    return apply


# Kinds whose effect is stored by the handler itself (not re-applied at start).
PERSISTED = ("taxes", "settings")
# Kinds applied as ops of the node ``bo`` (in the op log, not in sync_bundles).
AS_OPS: dict[str, Callable[[Register, Doc, int], None]] = {
    "catalog": _catalog,
    "customers": _customers,
}

HANDLERS: dict[str, Handler] = {
    "taxes": _config_bundle("taxes"),
    "settings": _config_bundle("settings"),
}


def register_bundle_handler(kind: str, handler: Handler) -> None:
    """Let another feature apply bundles of ``kind`` (e.g. the web UI's ``users``)."""
    HANDLERS[kind] = handler


def sale_in_progress(register: Register, idle_minutes: float) -> bool:
    """A sale open on this register with something on it, touched in the last minutes.

    An open sale left untouched longer than ``idle_minutes`` (a forgotten screen) does
    not hold updates back forever.
    """
    now_ms = datetime.now(UTC).timestamp() * 1000
    for doc in register.state.sales("status = ?", (OPEN,)):
        if (doc.get("resumed_by") or doc["register_id"]) != register.register_id:
            continue
        if not doc["tenders"] and not [x for x in doc["lines"] if not x.get("voided")]:
            continue
        touched = Timestamp.parse(doc["updated_hlc"]).wall_ms if doc.get("updated_hlc") else 0
        if now_ms - touched < idle_minutes * 60_000:
            return True
    return False


def apply_bundles(register: Register, bundles: list[Doc]) -> list[Doc]:
    """Apply each bundle; returns one outcome per bundle (applied or its error)."""
    outcomes = []
    for bundle in bundles:
        kind, version, payload = bundle["kind"], int(bundle["version"]), bundle["payload"]
        try:
            if kind in AS_OPS:
                AS_OPS[kind](register, payload, version)
            else:
                handler = HANDLERS.get(kind)
                with transaction(register.conn):
                    register.conn.execute(
                        "INSERT INTO sync_bundles (kind, version, payload, applied_at)"
                        " VALUES (?,?,?,?) ON CONFLICT(kind) DO UPDATE SET"
                        " version = excluded.version, payload = excluded.payload,"
                        " applied_at = excluded.applied_at",
                        (kind, version, json.dumps(payload), outbox.now_iso()),
                    )
                    if handler is not None:
                        handler(register, payload)
            outcomes.append({"kind": kind, "version": version, "applied": True})
        except Exception as exc:  # one bad bundle must not stop the others
            outcomes.append({"kind": kind, "version": version, "applied": False, "error": str(exc)})
    return outcomes


def reapply_stored(register: Register) -> None:
    """At start: lay the stored settings bundles over the config file's values."""
    rows = register.conn.execute("SELECT kind, payload FROM sync_bundles ORDER BY kind")
    for kind, payload in rows.fetchall():
        handler = HANDLERS.get(kind)
        if handler is not None and kind not in PERSISTED:
            handler(register, json.loads(payload))

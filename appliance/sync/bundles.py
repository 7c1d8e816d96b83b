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

- catalog: the changed products, as one ``catalog.import`` op made by the node
  ``bo`` with a deterministic op id, so registers that share ops on the LAN see the
  same op once and the outbox never echoes it back.
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
    op = {
        "op_id": f"bo:{store}:catalog:{version}:{len(products)}",
        "register_id": BO_NODE,
        "hlc": str(register.hlc.now()),
        "sale_id": None,
        "kind": "catalog.import",
        "payload": {"products": products, "origin": "backoffice", "version": version},
    }
    exists = register.conn.execute("SELECT 1 FROM ops WHERE op_id = ?", (op["op_id"],))
    if exists.fetchone() is None:
        register.commit([op])


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
            if kind == "catalog":
                _catalog(register, payload, version)
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

"""Web-shop orders become saved sales on the store's registers.

An order names products by SKU and quantities; the back office turns it into the
ops a register would have made for a sale it parked (open, one line per item with the
price and tax rate of the store's catalog now, park under the order's name), as the
node ``bo:webshop``. Those ops go on the store's relay, so every register of the
store with saved-sales sync on gets the order as a saved sale; whichever resumes it
completes it with its own receipt number. An order id is taken once.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from appliance.backoffice.auth import now_iso
from appliance.backoffice.ingest import derive, insert_ops
from appliance.backoffice.storage import Tx
from appliance.config import StoreSection, TaxSection
from appliance.errors import NotFound, ValidationError
from appliance.hlc import HybridLogicalClock
from appliance.money import MAX_AMOUNT, PPM

NODE = "bo:webshop"
_clock = HybridLogicalClock(NODE)
Doc = dict[str, Any]


def store_pricing(tx: Tx, store_id: str) -> tuple[Doc, dict[str, int]]:
    """The pricing block of a new sale and the rate (ppm) of each tax category."""
    taxes = tx.one("SELECT payload FROM bundles WHERE store_id = ? AND kind = 'taxes'", (store_id,))
    settings = tx.one(
        "SELECT payload FROM bundles WHERE store_id = ? AND kind = 'settings'", (store_id,)
    )
    tax = TaxSection(**json.loads(taxes["payload"])) if taxes else TaxSection()
    store_raw = json.loads(settings["payload"]).get("store", {}) if settings else {}
    store = StoreSection(**store_raw)
    pricing = {
        "tax_mode": tax.mode,
        "tax_rounding": tax.rounding,
        "cash_rounding": store.cash_rounding,
        "currency": store.currency,
    }
    return pricing, {cat: int(rate * PPM / 100) for cat, rate in tax.rates.items()}


def _op(kind: str, payload: Doc, sale_id: str) -> Doc:
    return {
        "op_id": f"bo:webshop:{uuid.uuid4().hex}",
        "register_id": NODE,
        "hlc": str(_clock.now()),
        "sale_id": sale_id,
        "kind": kind,
        "payload": payload,
    }


def take_order(tx: Tx, store_id: str, order: Doc) -> Doc:
    """Record an order as a saved sale (idempotent by order id); returns the sale."""
    tx.lock_store(store_id)
    known = tx.one(
        "SELECT sale_id FROM webshop_orders WHERE store_id = ? AND order_id = ?",
        (store_id, order["order_id"]),
    )
    if known:
        return {"sale_id": known["sale_id"], "order_id": order["order_id"], "duplicate": True}
    pricing, rates = store_pricing(tx, store_id)
    sale_id = uuid.uuid4().hex
    at = now_iso()
    ops = [_op("sale.open", {"kind": "sale", "pricing": pricing, "opened_at": at}, sale_id)]
    total = 0
    for i, item in enumerate(order["lines"]):
        product = tx.one(
            "SELECT sku, name, price, tax_category, sold_by FROM products"
            " WHERE store_id = ? AND sku = ? AND removed_at IS NULL",
            (store_id, item["sku"]),
        )
        if product is None:
            raise NotFound(f"no product {item['sku']!r} in this store", field=f"lines[{i}].sku")
        weighed = product["sold_by"] == "weight"
        qty = item.get("weight_g") if weighed else item.get("qty", 1)
        if not qty:
            raise ValidationError(
                f"{product['name']} is sold by weight: give weight_g", field=f"lines[{i}]"
            )
        total += int(product["price"]) * qty // (1000 if weighed else 1)
        if total > MAX_AMOUNT // 2:
            raise ValidationError("the order total is too large", field=f"lines[{i}]")
        line = {
            "id": uuid.uuid4().hex[:16],
            "no": i + 1,
            "sku": product["sku"],
            "name": product["name"],
            "code": product["sku"],
            "unit": "g" if weighed else "unit",
            "qty": qty,
            "unit_price": int(product["price"]),
            "tax_category": product["tax_category"],
            "rate_ppm": rates.get(product["tax_category"], 0),
            "override": None,
            "discount": None,
            "voided": False,
        }
        ops.append(_op("sale.line_add", {"line": line}, sale_id))
    if order.get("customer_code"):
        customer = tx.one(
            "SELECT customer_id, code, name FROM customers WHERE store_id = ? AND code = ?",
            (store_id, order["customer_code"]),
        )
        if customer:
            ref = {
                "id": customer["customer_id"],
                "code": customer["code"],
                "name": customer["name"],
            }
            ops.append(_op("sale.customer", {"customer": ref}, sale_id))
    name = order.get("name") or f"Web order {order['order_id']}"
    ops.append(_op("sale.park", {"name": name[:64], "at": at}, sale_id))
    insert_ops(tx, store_id, ops)
    derive(tx, store_id, ops, relay=True)
    tx.execute(
        "INSERT INTO webshop_orders (store_id, order_id, sale_id, received_at) VALUES (?,?,?,?)",
        (store_id, order["order_id"], sale_id, at),
    )
    return {"sale_id": sale_id, "order_id": order["order_id"], "duplicate": False}

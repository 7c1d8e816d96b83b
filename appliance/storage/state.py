"""The state tables: documents derived from the op log, read and written by the reducer.

The reducer only talks to this small interface, so the live register and a replay
into a scratch database run the very same code.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

Doc = dict[str, Any]

GTIN_LENGTHS = (8, 12, 13, 14)


def barcode_key(code: str) -> str:
    """Look-up key of a barcode: numeric GTINs (EAN-8/13, UPC-A, GTIN-14) as 14 digits.

    So a product imported with its EAN-13 is found when a scanner sends the UPC-A,
    the GTIN-14 from a GS1 code, or the EAN-13 itself.
    """
    if code.isascii() and code.isdigit() and len(code) in GTIN_LENGTHS:
        return code.zfill(14)
    return code


def _dumps(doc: Doc) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


class StateStore:
    """Documents are read-only once stored: the reducer writes changed copies.

    That lets the store keep recently used sale documents in memory (a register
    works on a handful of open sales at a time) without anyone seeing a document
    change under them. ``forget`` drops the cache after a rolled-back transaction.
    """

    CACHE_SIZE = 256

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._sales: dict[str, Doc] = {}

    def forget(self) -> None:
        self._sales.clear()

    # sales -----------------------------------------------------------------
    def get_sale(self, sale_id: str) -> Doc | None:
        cached = self._sales.get(sale_id)
        if cached is not None:
            return cached
        row = self.conn.execute("SELECT doc FROM sales WHERE id = ?", (sale_id,)).fetchone()
        if row is None:
            return None
        doc: Doc = json.loads(row[0])
        self._remember(doc)
        return doc

    def _remember(self, doc: Doc) -> None:
        if len(self._sales) >= self.CACHE_SIZE:
            self._sales.pop(next(iter(self._sales)))
        self._sales[doc["id"]] = doc

    def sale_by_receipt(self, receipt_no: str) -> Doc | None:
        row = self.conn.execute(
            "SELECT doc FROM sales WHERE receipt_no = ?", (receipt_no,)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def put_sale(self, doc: Doc) -> None:
        self.conn.execute(
            "INSERT INTO sales (id, register_id, kind, status, name, receipt_no, shift_id,"
            " customer_id, total, opened_at, completed_at, refund_of, doc)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(id) DO UPDATE SET register_id=excluded.register_id,"
            " kind=excluded.kind, status=excluded.status, name=excluded.name,"
            " receipt_no=excluded.receipt_no, shift_id=excluded.shift_id,"
            " customer_id=excluded.customer_id, total=excluded.total,"
            " opened_at=excluded.opened_at, completed_at=excluded.completed_at,"
            " refund_of=excluded.refund_of, doc=excluded.doc",
            (
                doc["id"],
                doc["register_id"],
                doc["kind"],
                doc["status"],
                doc.get("name"),
                doc.get("receipt_no"),
                doc.get("shift_id"),
                (doc.get("customer") or {}).get("id"),
                doc["totals"]["total"],
                doc.get("opened_at"),
                doc.get("completed_at"),
                doc.get("refund_of"),
                _dumps(doc),
            ),
        )
        self._sales.pop(doc["id"], None)
        self._remember(doc)

    def sales(self, where: str = "1", params: tuple[Any, ...] = ()) -> list[Doc]:
        rows = self.conn.execute(
            f"SELECT doc FROM sales WHERE {where} ORDER BY opened_at, id", params
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    # shifts ----------------------------------------------------------------
    def get_shift(self, shift_id: str) -> Doc | None:
        row = self.conn.execute("SELECT doc FROM shifts WHERE id = ?", (shift_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def open_shift(self, register_id: str) -> Doc | None:
        row = self.conn.execute(
            "SELECT doc FROM shifts WHERE register_id = ? AND status = 'open'", (register_id,)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def last_closed_shift(self, register_id: str) -> Doc | None:
        row = self.conn.execute(
            "SELECT doc FROM shifts WHERE register_id = ? AND status = 'closed'"
            " ORDER BY number DESC LIMIT 1",
            (register_id,),
        ).fetchone()
        return json.loads(row[0]) if row else None

    def shift_by_number(self, register_id: str, number: int) -> Doc | None:
        row = self.conn.execute(
            "SELECT doc FROM shifts WHERE register_id = ? AND number = ?", (register_id, number)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def put_shift(self, doc: Doc) -> None:
        self.conn.execute(
            "INSERT INTO shifts (id, register_id, number, status, doc) VALUES (?,?,?,?,?)"
            " ON CONFLICT(id) DO UPDATE SET status=excluded.status, doc=excluded.doc",
            (doc["id"], doc["register_id"], doc["number"], doc["status"], _dumps(doc)),
        )

    # catalog ---------------------------------------------------------------
    def put_product(self, product: Doc) -> None:
        self.conn.execute(
            "INSERT INTO products (sku, name, price, tax_category, sold_by) VALUES (?,?,?,?,?)"
            " ON CONFLICT(sku) DO UPDATE SET name=excluded.name, price=excluded.price,"
            " tax_category=excluded.tax_category, sold_by=excluded.sold_by",
            (
                product["sku"],
                product["name"],
                product["price"],
                product["tax_category"],
                product["sold_by"],
            ),
        )
        self.conn.execute("DELETE FROM barcodes WHERE sku = ?", (product["sku"],))
        self.conn.executemany(
            "INSERT OR REPLACE INTO barcodes (code, sku, raw) VALUES (?, ?, ?)",
            [(barcode_key(code), product["sku"], code) for code in product.get("barcodes", [])],
        )

    def remove_product(self, sku: str) -> None:
        """Drop a product and its barcodes; sale lines carry their own copy and stay."""
        self.conn.execute("DELETE FROM barcodes WHERE sku = ?", (sku,))
        self.conn.execute("DELETE FROM products WHERE sku = ?", (sku,))

    def product(self, sku: str) -> Doc | None:
        row = self.conn.execute(
            "SELECT sku, name, price, tax_category, sold_by FROM products WHERE sku = ?", (sku,)
        ).fetchone()
        if row is None:
            return None
        codes = [
            r[0]
            for r in self.conn.execute(
                "SELECT raw FROM barcodes WHERE sku = ? ORDER BY raw", (sku,)
            )
        ]
        return {
            "sku": row[0],
            "name": row[1],
            "price": row[2],
            "tax_category": row[3],
            "sold_by": row[4],
            "barcodes": codes,
        }

    def sku_for_barcode(self, code: str) -> str | None:
        row = self.conn.execute(
            "SELECT sku FROM barcodes WHERE code = ?", (barcode_key(code),)
        ).fetchone()
        return row[0] if row else None

    def product_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM products").fetchone()[0])

    # customers -------------------------------------------------------------
    def put_customer(self, customer: Doc) -> None:
        self.conn.execute(
            "INSERT INTO customers (id, code, name, email) VALUES (?,?,?,?)"
            " ON CONFLICT(id) DO UPDATE SET code=excluded.code, name=excluded.name,"
            " email=excluded.email",
            (customer["id"], customer["code"], customer["name"], customer.get("email")),
        )

    def customer_by_code(self, code: str) -> Doc | None:
        row = self.conn.execute(
            "SELECT id, code, name, email FROM customers WHERE code = ?", (code,)
        ).fetchone()
        return dict(zip(("id", "code", "name", "email"), row, strict=True)) if row else None

    # counters --------------------------------------------------------------
    def counter(self, name: str) -> int:
        row = self.conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def set_counter(self, name: str, value: int) -> None:
        self.conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

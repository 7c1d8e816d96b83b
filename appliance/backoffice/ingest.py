"""Taking in a register's ops exactly once, and what the back office derives from them.

A push is all or nothing: its ops are checked (``opcheck``), then in one write
transaction the new ones (by op id, per store) are stored and folded into sales,
shifts, customers and register-created products; ops already stored are counted as
duplicates and change nothing. Saved sales are put on the store's relay, the ordered
list of saved-sale ops that every other register of the store pulls.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from appliance.backoffice.auth import now_iso
from appliance.backoffice.fold import fold_sale
from appliance.backoffice.opcheck import OpRejected, check_ops
from appliance.backoffice.storage import Tx
from appliance.errors import NotFound
from appliance.hlc import Timestamp
from appliance.storage.state import barcode_key

Doc = dict[str, Any]
BO_NODE = "bo"  # the node of back-office edits (the register's bundles.BO_NODE)
OP_COLUMNS = "op_id, register_id, hlc, sale_id, kind, payload"
INSERT_CHUNK = 100


def dumps(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def op_from_row(row: Doc) -> Doc:
    return {
        "op_id": row["op_id"],
        "register_id": row["register_id"],
        "hlc": row["hlc"],
        "sale_id": row["sale_id"],
        "kind": row["kind"],
        "payload": json.loads(row["payload"]),
    }


def tax_categories(tx: Tx, store_id: str) -> list[str] | None:
    row = tx.one("SELECT payload FROM bundles WHERE store_id = ? AND kind = 'taxes'", (store_id,))
    return list(json.loads(row["payload"]).get("rates", {})) if row else None


def bump_version(tx: Tx, store_id: str) -> int:
    tx.execute("UPDATE stores SET version = version + 1 WHERE id = ?", (store_id,))
    return int(tx.scalar("SELECT version FROM stores WHERE id = ?", (store_id,)))


# pushing ---------------------------------------------------------------------
def push(tx: Tx, store_id: str, register_id: str, raw_ops: Any, relay: bool) -> Doc:
    """Store a register's batch; raises OpRejected (nothing stored) for a bad op."""
    tx.lock_store(store_id)
    ops = check_ops(raw_ops, tax_categories(tx, store_id))
    for i, op in enumerate(ops):
        if op["register_id"] != register_id:
            raise OpRejected(
                f"register {register_id} can only send its own ops, not {op['register_id']}'s",
                field=f"ops[{i}].register_id",
                op_id=op["op_id"],
                index=i,
            )
    new = _new_ops(tx, store_id, ops)
    _check_conflicts(tx, store_id, ops, new)
    insert_ops(tx, store_id, [ops[i] for i in new])
    derive(tx, store_id, [ops[i] for i in new], relay=relay)
    return {"accepted": len(new), "duplicates": len(ops) - len(new)}


def _new_ops(tx: Tx, store_id: str, ops: list[Doc]) -> list[int]:
    """Indexes of the ops not stored yet (the first of each op id in the batch)."""
    stored = stored_op_ids(tx, store_id, (op["op_id"] for op in ops))
    out = []
    for i, op in enumerate(ops):
        if op["op_id"] not in stored:
            stored.add(op["op_id"])
            out.append(i)
    return out


def _reject(i: int, op: Doc, field: str, message: str) -> OpRejected:
    exc = OpRejected(message, field=f"ops[{i}].{field}", op_id=op["op_id"], index=i)
    exc.http_status = 409
    exc.code = "op_conflict"
    return exc


def _check_conflicts(tx: Tx, store_id: str, ops: list[Doc], new: list[int]) -> None:
    """What the register could not know: a receipt, customer code or barcode taken."""
    completes = {
        ops[i]["payload"]["receipt_no"]: i for i in new if ops[i]["kind"] == "sale.complete"
    }
    taken = {
        r["receipt_no"]: r["sale_id"]
        for r in _in(
            tx,
            "SELECT receipt_no, sale_id FROM sales WHERE store_id = ? AND receipt_no IN ({marks})",
            store_id,
            list(completes),
        )
    }
    for receipt, i in completes.items():
        other = taken.get(receipt)
        if other and other != ops[i]["sale_id"]:
            raise _reject(
                i,
                ops[i],
                "payload.receipt_no",
                f"receipt {receipt} is already recorded for sale {other}: two registers "
                "of this store seem to use the same register id",
            )
    for i in new:
        op, p = ops[i], ops[i]["payload"]
        if op["kind"] == "customer.upsert":
            c = p["customer"]
            other = tx.one(
                "SELECT customer_id, name FROM customers"
                " WHERE store_id = ? AND code = ? AND customer_id != ?",
                (store_id, c["code"], c["id"]),
            )
            if other:
                raise _reject(
                    i,
                    op,
                    "payload.customer.code",
                    f"customer code {c['code']!r} already belongs to {other['name']!r} "
                    f"(customer {other['customer_id']}) in the back office",
                )
        elif op["kind"] == "catalog.import":
            for j, product in enumerate(p["products"]):
                for code in product.get("barcodes") or []:
                    owner = tx.scalar(
                        "SELECT sku FROM product_barcodes WHERE store_id = ? AND code = ?",
                        (store_id, barcode_key(str(code))),
                    )
                    if owner and owner != product["sku"]:
                        raise _reject(
                            i,
                            op,
                            f"payload.products[{j}].barcodes",
                            f"barcode {code!r} already belongs to product {owner!r} "
                            "in the back office catalog",
                        )


def insert_ops(tx: Tx, store_id: str, ops: list[Doc]) -> None:
    at = now_iso()
    for start in range(0, len(ops), INSERT_CHUNK):
        chunk = ops[start : start + INSERT_CHUNK]
        values = ",".join(["(?,?,?,?,?,?,?,?)"] * len(chunk))
        params: list[Any] = []
        for op in chunk:
            params += [
                store_id,
                op["op_id"],
                op["register_id"],
                op["hlc"],
                op["sale_id"],
                op["kind"],
                dumps(op["payload"]),
                at,
            ]
        tx.execute(
            "INSERT INTO ops (store_id, op_id, register_id, hlc, sale_id, kind, payload,"
            f" received_at) VALUES {values} ON CONFLICT (store_id, op_id) DO NOTHING",
            params,
        )


# deriving --------------------------------------------------------------------
def derive(tx: Tx, store_id: str, ops: list[Doc], relay: bool) -> None:
    """Fold newly stored ops into sales, shifts, customers and products."""
    sales: dict[str, str] = {}
    for op in ops:
        kind = op["kind"]
        if op["sale_id"] and kind.startswith("sale."):
            sales[op["sale_id"]] = op["register_id"]
        elif kind.startswith("shift."):
            _shift(tx, store_id, op)
        elif kind == "customer.upsert":
            _customer(tx, store_id, op)
            if relay:  # so every register of the store finds the customer by code
                relay_op(tx, store_id, op)
        elif kind == "catalog.import" and not op["op_id"].startswith("bo:"):
            _products(tx, store_id, op)
    saved = refold_sales(tx, store_id, list(sales))
    if relay:
        for sale_id in saved:
            relay_sale(tx, store_id, sale_id)


SALE_COLUMNS = (
    "store_id, sale_id, register_id, kind, status, name, receipt_no, total, opened_at,"
    " completed_at, completed_by, saved, updated_hlc, doc, fold_error"
)
_UPSERT_SALES = (
    " ON CONFLICT (store_id, sale_id) DO UPDATE SET"
    " register_id = excluded.register_id, kind = excluded.kind, status = excluded.status,"
    " name = excluded.name, receipt_no = excluded.receipt_no, total = excluded.total,"
    " opened_at = excluded.opened_at, completed_at = excluded.completed_at,"
    " completed_by = excluded.completed_by, saved = excluded.saved,"
    " updated_hlc = excluded.updated_hlc, doc = excluded.doc, fold_error = excluded.fold_error"
)


def _in(tx: Tx, sql: str, store_id: str, keys: list[str]) -> list[Doc]:
    """``sql`` has one ``{marks}`` for an IN list; run it over ``keys`` in chunks."""
    rows: list[Doc] = []
    for start in range(0, len(keys), 400):
        chunk = keys[start : start + 400]
        rows += tx.all(sql.format(marks=",".join("?" * len(chunk))), (store_id, *chunk))
    return rows


def refold_sales(tx: Tx, store_id: str, sale_ids: list[str]) -> list[str]:
    """Recompute the rows of these sales from all their ops; returns the saved sales.

    Reads all their ops in one query and writes all rows in one multi-row upsert:
    a push costs a handful of statements however many sales it carries (that is
    what keeps PostgreSQL's round trips from dominating).
    """
    if not sale_ids:
        return []
    by_sale: dict[str, list[Doc]] = {s: [] for s in sale_ids}
    for found in _in(
        tx,
        f"SELECT {OP_COLUMNS} FROM ops WHERE store_id = ? AND sale_id IN ({{marks}})",
        store_id,
        sale_ids,
    ):
        by_sale[found["sale_id"]].append(op_from_row(found))
    before = {
        r["sale_id"]: r["status"]
        for r in _in(
            tx,
            "SELECT sale_id, status FROM sales WHERE store_id = ? AND sale_id IN ({marks})",
            store_id,
            sale_ids,
        )
    }
    rows: list[tuple[Any, ...]] = []
    saved: list[str] = []
    newly_completed: list[Doc] = []
    for sale_id, ops in by_sale.items():
        row, doc = _sale_row(store_id, sale_id, ops)
        rows.append(row)
        if row[11]:
            saved.append(sale_id)
        if doc["status"] == "completed" and before.get(sale_id) != "completed":
            newly_completed.append(doc)
    for start in range(0, len(rows), 100):
        chunk = rows[start : start + 100]
        marks = ",".join(["(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"] * len(chunk))
        tx.execute(
            f"INSERT INTO sales ({SALE_COLUMNS}) VALUES {marks}{_UPSERT_SALES}",
            [value for row in chunk for value in row],
        )
    if newly_completed and tx.one(
        "SELECT sku FROM products WHERE store_id = ? AND on_hand IS NOT NULL LIMIT 1", (store_id,)
    ):
        for doc in newly_completed:
            _stock_out(tx, store_id, doc)
    return saved


def _sale_row(store_id: str, sale_id: str, ops: list[Doc]) -> tuple[tuple[Any, ...], Doc]:
    error = None
    try:
        doc = fold_sale(sale_id, ops)
    except Exception as exc:  # a payload the reducer cannot use: keep the ops, say so
        doc, error = None, f"{type(exc).__name__}: {exc}"
    if doc is None:
        first = min(ops, key=lambda op: op["hlc"])
        doc = {"id": sale_id, "register_id": first["register_id"], "status": "incomplete"}
        error = error or "the sale's opening op has not arrived yet"
    completed_by = next((op["register_id"] for op in ops if op["kind"] == "sale.complete"), None)
    row = (
        store_id,
        sale_id,
        doc["register_id"],
        doc.get("kind", "sale"),
        doc["status"],
        doc.get("name"),
        doc.get("receipt_no"),
        (doc.get("totals") or {}).get("total", 0),
        doc.get("opened_at"),
        doc.get("completed_at"),
        completed_by,
        int(any(op["kind"] == "sale.park" for op in ops)),
        max(op["hlc"] for op in ops),
        dumps(doc),
        error,
    )
    return row, doc


def _stock_out(tx: Tx, store_id: str, doc: Doc) -> None:
    """A completed sale takes its units out of stock (a refund puts them back)."""
    sign = 1 if doc.get("kind") == "refund" else -1
    for line in doc.get("lines", []):
        if line.get("voided") or line.get("unit") != "unit":
            continue
        tx.execute(
            "UPDATE products SET on_hand = on_hand + ? WHERE store_id = ? AND sku = ?"
            " AND on_hand IS NOT NULL",
            (sign * int(line["qty"]), store_id, line["sku"]),
        )


def relay_sale(tx: Tx, store_id: str, sale_id: str) -> None:
    """Put every op of a saved sale on the store's relay (once each, in HLC order)."""
    tx.execute(
        "INSERT INTO relay (store_id, op_id, sale_id, origin)"
        " SELECT store_id, op_id, sale_id, register_id FROM ops"
        " WHERE store_id = ? AND sale_id = ? ORDER BY hlc, op_id"
        " ON CONFLICT (store_id, op_id) DO NOTHING",
        (store_id, sale_id),
    )


def relay_op(tx: Tx, store_id: str, op: Doc) -> None:
    tx.execute(
        "INSERT INTO relay (store_id, op_id, sale_id, origin) VALUES (?,?,?,?)"
        " ON CONFLICT (store_id, op_id) DO NOTHING",
        (store_id, op["op_id"], op["sale_id"], op["register_id"]),
    )


def _shift(tx: Tx, store_id: str, op: Doc) -> None:
    p = op["payload"]
    row = tx.one(
        "SELECT doc FROM shifts WHERE store_id = ? AND shift_id = ?", (store_id, p["shift_id"])
    )
    doc: Doc = json.loads(row["doc"]) if row else {"id": p["shift_id"], "movements": []}
    doc["register_id"] = op["register_id"]
    if op["kind"] == "shift.open":
        doc.update(number=p["number"], float=p["float"], opened_at=p["opened_at"])
        doc.setdefault("status", "open")
    elif op["kind"] == "shift.cash":
        doc["movements"] = [*doc.get("movements", []), p["movement"]]
    elif op["kind"] == "shift.close":
        doc.update(status="closed", closed_at=p["closed_at"], counted=p["counted"], z_no=p["z_no"])
    tx.execute(
        "INSERT INTO shifts (store_id, shift_id, register_id, number, status, opened_at,"
        " closed_at, counted, z_no, doc, updated_hlc) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT (store_id, shift_id) DO UPDATE SET number = excluded.number,"
        " status = excluded.status, opened_at = excluded.opened_at,"
        " closed_at = excluded.closed_at, counted = excluded.counted, z_no = excluded.z_no,"
        " doc = excluded.doc, updated_hlc = excluded.updated_hlc",
        (
            store_id,
            p["shift_id"],
            op["register_id"],
            doc.get("number", 0),
            doc.get("status", "open"),
            doc.get("opened_at"),
            doc.get("closed_at"),
            doc.get("counted"),
            doc.get("z_no"),
            dumps(doc),
            op["hlc"],
        ),
    )


def _customer(tx: Tx, store_id: str, op: Doc) -> None:
    put_customer(tx, store_id, op["payload"]["customer"], op["register_id"], op["hlc"])


def put_customer(tx: Tx, store_id: str, c: Doc, origin: str, hlc: str) -> None:
    """Last writer wins by HLC: a version older than the stored one changes nothing.

    A change takes a new store version, so the ``customers`` bundle brings it to
    every register of the store (a back-office edit, or one register's customer to
    the registers that do not relay saved sales).
    """
    version = bump_version(tx, store_id)
    tx.execute(
        "INSERT INTO customers (store_id, customer_id, code, name, email, origin, updated_hlc,"
        " version) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (store_id, customer_id) DO UPDATE SET"
        " code = excluded.code, name = excluded.name, email = excluded.email,"
        " updated_hlc = excluded.updated_hlc, version = excluded.version"
        " WHERE customers.updated_hlc < excluded.updated_hlc",
        (store_id, c["id"], c["code"], c["name"], c.get("email"), origin, hlc, version),
    )


def backoffice_hlc(previous: str | None) -> str:
    """The HLC of an edit made in the back office: now, and after the version it edits."""
    wall, counter = int(time.time() * 1000), 0
    if previous:
        last = Timestamp.parse(previous)
        if (last.wall_ms, last.counter) >= (wall, counter):
            wall, counter = last.wall_ms, last.counter + 1
    return str(Timestamp(wall, counter, BO_NODE))


def _products(tx: Tx, store_id: str, op: Doc) -> None:
    """Products a register created (offline, too) join the store's catalog."""
    for product in op["payload"]["products"]:
        put_product(tx, store_id, product, origin=op["register_id"])


def put_product(tx: Tx, store_id: str, product: Doc, origin: str) -> bool:
    """Insert or change one catalog product; False when it was already exactly so."""
    codes = [str(c) for c in product.get("barcodes") or []]
    row = tx.one(
        "SELECT name, price, tax_category, sold_by, barcodes, removed_at FROM products"
        " WHERE store_id = ? AND sku = ?",
        (store_id, product["sku"]),
    )
    same = (
        row is not None
        and row["removed_at"] is None
        and (
            row["name"],
            int(row["price"]),
            row["tax_category"],
            row["sold_by"],
            json.loads(row["barcodes"]),
        )
        == (product["name"], product["price"], product["tax_category"], product["sold_by"], codes)
    )
    if same:
        return False
    version = bump_version(tx, store_id)
    tx.execute(
        "INSERT INTO products (store_id, sku, name, price, tax_category, sold_by, barcodes,"
        " version, origin, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT (store_id, sku) DO UPDATE SET name = excluded.name,"
        " price = excluded.price, tax_category = excluded.tax_category,"
        " sold_by = excluded.sold_by, barcodes = excluded.barcodes,"
        " version = excluded.version, origin = excluded.origin,"
        " updated_at = excluded.updated_at, removed_at = NULL",
        (
            store_id,
            product["sku"],
            product["name"],
            product["price"],
            product["tax_category"],
            product["sold_by"],
            dumps(codes),
            version,
            origin,
            now_iso(),
        ),
    )
    tx.execute(
        "DELETE FROM product_barcodes WHERE store_id = ? AND sku = ?", (store_id, product["sku"])
    )
    for code in codes:
        tx.execute(
            "INSERT INTO product_barcodes (store_id, code, sku) VALUES (?,?,?)"
            " ON CONFLICT (store_id, code) DO UPDATE SET sku = excluded.sku",
            (store_id, barcode_key(code), product["sku"]),
        )
    return True


def remove_product(tx: Tx, store_id: str, sku: str) -> int:
    """Take a product out of the store's catalog; returns the version that says so.

    The row stays as a tombstone (``removed_at``, a new version) so the catalog
    bundle tells registers to drop it; sales that sold it keep their lines.
    """
    row = tx.one(
        "SELECT sku FROM products WHERE store_id = ? AND sku = ? AND removed_at IS NULL",
        (store_id, sku),
    )
    if row is None:
        raise NotFound(f"no product {sku!r} in store {store_id!r}", field="sku")
    version = bump_version(tx, store_id)
    tx.execute(
        "UPDATE products SET removed_at = ?, version = ?, barcodes = '[]', updated_at = ?"
        " WHERE store_id = ? AND sku = ?",
        (now_iso(), version, now_iso(), store_id, sku),
    )
    tx.execute("DELETE FROM product_barcodes WHERE store_id = ? AND sku = ?", (store_id, sku))
    return version


# pulling ---------------------------------------------------------------------
RELAY_PAGE = 1000
CATALOG_PAGE = 2000


def relay_ops(tx: Tx, store_id: str, register_id: str, after: int) -> tuple[list[Doc], int]:
    """Saved-sale ops of the store's other registers after ``after``, and the new cursor.

    A register that never pulled (``after`` 0: newly paired, reset, or saved-sales
    sync turned back on) gets the ops of the saved sales still open — its own too,
    which it may have handed over — at once, and the cursor jumps to the relay's end.
    """
    cols = "r.seq, o.op_id, o.register_id, o.hlc, o.sale_id, o.kind, o.payload"
    join = "FROM relay r JOIN ops o ON o.store_id = r.store_id AND o.op_id = r.op_id"
    if after <= 0:
        end = int(tx.scalar("SELECT max(seq) FROM relay WHERE store_id = ?", (store_id,)) or 0)
        rows = tx.all(
            f"SELECT {cols} {join} LEFT JOIN sales s ON s.store_id = r.store_id"
            " AND s.sale_id = r.sale_id WHERE r.store_id = ? AND r.seq <= ?"
            " AND (r.sale_id IS NULL OR s.status IN ('open', 'parked')) ORDER BY r.seq",
            (store_id, end),
        )
        return [op_from_row(r) for r in rows], end
    rows = tx.all(
        f"SELECT {cols} {join} WHERE r.store_id = ? AND r.seq > ? ORDER BY r.seq LIMIT ?",
        (store_id, after, RELAY_PAGE),
    )
    cursor = int(rows[-1]["seq"]) if rows else after
    return [op_from_row(r) for r in rows if r["register_id"] != register_id], cursor


def bundles_after(tx: Tx, store_id: str, known: dict[str, int]) -> tuple[list[Doc], bool]:
    """Bundles newer than the register has; the catalog as the products changed since."""
    out: list[Doc] = []
    rows = tx.all(
        "SELECT kind, version, payload FROM bundles WHERE store_id = ? ORDER BY kind",
        (store_id,),
    )
    for row in rows:
        if int(row["version"]) > int(known.get(row["kind"], 0)):
            out.append(
                {
                    "kind": row["kind"],
                    "version": int(row["version"]),
                    "payload": json.loads(row["payload"]),
                }
            )
    since = int(known.get("catalog", 0))
    products = tx.all(
        "SELECT sku, name, price, tax_category, sold_by, barcodes, version, removed_at"
        " FROM products WHERE store_id = ? AND version > ?"
        # A register starting from nothing needs no tombstones.
        " AND (removed_at IS NULL OR ? > 0) ORDER BY version LIMIT ?",
        (store_id, since, since, CATALOG_PAGE + 1),
    )
    more = len(products) > CATALOG_PAGE
    products = products[:CATALOG_PAGE]
    if products:
        removed = [p["sku"] for p in products if p["removed_at"] is not None]
        out.append(
            {
                "kind": "catalog",
                "version": int(products[-1]["version"]),
                "payload": {
                    **({"removed": removed} if removed else {}),
                    "products": [
                        {
                            "sku": p["sku"],
                            "name": p["name"],
                            "price": int(p["price"]),
                            "tax_category": p["tax_category"],
                            "sold_by": p["sold_by"],
                            "barcodes": json.loads(p["barcodes"]),
                        }
                        for p in products
                        if p["removed_at"] is None
                    ],
                },
            }
        )
    customers, more_customers = _customers_after(tx, store_id, int(known.get("customers", 0)))
    out += customers
    return out, more or more_customers


def _customers_after(tx: Tx, store_id: str, since: int) -> tuple[list[Doc], bool]:
    """The ``customers`` bundle: customers changed since, each with the HLC of its version."""
    rows = tx.all(
        "SELECT customer_id, code, name, email, updated_hlc, version FROM customers"
        " WHERE store_id = ? AND version > ? ORDER BY version LIMIT ?",
        (store_id, since, CATALOG_PAGE + 1),
    )
    if not rows:
        return [], False
    page = rows[:CATALOG_PAGE]
    customers = [
        {
            "id": r["customer_id"],
            "code": r["code"],
            "name": r["name"],
            "email": r["email"],
            "hlc": r["updated_hlc"],
        }
        for r in page
    ]
    bundle = {"kind": "customers", "version": int(page[-1]["version"])}
    return [{**bundle, "payload": {"customers": customers}}], len(rows) > CATALOG_PAGE


def own_ops(tx: Tx, store_id: str, register_id: str, after: int, limit: int) -> list[Doc]:
    """A register's own ops in the order they arrived (to restore it after a reset)."""
    rows = tx.all(
        f"SELECT seq, {OP_COLUMNS} FROM ops WHERE store_id = ? AND register_id = ? AND seq > ?"
        " ORDER BY seq LIMIT ?",
        (store_id, register_id, after, limit),
    )
    return [{**op_from_row(r), "seq": int(r["seq"])} for r in rows]


def stored_op_ids(tx: Tx, store_id: str, ids: Iterable[str]) -> set[str]:
    out: set[str] = set()
    id_list = list(ids)
    for start in range(0, len(id_list), 500):
        chunk = id_list[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = tx.all(
            f"SELECT op_id FROM ops WHERE store_id = ? AND op_id IN ({marks})", (store_id, *chunk)
        )
        out.update(r["op_id"] for r in rows)
    return out

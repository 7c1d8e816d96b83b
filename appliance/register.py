"""The register: the Python API for ringing up, paying, refunding and running shifts.

Each public method validates its request against the current state, turns it into
operations that carry everything needed to apply them (prices, tax rates, receipt
numbers, times), and commits those operations together with their effect in one
durable transaction. A request that fails validation, or a write that fails (full
disk, read-only database), changes nothing.

The class is synchronous and not thread-safe on purpose: ``AsyncRegister`` runs it on
one dedicated thread so the event loop never blocks on SQLite's fsync.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from appliance.catalog import parse_catalog_csv, validate_product
from appliance.config import Config
from appliance.errors import Conflict, NotFound, StorageUnavailable, ValidationError
from appliance.hlc import HybridLogicalClock
from appliance.money import (
    MAX_AMOUNT,
    MAX_PERCENT_BP,
    MAX_QUANTITY,
    MAX_WEIGHT_G,
    allocate,
    div_round,
)
from appliance.reducer import Op
from appliance.reports import shift_report
from appliance.sale import (
    CARD,
    CASH,
    COMPLETED,
    OPEN,
    OTHER,
    PARKED,
    TENDER_KINDS,
    VOIDED,
    SaleDoc,
    compute_totals,
    line_gross,
)
from appliance.settings import overlaid as settings_overlaid
from appliance.storage import oplog
from appliance.storage.db import connect, migrate, sync_wal, transaction
from appliance.storage.state import StateStore

Doc = dict[str, Any]


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_int(value: Any, field: str, low: int, high: int) -> int:
    """An integer in [low, high]; bools, floats and strings are refused by name."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"must be an integer, got {type(value).__name__}", field=field)
    if not (low <= value <= high):
        raise ValidationError(f"must be between {low} and {high}, got {value}", field=field)
    return value


def check_text(value: Any, field: str, max_len: int = 200, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("must be a non-empty text", field=field)
    if len(value) > max_len:
        raise ValidationError(f"must be at most {max_len} characters", field=field)
    return value.strip()


def _who(by: str | None, approved_by: str | None) -> Doc:
    """Who did a price change and who approved it, for the op and the sale document."""
    found: Doc = {}
    if by is not None:
        found["by"] = check_text(by, "by", 64)
    if approved_by is not None:
        found["approved_by"] = check_text(approved_by, "approved_by", 64)
    return found


def _discount(
    percent_bp: int | None,
    amount: int | None,
    field: str,
    by: str | None = None,
    approved_by: str | None = None,
) -> Doc | None:
    if percent_bp is not None and amount is not None:
        raise ValidationError("give either percent_bp or amount, not both", field=field)
    if percent_bp is not None:
        check_int(percent_bp, f"{field}.percent_bp", 0, MAX_PERCENT_BP)
        found = {"kind": "percent", "value": percent_bp} if percent_bp else None
    elif amount is not None:
        check_int(amount, f"{field}.amount", 0, MAX_AMOUNT)
        found = {"kind": "amount", "value": amount} if amount else None
    else:
        found = None
    return {**found, **_who(by, approved_by)} if found else None


# Ops that change what an open sale costs (line and sale-level edits).
AMOUNT_EDIT_KINDS = frozenset(
    {
        "sale.line_add",
        "sale.line_qty",
        "sale.line_price",
        "sale.line_discount",
        "sale.line_void",
        "sale.discount",
    }
)
# Edits of an open sale's cart: with register.durability = "completed" their commits
# skip the fsync. Nothing here takes money or ends a sale; the next commit that does
# (tender, complete, park) fsyncs the WAL and so these frames with it.
CART_EDIT_KINDS = AMOUNT_EDIT_KINDS | {"sale.open", "sale.customer"}


class Register:
    def __init__(self, config: Config, db_path: Path | str | None = None) -> None:
        self.config = config
        self.register_id = config.register.id
        self.db_path = Path(db_path) if db_path is not None else config.db_path
        self.conn = connect(self.db_path)
        migrate(self.conn)
        self._check_identity()
        # The runtime settings (admin panel, back office) over the config file's.
        self.config = settings_overlaid(self.conn, config)
        self.state = StateStore(self.conn)
        self.hlc = HybridLogicalClock(self.register_id)
        last = self.conn.execute("SELECT max(hlc) FROM ops").fetchone()[0]
        if last:
            self.hlc.observe(last)
        # Called after each commit with the committed ops (sync outbox, live screens).
        self.listeners: list[Callable[[list[Op]], None]] = []
        # Called inside the transaction, after the ops are applied: work that must be
        # atomic with the ops (a print job for a completed sale). Raising aborts all.
        self.in_transaction: list[Callable[[Register, list[Op]], None]] = []
        # Called with (code, result, None) or (code, None, error) for every scan applied
        # or refused by appliance.scan, so screens can cue "not found" and misreads.
        self.scan_listeners: list[Callable[[str, Doc | None, Exception | None], None]] = []
        # Called with the new config when a runtime setting changed (appliance.settings).
        self.settings_watchers: list[Callable[[Config], None]] = []
        # Called before money is taken for a sale outside a tender op (a card payment
        # about to ask the terminal): raising an ApplianceError refuses the charge.
        self.before_charge: list[Callable[[Register, str], None]] = []
        self._group: list[Op] | None = None
        self._unsynced = False  # a relaxed commit not fsynced yet (see make_durable)

    # infrastructure ---------------------------------------------------------
    def _check_identity(self) -> None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'register_id'").fetchone()
        if row is None:
            with transaction(self.conn):
                self.conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('register_id', ?)", (self.register_id,)
                )
        elif row[0] != self.register_id:
            raise StorageUnavailable(
                f"database {self.db_path} belongs to register {row[0]!r}, "
                f"but the config says register.id = {self.register_id!r}"
            )

    def close(self) -> None:
        self.conn.close()

    def new_sale_id(self) -> str:
        """A sale id that names the register it was opened on (``R1-<uuid>``), so a
        register that has not received a sale yet can still say where it is."""
        return f"{self.register_id}-{uuid.uuid4().hex}"

    def _op(self, kind: str, payload: Doc, sale_id: str | None = None) -> Op:
        return {
            "op_id": uuid.uuid4().hex,
            "register_id": self.register_id,
            "hlc": str(self.hlc.now()),
            "sale_id": sale_id,
            "kind": kind,
            "payload": payload,
        }

    def commit(self, ops: list[Op]) -> None:
        """Append ops and their effects durably, or raise and change nothing.

        Inside ``group_commit`` the ops go into a savepoint of the group's
        transaction instead, and become durable when the group commits.
        """
        try:
            if self._group is not None:
                self.conn.execute("SAVEPOINT op")
                try:
                    oplog.append(self.conn, self.state, ops)
                    for hook in self.in_transaction:
                        hook(self, ops)
                except BaseException:
                    if self.conn.in_transaction:  # SQLITE_FULL may have rolled back all
                        self.conn.execute("ROLLBACK TO op")
                        self.conn.execute("RELEASE op")
                    raise
                self.conn.execute("RELEASE op")
                self._group.extend(ops)
                return
            relaxed = self._relaxed(ops)
            if relaxed:
                self.conn.execute("PRAGMA synchronous = NORMAL")
            try:
                with transaction(self.conn):
                    oplog.append(self.conn, self.state, ops)
                    for hook in self.in_transaction:
                        hook(self, ops)
            finally:
                if relaxed:
                    self.conn.execute("PRAGMA synchronous = FULL")
            # A FULL commit fsynced the whole WAL, earlier relaxed frames with it.
            self._unsynced = relaxed
        except BaseException as exc:
            self.state.forget()  # the cache may hold documents of the rolled-back ops
            if not isinstance(exc, sqlite3.OperationalError):
                raise
            self._raise_storage(exc)
        for listener in self.listeners:
            listener(ops)

    def _relaxed(self, ops: list[Op]) -> bool:
        """Whether these ops may skip the fsync (``register.durability = "completed"``)."""
        return self.config.register.durability == "completed" and all(
            op["kind"] in CART_EDIT_KINDS for op in ops
        )

    def make_durable(self) -> None:
        """Fsync relaxed commits now: called before any op leaves the box.

        An op a peer or the back office has seen must never be lost locally, or the
        register would number new ops like ones already sent.
        """
        if self._unsynced:
            sync_wal(self.db_path)
            self._unsynced = False

    @contextmanager
    def group_commit(self) -> Iterator[None]:
        """Run several requests in one transaction: one fsync for all of them.

        Used by the service when requests queue up; nobody is told their request
        succeeded until the group's COMMIT has returned, so durability is unchanged.
        """
        if self._group is not None:
            raise RuntimeError("group_commit does not nest")
        self._group = []
        try:
            with transaction(self.conn):
                yield
        except BaseException as exc:
            self.state.forget()
            if isinstance(exc, sqlite3.OperationalError):
                self._raise_storage(exc)
            raise
        finally:
            ops, self._group = self._group, None
        self._unsynced = False  # the group's FULL commit fsynced the WAL
        for listener in self.listeners:
            listener(ops)

    @staticmethod
    def _raise_storage(exc: sqlite3.OperationalError) -> NoReturn:
        """Turn SQLite's write failures into the register's clear, field-less errors."""
        text = str(exc).lower()
        if "full" in text:
            raise StorageUnavailable(
                "storage is full: nothing was recorded; free space on the data disk",
                reason="disk_full",
            ) from None
        if "readonly" in text or "read-only" in text:
            raise StorageUnavailable(
                "storage is read-only: nothing was recorded; check the data disk",
                reason="read_only",
            ) from None
        if "disk i/o" in text:
            raise StorageUnavailable(
                "storage I/O error: nothing was recorded", reason="io_error"
            ) from None
        raise exc

    # catalog ----------------------------------------------------------------
    @property
    def tax_categories(self) -> list[str]:
        return list(self.config.tax.rates)

    def import_catalog_csv(self, text: str, filename: str) -> int:
        report = parse_catalog_csv(text, filename, self.tax_categories)
        if report.errors:
            from appliance.catalog import CatalogImportError

            raise CatalogImportError(report.errors)
        return self.import_products(report.products, filename)

    def import_products(self, products: list[Doc], source: str = "api") -> int:
        # Barcodes must not collide with products outside this import.
        skus = {p["sku"] for p in products}
        problems = []
        for product in products:
            for code in product["barcodes"]:
                owner = self.state.sku_for_barcode(code)
                if owner is not None and owner not in skus:
                    problems.append(
                        f"{source}: {product['sku']}: barcodes: {code!r} already belongs to "
                        f"product {owner!r}"
                    )
        if problems:
            from appliance.catalog import CatalogImportError

            raise CatalogImportError(problems)
        if products:
            self.commit([self._op("catalog.import", {"products": products})])
        return len(products)

    def upsert_product(self, raw: Doc, new: bool = False) -> Doc:
        if new and self.state.product(str(raw.get("sku"))) is not None:
            raise Conflict(
                f"a product with SKU {raw.get('sku')} exists already: pick another SKU",
                field="sku",
            )
        product, problems = validate_product(raw, self.tax_categories)
        if product is None:
            column, problem = problems[0]
            raise ValidationError(problem, field=column, problems=problems)
        self.import_products([product])
        return product

    def product(self, sku: str) -> Doc:
        product = self.state.product(sku)
        if product is None:
            raise NotFound(f"no product with SKU {sku!r}", field="sku", value=sku)
        return product

    def lookup(self, code: str) -> Doc:
        """Find a product by barcode, then by SKU; unknown → NotFound carrying the code."""
        if not isinstance(code, str) or not code.strip() or len(code) > 128:
            raise ValidationError("must be a barcode or SKU of 1-128 characters", field="code")
        code = code.strip()
        sku = self.state.sku_for_barcode(code)
        product = self.state.product(sku) if sku else self.state.product(code)
        if product is None:
            raise NotFound(f"no product with barcode or SKU {code!r}", field="code", value=code)
        return product

    def search_products(self, text: str, limit: int = 20) -> list[Doc]:
        rows = self.conn.execute(
            "SELECT sku FROM products WHERE name LIKE ? OR sku LIKE ? ORDER BY name LIMIT ?",
            (f"%{text}%", f"{text}%", limit),
        ).fetchall()
        return [self.product(r[0]) for r in rows]

    # customers --------------------------------------------------------------
    def upsert_customer(self, code: str, name: str, email: str | None = None) -> Doc:
        code = check_text(code, "code", 64) or ""
        name = check_text(name, "name", 200) or ""
        email = check_text(email, "email", 200, required=False)
        existing = self.state.customer_by_code(code)
        customer = {
            "id": existing["id"] if existing else uuid.uuid4().hex,
            "code": code,
            "name": name,
            "email": email,
        }
        self.commit([self._op("customer.upsert", {"customer": customer})])
        return customer

    def customer(self, code: str) -> Doc:
        customer = self.state.customer_by_code(code)
        if customer is None:
            raise NotFound(f"no customer with code {code!r}", field="code", value=code)
        return customer

    # sales ------------------------------------------------------------------
    def _pricing(self) -> Doc:
        return {
            "tax_mode": self.config.tax.mode,
            "tax_rounding": self.config.tax.rounding,
            "cash_rounding": self.config.store.cash_rounding,
            "currency": self.config.store.currency,
        }

    def sale(self, sale_id: str) -> SaleDoc:
        doc = self.state.get_sale(sale_id) if isinstance(sale_id, str) else None
        if doc is None:
            raise NotFound(f"no sale {sale_id!r}", field="sale_id", value=sale_id)
        return doc

    def sales(self, status: str | None = None, limit: int = 200) -> list[SaleDoc]:
        if status is None:
            newest = "id IN (SELECT id FROM sales ORDER BY opened_at DESC, id DESC LIMIT ?)"
            return self.state.sales(newest, (limit,))[::-1]
        return self.state.sales("status = ?", (status,))[-limit:]

    def _editable(self, sale_id: str) -> SaleDoc:
        doc = self.sale(sale_id)
        if doc["status"] == PARKED:
            raise Conflict(f"sale {sale_id} is parked: resume it first", field="sale_id")
        if doc["status"] != OPEN:
            raise Conflict(f"sale {sale_id} is {doc['status']}: it cannot change", field="sale_id")
        if doc["tenders"]:
            raise Conflict(
                f"sale {sale_id} has tenders: lines and discounts are fixed once payment starts",
                field="sale_id",
            )
        return doc

    def _apply(self, doc: SaleDoc, ops: list[Op]) -> SaleDoc:
        self.commit(ops)
        return self.sale(doc["id"])

    def open_sale(self) -> SaleDoc:
        sale_id = self.new_sale_id()
        op = self._op(
            "sale.open",
            {"kind": "sale", "pricing": self._pricing(), "opened_at": _now_iso()},
            sale_id,
        )
        self.commit([op])
        return self.sale(sale_id)

    def _line_no(self, doc: SaleDoc) -> int:
        return max((line["no"] for line in doc["lines"]), default=0) + 1

    def add_line(
        self,
        sale_id: str,
        code: str,
        qty: int = 1,
        weight_g: int | None = None,
        label_price: int | None = None,
        scanned: str | None = None,
    ) -> SaleDoc:
        """Add a product by barcode or SKU: ``qty`` units, or ``weight_g`` for weighed items.

        ``label_price`` is the price printed on a price-embedded label (scale or GS1):
        one item at that price, recorded as an override with the reason "price from label".
        ``scanned`` is the code as the scanner sent it (a scale label, an AIM-prefixed
        code), kept on the line so a recorded session can be replayed.
        """
        doc = self._editable(sale_id)
        product = self.lookup(code)
        override = None
        if label_price is not None:
            check_int(label_price, "price_minor", 0, MAX_AMOUNT)
            override = {"unit_price": label_price, "reason": "price from label"}
            quantity, unit = 1, "unit"
        elif product["sold_by"] == "weight":
            if weight_g is None:
                raise ValidationError(
                    f"{product['name']} is sold by weight: give weight_g", field="weight_g"
                )
            quantity = check_int(weight_g, "weight_g", 1, MAX_WEIGHT_G)
            unit = "g"
        else:
            if weight_g is not None:
                raise ValidationError(
                    f"{product['name']} is sold by unit, not by weight", field="weight_g"
                )
            quantity = check_int(qty, "qty", 1, MAX_QUANTITY)
            unit = "unit"
        line = {
            "id": uuid.uuid4().hex[:16],
            "no": self._line_no(doc),
            "sku": product["sku"],
            "name": product["name"],
            "code": scanned if scanned is not None else code,
            "unit": unit,
            "qty": quantity,
            "unit_price": product["price"],
            "tax_category": product["tax_category"],
            "rate_ppm": self.config.tax.rate_ppm(product["tax_category"]),
            "override": override,
            "discount": None,
            "voided": False,
        }
        self._check_line_amount(doc, line)
        return self._apply(doc, [self._op("sale.line_add", {"line": line}, sale_id)])

    def _check_line_amount(self, doc: SaleDoc, line: Doc) -> None:
        # Bound the gross before tax: totals are computed once, by the reducer.
        others = sum(
            abs(line_gross(x)) for x in doc["lines"] if x["no"] != line["no"] and not x["voided"]
        )
        if others + abs(line_gross(line)) > MAX_AMOUNT // 2:
            raise ValidationError(
                f"the sale total would exceed {MAX_AMOUNT} minor units", field="qty"
            )

    def _get_line(self, doc: SaleDoc, no: Any) -> Doc:
        check_int(no, "line_no", 1, 10**6)
        for line in doc["lines"]:
            if line["no"] == no:
                if line.get("voided"):
                    raise Conflict(f"line {no} is voided", field="line_no")
                return line
        raise NotFound(f"sale {doc['id']} has no line {no}", field="line_no", value=no)

    def set_quantity(self, sale_id: str, line_no: int, qty: int) -> SaleDoc:
        doc = self._editable(sale_id)
        line = self._get_line(doc, line_no)
        limit = MAX_WEIGHT_G if line["unit"] == "g" else MAX_QUANTITY
        check_int(qty, "weight_g" if line["unit"] == "g" else "qty", 1, limit)
        self._check_line_amount(doc, {**line, "qty": qty})
        payload = {"line_id": line["id"], "no": line_no, "qty": qty}
        return self._apply(doc, [self._op("sale.line_qty", payload, sale_id)])

    def override_price(
        self,
        sale_id: str,
        line_no: int,
        unit_price: int,
        reason: str,
        by: str | None = None,
        approved_by: str | None = None,
    ) -> SaleDoc:
        """``by``: the user who did it; ``approved_by``: the supervisor whose approval
        let a cashier do it (both recorded in the op and on the line)."""
        doc = self._editable(sale_id)
        line = self._get_line(doc, line_no)
        check_int(unit_price, "unit_price", 0, MAX_AMOUNT)
        reason_text = check_text(reason, "reason", 200)
        new = {**line, "override": {"unit_price": unit_price, "reason": reason_text}}
        self._check_line_amount(doc, new)
        payload = {
            "line_id": line["id"],
            "no": line_no,
            "unit_price": unit_price,
            "reason": reason_text,
            **_who(by, approved_by),
        }
        return self._apply(doc, [self._op("sale.line_price", payload, sale_id)])

    def discount_line(
        self,
        sale_id: str,
        line_no: int,
        percent_bp: int | None = None,
        amount: int | None = None,
        by: str | None = None,
        approved_by: str | None = None,
    ) -> SaleDoc:
        doc = self._editable(sale_id)
        line = self._get_line(doc, line_no)
        discount = _discount(percent_bp, amount, "discount", by, approved_by)
        if discount and discount["kind"] == "amount":
            gross = compute_totals({**doc, "lines": [line], "discount": None})["subtotal"]
            if discount["value"] > gross:
                raise ValidationError(
                    f"discount {discount['value']} is more than the line's amount {gross}",
                    field="discount.amount",
                )
        payload = {"line_id": line["id"], "no": line_no, "discount": discount}
        return self._apply(doc, [self._op("sale.line_discount", payload, sale_id)])

    def void_line(self, sale_id: str, line_no: int) -> SaleDoc:
        doc = self._editable(sale_id)
        line = self._get_line(doc, line_no)
        payload = {"line_id": line["id"], "no": line_no}
        return self._apply(doc, [self._op("sale.line_void", payload, sale_id)])

    def discount_sale(
        self,
        sale_id: str,
        percent_bp: int | None = None,
        amount: int | None = None,
        by: str | None = None,
        approved_by: str | None = None,
    ) -> SaleDoc:
        doc = self._editable(sale_id)
        discount = _discount(percent_bp, amount, "discount", by, approved_by)
        if discount and discount["kind"] == "amount":
            subtotal = doc["totals"]["subtotal"]
            if discount["value"] > subtotal:
                raise ValidationError(
                    f"discount {discount['value']} is more than the subtotal {subtotal}",
                    field="discount.amount",
                )
        return self._apply(doc, [self._op("sale.discount", {"discount": discount}, sale_id)])

    def set_customer(self, sale_id: str, code: str | None) -> SaleDoc:
        doc = self.sale(sale_id)
        if doc["status"] not in (OPEN, PARKED):
            raise Conflict(f"sale {sale_id} is {doc['status']}", field="sale_id")
        customer = None
        if code is not None:
            found = self.customer(code)
            customer = {"id": found["id"], "code": found["code"], "name": found["name"]}
        return self._apply(doc, [self._op("sale.customer", {"customer": customer}, sale_id)])

    def park(self, sale_id: str, name: str) -> SaleDoc:
        doc = self.sale(sale_id)
        if doc["status"] != OPEN:
            raise Conflict(f"sale {sale_id} is {doc['status']}: only an open sale can be parked")
        if doc["tenders"]:
            raise Conflict(f"sale {sale_id} has tenders: finish or void it", field="sale_id")
        tab = check_text(name, "name", 64)
        return self._apply(doc, [self._op("sale.park", {"name": tab, "at": _now_iso()}, sale_id)])

    def resume(self, sale_id: str) -> SaleDoc:
        doc = self.sale(sale_id)
        if doc["status"] != PARKED:
            raise Conflict(f"sale {sale_id} is {doc['status']}, not parked", field="sale_id")
        return self._apply(doc, [self._op("sale.resume", {"at": _now_iso()}, sale_id)])

    def void_sale(self, sale_id: str, reason: str) -> SaleDoc:
        doc = self.sale(sale_id)
        if doc["status"] in (COMPLETED, VOIDED):
            raise Conflict(f"sale {sale_id} is {doc['status']}: it cannot be voided")
        if sum(t["amount"] for t in doc["tenders"] if t["kind"] == CARD) != 0:
            raise Conflict(
                f"sale {sale_id} has a card payment: reverse it on the terminal first",
                field="sale_id",
            )
        text = check_text(reason, "reason", 200)
        payload = {"reason": text, "at": _now_iso()}
        return self._apply(doc, [self._op("sale.void", payload, sale_id)])

    # payment ----------------------------------------------------------------
    def _open_shift(self) -> Doc:
        shift = self.state.open_shift(self.register_id)
        if shift is None:
            raise Conflict("no open shift: open a shift with a cash float first", field="shift")
        return shift

    def _complete_ops(self, doc: SaleDoc, shift: Doc, tenders: list[Doc] | None = None) -> list[Op]:
        tenders = tenders or []
        seq = self.state.counter(f"receipt:{self.register_id}") + 1
        payload = {
            "receipt_no": f"{self.register_id}-{seq:06d}",
            "receipt_seq": seq,
            "shift_id": shift["id"],
            "completed_at": _now_iso(),
            # What this register charged for; wins over concurrent edits from elsewhere.
            "snapshot": {
                "lines": doc["lines"],
                "tenders": [*doc["tenders"], *tenders],
                "discount": doc["discount"],
                "customer": doc["customer"],
            },
        }
        return [self._op("sale.complete", payload, doc["id"])]

    def add_tender(
        self,
        sale_id: str,
        kind: str,
        amount: int,
        reference: str | None = None,
        *,
        card: Doc | None = None,
        payment_id: str | None = None,
    ) -> SaleDoc:
        """Record a payment; the sale completes by itself once it is paid in full.

        A card tender only comes from a payment the card terminal approved
        (appliance/payments): ``payment_id`` names it and ``card`` carries what the
        slip shows (masked PAN only). A card tender without them is refused.
        """
        if kind == CARD and (card is None or payment_id is None):
            raise Conflict(
                "card tenders come from the card terminal: start a card payment with "
                f"POST /api/sales/{sale_id}/payments",
                field="kind",
            )
        doc = self.sale(sale_id)
        if doc["kind"] == "refund":
            raise Conflict("refunds are paid out with complete_refund", field="sale_id")
        if doc["status"] != OPEN:
            raise Conflict(
                f"sale {sale_id} is {doc['status']}: it takes no tenders", field="sale_id"
            )
        if kind not in TENDER_KINDS:
            raise ValidationError(f"must be one of {', '.join(TENDER_KINDS)}", field="kind")
        check_int(amount, "amount", 1, MAX_AMOUNT)
        ref = check_text(reference, "reference", 100, required=False)
        if not [line for line in doc["lines"] if not line.get("voided")]:
            raise Conflict("the sale has no lines to pay for", field="sale_id")
        shift = self._open_shift()
        totals = doc["totals"]
        if kind != CASH:
            left = totals["total"] - totals["paid"]
            if amount > left:
                raise ValidationError(
                    f"{kind} amount {amount} is more than the {left} still due "
                    "(only cash gives change)",
                    field="amount",
                )
        tender: Doc = {
            "id": uuid.uuid4().hex[:12],
            "kind": kind,
            "amount": amount,
            "reference": ref,
        }
        if kind == CARD:
            tender.update(payment_id=payment_id, card=card)
        ops = [self._op("sale.tender", {"tender": tender}, sale_id)]
        trial = {**doc, "tenders": [*doc["tenders"], tender]}
        trial_totals = compute_totals(trial)
        if trial_totals["due"] == 0:
            ops += self._complete_ops(doc, shift, [tender])
        return self._apply(doc, ops)

    def reverse_card_tender(
        self, sale_id: str, tender_id: str, payment_id: str, card: Doc, reference: str | None
    ) -> SaleDoc:
        """Take a card tender back out of an open sale after its payment was reversed on
        the terminal (``payment_id`` is the reversal): appends the negative tender."""
        doc = self.sale(sale_id)
        if doc["status"] != OPEN:
            raise Conflict(f"sale {sale_id} is {doc['status']}: refund it instead", field="sale_id")
        original = next(
            (t for t in doc["tenders"] if t["id"] == tender_id and t["kind"] == CARD), None
        )
        if original is None or original["amount"] <= 0:
            raise NotFound(f"sale {sale_id} has no card tender {tender_id}", field="tender_id")
        if any(t.get("reverses") == tender_id for t in doc["tenders"]):
            raise Conflict(f"card tender {tender_id} is already reversed", field="tender_id")
        tender = {
            "id": uuid.uuid4().hex[:12],
            "kind": CARD,
            "amount": -original["amount"],
            "reference": check_text(reference, "reference", 100, required=False),
            "payment_id": payment_id,
            "reverses": tender_id,
            "card": card,
        }
        return self._apply(doc, [self._op("sale.tender", {"tender": tender}, sale_id)])

    def append_op(self, kind: str, payload: Doc, sale_id: str | None = None) -> None:
        """Append one op of a feature (e.g. a card payment declined after the fact)."""
        from appliance.reducer import REDUCERS

        if kind.startswith("sale.") or kind not in REDUCERS:
            raise ValueError(f"{kind!r} is not a feature op kind")
        self.commit([self._op(kind, payload, sale_id)])

    def complete(self, sale_id: str) -> SaleDoc:
        """Complete a sale that needs no (more) payment, e.g. one discounted to zero."""
        doc = self.sale(sale_id)
        if doc["status"] != OPEN or doc["kind"] != "sale":
            raise Conflict(f"sale {sale_id} is {doc['status']}", field="sale_id")
        if not [line for line in doc["lines"] if not line.get("voided")]:
            raise Conflict("the sale has no lines", field="sale_id")
        if doc["totals"]["due"] != 0:
            raise Conflict(f"{doc['totals']['due']} is still due", field="sale_id")
        return self._apply(doc, self._complete_ops(doc, self._open_shift()))

    # refunds ----------------------------------------------------------------
    def sale_by_receipt(self, receipt_no: str) -> SaleDoc:
        if not isinstance(receipt_no, str):
            raise ValidationError("must be a receipt number", field="receipt_no")
        prefix = self.config.barcodes.receipt_prefix
        number = receipt_no.strip().removeprefix(prefix)
        doc = self.state.sale_by_receipt(number)
        if doc is None:
            raise NotFound(f"no sale with receipt {number!r}", field="receipt_no", value=number)
        return doc

    def start_refund(self, receipt_no: str) -> SaleDoc:
        original = self.sale_by_receipt(receipt_no)
        if original["kind"] != "sale" or original["status"] != COMPLETED:
            raise Conflict(f"receipt {receipt_no} is not a completed sale", field="receipt_no")
        sale_id = self.new_sale_id()
        payload = {
            "kind": "refund",
            "pricing": original["pricing"],
            "opened_at": _now_iso(),
            "refund_of": original["id"],
            "refund_of_receipt": original["receipt_no"],
        }
        self.commit([self._op("sale.open", payload, sale_id)])
        return self.sale(sale_id)

    def add_refund_line(self, refund_id: str, original_line_no: int, qty: int) -> SaleDoc:
        refund = self._editable(refund_id)
        if refund["kind"] != "refund":
            raise Conflict(f"sale {refund_id} is not a refund", field="sale_id")
        original = self.sale(refund["refund_of"])
        line = self._get_line(original, original_line_no)
        sold_qty = line["qty"]
        orig_totals = next(t for t in original["totals"]["lines"] if t["no"] == line["no"])
        done = original.get("refunded", {}).get(str(line["no"]), {"qty": 0, "amount": 0})
        in_this = sum(
            x["qty"]
            for x in refund["lines"]
            if x["orig_line_no"] == line["no"] and not x.get("voided")
        )
        left = sold_qty - done["qty"] - in_this
        field = "weight_g" if line["unit"] == "g" else "qty"
        if left <= 0:
            raise ValidationError(
                f"line {line['no']} is already refunded in full "
                f"(sold {sold_qty}, refunded {sold_qty - left})",
                field=field,
            )
        check_int(qty, field, 1, MAX_WEIGHT_G if line["unit"] == "g" else MAX_QUANTITY)
        if qty > left:
            raise ValidationError(
                f"only {left} of line {line['no']} can still be refunded, not {qty}", field=field
            )
        share = self._line_tax_shares(original)[line["no"]]
        refunded_amount = done["amount"] + sum(
            -x["refund_amount"] for x in refund["lines"] if x["orig_line_no"] == line["no"]
        )
        refunded_tax = done.get("tax", 0) + sum(
            -x["refund_tax"] for x in refund["lines"] if x["orig_line_no"] == line["no"]
        )
        # Cumulative proportion: the refunds of a line so far plus this one get
        # round(amount × refunded qty / sold qty). Each part is ≥ 0, they never add up
        # to more than was sold, and the last part makes the total exact.
        upto = sold_qty - left + qty
        amount = div_round(orig_totals["amount"] * upto, sold_qty) - refunded_amount
        tax = div_round(share * upto, sold_qty) - refunded_tax
        new = {
            "id": uuid.uuid4().hex[:16],
            "no": self._line_no(refund),
            "sku": line["sku"],
            "name": line["name"],
            "code": line.get("code"),
            "unit": line["unit"],
            "qty": qty,
            "unit_price": line["unit_price"],
            "tax_category": line["tax_category"],
            "rate_ppm": line["rate_ppm"],
            "override": None,
            "discount": None,
            "voided": False,
            "orig_line_no": line["no"],
            "refund_amount": -amount,
            "refund_tax": -tax,
        }
        return self._apply(refund, [self._op("sale.line_add", {"line": new}, refund_id)])

    @staticmethod
    def _line_tax_shares(original: SaleDoc) -> dict[int, int]:
        """Each line's exact share of its rate's tax (sums to the rate's tax to the cent)."""
        totals = original["totals"]
        active = [x for x in original["lines"] if not x.get("voided")]
        shares: dict[int, int] = {}
        for row in totals["taxes"]:
            members = [
                (line, t)
                for line, t in zip(active, totals["lines"], strict=True)
                if line["tax_category"] == row["category"] and line["rate_ppm"] == row["rate_ppm"]
            ]
            if original["kind"] == "refund":
                continue
            parts = allocate(row["tax"], [max(t["amount"], 0) for _, t in members])
            for (line, _), part in zip(members, parts, strict=True):
                shares[line["no"]] = part
        return shares

    def refund_plan(self, refund_id: str, tender_kind: str | None = None) -> list[tuple[str, int]]:
        """How an open refund pays out: (tender kind, amount) pairs, card and voucher
        first as far as the original sale was paid that way, the rest in cash (before
        cash rounding); or all to ``tender_kind``."""
        refund = self.sale(refund_id)
        if refund["kind"] != "refund" or refund["status"] != OPEN:
            raise Conflict(f"sale {refund_id} is not an open refund", field="sale_id")
        if not [x for x in refund["lines"] if not x.get("voided")]:
            raise Conflict("the refund has no lines", field="sale_id")
        if tender_kind is not None and tender_kind not in TENDER_KINDS:
            raise ValidationError(f"must be one of {', '.join(TENDER_KINDS)}", field="tender_kind")
        original = self.sale(refund["refund_of"])
        owed = -refund["totals"]["total"]  # positive amount to pay back
        if tender_kind is not None:
            return [(tender_kind, owed)]
        plan: list[tuple[str, int]] = []
        paid_by = {k: 0 for k in TENDER_KINDS}
        for t in original["tenders"]:
            paid_by[t["kind"]] += t["amount"]
        paid_by[CASH] -= original["totals"]["change"]
        for rid in original.get("refunds", []):
            done_refund = self.sale(rid)
            for t in done_refund["tenders"]:
                paid_by[t["kind"]] += t["amount"]  # refund tenders are negative
        left = owed
        for kind in (CARD, OTHER):
            take = min(max(paid_by[kind], 0), left)
            if take > 0:
                plan.append((kind, take))
                left -= take
        if left > 0:  # whatever was not paid by card or voucher goes back in cash
            plan.append((CASH, left))
        return plan

    def complete_refund(
        self,
        refund_id: str,
        tender_kind: str | None = None,
        card_tenders: list[Doc] | None = None,
    ) -> SaleDoc:
        """Pay the refund out: to the original tenders by default, or all to ``tender_kind``.

        Money goes back to a card only through the card terminal: ``card_tenders`` are
        the (negative) tenders of the refunds or reversals it approved, and they must
        cover the card part of the plan exactly.
        """
        plan = self.refund_plan(refund_id, tender_kind)
        refund = self.sale(refund_id)
        original = self.sale(refund["refund_of"])
        card_part = sum(a for k, a in plan if k == CARD)
        if card_part and card_tenders is None:
            raise Conflict(
                f"{card_part} of this refund goes back to the card: refund it through the "
                f"card terminal with POST /api/refunds/{refund_id}/card, or pay it all out "
                "with another tender_kind",
                field="tender_kind",
            )
        if sum(-t["amount"] for t in card_tenders or []) != card_part:
            raise Conflict(
                f"the card terminal refunded {sum(-t['amount'] for t in card_tenders or [])}, "
                f"but the card part of this refund is {card_part}",
                field="card_tenders",
            )
        # Re-check against refunds completed since the lines were added.
        for line in refund["lines"]:
            if line.get("voided"):
                continue
            sold = next(x for x in original["lines"] if x["no"] == line["orig_line_no"])
            done = original.get("refunded", {}).get(str(sold["no"]), {"qty": 0})["qty"]
            mine = sum(
                x["qty"]
                for x in refund["lines"]
                if x["orig_line_no"] == sold["no"] and not x.get("voided")
            )
            if done + mine > sold["qty"]:
                raise Conflict(
                    f"line {sold['no']} was refunded elsewhere meanwhile: only "
                    f"{sold['qty'] - done} left",
                    field="qty",
                )
        shift = self._open_shift()
        owed = -refund["totals"]["total"]
        ops: list[Op] = []
        tenders: list[Doc] = list(card_tenders or [])
        noncash = sum(a for k, a in plan if k != CASH)
        for kind, amount in plan:
            if kind == CARD:
                continue  # the terminal's tenders above
            if kind == CASH:
                # Cash payouts round toward zero: never pay out more than refunded.
                step = refund["pricing"]["cash_rounding"]
                amount = (owed - noncash) // step * step if step > 1 else owed - noncash
            if amount < 0 or (amount == 0 and kind != CASH):
                continue  # a cash payout that rounds to zero is still recorded as cash
            tenders.append(
                {
                    "id": uuid.uuid4().hex[:12],
                    "kind": kind,
                    "amount": -amount,
                    "reference": f"refund of {refund['refund_of_receipt']}",
                }
            )
        for tender in tenders:
            ops.append(self._op("sale.tender", {"tender": tender}, refund_id))
        ops += self._complete_ops(refund, shift, tenders)
        return self._apply(refund, ops)

    # shifts -----------------------------------------------------------------
    def current_shift(self) -> Doc | None:
        return self.state.open_shift(self.register_id)

    def open_shift(self, float_amount: int) -> Doc:
        check_int(float_amount, "float", 0, MAX_AMOUNT)
        if self.state.open_shift(self.register_id) is not None:
            raise Conflict("a shift is already open on this register", field="shift")
        number = self.state.counter(f"shift:{self.register_id}") + 1
        payload = {
            "shift_id": uuid.uuid4().hex,
            "number": number,
            "float": float_amount,
            "opened_at": _now_iso(),
        }
        self.commit([self._op("shift.open", payload)])
        shift = self.current_shift()
        assert shift is not None
        return shift

    def cash_movement(self, kind: str, amount: int, reason: str) -> Doc:
        if kind not in ("in", "out"):
            raise ValidationError("must be 'in' or 'out'", field="kind")
        check_int(amount, "amount", 1, MAX_AMOUNT)
        text = check_text(reason, "reason", 200)
        shift = self._open_shift()
        if kind == "out":
            expected = shift_report(self.state, shift)["expected_cash"]
            if amount > expected:
                raise ValidationError(
                    f"cash out {amount} is more than the {expected} expected in the drawer",
                    field="amount",
                )
        movement = {"kind": kind, "amount": amount, "reason": text, "at": _now_iso()}
        self.commit([self._op("shift.cash", {"shift_id": shift["id"], "movement": movement})])
        return self.state.get_shift(shift["id"]) or {}

    def x_report(self) -> Doc:
        return shift_report(self.state, self._open_shift())

    def close_shift(self, counted: int, sections: Doc | None = None) -> Doc:
        """Close with the counted cash; returns the Z report (with over/short).

        ``sections`` are what features report next to the register's own figures
        (the card terminal's end-of-day totals), stored in the Z report under their
        names.
        """
        check_int(counted, "counted", 0, MAX_AMOUNT)
        shift = self._open_shift()
        z_no = self.state.counter(f"z:{self.register_id}") + 1
        payload = {
            "shift_id": shift["id"],
            "counted": counted,
            "closed_at": _now_iso(),
            "z_no": z_no,
        }
        if sections:
            payload["sections"] = sections
        self.commit([self._op("shift.close", payload)])
        closed = self.state.get_shift(shift["id"])
        assert closed is not None
        report: Doc = closed["z_report"]
        return report

    def z_report(self, number: int | None = None) -> Doc:
        if number is None:
            shift = self.state.last_closed_shift(self.register_id)
        else:
            check_int(number, "number", 1, 10**9)
            shift = self.state.shift_by_number(self.register_id, number)
        if shift is None or shift["status"] != "closed":
            raise NotFound("no closed shift" + (f" number {number}" if number else ""))
        report: Doc = shift["z_report"]
        return report

    # verification ------------------------------------------------------------
    def check(self) -> oplog.CheckResult:
        return oplog.verify(self.conn)

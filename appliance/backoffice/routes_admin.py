"""The back office API for people (users with roles) and for the web shop.

Sign in with ``POST /api/v1/auth/login``; then ``Authorization: Bearer <token>``.
Each route names the permission it needs; only users with ``sites`` may pair,
unpair or sync registers.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from pydantic import ValidationError as PydanticValidationError

from appliance.backoffice import auth, ingest, registers, users, webshop
from appliance.backoffice.app import BO, Credentials, UserAuth, _token
from appliance.backoffice.opcheck import product_problem
from appliance.backoffice.registers import Unauthorized
from appliance.config import StoreSection, TaxSection
from appliance.errors import Conflict, NotFound, ValidationError
from appliance.money import MAX_AMOUNT

router = APIRouter(prefix="/api/v1")
Doc = dict[str, Any]
StoreId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
BUNDLE_KIND = r"^[a-z][a-z0-9_]{0,31}$"
# Bundles the back office checks itself; others (users, …) are checked by the
# register feature that applies them.
SETTINGS_STORE_KEYS = ("name", "currency", "currency_decimals", "cash_rounding")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_Body):
    username: StrictStr = Field(min_length=1, max_length=100)
    password: StrictStr = Field(min_length=1, max_length=200)


class UserIn(_Body):
    username: StrictStr = Field(pattern=r"^[A-Za-z0-9_.@-]{1,100}$")
    name: StrictStr = Field(min_length=1, max_length=100)
    password: StrictStr = Field(min_length=8, max_length=200)
    role: Literal["owner", "manager", "catalog", "reporting"]
    stores: list[StoreId] | None = None


class StoreIn(_Body):
    id: StoreId
    name: StrictStr = Field(min_length=1, max_length=100)


class PairingCodeIn(_Body):
    register_id: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9]{1,16}$")] | None = None
    name: StrictStr | None = Field(default=None, max_length=100)


class ProductIn(_Body):
    name: StrictStr = Field(min_length=1, max_length=200)
    price_minor: Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT)]
    barcodes: list[Annotated[StrictStr, Field(max_length=64)]] = Field(
        default_factory=list, max_length=50
    )
    tax_category: StrictStr = Field(default="standard", max_length=32)
    sold_by: Literal["unit", "weight"] = "unit"


class StockIn(_Body):
    on_hand: Annotated[StrictInt, Field(ge=-(10**9), le=10**9)] | None


class OrderLineIn(_Body):
    sku: StrictStr = Field(min_length=1, max_length=64)
    qty: Annotated[StrictInt, Field(ge=1, le=10_000)] = 1
    weight_g: Annotated[StrictInt, Field(ge=1, le=1_000_000)] | None = None


class OrderIn(_Body):
    order_id: StrictStr = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    name: StrictStr | None = Field(default=None, max_length=64)
    customer_code: StrictStr | None = Field(default=None, max_length=64)
    lines: list[OrderLineIn] = Field(min_length=1, max_length=200)


class CustomerIn(_Body):
    code: StrictStr = Field(min_length=1, max_length=64)
    name: StrictStr = Field(min_length=1, max_length=200)
    email: StrictStr | None = Field(default=None, max_length=200)


class WebshopKeyIn(_Body):
    name: StrictStr = Field(min_length=1, max_length=100)


# people ------------------------------------------------------------------------
@router.post("/auth/login", tags=["users"])
def login(bo: BO, body: LoginIn) -> Doc:
    with bo.write() as tx:
        return users.login(tx, body.username, body.password)


@router.post("/auth/logout", tags=["users"])
def logout(bo: BO, user: UserAuth, credentials: Credentials) -> Doc:
    with bo.write() as tx:
        users.logout(tx, _token(credentials))
    return {"signed_out": user["username"]}


@router.get("/me", tags=["users"])
def me(user: UserAuth) -> Doc:
    return user


@router.get("/users", tags=["users"])
def list_users(bo: BO, user: UserAuth) -> list[Doc]:
    users.require(user, "users")
    with bo.read() as tx:
        return users.list_users(tx)


@router.post("/users", status_code=201, tags=["users"])
def add_user(bo: BO, user: UserAuth, body: UserIn) -> Doc:
    users.require(user, "users")
    with bo.write() as tx:
        return users.add_user(tx, body.username, body.name, body.password, body.role, body.stores)


@router.delete("/users/{user_id}", tags=["users"])
def disable_user(bo: BO, user: UserAuth, user_id: str) -> Doc:
    users.require(user, "users")
    with bo.write() as tx:
        users.disable_user(tx, user_id)
    return {"disabled": user_id}


# stores and registers ------------------------------------------------------------
@router.get("/stores", tags=["stores"])
def list_stores(bo: BO, user: UserAuth) -> list[Doc]:
    with bo.read() as tx:
        rows = tx.all("SELECT id, name, created_at FROM stores ORDER BY id")
    return [r for r in rows if user["stores"] is None or r["id"] in user["stores"]]


@router.post("/stores", status_code=201, tags=["stores"])
def add_store(bo: BO, user: UserAuth, body: StoreIn) -> Doc:
    users.require(user, "settings")
    with bo.write() as tx:
        return registers.create_store(tx, body.id, body.name)


@router.get("/stores/{store_id}/registers", tags=["registers"])
def list_registers(bo: BO, user: UserAuth, store_id: str) -> list[Doc]:
    """Each register: online/offline, last seen, last synced (and by whom), pending ops."""
    users.require(user, "sites", store_id)
    with bo.read() as tx:
        return registers.list_registers(tx, store_id)


@router.post("/stores/{store_id}/pairing-codes", status_code=201, tags=["registers"])
def pairing_code(bo: BO, user: UserAuth, store_id: str, body: PairingCodeIn) -> Doc:
    """A one-time code (24 h) that a register trades for its token."""
    users.require(user, "sites", store_id)
    with bo.write() as tx:
        return registers.make_pairing_code(tx, store_id, body.register_id, body.name, user["name"])


@router.delete("/stores/{store_id}/registers/{register_id}", tags=["registers"])
def unpair(bo: BO, user: UserAuth, store_id: str, register_id: str) -> Doc:
    users.require(user, "sites", store_id)
    with bo.write() as tx:
        registers.unpair(tx, store_id, register_id)
    return {"unpaired": register_id}


def _request_sync(bo: Any, user: Doc, store_id: str, register_id: str | None) -> Doc:
    users.require(user, "sites", store_id)
    with bo.write() as tx:
        result = registers.request_sync(tx, store_id, register_id, user["name"])
    bo.notifier.notify(store_id)
    return result


@router.post("/stores/{store_id}/registers/{register_id}/sync", tags=["registers"])
def sync_register(bo: BO, user: UserAuth, store_id: str, register_id: str) -> Doc:
    """Sync one register now (it applies updates as soon as no sale is in progress)."""
    return _request_sync(bo, user, store_id, register_id)


@router.post("/stores/{store_id}/registers/sync", tags=["registers"])
def sync_all(bo: BO, user: UserAuth, store_id: str) -> Doc:
    """Sync every online register of the store now."""
    return _request_sync(bo, user, store_id, None)


# catalog and bundles -------------------------------------------------------------
@router.get("/stores/{store_id}/products", tags=["catalog"])
def list_products(
    bo: BO, user: UserAuth, store_id: str, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000
) -> list[Doc]:
    users.require(user, "reports", store_id)
    with bo.read() as tx:
        registers.require_store(tx, store_id)
        rows = tx.all(
            "SELECT sku, name, price, tax_category, sold_by, barcodes, version, origin, on_hand,"
            " updated_at FROM products WHERE store_id = ? AND removed_at IS NULL"
            " ORDER BY sku LIMIT ?",
            (store_id, limit),
        )
    return [{**r, "barcodes": json.loads(r["barcodes"])} for r in rows]


@router.put("/stores/{store_id}/products/{sku}", tags=["catalog"])
def put_product(bo: BO, user: UserAuth, store_id: str, sku: str, body: ProductIn) -> Doc:
    """Add or change a product; registers get it with their next pull."""
    users.require(user, "catalog", store_id)
    product = {
        "sku": sku,
        "name": body.name,
        "price": body.price_minor,
        "tax_category": body.tax_category,
        "sold_by": body.sold_by,
        "barcodes": body.barcodes,
    }
    with bo.write() as tx:
        registers.require_store(tx, store_id)
        tx.lock_store(store_id)
        problem = product_problem(product, ingest.tax_categories(tx, store_id))
        if problem:
            raise ValidationError(problem[1], field=problem[0])
        for code in body.barcodes:
            owner = tx.scalar(
                "SELECT sku FROM product_barcodes WHERE store_id = ? AND code = ?",
                (store_id, ingest.barcode_key(code)),
            )
            if owner and owner != sku:
                raise ValidationError(
                    f"barcode {code!r} already belongs to product {owner!r}", field="barcodes"
                )
        changed = ingest.put_product(tx, store_id, product, origin=f"user:{user['username']}")
    bo.notifier.notify(store_id)
    return {**product, "changed": changed}


@router.put("/stores/{store_id}/products/{sku}/stock", tags=["catalog"])
def put_stock(bo: BO, user: UserAuth, store_id: str, sku: str, body: StockIn) -> Doc:
    """Set the counted stock; completed sales from registers count it down."""
    users.require(user, "catalog", store_id)
    with bo.write() as tx:
        if not tx.one(
            "SELECT sku FROM products WHERE store_id = ? AND sku = ? AND removed_at IS NULL",
            (store_id, sku),
        ):
            raise NotFound(f"no product {sku!r} in store {store_id!r}", field="sku")
        tx.execute(
            "UPDATE products SET on_hand = ?, updated_at = ? WHERE store_id = ? AND sku = ?",
            (body.on_hand, auth.now_iso(), store_id, sku),
        )
    return {"sku": sku, "on_hand": body.on_hand}


@router.delete("/stores/{store_id}/products/{sku}", tags=["catalog"])
def remove_product(bo: BO, user: UserAuth, store_id: str, sku: str) -> Doc:
    """Take a product out of the catalog; registers refuse its codes after their next pull
    (sales that already sold it, and saved sales holding it, keep their lines)."""
    users.require(user, "catalog", store_id)
    with bo.write() as tx:
        registers.require_store(tx, store_id)
        tx.lock_store(store_id)
        version = ingest.remove_product(tx, store_id, sku)
    bo.notifier.notify(store_id)
    return {"removed": sku, "version": version}


def check_bundle(kind: str, payload: Doc) -> Doc:
    """Bundles the back office knows are checked as the register will read them."""
    try:
        if kind == "taxes":
            return TaxSection(**payload).model_dump(mode="json")
        if kind == "settings":
            unknown = set(payload) - {"store", "receipt"}
            if unknown:
                raise ValidationError(
                    f"unknown keys {sorted(unknown)}: allowed are store, receipt", field="payload"
                )
            StoreSection(**payload.get("store", {}))
            receipt = payload.get("receipt", {})
            if not isinstance(receipt, dict) or set(receipt) - {"header", "footer"}:
                raise ValidationError("receipt takes header and footer lists", field="receipt")
            StoreSection(
                receipt_header=receipt.get("header", []), receipt_footer=receipt.get("footer", [])
            )
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        raise ValidationError(str(err["msg"]), field=where) from None
    return payload


@router.get("/stores/{store_id}/bundles", tags=["settings"])
def list_bundles(bo: BO, user: UserAuth, store_id: str) -> list[Doc]:
    users.require(user, "settings", store_id)
    with bo.read() as tx:
        rows = tx.all(
            "SELECT kind, version, payload, updated_at, updated_by FROM bundles"
            " WHERE store_id = ? ORDER BY kind",
            (store_id,),
        )
    return [{**r, "payload": json.loads(r["payload"])} for r in rows]


@router.put("/stores/{store_id}/bundles/{kind}", tags=["settings"])
def put_bundle(bo: BO, user: UserAuth, store_id: str, kind: str, payload: Doc) -> Doc:
    """Push a settings bundle (taxes, settings, users, …) to the store's registers."""
    if not re.fullmatch(BUNDLE_KIND, kind) or kind in ("catalog", "customers"):
        raise ValidationError(
            "must be 1-32 of a-z 0-9 _ (the catalog and customers are pushed through"
            " /products and /customers)",
            field="kind",
        )
    users.require(user, "users" if kind == "users" else "settings", store_id)
    payload = check_bundle(kind, payload)
    text = ingest.dumps(payload)
    with bo.write() as tx:
        registers.require_store(tx, store_id)
        tx.lock_store(store_id)
        version = ingest.bump_version(tx, store_id)
        tx.execute(
            "INSERT INTO bundles (store_id, kind, version, payload, updated_at, updated_by)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT (store_id, kind) DO UPDATE SET"
            " version = excluded.version, payload = excluded.payload,"
            " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            (store_id, kind, version, text, auth.now_iso(), user["name"]),
        )
    bo.notifier.notify(store_id)
    return {"kind": kind, "version": version}


# what the registers sent ---------------------------------------------------------
@router.get("/stores/{store_id}/sales", tags=["reports"])
def list_sales(
    bo: BO,
    user: UserAuth,
    store_id: str,
    status: Literal["open", "parked", "completed", "voided", "incomplete"] | None = None,
    register_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> list[Doc]:
    users.require(user, "reports", store_id)
    where, params = ["store_id = ?"], [store_id]
    if status:
        where.append("status = ?")
        params.append(status)
    if register_id:
        where.append("(register_id = ? OR completed_by = ?)")
        params += [register_id, register_id]
    with bo.read() as tx:
        rows = tx.all(
            "SELECT sale_id, register_id, kind, status, name, receipt_no, total, opened_at,"
            " completed_at, completed_by, saved, fold_error FROM sales"
            f" WHERE {' AND '.join(where)} ORDER BY opened_at, sale_id LIMIT ?",
            (*params, limit),
        )
    return [{**r, "saved": bool(r["saved"])} for r in rows]


@router.get("/stores/{store_id}/sales/{sale_id}", tags=["reports"])
def get_sale(bo: BO, user: UserAuth, store_id: str, sale_id: str) -> Doc:
    users.require(user, "reports", store_id)
    with bo.read() as tx:
        row = tx.one(
            "SELECT doc, fold_error FROM sales WHERE store_id = ? AND sale_id = ?",
            (store_id, sale_id),
        )
    if row is None:
        raise NotFound(f"no sale {sale_id!r} in store {store_id!r}", field="sale_id")
    doc: Doc = json.loads(row["doc"])
    return {**doc, "fold_error": row["fold_error"]}


@router.get("/stores/{store_id}/shifts", tags=["reports"])
def list_shifts(bo: BO, user: UserAuth, store_id: str) -> list[Doc]:
    users.require(user, "reports", store_id)
    with bo.read() as tx:
        rows = tx.all(
            "SELECT doc FROM shifts WHERE store_id = ? ORDER BY register_id, number", (store_id,)
        )
    return [json.loads(r["doc"]) for r in rows]


@router.get("/stores/{store_id}/customers", tags=["reports"])
def list_customers(bo: BO, user: UserAuth, store_id: str) -> list[Doc]:
    users.require(user, "reports", store_id)
    with bo.read() as tx:
        return tx.all(
            "SELECT customer_id, code, name, email, origin FROM customers WHERE store_id = ?"
            " ORDER BY code",
            (store_id,),
        )


@router.put("/stores/{store_id}/customers/{customer_id}", tags=["reports"])
def put_customer(bo: BO, user: UserAuth, store_id: str, customer_id: str, body: CustomerIn) -> Doc:
    """Add or change a customer; every register of the store gets it with its next pull.

    The edit takes an HLC after the version it replaces (last writer wins by HLC on
    the back office and on the registers), so a register's later edit still wins.
    """
    users.require(user, "settings", store_id)
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", customer_id):
        raise ValidationError("must be 1-64 of A-Z a-z 0-9 _ . : -", field="customer_id")
    with bo.write() as tx:
        registers.require_store(tx, store_id)
        tx.lock_store(store_id)
        other = tx.one(
            "SELECT customer_id, name FROM customers"
            " WHERE store_id = ? AND code = ? AND customer_id != ?",
            (store_id, body.code, customer_id),
        )
        if other:
            raise Conflict(
                f"customer code {body.code!r} already belongs to {other['name']!r} "
                f"(customer {other['customer_id']})",
                field="code",
            )
        previous = tx.scalar(
            "SELECT updated_hlc FROM customers WHERE store_id = ? AND customer_id = ?",
            (store_id, customer_id),
        )
        hlc = ingest.backoffice_hlc(previous)
        customer = {"id": customer_id, **body.model_dump()}
        ingest.put_customer(tx, store_id, customer, f"user:{user['username']}", hlc)
    bo.notifier.notify(store_id)
    return {**customer, "hlc": hlc}


@router.delete("/stores/{store_id}/customers/{customer_id}", tags=["reports"])
def delete_customer(bo: BO, user: UserAuth, store_id: str, customer_id: str) -> Doc:
    """Forget a customer record (e.g. to free a code a register needs)."""
    users.require(user, "settings", store_id)
    with bo.write() as tx:
        tx.execute(
            "DELETE FROM customers WHERE store_id = ? AND customer_id = ?", (store_id, customer_id)
        )
    return {"deleted": customer_id}


# the web shop ----------------------------------------------------------------------
@router.post("/stores/{store_id}/webshop-keys", status_code=201, tags=["webshop"])
def webshop_key(bo: BO, user: UserAuth, store_id: str, body: WebshopKeyIn) -> Doc:
    """A key the web shop posts orders with (shown once)."""
    users.require(user, "settings", store_id)
    key = auth.new_token()
    with bo.write() as tx:
        registers.require_store(tx, store_id)
        tx.execute(
            "INSERT INTO webshop_keys (key_hash, store_id, name, created_at) VALUES (?,?,?,?)",
            (auth.digest(key), store_id, body.name, auth.now_iso()),
        )
    return {"key": key, "store_id": store_id, "name": body.name}


@router.post("/webshop/orders", status_code=201, tags=["webshop"])
def webshop_order(bo: BO, credentials: Credentials, body: OrderIn) -> Doc:
    """An order from the web shop: it arrives on the store's registers as a saved sale."""
    key = _token(credentials)
    with bo.write() as tx:
        row = tx.one("SELECT store_id FROM webshop_keys WHERE key_hash = ?", (auth.digest(key),))
        if row is None:
            raise Unauthorized("unknown web-shop key")
        result = webshop.take_order(tx, row["store_id"], body.model_dump())
    bo.notifier.notify(row["store_id"])
    return result

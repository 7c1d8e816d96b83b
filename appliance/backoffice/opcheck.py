"""Checking operations a register pushes, before anything of them is stored.

The envelope of every op is checked (ids, kind, HLC, sizes). The payloads of the kinds
the back office derives sales, shifts, customers and products from are checked
against the shapes the register writes; other kinds (from newer registers or other
features) are kept as they are. A problem is reported as ``ops[i].payload.x: …`` with
the op's id, so the register can set exactly that op aside as errored.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic import ValidationError as PydanticValidationError

from appliance.catalog import validate_product
from appliance.errors import ApplianceError
from appliance.hlc import Timestamp
from appliance.money import MAX_AMOUNT

MAX_OPS = 1000
MAX_PAYLOAD_BYTES = 256 * 1024
OP_ID = r"^[A-Za-z0-9:_.-]{1,100}$"
KIND = r"^[a-z][a-z0-9_]{0,31}(\.[a-z0-9_]{1,32}){1,3}$"
NODE = r"^[A-Za-z0-9:@_-]{1,40}$"
SALE_ID = r"^[A-Za-z0-9_-]{1,64}$"

Text = Annotated[StrictStr, Field(max_length=500)]
Money = Annotated[StrictInt, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]
Count = Annotated[StrictInt, Field(ge=0, le=10**12)]


class OpRejected(ApplianceError):
    """One op of a push is not acceptable; nothing of the push was stored."""

    code = "op_rejected"
    http_status = 422


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow")


class Op(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op_id: StrictStr = Field(pattern=OP_ID)
    register_id: StrictStr = Field(pattern=NODE)
    hlc: StrictStr = Field(max_length=80)
    sale_id: Annotated[StrictStr, Field(pattern=SALE_ID)] | None = None
    kind: StrictStr = Field(pattern=KIND)
    payload: dict[str, Any]
    seq: StrictInt | None = Field(default=None, description="the register's local position")


class Pricing(_Shape):
    tax_mode: Literal["inclusive", "exclusive"]
    tax_rounding: Literal["per_line", "per_total"]
    cash_rounding: Annotated[StrictInt, Field(ge=1, le=100)]
    currency: StrictStr = Field(max_length=8)


class SaleOpen(_Shape):
    kind: Literal["sale", "refund"]
    pricing: Pricing
    opened_at: Text
    refund_of: Text | None = None


class Line(_Shape):
    id: Text
    no: Annotated[StrictInt, Field(ge=1, le=10**6)]
    sku: Text
    name: Text
    unit: Literal["unit", "g"]
    qty: Annotated[StrictInt, Field(ge=1, le=10**9)]
    unit_price: Money
    tax_category: Text
    rate_ppm: Annotated[StrictInt, Field(ge=0, le=1_000_000)]
    voided: StrictBool = False


class LineAdd(_Shape):
    line: Line


class LineRef(_Shape):
    line_id: Text | None = None
    no: Annotated[StrictInt, Field(ge=1, le=10**6)] | None = None


class Tender(_Shape):
    id: Text
    kind: Text
    amount: Money


class SaleTender(_Shape):
    tender: Tender


class Snapshot(_Shape):
    lines: list[Line]
    tenders: list[Tender]


class SaleComplete(_Shape):
    receipt_no: StrictStr = Field(min_length=1, max_length=64)
    receipt_seq: Count
    shift_id: Text
    completed_at: Text
    snapshot: Snapshot | None = None


class At(_Shape):
    at: Text


class Park(At):
    name: Text


class ShiftOpen(_Shape):
    shift_id: Text
    number: Count
    float: Money
    opened_at: Text


class ShiftCash(_Shape):
    shift_id: Text
    movement: dict[str, Any]


class ShiftClose(_Shape):
    shift_id: Text
    counted: Money
    closed_at: Text
    z_no: Count


class Customer(_Shape):
    id: StrictStr = Field(min_length=1, max_length=64)
    code: StrictStr = Field(min_length=1, max_length=64)
    name: StrictStr = Field(min_length=1, max_length=200)
    email: Text | None = None


class CustomerUpsert(_Shape):
    customer: Customer


class CatalogImport(_Shape):
    products: list[dict[str, Any]] = Field(max_length=10_000)


PAYLOADS: dict[str, type[_Shape]] = {
    "sale.open": SaleOpen,
    "sale.line_add": LineAdd,
    "sale.line_qty": LineRef,
    "sale.line_price": LineRef,
    "sale.line_discount": LineRef,
    "sale.line_void": LineRef,
    "sale.tender": SaleTender,
    "sale.complete": SaleComplete,
    "sale.park": Park,
    "sale.resume": At,
    "sale.void": At,
    "shift.open": ShiftOpen,
    "shift.cash": ShiftCash,
    "shift.close": ShiftClose,
    "customer.upsert": CustomerUpsert,
    "catalog.import": CatalogImport,
}
SALE_KINDS = {k for k in PAYLOADS if k.startswith("sale.")}


def _field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def check_ops(raw: Any, tax_categories: list[str] | None = None) -> list[dict[str, Any]]:
    """The ops of a push as plain dicts, or OpRejected naming the first bad one."""
    if not isinstance(raw, list):
        raise OpRejected("must be a list of operations", field="ops")
    if len(raw) > MAX_OPS:
        raise OpRejected(f"at most {MAX_OPS} operations per push", field="ops")
    out = []
    for i, item in enumerate(raw):
        op_id = item.get("op_id") if isinstance(item, dict) else None
        where = f"ops[{i}]"
        try:
            op = Op.model_validate(item)
        except PydanticValidationError as exc:
            err = exc.errors()[0]
            raise OpRejected(
                str(err["msg"]),
                field=where + _field(tuple(err["loc"])),
                op_id=op_id if isinstance(op_id, str) else None,
                index=i,
            ) from None
        try:
            Timestamp.parse(op.hlc)
        except (ValueError, AttributeError):
            raise OpRejected(
                "is not an HLC timestamp", field=f"{where}.hlc", op_id=op.op_id, index=i
            ) from None
        size = len(json.dumps(op.payload, separators=(",", ":")))
        if size > MAX_PAYLOAD_BYTES:
            raise OpRejected(
                f"payload of {size} bytes is over the {MAX_PAYLOAD_BYTES} allowed",
                field=f"{where}.payload",
                op_id=op.op_id,
                index=i,
            )
        shape = PAYLOADS.get(op.kind)
        if shape is not None:
            try:
                shape.model_validate(op.payload)
            except PydanticValidationError as exc:
                err = exc.errors()[0]
                raise OpRejected(
                    f"{op.kind}: {err['msg']}",
                    field=f"{where}.payload" + _field(tuple(err["loc"])),
                    op_id=op.op_id,
                    index=i,
                ) from None
        if op.kind.startswith("sale.") and op.sale_id is None:
            raise OpRejected(
                f"{op.kind} needs a sale_id", field=f"{where}.sale_id", op_id=op.op_id, index=i
            )
        if op.kind == "catalog.import":
            for j, product in enumerate(op.payload["products"]):
                problem = product_problem(product, tax_categories)
                if problem:
                    raise OpRejected(
                        problem[1],
                        field=f"{where}.payload.products[{j}].{problem[0]}",
                        op_id=op.op_id,
                        index=i,
                    )
        out.append(op.model_dump(exclude={"seq"}))
    return out


def product_problem(product: Any, tax_categories: list[str] | None) -> tuple[str, str] | None:
    """The first problem of a product as the register stores it (price in ``price``)."""
    if not isinstance(product, dict):
        return ("(product)", "must be an object")
    own = str(product.get("tax_category") or "standard")
    _, problems = validate_product(
        {**product, "price_minor": product.get("price")}, tax_categories or [own]
    )
    return problems[0] if problems else None

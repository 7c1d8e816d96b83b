"""The register's HTTP JSON API (FastAPI; OpenAPI at /openapi.json).

Everything the sell screen needs: catalog look-up, sales and lines, park/resume,
tenders, refunds, shifts and reports. Every error has one shape,
``{"error": {"code", "message", "field"?, ...}}``, with the field that was wrong;
a request that fails changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from appliance import __version__, settings
from appliance.config import Config
from appliance.features import Context, attach_all
from appliance.http_errors import install_error_handlers
from appliance.money import MAX_AMOUNT, MAX_PERCENT_BP, MAX_QUANTITY, MAX_WEIGHT_G
from appliance.register import Register
from appliance.service import RegisterService

Amount = Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT)]
AmountOrZero = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT)]
Percent = Annotated[StrictInt, Field(ge=0, le=MAX_PERCENT_BP)]
Doc = dict[str, Any]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineIn(_Body):
    code: StrictStr = Field(min_length=1, max_length=128, description="barcode or SKU")
    qty: Annotated[StrictInt, Field(ge=1, le=MAX_QUANTITY)] = 1
    weight_g: Annotated[StrictInt, Field(ge=1, le=MAX_WEIGHT_G)] | None = None


class ScanIn(_Body):
    code: StrictStr = Field(min_length=1, max_length=512)
    sale_id: StrictStr | None = None


class QtyIn(_Body):
    qty: Annotated[StrictInt, Field(ge=1, le=MAX_WEIGHT_G)]


class PriceIn(_Body):
    unit_price_minor: AmountOrZero
    reason: StrictStr = Field(min_length=1, max_length=200)


class DiscountIn(_Body):
    percent_bp: Percent | None = Field(default=None, description="10.5 % = 1050")
    amount_minor: AmountOrZero | None = None


class CustomerRef(_Body):
    code: StrictStr | None = Field(max_length=64)


class ParkIn(_Body):
    name: StrictStr = Field(min_length=1, max_length=64)


class VoidIn(_Body):
    reason: StrictStr = Field(min_length=1, max_length=200)


class TenderIn(_Body):
    kind: Literal["cash", "card", "other"]
    amount_minor: Amount
    reference: StrictStr | None = Field(default=None, max_length=100)


class RefundIn(_Body):
    receipt_no: StrictStr = Field(min_length=1, max_length=64)


class RefundLineIn(_Body):
    original_line_no: Annotated[StrictInt, Field(ge=1, le=10**6)]
    qty: Annotated[StrictInt, Field(ge=1, le=MAX_WEIGHT_G)]


class RefundCompleteIn(_Body):
    tender_kind: Literal["cash", "card", "other"] | None = None


class ShiftOpenIn(_Body):
    float_minor: AmountOrZero


class CashMoveIn(_Body):
    kind: Literal["in", "out"]
    amount_minor: Amount
    reason: StrictStr = Field(min_length=1, max_length=200)


class ShiftCloseIn(_Body):
    counted_minor: AmountOrZero


class CustomerIn(_Body):
    code: StrictStr = Field(min_length=1, max_length=64)
    name: StrictStr = Field(min_length=1, max_length=200)
    email: StrictStr | None = Field(default=None, max_length=200)


class ProductIn(_Body):
    sku: StrictStr
    name: StrictStr
    price_minor: AmountOrZero
    barcodes: list[StrictStr] = Field(default_factory=list, max_length=50)
    tax_category: StrictStr | None = None
    sold_by: Literal["unit", "weight"] = "unit"


class SettingsIn(_Body):
    changes: dict[StrictStr, Any] = Field(min_length=1, max_length=50)


def _who(request: Request) -> tuple[str | None, str | None]:
    """The user acting (a session, not a machine token) and the supervisor whose
    approval let them (set by the auth guard when an approval was used)."""
    principal = getattr(request.state, "principal", None)
    by = principal.username if principal is not None and principal.via == "session" else None
    approved_by: str | None = getattr(request.state, "approved_by", None)
    return by, approved_by


def create_app(config: Config, service: RegisterService | None = None) -> FastAPI:
    svc = service or RegisterService(config)

    ctx: Context | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert ctx is not None
        await svc.start()
        from appliance.peripherals import redetect_scanners, start_scanners

        # The scanners start with the runtime settings laid over the file (layouts),
        # and start again when a layout changes.
        current: Config = await svc.call(lambda register: register.config)
        scanners = await start_scanners(current, svc)
        app.state.scanners = scanners
        loop = asyncio.get_running_loop()
        restarts: set[asyncio.Future[Any]] = set()

        def on_settings(new: Config) -> None:
            nonlocal current
            if new.scanners.layouts != current.scanners.layouts:

                def restart() -> None:
                    task = asyncio.ensure_future(redetect_scanners(scanners, new))
                    restarts.add(task)
                    task.add_done_callback(restarts.discard)

                loop.call_soon_threadsafe(restart)
            current = new

        await svc.call(lambda register: register.settings_watchers.append(on_settings))
        try:
            for hook in ctx.starts:
                await hook()
            yield
        finally:
            for hook in reversed(ctx.stops):
                await hook()
            await scanners.stop()
            await svc.stop()

    app = FastAPI(
        title="Register appliance API",
        version=__version__,
        lifespan=lifespan,
        description="HTTP JSON API of one register. Money is integer minor units.",
    )
    app.state.service = svc
    ctx = Context(config=config, service=svc, app=app)
    app.state.features = ctx

    install_error_handlers(app)

    async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await svc.call(fn, *args, **kwargs)

    @app.get("/health")
    async def health() -> Doc:
        return {"status": "ok", "register_id": config.register.id, "version": __version__}

    @app.get("/api/scanners")
    async def scanners_status() -> list[Doc]:
        """Each configured scanner: its last scan (and which device sent it), scans
        dropped for want of an AIM identifier, line noise (serial/BLE frames thrown
        away) and its error if it stopped."""
        from appliance.peripherals import scanners_status as status_of

        return status_of(app.state.scanners)

    @app.get("/api/status")
    async def status() -> Doc:
        def read(r: Register) -> Doc:
            return {
                "register_id": r.register_id,
                "store_id": config.store.id,
                "version": __version__,
                "shift": r.current_shift(),
                "products": r.state.product_count(),
                "currency": config.store.currency,
                "currency_decimals": config.store.currency_decimals,
            }

        result: Doc = await call(read)
        return result

    # catalog ----------------------------------------------------------------
    @app.get("/api/catalog/lookup")
    async def lookup(code: Annotated[str, Query(min_length=1, max_length=128)]) -> Doc:
        product: Doc = await call(Register.lookup, code)
        return product

    @app.get("/api/products")
    async def search(q: Annotated[str, Query(max_length=64)] = "") -> list[Doc]:
        found: list[Doc] = await call(Register.search_products, q)
        return found

    @app.get("/api/products/{sku}")
    async def product(sku: str) -> Doc:
        found: Doc = await call(Register.product, sku)
        return found

    @app.put("/api/products/{sku}")
    async def put_product(sku: str, body: ProductIn, new: bool = False) -> Doc:
        """Create or change a product; ``?new=true`` (the counter's "new product")
        refuses an SKU that exists instead of changing it."""
        raw = body.model_dump()
        raw["sku"] = sku
        saved: Doc = await call(Register.upsert_product, raw, new)
        return saved

    @app.post("/api/catalog/import")
    async def import_csv(request: Request) -> Doc:
        raw = await request.body()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            from appliance.errors import ValidationError

            raise ValidationError(
                f"upload is not UTF-8 text (byte {exc.start})", field="body"
            ) from None
        count = await call(Register.import_catalog_csv, text, "upload.csv")
        return {"imported": count}

    # customers --------------------------------------------------------------
    @app.post("/api/customers", status_code=201)
    async def customer_upsert(body: CustomerIn) -> Doc:
        saved: Doc = await call(Register.upsert_customer, body.code, body.name, body.email)
        return saved

    @app.get("/api/customers/{code}")
    async def customer(code: str) -> Doc:
        found: Doc = await call(Register.customer, code)
        return found

    # sales ------------------------------------------------------------------
    @app.post("/api/sales", status_code=201)
    async def open_sale() -> Doc:
        sale: Doc = await call(Register.open_sale)
        return sale

    @app.get("/api/sales")
    async def list_sales(
        status: Literal["open", "parked", "completed", "voided"] | None = None,
    ) -> list[Doc]:
        sales: list[Doc] = await call(Register.sales, status)
        return sales

    @app.get("/api/sales/{sale_id}")
    async def get_sale(sale_id: str) -> Doc:
        sale: Doc = await call(Register.sale, sale_id)
        return sale

    @app.post("/api/sales/{sale_id}/lines", status_code=201)
    async def add_line(sale_id: str, body: LineIn) -> Doc:
        sale: Doc = await call(Register.add_line, sale_id, body.code, body.qty, body.weight_g)
        return sale

    @app.post("/api/scan")
    async def scan(body: ScanIn) -> Doc:
        """A scan as a scanner sends it: into the given sale or the register's active one."""
        from appliance.scan import apply_scan

        result: Doc = await call(apply_scan, body.code, body.sale_id)
        return result

    @app.patch("/api/sales/{sale_id}/lines/{line_no}")
    async def set_qty(sale_id: str, line_no: int, body: QtyIn) -> Doc:
        sale: Doc = await call(Register.set_quantity, sale_id, line_no, body.qty)
        return sale

    @app.post("/api/sales/{sale_id}/lines/{line_no}/price")
    async def override_price(request: Request, sale_id: str, line_no: int, body: PriceIn) -> Doc:
        sale: Doc = await call(
            Register.override_price,
            sale_id,
            line_no,
            body.unit_price_minor,
            body.reason,
            *_who(request),
        )
        return sale

    @app.post("/api/sales/{sale_id}/lines/{line_no}/discount")
    async def discount_line(request: Request, sale_id: str, line_no: int, body: DiscountIn) -> Doc:
        sale: Doc = await call(
            Register.discount_line,
            sale_id,
            line_no,
            body.percent_bp,
            body.amount_minor,
            *_who(request),
        )
        return sale

    @app.delete("/api/sales/{sale_id}/lines/{line_no}")
    async def void_line(sale_id: str, line_no: int) -> Doc:
        sale: Doc = await call(Register.void_line, sale_id, line_no)
        return sale

    @app.post("/api/sales/{sale_id}/discount")
    async def discount_sale(request: Request, sale_id: str, body: DiscountIn) -> Doc:
        sale: Doc = await call(
            Register.discount_sale, sale_id, body.percent_bp, body.amount_minor, *_who(request)
        )
        return sale

    @app.post("/api/sales/{sale_id}/customer")
    async def set_customer(sale_id: str, body: CustomerRef) -> Doc:
        sale: Doc = await call(Register.set_customer, sale_id, body.code)
        return sale

    @app.post("/api/sales/{sale_id}/park")
    async def park(sale_id: str, body: ParkIn) -> Doc:
        sale: Doc = await call(Register.park, sale_id, body.name)
        return sale

    @app.post("/api/sales/{sale_id}/resume")
    async def resume(sale_id: str) -> Doc:
        sale: Doc = await call(Register.resume, sale_id)
        return sale

    @app.post("/api/sales/{sale_id}/void")
    async def void_sale(sale_id: str, body: VoidIn) -> Doc:
        sale: Doc = await call(Register.void_sale, sale_id, body.reason)
        return sale

    @app.post("/api/sales/{sale_id}/tenders", status_code=201)
    async def add_tender(sale_id: str, body: TenderIn) -> Doc:
        sale: Doc = await call(
            Register.add_tender, sale_id, body.kind, body.amount_minor, body.reference
        )
        return sale

    @app.post("/api/sales/{sale_id}/complete")
    async def complete(sale_id: str) -> Doc:
        sale: Doc = await call(Register.complete, sale_id)
        return sale

    @app.get("/api/receipts/{receipt_no}")
    async def by_receipt(receipt_no: str) -> Doc:
        sale: Doc = await call(Register.sale_by_receipt, receipt_no)
        return sale

    # refunds ----------------------------------------------------------------
    @app.post("/api/refunds", status_code=201)
    async def start_refund(body: RefundIn) -> Doc:
        sale: Doc = await call(Register.start_refund, body.receipt_no)
        return sale

    @app.post("/api/refunds/{refund_id}/lines", status_code=201)
    async def refund_line(refund_id: str, body: RefundLineIn) -> Doc:
        sale: Doc = await call(Register.add_refund_line, refund_id, body.original_line_no, body.qty)
        return sale

    @app.post("/api/refunds/{refund_id}/complete")
    async def complete_refund(refund_id: str, body: RefundCompleteIn) -> Doc:
        sale: Doc = await call(Register.complete_refund, refund_id, body.tender_kind)
        return sale

    # shifts and reports -------------------------------------------------------
    @app.post("/api/shifts", status_code=201)
    async def open_shift(body: ShiftOpenIn) -> Doc:
        shift: Doc = await call(Register.open_shift, body.float_minor)
        return shift

    @app.get("/api/shifts/current")
    async def current_shift() -> Doc | None:
        shift: Doc | None = await call(Register.current_shift)
        return shift

    @app.post("/api/shifts/current/cash")
    async def cash_movement(body: CashMoveIn) -> Doc:
        shift: Doc = await call(Register.cash_movement, body.kind, body.amount_minor, body.reason)
        return shift

    @app.post("/api/shifts/current/close")
    async def close_shift(body: ShiftCloseIn) -> Doc:
        """Close the shift; the Z report carries the features' sections (the card
        terminal's end-of-day totals under ``card_terminal``)."""
        await call(Register.x_report)  # no open shift: refuse before the terminal is asked
        assert ctx is not None
        sections = await ctx.shift_close_sections()
        report: Doc = await call(Register.close_shift, body.counted_minor, sections)
        return report

    @app.get("/api/reports/x")
    async def x_report() -> Doc:
        report: Doc = await call(Register.x_report)
        return report

    @app.get("/api/reports/z")
    async def z_report(number: int | None = None) -> Doc:
        report: Doc = await call(Register.z_report, number)
        return report

    @app.get("/api/settings")
    async def get_settings() -> Doc:
        """The settings that change at run time, their values and who changed what."""
        found: Doc = await call(settings.overview)
        return found

    @app.put("/api/settings")
    async def put_settings(request: Request, body: SettingsIn) -> Doc:
        """Change runtime settings (dotted keys, e.g. ``store.receipt_header``): durable
        and in force for the next receipt, payment or scan; an error names the field."""
        principal = getattr(request.state, "principal", None)
        by = getattr(principal, "username", None)
        await call(settings.change, body.changes, "admin", by)
        found: Doc = await call(settings.overview)
        return found

    attach_all(ctx)
    return app

"""What a scan does to a sale: the step from a decoded barcode to a sale line.

Every scanner (keyboard wedge, serial, BLE) and the sell screen's scan field end
here. The barcode is parsed (appliance.barcodes), then:

- a misread (bad check digit, broken GS1) is refused and nothing changes;
- a customer card attaches the customer; a receipt barcode answers with the receipt
  so the screen can start a refund;
- a scale label or GS1 code with a weight adds the weighed product with that weight;
  one with a price adds the product at the label's price (an override with the
  reason "price from label");
- anything else is looked up by each of the parser's look-up codes (GTIN forms,
  item code) and then as typed (a SKU).
"""

from __future__ import annotations

from typing import Any

from appliance.barcodes import (
    GS,
    BarcodeSettings,
    ParsedBarcode,
    VariableMeasureLayout,
    parse_barcode,
)
from appliance.errors import ApplianceError, NotFound, ValidationError
from appliance.register import Register

Doc = dict[str, Any]


class Misread(ValidationError):
    code = "misread"


def barcode_settings(register: Register) -> BarcodeSettings:
    cfg = register.config
    return BarcodeSettings(
        customer_prefix=cfg.barcodes.customer_prefix,
        receipt_prefix=cfg.barcodes.receipt_prefix,
        currency_minor_digits=cfg.store.currency_decimals,
        vm_layouts=tuple(VariableMeasureLayout.from_spec(s) for s in cfg.barcodes.scale_labels),
        group_separators=GS + cfg.barcodes.gs_substitutes.replace(GS, ""),
    )


def _find_product(register: Register, parsed: ParsedBarcode) -> Doc:
    for code in (*parsed.lookup_codes, parsed.data):
        if not code:
            continue
        try:
            return register.lookup(code)
        except NotFound:
            continue
    raise NotFound(
        f"no product with barcode or SKU {parsed.data!r}", field="code", value=parsed.data
    )


def active_sale(register: Register) -> Doc:
    """The sale scans go into: this register's newest open sale without tenders (one it
    resumed from another register included), or a new one."""
    for sale in reversed(register.sales("open")):
        holder = sale.get("holder") or sale["register_id"]
        if holder == register.register_id and not sale["tenders"]:
            return sale
    return register.open_sale()


def apply_scan(register: Register, code: str, sale_id: str | None = None) -> Doc:
    """Apply one scan; returns {"action", "sale", "parsed", ...}. Refusals change nothing.

    Every outcome, refusals included, goes to ``register.scan_listeners``.
    """
    try:
        result = _apply_scan(register, code, sale_id)
    except ApplianceError as exc:
        for listener in register.scan_listeners:
            listener(code, None, exc)
        raise
    for listener in register.scan_listeners:
        listener(code, result, None)
    return result


def _apply_scan(register: Register, code: str, sale_id: str | None) -> Doc:
    if not isinstance(code, str) or not code or len(code) > 512:
        raise ValidationError("a scan must be 1-512 characters", field="code")
    parsed = parse_barcode(code, barcode_settings(register))
    if not parsed.valid:
        raise Misread(f"misread: {parsed.error}", field="code", value=parsed.data, kind=parsed.kind)
    if parsed.kind == "receipt":
        original = register.sale_by_receipt(parsed.receipt_no or "")
        return {"action": "receipt", "sale": original, "receipt_no": original["receipt_no"]}
    # Everything that can refuse the scan is checked before a sale is opened for it,
    # so an unknown code never leaves an empty sale behind.
    if parsed.kind == "customer":
        register.customer(parsed.customer_code or "")
        sale = register.sale(sale_id) if sale_id else active_sale(register)
        sale = register.set_customer(sale["id"], parsed.customer_code)
        return {"action": "customer", "sale": sale, "customer": sale["customer"]}

    product = _find_product(register, parsed)
    weighed = product["sold_by"] == "weight"
    if weighed and parsed.weight_g is not None and parsed.weight_g <= 0:
        raise ValidationError(
            f"{product['name']}: the label carries no weight; weigh the item",
            field="weight_g",
        )
    if weighed and parsed.weight_g is None and parsed.price_minor is None:  # plain code
        raise ValidationError(
            f"{product['name']} is sold by weight: weigh it or scan its scale label",
            field="weight_g",
        )
    sale = register.sale(sale_id) if sale_id else active_sale(register)
    if weighed and parsed.weight_g is not None:
        sale = register.add_line(sale["id"], product["sku"], weight_g=parsed.weight_g, scanned=code)
    elif parsed.price_minor is not None:
        sale = register.add_line(
            sale["id"], product["sku"], label_price=parsed.price_minor, scanned=code
        )
    else:
        sale = register.add_line(sale["id"], product["sku"], scanned=code)
    return {"action": "line", "sale": sale, "line": sale["lines"][-1]}

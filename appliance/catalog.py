"""Products and the catalog CSV import.

The import is all-or-nothing: every row is checked first and every problem is
reported as ``file:line: column: problem``; only a file without a single problem is
applied, as one operation in one transaction.

CSV columns (header row required, any order):
  sku           required, 1-64 printable characters, unique in the file
  name          required, 1-200 characters
  price_minor   required, integer minor units, 0 … 10^12 (per kg for weighed items)
  barcodes      optional, several separated by '|' or spaces; each 1-64 of [A-Za-z0-9-.]
  tax_category  optional, one of the configured tax categories (default: the first)
  sold_by       optional, 'unit' (default) or 'weight'
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

from appliance.errors import ValidationError
from appliance.money import MAX_AMOUNT
from appliance.storage.state import barcode_key

COLUMNS = ("sku", "name", "price_minor", "barcodes", "tax_category", "sold_by")
REQUIRED = ("sku", "name", "price_minor")
SKU_RE = re.compile(r"^[\x21-\x7e]{1,64}$")
BARCODE_RE = re.compile(r"^[A-Za-z0-9.\-]{1,64}$")
SOLD_BY = ("unit", "weight")


@dataclass
class ImportReport:
    products: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class CatalogImportError(ValidationError):
    code = "catalog_import"

    def __init__(self, errors: list[str]) -> None:
        super().__init__(
            f"catalog import refused, nothing imported: {len(errors)} problem(s)\n"
            + "\n".join(errors),
            errors=errors,
        )
        self.errors = errors


def validate_product(
    raw: dict[str, Any], tax_categories: list[str], where: str = "product"
) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """Check one product given as strings or values; returns (product, [(column, problem)])."""
    problems: list[tuple[str, str]] = []
    sku = str(raw.get("sku") or "").strip()
    if not SKU_RE.match(sku):
        problems.append(("sku", "required, 1-64 printable characters without spaces"))
    name = str(raw.get("name") or "").strip()
    if not name or len(name) > 200:
        problems.append(("name", "required, 1-200 characters"))
    price_raw = raw.get("price_minor")
    price: int | None = None
    if isinstance(price_raw, bool):
        problems.append(("price_minor", "must be an integer number of minor units"))
    elif isinstance(price_raw, int):
        price = price_raw
    else:
        text = str(price_raw if price_raw is not None else "").strip()
        if re.fullmatch(r"-?[0-9]+", text):
            price = int(text)
        elif text == "":
            problems.append(("price_minor", "required"))
        else:
            problems.append(
                ("price_minor", f"{text!r} is not an integer number of minor units (e.g. 199)")
            )
    if price is not None and not (0 <= price <= MAX_AMOUNT):
        problems.append(("price_minor", f"must be between 0 and {MAX_AMOUNT}, got {price}"))
    codes_raw = raw.get("barcodes") or []
    codes = (
        [c for c in re.split(r"[|\s]+", codes_raw.strip()) if c]
        if isinstance(codes_raw, str)
        else [str(c) for c in codes_raw]
    )
    for code in codes:
        if not BARCODE_RE.match(code):
            problems.append(
                ("barcodes", f"{code!r} is not a valid barcode (1-64 of A-Z a-z 0-9 . -)")
            )
    if len(set(codes)) != len(codes):
        problems.append(("barcodes", "the same barcode is listed twice"))
    tax = str(raw.get("tax_category") or "").strip() or tax_categories[0]
    if tax not in tax_categories:
        problems.append(("tax_category", f"{tax!r} is not one of {', '.join(tax_categories)}"))
    sold_by = str(raw.get("sold_by") or "").strip() or "unit"
    if sold_by not in SOLD_BY:
        problems.append(("sold_by", f"{sold_by!r} must be 'unit' or 'weight'"))
    if problems:
        return None, problems
    assert price is not None
    return {
        "sku": sku,
        "name": name,
        "price": price,
        "tax_category": tax,
        "sold_by": sold_by,
        "barcodes": codes,
    }, []


def parse_catalog_csv(text: str, filename: str, tax_categories: list[str]) -> ImportReport:
    report = ImportReport()
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        report.errors.append(f"{filename}:1: header: the file is empty (expected a header row)")
        return report
    except csv.Error as exc:
        report.errors.append(f"{filename}:1: header: not valid CSV: {exc}")
        return report
    header = [h.strip().lstrip("\ufeff") for h in header]
    for col in header:
        if col not in COLUMNS:
            report.errors.append(
                f"{filename}:1: {col or '(empty)'}: unknown column (allowed: {', '.join(COLUMNS)})"
            )
    for col in REQUIRED:
        if col not in header:
            report.errors.append(f"{filename}:1: {col}: required column is missing")
    if len(set(header)) != len(header):
        report.errors.append(f"{filename}:1: header: a column is named twice")
    if report.errors:
        return report

    seen_sku: dict[str, int] = {}
    seen_code: dict[str, tuple[int, str]] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                report.errors.append(
                    f"{filename}:{line}: row: has {len(row)} fields, the header has {len(header)}"
                )
                continue
            product, problems = validate_product(
                dict(zip(header, row, strict=True)), tax_categories
            )
            for column, problem in problems:
                report.errors.append(f"{filename}:{line}: {column}: {problem}")
            if product is None:
                continue
            if product["sku"] in seen_sku:
                report.errors.append(
                    f"{filename}:{line}: sku: {product['sku']!r} already on line "
                    f"{seen_sku[product['sku']]}"
                )
                continue
            seen_sku[product["sku"]] = line
            for code in product["barcodes"]:
                key = barcode_key(code)
                if key in seen_code:
                    other_line, other_sku = seen_code[key]
                    report.errors.append(
                        f"{filename}:{line}: barcodes: {code!r} already belongs to "
                        f"{other_sku!r} on line {other_line}"
                    )
                seen_code[key] = (line, product["sku"])
            report.products.append(product)
    except csv.Error as exc:
        report.errors.append(f"{filename}:{reader.line_num}: row: not valid CSV: {exc}")
    return report

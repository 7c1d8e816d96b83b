"""The parser's answer: what a scanned code is and what the register should do with it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

KINDS = (
    "ean13",
    "ean8",
    "upca",
    "upce",
    "gs1",
    "variable_measure",
    "customer",
    "receipt",
    "other",
)

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class ParsedBarcode:
    """One parsed scan.

    ``valid`` False means the code must not become a sale line; ``error`` then says why
    (a misread check digit, a malformed GS1 field, …). ``lookup_codes`` lists, best
    first, the codes the catalog should try: the code as scanned, its GTIN-14 and the
    GTIN's shorter forms, or for a scale label the zeroed label and the item code.
    ``ais`` is read-only; ``to_json_dict`` is the `appliance barcode parse` contract.
    """

    valid: bool
    kind: str
    raw: str
    data: str
    symbology: str | None = None
    gtin: str | None = None
    ais: Mapping[str, str] = field(default_factory=lambda: _EMPTY, hash=False)
    weight_g: int | None = None
    price_minor: int | None = None
    currency: str | None = None
    expiry: str | None = None
    error: str | None = None
    customer_code: str | None = None
    receipt_no: str | None = None
    item_code: str | None = None
    addon: str | None = None
    lookup_codes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.ais, MappingProxyType):
            object.__setattr__(self, "ais", MappingProxyType(dict(self.ais)))
        if self.valid != (self.error is None):
            raise ValueError("a ParsedBarcode is valid exactly when it has no error")
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}")

    def to_json_dict(self) -> dict[str, Any]:
        """The CLI/JSON contract: the seven contract keys first, then the details."""
        return {
            "valid": self.valid,
            "kind": self.kind,
            "gtin": self.gtin,
            "ais": dict(self.ais),
            "weight_g": self.weight_g,
            "price_minor": self.price_minor,
            "error": self.error,
            "symbology": self.symbology,
            "data": self.data,
            "customer_code": self.customer_code,
            "receipt_no": self.receipt_no,
            "item_code": self.item_code,
            "currency": self.currency,
            "expiry": self.expiry,
            "addon": self.addon,
            "lookup_codes": list(self.lookup_codes),
        }

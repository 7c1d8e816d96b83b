"""Variable-measure EAN-13 labels printed by shop scales (GS1 prefixes 20–29).

GS1 leaves the layout of these restricted-circulation numbers to each country and shop,
so it is configuration: per two-digit prefix, how many digits name the item, whether the
rest is a price or a weight, and whether a price/measure verifier digit precedes it::

    prefix(2) | item (item_digits) | [verifier (1)] | value (the rest) | EAN check (1)

The value is read as minor currency units for a price and as grams for a weight — what
scales print with the usual 2 price decimals and 3 kg decimals. A UPC-A label from a US
scale (number system 2) is the EAN-13 ``02…``, so prefix "02" configures it.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.barcodes.check_digits import append_check_digit, is_digits, price_check_digit

MEASURES = ("price", "weight")
SPEC_HELP = "PREFIX:ITEM_DIGITS:price|weight[:PRICE_CHECK]"


@dataclass(frozen=True, slots=True)
class VariableMeasureLayout:
    prefix: str
    item_digits: int
    measure: str  # "price" (minor units) or "weight" (grams)
    price_check: bool = False

    def __post_init__(self) -> None:
        if not (is_digits(self.prefix) and len(self.prefix) == 2):
            raise ValueError(f"prefix must be two digits, got {self.prefix!r}")
        if self.measure not in MEASURES:
            raise ValueError(f"measure must be price or weight, got {self.measure!r}")
        if not 1 <= self.item_digits <= 9:
            raise ValueError(f"item digits must be 1-9, got {self.item_digits}")
        if self.value_digits < 1:
            raise ValueError(f"{self.item_digits} item digits leave no room for the {self.measure}")
        if self.price_check and self.value_digits not in (4, 5):
            raise ValueError(
                f"a price check digit covers a 4- or 5-digit {self.measure}; this layout "
                f"leaves {self.value_digits} digits"
            )

    @property
    def value_digits(self) -> int:
        return 10 - self.item_digits - int(self.price_check)

    @classmethod
    def from_spec(cls, spec: str) -> VariableMeasureLayout:
        """Parse ``PREFIX:ITEM_DIGITS:price|weight[:PRICE_CHECK]``, e.g. ``21:5:weight``
        or ``28:4:price:1``; PRICE_CHECK is 0 (default) or 1."""
        parts = spec.strip().split(":")
        if len(parts) not in (3, 4):
            raise ValueError(f"layout {spec!r} is not {SPEC_HELP}")
        prefix, digits, measure = parts[0], parts[1], parts[2].lower()
        check = parts[3] if len(parts) == 4 else "0"
        if not is_digits(digits):
            raise ValueError(f"layout {spec!r}: ITEM_DIGITS must be a number")
        if check not in ("0", "1"):
            raise ValueError(f"layout {spec!r}: PRICE_CHECK must be 0 or 1")
        return cls(prefix, int(digits), measure, check == "1")

    def to_spec(self) -> str:
        return f"{self.prefix}:{self.item_digits}:{self.measure}:{int(self.price_check)}"


DEFAULT_VM_LAYOUTS = (
    VariableMeasureLayout("21", 5, "weight"),
    VariableMeasureLayout("23", 5, "price"),
)


@dataclass(frozen=True, slots=True)
class VariableMeasureReading:
    item_code: str
    measure: str
    value: int
    zeroed_code: str  # the label with value (and verifier) zeroed: how catalogs store it
    error: str | None = None


def read_variable_measure(code13: str, layout: VariableMeasureLayout) -> VariableMeasureReading:
    """Split a 13-digit label whose EAN check digit is already verified."""
    item_end = 2 + layout.item_digits
    item_code = code13[2:item_end]
    value_start = item_end + int(layout.price_check)
    value_text = code13[value_start:12]
    zeroed = append_check_digit(code13[:item_end] + "0" * (12 - item_end))
    error = None
    if layout.price_check:
        given = ord(code13[item_end]) - 48
        expected = price_check_digit(value_text)
        if given != expected:
            error = f"{layout.measure} check digit is {given}, expected {expected}"
    return VariableMeasureReading(item_code, layout.measure, int(value_text), zeroed, error)

"""How a shop's barcodes are set up: prefixes, scale-label layouts, currency."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from appliance.barcodes.check_digits import is_digits
from appliance.barcodes.gs1_ais import CSET_82
from appliance.barcodes.variable_measure import DEFAULT_VM_LAYOUTS, VariableMeasureLayout

GS = "\x1d"


@dataclass(frozen=True)
class BarcodeSettings:
    """Parser configuration; the defaults suit a shop that has not configured anything.

    - ``customer_prefix`` / ``receipt_prefix``: codes starting with them are customer
      cards and receipt barcodes (case-sensitive; "" switches the kind off).
    - ``vm_layouts``: scale-label layouts, one per two-digit prefix (see
      :mod:`appliance.barcodes.variable_measure`); by default 21 = weight, 23 = price,
      both with 5 item digits and no verifier digit.
    - ``eight_digit``: how a bare 8-digit code (no AIM identifier) is read first, "ean8"
      or "upce"; the other reading is the fallback when the first check digit fails.
    - ``currency_minor_digits``: decimals of the register's currency, for GS1 AI 392n.
    - ``currency_numeric``: the register's ISO 4217 numeric code; when set, an AI 393n
      price in another currency is rejected.
    - ``group_separators``: characters taken as FNC1 in GS1 data (GS by default; add the
      substitute a keyboard-wedge scanner is set to send, e.g. "|"). They must not be in
      the GS1 character set, or they would be ambiguous.
    - ``detect_unprefixed_gs1``: read data starting with AI 01 and a valid GTIN as GS1
      even without an AIM identifier or leading FNC1 (scanners with AIM off send that).
    - ``reference_date``: "today" for the GS1 two-digit-year window; None = today.
    """

    customer_prefix: str = "CUST"
    receipt_prefix: str = "RCPT"
    vm_layouts: tuple[VariableMeasureLayout, ...] = DEFAULT_VM_LAYOUTS
    eight_digit: str = "ean8"
    currency_minor_digits: int = 2
    currency_numeric: str | None = None
    group_separators: str = GS
    detect_unprefixed_gs1: bool = True
    reference_date: date | None = None
    _layouts_by_prefix: dict[str, VariableMeasureLayout] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        for name in ("customer_prefix", "receipt_prefix"):
            prefix = getattr(self, name)
            if not isinstance(prefix, str) or len(prefix) > 32:
                raise ValueError(f"{name} must be text of at most 32 characters")
            if prefix and not (prefix.isprintable() and not any(c.isspace() for c in prefix)):
                raise ValueError(f"{name} must be printable without spaces, got {prefix!r}")
        if self.customer_prefix and self.customer_prefix == self.receipt_prefix:
            raise ValueError("customer_prefix and receipt_prefix must differ")
        if self.eight_digit not in ("ean8", "upce"):
            raise ValueError(f"eight_digit must be 'ean8' or 'upce', got {self.eight_digit!r}")
        if not 0 <= self.currency_minor_digits <= 4:
            raise ValueError("currency_minor_digits must be 0-4")
        if self.currency_numeric is not None and not (
            is_digits(self.currency_numeric) and len(self.currency_numeric) == 3
        ):
            raise ValueError(
                f"currency_numeric must be a 3-digit ISO 4217 code, got {self.currency_numeric!r}"
            )
        if not self.group_separators:
            raise ValueError("group_separators must name at least one character")
        for ch in self.group_separators:
            if ch in CSET_82:
                raise ValueError(f"group separator {ch!r} is a GS1 data character")
        by_prefix: dict[str, VariableMeasureLayout] = {}
        for layout in self.vm_layouts:
            if not isinstance(layout, VariableMeasureLayout):
                raise ValueError(f"vm_layouts holds {layout!r}, not a VariableMeasureLayout")
            if layout.prefix in by_prefix:
                raise ValueError(f"two variable-measure layouts for prefix {layout.prefix}")
            by_prefix[layout.prefix] = layout
        object.__setattr__(self, "vm_layouts", tuple(self.vm_layouts))
        object.__setattr__(self, "_layouts_by_prefix", by_prefix)

    def vm_layout(self, code13: str) -> VariableMeasureLayout | None:
        """The layout for a 13-digit code, by its first two digits."""
        return self._layouts_by_prefix.get(code13[:2])


DEFAULT_SETTINGS = BarcodeSettings()

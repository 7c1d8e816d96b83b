"""The one entry point: scanned text → :class:`ParsedBarcode`.

Order of decisions (each documented because scanners and shops differ):

1. Surrounding spaces, tabs, CR and LF are dropped (scanner suffixes). Text that looks
   like payment-card track data is refused and redacted.
2. A leading AIM identifier is recognised and stripped; it decides the reading where
   it can (``]E4`` = EAN-8, ``]E0`` + 8 digits = UPC-E, ``]C1``/``]d2``/``]Q3``/``]e0``/
   ``]J1`` = GS1 data).
3. GS1 without AIM: data starting with FNC1 (GS), digit data containing a GS, the
   bracketed form ``(01)…``, or — when it parses cleanly — data starting with AI 01 and
   a valid GTIN. A GS1 Digital Link URI (``https://…/01/<GTIN>…``, from any non-EAN
   symbology) is kind "gs1" when it parses cleanly, else an ordinary "other" URL.
4. Customer and receipt prefixes (longest first), before any EAN reading, so a shop may
   use numeric prefixes on EAN-13 customer cards.
5. Digits only, no AIM: 13 = EAN-13, 12 = UPC-A, 8 = EAN-8 or UPC-E (below), 14 =
   GTIN-14/ITF-14 (kind "other" with ``gtin``); the check digit must hold, else the scan
   is a misread. An EAN-13/UPC-A whose prefix has a variable-measure layout is a scale
   label.
6. 8 digits without AIM: read as ``settings.eight_digit`` ("ean8" by default) when that
   check digit holds, else as the other one; invalid when neither does (the error names
   the preferred reading). When both hold, ``lookup_codes`` carries both readings,
   preferred first, because the digits alone cannot tell them apart.
7. Anything else printable is kind "other" and valid (a SKU); a numeric code of GTIN
   length from a non-EAN symbology (Code 128, QR, …) gets ``gtin`` when its check digit
   happens to hold, but is not rejected when it does not.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from typing import Any

from appliance.barcodes import aim
from appliance.barcodes.card_data import REDACTED, looks_like_track_data
from appliance.barcodes.check_digits import (
    GTIN_LENGTHS,
    check_digit_error,
    expand_upce,
    gtin_forms,
    has_valid_check_digit,
    is_digits,
)
from appliance.barcodes.gs1 import (
    is_gtin_head,
    looks_like_digital_link,
    looks_like_hri,
    read_gs1,
)
from appliance.barcodes.result import ParsedBarcode
from appliance.barcodes.settings import DEFAULT_SETTINGS, BarcodeSettings
from appliance.barcodes.variable_measure import VariableMeasureLayout, read_variable_measure

MAX_LENGTH = 4096
MAX_CUSTOMER_CODE = 64
_EDGE_WHITESPACE = " \t\r\n"
# Control characters that structured non-GS1 data (ISO/IEC 15434) legitimately holds.
_ALLOWED_CONTROLS = frozenset("\x1d\x1e\x04")
_RECEIPT_RE = re.compile(r"[A-Za-z0-9]{1,16}-[0-9]{1,18}")
# ]E3 data length → length of the main symbol (the rest is the 2- or 5-digit add-on).
_ADDON_SPLIT = {10: 8, 13: 8, 14: 12, 15: 13, 17: 12, 18: 13}

_log = logging.getLogger(__name__)


def parse_barcode(code: str, settings: BarcodeSettings | None = None) -> ParsedBarcode:
    """Parse one scan; never raises, whatever the input."""
    try:
        return parse_barcode_strict(code, settings)
    except Exception as exc:  # a parser bug must not take the register down
        # The code itself is not logged: it may hold data that must not be written out.
        _log.error("barcode parser failed on a %d-character code: %r", len(str(code)), exc)
        raw = code if isinstance(code, str) and not looks_like_track_data(code) else REDACTED
        return ParsedBarcode(False, "other", raw, raw, error=f"internal parser error ({exc!r})")


def parse_barcode_strict(code: str, settings: BarcodeSettings | None = None) -> ParsedBarcode:
    """:func:`parse_barcode` without the safety net, so tests see parser bugs."""
    s = settings or DEFAULT_SETTINGS
    if not isinstance(code, str):
        what = type(code).__name__
        return ParsedBarcode(False, "other", "", "", error=f"code must be text, got {what}")
    if looks_like_track_data(code):
        return ParsedBarcode(
            False,
            "other",
            REDACTED,
            REDACTED,
            error="looks like payment card track data; refused and not shown",
        )
    symbology, data = aim.split_aim(code.strip(_EDGE_WHITESPACE))
    ctx = _Context(code, data, symbology, s)
    if len(data) > MAX_LENGTH:
        return ctx.invalid("other", f"code has {len(data)} characters; at most {MAX_LENGTH}")
    if not data:
        return ctx.invalid("other", "empty code" if symbology is None else "no data after AIM")
    if aim.is_gs1_identifier(symbology):
        return _gs1(ctx)
    if symbology is None:
        gs1_guess = _bare_gs1(ctx)
        if gs1_guess is not None:
            return gs1_guess
    if aim.symbology_letter(symbology) != "E" and looks_like_digital_link(data):
        linked = _gs1(ctx)
        if linked.valid:  # otherwise it is just a URL
            return linked
    prefixed = _prefixed(ctx)
    if prefixed is not None:
        return prefixed
    letter = aim.symbology_letter(symbology)
    if letter == "E":
        return _ean_upc(ctx)
    if is_digits(data) and (symbology is None or letter == "I"):
        if len(data) == 14:
            return _gtin14(ctx, data)
        if symbology is None and len(data) in (8, 12, 13):
            return _by_length(ctx, data, None)
    return _other(ctx)


@dataclass(frozen=True, slots=True)
class _Context:
    raw: str
    data: str
    symbology: str | None
    settings: BarcodeSettings

    def invalid(self, kind: str, error: str) -> ParsedBarcode:
        return ParsedBarcode(False, kind, self.raw, self.data, self.symbology, error=error)

    def ok(self, kind: str, **fields: Any) -> ParsedBarcode:
        return ParsedBarcode(True, kind, self.raw, self.data, self.symbology, **fields)


def _unique(codes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(codes))


# --- GS1 ----------------------------------------------------------------------------------


def _gs1(ctx: _Context) -> ParsedBarcode:
    s = ctx.settings
    reading = read_gs1(
        ctx.data,
        separators=s.group_separators,
        currency_minor_digits=s.currency_minor_digits,
        currency_numeric=s.currency_numeric,
        today=s.reference_date,
    )
    if reading.error is not None:
        return ctx.invalid("gs1", reading.error)
    return ctx.ok(
        "gs1",
        gtin=reading.gtin,
        ais=reading.ais,
        weight_g=reading.weight_g,
        price_minor=reading.price_minor,
        currency=reading.currency,
        expiry=reading.expiry,
        lookup_codes=gtin_forms(reading.gtin) if reading.gtin else (),
    )


def _bare_gs1(ctx: _Context) -> ParsedBarcode | None:
    data, seps = ctx.data, ctx.settings.group_separators
    if data[0] in seps or looks_like_hri(data):
        return _gs1(ctx)
    if data[0].isdigit() and any(sep in data for sep in seps):
        return _gs1(ctx)
    if ctx.settings.detect_unprefixed_gs1 and is_gtin_head(data):
        parsed = _gs1(ctx)
        if parsed.valid:
            return parsed
    return None


# --- customer and receipt codes -------------------------------------------------------------


def _prefixed(ctx: _Context) -> ParsedBarcode | None:
    s = ctx.settings
    prefixes = [(s.customer_prefix, "customer"), (s.receipt_prefix, "receipt")]
    prefixes.sort(key=lambda item: len(item[0]), reverse=True)
    for prefix, kind in prefixes:
        if not prefix or not ctx.data.startswith(prefix):
            continue
        rest = ctx.data[len(prefix) :]
        if kind == "customer":
            problem = _customer_code_problem(rest, prefix)
            if problem is not None:
                return ctx.invalid("customer", problem)
            return ctx.ok("customer", customer_code=rest)
        if _RECEIPT_RE.fullmatch(rest) is None:
            return ctx.invalid(
                "receipt",
                f"receipt number {rest!r} after prefix {prefix!r} is not "
                "<register id>-<digits> (register id: 1-16 of A-Z a-z 0-9)",
            )
        return ctx.ok("receipt", receipt_no=rest)
    return None


def _customer_code_problem(rest: str, prefix: str) -> str | None:
    if not rest:
        return f"customer code is empty after prefix {prefix!r}"
    if len(rest) > MAX_CUSTOMER_CODE:
        return f"customer code has {len(rest)} characters; at most {MAX_CUSTOMER_CODE}"
    for i, ch in enumerate(rest):
        if not ch.isprintable() or ch.isspace():
            return f"customer code has {_char_name(ch)} at offset {len(prefix) + i}"
    return None


# --- EAN/UPC ----------------------------------------------------------------------------


def _ean_upc(ctx: _Context) -> ParsedBarcode:
    data, identifier = ctx.data, ctx.symbology or ""
    name = aim.describe(identifier)
    if identifier in (aim.EAN_ADDON_2, aim.EAN_ADDON_5):
        return ctx.invalid("other", f"{name}: an add-on without its main symbol")
    if not is_digits(data):
        return ctx.invalid("other", f"{name}: data must be digits, got {data[:20]!r}")
    n = len(data)
    if identifier == aim.EAN_8:
        if n != 8:
            return ctx.invalid("ean8", f"{name}: EAN-8 has 8 digits, got {n}")
        return _ean8(ctx, data, None)
    if identifier == aim.EAN_WITH_ADDON:
        main_len = _ADDON_SPLIT.get(n)
        if main_len is None:
            return ctx.invalid("other", f"{name}: {n} digits is no main symbol with add-on")
        return _by_length(ctx, data[:main_len], data[main_len:])
    if identifier == aim.EAN_MAIN:
        if n == 8:
            return _upce(ctx, data, None)
        if n in (12, 13):
            return _by_length(ctx, data, None)
        return ctx.invalid("other", f"{name}: {n} digits; EAN/UPC has 13, 12 or 8")
    if n in (8, 12, 13):  # a modifier we do not know: read the digits as they are
        return _by_length(ctx, data, None)
    return ctx.invalid("other", f"{name}: {n} digits; EAN/UPC has 13, 12 or 8")


def _by_length(ctx: _Context, code: str, addon: str | None) -> ParsedBarcode:
    if len(code) == 13:
        return _ean13(ctx, code, addon)
    if len(code) == 12:
        return _upca(ctx, code, addon)
    return _eight_digits(ctx, code, addon)


def _ean13(ctx: _Context, code: str, addon: str | None) -> ParsedBarcode:
    layout = ctx.settings.vm_layout(code)
    error = check_digit_error(code, "EAN-13")
    if error is not None:
        return ctx.invalid("variable_measure" if layout else "ean13", error)
    if layout is not None:
        return _variable_measure(ctx, code, layout)
    gtin = "0" + code
    return ctx.ok("ean13", gtin=gtin, addon=addon, lookup_codes=_unique((code, *gtin_forms(gtin))))


def _upca(ctx: _Context, code: str, addon: str | None) -> ParsedBarcode:
    layout = ctx.settings.vm_layout("0" + code)
    error = check_digit_error(code, "UPC-A")
    if error is not None:
        return ctx.invalid("variable_measure" if layout else "upca", error)
    if layout is not None:
        return _variable_measure(ctx, "0" + code, layout)
    gtin = "00" + code
    return ctx.ok("upca", gtin=gtin, addon=addon, lookup_codes=_unique((code, *gtin_forms(gtin))))


def _variable_measure(ctx: _Context, code13: str, layout: VariableMeasureLayout) -> ParsedBarcode:
    reading = read_variable_measure(code13, layout)
    if reading.error is not None:
        return ctx.invalid("variable_measure", reading.error)
    zeroed = reading.zeroed_code
    return ctx.ok(
        "variable_measure",
        item_code=reading.item_code,
        weight_g=reading.value if reading.measure == "weight" else None,
        price_minor=reading.value if reading.measure == "price" else None,
        currency=ctx.settings.currency_numeric if reading.measure == "price" else None,
        lookup_codes=_unique((zeroed, "0" + zeroed, reading.item_code)),
    )


def _upce_error(code: str) -> str | None:
    if code[0] not in "01":
        return f"UPC-E number system must be 0 or 1, got {code[0]}"
    return check_digit_error(expand_upce(code), "UPC-E")


def _ean8(ctx: _Context, code: str, addon: str | None) -> ParsedBarcode:
    error = check_digit_error(code, "EAN-8")
    if error is not None:
        return ctx.invalid("ean8", error)
    return ctx.ok("ean8", gtin=code.zfill(14), addon=addon, lookup_codes=_ean8_codes(code))


def _upce(ctx: _Context, code: str, addon: str | None) -> ParsedBarcode:
    error = _upce_error(code)
    if error is not None:
        return ctx.invalid("upce", error)
    return ctx.ok(
        "upce", gtin="00" + expand_upce(code), addon=addon, lookup_codes=_upce_codes(code)
    )


def _ean8_codes(code: str) -> tuple[str, ...]:
    return _unique((code, *gtin_forms(code.zfill(14))))


def _upce_codes(code: str) -> tuple[str, ...]:
    return _unique((code, *gtin_forms("00" + expand_upce(code))))


def _eight_digits(ctx: _Context, code: str, addon: str | None) -> ParsedBarcode:
    ean8_ok = check_digit_error(code, "EAN-8") is None
    upce_ok = _upce_error(code) is None
    if ctx.settings.eight_digit == "upce":
        if upce_ok:
            result = _upce(ctx, code, addon)
            extra = _ean8_codes(code) if ean8_ok else ()
        elif ean8_ok:
            return _ean8(ctx, code, addon)
        else:
            return _upce(ctx, code, addon)
    else:
        if ean8_ok:
            result = _ean8(ctx, code, addon)
            extra = _upce_codes(code) if upce_ok else ()
        elif upce_ok:
            return _upce(ctx, code, addon)
        else:
            return _ean8(ctx, code, addon)
    if not extra:
        return result
    return replace(result, lookup_codes=_unique((*result.lookup_codes, *extra)))


def _gtin14(ctx: _Context, code: str) -> ParsedBarcode:
    error = check_digit_error(code, "GTIN-14")
    if error is not None:
        return ctx.invalid("other", error)
    return ctx.ok("other", gtin=code, lookup_codes=gtin_forms(code))


# --- anything else --------------------------------------------------------------------------


def _char_name(ch: str) -> str:
    return f"character U+{ord(ch):04X}"


def _other(ctx: _Context) -> ParsedBarcode:
    data = ctx.data
    for i, ch in enumerate(data):
        if not ch.isprintable() and ch not in _ALLOWED_CONTROLS:
            return ctx.invalid("other", f"unprintable {_char_name(ch)} at offset {i}")
    if is_digits(data) and len(data) in GTIN_LENGTHS and has_valid_check_digit(data):
        gtin = data.zfill(14)
        return ctx.ok("other", gtin=gtin, lookup_codes=_unique((data, *gtin_forms(gtin))))
    return ctx.ok("other", lookup_codes=(data,))

"""GS1 element strings (GS1-128, GS1 DataMatrix, GS1 QR, GS1 DataBar) → AI values.

The scanner sends AI+value pairs back to back. Element strings whose AI is in the
predefined-length table end where their fixed length ends; all others end at an FNC1,
which a scanner transmits as ASCII 29 (GS), or at the end of the data. Every value is
checked against its AI's format (character set, length, check digit, date) because a
missing separator or a misread otherwise turns into a wrong batch, weight or price.

Two input forms are accepted: the transmitted form (``0109501101020917 17251231 10AB``
with GS separators) and the human-readable form printed under the symbol
(``(01)09501101020917(17)251231(10)AB``), which is what people type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from appliance.barcodes.check_digits import gs1_check_digit, has_valid_check_digit
from appliance.barcodes.gs1_ais import CHARSETS, AiSpec, Component, ai_table, match_ai

GS = "\x1d"

# ISO 4217 numeric code → minor-unit digits, for AI 393n prices. Covers the currencies
# of the regions GS1 variable-measure labels are used in; an unknown code is an error
# rather than a guess about where the decimal point goes.
CURRENCY_MINOR_DIGITS: dict[str, int] = {
    "036": 2, "048": 3, "124": 2, "152": 0, "156": 2, "170": 2, "191": 2, "203": 2,
    "208": 2, "344": 2, "348": 2, "352": 0, "356": 2, "360": 2, "368": 3, "376": 2,
    "392": 0, "400": 3, "410": 0, "414": 3, "434": 3, "458": 2, "484": 2, "512": 3,
    "554": 2, "578": 2, "604": 2, "608": 2, "643": 2, "682": 2, "702": 2, "704": 0,
    "710": 2, "752": 2, "756": 2, "764": 2, "784": 2, "788": 3, "818": 2, "826": 2,
    "840": 2, "941": 2, "946": 2, "949": 2, "975": 2, "978": 2, "980": 2, "985": 2,
    "986": 2, "032": 2, "950": 0, "952": 0, "953": 0,
}  # fmt: skip

_GRAMS_PER_POUND_E5 = 45_359_237  # 453.59237 g, scaled by 10^5 to stay in integers
_HRI_AI_RE = re.compile(r"\((\d{2,4})\)")
_DIGITAL_LINK_RE = re.compile(
    r"(?i:https?)://[^/?#\s]+(?P<path>/[^?#\s]*)(?:\?(?P<query>[^#\s]*))?(?:#\S*)?$"
)

Check = Callable[[str], "str | None"]


@dataclass(frozen=True, slots=True)
class Element:
    ai: str
    value: str
    offset: int  # where the AI starts in the data


@dataclass(frozen=True)
class Gs1Reading:
    """What a GS1 element string says; ``error`` set means it must not be used."""

    elements: tuple[Element, ...] = ()
    ais: dict[str, str] = field(default_factory=dict)
    gtin: str | None = None
    weight_g: int | None = None
    price_minor: int | None = None
    currency: str | None = None
    expiry: str | None = None
    error: str | None = None


class _Gs1Error(Exception):
    pass


# ---------------------------------------------------------------------------------------
# splitting


def split_element_string(data: str, separators: str = GS) -> tuple[Element, ...]:
    """Cut transmitted GS1 data into validated elements; raises ``ValueError``.

    Leading, doubled and trailing separators are tolerated (scanners differ in whether
    they send the FNC1 in first position), and so is a separator after a
    predefined-length element.
    """
    elements: list[Element] = []
    pos, end = 0, len(data)
    while pos < end:
        if data[pos] in separators:
            pos += 1
            continue
        spec = match_ai(data, pos)
        if spec is None:
            raise ValueError(_unknown_ai(data, pos))
        start = pos + len(spec.ai)
        fixed = spec.predefined_length
        if fixed is not None:
            stop = start + fixed
            value = data[start:stop]
            for i, ch in enumerate(value):
                if ch in separators:
                    raise ValueError(
                        f"AI {spec.ai} at offset {pos}: separator at offset {start + i} inside "
                        f"its fixed {fixed}-character value"
                    )
        else:
            stop = _next_separator(data, start, separators)
            value = data[start:stop]
        _check_value(spec, value, pos)
        elements.append(Element(spec.ai, value, pos))
        pos = stop
    if not elements:
        raise ValueError("no GS1 element strings in the data")
    return tuple(elements)


def split_hri(text: str) -> tuple[Element, ...]:
    """Cut the bracketed human-readable form ``(01)…(17)…`` into validated elements.

    A value ends where the next ``(AI)`` of a known AI begins, so brackets inside values
    (allowed in the GS1 character set) survive unless they look exactly like an AI.
    """
    table = ai_table()
    marks = [m for m in _HRI_AI_RE.finditer(text) if m.group(1) in table]
    if not marks or marks[0].start() != 0:
        raise ValueError("bracketed GS1 data must start with '(AI)'")
    # Every known "(AI)" ends the value before it, except inside a predefined-length
    # value, which is taken whole.
    elements: list[Element] = []
    i = 0
    while i < len(marks):
        mark = marks[i]
        spec = table[mark.group(1)]
        start = mark.end()
        fixed = spec.predefined_length
        j = i + 1
        if fixed is not None:
            while j < len(marks) and marks[j].start() < start + fixed:
                j += 1
        stop = marks[j].start() if j < len(marks) else len(text)
        value = text[start:stop]
        _check_value(spec, value, mark.start())
        elements.append(Element(spec.ai, value, mark.start()))
        i = j
    return tuple(elements)


def split_digital_link(uri: str) -> tuple[Element, ...]:
    """Elements of a GS1 Digital Link URI (``https://host/…/01/<GTIN>/10/<batch>?17=…``).

    QR codes on retail items increasingly carry these instead of element strings. The
    path from the ``/01/`` segment on is read as AI/value pairs, then numeric query
    parameters; GTIN-8/12/13 in the path are padded to 14 digits, as the standard
    allows. Raises ``ValueError`` when the URI holds no valid GTIN.
    """
    from urllib.parse import unquote  # only needed here; keeps package import light

    match = _DIGITAL_LINK_RE.match(uri)
    if match is None:
        raise ValueError("not a GS1 Digital Link URI")
    table = ai_table()
    segments = match.group("path").split("/")
    try:
        start = segments.index("01")
    except ValueError:
        raise ValueError("GS1 Digital Link URI without /01/<GTIN>") from None
    base = match.start("path")
    offsets = [base + sum(len(seg) + 1 for seg in segments[:i]) for i in range(len(segments))]
    pairs: list[tuple[str, str, int]] = []
    i = start
    while i + 1 < len(segments) and segments[i] in table:
        pairs.append((segments[i], unquote(segments[i + 1]), offsets[i]))
        i += 2
    if i < len(segments) and segments[i] != "":
        raise ValueError(
            f"GS1 Digital Link path segment {segments[i]!r} at offset {offsets[i]} is not "
            "part of an AI/value pair"
        )
    query = match.group("query") or ""
    at = match.start("query")
    for item in query.split("&"):
        key, _, value = item.partition("=")
        if key in table:
            pairs.append((key, unquote(value), at))
        at += len(item) + 1
    elements: list[Element] = []
    for ai, value, offset in pairs:
        if ai == "01" and len(value) in (8, 12, 13):
            value = value.zfill(14)
        _check_value(table[ai], value, offset)
        elements.append(Element(ai, value, offset))
    return tuple(elements)


def looks_like_digital_link(text: str) -> bool:
    return _DIGITAL_LINK_RE.match(text) is not None and "/01/" in text


def looks_like_hri(text: str) -> bool:
    match = _HRI_AI_RE.match(text)
    return match is not None and match.group(1) in ai_table()


def _next_separator(data: str, start: int, separators: str) -> int:
    if len(separators) == 1:
        found = data.find(separators, start)
        return len(data) if found < 0 else found
    for i in range(start, len(data)):
        if data[i] in separators:
            return i
    return len(data)


def _unknown_ai(data: str, pos: int) -> str:
    if not data[pos].isdigit():
        return f"expected an AI (digits) at offset {pos}, found {data[pos]!r}"
    return f"unknown AI at offset {pos} (data there starts {data[pos : pos + 4]!r})"


# ---------------------------------------------------------------------------------------
# value checks


def _check_value(spec: AiSpec, value: str, offset: int) -> None:
    where = f"AI {spec.ai} at offset {offset}"
    length = len(value)
    if length < spec.min_len or length > spec.max_len:
        if spec.min_len == spec.max_len:
            need = f"exactly {spec.min_len}"
        elif length < spec.min_len:
            need = f"at least {spec.min_len}"
        else:
            need = f"at most {spec.max_len}"
        raise ValueError(f"{where}: value has {length} characters, needs {need}")
    pos = 0
    last = len(spec.components) - 1
    for index, comp in enumerate(spec.components):
        part = value[pos:] if index == last else value[pos : pos + comp.max_len]
        pos += len(part)
        if comp.optional and part == "":
            continue
        problem = _check_component(comp, part)
        if problem is not None:
            raise ValueError(f"{where}: {problem}")


def _check_component(comp: Component, part: str) -> str | None:
    if not comp.min_len <= len(part) <= comp.max_len:
        return f"part {part!r} must have {comp.min_len}..{comp.max_len} characters"
    allowed = CHARSETS[comp.charset]
    for i, ch in enumerate(part):
        if ch not in allowed:
            kind = "a digit" if comp.charset == "N" else "allowed in GS1 data"
            return f"character {ch!r} at position {i} of {part!r} is not {kind}"
    for check in comp.checks:
        problem = _CHECKS[check](part)
        if problem is not None:
            return problem
    return None


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _check_date(value: str, year: int, zero_day_ok: bool) -> str | None:
    month, day = int(value[-4:-2]), int(value[-2:])
    if not 1 <= month <= 12:
        return f"date {value} has month {value[-4:-2]}"
    if day == 0 and zero_day_ok:
        return None
    if not 1 <= day <= _days_in_month(year, month):
        return f"date {value} has day {value[-2:]}, not in that month"
    return None


def _yymmd0(value: str) -> str | None:
    # Leap years: in the GS1 century window every YY maps to a year whose leap status
    # equals that of 2000+YY (1900 is never in the window), so 2000+YY is exact.
    return _check_date(value, 2000 + int(value[:2]), zero_day_ok=True)


def _yymmdd(value: str) -> str | None:
    return _check_date(value, 2000 + int(value[:2]), zero_day_ok=False)


def _yyyymmdd(value: str) -> str | None:
    return _check_date(value, int(value[:4]), zero_day_ok=False)


def _hhmm(value: str) -> str | None:
    if int(value[:2]) > 23 or int(value[2:]) > 59:
        return f"time {value} is not a valid hhmm"
    return None


def _yymmddhh(value: str) -> str | None:
    problem = _yymmdd(value[:6])
    if problem is None and int(value[6:]) > 23:
        problem = f"hour {value[6:]} is not 00-23"
    return problem


def _csum(value: str) -> str | None:
    expected = gs1_check_digit(value[:-1])
    if expected == ord(value[-1]) - 48:
        return None
    return f"check digit is {value[-1]}, expected {expected}"


def _one_of(allowed: str, what: str) -> Check:
    def check(value: str) -> str | None:
        return None if value in allowed else f"{what} must be one of {', '.join(allowed)}"

    return check


def _piece_of_total(value: str) -> str | None:
    piece, total = int(value[:2]), int(value[2:])
    if not 1 <= piece <= total:
        return f"piece {value[:2]} of total {value[2:]} is not a valid piece number"
    return None


def _iso3166_list(value: str) -> str | None:
    return None if len(value) % 3 == 0 else f"{value!r} is not a list of 3-digit country codes"


def _any(value: str) -> str | None:
    return None


_CHECKS: dict[str, Check] = {
    "csum": _csum,
    "yymmd0": _yymmd0,
    "yymmdd": _yymmdd,
    "yyyymmdd": _yyyymmdd,
    "hhmm": _hhmm,
    "yymmddhh": _yymmddhh,
    "yesno": _one_of("01", "the flag"),
    "zero": _one_of("0", "the filler digit"),
    "hyphen": _one_of("-", "the sign"),
    "iso5218": _one_of("0129", "the sex code (ISO 5218)"),
    "iso4217": _any,  # any 3 digits; 393n prices are checked against CURRENCY_MINOR_DIGITS
    "iso3166list": _iso3166_list,
    "pieceoftotal": _piece_of_total,
}


# ---------------------------------------------------------------------------------------
# meaning


def gs1_date(value: str, today: date) -> date:
    """YYMMDD → date with the GS1 century window (Gen Specs 7.12): a year more than 50
    years ahead is last century, more than 49 years back is next century; DD 00 means
    the last day of the month."""
    yy, month, day = int(value[:2]), int(value[2:4]), int(value[4:6])
    this_century, this_yy = divmod(today.year, 100)
    diff = yy - this_yy
    if 51 <= diff <= 99:
        this_century -= 1
    elif -99 <= diff <= -50:
        this_century += 1
    year = this_century * 100 + yy
    if day == 0:
        day = _days_in_month(year, month)
    return date(year, month, day)


def _scaled(value: int, decimals: int, target_decimals: int) -> tuple[int, bool]:
    """``value / 10^decimals`` expressed in units of ``10^-target_decimals``; the flag
    says whether that was exact."""
    shift = target_decimals - decimals
    if shift >= 0:
        return value * 10**shift, True
    quotient, remainder = divmod(value, 10**-shift)
    return quotient, remainder == 0


def _round_half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def interpret(
    elements: tuple[Element, ...],
    *,
    currency_minor_digits: int = 2,
    currency_numeric: str | None = None,
    today: date | None = None,
) -> Gs1Reading:
    """Turn validated elements into the values a sale line needs.

    Net weight (310n kg, 320n lb) → grams, rounded half up when the label has more than
    gram precision. Price (392n in the register's currency, 393n with an ISO 4217
    currency) → minor units, exactly or not at all: a price with more decimals than the
    currency has is an error, never rounded.
    """
    ais: dict[str, str] = {}
    first_at: dict[str, int] = {}
    for element in elements:
        previous = ais.get(element.ai)
        if previous is not None and previous != element.value:
            return Gs1Reading(
                elements,
                error=f"AI {element.ai} appears twice with different values "
                f"(offsets {first_at[element.ai]} and {element.offset})",
            )
        ais[element.ai] = element.value
        first_at.setdefault(element.ai, element.offset)
    try:
        _exclusive(ais)
        weight_g = _weight(ais)
        price_minor, currency = _price(ais, currency_minor_digits, currency_numeric)
        expiry = None
        if "17" in ais:
            expiry = gs1_date(ais["17"], today or date.today()).isoformat()
    except _Gs1Error as exc:
        return Gs1Reading(elements, ais, error=str(exc))
    return Gs1Reading(
        elements,
        ais,
        gtin=ais.get("01"),
        weight_g=weight_g,
        price_minor=price_minor,
        currency=currency,
        expiry=expiry,
    )


def _family(ais: dict[str, str], head: str) -> list[str]:
    return sorted(ai for ai in ais if len(ai) == 4 and ai.startswith(head))


def _exclusive(ais: dict[str, str]) -> None:
    if "01" in ais and "02" in ais:
        raise _Gs1Error("AIs 01 and 02 cannot both be present")
    for head in ("31", "32", "33", "34", "35", "36"):
        for ai in _family(ais, head):
            same = _family(ais, ai[:3])
            if len(same) > 1:
                raise _Gs1Error(f"AIs {', '.join(same)} give the same measure twice")
    prices = _family(ais, "392") + _family(ais, "393")
    if len(prices) > 1:
        raise _Gs1Error(f"AIs {', '.join(prices)} give the price twice")


def _weight(ais: dict[str, str]) -> int | None:
    kg = _family(ais, "310")
    if kg:
        decimals = int(kg[0][3])
        value = int(ais[kg[0]])
        if decimals <= 3:
            return value * 10 ** (3 - decimals)
        return _round_half_up(value, 10 ** (decimals - 3))
    lb = _family(ais, "320")
    if lb:
        decimals = int(lb[0][3])
        return _round_half_up(int(ais[lb[0]]) * _GRAMS_PER_POUND_E5, 10 ** (5 + decimals))
    return None


def _price(
    ais: dict[str, str], minor_digits: int, register_currency: str | None
) -> tuple[int | None, str | None]:
    for ai in _family(ais, "392"):
        minor, exact = _scaled(int(ais[ai]), int(ai[3]), minor_digits)
        if not exact:
            raise _Gs1Error(
                f"AI {ai}: price {ais[ai]} with {ai[3]} decimals has more decimals than "
                f"the currency's {minor_digits}"
            )
        return minor, register_currency
    for ai in _family(ais, "393"):
        currency, amount = ais[ai][:3], ais[ai][3:]
        digits = CURRENCY_MINOR_DIGITS.get(currency)
        if digits is None:
            raise _Gs1Error(f"AI {ai}: unknown ISO 4217 currency {currency}")
        if register_currency is not None and currency != register_currency:
            raise _Gs1Error(
                f"AI {ai}: price is in currency {currency}, the register uses {register_currency}"
            )
        minor, exact = _scaled(int(amount), int(ai[3]), digits)
        if not exact:
            raise _Gs1Error(
                f"AI {ai}: price {amount} with {ai[3]} decimals has more decimals than "
                f"currency {currency}'s {digits}"
            )
        return minor, currency
    return None, None


def read_gs1(
    data: str,
    *,
    separators: str = GS,
    currency_minor_digits: int = 2,
    currency_numeric: str | None = None,
    today: date | None = None,
) -> Gs1Reading:
    """Split and interpret GS1 data in either form; never raises on any text."""
    try:
        if looks_like_hri(data):
            elements = split_hri(data)
        elif looks_like_digital_link(data):
            elements = split_digital_link(data)
        else:
            elements = split_element_string(data, separators)
    except ValueError as exc:
        return Gs1Reading(error=str(exc))
    return interpret(
        elements,
        currency_minor_digits=currency_minor_digits,
        currency_numeric=currency_numeric,
        today=today,
    )


def is_gtin_head(data: str) -> bool:
    """True when ``data`` starts with AI 01 and a GTIN whose check digit holds: the mark of
    GS1 data sent by a scanner that drops the leading FNC1 and has AIM identifiers off."""
    return len(data) >= 16 and data.startswith("01") and has_valid_check_digit(data[2:16])

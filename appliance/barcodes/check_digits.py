"""GS1 check digits, UPC-E expansion and the forms one GTIN takes.

A misread EAN/UPC is only caught by its check digit, so every numeric code of a GTIN
length passes through here before the catalog sees it. GTINs are compared as 14 digits
(GS1 General Specifications 3.3.2), but a catalog may hold the 8-, 12- or 13-digit form,
hence :func:`gtin_forms`.
"""

from __future__ import annotations

GTIN_LENGTHS = (8, 12, 13, 14)

# Weighted-digit tables of GS1 General Specifications 7.9.3 (price/measure verifier).
# "2-": units digit of 2*d minus its tens digit; "5+"/"5-": units of 5*d plus/minus tens.
_W2_MINUS = (0, 2, 4, 6, 8, 9, 1, 3, 5, 7)
_W3 = (0, 3, 6, 9, 2, 5, 8, 1, 4, 7)
_W5_PLUS = (0, 5, 1, 6, 2, 7, 3, 8, 4, 9)
_W5_MINUS = (0, 5, 9, 4, 8, 3, 7, 2, 6, 1)


def is_digits(text: str) -> bool:
    """True for a non-empty string of ASCII digits only (``str.isdigit`` accepts '²', '٣')."""
    return bool(text) and text.isascii() and text.isdigit()


def gs1_check_digit(body: str) -> int:
    """Mod-10 check digit over ``body`` (the digits without their check digit).

    Weights 3,1,3,… from the right, so the same function serves GTIN-8/12/13/14, SSCC,
    GLN and the other GS1 keys.
    """
    if not is_digits(body):
        raise ValueError(f"expected ASCII digits, got {body!r}")
    total = 0
    weight = 3
    for ch in reversed(body):
        total += (ord(ch) - 48) * weight
        weight = 4 - weight
    return (10 - total % 10) % 10


def append_check_digit(body: str) -> str:
    return body + str(gs1_check_digit(body))


def has_valid_check_digit(code: str) -> bool:
    """True when the last digit of ``code`` is the GS1 check digit of the others."""
    if len(code) < 2 or not is_digits(code):
        return False
    return gs1_check_digit(code[:-1]) == ord(code[-1]) - 48


def check_digit_error(code: str, name: str) -> str | None:
    """Message naming the wrong check digit (``None`` when it is right).

    ``name`` says what the digits were taken for, e.g. "EAN-13", so the cashier sees
    "EAN-13 check digit is 7, expected 3" rather than a bare "invalid".
    """
    if not is_digits(code) or len(code) < 2:
        return f"{name} must be digits only"
    expected = gs1_check_digit(code[:-1])
    if expected == ord(code[-1]) - 48:
        return None
    return f"{name} check digit is {code[-1]}, expected {expected}"


def normalize_gtin(code: str) -> str:
    """The 14-digit look-up form of an EAN-8, UPC-A, EAN-13 or GTIN-14.

    Raises ``ValueError`` for other lengths, non-digits or a wrong check digit. An 8-digit
    input is taken as EAN-8; expand a UPC-E with :func:`expand_upce` first.
    """
    if not is_digits(code) or len(code) not in GTIN_LENGTHS:
        raise ValueError(f"a GTIN has 8, 12, 13 or 14 digits, got {code!r}")
    error = check_digit_error(code, f"GTIN-{len(code)}")
    if error is not None:
        raise ValueError(error)
    return code.zfill(14)


def gtin_forms(gtin14: str) -> tuple[str, ...]:
    """The GTIN-14 first, then its 13-, 12- and 8-digit forms where leading zeros allow.

    All forms share the check digit (weights count from the right), so each is a valid
    code for the same item; a catalog may have stored any of them.
    """
    forms = [gtin14]
    if gtin14.startswith("0"):
        forms.append(gtin14[1:])
    if gtin14.startswith("00"):
        forms.append(gtin14[2:])
    if gtin14.startswith("000000"):
        forms.append(gtin14[6:])
    return tuple(forms)


def expand_upce(code: str) -> str:
    """UPC-E → UPC-A (12 digits).

    Accepts 8 digits (number system, six digits, check digit: the check digit is kept as
    given, so the caller can validate the expansion), 7 digits (number system and six
    digits: check digit computed) or 6 digits (number system 0 assumed). The number
    system must be 0 or 1. Expansion follows the last of the six digits:
    0-2 → manufacturer ab<d>00, item 00cde; 3 → abc00, 000de; 4 → abcd0, 0000e;
    5-9 → abcde, 0000<d>.
    """
    if not is_digits(code) or len(code) not in (6, 7, 8):
        raise ValueError(f"UPC-E has 6, 7 or 8 digits, got {code!r}")
    if len(code) == 6:
        code = "0" + code
    number_system, six = code[0], code[1:7]
    if number_system not in "01":
        raise ValueError(f"UPC-E number system must be 0 or 1, got {number_system}")
    last = six[5]
    if last in "012":
        manufacturer, item = six[0:2] + last + "00", "00" + six[2:5]
    elif last == "3":
        manufacturer, item = six[0:3] + "00", "000" + six[3:5]
    elif last == "4":
        manufacturer, item = six[0:4] + "0", "0000" + six[4]
    else:
        manufacturer, item = six[0:5], "0000" + last
    body = number_system + manufacturer + item
    check = code[7] if len(code) == 8 else str(gs1_check_digit(body))
    return body + check


def compress_upca(upca: str) -> str | None:
    """UPC-A → 8-digit UPC-E when the number has a zero-suppressed form, else ``None``.

    Tries the rules in GS1's canonical order, so ``expand_upce(compress_upca(a)) == a``.
    """
    if not is_digits(upca) or len(upca) != 12 or upca[0] not in "01":
        return None
    manufacturer, item, check = upca[1:6], upca[6:11], upca[11]
    if manufacturer[2] in "012" and manufacturer[3:] == "00" and item[:2] == "00":
        six = manufacturer[:2] + item[2:] + manufacturer[2]
    elif manufacturer[3:] == "00" and item[:3] == "000":
        six = manufacturer[:3] + item[3:] + "3"
    elif manufacturer[4] == "0" and item[:4] == "0000":
        six = manufacturer[:4] + item[4] + "4"
    elif item[:4] == "0000" and item[4] in "56789":
        six = manufacturer + item[4]
    else:
        return None
    return upca[0] + six + check


def price_check_digit(value: str) -> int:
    """Price/measure verifier digit of a 4- or 5-digit field (GS1 Gen Specs 7.9.3/7.9.4).

    Scale labels carry it so a misread price is caught even when the misread digits
    happen to keep the EAN-13 check digit right.
    """
    if not is_digits(value) or len(value) not in (4, 5):
        raise ValueError(f"price check digits cover 4 or 5 digits, got {value!r}")
    d = [ord(ch) - 48 for ch in value]
    if len(d) == 4:
        total = _W2_MINUS[d[0]] + _W2_MINUS[d[1]] + _W3[d[2]] + _W5_MINUS[d[3]]
        return (total * 3) % 10
    total = _W5_PLUS[d[0]] + _W2_MINUS[d[1]] + _W5_MINUS[d[2]] + _W5_PLUS[d[3]] + _W2_MINUS[d[4]]
    return _W5_MINUS.index((10 - total % 10) % 10)

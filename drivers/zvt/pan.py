"""Card numbers: never out of the driver in the clear.

ZVT terminals mask PAN digits with the nibble E; some send a clear PAN. Either way the
driver shows at most the first 6 and last 4 digits (as card slips do) and ``*`` for
the rest; a number too short to be a PAN shows only its last 4 digits or none.
"""

from __future__ import annotations

import re


def mask_pan_digits(nibbles: str) -> str:
    """Masked PAN from BCD nibbles: E → masked digit, F → padding (dropped)."""
    chars = []
    for ch in nibbles.upper():
        if ch == "F":
            continue
        chars.append("*" if not ch.isdigit() else ch)
    n = len(chars)
    if n >= 13:
        keep = set(range(6)) | set(range(n - 4, n))
    elif n >= 8:
        keep = set(range(n - 4, n))
    else:
        keep = set()
    return "".join(c if i in keep else "*" for i, c in enumerate(chars))


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_RUN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")


def find_full_pans(text: str) -> list[str]:
    """Luhn-valid runs of 13–19 digits (what a leaked card number looks like)."""
    return [m.group(0) for m in _RUN.finditer(text) if luhn_ok(m.group(0))]


_GROUPED = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")


def scrub_pans(text: str) -> str:
    """Mask anything in free text that looks like a full PAN (Luhn-valid, 13–19 digits,
    optionally grouped by spaces or dashes): terminals that print or send clear card
    numbers must not get them onto our receipts or logs."""

    def repl(match: re.Match[str]) -> str:
        s = match.group(0)
        digits = "".join(ch for ch in s if ch.isdigit())
        if not luhn_ok(digits):
            return s
        masked = iter(mask_pan_digits(digits))
        return "".join(next(masked) if ch.isdigit() else ch for ch in s)

    return _GROUPED.sub(repl, text)


def scrub_hex(raw: bytes) -> str:
    """Upper-case hex of ``raw`` with card numbers hidden: every 13–19 decimal nibbles that
    pass the Luhn check and do not start with 0 (a PAN in packed BCD inside a field shown
    as hex) are masked as
    ``mask_pan_digits`` masks them, e.g. ``54 13 33 ** ** ** 00 11``."""
    nibbles = list(raw.hex().upper())
    i = 0
    while i <= len(nibbles) - 13:
        for length in range(min(19, len(nibbles) - i), 12, -1):
            run = "".join(nibbles[i : i + length])
            if run.isdigit() and run[0] != "0" and luhn_ok(run):
                nibbles[i : i + length] = list(mask_pan_digits(run))
                i += length
                break
        else:
            i += 1
    return " ".join("".join(nibbles[k : k + 2]) for k in range(0, len(nibbles), 2))

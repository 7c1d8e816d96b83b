"""Integer money arithmetic: the one place where rounding happens.

All amounts are integer minor units (cents). Rounding is *half away from zero*, so a
refund (negative amounts) mirrors the sale it refunds cent for cent. Every function
here is exact integer arithmetic: no floats, no Decimal at run time.
"""

from __future__ import annotations

from collections.abc import Sequence

# Bounds that keep every amount, quantity and intermediate product far inside 64 bits.
MAX_AMOUNT = 10**12  # 10 billion in major units: larger is a typo or an attack
MAX_QUANTITY = 100_000  # units on one line
MAX_WEIGHT_G = 10_000_000  # 10 t on one line
MAX_PERCENT_BP = 10_000  # 100.00 % in basis points
PPM = 1_000_000  # tax rates are parts per million: 19 % = 190_000


def div_round(numerator: int, denominator: int) -> int:
    """Divide and round half away from zero."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    sign = -1 if numerator < 0 else 1
    q, r = divmod(abs(numerator), denominator)
    if 2 * r >= denominator:
        q += 1
    return sign * q


def percent_of(amount: int, basis_points: int) -> int:
    """``amount`` × ``basis_points`` / 10 000, rounded half away from zero."""
    return div_round(amount * basis_points, 10_000)


def round_to_increment(amount: int, increment: int) -> int:
    """Round to a multiple of ``increment`` (cash rounding, e.g. 5 for CHF 0.05)."""
    if increment <= 1:
        return amount
    return div_round(amount, increment) * increment


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` across ``weights`` proportionally, exactly (largest remainder).

    Used to spread a sale-level discount over its lines so that each tax rate gets its
    share and the shares add up to the discount to the cent. Ties go to the earlier
    line, so the split is reproducible.
    """
    if not weights:
        return []
    weight_sum = sum(weights)
    if weight_sum == 0:
        return [0] * len(weights)
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    shares = []
    remainders = []
    for index, weight in enumerate(weights):
        q, r = divmod(magnitude * weight, weight_sum)
        shares.append(q)
        remainders.append((-r, index))
    leftover = magnitude - sum(shares)
    for _, index in sorted(remainders)[:leftover]:
        shares[index] += 1
    return [sign * s for s in shares]


def format_minor(amount: int, decimals: int = 2) -> str:
    """Render minor units as a plain decimal string ('-12.30'), for reports and logs."""
    sign = "-" if amount < 0 else ""
    if decimals == 0:
        return f"{sign}{abs(amount)}"
    major, minor = divmod(abs(amount), 10**decimals)
    return f"{sign}{major}.{minor:0{decimals}d}"

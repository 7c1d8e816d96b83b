"""Integer money helpers: exact, symmetric rounding and exact allocation."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.money import allocate, div_round, format_minor, percent_of, round_to_increment


def test_div_round_half_away_from_zero() -> None:
    assert div_round(5, 10) == 1
    assert div_round(4, 10) == 0
    assert div_round(-5, 10) == -1
    assert div_round(-4, 10) == 0
    assert div_round(15, 10) == 2
    assert div_round(25, 10) == 3


@given(st.integers(-(10**15), 10**15), st.integers(1, 10**7))
@settings(max_examples=300, deadline=None)
def test_div_round_is_nearest_and_symmetric(n: int, d: int) -> None:
    q = div_round(n, d)
    assert abs(n - q * d) * 2 <= d
    assert div_round(-n, d) == -q


def test_percent_and_cash_rounding() -> None:
    assert percent_of(999, 1000) == 100  # 10 % of 9.99 = 0.999 -> 1.00
    assert round_to_increment(102, 5) == 100
    assert round_to_increment(103, 5) == 105
    assert round_to_increment(-103, 5) == -105
    assert round_to_increment(103, 1) == 103


@given(st.integers(-(10**12), 10**12), st.lists(st.integers(0, 10**9), min_size=1, max_size=30))
@settings(max_examples=300, deadline=None)
def test_allocate_is_exact(total: int, weights: list[int]) -> None:
    shares = allocate(total, weights)
    assert len(shares) == len(weights)
    if sum(weights) == 0:
        assert shares == [0] * len(weights)
    else:
        assert sum(shares) == total
        for share, weight in zip(shares, weights, strict=True):
            exact = total * weight / sum(weights)
            assert abs(share - exact) < 1 + 1e-6 * abs(exact)


def test_allocate_ties_go_to_earlier_lines() -> None:
    assert allocate(1, [1, 1, 1]) == [1, 0, 0]
    assert allocate(-2, [1, 1, 1]) == [-1, -1, 0]


def test_format_minor() -> None:
    assert format_minor(-1230) == "-12.30"
    assert format_minor(5) == "0.05"
    assert format_minor(7, 0) == "7"
    assert format_minor(1234, 3) == "1.234"

"""Check digits, UPC-E expansion and GTIN forms: known values and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.barcodes.check_digits import (
    append_check_digit,
    check_digit_error,
    compress_upca,
    expand_upce,
    gs1_check_digit,
    gtin_forms,
    has_valid_check_digit,
    is_digits,
    normalize_gtin,
    price_check_digit,
)

FAST = settings(max_examples=300, deadline=None)
digit_strings = st.text(alphabet="0123456789", min_size=1, max_size=17)


@pytest.mark.parametrize(
    "code",
    [
        "4006381333931",  # EAN-13
        "5901234123457",  # EAN-13
        "036000291452",  # UPC-A
        "96385074",  # EAN-8
        "09501101020917",  # GTIN-14
        "106141411234567897",  # SSCC
    ],
)
def test_known_codes_validate(code: str) -> None:
    assert has_valid_check_digit(code)
    assert gs1_check_digit(code[:-1]) == int(code[-1])


def test_wrong_check_digit_is_named() -> None:
    assert check_digit_error("4006381333932", "EAN-13") == "EAN-13 check digit is 2, expected 1"
    assert check_digit_error("4006381333931", "EAN-13") is None


@pytest.mark.parametrize("bad", ["", "1", "12a4", "٣٣٣", "１２３"])
def test_non_ascii_or_short_input_is_not_valid(bad: str) -> None:
    assert not has_valid_check_digit(bad)


def test_check_digit_rejects_non_digits() -> None:
    with pytest.raises(ValueError):
        gs1_check_digit("12x")
    assert not is_digits("²")


@FAST
@given(digit_strings)
def test_appended_check_digit_always_validates(body: str) -> None:
    assert has_valid_check_digit(append_check_digit(body))


@FAST
@given(
    st.sampled_from([7, 11, 12, 13]).flatmap(
        lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)
    ),
    st.data(),
)
def test_any_single_digit_change_invalidates(body: str, data: st.DataObject) -> None:
    code = append_check_digit(body)
    pos = data.draw(st.integers(0, len(code) - 1))
    new = data.draw(st.sampled_from([d for d in "0123456789" if d != code[pos]]))
    changed = code[:pos] + new + code[pos + 1 :]
    assert not has_valid_check_digit(changed)


@FAST
@given(st.sampled_from([7, 11, 12, 13]), st.data())
def test_normalized_gtin_is_14_zero_padded_digits(body_len: int, data: st.DataObject) -> None:
    body = data.draw(st.text(alphabet="0123456789", min_size=body_len, max_size=body_len))
    code = append_check_digit(body)
    gtin = normalize_gtin(code)
    assert len(gtin) == 14 and gtin.isdigit()
    assert gtin == "0" * (14 - len(code)) + code
    assert has_valid_check_digit(gtin)
    assert gtin_forms(gtin)[0] == gtin
    assert all(has_valid_check_digit(form) for form in gtin_forms(gtin))
    assert code in gtin_forms(gtin) or len(code) == 14


@pytest.mark.parametrize("bad", ["1234567", "4006381333932", "40063813339310000", "abcdefgh"])
def test_normalize_gtin_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        normalize_gtin(bad)


def test_gtin_forms() -> None:
    assert gtin_forms("00000096385074") == (
        "00000096385074",
        "0000096385074",
        "000096385074",
        "96385074",
    )
    assert gtin_forms("04006381333931") == ("04006381333931", "4006381333931")
    assert gtin_forms("19501101020914") == ("19501101020914",)


@pytest.mark.parametrize(
    ("upce", "upca"),
    [
        ("04252614", "042100005264"),  # last digit 0-2
        ("01234565", "012345000065"),  # last digit 5-9
        ("04182635", "041800000265"),  # last digit 3
        ("01234145", "012340000015"),  # last digit 4
        ("11234562", "112345000062"),  # number system 1
    ],
)
def test_upce_expansion_known_examples(upce: str, upca: str) -> None:
    assert expand_upce(upce) == upca
    assert has_valid_check_digit(upca)
    assert compress_upca(upca) == upce
    assert expand_upce(upce[:7]) == upca  # check digit computed when absent


def test_upce_six_digits_assume_number_system_0() -> None:
    assert expand_upce("425261") == "042100005264"


@pytest.mark.parametrize("bad", ["24252614", "0425261x", "12345", "042526140"])
def test_upce_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        expand_upce(bad)


@FAST
@given(st.sampled_from("01"), st.text(alphabet="0123456789", min_size=6, max_size=6))
def test_upce_round_trip(number_system: str, six: str) -> None:
    upca = expand_upce(number_system + six)
    assert has_valid_check_digit(upca)
    upce = compress_upca(upca)
    assert upce is not None and len(upce) == 8
    assert expand_upce(upce) == upca


@FAST
@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_compress_then_expand_is_identity(body: str) -> None:
    upca = append_check_digit(body)
    upce = compress_upca(upca)
    if upce is not None:
        assert expand_upce(upce) == upca
    if body[0] not in "01" or body[6:8] != "00":
        assert upce is None  # every expansion has item digits 00xxx


def test_compress_refuses_uncompressible() -> None:
    assert compress_upca("036000291452") is None
    assert compress_upca("400638133393") is None


@pytest.mark.parametrize(("value", "check"), [("2875", 9), ("14685", 6), ("0000", 0)])
def test_price_check_digit_known_values(value: str, check: int) -> None:
    assert price_check_digit(value) == check


@FAST
@given(st.sampled_from([4, 5]), st.data())
def test_price_check_digit_catches_any_single_digit_change(n: int, data: st.DataObject) -> None:
    value = data.draw(st.text(alphabet="0123456789", min_size=n, max_size=n))
    pos = data.draw(st.integers(0, n - 1))
    new = data.draw(st.sampled_from([d for d in "0123456789" if d != value[pos]]))
    assert price_check_digit(value) != price_check_digit(value[:pos] + new + value[pos + 1 :])


@pytest.mark.parametrize("bad", ["123", "123456", "12a4"])
def test_price_check_digit_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        price_check_digit(bad)

"""GS1 element strings: the AI table, splitting, value checks and their meaning."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.barcodes.check_digits import append_check_digit
from appliance.barcodes.gs1 import (
    GS,
    gs1_date,
    interpret,
    read_gs1,
    split_digital_link,
    split_element_string,
    split_hri,
)
from appliance.barcodes.gs1_ais import (
    CHARSETS,
    PREDEFINED_LENGTHS,
    AiSpec,
    Component,
    ai_table,
)

FAST = settings(max_examples=300, deadline=None)
TODAY = date(2025, 6, 1)


def ais_of(data: str) -> dict[str, str]:
    return {e.ai: e.value for e in split_element_string(data)}


# --- the table ------------------------------------------------------------------------------


def test_table_covers_the_common_ais() -> None:
    table = ai_table()
    for ai in ["00", "01", "02", "10", "11", "13", "15", "17", "21", "30", "37", "3103", "3922"]:
        assert ai in table
    assert table["01"].title == "GTIN"
    assert len(table) > 400


def test_ais_are_prefix_free() -> None:
    # Splitting relies on it: no AI may be the start of another.
    ais = sorted(ai_table())
    for a in ais:
        for b in ais:
            assert a == b or not b.startswith(a), (a, b)


def test_predefined_length_ais_have_that_fixed_length() -> None:
    for ai, spec in ai_table().items():
        fixed = PREDEFINED_LENGTHS.get(ai[:2])
        if fixed is not None:
            assert spec.min_len == spec.max_len == fixed, ai
            assert spec.predefined_length == fixed


def test_predefined_table_matches_gs1() -> None:
    assert PREDEFINED_LENGTHS["00"] == 18
    assert PREDEFINED_LENGTHS["01"] == 14
    assert PREDEFINED_LENGTHS["17"] == 6
    assert PREDEFINED_LENGTHS["20"] == 2
    assert PREDEFINED_LENGTHS["31"] == 6
    assert PREDEFINED_LENGTHS["41"] == 13
    assert "10" not in PREDEFINED_LENGTHS and "21" not in PREDEFINED_LENGTHS


def test_decimal_indicators_stop_at_5_for_measures() -> None:
    table = ai_table()
    assert "3105" in table and "3106" not in table
    assert "3929" in table and "3943" in table and "3944" not in table


# --- splitting ------------------------------------------------------------------------------


def test_fixed_then_variable_then_fixed() -> None:
    data = "0109501101020917" + "10ABC123" + GS + "17251231" + "21SER"
    assert ais_of(data) == {
        "01": "09501101020917",
        "10": "ABC123",
        "17": "251231",
        "21": "SER",
    }


def test_offsets_point_at_the_ai() -> None:
    elements = split_element_string("0109501101020917" + "10AB" + GS + "21X")
    assert [(e.ai, e.offset) for e in elements] == [("01", 0), ("10", 16), ("21", 21)]


@pytest.mark.parametrize(
    "data",
    [
        GS + "0109501101020917" + "10AB",  # FNC1 in first position sent as GS
        "0109501101020917" + GS + "10AB",  # needless GS after a fixed field
        "0109501101020917" + "10AB" + GS,  # trailing GS
        "0109501101020917" + GS + GS + "10AB",  # doubled GS
    ],
)
def test_tolerated_separators(data: str) -> None:
    assert ais_of(data) == {"01": "09501101020917", "10": "AB"}


def test_missing_separator_runs_the_variable_field_on() -> None:
    # Without a GS the batch swallows what follows: the value is still legal, so only
    # the length limit can catch it; this documents the behaviour.
    assert ais_of("0109501101020917" + "10AB" + "21XYZ") == {
        "01": "09501101020917",
        "10": "AB21XYZ",
    }


def test_separator_choice() -> None:
    elements = split_element_string("0109501101020917" + "10AB|21X", separators=GS + "|")
    assert [(e.ai, e.value) for e in elements] == [
        ("01", "09501101020917"),
        ("10", "AB"),
        ("21", "X"),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("0109501101020918", "AI 01 at offset 0: check digit is 8, expected 7"),
        ("01095011010209", "AI 01 at offset 0: value has 12 characters, needs exactly 14"),
        ("10" + "A" * 21, "AI 10 at offset 0: value has 21 characters, needs at most 20"),
        ("10", "AI 10 at offset 0: value has 0 characters, needs at least 1"),
        ("0109501101020917" + "1712", "AI 17 at offset 16: value has 2 characters"),
        (
            "0109501101020917" + "99A" + GS + "14123456",
            "unknown AI at offset 20 (data there starts '1412')",
        ),
        ("0109501101020917" + "X1", "expected an AI (digits) at offset 16, found 'X'"),
        ("3106001000", "unknown AI at offset 0 (data there starts '3106')"),
        ("01095011010" + GS + "20917", "separator at offset 11 inside its fixed"),
        ("10AB~C", "character '~' at position 2 of 'AB~C' is not allowed in GS1 data"),
        ("30ABC", "character 'A' at position 0 of 'ABC' is not a digit"),
        ("", "no GS1 element strings"),
        (GS + GS, "no GS1 element strings"),
    ],
)
def test_split_errors_name_the_ai_and_offset(data: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        split_element_string(data)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("251231", True),
        ("251200", True),  # DD 00: end of month
        ("240229", True),  # leap year
        ("250229", False),
        ("251301", False),
        ("250001", False),
        ("250431", False),
        ("000229", True),  # 2000 was a leap year
    ],
)
def test_dates_are_checked(value: str, ok: bool) -> None:
    reading = read_gs1("0109501101020917" + "17" + value, today=TODAY)
    assert (reading.error is None) is ok, reading.error
    if not ok:
        assert reading.error is not None and "AI 17" in reading.error


def test_first_freeze_date_does_not_allow_day_00() -> None:
    assert read_gs1("01095011010209177006251200").error is not None
    assert read_gs1("01095011010209177006251201").error is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("251231", date(2025, 12, 31)),
        ("250200", date(2025, 2, 28)),
        ("240200", date(2024, 2, 29)),
        ("991231", date(1999, 12, 31)),  # more than 50 years ahead → last century
        ("740101", date(2074, 1, 1)),
        ("760101", date(1976, 1, 1)),
    ],
)
def test_gs1_century_window(value: str, expected: date) -> None:
    assert gs1_date(value, TODAY) == expected
    assert gs1_date(value, date(2025, 1, 1)) == expected


def test_century_window_next_century() -> None:
    assert gs1_date("100101", date(2095, 1, 1)) == date(2110, 1, 1)


# --- meaning ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ai_value", "grams"),
    [
        ("3100000002", 2000),
        ("3102000125", 1250),
        ("3103001234", 1234),
        ("3104000125", 13),  # 12.5 g rounds half up
        ("3105001235", 12),  # 12.35 g
        ("3202000100", 454),  # 1.00 lb = 453.59 g
        ("3200000001", 454),
    ],
)
def test_net_weight_in_grams(ai_value: str, grams: int) -> None:
    reading = read_gs1("0109501101020917" + ai_value)
    assert reading.error is None
    assert reading.weight_g == grams


@pytest.mark.parametrize(
    ("element", "minor", "currency"),
    [
        ("392201234", 1234, None),
        ("392012", 1200, None),
        ("3923012340", 1234, None),
        ("393297801234", 1234, "978"),
        ("39303921234", 1234, "392"),  # yen: no minor digits
        ("39334140012345", 12345, "414"),  # dinar: three minor digits
    ],
)
def test_price_in_minor_units(element: str, minor: int, currency: str | None) -> None:
    reading = read_gs1("0109501101020917" + element)
    assert reading.error is None, reading.error
    assert reading.price_minor == minor
    assert reading.currency == currency


def test_price_with_more_decimals_than_the_currency_is_refused() -> None:
    reading = read_gs1("0109501101020917" + "392312345")
    assert reading.price_minor is None
    assert reading.error is not None and "AI 3923" in reading.error and "decimals" in reading.error


def test_price_currency_checks() -> None:
    assert "unknown ISO 4217 currency 999" in (read_gs1("01095011010209173932999100").error or "")
    foreign = read_gs1("01095011010209173932840100", currency_numeric="978")
    assert foreign.error == "AI 3932: price is in currency 840, the register uses 978"
    same = read_gs1("01095011010209173932978100", currency_numeric="978")
    assert same.error is None and same.price_minor == 100


def test_minor_digits_of_the_register_currency() -> None:
    reading = read_gs1("0109501101020917" + "39201234", currency_minor_digits=0)
    assert reading.price_minor == 1234


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("0109501101020917" + "10A" + GS + "10B", "AI 10 appears twice with different values"),
        ("0109501101020917" + "3102000125" + "3103001250", "give the same measure twice"),
        ("0109501101020917" + "39221" + GS + "3932978100", "give the price twice"),
        ("0109501101020917" + "0209501101020917", "AIs 01 and 02 cannot both be present"),
    ],
)
def test_conflicting_elements(data: str, message: str) -> None:
    reading = read_gs1(data)
    assert reading.error is not None and message in reading.error


def test_repeated_identical_element_is_accepted() -> None:
    reading = read_gs1("0109501101020917" + "10A" + GS + "10A")
    assert reading.error is None and reading.ais == {"01": "09501101020917", "10": "A"}


def test_expiry_and_gtin() -> None:
    reading = read_gs1("0109501101020917" + "17251200" + "10LOT7", today=TODAY)
    assert reading.gtin == "09501101020917"
    assert reading.expiry == "2025-12-31"
    assert reading.ais["10"] == "LOT7"


def test_sscc_only_has_no_gtin() -> None:
    reading = read_gs1("00106141411234567897")
    assert (
        reading.error is None
        and reading.gtin is None
        and reading.ais == {"00": "106141411234567897"}
    )


# --- bracketed (human-readable) form ------------------------------------------------------


def test_hri_form() -> None:
    reading = read_gs1("(01)09501101020917(3103)001250(10)A(B)C(21)7", today=TODAY)
    assert reading.error is None, reading.error
    assert reading.ais == {"01": "09501101020917", "3103": "001250", "10": "A(B)C", "21": "7"}
    assert reading.weight_g == 1250


def test_hri_errors() -> None:
    assert "AI 17 at offset 18" in (read_gs1("(01)09501101020917(17)251301").error or "")
    with pytest.raises(ValueError):
        split_hri("x(01)09501101020917")


# --- generated element strings: every AI in the table round-trips ------------------------


def _component_values(comp: Component) -> st.SearchStrategy[str]:
    checks = set(comp.checks)
    n = comp.min_len
    if checks & {"yymmd0", "yymmdd"}:
        return st.dates(date(2000, 1, 1), date(2049, 12, 31)).map(lambda d: d.strftime("%y%m%d"))
    if "yyyymmdd" in checks:
        return st.dates(date(1900, 1, 1), date(2099, 12, 31)).map(lambda d: d.strftime("%Y%m%d"))
    if "yymmddhh" in checks:
        return st.datetimes().map(lambda d: d.strftime("%y%m%d%H"))
    if "hhmm" in checks:
        return st.times().map(lambda t: t.strftime("%H%M"))
    if "csum" in checks:
        return st.text(alphabet="0123456789", min_size=n - 1, max_size=n - 1).map(
            append_check_digit
        )
    if "yesno" in checks:
        return st.sampled_from(["0", "1"])
    if "zero" in checks:
        return st.just("0")
    if "hyphen" in checks:
        return st.just("-")
    if "iso5218" in checks:
        return st.sampled_from(list("0129"))
    if "pieceoftotal" in checks:
        return st.integers(1, 99).flatmap(
            lambda total: st.integers(1, total).map(lambda piece: f"{piece:02d}{total:02d}")
        )
    if "iso3166list" in checks:
        return st.integers(1, 5).flatmap(
            lambda k: st.text(alphabet="0123456789", min_size=3 * k, max_size=3 * k)
        )
    alphabet = "".join(sorted(CHARSETS[comp.charset]))
    return st.text(alphabet=alphabet, min_size=n, max_size=comp.max_len)


@st.composite
def element(draw: st.DrawFn) -> tuple[AiSpec, str]:
    spec = draw(st.sampled_from(sorted(ai_table().values(), key=lambda s: s.ai)))
    parts = []
    for comp in spec.components:
        if comp.optional and draw(st.booleans()):
            break
        parts.append(draw(_component_values(comp)))
    return spec, "".join(parts)


def _encode(elements: list[tuple[AiSpec, str]], extra_gs: bool) -> str:
    out = [GS] if extra_gs else []
    for i, (spec, value) in enumerate(elements):
        out.append(spec.ai + value)
        last = i == len(elements) - 1
        if not last and (spec.predefined_length is None or extra_gs):
            out.append(GS)
    return "".join(out)


@FAST
@given(st.lists(element(), min_size=1, max_size=6), st.booleans())
def test_generated_element_strings_round_trip(
    elements: list[tuple[AiSpec, str]], extra_gs: bool
) -> None:
    data = _encode(elements, extra_gs)
    parsed = split_element_string(data)
    assert [(e.ai, e.value) for e in parsed] == [(spec.ai, value) for spec, value in elements]


@FAST
@given(st.lists(element(), min_size=1, max_size=6))
def test_generated_hri_round_trips(elements: list[tuple[AiSpec, str]]) -> None:
    # Values holding "(" could contain something that looks like an AI: skip those.
    if any("(" in value for _, value in elements):
        return
    text = "".join(f"({spec.ai}){value}" for spec, value in elements)
    parsed = split_hri(text)
    assert [(e.ai, e.value) for e in parsed] == [(spec.ai, value) for spec, value in elements]


@FAST
@given(st.lists(element(), min_size=1, max_size=6), st.data())
def test_random_separator_placement_never_raises_unexpectedly(
    elements: list[tuple[AiSpec, str]], data: st.DataObject
) -> None:
    text = _encode(elements, extra_gs=False)
    chars = list(text)
    for _ in range(data.draw(st.integers(0, 4))):
        pos = data.draw(st.integers(0, len(chars)))
        if data.draw(st.booleans()):
            chars.insert(pos, GS)
        elif pos < len(chars):
            del chars[pos]
    reading = read_gs1("".join(chars), today=TODAY)
    assert reading.error is None or isinstance(reading.error, str)
    if reading.error is None:
        assert reading.ais


def test_interpret_of_nothing() -> None:
    reading = interpret(())
    assert reading.error is None and reading.ais == {} and reading.gtin is None


# --- GS1 Digital Link ----------------------------------------------------------------------


def test_digital_link_path_and_query() -> None:
    uri = "https://id.gs1.org/01/09506000134352/10/AB%2F12?17=251231&3103=001250&utm=x"
    reading = read_gs1(uri, today=TODAY)
    assert reading.error is None, reading.error
    assert reading.ais == {"01": "09506000134352", "10": "AB/12", "17": "251231", "3103": "001250"}
    assert (reading.gtin, reading.weight_g, reading.expiry) == (
        "09506000134352",
        1250,
        "2025-12-31",
    )


def test_digital_link_pads_short_gtins_and_allows_a_path_prefix() -> None:
    reading = read_gs1("HTTPS://shop.example/p/01/4006381333931/21/S1")
    assert reading.error is None and reading.gtin == "04006381333931"
    assert reading.ais["21"] == "S1"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://x.example/01/09506000134353", "AI 01 at offset 18: check digit is 3"),
        ("https://x.example/01/09506000134352/10", "segment '10' at offset 36"),
        ("https://x.example/01/09506000134352/zz/1", "segment 'zz'"),
        ("https://x.example/a/b", "without /01/<GTIN>"),
        ("ftp://x.example/01/09506000134352", "not a GS1 Digital Link URI"),
    ],
)
def test_digital_link_errors(uri: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        split_digital_link(uri)
    assert message in str(info.value)

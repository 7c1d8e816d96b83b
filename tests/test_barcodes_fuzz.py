"""Fuzzing the parser: no input may raise, and every invalid answer says why.

The strict entry point is fuzzed, so a bug shows as an exception here instead of being
absorbed by parse_barcode's safety net.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.barcodes import (
    GS,
    KINDS,
    BarcodeSettings,
    ParsedBarcode,
    VariableMeasureLayout,
    parse_barcode,
    parse_barcode_strict,
)
from appliance.barcodes.aim import SYMBOLOGY_NAMES
from appliance.barcodes.check_digits import append_check_digit

FUZZ = settings(max_examples=500, deadline=None)

SETTINGS = [
    BarcodeSettings(),
    BarcodeSettings(
        customer_prefix="0",
        receipt_prefix="2",
        eight_digit="upce",
        vm_layouts=(
            VariableMeasureLayout("20", 4, "price", True),
            VariableMeasureLayout("02", 5, "weight", True),
            VariableMeasureLayout("29", 1, "weight"),
        ),
        group_separators=GS + "|",
        currency_numeric="978",
        currency_minor_digits=0,
    ),
]

aim_prefixes = st.one_of(
    st.just(""),
    st.builds(
        lambda letter, modifier: "]" + letter + modifier,
        st.sampled_from(sorted(SYMBOLOGY_NAMES)),
        st.sampled_from("0123456789ABz"),
    ),
)
gs1_alphabet = "0123456789" * 4 + GS + "ABC()-/.%"


def check(parsed: ParsedBarcode) -> None:
    assert parsed.kind in KINDS
    if parsed.valid:
        assert parsed.error is None
    else:
        assert isinstance(parsed.error, str) and parsed.error
        assert parsed.lookup_codes == ()
    assert parsed.gtin is None or (len(parsed.gtin) == 14 and parsed.gtin.isdigit())
    out = parsed.to_json_dict()
    json.dumps(out)
    assert json.loads(json.dumps(out, ensure_ascii=True)) == out


@FUZZ
@given(st.text(max_size=80), st.sampled_from(SETTINGS))
def test_arbitrary_text(code: str, s: BarcodeSettings) -> None:
    check(parse_barcode_strict(code, s))


@FUZZ
@given(aim_prefixes, st.text(alphabet="0123456789", max_size=20), st.sampled_from(SETTINGS))
def test_arbitrary_digits(prefix: str, digits: str, s: BarcodeSettings) -> None:
    parsed = parse_barcode_strict(prefix + digits, s)
    check(parsed)
    if s is SETTINGS[0] and prefix == "" and len(digits) in (12, 13) and not parsed.valid:
        assert parsed.error is not None and "check digit" in parsed.error


@FUZZ
@given(aim_prefixes, st.text(alphabet=gs1_alphabet, max_size=60), st.sampled_from(SETTINGS))
def test_gs1_like_text(prefix: str, body: str, s: BarcodeSettings) -> None:
    check(parse_barcode_strict(prefix + body, s))


@FUZZ
@given(
    st.sampled_from(["]C1", "]d2", "]Q3", "]e0", "", GS]),
    st.lists(
        st.sampled_from(
            [
                "01" + append_check_digit("0950110102091"),
                "10LOT42",
                "21SER/1",
                "17251200",
                "3103001250",
                "3922199",
                "3932978450",
                "00" + append_check_digit("10614141123456789"),
                "3202000100",
                "7006250101",
                "8008251231",
                "4330001234-",
            ]
        ),
        min_size=1,
        max_size=6,
    ),
    st.data(),
)
def test_gs1_strings_with_random_fnc1_placement(
    prefix: str, elements: list[str], data: st.DataObject
) -> None:
    chars = list("".join(elements))
    for _ in range(data.draw(st.integers(0, 5))):
        pos = data.draw(st.integers(0, len(chars)))
        action = data.draw(st.sampled_from(["insert", "delete", "swap"]))
        if action == "insert":
            chars.insert(pos, GS)
        elif pos < len(chars) - 1:
            if action == "delete":
                del chars[pos]
            else:
                chars[pos], chars[pos + 1] = chars[pos + 1], chars[pos]
    parsed = parse_barcode_strict(prefix + "".join(chars))
    check(parsed)
    if parsed.valid and parsed.kind == "gs1":
        assert parsed.ais


@FUZZ
@given(st.binary(max_size=40))
def test_bytes_decoded_any_way(raw: bytes) -> None:
    for text in (raw.decode("latin-1"), raw.decode("utf-8", "surrogateescape")):
        check(parse_barcode_strict(text))


@settings(max_examples=200, deadline=None)
@given(st.from_type(object))
def test_any_python_object_gets_an_answer(value: object) -> None:
    check(parse_barcode(value))  # type: ignore[arg-type]


@FUZZ
@given(
    st.sampled_from(["", "]Q1", "]d1", "]Q3"]),
    st.sampled_from(["https://id.gs1.org", "http://x.example/p", "HTTPS://a"]),
    st.lists(
        st.one_of(
            st.sampled_from(["01", "10", "17", "3103", "21", "zz", ""]),
            st.text(alphabet="0123456789ABC%2F?&=#/", max_size=16),
        ),
        max_size=8,
    ),
)
def test_digital_link_like_text(prefix: str, host: str, segments: list[str]) -> None:
    check(parse_barcode_strict(prefix + host + "/" + "/".join(segments)))

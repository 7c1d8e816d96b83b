"""parse_barcode: classification, AIM identifiers, prefixes and the JSON contract."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from datetime import date

import pytest

from appliance.barcodes import (
    GS,
    KINDS,
    BarcodeSettings,
    ParsedBarcode,
    parse_barcode,
    parse_barcode_strict,
    split_aim,
)

CONTRACT_KEYS = {"valid", "kind", "gtin", "ais", "weight_g", "price_minor", "error"}


@pytest.mark.parametrize(
    ("code", "kind", "gtin"),
    [
        ("4006381333931", "ean13", "04006381333931"),
        ("036000291452", "upca", "00036000291452"),
        ("96385074", "ean8", "00000096385074"),
        ("04252614", "upce", "00042100005264"),  # EAN-8 check fails, UPC-E holds
        ("]E04006381333931", "ean13", "04006381333931"),
        ("]E0036000291452", "upca", "00036000291452"),
        ("]E004252614", "upce", "00042100005264"),
        ("]E496385074", "ean8", "00000096385074"),
        ("09501101020917", "other", "09501101020917"),  # bare GTIN-14 / ITF-14
        ("]I109501101020917", "other", "09501101020917"),
        ("ABC-123", "other", None),
        ("12345", "other", None),
        ("]C0ABC-123", "other", None),
        ("]C04006381333931", "other", "04006381333931"),  # EAN digits in Code 128
        ("]C04006381333932", "other", None),  # not a GTIN there, but a fine SKU
    ],
)
def test_classification(code: str, kind: str, gtin: str | None) -> None:
    parsed = parse_barcode_strict(code)
    assert parsed.valid, parsed.error
    assert (parsed.kind, parsed.gtin) == (kind, gtin)
    assert parsed.error is None
    assert parsed.lookup_codes
    if gtin is not None:
        assert gtin in parsed.lookup_codes


@pytest.mark.parametrize(
    ("code", "kind", "error"),
    [
        ("4006381333932", "ean13", "EAN-13 check digit is 2, expected 1"),
        ("036000291453", "upca", "UPC-A check digit is 3, expected 2"),
        ("96385075", "ean8", "EAN-8 check digit is 5, expected 4"),
        ("]E004252615", "upce", "UPC-E check digit is 5, expected 4"),
        ("]E024252614", "upce", "UPC-E number system must be 0 or 1, got 2"),
        ("]E44006381333931", "ean8", "EAN-8 has 8 digits, got 13"),
        ("]E0123456789", "other", "9 digits; EAN/UPC has 13, 12 or 8"),
        ("]E0ABC", "other", "data must be digits"),
        ("]E112", "other", "an add-on without its main symbol"),
        ("09501101020918", "other", "GTIN-14 check digit is 8, expected 7"),
        ("", "other", "empty code"),
        ("  \r\n", "other", "empty code"),
        ("]E0", "other", "no data after AIM"),
        ("ab\x07c", "other", "unprintable character U+0007 at offset 2"),
    ],
)
def test_invalid_codes_say_why(code: str, kind: str, error: str) -> None:
    parsed = parse_barcode_strict(code)
    assert not parsed.valid
    assert parsed.kind == kind
    assert parsed.error is not None and error in parsed.error
    assert parsed.gtin is None and parsed.lookup_codes == ()


def test_scanner_suffix_whitespace_is_dropped_but_gs_is_kept() -> None:
    assert parse_barcode_strict("4006381333931\r\n").gtin == "04006381333931"
    parsed = parse_barcode_strict(GS + "0109501101020917" + "10AB" + GS + "\r")
    assert parsed.valid and parsed.ais == {"01": "09501101020917", "10": "AB"}


# --- AIM ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "identifier", "data"),
    [
        ("]E04006381333931", "]E0", "4006381333931"),
        ("]C1010950110102091710AB", "]C1", "010950110102091710AB"),
        ("]d2010950110102091710AB", "]d2", "010950110102091710AB"),
        ("]Q3x", "]Q3", "x"),
        ("]A0CODE39", "]A0", "CODE39"),
        ("]e0019501101020917", "]e0", "019501101020917"),
        ("]W0abc", None, "]W0abc"),  # W is no symbology letter
        ("]E", None, "]E"),
        ("]E!1", None, "]E!1"),
        ("E0123", None, "E0123"),
    ],
)
def test_split_aim(text: str, identifier: str | None, data: str) -> None:
    assert split_aim(text) == (identifier, data)


@pytest.mark.parametrize("identifier", ["]C1", "]d2", "]Q3", "]e0", "]J1"])
def test_gs1_identifiers_mean_gs1_data(identifier: str) -> None:
    parsed = parse_barcode_strict(identifier + "0109501101020917" + "3103001250" + "10LOT")
    assert parsed.valid, parsed.error
    assert parsed.kind == "gs1" and parsed.symbology == identifier
    assert parsed.gtin == "09501101020917" and parsed.weight_g == 1250
    assert parsed.ais["10"] == "LOT"


def test_addon_is_split_off() -> None:
    parsed = parse_barcode_strict("]E3" + "9771234567003" + "15")
    assert parsed.valid, parsed.error
    assert (parsed.kind, parsed.addon) == ("ean13", "15")
    assert parsed.gtin == "09771234567003"
    five = parse_barcode_strict("]E3" + "9781234567897" + "51999")
    assert (five.kind, five.addon) == ("ean13", "51999")


# --- GS1 without AIM ----------------------------------------------------------------------


def test_gs1_detected_without_aim() -> None:
    leading_gs = parse_barcode_strict(GS + "0109501101020917" + "17251231")
    inner_gs = parse_barcode_strict("0109501101020917" + "10AB" + GS + "17251231")
    no_gs = parse_barcode_strict("0109501101020917" + "17251231" + "10AB")
    hri = parse_barcode_strict("(01)09501101020917(17)251231(10)AB")
    for parsed in (leading_gs, inner_gs, no_gs, hri):
        assert parsed.valid, parsed.error
        assert parsed.kind == "gs1"
        assert parsed.gtin == "09501101020917"
        assert parsed.expiry == "2025-12-31"
    assert hri.lookup_codes == ("09501101020917", "9501101020917")


def test_digital_link_qr_codes() -> None:
    parsed = parse_barcode_strict("]Q1https://id.gs1.org/01/09506000134352/10/LOT1?3922=299")
    assert parsed.valid and parsed.kind == "gs1"
    assert (parsed.gtin, parsed.price_minor) == ("09506000134352", 299)
    assert parsed.lookup_codes == ("09506000134352", "9506000134352")
    # Not a valid Digital Link (date path, bad GTIN): just a URL, looked up as is.
    for url in ("https://blog.example/2024/01/15/post", "https://x.example/01/09506000134353"):
        plain = parse_barcode_strict(url)
        assert plain.valid and plain.kind == "other" and plain.lookup_codes == (url,)


def test_unprefixed_gs1_needs_a_clean_parse() -> None:
    # Looks like AI 01 + GTIN but the rest is no GS1 data: a long SKU, not a misread.
    parsed = parse_barcode_strict("0109501101020917" + "~~~")
    assert parsed.valid and parsed.kind == "other"
    off = BarcodeSettings(detect_unprefixed_gs1=False)
    assert parse_barcode_strict("0109501101020917" + "17251231", off).kind == "other"


def test_gs1_errors_make_the_scan_invalid() -> None:
    parsed = parse_barcode_strict("]C1" + "0109501101020917" + "17251301")
    assert not parsed.valid and parsed.kind == "gs1"
    assert parsed.error is not None and parsed.error.startswith("AI 17 at offset 16")
    assert parsed.ais == {}


def test_gs1_price_and_currency() -> None:
    s = BarcodeSettings(currency_numeric="978")
    parsed = parse_barcode_strict("]C1" + "0109501101020917" + "3932978" + "1299", s)
    assert (parsed.price_minor, parsed.currency) == (1299, "978")
    refused = parse_barcode_strict("]C1" + "0109501101020917" + "3932840" + "1299", s)
    assert not refused.valid


def test_substitute_group_separator() -> None:
    s = BarcodeSettings(group_separators=GS + "|")
    parsed = parse_barcode_strict("]C1" + "0109501101020917" + "10AB|21X", s)
    assert parsed.ais == {"01": "09501101020917", "10": "AB", "21": "X"}
    with pytest.raises(ValueError, match="is a GS1 data character"):
        BarcodeSettings(group_separators="A")


def test_reference_date_drives_the_century() -> None:
    s = BarcodeSettings(reference_date=date(2090, 1, 1))
    parsed = parse_barcode_strict("(01)09501101020917(17)300101", s)
    assert parsed.expiry == "2130-01-01"


# --- eight digits ---------------------------------------------------------------------------


def test_eight_digits_that_are_valid_both_ways() -> None:
    code = "01234565"  # UPC-E of 012345000065, and also a valid EAN-8
    parsed = parse_barcode_strict(code)
    assert parsed.kind == "ean8" and parsed.gtin == "00000001234565"
    assert parsed.lookup_codes[:2] == ("01234565", "00000001234565")
    assert "00012345000065" in parsed.lookup_codes  # the UPC-E reading as fallback
    upce_first = parse_barcode_strict(code, BarcodeSettings(eight_digit="upce"))
    assert upce_first.kind == "upce" and upce_first.gtin == "00012345000065"
    assert "00000001234565" in upce_first.lookup_codes


def test_eight_digits_with_neither_check_digit() -> None:
    parsed = parse_barcode_strict("01234567")
    assert not parsed.valid and parsed.kind == "ean8"
    assert parsed.error == "EAN-8 check digit is 7, expected 5"
    upce_first = parse_barcode_strict("01234567", BarcodeSettings(eight_digit="upce"))
    assert upce_first.kind == "upce"
    assert upce_first.error is not None and upce_first.error.startswith("UPC-E check digit is 7")


# --- customer and receipt codes -------------------------------------------------------------


def test_customer_and_receipt_codes() -> None:
    customer = parse_barcode_strict("CUST000123")
    assert (customer.valid, customer.kind, customer.customer_code) == (True, "customer", "000123")
    receipt = parse_barcode_strict("RCPTR1-000042")
    assert (receipt.valid, receipt.kind, receipt.receipt_no) == (True, "receipt", "R1-000042")
    assert receipt.gtin is None and receipt.lookup_codes == ()


@pytest.mark.parametrize(
    ("code", "kind", "error"),
    [
        ("CUST", "customer", "customer code is empty after prefix 'CUST'"),
        ("CUST a", "customer", "customer code has character U+0020 at offset 4"),
        ("CUST" + "x" * 65, "customer", "at most 64"),
        ("RCPT", "receipt", "is not <register id>-<digits>"),
        ("RCPTR1-", "receipt", "is not <register id>-<digits>"),
        ("RCPTR1-12a", "receipt", "is not <register id>-<digits>"),
        ("RCPT" + "R" * 17 + "-1", "receipt", "is not <register id>-<digits>"),
        ("RCPTR_1-1", "receipt", "is not <register id>-<digits>"),
    ],
)
def test_malformed_customer_and_receipt_codes(code: str, kind: str, error: str) -> None:
    parsed = parse_barcode_strict(code)
    assert not parsed.valid and parsed.kind == kind
    assert parsed.error is not None and error in parsed.error


def test_prefixes_are_configurable_and_numeric_ones_beat_ean() -> None:
    s = BarcodeSettings(customer_prefix="042", receipt_prefix="RX")
    assert parse_barcode_strict("0421234567890", s).customer_code == "1234567890"
    assert parse_barcode_strict("RXshop2-9", s).receipt_no == "shop2-9"
    assert parse_barcode_strict("CUST1", s).kind == "other"
    off = BarcodeSettings(customer_prefix="", receipt_prefix="")
    assert parse_barcode_strict("CUST1", off).kind == "other"
    assert parse_barcode_strict("RCPTR1-1", off).kind == "other"


def test_longest_prefix_wins() -> None:
    s = BarcodeSettings(customer_prefix="C", receipt_prefix="CR")
    assert parse_barcode_strict("CRR1-5", s).kind == "receipt"
    assert parse_barcode_strict("C77", s).customer_code == "77"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"customer_prefix": "A B"},
        {"customer_prefix": "X", "receipt_prefix": "X"},
        {"eight_digit": "ean13"},
        {"currency_minor_digits": 5},
        {"currency_numeric": "EUR"},
        {"group_separators": ""},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        BarcodeSettings(**kwargs)  # type: ignore[arg-type]


# --- card data ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "%B4111111111111111^DOE/JOHN^25121010000000000000?",
        ";4111111111111111=25121010000000000?",
        "4111111111111111=2512101",
        "]A0%B4111111111111111^X^2512",
    ],
)
def test_track_data_is_refused_and_not_echoed(code: str) -> None:
    parsed = parse_barcode(code)
    assert not parsed.valid
    dumped = json.dumps(parsed.to_json_dict()) + repr(parsed)
    assert "4111111111111111" not in dumped
    assert parsed.raw == parsed.data == "<redacted>"


# --- result type and contract -------------------------------------------------------------


def test_result_is_frozen_and_ais_read_only() -> None:
    parsed = parse_barcode_strict("]C10109501101020917")
    with pytest.raises(FrozenInstanceError):
        parsed.kind = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        parsed.ais["10"] = "x"  # type: ignore[index]
    assert parsed.ais == {"01": "09501101020917"}
    assert parse_barcode_strict("]C10109501101020917") == parsed
    assert hash(parse_barcode_strict("]C10109501101020917")) == hash(parsed)
    assert hash(BarcodeSettings()) == hash(BarcodeSettings())


def test_result_invariants_are_enforced() -> None:
    with pytest.raises(ValueError):
        ParsedBarcode(True, "other", "x", "x", error="boom")
    with pytest.raises(ValueError):
        ParsedBarcode(False, "other", "x", "x")
    with pytest.raises(ValueError):
        ParsedBarcode(True, "gtin14", "x", "x")


@pytest.mark.parametrize(
    "code",
    ["4006381333931", "4006381333932", "]C10109501101020917", "CUST1", "RCPTR1-1", "x", ""],
)
def test_json_contract(code: str) -> None:
    out = parse_barcode(code).to_json_dict()
    assert set(out) >= CONTRACT_KEYS
    assert list(out)[:7] == ["valid", "kind", "gtin", "ais", "weight_g", "price_minor", "error"]
    assert isinstance(out["valid"], bool) and out["kind"] in KINDS
    assert out["gtin"] is None or (len(out["gtin"]) == 14 and out["gtin"].isdigit())
    assert isinstance(out["ais"], dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in out["ais"].items())
    for key in ("weight_g", "price_minor"):
        assert out[key] is None or type(out[key]) is int
    assert (out["error"] is None) == out["valid"]
    assert json.loads(json.dumps(out)) == out


def test_non_text_input_is_invalid_not_an_exception() -> None:
    parsed = parse_barcode(b"4006381333931")  # type: ignore[arg-type]
    assert not parsed.valid and parsed.error == "code must be text, got bytes"
    assert not parse_barcode(None).valid  # type: ignore[arg-type]


def test_overlong_input() -> None:
    parsed = parse_barcode("A" * 5000)
    assert not parsed.valid and parsed.error == "code has 5000 characters; at most 4096"


def test_lone_surrogates_do_not_break_anything() -> None:
    parsed = parse_barcode("abc\udcff")
    assert not parsed.valid and "U+DCFF" in (parsed.error or "")
    json.dumps(parsed.to_json_dict())

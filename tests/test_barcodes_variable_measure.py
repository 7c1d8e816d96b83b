"""Scale labels: layouts, price verifier digits and what the register looks up."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.barcodes import BarcodeSettings, VariableMeasureLayout, parse_barcode_strict
from appliance.barcodes.check_digits import append_check_digit, price_check_digit
from appliance.barcodes.variable_measure import DEFAULT_VM_LAYOUTS, read_variable_measure

FAST = settings(max_examples=300, deadline=None)


def label(prefix: str, item: str, value: str, price_check: bool = False) -> str:
    verifier = str(price_check_digit(value)) if price_check else ""
    return append_check_digit(prefix + item + verifier + value)


def test_default_layouts_weight_21_price_23() -> None:
    assert [layout.to_spec() for layout in DEFAULT_VM_LAYOUTS] == ["21:5:weight:0", "23:5:price:0"]
    weighed = parse_barcode_strict(label("21", "12345", "01250"))
    assert weighed.valid and weighed.kind == "variable_measure"
    assert (weighed.item_code, weighed.weight_g, weighed.price_minor) == ("12345", 1250, None)
    priced = parse_barcode_strict(label("23", "00042", "00399"))
    assert (priced.item_code, priced.weight_g, priced.price_minor) == ("00042", None, 399)
    assert priced.gtin is None


def test_lookup_codes_are_zeroed_label_then_item_code() -> None:
    parsed = parse_barcode_strict("2112345012506")
    assert parsed.lookup_codes == ("2112345000008", "02112345000008", "12345")


def test_zeroed_label_itself_reads_as_zero_weight() -> None:
    # How catalogs store scale items (value zeroed): scanning it gives weight 0, which
    # the register must treat as "weigh it", not as a free line.
    parsed = parse_barcode_strict("2100001000004")
    assert parsed.valid and parsed.item_code == "00001" and parsed.weight_g == 0


def test_unconfigured_prefix_is_a_plain_ean13() -> None:
    parsed = parse_barcode_strict("2000000012346")
    assert parsed.kind == "ean13" and parsed.gtin == "02000000012346"


def test_bad_ean_check_digit_on_a_scale_label() -> None:
    parsed = parse_barcode_strict("2112345012505")
    assert not parsed.valid and parsed.kind == "variable_measure"
    assert parsed.error == "EAN-13 check digit is 5, expected 6"


@pytest.mark.parametrize(
    ("spec", "code", "item", "field", "value"),
    [
        ("28:4:price:1", label("28", "1234", "01234", True), "1234", "price_minor", 1234),
        ("29:5:weight:1", label("29", "54321", "0875", True), "54321", "weight_g", 875),
        ("22:6:price", label("22", "000123", "0499"), "000123", "price_minor", 499),
        ("24:4:price:0", label("24", "0007", "012345"), "0007", "price_minor", 12345),
    ],
)
def test_configured_layouts(spec: str, code: str, item: str, field: str, value: int) -> None:
    layout = VariableMeasureLayout.from_spec(spec)
    parsed = parse_barcode_strict(code, BarcodeSettings(vm_layouts=(layout,)))
    assert parsed.valid, parsed.error
    assert parsed.item_code == item
    assert getattr(parsed, field) == value


def test_price_verifier_digit_is_checked() -> None:
    layout = VariableMeasureLayout.from_spec("28:4:price:1")
    good = label("28", "1234", "01234", True)
    verifier = int(good[6])
    wrong = append_check_digit(good[:6] + str((verifier + 1) % 10) + good[7:12])
    parsed = parse_barcode_strict(wrong, BarcodeSettings(vm_layouts=(layout,)))
    assert not parsed.valid
    assert parsed.error == f"price check digit is {(verifier + 1) % 10}, expected {verifier}"


def test_upca_number_system_2_via_prefix_02() -> None:
    layout = VariableMeasureLayout.from_spec("02:5:price:1")
    code13 = label("02", "12345", "0299", True)
    parsed = parse_barcode_strict(code13[1:], BarcodeSettings(vm_layouts=(layout,)))
    assert parsed.valid, parsed.error
    assert parsed.kind == "variable_measure"
    assert (parsed.item_code, parsed.price_minor) == ("12345", 299)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("2:5:price", "prefix must be two digits"),
        ("21:5:volume", "measure must be price or weight"),
        ("21:0:price", "item digits must be 1-9"),
        ("21:x:price", "ITEM_DIGITS must be a number"),
        ("21:5:price:2", "PRICE_CHECK must be 0 or 1"),
        ("21:3:price:1", "leaves 6 digits"),
        ("21:10:price", "item digits must be 1-9"),
        ("21:9:price:1", "leave no room"),
        ("21:5", "is not PREFIX:ITEM_DIGITS"),
    ],
)
def test_bad_layouts(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        VariableMeasureLayout.from_spec(spec)
    assert message in str(info.value)


def test_duplicate_prefix_is_refused() -> None:
    layout = VariableMeasureLayout("21", 5, "price")
    with pytest.raises(ValueError, match="two variable-measure layouts"):
        BarcodeSettings(vm_layouts=(layout, layout))


@FAST
@given(
    st.sampled_from(["20", "21", "25", "29"]),
    st.integers(1, 8),
    st.sampled_from(["price", "weight"]),
    st.booleans(),
    st.data(),
)
def test_any_layout_reads_back_what_was_printed(
    prefix: str, item_digits: int, measure: str, price_check: bool, data: st.DataObject
) -> None:
    value_digits = 10 - item_digits - int(price_check)
    if price_check and value_digits not in (4, 5):
        price_check = False
        value_digits += 1
    layout = VariableMeasureLayout(prefix, item_digits, measure, price_check)
    item = data.draw(st.text(alphabet="0123456789", min_size=item_digits, max_size=item_digits))
    value = data.draw(st.text(alphabet="0123456789", min_size=value_digits, max_size=value_digits))
    code = label(prefix, item, value, price_check)
    reading = read_variable_measure(code, layout)
    assert reading.error is None
    assert (reading.item_code, reading.value, reading.measure) == (item, int(value), measure)
    assert reading.zeroed_code.startswith(prefix + item)
    assert set(reading.zeroed_code[2 + item_digits : 12]) <= {"0"}


def test_the_register_reads_the_shops_scale_labels_from_its_config(tmp_path: Path) -> None:
    """A shop whose scales print prefix 28 with a price check digit, and a wedge scanner
    sending "|" for FNC1: both come from the config, not the parser's defaults."""
    from appliance.config import ConfigError
    from appliance.register import Register
    from appliance.scan import apply_scan
    from tests.conftest import make_config

    config = make_config(
        tmp_path, barcodes={"scale_labels": ["28:4:price:1"], "gs_substitutes": "|"}
    )
    register = Register(config)
    register.import_catalog_csv(
        "sku,name,price_minor,barcodes\nCHEESE,Cheese,0,2812340000002\nFLOUR,Flour,99,"
        "04012345000009\n", "shop.csv",
    )  # fmt: skip
    line = apply_scan(register, "2812341012349")["line"]
    assert line["sku"] == "CHEESE" and line["override"]["unit_price"] == 1234
    assert apply_scan(register, "]C10104012345000009|10LOT")["line"]["sku"] == "FLOUR"
    register.close()
    with pytest.raises(
        ConfigError, match=r"barcodes\.scale_labels: prefix must be two digits, got '2'"
    ):
        make_config(tmp_path, barcodes={"scale_labels": ["2:5:price"]})
    with pytest.raises(ConfigError, match="two layouts for one prefix"):
        make_config(tmp_path, barcodes={"scale_labels": ["21:5:weight", "21:4:price"]})
    with pytest.raises(ConfigError, match=r"barcodes\.gs_substitutes: a GS1 data character"):
        make_config(tmp_path, barcodes={"gs_substitutes": "A"})

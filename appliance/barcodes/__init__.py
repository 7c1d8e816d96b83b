"""Barcode semantics of the register: what a scanned code means.

Pure and stdlib-only, because the register imports it at start and the drivers feed it
untrusted device input: :func:`parse_barcode` never raises. Sub-modules hold one
concern each: check digits, AIM identifiers, GS1 element strings (and their AI table),
scale labels, settings and the result type.
"""

from appliance.barcodes.aim import split_aim
from appliance.barcodes.check_digits import (
    compress_upca,
    expand_upce,
    gs1_check_digit,
    gtin_forms,
    has_valid_check_digit,
    normalize_gtin,
    price_check_digit,
)
from appliance.barcodes.gs1 import GS, read_gs1
from appliance.barcodes.parse import parse_barcode, parse_barcode_strict
from appliance.barcodes.result import KINDS, ParsedBarcode
from appliance.barcodes.settings import DEFAULT_SETTINGS, BarcodeSettings
from appliance.barcodes.variable_measure import DEFAULT_VM_LAYOUTS, VariableMeasureLayout

__all__ = [
    "DEFAULT_SETTINGS",
    "DEFAULT_VM_LAYOUTS",
    "GS",
    "KINDS",
    "BarcodeSettings",
    "ParsedBarcode",
    "VariableMeasureLayout",
    "compress_upca",
    "expand_upce",
    "gs1_check_digit",
    "gtin_forms",
    "has_valid_check_digit",
    "normalize_gtin",
    "parse_barcode",
    "parse_barcode_strict",
    "price_check_digit",
    "read_gs1",
    "split_aim",
]

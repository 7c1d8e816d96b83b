"""BMP fields: one byte naming the field, then fixed-length data or an LL/LLL length.

LLVAR/LLLVAR lengths are written as FxFy / FxFyFz (each byte 0xF0 + one decimal
digit). A BMP that is not in the table is skipped by its declared length when one
follows it (FxFy or FxFyFz, whichever reading lets the rest of the message decode;
newer terminals add variable-length BMPs), and listed under ``unknown_bmps`` by number
and length only. An unknown BMP without such a length cannot be skipped: decoding
stops there with an error naming the offset and the BMP. The TLV container (06) has
its own BER length, and unknown TLV tags inside it are kept by their declared length.

Card data never leaves in the clear: tracks 1–3, CVV, PIN offset and chip EF_ID data
decode to ``{"redacted": true, "length": n}``, the PAN (22) to ``pan_masked``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.zvt.bcd import decode_bcd_digits, decode_bcd_int, encode_bcd
from drivers.zvt.errors import ZvtDecodeError
from drivers.zvt.pan import mask_pan_digits, scrub_hex
from drivers.zvt.text import DEFAULT_ENCODING, decode_text, encode_text
from drivers.zvt.tlv import TlvNode, decode_tlv, decode_tlv_length, encode_tlv_length, tlv_to_json

FIXED = "fixed"
LLVAR = "llvar"
LLLVAR = "lllvar"
TLV = "tlv"


@dataclass(frozen=True)
class BmpSpec:
    bmp: int
    key: str
    kind: str  # FIXED / LLVAR / LLLVAR / TLV
    length: int  # fixed length in bytes (0 for variable)
    render: str  # int, bcd_int, bcd_str, time, text, hex, pan, redact, tlv, totals


def _fixed(bmp: int, key: str, n: int, render: str) -> BmpSpec:
    return BmpSpec(bmp, key, FIXED, n, render)


def _ll(bmp: int, key: str, render: str) -> BmpSpec:
    return BmpSpec(bmp, key, LLVAR, 0, render)


def _lll(bmp: int, key: str, render: str) -> BmpSpec:
    return BmpSpec(bmp, key, LLLVAR, 0, render)


_SPECS: list[BmpSpec] = [
    _fixed(0x01, "timeout", 1, "int"),
    _fixed(0x02, "max_status_infos", 1, "int"),
    _fixed(0x03, "service_byte", 1, "int"),
    _fixed(0x04, "amount_minor", 6, "bcd_int"),
    _fixed(0x05, "pump_no", 1, "int"),
    BmpSpec(0x06, "tlv", TLV, 0, "tlv"),
    _fixed(0x0B, "trace", 3, "bcd_int"),
    _fixed(0x0C, "time", 3, "time"),
    _fixed(0x0D, "date_mmdd", 2, "bcd_str"),
    _fixed(0x0E, "expiry_yymm", 2, "bcd_str"),
    _fixed(0x17, "card_sequence_no", 2, "bcd_int"),
    _fixed(0x19, "payment_type", 1, "int"),
    _ll(0x22, "pan_masked", "pan"),
    _ll(0x23, "track2", "redact"),
    _lll(0x24, "track3", "redact"),
    _fixed(0x27, "result_code", 1, "int"),
    _fixed(0x29, "terminal_id", 4, "bcd_str"),
    _fixed(0x2A, "vu_number", 15, "text"),
    _ll(0x2D, "track1", "redact"),
    _lll(0x2E, "sync_chip_data", "redact"),
    _fixed(0x37, "original_trace", 3, "bcd_int"),
    _fixed(0x3A, "cvv", 2, "redact"),
    _fixed(0x3B, "aid", 8, "text"),
    _lll(0x3C, "additional_text", "text"),
    _fixed(0x3D, "password", 3, "redact"),
    _fixed(0x49, "currency", 2, "bcd_int"),
    _lll(0x60, "individual_totals", "totals"),
    _fixed(0x87, "receipt_no", 2, "bcd_int"),
    _fixed(0x88, "turnover_no", 3, "bcd_int"),
    _fixed(0x8A, "card_type", 1, "int"),
    _ll(0x8B, "card_name", "text"),
    _fixed(0x8C, "card_type_id", 1, "int"),
    _lll(0x92, "ec_cash_chip_offline", "hex"),
    _lll(0x9A, "geldkarte", "hex"),
    _fixed(0xA0, "result_code_as", 1, "int"),
    _ll(0xA7, "chip_data", "redact"),
    _fixed(0xAA, "date_yymmdd", 3, "bcd_str"),
    _lll(0xAF, "emv_print_data", "hex"),
    _fixed(0xBA, "aid_parameter", 5, "hex"),
    _fixed(0xD0, "algorithm_key", 1, "int"),
    _ll(0xD1, "pin_offset", "redact"),
    _ll(0xD2, "dukpt", "redact"),
    _fixed(0xE0, "input_min_length", 1, "int"),
    *[_ll(0xE0 + i, f"text2_line{i}", "text") for i in range(1, 9)],
    _fixed(0xE9, "input_max_length", 1, "int"),
    _fixed(0xEA, "input_echo", 1, "int"),
    _fixed(0xEB, "mac", 8, "hex"),
    _fixed(0xF0, "display_duration", 1, "int"),
    *[_ll(0xF0 + i, f"display_line{i}", "text") for i in range(1, 9)],
    _fixed(0xF9, "beeps", 1, "int"),
    _fixed(0xFA, "display_status", 1, "int"),
    _fixed(0xFB, "ok_required", 1, "int"),
    _fixed(0xFC, "dialog_control", 1, "int"),
]

BMPS: dict[int, BmpSpec] = {s.bmp: s for s in _SPECS}
BY_KEY: dict[str, BmpSpec] = {s.key: s for s in _SPECS}

# Individual totals (BMP 60): receipt range then count + 6-byte BCD turnover per scheme.
TOTALS_SCHEMES = ("girocard", "jcb", "eurocard", "amex", "visa", "diners", "other")


def _len_digits(n: int, digits: int) -> bytes:
    text = str(n).rjust(digits, "0")
    if len(text) > digits:
        raise ValueError(f"length {n} does not fit in {digits} FxFy digits")
    return bytes(0xF0 + int(c) for c in text)


def encode_var(data: bytes, digits: int) -> bytes:
    return _len_digits(len(data), digits) + data


def _read_var_length(buf: bytes, pos: int, digits: int, base: int, bmp: int) -> tuple[int, int]:
    if pos + digits > len(buf):
        raise ZvtDecodeError(base + pos, f"BMP {bmp:02X}: {digits}-byte length runs past the end")
    n = 0
    for k in range(digits):
        b = buf[pos + k]
        if b & 0xF0 != 0xF0 or b & 0x0F > 9:
            raise ZvtDecodeError(
                base + pos + k,
                f"BMP {bmp:02X}: length byte 0x{b:02X} is not F0–F9 (FxFy encoding)",
            )
        n = n * 10 + (b & 0x0F)
    return n, pos + digits


def _render(spec: BmpSpec, raw: bytes, offset: int, encoding: str) -> Any:
    r = spec.render
    if r == "int":
        return int.from_bytes(raw, "big")
    if r == "bcd_int":
        return decode_bcd_int(raw, offset)
    if r == "bcd_str":
        return decode_bcd_digits(raw, offset)
    if r == "time":
        d = decode_bcd_digits(raw, offset)
        return f"{d[0:2]}:{d[2:4]}:{d[4:6]}"
    if r == "text":
        return decode_text(raw, encoding).strip()
    if r == "pan":
        return mask_pan_digits(raw.hex().upper())
    if r == "redact":
        return {"redacted": True, "length": len(raw)}
    if r == "totals":
        return decode_totals(raw, offset)
    return scrub_hex(raw)


def decode_totals(raw: bytes, offset: int = 0) -> dict[str, Any]:
    """Individual totals: receipt-no from/to (2+2 BCD), then 7 × (count 1, amount 6 BCD)."""
    if len(raw) != 4 + 7 * len(TOTALS_SCHEMES):
        return {"hex": scrub_hex(raw)}
    out: dict[str, Any] = {
        "receipt_from": decode_bcd_int(raw[0:2], offset),
        "receipt_to": decode_bcd_int(raw[2:4], offset + 2),
    }
    pos = 4
    for name in TOTALS_SCHEMES:
        out[name] = {
            "count": raw[pos],
            "amount_minor": decode_bcd_int(raw[pos + 1 : pos + 7], offset + pos + 1),
        }
        pos += 7
    return out


def encode_totals(
    receipt_from: int, receipt_to: int, per_scheme: dict[str, tuple[int, int]]
) -> bytes:
    out = encode_bcd(receipt_from, 2) + encode_bcd(receipt_to, 2)
    for name in TOTALS_SCHEMES:
        count, amount = per_scheme.get(name, (0, 0))
        out += bytes([min(count, 255)]) + encode_bcd(amount, 6)
    return out


@dataclass
class DecodedBmps:
    fields: dict[str, Any]
    tlv: list[TlvNode]
    order: list[int]


@dataclass(frozen=True)
class _Field:
    bmp: int
    spec: BmpSpec | None  # None: an unknown BMP skipped by its declared length
    start: int  # offset of the BMP byte in buf
    data: int  # offset of the data in buf
    n: int


def _var_lengths(buf: bytes, pos: int) -> list[tuple[int, int]]:
    """(data length, header size) readings of an unknown BMP's length: LL, then LLL."""
    out: list[tuple[int, int]] = []
    for digits in (2, 3):
        head = buf[pos : pos + digits]
        if len(head) == digits and all(b & 0xF0 == 0xF0 and b & 0x0F <= 9 for b in head):
            n = int("".join(str(b & 0x0F) for b in head))
            if pos + digits + n <= len(buf):
                out.append((n, digits))
    return out


def _known_field(buf: bytes, pos: int, base: int) -> _Field:
    start = pos
    bmp = buf[pos]
    spec = BMPS[bmp]
    pos += 1
    if spec.kind == TLV:
        n, pos = decode_tlv_length(buf, pos, base)
    elif spec.kind == LLVAR:
        n, pos = _read_var_length(buf, pos, 2, base, bmp)
    elif spec.kind == LLLVAR:
        n, pos = _read_var_length(buf, pos, 3, base, bmp)
    else:
        n = spec.length
    if pos + n > len(buf):
        raise ZvtDecodeError(
            base + start,
            f"BMP {bmp:02X} ({spec.key}) needs {n} bytes but only {len(buf) - pos} remain",
        )
    return _Field(bmp, spec, start, pos, n)


def _split_fields(buf: bytes, base: int) -> list[_Field]:
    """Cut ``buf`` into fields. Known BMPs have one reading; an unknown BMP may be read
    with an LL or an LLL length, so the reader backtracks to the other reading when the
    rest does not decode. Positions known to fail are remembered, so the work stays
    linear in the number of fields. The error reported is the first one met."""
    fields: list[_Field] = []
    # branch points: (index into fields, position of the unknown BMP, readings left)
    branches: list[tuple[int, int, list[tuple[int, int]]]] = []
    dead: set[int] = set()
    first_error: ZvtDecodeError | None = None
    pos = 0
    while pos < len(buf):
        error: ZvtDecodeError | None = None
        if pos in dead:
            error = first_error
        elif buf[pos] in BMPS:
            try:
                f = _known_field(buf, pos, base)
            except ZvtDecodeError as e:
                error = e
            else:
                fields.append(f)
                pos = f.data + f.n
                continue
        else:
            readings = _var_lengths(buf, pos + 1)
            if readings:
                n, size = readings[0]
                branches.append((len(fields), pos, readings[1:]))
                fields.append(_Field(buf[pos], None, pos, pos + 1 + size, n))
                pos = pos + 1 + size + n
                continue
            error = ZvtDecodeError(
                base + pos,
                f"unknown BMP 0x{buf[pos]:02X} with no FxFy/FxFyFz length after it: "
                "its length is not known, so decoding stops here",
            )
        first_error = first_error or error
        dead.add(pos)
        while branches:  # backtrack to the last unknown BMP that has another reading
            index, at, left = branches.pop()
            del fields[index:]
            if left:
                n, size = left[0]
                branches.append((index, at, left[1:]))
                fields.append(_Field(buf[at], None, at, at + 1 + size, n))
                pos = at + 1 + size + n
                break
            dead.add(at)
        else:
            assert first_error is not None
            raise first_error
    return fields


def decode_bmps(
    buf: bytes,
    base: int = 0,
    encoding: str = DEFAULT_ENCODING,
    on_field: Callable[[int, bytes], None] | None = None,
) -> DecodedBmps:
    """Decode a run of BMP fields filling ``buf``; ``base`` is its offset in the APDU data."""
    fields: dict[str, Any] = {}
    tlv: list[TlvNode] = []
    order: list[int] = []
    for f in _split_fields(buf, base):
        raw = bytes(buf[f.data : f.data + f.n])
        if on_field is not None:
            on_field(f.bmp, raw)
        order.append(f.bmp)
        if f.spec is None:
            # Number and length only: an unknown field may hold card data.
            fields.setdefault("unknown_bmps", []).append({"bmp": f"{f.bmp:02X}", "length": f.n})
        elif f.spec.kind == TLV:
            tlv.extend(decode_tlv(raw, base + f.data))
            fields["tlv"] = tlv_to_json(tlv, encoding)
        else:
            fields[f.spec.key] = _render(f.spec, raw, base + f.data, encoding)
    return DecodedBmps(fields, tlv, order)


# ---- encoding (register → terminal, and the simulator's terminal → register) ----


def bmp_fixed(bmp: int, raw: bytes) -> bytes:
    spec = BMPS[bmp]
    if len(raw) != spec.length:
        raise ValueError(f"BMP {bmp:02X} takes {spec.length} bytes, got {len(raw)}")
    return bytes([bmp]) + raw


def bmp_bcd(bmp: int, value: int | str) -> bytes:
    return bytes([bmp]) + encode_bcd(value, BMPS[bmp].length)


def bmp_byte(bmp: int, value: int) -> bytes:
    return bytes([bmp, value & 0xFF])


def bmp_var(bmp: int, raw: bytes) -> bytes:
    kind = BMPS[bmp].kind
    return bytes([bmp]) + encode_var(raw, 2 if kind == LLVAR else 3)


def bmp_text(bmp: int, text: str, encoding: str = DEFAULT_ENCODING) -> bytes:
    spec = BMPS[bmp]
    raw = encode_text(text, encoding)
    if spec.kind == FIXED:
        return bytes([bmp]) + raw[: spec.length].ljust(spec.length, b" ")
    return bmp_var(bmp, raw)


def bmp_tlv(nodes: list[TlvNode]) -> bytes:
    from drivers.zvt.tlv import encode_tlv

    body = encode_tlv(nodes)
    return b"\x06" + encode_tlv_length(len(body)) + body


def bmp_pan_masked(pan_nibbles: str) -> bytes:
    """BMP 22 from nibbles (digits, E for masked); odd counts are padded with F."""
    s = pan_nibbles.upper()
    if len(s) % 2:
        s += "F"
    return bmp_var(0x22, bytes.fromhex(s))

"""ZVT messages: builders for register → terminal commands, decoders for every APDU.

The decoder is shared by the client, the simulator and `appliance terminal decode`;
it returns JSON-ready fields (see bmp.py for the keys) and raises only ZvtDecodeError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drivers.zvt.apdu import Apdu
from drivers.zvt.bcd import decode_bcd_digits, encode_bcd
from drivers.zvt.bmp import (
    bmp_bcd,
    bmp_byte,
    bmp_tlv,
    decode_bmps,
)
from drivers.zvt.codes import (
    intermediate_text,
    negative_ack_message,
    result_message,
)
from drivers.zvt.errors import ZvtDecodeError
from drivers.zvt.text import DEFAULT_ENCODING, decode_text, encode_text
from drivers.zvt.tlv import TlvNode, constructed, find_tag, primitive

NAMES: dict[tuple[int, int], str] = {
    (0x06, 0x00): "registration",
    (0x06, 0x01): "authorization",
    (0x06, 0x02): "log-off",
    (0x06, 0x0F): "completion",
    (0x06, 0x1E): "abort",
    (0x06, 0x20): "repeat receipt",
    (0x06, 0x30): "reversal",
    (0x06, 0x31): "refund",
    (0x06, 0x50): "end-of-day",
    (0x06, 0x51): "send offline transactions",
    (0x06, 0x70): "diagnosis",
    (0x06, 0xB0): "abort request",
    (0x06, 0xD1): "print line",
    (0x06, 0xD3): "print text block",
    (0x05, 0x01): "status enquiry",
    (0x04, 0x0F): "status information",
    (0x04, 0xFF): "intermediate status",
    (0x80, 0x00): "positive acknowledgement",
}

# Commands whose data starts with the 3-byte password, then BMPs.
PASSWORD_FIRST = (
    (0x06, 0x30),
    (0x06, 0x31),
    (0x05, 0x01),
    (0x06, 0x50),
    (0x06, 0x51),
    (0x06, 0x20),
)

# Config byte of the registration: what the register takes over from the terminal.
CONFIG_RECEIPT_PAYMENT = 0x02  # register prints the payment receipt (print lines)
CONFIG_RECEIPT_ADMIN = 0x04  # register prints administration receipts
CONFIG_INTERMEDIATE_STATUS = 0x08  # terminal sends intermediate status to the register
CONFIG_ECR_CONTROLS_PAYMENT = 0x10
CONFIG_ECR_CONTROLS_ADMIN = 0x20
CONFIG_ECR_PRINT_TYPE = 0x80  # print via 06 D3 text blocks instead of 06 D1 lines
DEFAULT_CONFIG = CONFIG_RECEIPT_PAYMENT | CONFIG_RECEIPT_ADMIN | CONFIG_INTERMEDIATE_STATUS

EUR = 978


def _password(password: str) -> bytes:
    if len(password) != 6 or not password.isdigit():
        raise ValueError("the terminal password is 6 digits")
    return encode_bcd(password, 3)


def _amount(amount_minor: int) -> bytes:
    if amount_minor < 0 or amount_minor > 999_999_999_999:
        raise ValueError(f"amount {amount_minor} does not fit in 6 BCD bytes")
    return bmp_bcd(0x04, amount_minor)


def _currency(code: int) -> bytes:
    if not 0 < code <= 999:
        raise ValueError(f"currency {code} is not an ISO 4217 numeric code")
    return encode_bcd(code, 2)


# ---- register → terminal ----


def registration(
    password: str,
    config: int = DEFAULT_CONFIG,
    currency: int | None = EUR,
    service_byte: int | None = None,
    tlv: list[TlvNode] | None = None,
) -> Apdu:
    data = _password(password) + bytes([config & 0xFF])
    if currency is not None:
        data += _currency(currency)
    if service_byte is not None:
        data += bmp_byte(0x03, service_byte)
    if tlv:
        data += bmp_tlv(tlv)
    return Apdu(0x06, 0x00, data)


def authorization(
    amount_minor: int,
    currency: int = EUR,
    payment_type: int | None = None,
    trace: int | None = None,
) -> Apdu:
    data = _amount(amount_minor) + b"\x49" + _currency(currency)
    if payment_type is not None:
        data += bmp_byte(0x19, payment_type)
    if trace is not None:
        data += bmp_bcd(0x0B, trace)
    return Apdu(0x06, 0x01, data)


def log_off() -> Apdu:
    return Apdu(0x06, 0x02)


def reversal(password: str, receipt_no: int) -> Apdu:
    return Apdu(0x06, 0x30, _password(password) + bmp_bcd(0x87, receipt_no))


def refund(password: str, amount_minor: int, currency: int = EUR) -> Apdu:
    return Apdu(
        0x06, 0x31, _password(password) + _amount(amount_minor) + b"\x49" + _currency(currency)
    )


def abort_request() -> Apdu:
    return Apdu(0x06, 0xB0)


def end_of_day(password: str) -> Apdu:
    return Apdu(0x06, 0x50, _password(password))


def send_offline_transactions(password: str) -> Apdu:
    """06 51: the terminal submits the payments it stored while its host was offline
    and reports each stored payment of the current batch (status information per
    payment: receipt number, trace, amount, the host's result code), then completes.
    Submitting is once per payment inside the terminal, so repeating the command
    never charges twice; it only reports again."""
    return Apdu(0x06, 0x51, _password(password))


def diagnosis() -> Apdu:
    return Apdu(0x06, 0x70)


def status_enquiry(password: str, service_byte: int | None = None) -> Apdu:
    data = _password(password)
    if service_byte is not None:
        data += bmp_byte(0x03, service_byte)
    return Apdu(0x05, 0x01, data)


def repeat_receipt(password: str) -> Apdu:
    return Apdu(0x06, 0x20, _password(password))


def ack() -> Apdu:
    return Apdu(0x80, 0x00)


def nak(code: int) -> Apdu:
    return Apdu(0x84, code & 0xFF)


# ---- terminal → register (the simulator builds these) ----


def intermediate_status(status: int, timeout: int | None = None) -> Apdu:
    data = bytes([status])
    if timeout is not None:
        data += bytes([timeout])
    return Apdu(0x04, 0xFF, data)


def status_information(*bmps: bytes) -> Apdu:
    return Apdu(0x04, 0x0F, b"".join(bmps))


def completion(*bmps: bytes) -> Apdu:
    return Apdu(0x06, 0x0F, b"".join(bmps))


def terminal_abort(result_code: int) -> Apdu:
    return Apdu(0x06, 0x1E, bytes([result_code]))


def print_line(text: str, attribute: int = 0x00, encoding: str = DEFAULT_ENCODING) -> Apdu:
    return Apdu(0x06, 0xD1, bytes([attribute]) + encode_text(text, encoding))


def print_text_block(
    lines: list[str], receipt_type: int = 2, encoding: str = DEFAULT_ENCODING
) -> Apdu:
    texts = constructed(0x25, [primitive(0x07, encode_text(t, encoding)) for t in lines])
    return Apdu(0x06, 0xD3, bmp_tlv([primitive(0x1F07, bytes([receipt_type])), texts]))


# ---- decoding ----


@dataclass
class Decoded:
    command: str
    name: str
    fields: dict[str, Any] = field(default_factory=dict)
    tlv: list[TlvNode] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"command": self.command, "name": self.name}
        out.update(self.fields)
        return out

    @property
    def control(self) -> tuple[int, int]:
        a, b = self.command.split()
        return int(a, 16), int(b, 16)


def _bmps_into(out: Decoded, data: bytes, base: int, encoding: str) -> None:
    d = decode_bmps(data, base, encoding)
    out.fields.update(d.fields)
    out.tlv.extend(d.tlv)


def _with_fallback(
    out: Decoded, data: bytes, base: int, encoding: str, key: str, size: int, render: str
) -> None:
    """A positional field that may be absent: try with it, then without it."""
    first_error: ZvtDecodeError | None = None
    try:
        trial = Decoded(out.command, out.name)
        raw = data[:size]
        if render == "currency":
            trial.fields[key] = int(decode_bcd_digits(raw, base))
        else:
            trial.fields[key] = raw[0]
        _bmps_into(trial, data[size:], base + size, encoding)
        out.fields.update(trial.fields)
        out.tlv.extend(trial.tlv)
        return
    except ZvtDecodeError as e:
        first_error = e
    try:
        _bmps_into(out, data, base, encoding)
    except ZvtDecodeError:
        raise first_error from None


def decode_message(apdu: Apdu, encoding: str = DEFAULT_ENCODING, base: int = 3) -> Decoded:
    """Decode the data of ``apdu``; ``base`` is where the data starts (3 or 5)."""
    ctl = apdu.control
    out = Decoded(apdu.command, NAMES.get(ctl, "unknown"))
    data = apdu.data
    cls, instr = ctl

    def need(n: int, what: str) -> None:
        if len(data) < n:
            raise ZvtDecodeError(base + len(data), f"{out.name} needs {what} ({n} bytes)")

    if cls == 0x84:
        out.name = "negative acknowledgement"
        out.fields["error_code"] = instr
        out.fields["error"] = negative_ack_message(instr)
        if data:
            out.fields["data_hex"] = data.hex(" ").upper()
        return out
    if ctl == (0x06, 0x00):
        need(4, "a 3-byte password and a config byte")
        out.fields["password"] = decode_bcd_digits(data[:3], base)
        out.fields["config_byte"] = data[3]
        rest = data[4:]
        if len(rest) >= 2:
            _with_fallback(out, rest, base + 4, encoding, "currency", 2, "currency")
        elif rest:
            _bmps_into(out, rest, base + 4, encoding)
        return out
    if ctl in PASSWORD_FIRST:
        need(3, "a 3-byte password")
        out.fields["password"] = decode_bcd_digits(data[:3], base)
        _bmps_into(out, data[3:], base + 3, encoding)
        return out
    if ctl == (0x04, 0xFF):
        need(1, "an intermediate status byte")
        out.fields["status"] = data[0]
        out.fields["status_text"] = intermediate_text(data[0])
        rest = data[1:]
        if rest:
            _with_fallback(out, rest, base + 1, encoding, "timeout", 1, "int")
        return out
    if ctl == (0x06, 0x1E):
        need(1, "a result code")
        out.fields["result_code"] = data[0]
        _bmps_into(out, data[1:], base + 1, encoding)
        out.fields["result_code"] = data[0]
        out.fields["result"] = result_message(data[0])
        return out
    if ctl == (0x06, 0xD1):
        need(1, "an attribute byte")
        out.fields["attribute"] = data[0]
        out.fields["text"] = decode_text(data[1:], encoding)
        return out
    if ctl in NAMES:
        _bmps_into(out, data, base, encoding)
        if "result_code" in out.fields:
            out.fields["result"] = result_message(out.fields["result_code"])
        if ctl == (0x06, 0xD3):
            out.fields["lines"] = print_block_lines(out.tlv, encoding)
        return out
    if data:
        out.fields["data_hex"] = data.hex(" ").upper()
    return out


def print_block_lines(nodes: list[TlvNode], encoding: str = DEFAULT_ENCODING) -> list[str]:
    texts = find_tag(nodes, 0x25)
    if texts is None:
        return []
    return [decode_text(n.value, encoding) for n in texts.children if n.tag_int == 0x07]


def receipt_type(nodes: list[TlvNode]) -> int | None:
    node = find_tag(nodes, 0x1F07)
    return node.value[0] if node is not None and node.value else None

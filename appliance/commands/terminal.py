"""`appliance terminal decode|encode`: ZVT bytes for people debugging a terminal.

decode: hex digits (spaces, dashes, colons allowed) of a bare APDU or a serial frame
(10 02 …: CRC checked, DLE un-doubled) → one JSON object on stdout. Card data stays
masked (PAN first 6 / last 4) or redacted (tracks). Undecodable input → exit 1 and a
message on stderr naming the byte offset.
encode: the bytes of a command as upper-case hex separated by spaces; --serial wraps
them in the DLE STX … DLE ETX CRC frame.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("terminal", help="ZVT card terminal tools (decode/encode bytes)")
    sub = p.add_subparsers(dest="terminal_command", metavar="ACTION")
    sub.required = True

    d = sub.add_parser("decode", help="decode a ZVT APDU or serial frame given as hex")
    d.add_argument("hex", nargs="+", metavar="HEX", help="bytes as hex digits")
    d.add_argument(
        "--encoding",
        default="cp437",
        help="text encoding of the terminal (cp437, iso-8859-1, iso-8859-15)",
    )
    d.set_defaults(handler=_decode)

    e = sub.add_parser("encode", help="encode a register → terminal command as hex")
    esub = e.add_subparsers(dest="encode_command", metavar="COMMAND")
    esub.required = True

    a = esub.add_parser("authorization", help="06 01 authorization")
    a.add_argument("--amount-minor", type=int, required=True)
    a.add_argument("--currency", type=int, required=True, help="ISO 4217 numeric, e.g. 978")
    a.add_argument("--serial", action="store_true", help="print the full serial frame")
    a.set_defaults(handler=_encode)

    r = esub.add_parser("registration", help="06 00 registration")
    r.add_argument("--password", required=True, help="6 digits")
    r.add_argument("--config", required=True, help="config byte, e.g. 0xBA")
    r.add_argument("--currency", type=int, required=True)
    r.add_argument("--serial", action="store_true")
    r.set_defaults(handler=_encode)

    s = esub.add_parser("status-enquiry", help="05 01 status enquiry")
    s.add_argument("--password", required=True, help="6 digits")
    s.add_argument("--serial", action="store_true")
    s.set_defaults(handler=_encode)


def parse_hex(parts: list[str]) -> bytes:
    """Bytes from hex text; errors name the character offset in the joined input."""
    text = " ".join(parts)
    digits: list[str] = []
    for i, ch in enumerate(text):
        if ch in " -:\t\n":
            continue
        if ch not in "0123456789abcdefABCDEF":
            raise ValueError(
                f"input byte offset {len(digits) // 2} (character {i}): {ch!r} is not a hex digit"
            )
        digits.append(ch)
    if len(digits) % 2:
        raise ValueError(
            f"input byte offset {len(digits) // 2}: odd number of hex digits (half a byte)"
        )
    if not digits:
        raise ValueError("input byte offset 0: no bytes given")
    return bytes.fromhex("".join(digits))


def decode_bytes(buf: bytes, encoding: str = "cp437") -> dict[str, Any]:
    from drivers.zvt.apdu import data_offset, decode_apdu
    from drivers.zvt.errors import ZvtDecodeError
    from drivers.zvt.framing import ACK, NAK, decode_frame
    from drivers.zvt.messages import decode_message

    if len(buf) == 1 and buf[0] in (ACK, NAK):  # the serial line's handshake bytes
        name = "ACK" if buf[0] == ACK else "NAK"
        return {"command": f"{buf[0]:02X}", "framing": "serial", "name": name, "control": name}
    if buf[:2] == b"\x10\x02":
        apdu_bytes = decode_frame(buf)
        framing = "serial"
    else:
        apdu_bytes = buf
        framing = "apdu"
    try:
        apdu = decode_apdu(apdu_bytes)
        decoded = decode_message(apdu, encoding, data_offset(apdu_bytes))
    except ZvtDecodeError as e:
        if framing == "serial":
            raise ZvtDecodeError(
                e.offset, e.reason + " (offset in the APDU after DLE un-doubling)", where="APDU"
            ) from None
        raise
    out = decoded.to_json()
    out["framing"] = framing
    return {"command": out.pop("command"), "framing": out.pop("framing"), **out}


def _decode(args: argparse.Namespace) -> int:
    from drivers.zvt.errors import ZvtDecodeError
    from drivers.zvt.text import normalize_encoding

    try:
        normalize_encoding(args.encoding)
        buf = parse_hex(args.hex)
        out = decode_bytes(buf, args.encoding)
    except (ValueError, ZvtDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(out, ensure_ascii=False))
    return 0


def _encode(args: argparse.Namespace) -> int:
    from drivers.zvt import messages as m
    from drivers.zvt.framing import encode_frame

    try:
        if args.encode_command == "authorization":
            apdu = m.authorization(args.amount_minor, args.currency)
        elif args.encode_command == "registration":
            config = int(args.config, 0)
            if not 0 <= config <= 0xFF:
                raise ValueError(f"--config {args.config} is not a byte (0x00–0xFF)")
            apdu = m.registration(args.password, config, args.currency)
        else:
            apdu = m.status_enquiry(args.password)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    raw = apdu.encode()
    if args.serial:
        raw = encode_frame(raw)
    print(raw.hex(" ").upper())
    return 0

"""BER-TLV as the ZVT TLV container (BMP 06) uses it.

Tags: class in bits 8–7, constructed flag in bit 6, multi-byte tags when the low five
bits are all set (continuation bytes while bit 8 is set). Lengths: one byte below
0x80, or 0x81 n, or 0x82 hi lo. Unknown tags are kept by their declared length (raw
bytes), so a newer terminal never breaks the decoder; card data tags (PAN, track
equivalents) are masked or redacted in the JSON view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drivers.zvt.errors import ZvtDecodeError
from drivers.zvt.pan import mask_pan_digits, scrub_hex
from drivers.zvt.text import DEFAULT_ENCODING, decode_text

MAX_DEPTH = 16
MAX_TAG_BYTES = 4

_CLASSES = ("universal", "application", "context", "private")

# tag → (name, how to show a primitive value)
TAG_NAMES: dict[int, tuple[str, str]] = {
    0x07: ("text line", "text"),
    0x09: ("attribute", "int"),
    0x0A: ("permitted ZVT command", "hex"),
    0x12: ("characters per line", "hex"),
    0x14: ("ISO character set", "int"),
    0x1F04: ("receipt parameter", "int"),
    0x1F07: ("receipt type", "int"),
    0x1F10: ("cardholder authentication", "int"),
    0x1F11: ("online flag", "int"),
    0x1F12: ("card type", "int"),
    0x1F16: ("extended error code", "int"),
    0x1F17: ("extended error text", "text"),
    0x24: ("display texts", "hex"),
    0x25: ("print texts", "hex"),
    0x26: ("permitted ZVT commands", "hex"),
    0x27: ("supported character sets", "hex"),
    0x2F: ("payment type", "hex"),
    0x40: ("EMV config parameter", "hex"),
    0x41: ("card type ID", "int"),
    0x45: ("receipt parameter (EMV)", "hex"),
    0x60: ("application", "hex"),
    # EMV tags that carry card data: never shown in the clear.
    0x5A: ("PAN", "pan"),
    0x56: ("track 1 data", "redact"),
    0x57: ("track 2 equivalent data", "redact"),
    0x9F6B: ("track 2 data", "redact"),
    0x9F1F: ("track 1 discretionary data", "redact"),
    0x9F20: ("track 2 discretionary data", "redact"),
    0x99: ("PIN data", "redact"),
    # How the card was read (EMV POS entry mode, n2): 05 chip, 07 contactless, …
    0x9F39: ("POS entry mode", "int"),
}


@dataclass
class TlvNode:
    tag: bytes
    value: bytes = b""
    children: list[TlvNode] = field(default_factory=list)

    @property
    def constructed(self) -> bool:
        return bool(self.tag[0] & 0x20)

    @property
    def tag_int(self) -> int:
        return int.from_bytes(self.tag, "big")

    def encode(self) -> bytes:
        body = encode_tlv(self.children) if self.constructed else self.value
        return self.tag + encode_tlv_length(len(body)) + body

    def find(self, tag: int) -> TlvNode | None:
        return find_tag(self.children, tag)


def find_tag(nodes: list[TlvNode], tag: int) -> TlvNode | None:
    """First node with ``tag`` at any depth (depth-first)."""
    for node in nodes:
        if node.tag_int == tag:
            return node
        hit = find_tag(node.children, tag)
        if hit is not None:
            return hit
    return None


def encode_tlv_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n <= 0xFF:
        return bytes([0x81, n])
    if n <= 0xFFFF:
        return bytes([0x82, n >> 8, n & 0xFF])
    raise ValueError(f"TLV length {n} exceeds 65535")


def encode_tlv(nodes: list[TlvNode]) -> bytes:
    return b"".join(n.encode() for n in nodes)


def tag_bytes(tag: int) -> bytes:
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def primitive(tag: int, value: bytes) -> TlvNode:
    return TlvNode(tag_bytes(tag), value)


def constructed(tag: int, children: list[TlvNode]) -> TlvNode:
    tb = tag_bytes(tag)
    if not tb[0] & 0x20:
        raise ValueError(f"tag {tb.hex().upper()} is not a constructed tag")
    return TlvNode(tb, b"", children)


def decode_tlv_length(buf: bytes, pos: int, base: int) -> tuple[int, int]:
    """(length, new position); errors name the offset ``base + pos``."""
    if pos >= len(buf):
        raise ZvtDecodeError(base + pos, "TLV length missing")
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    if first == 0x81:
        if pos + 1 >= len(buf):
            raise ZvtDecodeError(base + pos, "TLV length 0x81 needs 1 more byte")
        return buf[pos + 1], pos + 2
    if first == 0x82:
        if pos + 2 >= len(buf):
            raise ZvtDecodeError(base + pos, "TLV length 0x82 needs 2 more bytes")
        return (buf[pos + 1] << 8) | buf[pos + 2], pos + 3
    raise ZvtDecodeError(base + pos, f"TLV length byte 0x{first:02X} not supported")


def decode_tlv(buf: bytes, base: int = 0, depth: int = 0) -> list[TlvNode]:
    """All TLV objects in ``buf``; ``base`` is its offset in the enclosing APDU data."""
    if depth > MAX_DEPTH:
        raise ZvtDecodeError(base, f"TLV nested deeper than {MAX_DEPTH} levels")
    nodes: list[TlvNode] = []
    pos = 0
    while pos < len(buf):
        start = pos
        first = buf[pos]
        pos += 1
        if first & 0x1F == 0x1F:
            while True:
                if pos >= len(buf):
                    raise ZvtDecodeError(base + start, "TLV tag runs past the end")
                b = buf[pos]
                pos += 1
                if pos - start > MAX_TAG_BYTES:
                    raise ZvtDecodeError(base + start, "TLV tag longer than 4 bytes")
                if not b & 0x80:
                    break
        tag = bytes(buf[start:pos])
        length, pos = decode_tlv_length(buf, pos, base)
        if pos + length > len(buf):
            raise ZvtDecodeError(
                base + start,
                f"TLV tag {tag.hex().upper()} declares {length} bytes "
                f"but only {len(buf) - pos} remain",
            )
        value = bytes(buf[pos : pos + length])
        if tag[0] & 0x20:
            nodes.append(TlvNode(tag, b"", decode_tlv(value, base + pos, depth + 1)))
        else:
            nodes.append(TlvNode(tag, value))
        pos += length
    return nodes


def tlv_to_json(nodes: list[TlvNode], encoding: str = DEFAULT_ENCODING) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for node in nodes:
        tag = node.tag_int
        name, how = TAG_NAMES.get(tag, ("", "hex"))
        item: dict[str, Any] = {
            "tag": node.tag.hex().upper(),
            "class": _CLASSES[node.tag[0] >> 6],
            "constructed": node.constructed,
        }
        if name:
            item["name"] = name
        if node.constructed:
            item["items"] = tlv_to_json(node.children, encoding)
        elif how == "redact":
            item.update(redacted=True, length=len(node.value))
        elif how == "pan":
            item["pan_masked"] = mask_pan_digits(node.value.hex().upper())
        else:
            item["length"] = len(node.value)
            item["hex"] = scrub_hex(node.value)
            if how == "text":
                item["text"] = decode_text(node.value, encoding)
            elif how == "int" and 0 < len(node.value) <= 8:
                item["int"] = int.from_bytes(node.value, "big")
        out.append(item)
    return out

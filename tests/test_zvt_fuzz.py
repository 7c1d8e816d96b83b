"""Fuzzing: the de-framer and the APDU/BMP/TLV decoders never raise anything but the
typed decode error, never hang, and round-trip what they encode."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.zvt.apdu import decode_apdu, encode_apdu
from drivers.zvt.bmp import BMPS, bmp_bcd, bmp_byte, bmp_var, decode_bmps, encode_var
from drivers.zvt.errors import ZvtDecodeError
from drivers.zvt.framing import Control, CrcError, Deframer, Frame, decode_frame, encode_frame
from drivers.zvt.messages import decode_message
from drivers.zvt.tlv import TlvNode, decode_tlv, encode_tlv

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

COMMANDS = [
    (0x04, 0x0F),
    (0x04, 0xFF),
    (0x06, 0x00),
    (0x06, 0x01),
    (0x06, 0x0F),
    (0x06, 0x1E),
    (0x06, 0x30),
    (0x06, 0x31),
    (0x06, 0xD1),
    (0x06, 0xD3),
    (0x05, 0x01),
    (0x80, 0x00),
    (0x84, 0x83),
    (0x06, 0x50),
]

# Bytes biased towards the interesting values (known BMPs, DLE/STX/ETX, F0–F9, 81/82).
interesting = st.sampled_from(
    [
        *(0x00, 0x01, 0x02, 0x03, 0x04, 0x06, 0x10, 0x15, 0x1F, 0x22, 0x23, 0x25, 0x27),
        *(0x3C, 0x60, 0x81, 0x82, 0x8B, 0xF0, 0xF1, 0xF9, 0xFF),
    ]
)
fuzz_bytes = st.lists(st.one_of(st.integers(0, 255), interesting), max_size=300).map(bytes)


@FAST
@given(data=fuzz_bytes, cuts=st.lists(st.integers(1, 50), max_size=20))
def test_deframer_survives_anything(data: bytes, cuts: list[int]) -> None:
    d = Deframer()
    pos, n = 0, 0
    t0 = time.monotonic()
    events = []
    while pos < len(data):
        step = cuts[n % len(cuts)] if cuts else 3
        events += d.feed(data[pos : pos + step])
        pos += step
        n += 1
    d.abandon()
    assert time.monotonic() - t0 < 2.0
    for ev in events:
        if isinstance(ev, Frame):
            assert decode_frame(encode_frame(ev.apdu)) == ev.apdu


@FAST
@given(
    apdus=st.lists(st.binary(max_size=300), min_size=1, max_size=5),
    noise=st.lists(st.binary(max_size=8), min_size=5, max_size=5),
    chunk=st.integers(1, 64),
)
def test_deframer_recovers_frames_between_noise(
    apdus: list[bytes], noise: list[bytes], chunk: int
) -> None:
    # Noise without DLE cannot fake a frame start, so every frame must come through.
    clean_noise = [n.replace(b"\x10", b"") for n in noise]
    stream = b"".join(clean_noise[i % 5] + encode_frame(a) for i, a in enumerate(apdus))
    d = Deframer()
    events = []
    for i in range(0, len(stream), chunk):
        events += d.feed(stream[i : i + chunk])
    frames = [e.apdu for e in events if isinstance(e, Frame)]
    assert frames == apdus
    assert not any(isinstance(e, CrcError) for e in events)
    controls = [e for e in events if isinstance(e, Control)]
    expected = sum(n.count(b"\x06") + n.count(b"\x15") for n in clean_noise[: len(apdus)])
    assert len(controls) == expected


@FAST
@given(data=fuzz_bytes)
def test_decode_frame_only_typed_errors(data: bytes) -> None:
    try:
        decode_frame(b"\x10\x02" + data)
    except ZvtDecodeError as e:
        assert 0 <= e.offset <= len(data) + 2


@FAST
@given(ctl=st.sampled_from(COMMANDS), data=fuzz_bytes)
def test_message_decoder_only_typed_errors(ctl: tuple[int, int], data: bytes) -> None:
    raw = encode_apdu(ctl[0], ctl[1], data)
    try:
        out = decode_message(decode_apdu(raw))
    except ZvtDecodeError as e:
        assert 0 <= e.offset <= len(raw)
        return
    text = str(out.to_json())
    assert out.command == f"{ctl[0]:02X} {ctl[1]:02X}"
    assert "track" not in out.fields or out.fields.get("track2", {}).get("redacted", True)
    assert isinstance(text, str)


@FAST
@given(data=fuzz_bytes)
def test_raw_apdu_and_bmp_and_tlv_only_typed_errors(data: bytes) -> None:
    for fn in (decode_apdu, decode_bmps, decode_tlv):
        try:
            fn(data)
        except ZvtDecodeError as e:
            assert 0 <= e.offset <= len(data) + 5


UNKNOWN_BMPS = sorted(set(range(256)) - set(BMPS))
known_fields = st.lists(
    st.sampled_from(
        [
            bmp_byte(0x27, 0x05),
            bmp_bcd(0x04, 1234),
            bmp_bcd(0x0B, 77),
            bmp_bcd(0x87, 9),
            bmp_var(0x8B, b"VISA"),
            bmp_var(0x3C, b"text"),
        ]
    ),
    min_size=1,
    max_size=5,
    unique=True,
)
unknown_fields = st.lists(
    st.tuples(st.sampled_from(UNKNOWN_BMPS), st.binary(max_size=40)), max_size=4
)


@FAST
@given(known=known_fields, unknown=unknown_fields, data=st.data())
def test_unknown_bmps_with_a_length_are_skipped(
    known: list[bytes], unknown: list[tuple[int, bytes]], data: st.DataObject
) -> None:
    parts = list(known)
    for bmp, value in unknown:
        at = data.draw(st.integers(0, len(parts)))
        parts.insert(at, bytes([bmp]) + encode_var(value, 2))
    expected = decode_bmps(b"".join(known)).fields
    got = decode_bmps(b"".join(parts)).fields
    skipped = got.pop("unknown_bmps", [])
    assert got == expected
    assert sorted((int(u["bmp"], 16), u["length"]) for u in skipped) == sorted(
        (bmp, len(value)) for bmp, value in unknown
    )


tags = st.sampled_from([0x07, 0x09, 0x1F07, 0x1F16, 0xDF8102, 0x5A, 0x9F6B])
ctags = st.sampled_from([0x25, 0x24, 0x26, 0xE1, 0x3F01])


def _node(tag: int, value: bytes) -> TlvNode:
    return TlvNode(tag.to_bytes((tag.bit_length() + 7) // 8, "big"), value)


tlv_tree = st.recursive(
    st.builds(_node, tags, st.binary(max_size=300)),
    lambda kids: st.builds(
        lambda t, c: TlvNode(t.to_bytes((t.bit_length() + 7) // 8, "big"), b"", c),
        ctags,
        st.lists(kids, max_size=4),
    ),
    max_leaves=10,
)


@FAST
@given(nodes=st.lists(tlv_tree, max_size=4))
def test_tlv_roundtrip(nodes: list[TlvNode]) -> None:
    assert decode_tlv(encode_tlv(nodes)) == nodes

"""Serial framing: CRC known answers, DLE doubling, long APDUs, the incremental de-framer."""

from __future__ import annotations

import pytest

from drivers.zvt.apdu import encode_apdu
from drivers.zvt.errors import ZvtDecodeError
from drivers.zvt.framing import (
    Abandoned,
    Control,
    CrcError,
    Deframer,
    Frame,
    crc16,
    decode_frame,
    encode_frame,
    frame_crc,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_crc_known_answers() -> None:
    # CCITT, reflected polynomial 0x8408, initial 0 (CRC-16/KERMIT check value).
    assert crc16(b"123456789") == 0x2189
    assert crc16(b"") == 0
    # The positive acknowledgement as a serial frame: CRC over 80 00 00 03 = 0x1FF5.
    assert frame_crc(h("80 00 00")) == 0x1FF5
    assert encode_frame(h("80 00 00")) == h("10 02 80 00 00 10 03 F5 1F")


def test_dle_doubling_and_crc_over_unescaped_bytes() -> None:
    apdu = h("06 01 0A 04 00 00 00 00 10 10 49 09 78")
    frame = encode_frame(apdu)
    assert frame[:2] == h("10 02")
    assert h("10 10 10 10") in frame  # each 10 doubled
    crc = frame_crc(apdu)
    assert frame[-2:] == bytes([crc & 0xFF, crc >> 8])  # low byte first
    assert decode_frame(frame) == apdu


def test_long_apdu_over_254_bytes_frames_and_deframes() -> None:
    data = bytes((i * 7) & 0xFF for i in range(600))  # includes many 0x10 bytes
    apdu = encode_apdu(0x06, 0xD3, data)
    assert apdu[2:5] == h("FF 58 02")
    frame = encode_frame(apdu)
    assert decode_frame(frame) == apdu
    d = Deframer()
    events = []
    for i in range(0, len(frame), 7):
        events += d.feed(frame[i : i + 7])
    assert events == [Frame(apdu)]


def test_decode_frame_errors_name_offsets() -> None:
    good = encode_frame(h("80 00 00"))
    with pytest.raises(ZvtDecodeError) as e:
        decode_frame(good[:-1] + b"\x00")
    assert e.value.offset == 7 and "CRC mismatch" in str(e.value)
    with pytest.raises(ZvtDecodeError) as e:
        decode_frame(good[:5])
    assert "before DLE ETX" in str(e.value)
    with pytest.raises(ZvtDecodeError) as e:
        decode_frame(h("10 02 80 10 05 00"))
    assert e.value.offset == 4 and "0x05" in str(e.value)
    with pytest.raises(ZvtDecodeError):
        decode_frame(good[:-1])
    with pytest.raises(ZvtDecodeError) as e:
        decode_frame(good + b"\x00")
    assert e.value.offset == len(good)


def test_deframer_byte_by_byte_with_garbage_acks_and_crc_errors() -> None:
    f1 = encode_frame(h("04 FF 01 0A"))
    f2 = encode_frame(h("06 0F 00"))
    bad = bytearray(encode_frame(h("80 00 00")))
    bad[-1] ^= 0xFF
    stream = b"\xaa\x55" + f1 + b"\x06" + b"\x00\x10\x41" + bytes(bad) + b"\x15" + f2
    d = Deframer()
    events = []
    for b in stream:
        events += d.feed(bytes([b]))
    assert events[0] == Frame(h("04 FF 01 0A"))
    assert events[1] is Control.ACK
    assert isinstance(events[2], CrcError) and events[2].apdu == h("80 00 00")
    assert events[3] is Control.NAK
    assert events[4] == Frame(h("06 0F 00"))
    assert d.garbage_bytes == 5  # AA 55 00 and the stray DLE + 41
    assert d.crc_errors == 1 and d.frames == 2


def test_deframer_truncated_frame_then_new_frame() -> None:
    f = encode_frame(h("04 0F 02 27 00"))
    d = Deframer()
    ev = d.feed(f[:5]) + d.feed(f)
    assert isinstance(ev[0], Abandoned) and "new DLE STX" in ev[0].reason
    assert ev[1] == Frame(h("04 0F 02 27 00"))
    # A half frame followed by silence: the transport calls abandon().
    d.feed(f[:4])
    assert d.in_frame
    assert isinstance(d.abandon(), Abandoned)
    assert not d.in_frame and d.abandon() is None
    assert d.feed(f) == [Frame(h("04 0F 02 27 00"))]


def test_deframer_bad_escape_resyncs() -> None:
    d = Deframer()
    ev = d.feed(h("10 02 80 10 44") + encode_frame(h("80 00 00")))
    assert isinstance(ev[0], Abandoned) and "0x44" in ev[0].reason
    assert ev[1] == Frame(h("80 00 00"))

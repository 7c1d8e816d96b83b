"""ZVT codec on hand-made bytes: APDU, BCD, BMP fields, TLV, text, messages."""

from __future__ import annotations

import pytest

from drivers.zvt import messages as m
from drivers.zvt.apdu import Apdu, decode_apdu, encode_apdu, total_size
from drivers.zvt.bmp import bmp_pan_masked, decode_bmps, decode_totals, encode_totals
from drivers.zvt.codes import intermediate_text, result_message
from drivers.zvt.errors import ZvtDecodeError
from drivers.zvt.pan import find_full_pans, luhn_ok, mask_pan_digits
from drivers.zvt.text import decode_text, normalize_encoding
from drivers.zvt.tlv import TlvNode, constructed, decode_tlv, encode_tlv, primitive, tlv_to_json


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def apdu(control: str, data: str) -> str:
    """Hex of an APDU with its LEN computed (for hand-written data)."""
    d = h(data)
    return (h(control) + bytes([len(d)]) + d).hex(" ")


def decode(text: str, encoding: str = "cp437") -> dict:
    raw = h(text)
    return m.decode_message(decode_apdu(raw), encoding, 5 if raw[2] == 0xFF else 3).to_json()


# ---- APDU ----


def test_apdu_short_and_extended_length() -> None:
    assert encode_apdu(0x06, 0x01, b"\x01\x02") == h("06 01 02 01 02")
    data = bytes(range(256)) + b"\x00" * 44  # 300 bytes
    raw = encode_apdu(0x04, 0x0F, data)
    assert raw[:5] == h("04 0F FF 2C 01")  # 300 = 0x012C, little-endian after FF
    assert total_size(raw) == 305
    assert decode_apdu(raw) == Apdu(0x04, 0x0F, data)
    assert encode_apdu(0x04, 0x0F, b"\x00" * 254)[2] == 0xFE
    assert encode_apdu(0x04, 0x0F, b"\x00" * 255)[2:5] == h("FF FF 00")


def test_apdu_errors_name_offsets() -> None:
    with pytest.raises(ZvtDecodeError) as e:
        decode_apdu(h("06 01"))
    assert e.value.offset == 2
    with pytest.raises(ZvtDecodeError) as e:
        decode_apdu(h("06 01 05 04 00"))
    assert e.value.offset == 2 and "declares 5" in str(e.value)
    with pytest.raises(ZvtDecodeError) as e:
        decode_apdu(h("06 01 FF 2C"))
    assert "2-byte length" in str(e.value)
    with pytest.raises(ZvtDecodeError) as e:
        decode_apdu(h("80 00 00 99"))
    assert e.value.offset == 3


# ---- builders (register → terminal), byte for byte ----


def test_authorization_bytes() -> None:
    # LEN is 0x0A: BMP 04 + 6 BCD bytes (7) and BMP 49 + 2 BCD bytes (3).
    assert m.authorization(1234, 978).encode() == h("06 01 0A 04 00 00 00 00 12 34 49 09 78")
    assert m.authorization(1, 978, payment_type=0x40).encode() == h(
        "06 01 0C 04 00 00 00 00 00 01 49 09 78 19 40"
    )


def test_command_bytes() -> None:
    assert m.registration("123456", 0xBA, 978).encode() == h("06 00 06 12 34 56 BA 09 78")
    assert m.registration("000000", 0x08, None, service_byte=0x03).encode() == h(
        "06 00 06 00 00 00 08 03 03"
    )
    assert m.log_off().encode() == h("06 02 00")
    assert m.reversal("000000", 17).encode() == h("06 30 06 00 00 00 87 00 17")
    assert m.refund("000000", 500, 978).encode() == h(
        "06 31 0D 00 00 00 04 00 00 00 00 05 00 49 09 78"
    )
    assert m.abort_request().encode() == h("06 B0 00")
    assert m.end_of_day("000000").encode() == h("06 50 03 00 00 00")
    assert m.diagnosis().encode() == h("06 70 00")
    assert m.status_enquiry("123456").encode() == h("05 01 03 12 34 56")
    assert m.ack().encode() == h("80 00 00")
    assert m.nak(0x83).encode() == h("84 83 00")


def test_builders_refuse_bad_values() -> None:
    with pytest.raises(ValueError):
        m.authorization(-1)
    with pytest.raises(ValueError):
        m.authorization(10**12)
    with pytest.raises(ValueError):
        m.status_enquiry("12345")
    with pytest.raises(ValueError):
        m.authorization(1, currency=1000)


# ---- decoders (terminal → register) ----


STATUS_INFO_DATA = (
    ""
    " 27 00"  # result code
    " 04 00 00 00 00 12 34"  # amount
    " 49 09 78"  # currency
    " 0B 00 01 23"  # trace
    " 0C 13 45 10"  # time
    " 0D 06 01"  # date
    " 0E 28 12"  # expiry
    " 22 F0 F8 54 13 33 EE EE EE 00 11"  # PAN, masked with E
    " 29 52 50 00 38"  # TID
    " 87 00 07"  # receipt
    " 88 00 00 09"  # turnover
    " 8A 06"  # card type
    " 8B F0 F5 56 49 53 41 00"  # card name "VISA\0"
    " 3C F0 F0 F3 41 8E 42"  # additional text "AÄB" in CP437
    " 06 04 1F 11 01 00"  # TLV container: online flag 0
)


def test_status_information_fields() -> None:
    raw = h(apdu("04 0F", STATUS_INFO_DATA))
    out = m.decode_message(decode_apdu(raw)).to_json()
    assert out["command"] == "04 0F"
    assert out["result_code"] == 0
    assert out["amount_minor"] == 1234
    assert out["currency"] == 978
    assert out["trace"] == 123
    assert out["time"] == "13:45:10"
    assert out["date_mmdd"] == "0601"
    assert out["expiry_yymm"] == "2812"
    assert out["pan_masked"] == "541333******0011"
    assert out["terminal_id"] == "52500038"
    assert out["receipt_no"] == 7
    assert out["turnover_no"] == 9
    assert out["card_type"] == 6
    assert out["card_name"] == "VISA"
    assert out["additional_text"] == "AÄB"
    assert out["tlv"][0]["tag"] == "1F11" and out["tlv"][0]["int"] == 0
    assert out["result"] == "approved"


def test_track_data_and_cvv_are_redacted() -> None:
    track2 = "F1 F0 " + "67 99 99 89 00 00 00 00 01 3D"  # 10 bytes
    out = decode(apdu("06 01", f"04 00 00 00 00 01 00 23 {track2} 3A 01 23"))
    assert out["track2"] == {"redacted": True, "length": 10}
    assert out["cvv"] == {"redacted": True, "length": 2}
    assert "6799998900000000013" not in str(out)
    out = decode(apdu("04 0F", "2D F0 F2 AB CD 24 F0 F0 F0"))
    assert out["track1"] == {"redacted": True, "length": 2}
    assert out["track3"] == {"redacted": True, "length": 0}


def test_clear_pan_is_masked() -> None:
    out = decode("04 0F 0B 22 F0 F8 54 13 33 00 89 02 00 11")
    assert out["pan_masked"] == "541333******0011"
    out = decode(apdu("04 0F", "22 F1 F0 67 99 99 89 00 00 00 00 01 3F"))  # 19 digits, clear
    assert out["pan_masked"] == "679999*********0013"
    assert mask_pan_digits("6799998900000000013F") == "679999*********0013"
    assert mask_pan_digits("123") == "***"


def test_truncated_fields_name_the_offset() -> None:
    with pytest.raises(ZvtDecodeError) as e:
        decode("04 0F 06 8B F0 F8 4D 61 73")
    assert e.value.offset == 3 and "needs 8 bytes" in str(e.value)
    with pytest.raises(ZvtDecodeError) as e:
        decode("04 0F 04 27 00 04 00")
    assert e.value.offset == 5 and "BMP 04" in str(e.value)
    with pytest.raises(ZvtDecodeError) as e:
        decode("04 0F 04 8B F1 3A 00")
    assert e.value.offset == 5 and "F0–F9" in str(e.value)


def test_unknown_bmp_without_a_length_stops_with_offset_and_number() -> None:
    with pytest.raises(ZvtDecodeError) as e:
        decode("04 0F 05 27 00 99 01 02")
    assert e.value.offset == 5
    assert "0x99" in str(e.value) and "unknown BMP" in str(e.value)


def test_unknown_bmps_are_skipped_by_their_declared_length() -> None:
    # 99: LLVAR of 3 bytes; 9D: LLLVAR of 2 bytes; then known fields again.
    out = decode(apdu("04 0F", "27 00 99 F0 F3 01 02 03 87 00 07 9D F0 F0 F2 AA BB 0B 00 00 42"))
    assert out["result_code"] == 0 and out["receipt_no"] == 7 and out["trace"] == 42
    assert out["unknown_bmps"] == [{"bmp": "99", "length": 3}, {"bmp": "9D", "length": 2}]
    # F0 F1 F2 reads as LL=01 (then F2 … fails) or LLL=012: the decoder takes the reading
    # with which the rest decodes.
    body = "99 F0 F1 F2" + " 11" * 12 + " 87 00 05"
    out = decode(apdu("04 0F", body))
    assert out["unknown_bmps"] == [{"bmp": "99", "length": 12}] and out["receipt_no"] == 5
    # Unknown content is never shown: it may be card data.
    clear = decode(apdu("04 0F", "99 F0 F8 54 13 33 00 89 02 00 11"))
    assert "5413" not in str(clear)


def test_hex_views_hide_a_bcd_pan() -> None:
    j = tlv_to_json(decode_tlv(h("DF 81 02 08 54 13 33 00 89 02 00 11")))
    assert j[0]["hex"] == "54 13 33 ** ** ** 00 11"
    out = decode(apdu("04 0F", "AF F0 F1 F0 AA 54 13 33 00 89 02 00 11 BB"))  # EMV print data
    assert "54 13 33 ** ** ** 00 11" in out["emv_print_data"]


def test_send_offline_transactions_and_pos_entry_mode() -> None:
    assert m.send_offline_transactions("000000").encode() == h("06 51 03 00 00 00")
    out = decode("06 51 03 12 34 56")
    assert out["name"] == "send offline transactions" and out["password"] == "123456"
    j = tlv_to_json(decode_tlv(h("9F 39 01 07")))
    assert j[0]["name"] == "POS entry mode" and j[0]["int"] == 7


def test_intermediate_status_with_and_without_timeout() -> None:
    out = decode("04 FF 01 0A")
    assert out["status"] == 0x0A and out["status_text"] == "insert card"
    out = decode("04 FF 02 01 3C")
    assert out["timeout"] == 60
    out = decode("04 FF 07 0E 06 04 1F 11 01 00")  # no timeout, TLV follows
    assert "timeout" not in out and out["tlv"][0]["tag"] == "1F11"
    assert intermediate_text(0x99) == "terminal status 99"


def test_registration_decodes_currency_or_not() -> None:
    out = decode("06 00 06 00 00 00 BA 09 78")
    assert out == {
        "command": "06 00",
        "name": "registration",
        "password": "000000",
        "config_byte": 0xBA,
        "currency": 978,
    }
    out = decode("06 00 06 00 00 00 BA 03 01")
    assert out["currency"] == 301  # ambiguous bytes read as currency first, like Wireshark
    out = decode("06 00 08 00 00 00 BA 09 78 03 01")
    assert out["currency"] == 978 and out["service_byte"] == 1


def test_print_line_and_text_block() -> None:
    out = decode("06 D1 05 80 48 8E 6C 6C", "cp437")
    assert out["attribute"] == 0x80 and out["text"] == "HÄll"
    out = decode("06 D1 05 00 48 C4 6C 6C", "iso-8859-1")
    assert out["text"] == "HÄll"
    blk = m.print_text_block(["Zeile 1", "Grüße"], receipt_type=1)
    d = m.decode_message(decode_apdu(blk.encode())).to_json()
    assert d["lines"] == ["Zeile 1", "Grüße"]
    assert d["tlv"][0] == {
        "tag": "1F07",
        "class": "universal",
        "constructed": False,
        "name": "receipt type",
        "length": 1,
        "hex": "01",
        "int": 1,
    }


def test_completion_abort_and_acks() -> None:
    assert decode("06 0F 00")["name"] == "completion"
    out = decode("06 1E 01 6C")
    assert out["result_code"] == 0x6C and out["result"].startswith("aborted")
    out = decode("06 1E 03 05 27 05")
    assert out["result_code"] == 5 and "declined" in out["result"]
    assert decode("80 00 00")["name"] == "positive acknowledgement"
    out = decode("84 83 00")
    assert out["error_code"] == 0x83 and out["error"] == "function not possible"
    assert decode("06 99 02 AB CD")["data_hex"] == "AB CD"


def test_result_codes_have_messages() -> None:
    assert result_message(0x00) == "approved"
    assert result_message(0x6C).startswith("aborted")
    assert "issuer" in result_message(0x05)
    assert result_message(0x9C) == "please wait"
    assert result_message(0xC3) == "maximum amount exceeded"
    assert "unknown" in result_message(0x80)


def test_individual_totals_roundtrip() -> None:
    raw = encode_totals(1, 9, {"visa": (2, 1500), "girocard": (1, 250)})
    assert len(raw) == 53
    t = decode_totals(raw)
    assert t["receipt_from"] == 1 and t["receipt_to"] == 9
    assert t["visa"] == {"count": 2, "amount_minor": 1500}
    assert t["girocard"] == {"count": 1, "amount_minor": 250}
    assert decode_totals(b"\x01\x02") == {"hex": "01 02"}


def test_bcd_rejects_non_digits() -> None:
    with pytest.raises(ZvtDecodeError) as e:
        decode("04 0F 07 04 00 00 00 0A 00 00")
    assert e.value.offset == 7 and "not BCD" in str(e.value)


# ---- TLV ----


def test_tlv_nested_multibyte_tags_and_long_lengths() -> None:
    long_text = b"x" * 200  # needs 0x81
    longer = b"y" * 300  # needs 0x82
    nodes = [
        primitive(0x1F07, b"\x02"),
        constructed(0x25, [primitive(0x07, long_text), primitive(0x07, b"ok")]),
        primitive(0x1F16, longer),
    ]
    raw = encode_tlv(nodes)
    assert raw[:4] == h("1F 07 01 02")
    assert raw[4:7] == h("25 81 CF")  # (1 + 2 + 200) + (1 + 1 + 2) = 207 = 0xCF
    assert h("1F 16 82 01 2C") in raw
    back = decode_tlv(raw)
    assert back == nodes
    assert back[1].children[0].value == long_text


def test_tlv_unknown_tags_kept_by_length_and_classes() -> None:
    raw = h("DF 81 02 02 AB CD 1F 07 01 01")
    nodes = decode_tlv(raw)
    assert nodes[0].tag == h("DF 81 02") and nodes[0].value == h("AB CD")
    j = tlv_to_json(nodes)
    assert j[0]["class"] == "private" and j[0]["hex"] == "AB CD" and "name" not in j[0]
    assert j[1]["int"] == 1


def test_tlv_card_data_tags_masked() -> None:
    raw = h("5A 08 54 13 33 00 89 02 00 11 57 03 01 02 03")
    j = tlv_to_json(decode_tlv(raw))
    assert j[0]["pan_masked"] == "541333******0011"
    assert j[1] == {
        "tag": "57",
        "class": "application",
        "constructed": False,
        "name": "track 2 equivalent data",
        "redacted": True,
        "length": 3,
    }


def test_tlv_errors_name_offsets() -> None:
    with pytest.raises(ZvtDecodeError) as e:
        decode_tlv(h("07 05 41 42"), base=10)
    assert e.value.offset == 10 and "declares 5" in str(e.value)
    with pytest.raises(ZvtDecodeError) as e:
        decode_tlv(h("07 83 00 00 01"))
    assert "0x83" in str(e.value)
    with pytest.raises(ZvtDecodeError):
        decode_tlv(h("1F 81 81 81 81 01 00"))  # tag too long
    with pytest.raises(ZvtDecodeError):
        decode_tlv(b"\x25\x02" * 20 + b"\x25\x00")  # nested past the end
    deep = b""
    for _ in range(20):
        deep = b"\x25" + bytes([len(deep)]) + deep
    with pytest.raises(ZvtDecodeError) as e:
        decode_tlv(deep)
    assert "deeper" in str(e.value)


def test_tlv_container_in_bmp_offsets_are_apdu_offsets() -> None:
    with pytest.raises(ZvtDecodeError) as e:
        decode("04 0F 06 27 00 06 02 07 05")
    assert e.value.offset == 7  # the 07 tag sits at byte 7 of the APDU


# ---- PAN helpers, text ----


def test_pan_helpers() -> None:
    assert luhn_ok("5413330089020011")
    assert not luhn_ok("5413330089020012")
    assert find_full_pans("card 5413330089020011 ok") == ["5413330089020011"]
    assert find_full_pans("541333******0011 and 12345") == []
    assert bmp_pan_masked("541333EEEEEE0011") == h("22 F0 F8 54 13 33 EE EE EE 00 11")


def test_text_encodings() -> None:
    assert decode_text(b"\x8e\x99\x9a\x00\x00") == "ÄÖÜ"
    assert decode_text(b"\xa4", "iso-8859-15") == "€"
    assert decode_text(b"\xa4", "iso-8859-1") == "¤"
    with pytest.raises(ValueError):
        normalize_encoding("utf-16")
    d = decode_bmps(h("8B F0 F3 8E 99 9A"), encoding="cp437")
    assert d.fields["card_name"] == "ÄÖÜ"


def test_tlv_node_encode_constructed_flag() -> None:
    assert TlvNode(h("25"), b"", [primitive(0x07, b"a")]).encode() == h("25 03 07 01 61")
    with pytest.raises(ValueError):
        constructed(0x07, [])

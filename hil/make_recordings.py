"""Generate the scanner recording library in hil/recordings/scanners (deterministic).

Run `python -m hil.make_recordings` after changing it. The recordings type codes the
way a scanner set to each layout does (keymaps.keystrokes), as a USB keyboard sends
them (MSC_SCAN with the HID usage, the key, SYN_REPORT), with scanner timing (a few
ms per key) or human timing (100-300 ms), key repeat, Caps Lock, Ctrl+] and
Alt+numpad for GS. Serial and BLE recordings hold the bytes on the wire, chunked as
a port read them or as notifications of 20 bytes (ATT MTU 23).

Each recording has a `.expected.json` with the scans a correct decoder must produce;
tests also check hand-written events against real layout facts, so a keymap mistake
cannot hide behind the generator, and run every expected scan through the register.
"""

from __future__ import annotations

import json
from pathlib import Path

from drivers.scanners.ble import NUS_TX
from drivers.scanners.keymaps import KEY_ENTER, KEY_KPENTER, KEY_TAB, get_layout, keystrokes
from drivers.scanners.wedge import RawEvent
from hil.evemu import EvemuRecording, write_evemu
from hil.serial_recording import SerialRecording, write_serial

OUT = Path(__file__).parent / "recordings" / "scanners"
GS = "\x1d"
KEY_LEFTSHIFT, KEY_RIGHTALT, KEY_LEFTCTRL, KEY_LEFTALT, KEY_CAPSLOCK = 42, 100, 29, 56, 58
KEY_RIGHTBRACE = 27
KP = {"0": 82, "1": 79, "2": 80, "3": 81, "4": 75, "5": 76, "6": 77, "7": 71, "8": 72, "9": 73}
# evdev key code -> USB HID usage (page 7), as hid-input maps them: what MSC_SCAN carries.
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_LETTER_CODES = (30, 48, 46, 32, 18, 33, 34, 35, 23, 36, 37, 38, 50, 49, 24, 25, 16, 19, 31,
                 20, 22, 47, 17, 45, 21, 44)  # fmt: skip
HID_USAGE = {
    **{code: 0x04 + i for i, code in enumerate(_LETTER_CODES)},
    **{code: 0x1E + i for i, code in enumerate(range(2, 12))},  # 1 … 0
    28: 0x28, 15: 0x2B, 57: 0x2C, 12: 0x2D, 13: 0x2E, 26: 0x2F, 27: 0x30, 43: 0x31,
    39: 0x33, 40: 0x34, 41: 0x35, 51: 0x36, 52: 0x37, 53: 0x38, 58: 0x39, 86: 0x64,
    98: 0x54, 55: 0x55, 74: 0x56, 78: 0x57, 96: 0x58, 79: 0x59, 80: 0x5A, 81: 0x5B,
    75: 0x5C, 76: 0x5D, 77: 0x5E, 71: 0x5F, 72: 0x60, 73: 0x61, 82: 0x62, 83: 0x63,
    29: 0xE0, 42: 0xE1, 56: 0xE2, 97: 0xE4, 54: 0xE5, 100: 0xE6,
}  # fmt: skip


class Typist:
    def __init__(self, start: float = 1700000000.0) -> None:
        self.t = start
        self.events: list[RawEvent] = []

    def _ev(self, etype: int, code: int, value: int) -> None:
        sec = int(self.t)
        self.events.append(
            RawEvent(sec, round((self.t - sec) * 1e6) % 1_000_000, etype, code, value)
        )

    def key(self, code: int, value: int) -> None:
        if value != 2:  # a USB keyboard reports the usage with each press and release
            self._ev(4, 4, 0x70000 | HID_USAGE[code])
        self._ev(1, code, value)
        self._ev(0, 0, 0)

    def tap(self, code: int, gap: float, shift: bool = False, altgr: bool = False,
            ctrl: bool = False) -> None:  # fmt: skip
        mods = [m for m, on in ((KEY_LEFTSHIFT, shift), (KEY_RIGHTALT, altgr),
                                (KEY_LEFTCTRL, ctrl)) if on]  # fmt: skip
        for mod in mods:
            self.key(mod, 1)
        self.key(code, 1)
        self.t += 0.002
        self.key(code, 0)
        for mod in mods:
            self.key(mod, 0)
        self.t += gap

    def type_text(self, text: str, layout: str, gap: float = 0.004, gs: str = "ctrl") -> None:
        """Type ``text``; GS (FNC1) as Ctrl+] (US keyboards) or Alt+0,2,9 on the keypad."""
        lay = get_layout(layout)
        for char in text:
            if char == GS and gs == "ctrl":
                self.tap(KEY_RIGHTBRACE, gap, ctrl=True)
            elif char == GS:
                self.alt_numpad("029", gap)
            else:
                code, shift, altgr = keystrokes(char, lay)[0]
                self.tap(code, gap, shift=shift, altgr=altgr)

    def alt_numpad(self, number: str, gap: float = 0.004) -> None:
        self.key(KEY_LEFTALT, 1)
        for digit in number:
            self.tap(KP[digit], gap)
        self.key(KEY_LEFTALT, 0)
        self.t += gap

    def suffix(self, suffix: str) -> None:
        keys = {"enter": KEY_ENTER, "tab": KEY_TAB, "kpenter": KEY_KPENTER}
        if suffix in keys:
            self.tap(keys[suffix], 0.004)


def save(name: str, typist: Typist, expected: list[str], layout: str, suffix: str,
         device: str = "Generic USB scanner (keyboard wedge)") -> None:  # fmt: skip
    rec = EvemuRecording(
        name=device, bus=3, vendor=0x0C2E, product=0x0B61, version=0x0111,
        hints={"layout": layout, "suffix": suffix}, events=typist.events,
    )  # fmt: skip
    (OUT / f"{name}.evemu").write_text(write_evemu(rec))
    _expect(name, expected)


def _expect(name: str, expected: list[str]) -> None:
    (OUT / f"{name}.expected.json").write_text(json.dumps(expected, ensure_ascii=False) + "\n")


def scans(layout: str, codes: list[str], suffix: str = "enter", pause: float = 0.8,
          gs: str = "ctrl") -> Typist:  # fmt: skip
    typist = Typist()
    for code in codes:
        typist.type_text(code, layout, gs=gs)
        typist.suffix(suffix)
        typist.t += pause
    return typist


def save_stream(name: str, transport: str, hints: dict[str, str],
                chunks: list[tuple[float, str, bytes]], expected: list[str]) -> None:  # fmt: skip
    rec = SerialRecording(hints={"transport": transport, **hints}, chunks=chunks)
    (OUT / f"{name}.{transport}").write_text(write_serial(rec))
    _expect(name, expected)


def notifications(data: bytes, at: float, size: int = 20) -> list[tuple[float, str, bytes]]:
    """``data`` as a BLE scanner notifies it: ATT_MTU - 3 bytes a packet, ~7.5 ms apart."""
    return [(at + i * 0.0075, "<", data[s : s + size])
            for i, s in enumerate(range(0, len(data), size))]  # fmt: skip


# EAN-13, a scale label (bananas, 1234 g), a customer card, a receipt (for a refund).
CODES = ["4006381333931", "2100002012341", "CUST4711", "RCPTR1-000001"]
GS1 = f"]C10104012345000009{GS}10LOT-7{GS}3103000250"  # GTIN, batch, net weight 250 g


def keyboard_recordings() -> None:
    for layout in ("us", "uk", "de", "fr", "es", "it"):
        save(f"{layout}-enter", scans(layout, CODES), CODES, layout, "enter")
    save("us-tab", scans("us", ["5449000000996", "BAG"], "tab"), ["5449000000996", "BAG"],
         "us", "tab")  # fmt: skip
    save("uk-kpenter", scans("uk", ["7622210449283", "CUST0815"], "kpenter"),
         ["7622210449283", "CUST0815"], "uk", "enter")  # fmt: skip
    save("de-none", scans("de", ["4001686301265", "zyZY-09"], "none"),
         ["4001686301265", "zyZY-09"], "de", "none")  # fmt: skip
    # AIM identifiers: EAN-13, UPC-E, EAN-8, Code 39.
    aim = ["]E04006381333931", "]E004252614", "]E401234565", "]A0ABC-123"]
    save("us-aim", scans("us", aim), aim, "us", "enter")
    save("us-gs1-ctrl", scans("us", [GS1]), [GS1], "us", "enter")
    typist = Typist()
    typist.type_text("]C1010401234500000910LOT7", "us")
    typist.alt_numpad("029")
    typist.type_text("3103000250", "us")
    typist.suffix("enter")
    save("us-gs1-altnumpad", typist, [f"]C1010401234500000910LOT7{GS}3103000250"], "us", "enter")
    # GS1 DataMatrix on a German keyboard: "]" is AltGr+9, FNC1 as Alt+029.
    datamatrix = f"]d2010950110102091717251231{GS}10B-47{GS}21SN0001"
    save("de-gs1-datamatrix", scans("de", [datamatrix], gs="alt"), [datamatrix], "de", "enter")
    # Scale labels on a French keyboard (digits need Shift): 1234 g of apples, 3.49 label.
    labels = ["2100001012342", "2300005003494"]
    save("fr-scale-labels", scans("fr", labels), labels, "fr", "enter")
    # AltGr characters: "#" and "@" on French, "@" and "€"-free data on Spanish.
    save("fr-altgr", scans("fr", ["REF#12@A"]), ["REF#12@A"], "fr", "enter")
    save("es-altgr", scans("es", ["LOTE#7@B|2"]), ["LOTE#7@B|2"], "es", "enter")
    # A scanner left in Caps Lock: letters come out upper case, digits unchanged.
    typist = Typist()
    typist.tap(KEY_CAPSLOCK, 0.004)
    for char in "abc-123":
        code, _, _ = keystrokes(char, get_layout("us"))[0]
        typist.tap(code, 0.004)
    typist.suffix("enter")
    save("us-capslock", typist, ["ABC-123"], "us", "enter")
    # A person typing on the same keyboard between two scans: never a scan.
    typist = scans("us", ["4006381333931"])
    for i, char in enumerate("hello world"):
        typist.type_text(char, "us", gap=0.12 + 0.05 * (i % 3))
    typist.tap(KEY_ENTER, 0.5)
    for char in "7622210449283":  # a person keying a barcode's digits, quickly
        typist.type_text(char, "us", gap=0.09)
    typist.tap(KEY_ENTER, 0.5)
    typist.type_text("4006381333931", "us")
    typist.suffix("enter")
    save("us-human-typing", typist, ["4006381333931", "4006381333931"], "us", "enter")
    # Key repeat (value 2) in the middle of a scan is ignored.
    typist = Typist()
    typist.type_text("40063813", "us")
    typist.key(4, 1)  # KEY_3 down, held: the kernel repeats it
    for _ in range(3):
        typist.t += 0.003
        typist.key(4, 2)
    typist.t += 0.002
    typist.key(4, 0)
    typist.t += 0.004
    typist.type_text("3931", "us")
    typist.suffix("enter")
    save("us-key-repeat", typist, ["4006381333931"], "us", "enter")


def stream_recordings() -> None:
    save_stream("serial-cr", "serial", {"terminator": "cr", "baud": "9600"}, [
        (0.0, "<", b"4006381333931\r"),
        (0.5, "<", b"40016863"),
        (0.502, "<", b"01265\r"),
        (1.0, "<", b"\x00\xff\x07\r"),  # line noise: never a scan
        (1.5, "<", b"BAG\r"),
    ], ["4006381333931", "4001686301265", "BAG"])  # fmt: skip
    save_stream("serial-crlf-gs1", "serial", {"terminator": "crlf", "ack_nak": "true"}, [
        (0.0, "<", b"]C10104012345000009\x1d10LOT-7\r\n"), (0.001, ">", b"\x06"),
        (0.8, "<", b"\x15\x02garbage\r\n"), (0.801, ">", b"\x15"),  # NAK'd, not a product
        (1.6, "<", b"2100001012342\r\n"), (1.601, ">", b"\x06"),
    ], ["]C10104012345000009\x1d10LOT-7", "2100001012342"])  # fmt: skip
    save_stream("serial-lf-aim", "serial", {"terminator": "lf", "baud": "115200"}, [
        (0.0, "<", b"]E04006381333931\n]E401234565\n"),  # two scans in one read
        (0.7, "<", b"]C1010401234500000910AB"), (0.701, "<", b"\x1d3922499\n"),
    ], ["]E04006381333931", "]E401234565", "]C1010401234500000910AB\x1d3922499"])  # fmt: skip
    save_stream("serial-none", "serial", {"terminator": "none"}, [
        (0.0, "<", b"40063813"), (0.004, "<", b"33931"),  # one scan in two reads
        (0.6, "<", b"BAG"),
        (1.2, "<", b"5449000000996"),
    ], ["4006381333931", "BAG", "5449000000996"])  # fmt: skip
    nus = {"terminator": "cr", "characteristic": NUS_TX}
    save_stream("ble-nus-cr", "ble", nus, [
        *notifications(b"4006381333931\r", 0.0),
        *notifications(f"{GS1}\r".encode(), 0.6),  # 37 bytes: two notifications
        *notifications(b"CUST4711\r", 1.2),
    ], ["4006381333931", GS1, "CUST4711"])  # fmt: skip
    hm10 = {"terminator": "crlf", "characteristic": "0000ffe1-0000-1000-8000-00805f9b34fb",
            "service": "0000ffe0-0000-1000-8000-00805f9b34fb"}  # fmt: skip
    save_stream("ble-hm10-crlf", "ble", hm10, [
        *notifications(b"]E05449000000996\r\n", 0.0),
        (0.5, "<", b"\x01\x02\xfe\r\n"),  # radio noise: never a scan
        *notifications(b"]E02100002012341\r\n", 1.0),
    ], ["]E05449000000996", "]E02100002012341"])  # fmt: skip


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    keyboard_recordings()
    stream_recordings()


if __name__ == "__main__":
    main()

"""Generate the scanner recording library in hil/recordings/scanners (deterministic).

Run `python -m hil.make_recordings` after changing it. The recordings type codes the
way a scanner set to each layout does (keymaps.keystrokes), with scanner timing
(a few ms per key) or human timing (100-300 ms), key repeat, Ctrl+] and Alt+numpad
for GS. Each recording has a `.expected.json` with the scans a correct decoder
must produce; tests also check hand-written events against real layout facts, so
a keymap mistake cannot hide behind the generator.
"""

from __future__ import annotations

import json
from pathlib import Path

from drivers.scanners.keymaps import KEY_ENTER, KEY_TAB, get_layout, keystrokes
from drivers.scanners.wedge import RawEvent
from hil.evemu import EvemuRecording, write_evemu
from hil.serial_recording import SerialRecording, write_serial

OUT = Path(__file__).parent / "recordings" / "scanners"
GS = "\x1d"
KEY_LEFTSHIFT, KEY_RIGHTALT, KEY_LEFTCTRL, KEY_LEFTALT = 42, 100, 29, 56
KEY_RIGHTBRACE = 27
KP = {"0": 82, "1": 79, "2": 80, "3": 81, "4": 75, "5": 76, "6": 77, "7": 71, "8": 72, "9": 73}


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
        self._ev(4, 4, code)  # EV_MSC / MSC_SCAN, as real keyboards send
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

    def type_text(self, text: str, layout: str, gap: float = 0.004) -> None:
        lay = get_layout(layout)
        for char in text:
            if char == GS:
                self.tap(KEY_RIGHTBRACE if layout == "us" else 0, gap, ctrl=True)
                continue
            code, shift, altgr = keystrokes(char, lay)[0]
            self.tap(code, gap, shift=shift, altgr=altgr)

    def alt_numpad(self, number: str, gap: float = 0.004) -> None:
        self.key(KEY_LEFTALT, 1)
        for digit in number:
            self.tap(KP[digit], gap)
        self.key(KEY_LEFTALT, 0)
        self.t += gap


def save(name: str, typist: Typist, expected: list[str], layout: str, suffix: str) -> None:
    rec = EvemuRecording(
        name="Generic USB scanner (keyboard wedge)", bus=3, vendor=0x0C2E, product=0x0B61,
        version=0x0111, hints={"layout": layout, "suffix": suffix}, events=typist.events,
    )  # fmt: skip
    (OUT / f"{name}.evemu").write_text(write_evemu(rec))
    (OUT / f"{name}.expected.json").write_text(json.dumps(expected, ensure_ascii=False) + "\n")


def scans(layout: str, codes: list[str], suffix: str = "enter", pause: float = 0.8) -> Typist:
    typist = Typist()
    for code in codes:
        typist.type_text(code, layout)
        if suffix == "enter":
            typist.tap(KEY_ENTER, 0.004)
        elif suffix == "tab":
            typist.tap(KEY_TAB, 0.004)
        typist.t += pause
    return typist


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    codes = ["4006381333931", "2100002012341", "CUST4711", "RCPT-R1-000042"]
    for layout in ("us", "uk", "de", "fr", "es", "it"):
        save(f"{layout}-enter", scans(layout, codes), codes, layout, "enter")
    save(
        "us-tab",
        scans("us", ["5449000000996", "BAG"], "tab"),
        ["5449000000996", "BAG"],
        "us",
        "tab",
    )
    save("de-none", scans("de", ["4001686301265", "zyZY-09"], "none"), ["4001686301265", "zyZY-09"],
         "de", "none")  # fmt: skip
    save("us-aim", scans("us", ["]E04006381333931", "]E00425261"]),
         ["]E04006381333931", "]E00425261"], "us", "enter")  # fmt: skip
    gs1 = f"]C10104012345000009{GS}10LOT-7{GS}3103000250"
    save("us-gs1-ctrl", scans("us", [gs1]), [gs1], "us", "enter")
    typist = Typist()
    typist.type_text("]C1010401234500000910LOT7", "us")
    typist.alt_numpad("029")
    typist.type_text("3103000250", "us")
    typist.tap(KEY_ENTER, 0.004)
    save("us-gs1-altnumpad", typist, [f"]C1010401234500000910LOT7{GS}3103000250"], "us", "enter")
    save("fr-scale-labels", scans("fr", ["2100001012348", "2300005003495"]),
         ["2100001012348", "2300005003495"], "fr", "enter")  # fmt: skip
    # A person typing on the same keyboard between two scans: never a scan.
    typist = scans("us", ["4006381333931"])
    for i, char in enumerate("hello world"):
        typist.type_text(char, "us", gap=0.12 + 0.05 * (i % 3))
    typist.tap(KEY_ENTER, 0.5)
    typist.type_text("4006381333931", "us")
    typist.tap(KEY_ENTER, 0.004)
    save("us-human-typing", typist, ["4006381333931", "4006381333931"], "us", "enter")
    # Key repeat (value 2) in the middle of a scan is ignored.
    typist = Typist()
    typist.type_text("40063813", "us")
    typist.key(7, 1)  # KEY_6 down
    for _ in range(3):
        typist.t += 0.003
        typist.key(7, 2)
    typist.t += 0.002
    typist.key(7, 0)
    typist.t += 0.004
    typist.type_text("3931", "us")
    typist.tap(KEY_ENTER, 0.004)
    save("us-key-repeat", typist, ["400638136" + "3931"], "us", "enter")

    serial = SerialRecording(hints={"terminator": "cr"})
    serial.chunks = [
        (0.0, "<", b"4006381333931\r"),
        (0.5, "<", b"40016863"),
        (0.502, "<", b"01265\r"),
        (1.0, "<", b"\x00\xff\x07\r"),  # line noise: never a scan
        (1.5, "<", b"BAG\r"),
    ]
    (OUT / "serial-cr.serial").write_text(write_serial(serial))
    (OUT / "serial-cr.expected.json").write_text(
        json.dumps(["4006381333931", "4001686301265", "BAG"]) + "\n"
    )
    serial = SerialRecording(hints={"terminator": "crlf"})
    serial.chunks = [(0.0, "<", b"]C10104012345000009\x1d10LOT-7\r\n"), (0.001, ">", b"\x06")]
    (OUT / "serial-crlf-gs1.serial").write_text(write_serial(serial))
    (OUT / "serial-crlf-gs1.expected.json").write_text(
        json.dumps(["]C10104012345000009\x1d10LOT-7"]) + "\n"
    )


if __name__ == "__main__":
    main()

"""Keyboard layouts as scanners type them: evdev key codes → characters.

A keyboard-wedge scanner does not send characters; it presses keys, choosing them
for the layout it is configured for. A scanner set to French presses Shift+KEY_1
for "1". So the register decodes with the scanner's layout, never the host's.

Each layout lists four physical rows (evdev codes below) as the characters of the
plain, Shift and AltGr levels. Caps Lock shifts letters only (keys whose two levels
are the lower and upper case of one letter), as on Linux.
"""

from __future__ import annotations

from dataclasses import dataclass

# Physical rows (evdev key codes) of a 105-key ISO keyboard.
ROW0 = (41, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)  # ` 1 … 0 - =
ROW1 = (16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27)  # q … p [ ]
ROW2 = (30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 43)  # a … l ; ' \ (ISO #)
ROW3 = (86, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53)  # ISO < z … m , . /

KEY_ENTER, KEY_KPENTER, KEY_TAB, KEY_SPACE = 28, 96, 15, 57
KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_CAPSLOCK = 42, 54, 58
KEY_LEFTCTRL, KEY_RIGHTCTRL, KEY_LEFTALT, KEY_RIGHTALT = 29, 97, 56, 100
SHIFTS = {KEY_LEFTSHIFT, KEY_RIGHTSHIFT}
CTRLS = {KEY_LEFTCTRL, KEY_RIGHTCTRL}
# Keypad: digits and operators (scanners use them for Alt+numpad codes too).
KEYPAD = {82: "0", 79: "1", 80: "2", 81: "3", 75: "4", 76: "5", 77: "6", 71: "7", 72: "8",
          73: "9", 83: ".", 74: "-", 78: "+", 55: "*", 98: "/"}  # fmt: skip


@dataclass(frozen=True)
class Layout:
    name: str
    plain: dict[int, str]
    shift: dict[int, str]
    altgr: dict[int, str]

    def char(self, code: int, shift: bool, altgr: bool, caps: bool) -> str | None:
        if code == KEY_SPACE:
            return " "
        if code in KEYPAD:
            return KEYPAD[code]
        if altgr:
            return self.altgr.get(code)
        plain = self.plain.get(code)
        shifted = self.shift.get(code)
        if caps and plain and shifted and plain.isalpha() and shifted == plain.upper():
            shift = not shift
        return shifted if shift else plain


def _layout(name: str, rows: list[tuple[str, str]], altgr: dict[str, str]) -> Layout:
    plain: dict[int, str] = {}
    shift: dict[int, str] = {}
    for codes, (lower, upper) in zip((ROW0, ROW1, ROW2, ROW3), rows, strict=True):
        if not (len(codes) == len(lower) == len(upper)):
            raise ValueError(f"layout {name}: row of {len(codes)} keys has {len(lower)} chars")
        for code, a, b in zip(codes, lower, upper, strict=True):
            plain[code] = a
            shift[code] = b
    by_plain = {v: k for k, v in plain.items()}
    alt = {by_plain[key]: value for key, value in altgr.items()}
    return Layout(name, plain, shift, alt)


LAYOUTS: dict[str, Layout] = {
    "us": _layout(
        "us",
        [("`1234567890-=", "~!@#$%^&*()_+"), ("qwertyuiop[]", "QWERTYUIOP{}"),
         ("asdfghjkl;'\\", 'ASDFGHJKL:"|'), ("\\zxcvbnm,./", "|ZXCVBNM<>?")],
        {},
    ),
    "uk": _layout(
        "uk",
        [("`1234567890-=", '¬!"£$%^&*()_+'), ("qwertyuiop[]", "QWERTYUIOP{}"),
         ("asdfghjkl;'#", "ASDFGHJKL:@~"), ("\\zxcvbnm,./", "|ZXCVBNM<>?")],
        {"4": "€", "`": "¦"},
    ),
    "de": _layout(
        "de",
        [("^1234567890ß´", '°!"§$%&/()=?`'), ("qwertzuiopü+", "QWERTZUIOPÜ*"),
         ("asdfghjklöä#", "ASDFGHJKLÖÄ'"), ("<yxcvbnm,.-", ">YXCVBNM;:_")],
        {"2": "²", "3": "³", "7": "{", "8": "[", "9": "]", "0": "}", "ß": "\\", "q": "@",
         "e": "€", "+": "~", "<": "|", "m": "µ"},
    ),
    "fr": _layout(
        "fr",
        [("²&é\"'(-è_çà)=", "²1234567890°+"), ("azertyuiop^$", "AZERTYUIOP¨£"),
         ("qsdfghjklmù*", "QSDFGHJKLM%µ"), ("<wxcvbn,;:!", ">WXCVBN?./§")],
        {"é": "~", '"': "#", "'": "{", "(": "[", "-": "|", "è": "`", "_": "\\", "ç": "^",
         "à": "@", ")": "]", "=": "}", "e": "€", "$": "¤"},
    ),
    "es": _layout(
        "es",
        [("º1234567890'¡", 'ª!"·$%&/()=?¿'), ("qwertyuiop`+", "QWERTYUIOP^*"),
         ("asdfghjklñ´ç", "ASDFGHJKLÑ¨Ç"), ("<zxcvbnm,.-", ">ZXCVBNM;:_")],
        {"º": "\\", "1": "|", "2": "@", "3": "#", "4": "~", "6": "¬", "e": "€", "`": "[",
         "+": "]", "´": "{", "ç": "}"},
    ),
    "it": _layout(
        "it",
        [("\\1234567890'ì", '|!"£$%&/()=?^'), ("qwertyuiopè+", "QWERTYUIOPé*"),
         ("asdfghjklòàù", "ASDFGHJKLç°§"), ("<zxcvbnm,.-", ">ZXCVBNM;:_")],
        {"e": "€", "è": "[", "+": "]", "ò": "@", "à": "#"},
    ),
}  # fmt: skip


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(
            f"unknown keyboard layout {name!r}: use one of {', '.join(LAYOUTS)}"
        ) from None


def keystrokes(text: str, layout: Layout) -> list[tuple[int, bool, bool]]:
    """How a scanner set to ``layout`` types ``text``: (code, shift, altgr) per char.

    Used to make recordings and to drive virtual keyboards. GS (FNC1) is no key of
    any layout: scanners send it as Ctrl+] or Alt+0,2,9 (see hil/make_recordings.py),
    so it is refused here like any other character the layout cannot type.
    """
    where: dict[str, tuple[int, bool, bool]] = {}
    for table, shift, altgr in ((layout.altgr, False, True), (layout.shift, True, False),
                                (layout.plain, False, False)):  # fmt: skip
        for code, char in table.items():
            where[char] = (code, shift, altgr)
    where[" "] = (KEY_SPACE, False, False)
    out = []
    for char in text:
        if char not in where:
            raise ValueError(f"{char!r} cannot be typed on the {layout.name} layout")
        out.append(where[char])
    return out

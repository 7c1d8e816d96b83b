"""Characters to QEMU key events (qcodes) as a US-layout keyboard-wedge scanner types them.

Each character becomes one QMP ``input-send-event`` batch: Shift down if needed, the
key down and up, Shift up. A character the layout cannot type is refused by name.
"""

from __future__ import annotations

import string
from typing import Any

_PLAIN = {c: c for c in string.ascii_lowercase + string.digits}
_PLAIN.update({"-": "minus", "=": "equal", "[": "bracket_left", "]": "bracket_right",
               "\\": "backslash", ";": "semicolon", "'": "apostrophe", "`": "grave_accent",
               ",": "comma", ".": "dot", "/": "slash", " ": "spc", "\n": "ret",
               "\t": "tab"})  # fmt: skip
_SHIFTED = {c.upper(): c for c in string.ascii_lowercase}
_SHIFTED.update(dict(zip(")!@#$%^&*(", "0123456789", strict=True)))
_SHIFTED.update({"_": "minus", "+": "equal", "{": "bracket_left", "}": "bracket_right",
                 "|": "backslash", ":": "semicolon", '"': "apostrophe", "~": "grave_accent",
                 "<": "comma", ">": "dot", "?": "slash"})  # fmt: skip


def _key(qcode: str, down: bool) -> dict[str, Any]:
    return {"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": qcode}}}


def key_events(text: str) -> list[list[dict[str, Any]]]:
    """One batch of QMP input events per character of ``text``."""
    batches = []
    for pos, char in enumerate(text):
        if char in _PLAIN:
            batches.append([_key(_PLAIN[char], True), _key(_PLAIN[char], False)])
        elif char in _SHIFTED:
            key = _SHIFTED[char]
            batches.append([_key("shift", True), _key(key, True), _key(key, False),
                            _key("shift", False)])  # fmt: skip
        else:
            raise ValueError(f"character {char!r} at {pos} cannot be typed on a US keyboard")
    return batches

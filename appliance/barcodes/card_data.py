"""Recognise payment-card magnetic-stripe data arriving through a scanner input.

A keyboard-wedge card reader types like a scanner, so track data can reach the barcode
parser. It must never be echoed, logged or looked up: the parser refuses it and
replaces the text with a marker.
"""

from __future__ import annotations

import re

REDACTED = "<redacted>"

# Track 1: "%B" PAN "^" NAME "^" …; track 2: ";" PAN "=" YYMM …. Sentinels are optional
# because some readers strip them.
_TRACK_RE = re.compile(r"[Bb]\d{12,19}\^|\d{12,19}=\d{4}")


def looks_like_track_data(text: str) -> bool:
    return _TRACK_RE.search(text) is not None

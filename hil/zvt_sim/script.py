"""Scripted outcomes of the simulated terminal.

An ``Outcome`` says how the next payment (authorization or refund) ends; the
terminal takes them in order from its queue and falls back to its default
(approve). ``parse_outcome`` reads the CLI/control-channel spelling:

    approve | decline[:CODE] | abort | no-answer | hang | disconnect[:after-approval]
    optional ",pin=SECONDS" (PIN entry delay with intermediate statuses),
    ",ignore-abort" (the terminal ignores 06 B0 from the register) and
    ",entry=chip|contactless|swipe|keyed" (how the customer presents the card), e.g.
    "decline:05,pin=1.5", "approve,pin=0.3,ignore-abort" or "approve,entry=swipe".
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("approve", "decline", "abort", "no-answer", "hang", "disconnect")
ENTRY_MODES = ("chip", "contactless", "swipe", "keyed")


@dataclass
class Outcome:
    kind: str = "approve"
    result_code: int = 0x05  # for decline
    pin_delay: float = 0.0
    status_interval: float = 0.1
    ignore_abort: bool = False
    disconnect_after_approval: bool = False  # disconnect: the host approved, result lost
    entry_mode: str | None = None  # None: the terminal's test card's own entry mode

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown outcome {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.entry_mode is not None and self.entry_mode not in ENTRY_MODES:
            raise ValueError(
                f"unknown entry mode {self.entry_mode!r}; use one of {', '.join(ENTRY_MODES)}"
            )
        if not 0 <= self.result_code <= 0xFF:
            raise ValueError(f"result code {self.result_code} is not a byte")


def parse_outcome(spec: str) -> Outcome:
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise ValueError("empty outcome")
    head, *opts = parts
    kind, _, arg = head.partition(":")
    out = Outcome(kind=kind)
    if kind == "decline" and arg:
        out.result_code = int(arg, 16)
    elif kind == "disconnect" and arg:
        if arg != "after-approval":
            raise ValueError(f"disconnect takes ':after-approval', not {arg!r}")
        out.disconnect_after_approval = True
    elif arg:
        raise ValueError(f"outcome {kind!r} takes no argument")
    for opt in opts:
        key, _, val = opt.partition("=")
        if key == "pin":
            out.pin_delay = float(val)
        elif key == "interval":
            out.status_interval = float(val)
        elif key == "ignore-abort":
            out.ignore_abort = True
        elif key == "entry":
            out.entry_mode = val
        else:
            raise ValueError(f"unknown outcome option {key!r}")
    out.__post_init__()
    return out


@dataclass
class TestCard:
    """The card the simulated customer presents; only its masked form goes on the wire."""

    pan: str = "5413330089020011"  # a Luhn-valid test number
    expiry_yymm: str = "2812"
    card_type: int = 6  # ZVT card type 6 = Mastercard
    card_name: str = "Mastercard"
    entry_mode: str = "chip"  # chip | contactless | swipe | keyed
    sequence_no: int = 1

    def masked_nibbles(self) -> str:
        """First 6 and last 4 digits, E for the rest (how terminals mask BMP 22)."""
        p = self.pan
        return p[:6] + "E" * (len(p) - 10) + p[-4:]

    def masked(self) -> str:
        p = self.pan
        return p[:6] + "*" * (len(p) - 10) + p[-4:]


@dataclass
class OfflineLimits:
    """The terminal's own store-and-forward limits while its host link is down."""

    max_amount: int = 5000
    max_count: int = 20
    max_total: int = 50000
    entry_modes: tuple[str, ...] = ("chip", "contactless")
    decline_code: int = 0x9B  # "error from dial-up / communication fault"


@dataclass
class SerialFaults:
    """Line faults the simulator injects on the next frames (serial only)."""

    corrupt: int = 0  # next N outgoing frames go out once with a bad CRC
    nak: int = 0  # NAK the next N good frames from the register
    garbage: bytes = b""  # noise written before each outgoing frame (while > 0 frames)
    garbage_frames: int = 0
    truncate: int = 0  # next N outgoing frames: first a cut-off half, then the frame
    _used: dict[str, int] = field(default_factory=dict)

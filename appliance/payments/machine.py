"""The payment state machine: which states exist and which changes are allowed.

    requested ──► in_progress ──► approved | declined | aborted
        │              │
        └─► aborted    └─► unknown ──► approved | declined | aborted

- requested: the register accepted the request (limits checked) and waits for the
  terminal (payments are serialized per terminal); nothing has been sent yet.
- in_progress: written durably just before the first byte goes to the terminal.
- unknown: the terminal vanished mid-payment (link lost, silence past the timeouts,
  a crash of the register). It is resolved with the terminal (status enquiry, its last
  transaction, a reversal when needed) before the sale may take any other tender.
- approved: the terminal approved; a card tender exists for it (or it was reversed).
  ``offline`` approvals carry a forward state: pending → forwarded | declined.
- declined / aborted: no money moved (a refused offline approval was reversed first).
"""

from __future__ import annotations

from appliance.errors import Conflict

REQUESTED = "requested"
IN_PROGRESS = "in_progress"
APPROVED = "approved"
DECLINED = "declined"
ABORTED = "aborted"
UNKNOWN = "unknown"

STATES = (REQUESTED, IN_PROGRESS, APPROVED, DECLINED, ABORTED, UNKNOWN)
FINAL = (APPROVED, DECLINED, ABORTED)
# A sale with a payment in one of these states takes no other tender and no edits.
ACTIVE = (REQUESTED, IN_PROGRESS, UNKNOWN)

TRANSITIONS: dict[str, tuple[str, ...]] = {
    REQUESTED: (IN_PROGRESS, ABORTED),
    IN_PROGRESS: (APPROVED, DECLINED, ABORTED, UNKNOWN),
    UNKNOWN: (APPROVED, DECLINED, ABORTED),
    APPROVED: (),
    DECLINED: (),
    ABORTED: (),
}

# Forward states of an offline approval.
PENDING = "pending"
FORWARDED = "forwarded"
FORWARD_DECLINED = "declined"


def check_transition(payment_id: str, old: str, new: str) -> None:
    if new not in TRANSITIONS.get(old, ()):
        raise Conflict(
            f"payment {payment_id} is {old}: it cannot become {new}", field="state", state=old
        )

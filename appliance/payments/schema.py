"""Tables of the payments feature (schema migration 3, registered in appliance/storage/db.py).

``payments`` holds one row per conversation with the card terminal that moves money
(a payment, a refund to a card, a reversal). The row is written before the terminal
is asked, so a crash mid-payment leaves a row in ``in_progress`` that the register
resolves with the terminal on restart. Card data is the masked PAN only.
"""

from __future__ import annotations

import sqlite_utils


def create(db: sqlite_utils.Database) -> None:
    """Create this feature's tables; runs once, inside the migration's transaction."""
    db.create_table(
        "payments",
        {
            "id": str,
            "sale_id": str,  # the sale (payment) or the refund sale (refund, reversal)
            "kind": str,  # payment | refund | reversal
            "original_id": str,  # refund/reversal: the payment whose money goes back
            "amount": int,  # minor units, positive
            "currency": int,  # ISO 4217 numeric
            "state": str,  # see appliance/payments/machine.py
            "message": str,  # what the cashier is told (result text, refusal, resolution)
            "result_code": int,
            "terminal": str,  # the configured terminal address
            "terminal_id": str,  # the terminal's TID (BMP 29)
            "receipt_no": int,  # the terminal's receipt number (BMP 87)
            "trace": int,
            "turnover_no": int,
            "auth_code": str,
            "card_name": str,
            "pan_masked": str,
            "entry_mode": str,
            "card_type": int,
            "slip": str,  # JSON list of slip lines as the terminal sent them (PAN-scrubbed)
            "offline": int,  # approved by the terminal while its host was offline
            "forward_state": str,  # offline only: pending | forwarded | declined
            "forward_result": int,
            "forwarded_at": str,
            "tender_id": str,  # the sale's tender made from this payment (exactly one)
            "prev_receipt_no": int,  # the terminal's last receipt before this one started
            "override_by": str,  # manager who approved over the offline per-payment max
            "resolution": str,  # how an unknown payment was resolved
            "reversed_by": str,  # the reversal payment that took this one back
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"sale_id", "kind", "amount", "state", "offline", "created_at", "updated_at"},
        defaults={"offline": 0},
    )
    db.execute("CREATE INDEX payments_sale ON payments(sale_id)")
    db.execute("CREATE INDEX payments_state ON payments(state)")
    db.execute("CREATE INDEX payments_forward ON payments(forward_state)")
    db.execute("CREATE UNIQUE INDEX payments_tender ON payments(tender_id)")
    # Every state change, for people reconstructing what happened at the counter.
    db.create_table(
        "payment_events",
        {"id": int, "payment_id": str, "at": str, "state": str, "message": str},
        pk="id",
        not_null={"payment_id", "at", "state"},
    )
    db.execute("CREATE INDEX payment_events_payment ON payment_events(payment_id, id)")
    # The terminal's end-of-day runs (at shift close or by hand) with their totals.
    db.create_table(
        "terminal_eod",
        {"id": int, "at": str, "shift_id": str, "ok": int, "result": str},
        pk="id",
        not_null={"at", "ok", "result"},
    )
    # Small facts that must survive restarts: when offline acceptance was switched on,
    # since when the register has been offline.
    db.create_table("payment_meta", {"key": str, "value": str}, pk="key", not_null={"value"})

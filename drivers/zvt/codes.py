"""Code tables from the ZVT specification: result codes and intermediate statuses.

Result codes 01–63 come from the card issuer/host (ISO 8583 response codes); the
common ones are named, the rest say "declined by the card issuer (code N)".
"""

from __future__ import annotations

RESULT_CODES: dict[int, str] = {
    0x00: "approved",
    0x64: "card not readable",
    0x65: "card data not present",
    0x66: "processing error",
    0x67: "function not permitted for girocard/Maestro cards",
    0x68: "function not permitted for credit and fuel cards",
    0x6A: "turnover file full",
    0x6B: "function deactivated (terminal not registered)",
    0x6C: "aborted (timeout or abort key)",
    0x6E: "card on the blocked list",
    0x6F: "wrong currency",
    0x71: "credit not sufficient (chip card)",
    0x72: "chip error",
    0x73: "card data incorrect",
    0x74: "DUKPT engine exhausted",
    0x75: "text not authentic",
    0x76: "PAN not in white list",
    0x77: "end-of-day batch not possible",
    0x78: "card expired",
    0x79: "card not yet valid",
    0x7A: "card unknown",
    0x7B: "fallback to magnetic stripe not possible for girocard",
    0x7C: "fallback to magnetic stripe not possible",
    0x7D: "communication error (communication module does not answer)",
    0x7E: "fallback to magnetic stripe not possible, debit advice possible",
    0x83: "function not possible",
    0x85: "key missing",
    0x89: "PIN pad defective",
    0x9A: "ZVT protocol error",
    0x9B: "error from dial-up / communication fault",
    0x9C: "please wait",
    0xA0: "receiver not ready",
    0xA1: "remote station does not respond",
    0xA3: "no connection",
    0xA4: "submission of Geldkarte not possible",
    0xB1: "memory full",
    0xB2: "merchant journal full",
    0xB4: "already reversed",
    0xB5: "reversal not possible",
    0xB7: "pre-authorisation incorrect (amount too high) or amount wrong",
    0xB8: "error pre-authorisation",
    0xBF: "voltage supply too low",
    0xC0: "card locking mechanism defective",
    0xC1: "merchant card locked",
    0xC2: "diagnosis required",
    0xC3: "maximum amount exceeded",
    0xC4: "card profile invalid",
    0xC5: "payment method not supported",
    0xC6: "currency not applicable",
    0xC8: "amount too small",
    0xC9: "maximum transaction amount too small",
    0xCB: "function only allowed in EURO",
    0xCC: "printer not ready",
    0xCD: "cashback not possible",
    0xD2: "function not permitted for service cards",
    0xDC: "card inserted",
    0xDD: "error during card eject",
    0xDE: "error during card insertion",
    0xE0: "remote maintenance activated",
    0xE2: "card reader does not answer / is defective",
    0xE3: "shutter closed",
    0xE4: "terminal activation required",
    0xE7: "at least one goods group not found",
    0xE8: "no goods groups table loaded",
    0xE9: "restriction code not permitted",
    0xEA: "card code not permitted",
    0xEB: "function not executable (PIN algorithm unknown)",
    0xEC: "PIN processing not possible",
    0xED: "PIN pad defective",
    0xF0: "open end-of-day batch present",
    0xF1: "offline error (girocard/Maestro)",
    0xF5: "OPT error",
    0xF6: "OPT data not available",
    0xFA: "error transmitting offline transactions (clearing error)",
    0xFB: "turnover data set defective",
    0xFC: "necessary device not present or defective",
    0xFD: "baud rate not supported",
    0xFE: "register unknown",
    0xFF: "system error",
}

# 01–63: the host/issuer's own decline codes; ZVT passes them through.
ISSUER_CODES: dict[int, str] = {
    0x05: "declined (do not honour)",
}


def result_message(code: int) -> str:
    if code in RESULT_CODES:
        return RESULT_CODES[code]
    if 0x01 <= code <= 0x63:
        name = ISSUER_CODES.get(code, "declined")
        return f"{name} by the card issuer (code {code:02X})"
    return f"unknown result code {code:02X}"


INTERMEDIATE_STATUS: dict[int, str] = {
    0x00: "waiting for amount confirmation",
    0x01: "please watch PIN pad",
    0x02: "please watch PIN pad",
    0x03: "not accepted",
    0x04: "waiting for response from the host",
    0x05: "sending auto-reversal",
    0x06: "sending post-bookings",
    0x07: "card not admitted",
    0x08: "card unknown / undefined",
    0x09: "expired card",
    0x0A: "insert card",
    0x0B: "please remove card",
    0x0C: "card not readable",
    0x0D: "processing error",
    0x0E: "please wait",
    0x0F: "terminal starts an automatic end-of-day batch",
    0x10: "invalid card",
    0x11: "balance display",
    0x12: "system malfunction",
    0x13: "payment not possible",
    0x14: "credit not sufficient",
    0x15: "incorrect PIN",
    0x16: "limit not sufficient",
    0x17: "please wait",
    0x18: "PIN try limit exceeded",
    0x19: "card data incorrect",
    0x1A: "service mode",
    0x1B: "approved, please fill up",
    0x1C: "approved, please take goods",
    0x1D: "declined",
    0x26: "please wait",
    0x41: "please watch PIN pad, remove card",
    0x43: "not accepted, remove card",
    0x4B: "please remove card",
    0x4C: "card not readable, remove card",
    0x52: "please wait",
    0x53: "sending post-bookings, remove card",
    0x54: "contactless: present card",
    0x55: "contactless: card read, remove card",
}


def intermediate_text(status: int) -> str:
    return INTERMEDIATE_STATUS.get(status, f"terminal status {status:02X}")


NEGATIVE_ACK: dict[int, str] = {
    0x83: "function not possible",
    0x9C: "repeat the command later (terminal busy)",
}


def negative_ack_message(code: int) -> str:
    return NEGATIVE_ACK.get(code) or RESULT_CODES.get(code) or f"error {code:02X}"

"""Async ZVT client: the register's side of a terminal conversation.

ZVT is master/slave. The register sends a command; the terminal acknowledges it
(80 00) within T3 and becomes master: it sends intermediate statuses (04 FF), status
information (04 0F, the result and card details), print lines (06 D1) or text blocks
(06 D3, the card slip) and ends with completion (06 0F) or abort (06 1E). The register
acknowledges every one of those with 80 00; to abort a running payment it answers an
intermediate status with 06 B0 instead (some terminals ignore that, and the payment
simply completes).

What leaves this module is masked: the decoder shows PANs as first 6 / last 4 digits
and redacts track data, and only decoded fields are logged. When the link breaks in
the middle of a transaction the error carries what was received so far
(``ZvtTransactionInterrupted.partial``), so the caller can resolve the payment with
the terminal (status enquiry, repeat receipt, reversal) instead of guessing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from drivers.zvt import messages as m
from drivers.zvt.apdu import Apdu, data_offset, decode_apdu
from drivers.zvt.codes import intermediate_text, negative_ack_message, result_message
from drivers.zvt.errors import ZvtDecodeError, ZvtError
from drivers.zvt.messages import Decoded, decode_message, print_block_lines, receipt_type
from drivers.zvt.text import DEFAULT_ENCODING
from drivers.zvt.tlv import find_tag
from drivers.zvt.transport import ZvtTransport

log = logging.getLogger("drivers.zvt")

APPROVED = "approved"
DECLINED = "declined"
ABORTED = "aborted"
ACKNOWLEDGED = "acknowledged"
REJECTED = "rejected"  # the terminal refused the command itself (84 xx)

RESULT_ABORTED = 0x6C

# EMV POS entry mode (tag 9F39) → how the card was read.
ENTRY_MODES = {
    0x01: "keyed",
    0x02: "swipe",
    0x05: "chip",
    0x07: "contactless",
    0x80: "swipe",  # magnetic stripe after a failed chip read (fallback)
    0x90: "swipe",
    0x91: "contactless",  # contactless in magnetic-stripe mode
}


@dataclass(frozen=True)
class IntermediateStatus:
    status: int
    text: str


StatusCallback = Callable[[IntermediateStatus], Awaitable[None] | None]


@dataclass
class SlipReceipt:
    """One printed receipt from the terminal (customer, merchant or administration)."""

    receipt_type: int | None
    lines: list[str] = field(default_factory=list)


@dataclass
class TransactionResult:
    command: str
    outcome: str
    result_code: int
    message: str
    name: str = ""
    amount_minor: int | None = None
    currency: int | None = None
    receipt_no: int | None = None
    trace: int | None = None
    turnover_no: int | None = None
    terminal_id: str | None = None
    card_type: int | None = None
    card_name: str | None = None
    pan_masked: str | None = None
    additional_text: str | None = None
    auth_code: str | None = None  # BMP 3B, the authorisation attribute printed on slips
    entry_mode: str | None = None  # chip | contactless | swipe | keyed (EMV tag 9F39)
    offline: bool = False
    completed: bool = False  # the terminal ended with completion (06 0F), not abort
    status_info: dict[str, Any] = field(default_factory=dict)
    # Every status information in order: one per stored payment for 06 51.
    status_infos: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[IntermediateStatus] = field(default_factory=list)
    receipts: list[SlipReceipt] = field(default_factory=list)
    totals: dict[str, Any] | None = None
    decode_errors: list[str] = field(default_factory=list)
    abort_sent: bool = False

    @property
    def approved(self) -> bool:
        return self.outcome == APPROVED

    @property
    def slip(self) -> list[str]:
        return [line for r in self.receipts for line in r.lines]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ZvtTransactionInterrupted(ZvtError):
    """The link broke or went silent mid-transaction: the payment's result is unknown."""

    code = "zvt_interrupted"

    def __init__(self, message: str, partial: TransactionResult, cause: ZvtError) -> None:
        super().__init__(message)
        self.partial = partial
        self.cause = cause


_COPY_KEYS = (
    "amount_minor",
    "currency",
    "receipt_no",
    "trace",
    "turnover_no",
    "terminal_id",
    "card_type",
    "card_name",
    "pan_masked",
    "additional_text",
)


class ZvtClient:
    def __init__(
        self,
        transport: ZvtTransport,
        password: str = "000000",
        currency: int = m.EUR,
        encoding: str = DEFAULT_ENCODING,
        config: int = m.DEFAULT_CONFIG,
    ) -> None:
        self.transport = transport
        self.password = password
        self.currency = currency
        self.encoding = encoding
        self.config = config
        self.terminal_id: str | None = None
        self._lock = asyncio.Lock()
        self._active = False
        self._abort_requested = False

    @property
    def busy(self) -> bool:
        return self._active

    async def close(self) -> None:
        await self.transport.close()

    # ---- commands ----

    async def register(self, service_byte: int | None = None) -> TransactionResult:
        res = await self._run(
            m.registration(self.password, self.config, self.currency, service_byte)
        )
        if res.terminal_id:
            self.terminal_id = res.terminal_id
        return res

    async def authorize(
        self,
        amount_minor: int,
        currency: int | None = None,
        on_status: StatusCallback | None = None,
        payment_type: int | None = None,
    ) -> TransactionResult:
        apdu = m.authorization(amount_minor, currency or self.currency, payment_type)
        return await self._run(apdu, on_status)

    async def abort(self) -> TransactionResult | None:
        """Ask the terminal to abort: mid-transaction the running call returns the outcome."""
        if self._active:
            self._abort_requested = True
            return None
        return await self._run(m.abort_request(), expect_completion=False)

    async def reversal(
        self, receipt_no: int, on_status: StatusCallback | None = None
    ) -> TransactionResult:
        return await self._run(m.reversal(self.password, receipt_no), on_status)

    async def refund(
        self,
        amount_minor: int,
        currency: int | None = None,
        on_status: StatusCallback | None = None,
    ) -> TransactionResult:
        apdu = m.refund(self.password, amount_minor, currency or self.currency)
        return await self._run(apdu, on_status)

    async def end_of_day(self) -> TransactionResult:
        return await self._run(m.end_of_day(self.password))

    async def status_enquiry(self) -> TransactionResult:
        return await self._run(m.status_enquiry(self.password))

    async def repeat_receipt(self) -> TransactionResult:
        """The last transaction again (result, receipt no, amount): resolves unknown payments."""
        return await self._run(m.repeat_receipt(self.password))

    async def send_offline(self) -> TransactionResult:
        """06 51: the terminal submits its stored offline payments and reports each one
        (``status_infos``: receipt_no, trace, amount_minor, result_code from the host)."""
        return await self._run(m.send_offline_transactions(self.password))

    async def diagnosis(self) -> TransactionResult:
        return await self._run(m.diagnosis())

    async def log_off(self) -> TransactionResult:
        return await self._run(m.log_off(), expect_completion=False)

    # ---- the conversation ----

    def _decode(self, raw: bytes, res: TransactionResult) -> Decoded | None:
        try:
            apdu = decode_apdu(raw)
            return decode_message(apdu, self.encoding, data_offset(raw))
        except ZvtDecodeError as e:
            res.decode_errors.append(str(e))
            log.warning("undecodable terminal message: %s", e)
            return None

    async def _ack(self) -> None:
        await self.transport.send(m.ack().encode())

    async def _run(
        self,
        apdu: Apdu,
        on_status: StatusCallback | None = None,
        expect_completion: bool = True,
    ) -> TransactionResult:
        async with self._lock:
            self._active = expect_completion
            self._abort_requested = False
            name = m.NAMES.get(apdu.control, apdu.command)
            res = TransactionResult(apdu.command, ACKNOWLEDGED, 0, "", name)
            try:
                return await self._converse(apdu, name, res, on_status, expect_completion)
            except ZvtError as e:
                if isinstance(e, ZvtTransactionInterrupted):
                    raise
                raise ZvtTransactionInterrupted(
                    f"{name}: {e.message}; the outcome is unknown until resolved with the terminal",
                    res,
                    e,
                ) from e
            finally:
                self._active = False
                self._abort_requested = False

    async def _converse(
        self,
        apdu: Apdu,
        name: str,
        res: TransactionResult,
        on_status: StatusCallback | None,
        expect_completion: bool,
    ) -> TransactionResult:
        log.info("zvt → %s", name)
        await self.transport.send(apdu.encode())
        t = self.transport.timeouts
        raw = await self.transport.receive(t.t3)
        first = self._decode(raw, res)
        if first is not None:
            ctl = first.control
            if ctl[0] == 0x84:
                code = ctl[1]
                res.outcome, res.result_code = REJECTED, code
                res.message = f"terminal refused {name}: {negative_ack_message(code)}"
                log.info("zvt ← 84 %02X %s", code, res.message)
                return res
            if ctl == (0x80, 0x00):
                first = None  # acknowledged; the terminal is master now
        if not expect_completion:
            res.message = f"{name} acknowledged"
            return res
        pending = first
        while True:
            if pending is None:
                raw = await self.transport.receive(t.t4)
                msg = self._decode(raw, res)
                if msg is None:
                    await self._ack()
                    continue
            else:
                msg, pending = pending, None
            done = await self._handle(msg, res, on_status)
            if done:
                return res

    async def _handle(
        self, msg: Decoded, res: TransactionResult, on_status: StatusCallback | None
    ) -> bool:
        ctl = msg.control
        log.debug("zvt ← %s %s", msg.command, msg.to_json())
        if ctl == (0x04, 0xFF):
            st = IntermediateStatus(msg.fields["status"], intermediate_text(msg.fields["status"]))
            res.statuses.append(st)
            if on_status is not None:
                maybe = on_status(st)
                if maybe is not None:
                    await maybe
            if self._abort_requested and not res.abort_sent:
                res.abort_sent = True
                await self.transport.send(m.abort_request().encode())
            else:
                await self._ack()
            return False
        if ctl == (0x80, 0x00):  # the terminal's acknowledgement of our 06 B0
            return False
        await self._ack()
        if ctl == (0x04, 0x0F):
            res.status_infos.append(dict(msg.fields))
            res.status_info.update(msg.fields)
            self._copy_fields(res, msg)
            return False
        if ctl == (0x06, 0xD1):
            if not res.receipts:
                res.receipts.append(SlipReceipt(None))
            res.receipts[-1].lines.append(msg.fields["text"])
            if msg.fields["attribute"] & 0x80:  # last line of this receipt
                res.receipts.append(SlipReceipt(None))
            return False
        if ctl == (0x06, 0xD3):
            res.receipts.append(
                SlipReceipt(receipt_type(msg.tlv), print_block_lines(msg.tlv, self.encoding))
            )
            return False
        if ctl == (0x06, 0x0F):
            self._copy_fields(res, msg)
            res.completed = True
            if res.command == "06 51":  # each status information is one stored payment
                code = msg.fields.get("result_code", 0)
            else:
                code = res.status_info.get("result_code", msg.fields.get("result_code", 0))
            self._finish(res, APPROVED if code == 0 else DECLINED, code)
            return True
        if ctl == (0x06, 0x1E):
            code = msg.fields["result_code"]
            self._copy_fields(res, msg)
            self._finish(res, ABORTED if code == RESULT_ABORTED else DECLINED, code)
            return True
        log.info("zvt ← unexpected %s during %s (acknowledged)", msg.command, res.command)
        return False

    def _copy_fields(self, res: TransactionResult, msg: Decoded) -> None:
        for key in _COPY_KEYS:
            if key in msg.fields:
                setattr(res, key, msg.fields[key])
        if "aid" in msg.fields:
            res.auth_code = msg.fields["aid"]
        if "individual_totals" in msg.fields:
            res.totals = msg.fields["individual_totals"]
        online = find_tag(msg.tlv, 0x1F11)
        if online is not None and online.value[:1] == b"\x00":
            res.offline = True
        entry = find_tag(msg.tlv, 0x9F39)
        if entry is not None and entry.value:
            res.entry_mode = ENTRY_MODES.get(entry.value[0], f"other ({entry.value[0]:02X})")

    def _finish(self, res: TransactionResult, outcome: str, code: int) -> None:
        res.receipts = [r for r in res.receipts if r.lines]
        res.outcome, res.result_code, res.message = outcome, code, result_message(code)
        log.info(
            "zvt %s: %s (result %02X %s, receipt %s)",
            res.name,
            outcome,
            code,
            res.message,
            res.receipt_no,
        )

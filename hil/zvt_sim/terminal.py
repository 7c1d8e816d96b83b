"""The simulated terminal: ZVT behaviour, journal, host link and store-and-forward.

Python API (tests script it directly; the control channel in server.py maps to it):

    sim = SimTerminal()
    sim.script(parse_outcome("decline:05"), Outcome(kind="approve", pin_delay=0.5))
    sim.set_host_online(False)          # approvals now offline within sim.limits
    sim.forward_results.extend([0x00, 0x05])  # what the host says when forwarding
    sim.set_host_online(True)           # forwards pending offline approvals
    sim.faults.corrupt = 1              # serial: next frame with a bad CRC

Each payment takes the next scripted Outcome (default: approve). The terminal keeps
a journal (receipt no, trace, amount, result, masked PAN, entry mode, offline and
forwarded state) that answers reversal, repeat receipt (the last transaction), status
enquiry, send offline transactions (06 51) and end-of-day. Only the masked PAN (E
nibbles) ever goes on the wire.

Store-and-forward: with the host link down, a payment within ``limits`` (amount,
count, total, entry modes) is approved offline and stored; any other is declined with
``limits.decline_code``. Stored payments are submitted to the host once each (when
the link returns, on 06 51 or at end-of-day), taking their result from
``forward_results`` (default: approved); ``forwarded`` lists every submission, so a
test can see that nothing was submitted twice. A stored payment that is reversed
before it was submitted is cancelled in the terminal and never submitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from drivers.zvt import messages as m
from drivers.zvt.apdu import Apdu, data_offset, decode_apdu
from drivers.zvt.bmp import (
    bmp_bcd,
    bmp_byte,
    bmp_fixed,
    bmp_pan_masked,
    bmp_text,
    bmp_tlv,
    bmp_var,
    encode_totals,
)
from drivers.zvt.codes import result_message
from drivers.zvt.errors import ZvtConnectionLost, ZvtDecodeError, ZvtError, ZvtTimeout
from drivers.zvt.messages import Decoded, decode_message
from drivers.zvt.text import DEFAULT_ENCODING
from drivers.zvt.tlv import primitive
from drivers.zvt.transport import SerialTransport, ZvtTransport
from hil.zvt_sim.script import OfflineLimits, Outcome, SerialFaults, TestCard

log = logging.getLogger("hil.zvt_sim")

STATUS_INSERT_CARD = 0x0A
STATUS_WATCH_PIN_PAD = 0x01
STATUS_WAIT_HOST = 0x04
STATUS_PLEASE_WAIT = 0x0E
STATUS_REMOVE_CARD = 0x0B
STATUS_POST_BOOKINGS = 0x06

# EMV POS entry mode (tag 9F39) of each way to present a card.
POS_ENTRY_MODE = {"chip": 0x05, "contactless": 0x07, "swipe": 0x90, "keyed": 0x01}

_SCHEME = {5: "girocard", 2: "girocard", 6: "eurocard", 10: "visa"}


@dataclass
class Txn:
    kind: str  # payment | refund | reversal
    amount_minor: int
    currency: int
    receipt_no: int
    trace: int
    turnover_no: int
    result_code: int
    pan_masked: str
    card_name: str
    card_type: int
    when: str
    entry_mode: str = "chip"
    offline: bool = False
    forward_result: int | None = None
    reversed: bool = False
    original_receipt: int | None = None

    @property
    def approved(self) -> bool:
        return self.result_code == 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["approved"] = self.approved
        return d


class _Disconnect(Exception):
    pass


class _Aborted(Exception):
    pass


class _RegisterGone(Exception):
    pass


def _money(amount_minor: int) -> str:
    return f"{amount_minor // 100},{amount_minor % 100:02d}"


@dataclass
class SimTerminal:
    terminal_id: str = "52500038"
    password: str = "000000"
    encoding: str = DEFAULT_ENCODING
    card: TestCard = field(default_factory=TestCard)
    limits: OfflineLimits = field(default_factory=OfflineLimits)
    host_online: bool = True
    default_outcome: Outcome = field(default_factory=Outcome)
    reply_timeout: float = 5.0  # wait for the register's 80 00 (T3)
    disconnect_silence: float = 1.0  # serial: how long a "pulled cable" stays silent
    print_blocks: bool = False  # 06 D3 text blocks instead of 06 D1 lines
    vu_number: str = "VU0000000000001"
    leak_clear_pan: bool = False  # a misbehaving terminal: clear PAN in BMP 22 and on slips
    # Submit stored offline payments as soon as the host link returns (False: only
    # when the register asks with 06 51, or at end-of-day).
    forward_on_reconnect: bool = True
    # Drop the link right after submitting stored payments, this many times (the
    # register must ask again and must not cause a second submission).
    drop_after_forward: int = 0

    def __post_init__(self) -> None:
        self.outcomes: deque[Outcome] = deque()
        self.forward_results: deque[int] = deque()
        self.faults = SerialFaults()
        self.journal: list[Txn] = []
        self.forwarded: list[dict[str, Any]] = []
        self.trace_no = 0
        self.receipt_no = 0
        self.turnover_no = 0
        self.batch_from = 1
        self.config_byte = m.DEFAULT_CONFIG
        self.currency = m.EUR
        self.sessions = 0
        self.commands: list[str] = []
        self.aborts_ignored = 0

    # ---- scripting API ----

    def script(self, *outcomes: Outcome) -> None:
        self.outcomes.extend(outcomes)

    def set_host_online(self, online: bool) -> list[dict[str, Any]]:
        """Switch the host link; going online forwards pending offline approvals."""
        self.host_online = online
        return self.forward_pending() if online and self.forward_on_reconnect else []

    def pending_forward(self) -> list[Txn]:
        return [
            t for t in self.journal if t.offline and t.forward_result is None and not t.reversed
        ]

    def forward_pending(self) -> list[dict[str, Any]]:
        if not self.host_online:
            return []
        done = []
        for t in self.pending_forward():
            t.forward_result = self.forward_results.popleft() if self.forward_results else 0
            item = {
                "receipt_no": t.receipt_no,
                "trace": t.trace,
                "amount_minor": t.amount_minor,
                "pan_masked": t.pan_masked,
                "forward_result": t.forward_result,
                "approved": t.forward_result == 0,
                "message": result_message(t.forward_result),
            }
            done.append(item)
        self.forwarded.extend(done)
        return done

    def last_transaction(self) -> Txn | None:
        return self.journal[-1] if self.journal else None

    def state(self) -> dict[str, Any]:
        return {
            "terminal_id": self.terminal_id,
            "host_online": self.host_online,
            "queued_outcomes": len(self.outcomes),
            "pending_forward": len(self.pending_forward()),
            "journal": [t.to_dict() for t in self.journal],
            "forwarded": self.forwarded,
            "sessions": self.sessions,
        }

    # ---- a session on one link ----

    async def serve(self, t: ZvtTransport) -> None:
        """Answer the register on ``t`` until the link closes."""
        self.sessions += 1
        if isinstance(t, SerialTransport):
            t.tx_mangle = self._mangle
            t.nak_hook = self._take_nak
        try:
            while True:
                raw = await t.receive(None)
                try:
                    apdu = decode_apdu(raw)
                    msg = decode_message(apdu, self.encoding, data_offset(raw))
                except ZvtDecodeError as e:
                    log.info("sim: undecodable command (%s), answering 84 9A", e)
                    await t.send(m.nak(0x9A).encode())
                    continue
                self.commands.append(msg.command)
                try:
                    await self._dispatch(t, apdu, msg)
                except _Disconnect:
                    if isinstance(t, SerialTransport):
                        t.muted = True
                        await asyncio.sleep(self.disconnect_silence)
                        t.muted = False
                        t.deframer.abandon("link restored")
                        continue
                    return
                except _RegisterGone:
                    log.info("sim: register stopped answering during %s", msg.command)
        except (ZvtConnectionLost, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                await t.close()

    def _take_nak(self) -> bool:
        """Serial fault: NAK this good frame from the register (``faults.nak`` times)."""
        if self.faults.nak > 0:
            self.faults.nak -= 1
            return True
        return False

    def _mangle(self, frame: bytes, attempt: int) -> bytes:
        f = self.faults
        out = frame
        if attempt == 0 and f.truncate > 0:
            f.truncate -= 1
            out = frame[: max(3, len(frame) // 2)]
        elif attempt == 0 and f.corrupt > 0:
            f.corrupt -= 1
            out = frame[:-1] + bytes([frame[-1] ^ 0xFF])
        if f.garbage_frames > 0:
            f.garbage_frames -= 1
            out = f.garbage + out
        return out

    async def _tell(self, t: ZvtTransport, apdu: Apdu, abortable: bool = False) -> None:
        """Send as master and wait for the register's acknowledgement."""
        await t.send(apdu.encode())
        try:
            raw = await t.receive(self.reply_timeout)
        except ZvtTimeout:
            raise _RegisterGone() from None
        if raw[:2] == b"\x06\xb0":
            if abortable:
                raise _Aborted()
            return
        if raw[:1] == b"\x84":
            log.info("sim: register answered %s", raw.hex(" "))

    async def _dispatch(self, t: ZvtTransport, apdu: Apdu, msg: Decoded) -> None:
        ctl = apdu.control
        f = msg.fields
        needs_password = ((0x06, 0x00), *m.PASSWORD_FIRST)
        if ctl in needs_password and f.get("password") != self.password:
            await t.send(m.nak(0x83).encode())
            return
        if ctl == (0x06, 0x00):
            self.config_byte = f.get("config_byte", self.config_byte)
            self.currency = f.get("currency", self.currency)
            await t.send(m.ack().encode())
            await self._tell(
                t,
                m.completion(
                    bmp_byte(0x19, 0x00),
                    bmp_bcd(0x29, self.terminal_id),
                    bmp_bcd(0x49, self.currency),
                ),
            )
        elif ctl == (0x06, 0x01):
            await self._payment(t, "payment", f.get("amount_minor", 0), f.get("currency", 978))
        elif ctl == (0x06, 0x31):
            await self._payment(t, "refund", f.get("amount_minor", 0), f.get("currency", 978))
        elif ctl == (0x06, 0x30):
            await self._reversal(t, f.get("receipt_no"))
        elif ctl == (0x06, 0x50):
            await self._end_of_day(t)
        elif ctl == (0x06, 0x51):
            await self._send_offline(t)
        elif ctl == (0x05, 0x01):
            await t.send(m.ack().encode())
            await self._tell(t, m.status_information(*self._status_bmps()))
            await self._tell(t, m.completion())
        elif ctl == (0x06, 0x20):
            await self._repeat_receipt(t)
        elif ctl == (0x06, 0x70):
            await t.send(m.ack().encode())
            await self._tell(t, m.intermediate_status(STATUS_WAIT_HOST))
            if not self.host_online:
                await self._tell(t, m.terminal_abort(self.limits.decline_code))
                return
            await self._tell(t, m.status_information(*self._status_bmps()))
            await self._tell(t, m.completion())
        elif ctl in ((0x06, 0x02), (0x06, 0xB0)):
            await t.send(m.ack().encode())
        elif ctl == (0x80, 0x00):
            pass  # a stray acknowledgement: nothing to do
        else:
            await t.send(m.nak(0x83).encode())

    def _status_bmps(self) -> list[bytes]:
        now = datetime.now()
        return [
            bmp_byte(0x27, 0x00),
            bmp_bcd(0x29, self.terminal_id),
            bmp_bcd(0x0C, now.strftime("%H%M%S")),
            bmp_bcd(0x0D, now.strftime("%m%d")),
            bmp_tlv([primitive(0x1F11, bytes([1 if self.host_online else 0]))]),
        ]

    def _txn_bmps(self, x: Txn) -> list[bytes]:
        stamp = datetime.fromisoformat(x.when)
        bmps = [
            bmp_byte(0x27, x.result_code),
            bmp_bcd(0x04, x.amount_minor),
            bmp_bcd(0x49, x.currency),
            bmp_bcd(0x0B, x.trace),
            bmp_bcd(0x0C, stamp.strftime("%H%M%S")),
            bmp_bcd(0x0D, stamp.strftime("%m%d")),
            bmp_bcd(0x0E, self.card.expiry_yymm),
            bmp_bcd(0x17, self.card.sequence_no),
            bmp_byte(0x19, 0x40),
            bmp_pan_masked(self.card.pan if self.leak_clear_pan else self.card.masked_nibbles()),
            bmp_bcd(0x29, self.terminal_id),
            bmp_text(0x2A, self.vu_number),
            bmp_bcd(0x87, x.receipt_no),
            bmp_bcd(0x88, x.turnover_no),
            bmp_byte(0x8A, x.card_type),
            bmp_var(0x8B, x.card_name.encode("ascii", "replace") + b"\x00"),
        ]
        if x.approved:
            bmps.insert(9, bmp_fixed(0x3B, f"{x.trace:06d}  ".encode()[:8]))
        if x.offline:
            bmps.append(bmp_text(0x3C, "OFFLINE - wird nachgereicht", self.encoding))
        bmps.append(
            bmp_tlv(
                [
                    primitive(0x1F11, bytes([0 if x.offline else 1])),
                    primitive(0x9F39, bytes([POS_ENTRY_MODE[x.entry_mode]])),
                ]
            )
        )
        return bmps

    def _slip(self, x: Txn) -> list[str]:
        title = {"payment": "Kartenzahlung", "refund": "Gutschrift", "reversal": "Storno"}
        lines = [
            title[x.kind].center(24),
            f"Terminal-ID  {self.terminal_id}",
            f"Trace-Nr.    {x.trace:06d}",
            f"Beleg-Nr.    {x.receipt_no:04d}",
            x.card_name,
            f"Karte        {self.card.pan if self.leak_clear_pan else x.pan_masked}",
            f"Betrag   EUR {_money(x.amount_minor)}",
        ]
        if x.approved:
            lines.append("Zahlung erfolgt" if x.kind == "payment" else "Vorgang erfolgreich")
        else:
            lines.append(f"Abgelehnt ({x.result_code:02X})")
        if x.offline:
            lines.append("OFFLINE - wird nachgereicht")
        lines.append("Danke schön")
        return lines

    async def _print(self, t: ZvtTransport, lines: list[str], receipt_type: int = 2) -> None:
        if not self.config_byte & m.CONFIG_RECEIPT_PAYMENT:
            return
        if self.print_blocks or self.config_byte & m.CONFIG_ECR_PRINT_TYPE:
            await self._tell(t, m.print_text_block(lines, receipt_type, self.encoding))
            return
        for i, line in enumerate(lines):
            attr = 0x80 if i == len(lines) - 1 else 0x00
            await self._tell(t, m.print_line(line, attr, self.encoding))

    def _new_txn(
        self, kind: str, amount: int, currency: int, code: int, entry_mode: str | None = None
    ) -> Txn:
        self.trace_no += 1
        self.receipt_no += 1
        self.turnover_no += 1
        return Txn(
            kind=kind,
            amount_minor=amount,
            currency=currency,
            receipt_no=self.receipt_no,
            trace=self.trace_no,
            turnover_no=self.turnover_no,
            result_code=code,
            pan_masked=self.card.masked(),
            card_name=self.card.card_name,
            card_type=self.card.card_type,
            when=datetime.now().replace(microsecond=0).isoformat(),
            entry_mode=entry_mode or self.card.entry_mode,
        )

    def _offline_allowed(self, amount: int, entry_mode: str) -> bool:
        lim = self.limits
        pending = self.pending_forward()
        return (
            entry_mode in lim.entry_modes
            and amount <= lim.max_amount
            and len(pending) < lim.max_count
            and sum(p.amount_minor for p in pending) + amount <= lim.max_total
        )

    async def _payment(self, t: ZvtTransport, kind: str, amount: int, currency: int) -> None:
        out = self.outcomes.popleft() if self.outcomes else self.default_outcome
        log.info("sim: %s of %s → %s", kind, amount, out.kind)
        if out.kind == "no-answer":
            return
        await t.send(m.ack().encode())
        if out.kind == "hang":
            return
        loop = asyncio.get_running_loop()
        end = loop.time() + out.pin_delay
        register_gone = False
        try:
            await self._tell(t, m.intermediate_status(STATUS_INSERT_CARD), abortable=True)
            while loop.time() < end:
                await self._tell(t, m.intermediate_status(STATUS_WATCH_PIN_PAD), abortable=True)
                await asyncio.sleep(min(out.status_interval, max(0.0, end - loop.time())))
            if out.kind == "abort":
                await self._tell(t, m.terminal_abort(0x6C))
                return
            if out.kind == "disconnect" and not out.disconnect_after_approval:
                raise _Disconnect()
            if self.host_online:
                await self._tell(t, m.intermediate_status(STATUS_WAIT_HOST), abortable=True)
        except _Aborted:
            if out.ignore_abort:
                self.aborts_ignored += 1
                log.info("sim: ignoring the register's abort")
                out.kind = "approve" if out.kind == "abort" else out.kind
            else:
                await self._tell(t, m.terminal_abort(0x6C))
                return
        except (_RegisterGone, ZvtConnectionLost):
            # Like a real terminal: the customer finishes at the terminal and the host
            # is asked, even though the register is gone; the register has to find out.
            log.info("sim: the register vanished during the %s; finishing it anyway", kind)
            if out.kind == "abort":
                return
            register_gone = True
            await asyncio.sleep(max(0.0, end - loop.time()))
        offline = False
        entry_mode = out.entry_mode or self.card.entry_mode
        if out.kind == "decline":
            code = out.result_code
        elif self.host_online:
            code = 0x00
        elif kind == "payment" and self._offline_allowed(amount, entry_mode):
            code, offline = 0x00, True
        else:
            code = self.limits.decline_code
        x = self._new_txn(kind, amount, currency, code, entry_mode)
        x.offline = offline
        self.journal.append(x)
        if register_gone:
            if isinstance(t, SerialTransport):
                return  # the line stays; the next command may come
            raise ZvtConnectionLost("the register closed the connection mid-payment")
        if out.kind == "disconnect":
            raise _Disconnect()
        await self._tell(t, m.status_information(*self._txn_bmps(x)))
        await self._print(t, self._slip(x))
        if x.approved:
            await self._tell(t, m.completion())
        else:
            await self._tell(t, m.terminal_abort(code))

    async def _reversal(self, t: ZvtTransport, receipt_no: int | None) -> None:
        await t.send(m.ack().encode())
        orig = next(
            (x for x in self.journal if x.receipt_no == receipt_no and x.kind == "payment"), None
        )
        if orig is None or not orig.approved:
            await self._tell(t, m.terminal_abort(0xB5))
            return
        if orig.reversed:
            await self._tell(t, m.terminal_abort(0xB4))
            return
        stored = orig.offline and orig.forward_result is None
        if not self.host_online and not stored:  # a stored payment is cancelled locally
            await self._tell(t, m.terminal_abort(self.limits.decline_code))
            return
        orig.reversed = True
        x = self._new_txn("reversal", orig.amount_minor, orig.currency, 0, orig.entry_mode)
        x.original_receipt = orig.receipt_no
        self.journal.append(x)
        await self._tell(t, m.status_information(*self._txn_bmps(x), bmp_bcd(0x37, orig.trace)))
        await self._print(t, self._slip(x))
        await self._tell(t, m.completion())

    async def _repeat_receipt(self, t: ZvtTransport) -> None:
        await t.send(m.ack().encode())
        x = self.last_transaction()
        if x is None:
            await self._tell(t, m.terminal_abort(0x83))
            return
        await self._tell(t, m.status_information(*self._txn_bmps(x)))
        await self._print(t, ["** Belegkopie **", *self._slip(x)])
        if x.approved:
            await self._tell(t, m.completion())
        else:
            await self._tell(t, m.terminal_abort(x.result_code))

    async def _send_offline(self, t: ZvtTransport) -> None:
        """06 51: submit stored payments (each once), then report every stored payment
        of this batch with the host's result (BMP 27)."""
        await t.send(m.ack().encode())
        if not self.host_online:
            await self._tell(t, m.terminal_abort(self.limits.decline_code))
            return
        if self.pending_forward():
            await self._tell(t, m.intermediate_status(STATUS_POST_BOOKINGS))
            self.forward_pending()
            if self.drop_after_forward > 0:
                self.drop_after_forward -= 1
                raise _Disconnect()
        for x in self.batch():
            if x.kind != "payment" or not x.offline or x.reversed or x.forward_result is None:
                continue
            await self._tell(
                t,
                m.status_information(
                    bmp_byte(0x27, x.forward_result),
                    bmp_bcd(0x04, x.amount_minor),
                    bmp_bcd(0x49, x.currency),
                    bmp_bcd(0x0B, x.trace),
                    bmp_pan_masked(x.pan_masked.replace("*", "E")),
                    bmp_bcd(0x29, self.terminal_id),
                    bmp_bcd(0x87, x.receipt_no),
                ),
            )
        await self._tell(t, m.completion(bmp_byte(0x27, 0x00)))

    def batch(self) -> list[Txn]:
        return [x for x in self.journal if x.receipt_no >= self.batch_from]

    async def _end_of_day(self, t: ZvtTransport) -> None:
        await t.send(m.ack().encode())
        if not self.host_online:
            await self._tell(t, m.terminal_abort(self.limits.decline_code))
            return
        self.forward_pending()
        per: dict[str, tuple[int, int]] = {}
        total = 0
        declined_after = []
        for x in self.batch():
            if x.kind != "payment" or not x.approved or x.reversed:
                continue
            if x.forward_result not in (None, 0):
                declined_after.append(x)
                continue
            scheme = _SCHEME.get(x.card_type, "other")
            c, a = per.get(scheme, (0, 0))
            per[scheme] = (c + 1, a + x.amount_minor)
            total += x.amount_minor
        last = self.receipt_no
        self.trace_no += 1
        now = datetime.now()
        await self._tell(
            t,
            m.status_information(
                bmp_byte(0x27, 0x00),
                bmp_bcd(0x04, total),
                bmp_bcd(0x49, self.currency),
                bmp_bcd(0x0B, self.trace_no),
                bmp_bcd(0x0C, now.strftime("%H%M%S")),
                bmp_bcd(0x0D, now.strftime("%m%d")),
                bmp_bcd(0x29, self.terminal_id),
                bmp_var(0x60, encode_totals(self.batch_from, max(last, self.batch_from), per)),
            ),
        )
        lines = ["Kassenschnitt".center(24), f"Terminal-ID  {self.terminal_id}"]
        for scheme, (c, a) in sorted(per.items()):
            lines.append(f"{scheme:<10} {c:3d}  EUR {_money(a)}")
        lines.append(f"Summe          EUR {_money(total)}")
        for x in declined_after:
            lines.append(
                f"Nachtraeglich abgelehnt Beleg {x.receipt_no:04d} EUR {_money(x.amount_minor)}"
            )
        await self._print(t, lines, receipt_type=3)
        await self._tell(t, m.completion())
        self.batch_from = last + 1


async def run_session(sim: SimTerminal, t: ZvtTransport) -> None:
    """Serve one link; errors of a broken link end the session quietly."""
    try:
        await sim.serve(t)
    except ZvtError as e:
        log.info("sim: session ended: %s", e)

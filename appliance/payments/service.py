"""Card payments in the running register: the payment path from request to tender.

One ``PaymentService`` per register. Every conversation with the terminal runs under
the terminal's lock (payments are serialized per terminal) and follows one rule:
the payment row is durable before the terminal is asked, and a card tender is made
only from an approval, once (``store.guard``). What can happen:

- approved → the card tender goes into the sale (and completes it when paid);
- declined / aborted → the sale stays open for another tender, with the reason;
- the terminal vanishes mid-payment → ``unknown``; the register asks the terminal
  (status enquiry, then its last transaction: repeat receipt) before anything else
  happens on the terminal or on that sale, and reverses an approval the sale can no
  longer take. A crash mid-payment leaves ``in_progress``, which becomes ``unknown``
  on restart and is resolved the same way;
- offline (terminal's host link down, or the register-wide signal): the shop's
  offline limits are checked before the terminal is asked and again when an offline
  approval comes back (an approval that breaks one is reversed). Offline approvals
  wait as "pending forward"; a background task forwards them when the link returns
  (06 51, idempotent inside the terminal) and records the host's answers; a decline
  flags the sale ("declined after the fact").

Intermediate statuses from the terminal are kept per payment (``Live``) for the sell
screen to poll or stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from appliance.config import Config
from appliance.errors import ApplianceError, Conflict, StorageUnavailable
from appliance.payments import machine as sm
from appliance.payments import offline, store
from appliance.payments.terminal import TerminalLink, TerminalUnavailable, why
from appliance.register import Register
from appliance.sale import OPEN
from appliance.service import RegisterService
from appliance.sync.link import link_for

if TYPE_CHECKING:
    from drivers.zvt.client import IntermediateStatus, TransactionResult

log = logging.getLogger("appliance.payments")

Doc = dict[str, Any]
# A terminal's date/time and the register's clock may differ; an interrupted payment's
# transaction found on the terminal must be no older than this before its start.
CLOCK_SLACK = timedelta(minutes=10)
MAX_LIVE = 50  # statuses kept per payment
MAX_LIVE_PAYMENTS = 200  # payments whose statuses are kept


def card_doc(row: Doc) -> Doc:
    """The ``card`` part of a card tender (the shape agreed with receipt printing)."""
    return {
        "name": row["card_name"],
        "pan_masked": row["pan_masked"],
        "terminal_id": row["terminal_id"],
        "trace": row["trace"],
        "receipt_no": row["receipt_no"],
        "auth_code": row["auth_code"],
        "entry_mode": row["entry_mode"],
        "offline": bool(row["offline"]),
        "slip": list(row["slip"]),
    }


def _reference(row: Doc) -> str:
    return f"terminal {row['terminal_id'] or '?'} receipt {row['receipt_no']}"


class Live:
    """The terminal's status texts of one payment, as they happen."""

    def __init__(self) -> None:
        self.statuses: list[Doc] = []
        self.version = 0
        self.done = False
        self._changed = asyncio.Event()

    def push(self, text: str, status: int | None = None) -> None:
        at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.statuses = [*self.statuses, {"at": at, "status": status, "text": text}][-MAX_LIVE:]
        self._bump()

    def on_status(self, st: IntermediateStatus) -> None:
        self.push(st.text, st.status)

    def finish(self) -> None:
        self.done = True
        self._bump()

    def _bump(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self, version: int, timeout: float) -> None:
        if self.version != version:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)


class PaymentService:
    def __init__(self, config: Config, service: RegisterService) -> None:
        self.config = config
        self.cfg = config.payments
        self.limits = config.payments.offline
        self.svc = service
        self.link = TerminalLink(self.cfg)
        # The register-wide offline signal: the back office link (issue 6) flips it.
        self.register_link = link_for(service)
        self.register_link.on_change(lambda _online: self.wake.set())
        self.live: dict[str, Live] = {}
        self.runners: dict[str, asyncio.Task[None]] = {}
        self.cancelled: set[str] = set()
        self.wake = asyncio.Event()
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._monitor: asyncio.Task[None] | None = None
        self._starting: asyncio.Task[None] | None = None
        self._offline_recorded: bool | None = None  # what offline_since says, once read
        self._started = False
        self._start_lock = asyncio.Lock()

    # ---- life cycle ----

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self.svc.call(fn, *args, **kwargs)

    async def ensure_started(self) -> None:
        """Start once: the terminal (simulator), restart recovery, the background task."""
        async with self._start_lock:
            if self._started:
                return
            await self.call(store.install)
            await self.link.start()
            for row in await self.call(store.recover_after_restart):
                log.warning("payment %s: %s", row["id"], row["message"])
            await self.call(self._arm_offline_acceptance)
            self._monitor = asyncio.get_running_loop().create_task(self._monitor_loop())
            self._started = True
            self.wake.set()

    async def start_in_background(self) -> None:
        """Start hook: the register answers at once; the terminal side starts alongside
        (a request that needs it waits for it)."""
        self._starting = asyncio.get_running_loop().create_task(self.ensure_started())

    async def stop(self) -> None:
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await self._starting
        tasks = [*self.runners.values(), *([self._monitor] if self._monitor else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.link.close()
        self._started = False

    def on_open(self, register: Register) -> None:
        """Offline card limits follow the runtime settings (appliance/settings.py)."""
        from appliance import settings

        settings.watch(register, lambda config: self._new_limits(register, config))

    def _new_limits(self, register: Register, config: Config) -> None:
        changed = config.payments.offline != self.limits
        self.limits = config.payments.offline
        if changed:
            self._arm_offline_acceptance(register)

    def _arm_offline_acceptance(self, register: Register) -> None:
        """Remember when offline acceptance was switched on (it applies to later outages)."""
        at = store.meta(register, "offline_enabled_at")
        if self.limits.enabled and at is None:
            store.set_meta(register, "offline_enabled_at", self._now_iso())
        elif not self.limits.enabled and at is not None:
            store.set_meta(register, "offline_enabled_at", None)

    def _now_iso(self) -> str:
        return self.clock().isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _loop_time(self) -> float:
        return asyncio.get_running_loop().time()

    # ---- offline state ----

    @property
    def offline_now(self) -> bool:
        return self.register_link.offline or self.link.host_online is False

    def offline_reasons(self) -> list[str]:
        reasons = []
        if self.link.host_online is False:
            reasons.append("the card terminal reports its host link down")
        if self.register_link.offline:
            reason = self.register_link.reason or "back office unreachable"
            reasons.append(f"the register is offline ({reason})")
        return reasons

    async def _track_offline(self) -> None:
        """Persist when the current outage began (to tell 'switched on in advance')."""
        offline = self.offline_now
        if not offline and self.link.host_online is None:
            return  # the terminal has not said yet: the outage (if any) goes on
        if offline == self._offline_recorded:
            return
        since = await self.call(store.meta, "offline_since")
        if offline and since is None:
            await self.call(store.set_meta, "offline_since", self._now_iso())
        elif not offline and since is not None:
            await self.call(store.set_meta, "offline_since", None)
        self._offline_recorded = offline

    def _armed_problem(self, register: Register) -> str | None:
        enabled_at = store.meta(register, "offline_enabled_at")
        since = store.meta(register, "offline_since")
        if enabled_at and since and since < enabled_at:
            return (
                f"Offline card acceptance was switched on at {enabled_at}, during this "
                f"outage (offline since {since}); it applies from the next outage."
            )
        return None

    def _note(self, res: TransactionResult) -> None:
        self.link.note(res, self._loop_time())

    async def _status_enquiry_locked(self) -> TransactionResult:
        res: TransactionResult = await self.link.call(lambda c: c.status_enquiry())
        self._note(res)
        await self._track_offline()
        return res

    async def _refresh_link(self) -> None:
        """Before a payment: ask the terminal about its host link if the last word is old.
        An unreachable terminal refuses the payment at once."""
        if self.link.fresh(self._loop_time()) or self.runners:
            return  # a running payment keeps the state current (and holds the terminal)
        from drivers.zvt.errors import ZvtError

        async with self.link.lock:
            if self.link.fresh(self._loop_time()) and self.cfg.link_check_seconds > 0:
                return
            try:
                await self._status_enquiry_locked()
            except ZvtError:  # a stale connection: one reconnect
                try:
                    await self._status_enquiry_locked()
                except ZvtError as exc:
                    raise TerminalUnavailable(
                        f"card terminal {self.link.address} does not answer: {why(exc)}",
                        field="terminal",
                    ) from exc

    # ---- reading ----

    async def payment(self, payment_id: str, with_events: bool = False) -> Doc:
        doc: Doc = await self.call(store.get, payment_id)
        live = self.live.get(payment_id)
        doc["statuses"] = live.statuses if live else []
        doc["status_text"] = live.statuses[-1]["text"] if live and live.statuses else None
        if with_events:
            doc["events"] = await self.call(store.events, payment_id)
        return doc

    async def wait(self, payment_id: str, seconds: float) -> Doc:
        """The payment once it is final (or unknown with nothing running), or as it is
        after ``seconds``."""
        runner = self.runners.get(payment_id)
        if runner is not None and seconds > 0:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(runner), seconds)
        return await self.payment(payment_id)

    async def stream(self, payment_id: str, max_seconds: float = 600) -> AsyncIterator[Doc]:
        """Snapshots of a payment whenever it changes, until nothing runs for it any more
        (final, or unknown and left to the background resolution)."""
        deadline = self._loop_time() + max_seconds
        while True:
            live = self.live.get(payment_id)
            version = live.version if live else 0
            doc = await self.payment(payment_id)
            yield doc
            if payment_id not in self.runners or self._loop_time() > deadline:
                return
            if live is None:
                await asyncio.sleep(0.5)
            else:
                await live.wait_change(version, 15)

    async def terminal_status(self) -> Doc:
        def read(register: Register) -> Doc:
            pending = store.outstanding(register)
            declined = store.declined_after(register)
            unknown = store.select(register, "state = 'unknown'")
            return {
                "pending": pending,
                "declined": declined,
                "unknown": [{"id": r["id"], "sale_id": r["sale_id"]} for r in unknown],
                "armed_problem": self._armed_problem(register),
                "offline_since": store.meta(register, "offline_since"),
                "enabled_at": store.meta(register, "offline_enabled_at"),
            }

        facts = await self.call(read)
        pending: offline.Outstanding = facts["pending"]
        return {
            "terminal": self.link.address or None,
            "simulated": self.link.sim is not None,
            "connected": self.link.connected,
            "terminal_id": self.link.terminal_id,
            "busy": self.link.lock.locked(),
            "last_error": self.link.last_error,
            "host_link": {None: "unknown", True: "online", False: "offline"}[self.link.host_online],
            "register_offline": self.register_link.as_dict(),
            "offline": self.offline_now,
            "offline_reasons": self.offline_reasons(),
            "offline_since": facts["offline_since"],
            "offline_acceptance": {
                **self.limits.model_dump(exclude={"manager_pin"}),
                "manager_pin_required": bool(self.limits.manager_pin),
                "enabled_at": facts["enabled_at"],
                "armed": self.limits.enabled and facts["armed_problem"] is None,
                "problem": facts["armed_problem"],
            },
            "pending_forward": {
                "count": pending.count,
                "amount_minor": pending.amount,
                "oldest_at": pending.oldest_at,
                "oldest_age_hours": round(pending.age_hours(self.clock()), 3),
            },
            "declined_after_the_fact": {
                "count": len(facts["declined"]),
                "amount_minor": sum(d["amount_minor"] for d in facts["declined"]),
            },
            "unknown_payments": facts["unknown"],
            "running": sorted(self.runners),
        }

    async def offline_overview(self) -> Doc:
        status = await self.terminal_status()

        def read(register: Register) -> Doc:
            return {
                "pending_payments": [
                    {
                        "payment_id": r["id"],
                        "sale_id": r["sale_id"],
                        "amount_minor": r["amount"],
                        "at": r["created_at"],
                        "pan_masked": r["pan_masked"],
                        "receipt_no": r["receipt_no"],
                    }
                    for r in store.pending_forward(register)
                ],
                "declined_after_the_fact": store.declined_after(register),
            }

        return {
            "offline": status["offline"],
            "offline_reasons": status["offline_reasons"],
            "acceptance": status["offline_acceptance"],
            "pending_forward": status["pending_forward"],
            **await self.call(read),
        }

    # ---- a card payment for a sale ----

    async def start_payment(
        self,
        sale_id: str,
        amount: int | None,
        manager: str | None = None,
        manager_pin: str | None = None,
    ) -> Doc:
        """Check and record the request, then run it on the terminal in the background."""
        await self.ensure_started()
        if not self.link.configured:
            raise TerminalUnavailable(
                "no card terminal is configured (payments.terminal): take another tender",
                field="terminal",
            )
        override_by = offline.check_override(self.limits, manager, manager_pin)
        active = await self.call(store.active_for_sale, sale_id)
        if active is not None:  # say so before asking the terminal anything
            raise Conflict(store.busy_message(active), field="sale_id", payment_id=active["id"])
        await self._refresh_link()
        payment_id = uuid.uuid4().hex
        offline_now = self.offline_now
        now = self.clock()

        def create(register: Register) -> Doc:
            for guard in register.before_charge:  # e.g. in checkout on another register
                guard(register, sale_id)
            wanted = amount
            if wanted is None:
                totals = register.sale(sale_id)["totals"]
                wanted = totals["total"] - totals["paid"]
            # An override is recorded only where it is needed.
            by = override_by if wanted > self.limits.max_amount else None
            if offline_now:
                offline.check(
                    self.limits,
                    store.outstanding(register),
                    wanted,
                    now,
                    decimals=self.config.store.currency_decimals,
                    armed_problem=self._armed_problem(register),
                    override_by=by,
                )
            return store.create_sale_payment(
                register, sale_id, amount, self.cfg.currency, self.link.address, payment_id, by
            )

        row: Doc = await self.call(create)
        for old in list(self.live)[: max(0, len(self.live) - MAX_LIVE_PAYMENTS)]:
            if old not in self.runners:
                del self.live[old]  # statuses of long-settled payments
        self.live[payment_id] = live = Live()
        live.push("waiting for the terminal")
        self.runners[payment_id] = asyncio.get_running_loop().create_task(
            self._run_payment(payment_id)
        )
        return await self.payment(row["id"])

    async def _run_payment(self, payment_id: str) -> None:
        live = self.live[payment_id]
        try:
            async with self.link.lock:
                row = await self.call(store.get, payment_id)
                if row["state"] != sm.REQUESTED:
                    return
                if payment_id in self.cancelled:
                    await self._move(
                        payment_id, sm.ABORTED, "cancelled before the terminal was asked"
                    )
                    return
                blocker = await self._resolve_all_locked()
                if blocker is not None:
                    await self._move(
                        payment_id,
                        sm.ABORTED,
                        f"not sent: payment {blocker['id']} of {blocker['amount']} has an "
                        "unknown outcome and the terminal cannot tell it yet; nothing charged",
                    )
                    return
                try:
                    await self.link.client()
                except TerminalUnavailable as exc:
                    await self._move(payment_id, sm.ABORTED, f"{exc.message}; nothing charged")
                    return
                prev = await self.call(store.last_receipt_no)
                await self._move(
                    payment_id, sm.IN_PROGRESS, "sent to the terminal", prev_receipt_no=prev
                )
                await self._authorize_locked(payment_id, row["amount"], live)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("payment %s", payment_id)
        finally:
            live.finish()
            self.runners.pop(payment_id, None)
            self.wake.set()

    async def _authorize_locked(self, payment_id: str, amount: int, live: Live) -> None:
        from drivers.zvt.client import ZvtTransactionInterrupted

        try:
            res = await self.link.call(
                lambda c: c.authorize(amount, self.cfg.currency, on_status=live.on_status)
            )
        except ZvtTransactionInterrupted as exc:
            await self._move(
                payment_id,
                sm.UNKNOWN,
                f"the terminal vanished mid-payment ({why(exc)}): resolving",
            )
            live.push("terminal lost: asking it what happened")
            await self._resolve_locked(payment_id)
            return
        await self._settle_locked(payment_id, res)

    async def _move(self, payment_id: str, state: str, message: str, **fields: Any) -> Doc:
        row: Doc = await self.call(store.transition, payment_id, state, message=message, **fields)
        live = self.live.get(payment_id)
        if live is not None:
            live.push(message)
        log.info("payment %s: %s (%s)", payment_id, state, message)
        return row

    @staticmethod
    def _card_fields(res: TransactionResult) -> Doc:
        return {
            "result_code": res.result_code,
            "terminal_id": res.terminal_id,
            "receipt_no": res.receipt_no,
            "trace": res.trace,
            "turnover_no": res.turnover_no,
            "auth_code": res.auth_code,
            "card_name": res.card_name,
            "pan_masked": res.pan_masked,
            "entry_mode": res.entry_mode,
            "card_type": res.card_type,
            "slip": res.slip,
            "offline": res.offline,
        }

    async def _settle_locked(
        self, payment_id: str, res: TransactionResult, resolution: str | None = None
    ) -> Doc:
        """Record the terminal's answer to a payment (live, or found when resolving)."""
        self._note(res)
        await self._track_offline()
        fields = self._card_fields(res)
        if resolution:
            fields["resolution"] = resolution
        if not res.approved:
            state = sm.ABORTED if res.outcome == "aborted" else sm.DECLINED
            message = res.message
            if res.result_code in (0x9B, 0xA3) and self.link.host_online is False:
                message += " (the terminal cannot reach its host and did not store the payment)"
            return await self._move(payment_id, state, message, **fields)
        message = "approved"
        if res.offline:
            message = "approved offline: stored by the terminal, pending forward"
            problem = await self.call(self._offline_problem, payment_id, res.entry_mode)
            if problem is not None:
                row = await self.call(store.update, payment_id, f"refusing: {problem}", **fields)
                rev = await self._reverse_locked(row, row["sale_id"], f"refused offline: {problem}")
                if rev["state"] == sm.APPROVED:
                    resolved = {"resolution": resolution} if resolution else {}
                    return await self._move(
                        payment_id,
                        sm.DECLINED,
                        f"refused: {problem} The terminal's offline approval was reversed.",
                        **resolved,
                    )
                log.error("payment %s: over an offline limit and not reversible", payment_id)
                message += f" (over an offline limit, but the reversal failed: {problem})"
            fields["forward_state"] = sm.PENDING
        return await self._tender_locked(payment_id, {"message": message, **fields})

    def _offline_problem(
        self, register: Register, payment_id: str, entry: str | None
    ) -> str | None:
        row = store.get(register, payment_id)
        try:
            offline.check(
                self.limits,
                store.outstanding(register),
                row["amount"],
                self.clock(),
                decimals=self.config.store.currency_decimals,
                armed_problem=self._armed_problem(register),
                override_by=row["override_by"],
                entry_mode=entry,
                check_entry_mode=True,
            )
        except offline.OfflineRefused as exc:
            return exc.message
        return None

    async def _tender_locked(self, payment_id: str, approve: Doc | None = None) -> Doc:
        """Make the approved payment a tender of its sale; reverse it if the sale cannot
        take it any more. With ``approve`` (the state change's fields) the approval and
        the tender are one transaction; a tender the sale refuses rolls back alone.
        A storage failure leaves it to the background task (resolved with the
        terminal if even the approval could not be written)."""

        def tender(register: Register) -> str | None:
            row = store.get(register, payment_id)
            if row["tender_id"] or row["state"] != sm.APPROVED or row["reversed_by"]:
                return None
            try:
                if row["kind"] == "payment":
                    register.add_tender(
                        row["sale_id"],
                        "card",
                        row["amount"],
                        _reference(row),
                        card=card_doc(row),
                        payment_id=payment_id,
                    )
                elif row["kind"] == "reversal":
                    original = store.get(register, row["original_id"])
                    sale = register.sale(original["sale_id"])
                    if original["tender_id"] and sale["status"] == OPEN:
                        register.reverse_card_tender(
                            sale["id"],
                            original["tender_id"],
                            payment_id,
                            card_doc(row),
                            f"reversal of {_reference(original)}",
                        )
            except StorageUnavailable:
                raise
            except ApplianceError as exc:
                return exc.message
            return None

        def approve_and_tender(register: Register) -> str | None:
            if approve is None:
                return tender(register)
            if register.conn.in_transaction:  # already inside the service's group commit
                store.transition(register, payment_id, sm.APPROVED, **approve)
                return tender(register)
            with register.group_commit():  # one COMMIT: approval and tender together
                store.transition(register, payment_id, sm.APPROVED, **approve)
                return tender(register)

        try:
            problem = await self.call(approve_and_tender)
        except StorageUnavailable as exc:
            log.error("payment %s approved but not recorded yet: %s", payment_id, exc.message)
            now = await self.call(store.get, payment_id)
            if approve is not None and now["state"] == sm.IN_PROGRESS:
                with contextlib.suppress(StorageUnavailable):
                    await self._move(
                        payment_id, sm.UNKNOWN, f"approved, but not recorded: {exc.message}"
                    )
            return await self.call(store.get, payment_id)
        if approve is not None:
            live = self.live.get(payment_id)
            if live is not None:
                live.push(str(approve["message"]))
            log.info("payment %s: approved (%s)", payment_id, approve["message"])
        row: Doc = await self.call(store.get, payment_id)
        if problem is not None and row["kind"] == "payment":
            await self._reverse_locked(row, row["sale_id"], f"the sale cannot take it: {problem}")
        return await self.call(store.get, payment_id)

    # ---- reversal ----

    async def _reverse_locked(self, original: Doc, sale_id: str, reason: str) -> Doc:
        """Reverse an approved payment on the terminal (06 30 with its receipt number);
        the reversal is a payment row of its own, tied to the original."""
        from drivers.zvt.client import ZvtTransactionInterrupted

        rev_id = uuid.uuid4().hex
        await self.call(
            store.create,
            sale_id=sale_id,
            kind="reversal",
            amount=original["amount"],
            currency=original["currency"] or self.cfg.currency,
            terminal=self.link.address,
            original_id=original["id"],
            payment_id=rev_id,
            check_active=False,
        )
        prev = await self.call(store.last_receipt_no)
        await self._move(rev_id, sm.IN_PROGRESS, reason, prev_receipt_no=prev)
        try:
            res = await self.link.call(lambda c: c.reversal(int(original["receipt_no"])))
        except ZvtTransactionInterrupted as exc:
            await self._move(rev_id, sm.UNKNOWN, f"terminal lost during the reversal: {why(exc)}")
            return await self._resolve_locked(rev_id)
        except TerminalUnavailable as exc:
            await self._move(rev_id, sm.ABORTED, exc.message)
            return await self.call(store.get, rev_id)
        return await self._settle_reversal_locked(rev_id, res)

    async def _settle_reversal_locked(
        self, rev_id: str, res: TransactionResult, resolution: str | None = None
    ) -> Doc:
        self._note(res)
        fields = self._card_fields(res)
        fields["offline"] = False
        if resolution:
            fields["resolution"] = resolution
        if not res.approved:
            state = sm.ABORTED if res.outcome == "aborted" else sm.DECLINED
            return await self._move(rev_id, state, f"reversal not done: {res.message}", **fields)
        row = await self._move(rev_id, sm.APPROVED, "reversed on the terminal", **fields)
        original = await self.call(
            store.update,
            row["original_id"],
            f"reversed by {rev_id}",
            reversed_by=rev_id,
            message=f"reversed: {row['message']}",
        )
        if original["state"] == sm.APPROVED and original["kind"] == "payment":
            await self._tender_locked(rev_id)
        return await self.call(store.get, rev_id)

    async def reverse(self, payment_id: str) -> Doc:
        """Reverse an approved card payment of a sale that is still open (its tender
        comes back out). Payments of completed sales go back through a refund."""
        await self.ensure_started()
        async with self.link.lock:

            def check(register: Register) -> Doc:
                row = store.get(register, payment_id)
                if row["kind"] != "payment" or row["state"] != sm.APPROVED:
                    raise Conflict(f"payment {payment_id} is not an approved card payment")
                if row["reversed_by"]:
                    raise Conflict(f"payment {payment_id} is already reversed")
                if register.sale(row["sale_id"])["status"] != OPEN:
                    raise Conflict(
                        f"the sale of payment {payment_id} is completed: refund it instead "
                        "(POST /api/refunds)",
                        field="payment_id",
                    )
                return row

            row = await self.call(check)
            rev = await self._reverse_locked(row, row["sale_id"], "reversal asked at the register")
        return await self.payment(rev["id"])

    async def abort(self, payment_id: str) -> Doc:
        """The cashier cancels: before the terminal was asked it never is; while it runs
        the terminal is asked to abort (06 B0 at its next status; some ignore that)."""
        row = await self.call(store.get, payment_id)
        if row["state"] == sm.REQUESTED:
            self.cancelled.add(payment_id)
        elif row["state"] == sm.IN_PROGRESS and self.link.client_ is not None:
            await self.link.client_.abort()
        else:
            raise Conflict(f"payment {payment_id} is {row['state']}: nothing to abort")
        live = self.live.get(payment_id)
        if live is not None:
            live.push("abort requested")
        return await self.payment(payment_id)

    # ---- resolving unknown payments ----

    async def resolve(self, payment_id: str) -> Doc:
        await self.ensure_started()
        async with self.link.lock:
            await self._resolve_locked(payment_id)
        return await self.payment(payment_id, with_events=True)

    async def _resolve_all_locked(self) -> Doc | None:
        """Resolve every unknown payment; the first one that stays unknown, if any."""
        for row in await self.call(store.select, "state = ?", (sm.UNKNOWN,)):
            if (await self._resolve_locked(row["id"]))["state"] == sm.UNKNOWN:
                return row
        return None

    async def _resolve_locked(self, payment_id: str) -> Doc:
        """Ask the terminal what became of an unknown payment: status enquiry (is it
        there, is it idle), then its last transaction (repeat receipt). Ours only if
        it is newer than the last one the register saw and has our amount."""
        from drivers.zvt.client import REJECTED
        from drivers.zvt.errors import ZvtError

        row: Doc = await self.call(store.get, payment_id)
        if row["state"] != sm.UNKNOWN:
            return row
        try:
            enquiry = await self._status_enquiry_locked()
            if enquiry.outcome == REJECTED:
                raise TerminalUnavailable(f"terminal busy: {enquiry.message}")
            last: TransactionResult = await self.link.call(lambda c: c.repeat_receipt())
        except (ZvtError, TerminalUnavailable) as exc:
            await self.call(
                store.update,
                payment_id,
                f"still unknown: {exc.message}",
                message=(
                    f"outcome unknown: the terminal cannot say yet ({exc.message}); "
                    "retrying in the background"
                ),
            )
            return await self.call(store.get, payment_id)
        if last.outcome == REJECTED:
            return await self.call(store.update, payment_id, f"still unknown: {last.message}")
        ours = await self.call(self._is_ours, row, last)
        how = f"repeat receipt: the terminal's last transaction is receipt {last.receipt_no}"
        if not ours:
            return await self._move(
                payment_id,
                sm.ABORTED,
                "the terminal has no record of this payment: nothing was charged",
                resolution=f"status enquiry and {how}, not this payment",
            )
        if row["kind"] == "reversal":
            return await self._settle_reversal_locked(payment_id, last, f"status enquiry and {how}")
        return await self._settle_locked(payment_id, last, f"status enquiry and {how}")

    def _is_ours(self, register: Register, row: Doc, last: TransactionResult) -> bool:
        if last.receipt_no is None or last.amount_minor != row["amount"]:
            return False
        original_trace = last.status_info.get("original_trace")
        if row["kind"] == "reversal":
            original = store.get(register, row["original_id"])
            if original_trace is None or original_trace != original["trace"]:
                return False
        elif original_trace is not None:
            return False  # the last transaction is a reversal, not this payment
        if row["prev_receipt_no"] is not None and last.receipt_no == row["prev_receipt_no"]:
            return False
        owner = store.receipt_owner(register, last.receipt_no, last.terminal_id, row["created_at"])
        if owner is not None and owner != row["id"]:
            return False
        if row["prev_receipt_no"] is None:
            return self._recent_enough(row, last)
        return True

    def _recent_enough(self, row: Doc, last: TransactionResult) -> bool:
        """Without a known previous receipt: the terminal's transaction time (BMP 0C/0D,
        no year) must not be well before the payment started."""
        mmdd = last.status_info.get("date_mmdd")
        hms = last.status_info.get("time")
        if not mmdd or not hms:
            return True
        started = datetime.fromisoformat(row["created_at"].replace("Z", "+00:00"))
        local = started.astimezone()
        try:
            when = local.replace(
                month=int(mmdd[:2]),
                day=int(mmdd[2:]),
                hour=int(hms[:2]),
                minute=int(hms[3:5]),
                second=int(hms[6:8]),
                microsecond=0,
            )
        except ValueError:
            return True
        return when >= local - CLOCK_SLACK

    # ---- refunds to a card ----

    async def refund_to_card(self, refund_id: str) -> Doc:
        """Pay the card part of a refund back through the terminal, tied to the original
        card payment(s): a reversal when the whole payment goes back within the
        terminal's batch, otherwise a refund (06 31). Then the refund completes."""
        await self.ensure_started()
        async with self.link.lock:
            plan = await self.call(Register.refund_plan, refund_id)
            card_part = sum(a for k, a in plan if k == "card")
            if card_part == 0:
                raise Conflict(
                    "nothing of this refund goes back to a card: complete it with "
                    f"POST /api/refunds/{refund_id}/complete",
                    field="sale_id",
                )
            work = await self.call(self._refund_work, refund_id, card_part)
            for original, amount in work:
                row = await self._refund_one_locked(refund_id, original, amount)
                if row["state"] != sm.APPROVED:
                    raise Conflict(
                        f"the card refund of {amount} was not done: {row['message']}",
                        field="sale_id",
                        payment_id=row["id"],
                    )
            sale: Doc = await self.call(self._complete_refund, refund_id)
        return sale

    def _refund_work(
        self, register: Register, refund_id: str, card_part: int
    ) -> list[tuple[Doc, int]]:
        refund = register.sale(refund_id)
        done = sum(
            r["amount"]
            for r in store.select(
                register,
                "sale_id = ? AND kind IN ('refund', 'reversal') AND state = 'approved'"
                " AND tender_id IS NULL",
                (refund_id,),
            )
        )
        left = card_part - done
        work: list[tuple[Doc, int]] = []
        originals = store.select(
            register,
            "sale_id = ? AND kind = 'payment' AND state = 'approved' AND tender_id IS NOT NULL"
            " AND reversed_by IS NULL",
            (refund["refund_of"],),
        )
        for original in reversed(originals):
            if left <= 0:
                break
            back = sum(
                r["amount"]
                for r in store.select(
                    register,
                    "original_id = ? AND kind IN ('refund', 'reversal') AND state = 'approved'",
                    (original["id"],),
                )
            )
            take = min(left, original["amount"] - back)
            if take > 0:
                work.append((original, take))
                left -= take
        if left > 0:
            raise Conflict(
                f"{left} of the card part has no approved card payment of the original sale "
                "to go back to: pay it out with another tender_kind",
                field="tender_kind",
            )
        return work

    def _in_batch(self, register: Register, original: Doc) -> bool:
        """Still in the terminal's current batch (no end-of-day since), so reversible."""
        row = register.conn.execute(
            "SELECT 1 FROM terminal_eod WHERE ok = 1 AND at > ? LIMIT 1", (original["created_at"],)
        ).fetchone()
        return row is None and original["forward_state"] != sm.FORWARD_DECLINED

    async def _refund_one_locked(self, refund_id: str, original: Doc, amount: int) -> Doc:
        from drivers.zvt.client import ZvtTransactionInterrupted

        whole = amount == original["amount"] and await self.call(self._in_batch, original)
        if whole:
            rev = await self._reverse_locked(original, refund_id, "refund: reversal of the payment")
            if rev["state"] == sm.APPROVED:
                return rev
            if original["offline"] and original["forward_state"] == sm.PENDING:
                return rev  # a stored offline payment cannot be refunded before it is forwarded
        if self.link.host_online is False:
            raise Conflict(
                "card refunds need the terminal's host link, which is down: pay this refund "
                "out with another tender_kind, or try again when the terminal is online",
                field="tender_kind",
            )
        payment_id = uuid.uuid4().hex
        await self.call(
            store.create,
            sale_id=refund_id,
            kind="refund",
            amount=amount,
            currency=self.cfg.currency,
            terminal=self.link.address,
            original_id=original["id"],
            payment_id=payment_id,
            check_active=False,
        )
        self.live[payment_id] = live = Live()
        prev = await self.call(store.last_receipt_no)
        await self._move(
            payment_id, sm.IN_PROGRESS, "refund sent to the terminal", prev_receipt_no=prev
        )
        try:
            res = await self.link.call(
                lambda c: c.refund(amount, self.cfg.currency, on_status=live.on_status)
            )
        except ZvtTransactionInterrupted as exc:
            await self._move(payment_id, sm.UNKNOWN, f"terminal lost during the refund: {why(exc)}")
            return await self._resolve_locked(payment_id)
        finally:
            live.finish()
        self._note(res)
        fields = self._card_fields(res)
        if not res.approved:
            state = sm.ABORTED if res.outcome == "aborted" else sm.DECLINED
            return await self._move(payment_id, state, res.message, **fields)
        return await self._move(payment_id, sm.APPROVED, "refunded to the card", **fields)

    def _complete_refund(self, register: Register, refund_id: str) -> Doc:
        rows = store.select(
            register,
            "sale_id = ? AND kind IN ('refund', 'reversal') AND state = 'approved'"
            " AND tender_id IS NULL",
            (refund_id,),
        )
        refund = register.sale(refund_id)
        tenders = [
            {
                "id": uuid.uuid4().hex[:12],
                "kind": "card",
                "amount": -row["amount"],
                "reference": f"refund of {refund['refund_of_receipt']}: {_reference(row)}",
                "payment_id": row["id"],
                "card": card_doc(row),
            }
            for row in rows
        ]
        sale: Doc = register.complete_refund(refund_id, card_tenders=tenders)
        return sale

    # ---- forwarding offline approvals ----

    async def forward(self) -> Doc:
        """Ask the terminal about its host link now, and forward what is pending."""
        from drivers.zvt.errors import ZvtError

        await self.ensure_started()
        async with self.link.lock:
            try:
                await self._status_enquiry_locked()
            except (ZvtError, TerminalUnavailable) as exc:
                log.info("card terminal not reachable: %s", exc.message)
            result = await self._forward_locked()
        return {**result, "overview": await self.offline_overview()}

    async def _forward_locked(self) -> Doc:
        """06 51: the terminal submits what it stored (once each) and reports every
        stored payment with the host's answer; the register records each answer once."""
        from drivers.zvt.codes import result_message
        from drivers.zvt.errors import ZvtError

        pending: list[Doc] = await self.call(store.pending_forward)
        if not pending:
            return {"forwarded": 0, "declined": 0, "pending": 0}
        try:
            res: TransactionResult = await self.link.call(lambda c: c.send_offline())
        except (ZvtError, TerminalUnavailable) as exc:
            return {"forwarded": 0, "declined": 0, "pending": len(pending), "error": exc.message}
        self._note(res)
        if not res.completed:
            await self._track_offline()
            return {"forwarded": 0, "declined": 0, "pending": len(pending), "error": res.message}
        if self.link.host_online is not False:
            self.link.host_online = True
            self.link.checked_at = self._loop_time()
        await self._track_offline()
        by_receipt = {(r["terminal_id"], r["receipt_no"]): r for r in pending}
        forwarded = declined = 0
        at = self._now_iso()
        for info in res.status_infos:
            key = (info.get("terminal_id"), info.get("receipt_no"))
            row = by_receipt.get(key) or by_receipt.get((None, info.get("receipt_no")))
            if row is None or info.get("amount_minor", row["amount"]) != row["amount"]:
                continue
            code = int(info.get("result_code", 0))
            done = await self.call(store.record_forward, row["id"], code, result_message(code), at)
            if done is not None:
                forwarded += code == 0
                declined += code != 0
                if code:
                    log.warning(
                        "payment %s of %s declined after the fact: %s",
                        row["id"],
                        row["amount"],
                        result_message(code),
                    )
        left = len(await self.call(store.pending_forward))
        return {"forwarded": forwarded, "declined": declined, "pending": left}

    async def redetect(self) -> Doc:
        """Drop the terminal link and connect afresh (an admin's "re-detect"): the answer
        to a status enquiry on the new link, or why there is none. Not while a payment
        holds the terminal."""
        from drivers.zvt.errors import ZvtError

        await self.ensure_started()
        if self.runners:
            return {**(await self.terminal_status()), "redetect": "busy with a payment"}
        async with self.link.lock:
            await self.link.drop()
            try:
                await self._status_enquiry_locked()
                outcome = "answered"
            except (ZvtError, TerminalUnavailable, OSError) as exc:
                outcome = f"no answer: {why(exc) if isinstance(exc, ZvtError) else exc}"
        return {**(await self.terminal_status()), "redetect": outcome}

    async def diagnosis(self) -> Doc:
        """06 70: the terminal checks its host connection (an admin's "test terminal")."""
        from drivers.zvt.errors import ZvtError

        await self.ensure_started()
        async with self.link.lock:
            try:
                res: TransactionResult = await self.link.call(lambda c: c.diagnosis())
            except ZvtError as exc:
                raise TerminalUnavailable(f"diagnosis failed: {why(exc)}") from exc
            self._note(res)
            await self._track_offline()
        return {
            "ok": res.approved,
            "message": res.message,
            "terminal_id": self.link.terminal_id,
            "host_link": {None: "unknown", True: "online", False: "offline"}[self.link.host_online],
        }

    # ---- end-of-day ----

    async def end_of_day(self, shift_id: str | None = None) -> Doc:
        """The terminal's end-of-day (06 50): offline payments are forwarded first; the
        totals are stored and returned (at shift close: next to the Z report)."""
        from drivers.zvt.errors import ZvtError

        await self.ensure_started()
        if not self.link.configured:
            return {"ok": False, "message": "no card terminal configured"}
        async with self.link.lock:
            await self._resolve_all_locked()
            forward = await self._forward_locked()
            try:
                res: TransactionResult = await self.link.call(lambda c: c.end_of_day())
            except (ZvtError, TerminalUnavailable) as exc:
                section: Doc = {"ok": False, "message": exc.message}
            else:
                self._note(res)
                section = {
                    "ok": res.approved,
                    "message": res.message,
                    "terminal_id": res.terminal_id or self.link.terminal_id,
                    "amount_minor": res.amount_minor,
                    "currency": res.currency,
                    "totals": res.totals,
                    "slip": res.slip,
                }
            section["forwarded_before"] = forward
            pending = await self.call(store.outstanding)
            section["pending_forward"] = {"count": pending.count, "amount_minor": pending.amount}
            stored: Doc = await self.call(store.record_eod, shift_id, bool(section["ok"]), section)
        return stored

    async def z_report_section(self) -> tuple[str, Doc] | None:
        """Shift-close hook: the terminal's end-of-day goes next to the Z report."""
        if not self.link.configured:
            return None
        if self.runners:
            raise Conflict(
                f"a card payment is running ({min(self.runners)}): close the shift after it",
                field="shift",
            )
        shift = await self.call(Register.current_shift)
        section = await self.end_of_day(shift["id"] if shift else None)
        section.pop("slip", None)  # printed from the end-of-day record, not the Z report
        return "card_terminal", section

    async def eod_runs(self) -> list[Doc]:
        runs: list[Doc] = await self.call(store.eod_runs)
        return runs

    # ---- the background task ----

    async def _monitor_loop(self) -> None:
        while True:
            try:
                work = await self.call(store.has_work) or self.offline_now
            except Exception:
                work = True
            timeout = self.cfg.poll_seconds if work else max(300.0, self.cfg.poll_seconds)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancel that
            # races with the wake-up, and stop() then waited out the whole timeout.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.wake.wait()
            self.wake.clear()
            try:
                await self._housekeeping()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("payments background task")

    async def _housekeeping(self) -> None:
        from drivers.zvt.errors import ZvtError

        await self._track_offline()  # the register-wide signal may have changed
        if self.link.lock.locked() or not self.link.configured:
            return
        async with self.link.lock:
            for row in await self.call(store.select, "state = ?", (sm.IN_PROGRESS,)):
                if row["id"] not in self.runners:  # its conversation ended unrecorded
                    await self._move(row["id"], sm.UNKNOWN, "not recorded: resolving")
            if await self._resolve_all_locked() is not None:
                return
            for row in await self.call(
                store.select,
                "state = 'approved' AND tender_id IS NULL AND reversed_by IS NULL",
            ):
                if row["kind"] == "payment" or (
                    row["kind"] == "reversal" and row["original_id"] is not None
                ):
                    await self._tender_locked(row["id"])
            pending = await self.call(store.outstanding)
            if pending.count or self.link.host_online is False:
                try:
                    await self._status_enquiry_locked()
                except (ZvtError, TerminalUnavailable) as exc:
                    log.info("card terminal not reachable: %s", exc.message)
                    return
            if pending.count and self.link.host_online:
                result = await self._forward_locked()
                if result.get("forwarded") or result.get("declined"):
                    log.info("forwarded offline card payments: %s", json.dumps(result))

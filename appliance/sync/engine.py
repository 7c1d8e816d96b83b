"""The sync engine of a running register: send the outbox, pull updates, go offline.

Two tasks on the event loop, sharing one link state:

- the pusher drains the outbox whenever the register committed own ops (or the link
  came back): batches of ``batch_size`` ops in the order they were recorded, the
  cursor moved after each 200; 5xx/408/429 → retried with exponential backoff and
  jitter; a 4xx naming an op → that op set aside as errored with the server's
  reason, the rest goes on (a 4xx naming none → the batch is halved until the op
  is found); no answer → offline.
- the puller long-polls the back office while online (saved-sale ops of the other
  registers, bundles, sync requests); while offline it probes with backoff from
  ``probe_min_seconds`` up to ``probe_max_seconds``, and at once on a network change
  or a "retry now".

Bundles are applied on the DB thread only when no sale is in progress; one that
arrives mid-sale waits and is applied right after the sale ends (a commit listener
kicks it). Then the engine tells the back office it synced (last synced, and by whom),
and shows staff a banner when a back office user asked for the sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from appliance import __version__, settings
from appliance.config import SyncSection
from appliance.errors import Conflict
from appliance.reducer import Op
from appliance.register import Register
from appliance.replication import apply_remote
from appliance.service import RegisterService
from appliance.sync import bundles, outbox
from appliance.sync import reset as reset_data
from appliance.sync.backoff import Backoff
from appliance.sync.client import (
    AuthRefused,
    BackOfficeClient,
    Rejected,
    ServerTrouble,
    SyncError,
    Unreachable,
)
from appliance.sync.link import link_for, share
from appliance.sync.offline import guard, refuse

log = logging.getLogger(__name__)
T = TypeVar("T")
Doc = dict[str, Any]


def _iso_in(seconds: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SyncEngine:
    def __init__(self, service: RegisterService, cfg: SyncSection) -> None:
        self.service = service
        self.cfg = cfg
        self.link = link_for(service)
        self.client: BackOfficeClient | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.register_id = service.config.register.id
        self.probe = Backoff(cfg.probe_min_seconds, cfg.probe_max_seconds)
        self.retry = Backoff(cfg.retry_min_seconds, cfg.retry_max_seconds)
        self._push_event = asyncio.Event()
        self._probe_event = asyncio.Event()
        self._apply_lock = asyncio.Lock()
        self._drain_lock = asyncio.Lock()
        self._synced_event = asyncio.Event()
        self._manual_done = asyncio.Event()
        self._manual_held = False  # a "sync now" waiting for the sale in progress
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight: asyncio.Task[Doc] | None = None
        self._kicked = False
        self.running = False
        self.state: Doc = {}
        self.waiting: list[Doc] = []  # bundles fetched, held while a sale is in progress
        self.request: Doc | None = None  # a back office user's sync request to answer
        self.manual_by: str | None = None  # a sync asked for at the register
        self.update_errors: list[Doc] = []
        self.relay_errors: list[Doc] = []  # relayed ops that could not be merged here
        self.last_error: str | None = None
        self.restoring = False
        self.watcher: Any = None

    # wiring ------------------------------------------------------------------------
    def on_open(self, register: Register) -> None:
        """On the DB thread, before any request: state, stored bundles, hooks."""
        share(self.link, register)
        self.state = outbox.state(register)
        self.link.paired = bool(self.state.get("token"))
        self.restoring = self.state.get("restore_after") is not None
        bundles.reapply_stored(register)
        register.in_transaction.append(guard(self.link, lambda: self.restoring))
        register.listeners.append(self._committed)

    def _committed(self, ops: list[Op]) -> None:
        """Commit listener (DB thread): wake the pusher; apply held updates after a sale."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        if any(op["register_id"] == self.register_id for op in ops):
            loop.call_soon_threadsafe(self._push_event.set)
        if (self.waiting or self.request or self._manual_held) and not self._kicked:
            self._kicked = True
            loop.call_soon_threadsafe(self._kick_apply)

    def _kick_apply(self) -> None:
        self._kicked = False
        task = asyncio.ensure_future(self._apply_waiting())
        self._tasks.append(task)  # keep a reference until stop
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.service.call(fn, *args)

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request
        self.running = True
        self._make_client()
        self._tasks += [
            asyncio.create_task(self._puller(), name="sync-puller"),
            asyncio.create_task(self._pusher(), name="sync-pusher"),
        ]
        if self.cfg.watch_network:
            from appliance.sync.netwatch import NetworkWatcher

            self.watcher = NetworkWatcher(self.network_changed)
            self.watcher.start()

    async def stop(self) -> None:
        self.running = False
        if self.watcher is not None:
            self.watcher.stop()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.client is not None:
            await self.client.close()
        if self.link.online:
            with contextlib.suppress(Exception):
                await self.call(outbox.put_many, {"online": False})

    def _make_client(self) -> None:
        url, token = self.state.get("url"), self.state.get("token")
        self.link.paired = bool(url and token)
        if url and token:
            self.client = BackOfficeClient(url, token, self.cfg.request_timeout_seconds)

    @property
    def saved_sales_sync(self) -> bool:
        return bool(self.state.get("saved_sales_sync", True))

    # link state ----------------------------------------------------------------------
    async def _up(self) -> None:
        if not self.link.set_online(True):
            return
        self.probe.reset()
        log.info("back office reachable: online")
        await self.call(outbox.put_many, {"online": True, "heartbeat_at": outbox.now_iso()})
        self._push_event.set()

    async def _down(self, exc: SyncError) -> None:
        self.last_error = exc.message
        if self.manual_by is not None:  # a "sync now" that found no back office: done
            self.manual_by = None
            self._manual_done.set()
        if not self.link.set_online(False, exc.message):
            return
        log.warning("back office not reachable, offline: %s", exc.message)
        await self.call(outbox.put_many, {"online": False})

    def network_changed(self) -> None:
        """A link, address or route changed: probe now rather than at the backoff's end."""
        if not self.link.online:
            self.probe.reset()
            self._probe_event.set()

    def retry_now(self) -> None:
        self.probe.reset()
        self._probe_event.set()
        self._push_event.set()

    async def _sleep(self, event: asyncio.Event, seconds: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)
        event.clear()

    # pushing ---------------------------------------------------------------------------
    async def _pusher(self) -> None:
        while self.running:
            await self._push_event.wait()
            self._push_event.clear()
            try:
                await self.drain()
            except Exception:
                log.exception("sync: pushing failed")
                await asyncio.sleep(self.retry.next())
                self._push_event.set()

    async def drain(self) -> None:
        """Send every pending own op, in order, until none is left or the link is down."""
        async with self._drain_lock:
            limit = self.cfg.batch_size
            while self.running and self.client is not None and self.link.online:
                batch = await self.call(outbox.next_batch, limit)
                if not batch:
                    return
                pending = await self.call(self._pending)
                ops = [{k: v for k, v in op.items() if k != "seq"} for op in batch]
                try:
                    await self.client.push(ops, max(0, pending - len(batch)), self.saved_sales_sync)
                except (Unreachable, AuthRefused) as exc:
                    await self._down(exc)
                    return
                except ServerTrouble as exc:
                    self.last_error = exc.message
                    await self._sleep(asyncio.Event(), self.retry.next())
                    continue
                except Rejected as exc:
                    bad = next((op for op in batch if op["op_id"] == exc.op_id), None)
                    if bad is None and len(batch) == 1:
                        bad = batch[0]
                    if bad is None:
                        limit = max(1, len(batch) // 2)  # find the refused op by halving
                        continue
                    log.warning("sync: back office refused op %s: %s", bad["op_id"], exc.message)
                    await self.call(outbox.mark_errored, bad, exc.message, exc.status)
                    continue
                await self.call(outbox.acknowledge, batch[-1]["seq"])
                self.retry.reset()
                limit = self.cfg.batch_size

    def _pending(self, register: Register) -> int:
        return outbox.pending_count(register.conn, register.register_id)

    # pulling ---------------------------------------------------------------------------
    async def _puller(self) -> None:
        first = True
        while self.running:
            if self.client is None:
                await self._sleep(self._probe_event, None)
                continue
            if not self.link.online and not first and self.manual_by is None:
                delay = self.probe.next()
                self.link.next_probe_at = _iso_in(delay)
                await self._sleep(self._probe_event, delay)
            first = False
            try:
                await self.pull_once()
            except asyncio.CancelledError:
                if not self.running:
                    raise
            except (Unreachable, ServerTrouble, AuthRefused) as exc:
                await self._down(exc)
            except Rejected as exc:
                self.last_error = exc.message
                await asyncio.sleep(self.retry.next())
            except Exception:
                log.exception("sync: pulling failed")
                await asyncio.sleep(self.retry.next())

    async def pull_once(self) -> None:
        assert self.client is not None
        quick = (self.manual_by and not self._manual_held) or not self.link.online
        wait = 0.0 if quick else self.cfg.long_poll_seconds
        body = {
            "relay_after": int(self.state.get("relay_cursor", 0)),
            "known": self._known(),
            "applied": self.state.get("applied", {}),
            "pending": await self.call(self._pending),
            "saved_sales_sync": self.saved_sales_sync,
            "wait": wait,
            "software": __version__,
        }
        self._inflight = asyncio.ensure_future(self.client.pull(body))
        try:
            resp = await self._inflight
        finally:
            self._inflight = None
        await self._up()
        if self.restoring:  # a reset whose restore was cut short: finish it first
            await self._restore()
        cursor = int(resp.get("relay_cursor", 0))
        if resp.get("relay") or cursor != body["relay_after"]:
            await self.call(self._apply_relay, resp.get("relay") or [], cursor)
        for bundle in resp.get("bundles") or []:
            self.waiting.append(bundle)
        if resp.get("sync_request"):
            self.request = resp["sync_request"]
        if self.manual_by:
            await self.drain()
        await self._apply_waiting()
        await self._heartbeat()

    def _known(self) -> dict[str, int]:
        known = dict(self.state.get("applied", {}))
        for item in [*self.waiting, *self.update_errors]:
            known[item["kind"]] = max(known.get(item["kind"], 0), int(item["version"]))
        return known

    def _apply_relay(self, register: Register, ops: list[Doc], cursor: int) -> None:
        if self.saved_sales_sync and ops:
            try:
                apply_remote(register, ops)
            except Exception:
                # One op that does not fit here (a customer code this register gave to
                # someone else while offline) must not hold up the rest: merge them one
                # by one and show the misfits in the status.
                for op in ops:
                    try:
                        apply_remote(register, [op])
                    except Exception as exc:
                        log.warning("sync: relayed op %s not merged: %s", op.get("op_id"), exc)
                        self.relay_errors = [
                            *self.relay_errors[-49:],
                            {"id": op.get("op_id"), "kind": op.get("kind"), "error": str(exc)},
                        ]
        outbox.put(register.conn, "relay_cursor", cursor)
        self.state["relay_cursor"] = cursor

    async def _heartbeat(self) -> None:
        values: Doc = {"heartbeat_at": outbox.now_iso()}
        if not self.waiting and await self.call(self._pending) == 0:
            values["last_synced_at"] = values["heartbeat_at"]
        await self.call(self._remember, values)

    def _remember(self, register: Register, values: Doc) -> None:
        outbox.put_many(register, values)
        self.state.update(values)

    # applying updates --------------------------------------------------------------------
    def _apply_if_idle(self, register: Register, held: list[Doc]) -> list[Doc] | None:
        if bundles.sale_in_progress(register, self.cfg.idle_sale_minutes):
            return None
        outcomes = bundles.apply_bundles(register, held)
        applied = dict(self.state.get("applied", {}))
        for outcome in outcomes:
            if outcome["applied"]:
                applied[outcome["kind"]] = max(applied.get(outcome["kind"], 0), outcome["version"])
        self._remember(register, {"applied": applied})
        return outcomes

    async def _apply_waiting(self) -> None:
        async with self._apply_lock:
            if not (self.waiting or self.request or self.manual_by):
                return
            held = list(self.waiting)
            outcomes = await self.call(self._apply_if_idle, held)
            if outcomes is None:
                # A sale is in progress: the commit listener brings us back after it.
                if self.manual_by is not None:
                    self._manual_held = True
                    self._manual_done.set()
                return
            del self.waiting[: len(held)]
            for outcome in outcomes:
                self.update_errors = [e for e in self.update_errors if e["kind"] != outcome["kind"]]
                if not outcome["applied"]:
                    log.warning("sync: %s update refused: %s", outcome["kind"], outcome["error"])
                    self.update_errors.append(outcome)
            await self._report_synced(bool(held))

    async def _report_synced(self, applied_something: bool) -> None:
        request, manual = self.request, self.manual_by
        if not (request or manual or applied_something) or self.client is None:
            return
        try:
            result = await self.client.synced(request["id"] if request else None, manual)
        except SyncError as exc:
            self.last_error = exc.message  # the back office asks again if it was a request
            return
        self.request, self.manual_by, self._manual_held = None, None, False
        values: Doc = {"last_synced_at": outbox.now_iso()}
        if request:
            values["banner"] = {
                "text": f"{request['by']} synced this register from the back office",
                "by": request["by"],
                "at": values["last_synced_at"],
                "requested_at": request.get("at"),
            }
        await self.call(self._remember, values)
        self.last_error = None
        self._synced_event.set()
        self._manual_done.set()
        log.info("sync: synced (%s)", result.get("by"))

    # actions for the admin panel -----------------------------------------------------------
    async def sync_now(self, by: str | None, timeout: float = 15.0) -> bool:
        """Push, pull and apply now (held while a sale is in progress); True when done."""
        if self.client is None:
            raise Conflict("this register is not paired with a back office", field="sync")
        self.manual_by = by or f"register {self.register_id}"
        self._synced_event.clear()
        self._manual_done.clear()
        self._manual_held = False
        self.retry_now()
        if self._inflight is not None:
            self._inflight.cancel()  # end the long poll: pull again at once
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._manual_done.wait(), timeout)
        return self._synced_event.is_set()

    async def pair(self, url: str, code: str, name: str | None) -> Doc:
        probe = BackOfficeClient(url, None, self.cfg.request_timeout_seconds)
        try:
            result = await probe.pair(code, self.register_id, name or self.register_id)
        except (AuthRefused, Rejected) as exc:
            reason = exc.error.get("message", exc.message)
            raise Conflict(f"pairing refused: {reason}", field="code") from None
        except SyncError as exc:
            raise Conflict(f"cannot pair: {exc.message}", field="url") from None
        finally:
            await probe.close()
        values = {
            "url": url.rstrip("/"),
            "token": result["token"],
            "store_id": result["store_id"],
            "store_name": result.get("store_name"),
            "relay_cursor": 0,
            "applied": {},
        }
        await self.call(self._remember, values)
        if self.client is not None:
            await self.client.close()
        self._make_client()
        self.retry_now()
        return {"store_id": result["store_id"], "register_id": self.register_id, "paired": True}

    async def set_saved_sales_sync(self, enabled: bool) -> Doc:
        """Turn saved-sales sync on (the store's saved sales arrive at once) or off.

        Off hands this register's saved sales to the back office (and so to the
        store's other registers) first, and only then removes them here.
        """
        if enabled == self.saved_sales_sync:
            return {"saved_sales_sync": enabled, "handed_over": 0}
        if enabled:
            await self.call(self._remember, {"saved_sales_sync": True, "relay_cursor": 0})
            self.retry_now()
            if self._inflight is not None:
                self._inflight.cancel()
            return {"saved_sales_sync": True, "handed_over": 0}
        if self.client is None:
            await self.call(self._remember, {"saved_sales_sync": False})
            return {"saved_sales_sync": False, "handed_over": 0}
        if not self.link.online:
            raise refuse("turning saved-sales sync off (it hands the saved sales over first)")
        await self.drain()
        sale_ids = await self.call(parked_sale_ids)
        if sale_ids:
            try:
                result = await self.client.handover(sale_ids)
            except SyncError as exc:
                raise Conflict(f"could not hand the saved sales over: {exc.message}") from None
            if result.get("missing"):
                raise Conflict(
                    f"the back office does not have saved sales {result['missing']} yet: "
                    "nothing was removed; try again when the outbox is empty"
                )
        await self.call(self._remove_saved, sale_ids)
        return {"saved_sales_sync": False, "handed_over": len(sale_ids)}

    def _remove_saved(self, register: Register, sale_ids: list[str]) -> None:
        remove_saved_sales(register, sale_ids)
        self._remember(register, {"saved_sales_sync": False})

    # reset data ------------------------------------------------------------------------
    async def reset(self, confirm: bool) -> Doc:
        """Wipe and restore from the back office; refused while unsynced data is unexported."""
        preview = await self.call(reset_data.preview)
        if preview["export_required"]:
            raise Conflict(
                preview["warning"] + " Export the unsynced data first (download it), then reset.",
                field="export",
                would_lose=preview["would_lose"],
            )
        if not confirm:
            raise Conflict(preview["warning"] + " Confirm to reset.", field="confirm")
        if self.client is None:
            raise Conflict("this register is not paired with a back office", field="sync")
        if not self.link.online:
            raise refuse("resetting data (the register restores itself from the back office)")
        backup = await self.call(self._wipe)
        restored = await self._restore()
        return {"reset": True, "backup": backup, "restored_ops": restored}

    def _wipe(self, register: Register) -> str:
        backup = reset_data.wipe(register, self.service.config.data_dir)
        settings.reload(register, self.service.config)  # without the back office's rows
        self.state = outbox.state(register)
        self.waiting.clear()
        self.update_errors.clear()
        self.request = None
        self._remember(register, {"restore_after": 0})
        self.restoring = True
        return backup

    async def _restore(self) -> int:
        """Bring back this register's own ops (page by page; resumes after a failure)."""
        assert self.client is not None
        restored = 0
        while self.state.get("restore_after") is not None:
            after = int(self.state["restore_after"])
            page = await self.client.restore(after, 2000)
            await self.call(self._restored, page, page["next_after"] if page["more"] else None)
            restored += len(page["ops"])
        self.restoring = False
        self.retry_now()
        if self._inflight is not None:
            self._inflight.cancel()
        return restored

    def _restored(self, register: Register, page: Doc, next_after: int | None) -> None:
        if page["ops"]:
            apply_remote(register, page["ops"])
        if next_after is None:
            reset_data.acknowledge_all(register)
            outbox.put(register.conn, "restore_after", None)
            self.state.pop("restore_after", None)
        else:
            self._remember(register, {"restore_after": next_after})


def parked_sale_ids(register: Register) -> list[str]:
    return [doc["id"] for doc in register.state.sales("status = 'parked'")]


def remove_saved_sales(register: Register, sale_ids: list[str]) -> None:
    """Delete saved sales (their ops and rows) that the back office holds in full.

    A ``sync.handover`` op is appended first: it records the hand-over in the log (and
    the back office), and it keeps the log's highest position above the deleted ops,
    so SQLite never hands a deleted op's position to a new op — positions are what
    the outbox cursor (and LAN peers' cursors) count on.
    """
    import uuid

    from appliance.storage.db import transaction
    from appliance.storage.oplog import insert_op

    conn = register.conn
    with transaction(conn):
        insert_op(
            conn,
            {
                "op_id": uuid.uuid4().hex,
                "register_id": register.register_id,
                "hlc": str(register.hlc.now()),
                "sale_id": None,
                "kind": "sync.handover",
                "payload": {"sale_ids": sale_ids, "at": outbox.now_iso()},
            },
        )
        cursor = outbox.sent_seq(conn)
        for sale_id in sale_ids:
            unsent = conn.execute(
                "SELECT count(*) FROM ops WHERE sale_id = ? AND register_id = ? AND (seq > ?"
                " OR op_id IN (SELECT op_id FROM sync_errored))",
                (sale_id, register.register_id, cursor),
            ).fetchone()[0]
            if unsent:
                raise Conflict(
                    f"saved sale {sale_id} has {unsent} op(s) the back office does not have "
                    "yet: nothing was removed",
                    field="saved_sales_sync",
                )
            conn.execute("DELETE FROM ops WHERE sale_id = ?", (sale_id,))
            conn.execute("DELETE FROM sales WHERE id = ?", (sale_id,))
    register.state.forget()

"""The LAN sync node of a running register: sessions with peers, push, anti-entropy.

One TCP session per pair of registers (the lower register id dials a discovered
peer; static peers are dialled by whoever lists them; a duplicate keeps the session
the lower id dialled). Over a session (appliance/lan/wire.py, all sealed):

- ``hello``: who I am (store, register, name, app version, protocol), my version
  vector and the saved sales I hold;
- ``ops``: ops pushed the moment this register commits them (its own ops only: each
  register pushes its own, so an edit reaches every peer in one hop), or a reply to
  a pull;
- ``beat``: every ``heartbeat_seconds``, my version vector. A peer ahead of me for
  some origin at two beats in a row (or at hello) is asked for exactly the ops after
  my number (``pull``) — that is anti-entropy, and how a register that was away, or
  missed a push, catches up; one pull per origin at a time, from one peer;
- ``held``: the saved sales I hold, when that changes (for "which register holds
  it" and the saved sales of registers on another app version).

A peer silent for ``peer_timeout_seconds`` is disconnected; registers of another app
version stay connected for the register list but exchange no ops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from appliance import __version__
from appliance.config import Config
from appliance.errors import ApplianceError, Conflict
from appliance.lan import replicate, wire
from appliance.lan.actions import checkout_blocker, payment_guard, renew_leases
from appliance.lan.crypto import ChannelError, Keyring, load_keyring
from appliance.lan.registry import PeerDirectory, PeerEntry
from appliance.lan.saved import held_sales
from appliance.reducer import Op
from appliance.register import Register
from appliance.service import RegisterService

log = logging.getLogger(__name__)

PROTO = 1
REGISTER_ID = re.compile(r"^[A-Za-z0-9]{1,16}$")
PULL_TIMEOUT = 5.0
SEND_TIMEOUT = 2.0
MAX_BACKOFF = 2.0
BEAT_BUFFER_LIMIT = 4 * 1024 * 1024

Message = dict[str, Any]
Address = tuple[str, int]


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _vector(raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict):
        return {}
    return {
        str(k): int(v)
        for k, v in raw.items()
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0
    }


def parse_peer(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class Session:
    def __init__(self, node: LanNode, channel: wire.Channel, dialer: str) -> None:
        hello = channel.hello
        self.channel = channel
        self.dialer = dialer
        self.peer_id = str(hello["register_id"])
        self.version = str(hello.get("version"))
        self.compatible = hello.get("proto") == PROTO and self.version == node.version
        self.peer_vv = _vector(hello.get("vv"))
        self.sent_mark = 0  # this register's own ops pushed to the peer, by number
        self.last_heard = time.monotonic()
        self.behind: set[str] = set()
        self.pulled: set[str] = set()
        self.closed = False
        self._lock = asyncio.Lock()

    async def send(self, message: Message) -> None:
        async with self._lock:
            await asyncio.wait_for(self.channel.send(message), SEND_TIMEOUT)

    def beat(self, message: Message) -> None:
        """Send without waiting: a heartbeat must never queue behind a big batch to
        a slow peer (or behind another peer). A peer that reads nothing gets none."""
        if self.channel.writer.transport.get_write_buffer_size() < BEAT_BUFFER_LIMIT:
            self.channel.write(message)

    def close(self) -> None:
        self.closed = True
        self.channel.close()


class LanNode:
    def __init__(
        self,
        config: Config,
        service: RegisterService,
        keyring: Keyring | None = None,
        *,
        version: str = __version__,
    ) -> None:
        self.config = config
        self.lan = config.lan
        self.service = service
        # Derived at start (scrypt takes a moment): None until then.
        self._keyring = keyring
        self.me = config.register.id
        self.store_id = config.store.id
        self.version = version
        self.directory = PeerDirectory(self.me, config.register.name, version)
        self.sessions: dict[str, Session] = {}
        self.vv: dict[str, int] = {}
        self.pulling: dict[str, float] = {}
        self.static: dict[Address, str | None] = {parse_peer(p): None for p in self.lan.peers}
        self.discovered: dict[str, tuple[Address, float]] = {}
        self._lost_at: dict[str, float] = {}
        self._backoff: dict[Address, tuple[float, int]] = {}
        self._dialing: set[Address] = set()
        self.changed = asyncio.Event()
        self.held_changed = asyncio.Event()
        self.stats: Counter[str] = Counter()
        self.port = self.lan.port
        self.loop: asyncio.AbstractEventLoop | None = None
        self._held: list[Any] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._server: asyncio.Server | None = None
        self._discovery: Any = None
        # Set (and replaced) whenever the version vector moves: for ``wait_until``.
        self._moved = asyncio.Event()

    # wiring into the register ----------------------------------------------
    def on_register_open(self, register: Register) -> None:
        """On the DB thread: push on every commit, guard payments by the lease."""
        register.listeners.append(self._on_commit)
        # First, so later hooks (the back office outbox) see a lease op it adds.
        register.in_transaction.insert(0, payment_guard(self.directory, self.lan.lease_seconds))
        register.before_charge.append(self._refuse_charge_in_checkout_elsewhere)

    def _refuse_charge_in_checkout_elsewhere(self, register: Register, sale_id: str) -> None:
        blocker = checkout_blocker(register, self.directory, sale_id)
        if blocker is not None:
            raise Conflict(f"sale {sale_id} is {blocker}: it cannot be paid here", field="sale_id")

    def _on_commit(self, ops: list[Op]) -> None:
        if self.loop is not None and ops:
            self.loop.call_soon_threadsafe(self._local_change)

    def _local_change(self) -> None:
        self.changed.set()
        self.held_changed.set()

    # life cycle -------------------------------------------------------------
    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            raise RuntimeError("lan node not started")
        return self._keyring

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        if self._keyring is None:
            self._keyring = load_keyring(self.config)
        self.vv, rows = await self.service.call(_load)
        for row in rows:
            self.directory.entries[row["register_id"]] = PeerEntry(**row)
        self._server = await asyncio.start_server(self._accept, self.lan.bind, self.lan.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        for loop_fn in (self._dial_loop, self._beat_loop, self._push_loop, self._held_loop):
            self._tasks.append(asyncio.create_task(loop_fn()))
        self._tasks.append(asyncio.create_task(self._lease_loop()))
        self.changed.set()
        self.held_changed.set()
        if self.lan.discovery:
            await self._start_discovery()
        log.info("lan: register %s syncing on port %d", self.me, self.port)

    async def _start_discovery(self) -> None:
        from appliance.lan.discovery import Discovery

        txt = {
            "store": self.store_id,
            "register": self.me,
            "name": self.config.register.name,
            "version": self.version,
            "proto": str(PROTO),
            "kid": self.keyring.current.key_id.hex(),
        }
        self._discovery = Discovery(txt, self.port, list(self.lan.interfaces), self._found)
        try:
            await self._discovery.start()
        except Exception as exc:  # no multicast here: the static list still works
            log.warning("lan: discovery (mDNS) unavailable: %s", exc)
            self._discovery = None

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for session in list(self.sessions.values()):
            session.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        if self._discovery is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._discovery.stop(), 3)
        for entry in self.directory.entries.values():
            if entry.connected:
                entry.connected = False
                entry.last_seen = _iso_now()
                await self.service.call(_save_peer, entry.row())

    def _found(self, txt: dict[str, Any]) -> None:
        rid = str(txt.get("register", ""))
        if txt.get("store") != self.store_id or rid == self.me or not REGISTER_ID.match(rid):
            return
        address = (str(txt["host"]), int(txt["port"]))
        known = self.discovered.get(rid)
        if known is None or known[0] != address:
            self.discovered[rid] = (address, time.monotonic())
            self._backoff.pop(address, None)

    def add_peer(self, host: str, port: int) -> None:
        """A static peer (as from ``lan.peers``), e.g. one learnt after start."""
        self.static.setdefault((host, port), None)

    # sessions ---------------------------------------------------------------
    def _hello(self) -> Message:
        return {
            "t": "hello",
            "register_id": self.me,
            "name": self.config.register.name,
            "store_id": self.store_id,
            "version": self.version,
            "proto": PROTO,
            "vv": self.vv,
            "held": self._held,
        }

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            channel = await wire.accept(reader, writer, self.keyring, self._hello())
        except (ChannelError, OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            self._refused(writer, exc)
            writer.close()
            return
        await self._run(channel, dialer=str(channel.hello.get("register_id")))

    def _refused(self, writer: asyncio.StreamWriter, exc: BaseException) -> None:
        reason = getattr(exc, "reason", "io")
        self.stats[f"refused_{reason}"] += 1
        if isinstance(exc, ChannelError):
            peer = writer.get_extra_info("peername")
            host = peer[0] if isinstance(peer, tuple) else str(peer)
            self.directory.unpaired[host] = {
                "address": host,
                "at": _iso_now(),
                "reason": str(exc),
            }
            log.warning("lan: refused a sync connection from %s: %s", host, exc)

    async def _dial(self, address: Address) -> None:
        self._dialing.add(address)
        try:
            channel = await wire.connect(*address, self.keyring, self._hello(), timeout=2.0)
        except (ChannelError, OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            _, fails = self._backoff.get(address, (0.0, 0))
            delay = min(MAX_BACKOFF, 0.25 * 2**fails) * (0.5 + random.random())
            self._backoff[address] = (time.monotonic() + delay, fails + 1)
            if isinstance(exc, ChannelError):
                self.stats[f"dial_{exc.reason}"] += 1
                log.warning("lan: %s:%d: %s", *address, exc)
            return
        finally:
            self._dialing.discard(address)
        self._backoff.pop(address, None)
        if address in self.static:
            self.static[address] = str(channel.hello.get("register_id"))
        await self._run(channel, dialer=self.me)

    async def _run(self, channel: wire.Channel, dialer: str) -> None:
        hello = channel.hello
        pid = hello.get("register_id")
        if (
            hello.get("t") != "hello"
            or not isinstance(pid, str)
            or not REGISTER_ID.match(pid)
            or hello.get("store_id") != self.store_id
            or pid == self.me
        ):
            channel.close()
            return
        session = Session(self, channel, dialer)
        existing = self.sessions.get(pid)
        if existing is not None and not existing.closed:
            if existing.dialer != dialer and dialer != min(self.me, pid):
                channel.close()  # keep the session the lower register id dialled
                return
            existing.close()
        self.sessions[pid] = session
        await self._connected(session, hello)
        # Reading never waits for processing: a peer is alive while its frames arrive,
        # however long this register takes to apply a big batch.
        inbox: asyncio.Queue[Message | BaseException] = asyncio.Queue()

        async def read() -> None:
            try:
                while True:
                    message = await channel.recv()
                    session.last_heard = time.monotonic()
                    inbox.put_nowait(message)
            except BaseException as exc:
                inbox.put_nowait(exc)

        reader = asyncio.create_task(read())
        try:
            if session.compatible:
                session.sent_mark = max(session.peer_vv.get(self.me, 0), self.vv.get(self.me, 0))
                await self._catch_up(session, every=True)
            while not session.closed:
                item = await inbox.get()
                if isinstance(item, BaseException):
                    raise item
                await self._dispatch(session, item)
        except ChannelError as exc:
            self.stats[f"rejected_{exc.reason}"] += 1
            log.warning("lan: session with %s ended: %s", pid, exc)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ApplianceError) as exc:
            log.info("lan: session with %s ended: %s", pid, exc or type(exc).__name__)
        finally:
            reader.cancel()
            session.close()
            for origin in session.pulled:
                self.pulling.pop(origin, None)
            if self.sessions.get(pid) is session:
                del self.sessions[pid]
                await self._disconnected(pid)

    async def _connected(self, session: Session, hello: Message) -> None:
        now = _iso_now()
        entry = self.directory.entries.get(session.peer_id)
        raw = hello.get("held")
        held: list[dict[str, Any]] = raw if isinstance(raw, list) else []
        if entry is None:
            entry = PeerEntry(session.peer_id, "", self.store_id, "", "", now, now)
            self.directory.entries[session.peer_id] = entry
        entry.name = str(hello.get("name") or session.peer_id)[:64]
        entry.version = session.version
        entry.address = session.channel.address
        entry.last_seen = now
        entry.held = held
        entry.connected = True
        log.info("lan: connected to %s (%s, version %s)", entry.name, entry.address, entry.version)
        await self.service.call(_save_peer, entry.row())

    async def _disconnected(self, pid: str) -> None:
        self._lost_at[pid] = time.monotonic()
        entry = self.directory.entries.get(pid)
        if entry is None:
            return
        entry.connected = False
        entry.last_seen = _iso_now()
        log.info("lan: %s disconnected", pid)
        with contextlib.suppress(Exception):
            await self.service.call(_save_peer, entry.row())

    # messages ---------------------------------------------------------------
    async def _dispatch(self, session: Session, message: Message) -> None:
        kind = message["t"]
        if kind == "beat":
            session.peer_vv = _vector(message.get("vv"))
            entry = self.directory.entries.get(session.peer_id)
            if entry is not None:
                entry.last_seen = _iso_now()
            await self._catch_up(session, every=False)
        elif kind == "ops" and session.compatible:
            ops = message.get("ops")
            if not isinstance(ops, list):
                raise ChannelError("ops must be a list")
            await self._apply(ops)
            if message.get("reply"):
                for origin in session.pulled:
                    self.pulling.pop(origin, None)
                session.pulled.clear()
                await self._catch_up(session, every=True)
        elif kind == "pull" and session.compatible:
            wanted = _vector(message.get("from"))
            served: list[Any] = await self.service.call(replicate.ops_missing, wanted)
            self.stats["ops_served"] += len(served)
            await session.send({"t": "ops", "ops": served, "reply": True})
        elif kind == "held":
            entry = self.directory.entries.get(session.peer_id)
            sales = message.get("sales")
            if entry is not None and isinstance(sales, list):
                entry.held = sales
                await self.service.call(_save_peer, entry.row())

    async def _apply(self, ops: list[Any]) -> None:
        new, moved = await self.service.call(replicate.apply_batch, ops, dict(self.vv))
        for origin, high in moved.items():
            self.vv[origin] = max(self.vv.get(origin, 0), high)
        self.stats["ops_received"] += len(ops)
        self.stats["ops_applied"] += new
        if new:
            self.held_changed.set()
        if moved:
            self._vector_moved()

    def _vector_moved(self) -> None:
        self._moved.set()
        self._moved = asyncio.Event()

    async def wait_until(self, origin: str, seq: int, timeout: float) -> bool:
        """Wait until this register holds ``origin``'s ops up to ``seq`` (no gap).

        For the admin panel ("has R3's sale reached this register?"), tests and the
        benchmark: it answers the moment the op is applied, without polling.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.vv.get(origin, 0) < seq:
            left = deadline - loop.time()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait(), left)
        return True

    async def _catch_up(self, session: Session, every: bool) -> None:
        """Pull what the peer has and this register lacks (at once when ``every``,
        else only what was missing at the previous beat too: pushes in flight)."""
        if not session.compatible:
            return
        ahead = {o for o, n in session.peer_vv.items() if n > self.vv.get(o, 0)}
        now = time.monotonic()
        wanted = {
            o: self.vv.get(o, 0)
            for o in ahead
            if (every or o in session.behind) and self.pulling.get(o, 0.0) < now
        }
        session.behind = ahead
        if wanted:
            for origin in wanted:
                self.pulling[origin] = now + PULL_TIMEOUT
            session.pulled |= set(wanted)
            self.stats["pulls"] += 1
            await session.send({"t": "pull", "from": wanted})

    # loops ------------------------------------------------------------------
    async def _broadcast(self, sends: list[tuple[Session, Message]]) -> None:
        async def one(session: Session, message: Message) -> None:
            try:
                await session.send(message)
            except (OSError, TimeoutError, ConnectionError):
                session.close()

        await asyncio.gather(*(one(s, m) for s, m in sends))

    async def _push_loop(self) -> None:
        while True:
            await self.changed.wait()
            self.changed.clear()
            targets = [s for s in self.sessions.values() if s.compatible and not s.closed]
            mine = self.vv.get(self.me, 0)
            after = min((s.sent_mark for s in targets), default=mine)
            ops = await self.service.call(replicate.ops_of, self.me, min(after, mine))
            if ops:
                self.vv[self.me] = max(mine, ops[-1]["origin_seq"])
                self._vector_moved()
            sends = []
            for session in targets:
                fresh = [op for op in ops if op["origin_seq"] > session.sent_mark]
                if fresh:
                    session.sent_mark = fresh[-1]["origin_seq"]
                    sends.append((session, {"t": "ops", "ops": fresh}))
            self.stats["ops_pushed"] += sum(len(m["ops"]) for _, m in sends)
            await self._broadcast(sends)
            if len(ops) >= replicate.BATCH:
                self.changed.set()

    async def _beat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lan.heartbeat_seconds)
            now = time.monotonic()
            beat = {"t": "beat", "vv": self.vv}
            for session in list(self.sessions.values()):
                if session.closed:
                    continue
                if now - session.last_heard > self.lan.peer_timeout_seconds:
                    log.info("lan: %s silent for %.1f s", session.peer_id, now - session.last_heard)
                    session.close()
                    continue
                try:
                    session.beat(beat)
                except (OSError, RuntimeError):
                    session.close()

    async def _held_loop(self) -> None:
        while True:
            await self.held_changed.wait()
            await asyncio.sleep(0.05)  # one update for a burst of changes
            self.held_changed.clear()
            held = await self.service.call(_held, self.me)
            if held != self._held:
                self._held = held
                message = {"t": "held", "sales": held}
                await self._broadcast([(s, message) for s in self.sessions.values()])

    async def _lease_loop(self) -> None:
        every = self.lan.lease_seconds / 3
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(ApplianceError):
                await self.service.call(renew_leases, self.directory, self.lan.lease_seconds)

    async def _dial_loop(self) -> None:
        while True:
            now = time.monotonic()
            targets: list[Address] = []
            live = {pid for pid, s in self.sessions.items() if not s.closed}
            for address, pid in self.static.items():
                if pid != self.me and (pid is None or pid not in live):
                    targets.append(address)
            for rid, (address, since) in self.discovered.items():
                # The lower id dials; the other only if that has not happened for a while
                # (its discovery may be one-sided).
                waited = now - max(since, self._lost_at.get(rid, 0.0))
                mine_to_dial = self.me < rid or waited > 3 * self.lan.heartbeat_seconds
                if rid not in live and mine_to_dial:
                    targets.append(address)
            for address in targets:
                if address in self._dialing or self._backoff.get(address, (0.0, 0))[0] > now:
                    continue
                self._dialing.add(address)
                self._tasks.append(asyncio.create_task(self._dial(address)))
            self._tasks = [t for t in self._tasks if not t.done()]
            await asyncio.sleep(0.2)

    # reading ----------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {
            "enabled": True,
            "register_id": self.me,
            "store_id": self.store_id,
            "version": self.version,
            "port": self.port,
            "key_id": self._keyring.current.key_id.hex() if self._keyring else None,
            "discovery": self._discovery is not None,
            "connected": sorted(self.sessions),
            "vector": dict(self.vv),
            "stats": dict(self.stats),
            "unpaired": list(self.directory.unpaired.values()),
        }


# on the register's DB thread --------------------------------------------------
def _load(register: Register) -> tuple[dict[str, int], list[dict[str, Any]]]:
    import json

    rows = register.conn.execute(
        "SELECT register_id, name, store_id, version, address, first_seen, last_seen,"
        " held_sales FROM lan_peers"
    ).fetchall()
    peers = [
        {
            "register_id": r[0],
            "name": r[1] or r[0],
            "store_id": r[2],
            "version": r[3],
            "address": r[4] or "",
            "first_seen": r[5],
            "last_seen": r[6],
            "held": json.loads(r[7]),
        }
        for r in rows
    ]
    return replicate.vector(register), peers


def _save_peer(register: Register, row: dict[str, Any]) -> None:
    import json

    register.conn.execute(
        "INSERT INTO lan_peers (register_id, name, store_id, version, address, first_seen,"
        " last_seen, held_sales) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(register_id) DO UPDATE"
        " SET name=excluded.name, store_id=excluded.store_id, version=excluded.version,"
        " address=excluded.address, last_seen=excluded.last_seen,"
        " held_sales=excluded.held_sales",
        (
            row["register_id"],
            row["name"],
            row["store_id"],
            row["version"],
            row["address"],
            row["first_seen"],
            row["last_seen"],
            json.dumps(row["held"]),
        ),
    )


def _held(register: Register, me: str) -> list[dict[str, Any]]:
    return held_sales(register.state.sales("status IN ('open', 'parked')"), me)

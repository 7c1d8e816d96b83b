"""The back office's storage: one small layer over SQLite or PostgreSQL, portable SQL.

Every query in the back office is written once, with ``?`` placeholders and SQL that
both engines speak (``INSERT … ON CONFLICT … DO NOTHING/UPDATE``, ``RETURNING``,
TEXT timestamps in ISO form that sort as strings). The two classes here only differ
in how they open connections, translate placeholders and serialize writers:

- SQLite: one connection per thread, WAL with ``synchronous=FULL`` (an acknowledged
  batch survives a power cut), write transactions ``BEGIN IMMEDIATE``.
- PostgreSQL (psycopg 3, imported only when used): a connection pool; writes that
  touch one store's relay sequence take a transaction-scoped advisory lock on the
  store, so relay sequence numbers of a store become visible in commit order.

``--db sqlite:///path/to/file.db`` or ``--db postgresql://user@host:port/name``.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

Row = dict[str, Any]


class StorageError(Exception):
    """The database URL or the database itself is unusable (said at start)."""


class IntegrityError(Exception):
    """A uniqueness rule of the schema refused a write (mapped from either engine)."""


def _params(params: Sequence[Any]) -> tuple[Any, ...]:
    """The same rule on both engines: PostgreSQL text cannot hold NUL, so neither may ours."""
    from appliance.errors import ValidationError

    for value in params:
        if isinstance(value, str) and "\x00" in value:
            raise ValidationError("text must not contain NUL (0x00) characters")
    return tuple(params)


class Tx(Protocol):
    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...
    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...
    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def lock_store(self, store_id: str) -> None: ...


class _SQLiteTx:
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        try:
            self.conn.execute(sql, _params(params))
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            cur = self.conn.execute(sql, _params(params))
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from None
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.conn.execute(sql, _params(params)).fetchone()
        return row[0] if row else None

    def lock_store(self, store_id: str) -> None:
        """Nothing to do: BEGIN IMMEDIATE already holds SQLite's one write lock."""


class _PostgresTx:
    dialect = "postgresql"

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def _run(self, sql: str, params: Sequence[Any]) -> Any:
        import psycopg

        try:
            return self.conn.execute(self._sql(sql), _params(params))
        except psycopg.errors.UniqueViolation as exc:
            raise IntegrityError(str(exc)) from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._run(sql, params)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cur = self._run(sql, params)
        return list(cur.fetchall()) if cur.description else []

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.one(sql, params)
        return next(iter(row.values())) if row else None

    def lock_store(self, store_id: str) -> None:
        key = zlib.crc32(store_id.encode()) - 2**31
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))


class Database(ABC):
    """What the back office needs from a database: read and write transactions."""

    dialect = "none"
    url = ""

    @abstractmethod
    def write(self) -> AbstractContextManager[Tx]:
        """One write transaction: committed on leaving, rolled back on an error."""

    @abstractmethod
    def read(self) -> AbstractContextManager[Tx]:
        """One read transaction (a consistent snapshot)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


class SQLiteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # Writers of this process queue here in turn, instead of polling SQLite's lock
        # with the busy handler's growing sleeps (which made p99 latency seconds long);
        # busy_timeout still covers other processes on the same file.
        self._writer = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(f"{self.path}: cannot switch to WAL (got {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def write(self) -> Iterator[Tx]:
        conn = self._conn()
        with self._writer:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteTx(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def read(self) -> Iterator[Tx]:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield _SQLiteTx(conn)
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, url: str, max_size: int = 16) -> None:
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        self.url = url
        try:
            self.pool = ConnectionPool(
                url,
                min_size=1,
                max_size=max_size,
                # No server-side prepared statements: their generic plans, made while
                # the tables are young, keep seq-scanning as ops grow (a 10,000-sale
                # drain ran 6x slower); planning each query with its values does not.
                kwargs={"row_factory": dict_row, "autocommit": False, "prepare_threshold": None},
                open=True,
                timeout=30,
            )
            self.pool.wait(timeout=10)
        except Exception as exc:
            raise StorageError(f"{_redact(url)}: cannot connect: {exc}") from None

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with self.pool.connection() as conn, conn.transaction():
            yield _PostgresTx(conn)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self.pool.connection() as conn, conn.transaction():
            yield _PostgresTx(conn)

    def close(self) -> None:
        self.pool.close()


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def open_database(url: str) -> Database:
    """``sqlite:///relative/or//absolute/path.db`` or ``postgresql://…``; migrated on open."""
    from appliance.backoffice.schema import migrate

    db: Database
    if url.startswith("sqlite:///"):
        db = SQLiteDatabase(Path(url.removeprefix("sqlite:///")))
    elif url.startswith(("postgresql://", "postgres://")):
        db = PostgresDatabase(url)
    else:
        raise StorageError(
            f"--db {url!r}: give sqlite:///path/to/file.db or postgresql://user@host/dbname"
        )
    migrate(db)
    return db

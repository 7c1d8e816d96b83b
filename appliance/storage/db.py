"""Opening the register's SQLite database durably, and migrating its schema.

WAL with ``synchronous=FULL``: every commit fsyncs the WAL before it returns, so a
sale the API reported complete survives kill -9 and a power cut (the crash test in
tests/ shows it). Migrations are numbered functions run in order inside one
transaction each; a database from an older version upgrades on start, and one from a
newer version is refused rather than misread.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from appliance.errors import ApplianceError, StorageUnavailable


class SchemaTooNew(ApplianceError):
    code = "schema_too_new"
    http_status = 500


def _m1_initial(db: sqlite_utils.Database) -> None:
    db.create_table(
        "ops",
        {
            "seq": int,
            "op_id": str,
            "register_id": str,
            "hlc": str,
            "sale_id": str,
            "kind": str,
            "payload": str,
        },
        pk="seq",
        not_null={"op_id", "register_id", "hlc", "kind", "payload"},
    )
    db.execute("CREATE UNIQUE INDEX ops_op_id ON ops(op_id)")
    db.execute("CREATE INDEX ops_sale ON ops(sale_id)")
    db.create_table(
        "sales",
        {
            "id": str,
            "register_id": str,
            "kind": str,
            "status": str,
            "name": str,
            "receipt_no": str,
            "shift_id": str,
            "customer_id": str,
            "total": int,
            "opened_at": str,
            "completed_at": str,
            "refund_of": str,
            "doc": str,
        },
        pk="id",
        not_null={"register_id", "kind", "status", "doc"},
    )
    db.execute("CREATE UNIQUE INDEX sales_receipt ON sales(receipt_no)")
    db.create_table(
        "shifts",
        {"id": str, "register_id": str, "number": int, "status": str, "doc": str},
        pk="id",
        not_null={"register_id", "number", "status", "doc"},
    )
    db.create_table(
        "products",
        {
            "sku": str,
            "name": str,
            "price": int,
            "tax_category": str,
            "sold_by": str,
        },
        pk="sku",
        not_null={"name", "price", "tax_category", "sold_by"},
    )
    # code: the look-up key (numeric GTINs zero-padded to 14 digits); raw: as imported.
    db.create_table(
        "barcodes", {"code": str, "sku": str, "raw": str}, pk="code", not_null={"sku", "raw"}
    )
    db.execute("CREATE INDEX barcodes_sku ON barcodes(sku)")
    db.create_table(
        "customers",
        {"id": str, "code": str, "name": str, "email": str},
        pk="id",
        not_null={"code", "name"},
    )
    db.execute("CREATE UNIQUE INDEX customers_code ON customers(code)")
    db.create_table("counters", {"name": str, "value": int}, pk="name", not_null={"value"})


def _m2_identity_and_indexes(db: sqlite_utils.Database) -> None:
    # The database remembers which register it belongs to, so a data folder copied
    # to another box (or a config typo) cannot silently mix two registers' sales.
    db.create_table("meta", {"key": str, "value": str}, pk="key", not_null={"value"})
    db.execute("CREATE INDEX sales_status ON sales(status)")
    db.execute("CREATE INDEX sales_shift ON sales(shift_id)")


def _m3_payments(db: sqlite_utils.Database) -> None:
    from appliance.payments.schema import create

    create(db)


def _m4_sync(db: sqlite_utils.Database) -> None:
    from appliance.sync.schema import create

    create(db)


def _m5_print_queue(db: sqlite_utils.Database) -> None:
    from appliance.printing.schema import create

    create(db)


def _m6_lan(db: sqlite_utils.Database) -> None:
    from appliance.lan.schema import create

    create(db)


def _m7_auth(db: sqlite_utils.Database) -> None:
    from appliance.auth.schema import create

    create(db)


def _m8_settings(db: sqlite_utils.Database) -> None:
    from appliance.settings_schema import create

    create(db)


def _m9_print_requests(db: sqlite_utils.Database) -> None:
    from appliance.printing.schema import add_request_ids

    add_request_ids(db)


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _m1_initial,
    _m2_identity_and_indexes,
    _m3_payments,
    _m4_sync,
    _m5_print_queue,
    _m6_lan,
    _m7_auth,
    _m8_settings,
    _m9_print_requests,
]
SCHEMA_VERSION = len(MIGRATIONS)

# Tables whose content is derived from the op log (compared by `appliance db check`).
STATE_TABLES = ("sales", "shifts", "products", "barcodes", "customers", "counters", "users")


def connect(path: Path | str, *, create: bool = True) -> sqlite3.Connection:
    """Open a connection with the project's pragmas (autocommit; explicit transactions)."""
    if path != ":memory:":
        path = Path(path)
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.exists():
            raise StorageUnavailable(f"database {path} does not exist")
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA foreign_keys = ON")
    if path != ":memory:":
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StorageUnavailable(f"database {path}: cannot switch to WAL (got {mode})")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def sync_wal(db_path: Path) -> None:
    """fdatasync the WAL: every frame written so far survives a power cut.

    Commits made with ``synchronous=NORMAL`` (cart edits, storage.durability =
    "completed") sit in the page cache until this or the next FULL commit, which
    syncs the same file and so takes them along.
    """
    try:
        fd = os.open(f"{db_path}-wal", os.O_RDONLY)
    except FileNotFoundError:
        return  # nothing written since the last checkpoint removed it
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE … COMMIT, rolled back whole on any error.

    Inside an open transaction (a job the service runs in a group commit) it is a
    savepoint instead: all or nothing the same, durable when the group commits.
    """
    nested = conn.in_transaction
    conn.execute("SAVEPOINT nested" if nested else "BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("RELEASE nested" if nested else "COMMIT")
    except BaseException:
        # SQLite rolls back by itself on some errors (SQLITE_FULL); a failed COMMIT
        # leaves the transaction open. Either way nothing of it may remain.
        if conn.in_transaction:
            if nested:
                conn.execute("ROLLBACK TO nested")
                conn.execute("RELEASE nested")
            else:
                conn.execute("ROLLBACK")
        raise


@contextmanager
def atomic(conn: sqlite3.Connection) -> Iterator[None]:
    """A transaction, or a savepoint inside the caller's (the service's group commit)."""
    if not conn.in_transaction:
        with transaction(conn):
            yield
        return
    conn.execute("SAVEPOINT atomic")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK TO atomic")
            conn.execute("RELEASE atomic")
        raise
    conn.execute("RELEASE atomic")


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema to ``target``; returns the version found before."""
    found = schema_version(conn)
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"database schema version {found} is newer than this software "
            f"(knows up to {SCHEMA_VERSION}): update the register software"
        )
    db = sqlite_utils.Database(conn)
    for version in range(found + 1, target + 1):
        with transaction(conn):
            MIGRATIONS[version - 1](db)
            conn.execute(f"PRAGMA user_version = {version}")
    return found

"""The back office's schema: numbered migrations in portable SQL.

Each migration is a list of statements run in one transaction; ``schema_version``
says which ran. The only per-engine words are the identity column and the big
integer type, substituted below. Times are ISO-8601 UTC text (sorts as it reads),
JSON documents are text, booleans are 0/1 integers — the same on both engines.
"""

from __future__ import annotations

from appliance.backoffice.storage import Database, StorageError

_TYPES = {
    "sqlite": {"ID": "INTEGER PRIMARY KEY AUTOINCREMENT", "BIG": "INTEGER"},
    "postgresql": {"ID": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BIG": "BIGINT"},
}

MIGRATIONS: list[list[str]] = [
    # 1: stores, people, registers, the op store and what is derived from it.
    [
        """CREATE TABLE stores (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL,
            version {BIG} NOT NULL DEFAULT 0)""",
        """CREATE TABLE users (
            id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
            password_hash TEXT NOT NULL, role TEXT NOT NULL, stores TEXT,
            created_at TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0)""",
        """CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id),
            created_at TEXT NOT NULL, expires_at TEXT NOT NULL)""",
        """CREATE TABLE pairing_codes (
            code_hash TEXT PRIMARY KEY, store_id TEXT NOT NULL REFERENCES stores(id),
            register_id TEXT, name TEXT, created_by TEXT NOT NULL, created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL, used_at TEXT)""",
        """CREATE TABLE registers (
            store_id TEXT NOT NULL REFERENCES stores(id), register_id TEXT NOT NULL,
            name TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, paired_at TEXT NOT NULL,
            last_seen_at TEXT, last_synced_at TEXT, last_sync_by TEXT,
            pending INTEGER NOT NULL DEFAULT 0, saved_sales_sync INTEGER NOT NULL DEFAULT 1,
            versions TEXT NOT NULL DEFAULT '{{}}', software TEXT,
            PRIMARY KEY (store_id, register_id))""",
        """CREATE TABLE sync_requests (
            id {ID}, store_id TEXT NOT NULL, register_id TEXT NOT NULL,
            requested_by TEXT NOT NULL, requested_at TEXT NOT NULL,
            delivered_at TEXT, done_at TEXT)""",
        "CREATE INDEX sync_requests_open ON sync_requests (store_id, register_id, done_at)",
        """CREATE TABLE ops (
            seq {ID}, store_id TEXT NOT NULL, op_id TEXT NOT NULL, register_id TEXT NOT NULL,
            hlc TEXT NOT NULL, sale_id TEXT, kind TEXT NOT NULL, payload TEXT NOT NULL,
            received_at TEXT NOT NULL, UNIQUE (store_id, op_id))""",
        "CREATE INDEX ops_sale ON ops (store_id, sale_id)",
        "CREATE INDEX ops_register ON ops (store_id, register_id, seq)",
        """CREATE TABLE relay (
            seq {ID}, store_id TEXT NOT NULL, op_id TEXT NOT NULL, sale_id TEXT,
            origin TEXT NOT NULL, UNIQUE (store_id, op_id))""",
        "CREATE INDEX relay_store ON relay (store_id, seq)",
        """CREATE TABLE sales (
            store_id TEXT NOT NULL, sale_id TEXT NOT NULL, register_id TEXT NOT NULL,
            kind TEXT NOT NULL, status TEXT NOT NULL, name TEXT, receipt_no TEXT,
            total {BIG} NOT NULL DEFAULT 0, opened_at TEXT, completed_at TEXT,
            completed_by TEXT, saved INTEGER NOT NULL DEFAULT 0, updated_hlc TEXT,
            doc TEXT NOT NULL, fold_error TEXT, PRIMARY KEY (store_id, sale_id))""",
        "CREATE UNIQUE INDEX sales_receipt ON sales (store_id, receipt_no)",
        "CREATE INDEX sales_status ON sales (store_id, status)",
        """CREATE TABLE shifts (
            store_id TEXT NOT NULL, shift_id TEXT NOT NULL, register_id TEXT NOT NULL,
            number INTEGER NOT NULL, status TEXT NOT NULL, opened_at TEXT, closed_at TEXT,
            counted {BIG}, z_no INTEGER, doc TEXT NOT NULL, updated_hlc TEXT NOT NULL,
            PRIMARY KEY (store_id, shift_id))""",
        """CREATE TABLE customers (
            store_id TEXT NOT NULL, customer_id TEXT NOT NULL, code TEXT NOT NULL,
            name TEXT NOT NULL, email TEXT, origin TEXT NOT NULL, updated_hlc TEXT NOT NULL,
            PRIMARY KEY (store_id, customer_id))""",
        "CREATE UNIQUE INDEX customers_code ON customers (store_id, code)",
        """CREATE TABLE products (
            store_id TEXT NOT NULL, sku TEXT NOT NULL, name TEXT NOT NULL,
            price {BIG} NOT NULL, tax_category TEXT NOT NULL, sold_by TEXT NOT NULL,
            barcodes TEXT NOT NULL, version {BIG} NOT NULL, origin TEXT NOT NULL,
            on_hand {BIG}, updated_at TEXT NOT NULL, PRIMARY KEY (store_id, sku))""",
        "CREATE INDEX products_version ON products (store_id, version)",
        """CREATE TABLE product_barcodes (
            store_id TEXT NOT NULL, code TEXT NOT NULL, sku TEXT NOT NULL,
            PRIMARY KEY (store_id, code))""",
        """CREATE TABLE bundles (
            store_id TEXT NOT NULL, kind TEXT NOT NULL, version {BIG} NOT NULL,
            payload TEXT NOT NULL, updated_at TEXT NOT NULL, updated_by TEXT NOT NULL,
            PRIMARY KEY (store_id, kind))""",
        """CREATE TABLE webshop_keys (
            key_hash TEXT PRIMARY KEY, store_id TEXT NOT NULL REFERENCES stores(id),
            name TEXT NOT NULL, created_at TEXT NOT NULL)""",
        """CREATE TABLE webshop_orders (
            store_id TEXT NOT NULL, order_id TEXT NOT NULL, sale_id TEXT NOT NULL,
            received_at TEXT NOT NULL, PRIMARY KEY (store_id, order_id))""",
    ],
    # 2: catalog removals (tombstones the catalog bundle carries) and the customers
    # bundle (each customer row gets the store version it last changed at).
    [
        "ALTER TABLE products ADD COLUMN removed_at TEXT",
        "ALTER TABLE customers ADD COLUMN version {BIG} NOT NULL DEFAULT 0",
        "CREATE INDEX customers_version ON customers (store_id, version)",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: Database) -> int:
    """Bring the schema up to date; returns the version found. Refuses a newer one."""
    with db.write() as tx:
        tx.lock_store("__schema__")
        tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        found = tx.scalar("SELECT max(version) FROM schema_version") or 0
        if found > SCHEMA_VERSION:
            raise StorageError(
                f"back office database schema {found} is newer than this software "
                f"({SCHEMA_VERSION}): update the back office"
            )
        types = _TYPES[db.dialect]
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                tx.execute(statement.format(**types))
            tx.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    return int(found)

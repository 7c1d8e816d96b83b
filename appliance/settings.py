"""The register's runtime settings: the config file with one overlay laid over it.

Some settings change while the register runs — from the admin panel (receipt header
and footer, printer profile, offline card limits, scanner layouts) or from the back
office (``taxes`` and ``settings`` bundles, appliance/sync/bundles.py; "reset data"
drops the back office's rows until it sends them again, then ``reload``). Both go
through ``change``: it validates the whole resulting config (an error names the
field, nothing is stored), stores each changed key in ``settings_overlay`` in one
transaction on the register's connection (durable like a sale), swaps
``register.config`` and tells the parts that hold settings (``watch``), so the next
receipt, payment or scan uses the new value without a restart. Opening a register
lays the rows over the config file again (``overlaid``, called by ``Register``),
oldest first; the newest write of a key wins, whoever made it.

Keys are dotted paths into the config (``store.receipt_header``,
``payments.offline.max_amount``) or whole sections (``tax``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError as PydanticValidationError

from appliance.config import Config
from appliance.errors import ValidationError
from appliance.storage.db import transaction

if TYPE_CHECKING:
    from appliance.register import Register

Doc = dict[str, Any]
log = logging.getLogger(__name__)
Watcher = Callable[[Config], None]

# What may change at run time: a key is one of these or below one of them.
EDITABLE = (
    "store",
    "tax",
    "printer.profile",
    "payments.offline",
    "scanners.layouts",
)
# The keys the admin panel's settings page edits (the back office may send all store keys).
ADMIN_KEYS = (
    "store.receipt_header",
    "store.receipt_footer",
    "printer.profile",
    "payments.offline.enabled",
    "payments.offline.max_amount",
    "payments.offline.max_total",
    "payments.offline.max_count",
    "payments.offline.max_age_hours",
    "payments.offline.entry_modes",
    "scanners.layouts",
)
NEVER = ("store.id", "store.currency", "store.currency_decimals")  # fixed with the data


def _editable(key: str) -> bool:
    if key in NEVER:
        return False
    return any(key == k or key.startswith(k + ".") for k in EDITABLE)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def value_at(config: Config, key: str) -> Any:
    """The value of a dotted key in ``config`` (JSON form)."""
    value: Any = config.model_dump(mode="json")
    for part in key.split("."):
        value = value[part]
    return value


def laid_over(config: Config, changes: Doc) -> Config:
    """``config`` with ``changes`` (dotted key → value) laid over it, validated whole."""
    data = config.model_dump(mode="json")
    for key, value in changes.items():
        if not isinstance(key, str) or not _editable(key):
            raise ValidationError(
                f"{key}: cannot be changed while the register runs (changeable: "
                f"{', '.join(EDITABLE)})",
                field=str(key),
            )
        parts = key.split(".")
        node: Any = data
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                raise ValidationError(f"{key}: no such setting", field=key)
        if len(parts) > 1 and parts[-1] not in node:
            raise ValidationError(f"{key}: no such setting", field=key)
        node[parts[-1]] = value
    try:
        new = Config.model_validate({**data, "source": config.source})
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        text = msg if msg.startswith(field) else f"{field}: {msg}"
        raise ValidationError(text, field=field) from None
    _check_files(new, changes)
    return new


def _check_files(config: Config, changes: Doc) -> None:
    """Values that name files or devices: the profile must load, layouts must exist."""
    if "printer.profile" in changes:
        from drivers.printers.profiles import load_profile

        try:
            load_profile(config.printer.profile)
        except Exception as exc:
            raise ValidationError(f"printer.profile: {exc}", field="printer.profile") from None


def store_rows(conn: Any, changes: Doc, source: str, by: str | None) -> None:
    """Upsert the overlay's rows (inside the caller's transaction)."""
    at = _now()
    for key, value in changes.items():
        conn.execute(
            "INSERT INTO settings_overlay (key, value, source, set_by, set_at)"
            " VALUES (?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET value = excluded.value,"
            " source = excluded.source, set_by = excluded.set_by, set_at = excluded.set_at",
            (key, json.dumps(value, default=str), source, by, at),
        )


def change(register: Register, changes: Doc, source: str, by: str | None = None) -> Config:
    """Validate, store durably, swap ``register.config`` and tell the watchers.

    ``source`` is ``admin`` (the panel or an API client) or ``backoffice`` (a pushed
    bundle); ``by`` the user who made it. On the register's thread.
    """
    if not isinstance(changes, dict) or not changes:
        raise ValidationError("no settings to change", field="changes")
    new = laid_over(register.config, changes)
    if register.conn.in_transaction:  # e.g. applying a bundle: the caller's transaction
        store_rows(register.conn, changes, source, by)
    else:
        with transaction(register.conn):
            store_rows(register.conn, changes, source, by)
    register.config = new
    for watcher in list(register.settings_watchers):
        watcher(new)
    return new


def overlaid(conn: Any, config: Config) -> Config:
    """``config`` with the stored overlay laid over it, oldest row first (at open)."""
    rows = conn.execute("SELECT key, value FROM settings_overlay ORDER BY set_at, key").fetchall()
    if not rows:
        return config
    changes = {key: json.loads(value) for key, value in rows}
    try:
        return laid_over(config, changes)
    except ValidationError:
        # One stored value the config file now contradicts must not stop the register:
        # lay the keys one by one and keep those that still fit.
        for key, value in changes.items():
            try:
                config = laid_over(config, {key: value})
            except ValidationError as exc:
                log.warning("setting %s not applied: %s", key, exc)
        return config


def reload(register: Register, base: Config) -> None:
    """Lay the stored overlay over ``base`` afresh and tell the watchers (after reset
    data dropped the back office's rows: the admin panel's stay, the rest go)."""
    register.config = overlaid(register.conn, base)
    for watcher in list(register.settings_watchers):
        watcher(register.config)


def watch(register: Register, watcher: Watcher) -> None:
    """Call ``watcher(config)`` now and after each change."""
    register.settings_watchers.append(watcher)
    watcher(register.config)


def overview(register: Register) -> Doc:
    """What the settings page shows: the admin keys' values and who set what, when."""
    rows = register.conn.execute(
        "SELECT key, source, set_by, set_at FROM settings_overlay ORDER BY key"
    ).fetchall()
    return {
        "values": {key: value_at(register.config, key) for key in ADMIN_KEYS},
        "changed": [{"key": r[0], "source": r[1], "by": r[2], "at": r[3]} for r in rows],
    }


def bundle_changes(kind: str, payload: Doc) -> Doc:
    """A back office ``taxes`` or ``settings`` bundle as overlay keys."""
    if not isinstance(payload, dict):
        raise ValidationError(f"{kind} bundle: payload must be an object", field="payload")
    if kind == "taxes":
        return {"tax": payload}
    changes: Doc = {}
    store = payload.get("store", {})
    if not isinstance(store, dict):
        raise ValidationError("settings bundle: store must be an object", field="store")
    for key, value in store.items():
        changes[f"store.{key}"] = value
    receipt = payload.get("receipt", {})
    if not isinstance(receipt, dict):
        raise ValidationError("settings bundle: receipt must be an object", field="receipt")
    if "header" in receipt:
        changes["store.receipt_header"] = receipt["header"]
    if "footer" in receipt:
        changes["store.receipt_footer"] = receipt["footer"]
    return changes

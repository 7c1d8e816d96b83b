"""First boot of an appliance: the shop's first-boot file becomes the register's config.

The installer (or the shop, from a PC) puts ``firstboot.toml`` on the data partition:
the register's configuration as in the README (``[store]``, ``[register]`` and any
other section) plus ``[pairing] url, code``: the back office and the one-time code it
gave to pair this register. On the first boot ``appliance firstboot`` validates it
with the register's own config rules (a bad key or value is refused with file and key
named, and nothing is written), then writes ``register.toml`` and ``pairing.toml``
next to it, each atomically (temp file, fsync, rename, fsync of the folder) so a power
cut leaves either no configuration or a whole one. Once ``register.toml`` exists this
does nothing: from then on the configuration is the admin panel's.

The running register then pairs from ``pairing.toml`` (``attach_pairing``): at once,
and again with backoff while the back office cannot be reached — a box is often
switched on before its network works. Paired, the file is deleted (the code is
single-use); refused, it is kept as ``pairing.refused.toml`` and the log says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.config import config_from_dict
from appliance.errors import ConfigError, Conflict

if TYPE_CHECKING:
    from appliance.features import Context

log = logging.getLogger(__name__)

CONFIG_NAME = "register.toml"
PAIRING_NAME = "pairing.toml"
PAIRING_CODE_RE = r"^[A-Za-z0-9][A-Za-z0-9-]{3,63}$"
# An appliance serves its API (sell screen, admin panel, other registers) on every
# interface unless the first-boot file says otherwise; its database sits in data/.
APPLIANCE_DEFAULTS: dict[str, dict[str, Any]] = {
    "http": {"host": "0.0.0.0", "port": 8080},
}


@dataclass(frozen=True)
class FirstBootResult:
    action: str  # "configured", "defaults" or "already-configured"
    config_path: Path
    pairing_path: Path | None = None


def apply_first_boot(source: Path, data_dir: Path) -> FirstBootResult:
    """Write ``data_dir/register.toml`` (and ``pairing.toml``) from ``source`` once."""
    target = data_dir / CONFIG_NAME
    if target.exists():
        return FirstBootResult("already-configured", target)
    if source.exists():
        try:
            raw = tomllib.loads(source.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read first-boot file: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
        action = "configured"
    else:
        raw, action = {}, "defaults"
    pairing: dict[str, str] | None = _pairing(raw.pop("pairing", None), source)
    for section, values in APPLIANCE_DEFAULTS.items():
        table = raw.setdefault(section, {})
        if isinstance(table, dict):
            for key, value in values.items():
                table.setdefault(key, value)
    register = raw.setdefault("register", {})
    if isinstance(register, dict):
        if "data_dir" in register:
            raise ConfigError(
                f"{source}: register.data_dir: set by the appliance (the data partition)"
            )
        register["data_dir"] = "data"
    config = config_from_dict(raw, source=str(source))  # raises naming file and key
    pairing_path = None
    if pairing is not None:
        pairing_path = data_dir / PAIRING_NAME
        doc = {**pairing, "store_id": config.store.id, "register_id": config.register.id}
        write_atomically(pairing_path, to_toml(doc))
    origin = source.name if action == "configured" else "built-in defaults (no first-boot file)"
    header = (
        f"# Written by `appliance firstboot` from {origin} for register {config.register.id}.\n"
        "# The register's configuration; see README.md (Configuration).\n\n"
    )
    # What the shop wrote (validated), not every default: later versions' defaults apply.
    write_atomically(target, header + to_toml(raw))
    return FirstBootResult(action, target, pairing_path)


def _pairing(table: Any, source: Path) -> dict[str, str] | None:
    if table is None:
        return None
    if not isinstance(table, dict) or set(table) != {"url", "code"}:
        raise ConfigError(f"{source}: pairing: a table with two keys, url and code")
    code, url = table["code"], table["url"]
    if not isinstance(code, str) or not re.fullmatch(PAIRING_CODE_RE, code):
        raise ConfigError(f"{source}: pairing.code: 4-64 letters, digits and dashes (got {code!r})")
    if not isinstance(url, str) or not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        raise ConfigError(f"{source}: pairing.url: the back office's http(s) address (got {url!r})")
    return {"url": url, "code": code}


def to_toml(data: dict[str, Any]) -> str:
    """TOML for the config's shapes: scalars, lists of scalars, nested tables."""
    lines: list[str] = []
    _table(data, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _table(data: dict[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    if path and (scalars or not tables):
        lines += ["", "[" + ".".join(_key(p) for p in path) + "]"]
    for key, value in scalars.items():
        if value is None:
            continue
        lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in tables.items():
        _table(value, [*path, key], lines)


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Decimal):
        return _string(str(value))
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _string(text: str) -> str:
    # JSON's escapes (\\n, \\", \\u0001 …) are TOML's too; TOML also wants DEL escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# pairing from the first-boot file -----------------------------------------------------
async def pair_from_file(
    engine: Any, path: Path, name: str, min_wait_s: float = 5.0, max_wait_s: float = 300.0
) -> str:
    """Pair the sync ``engine`` from ``pairing.toml``; "paired", "refused" or "already"."""
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    wait = min_wait_s
    while True:
        if engine.client is not None:  # paired meanwhile (e.g. through the admin panel)
            path.unlink(missing_ok=True)
            return "already"
        try:
            await engine.pair(doc["url"], doc["code"], name)
        except Conflict as exc:
            if exc.field == "url":  # the back office cannot be reached (yet)
                log.info("pairing with %s: %s; again in %.0f s", doc["url"], exc.message, wait)
                await asyncio.sleep(wait)
                wait = min(wait * 2, max_wait_s)
                continue
            path.replace(path.with_name("pairing.refused.toml"))
            log.error("pairing with %s refused: %s (pairing.refused.toml kept; pair again "
                      "with a new code)", doc["url"], exc.message)  # fmt: skip
            return "refused"
        path.unlink(missing_ok=True)
        log.info("paired with the back office %s", doc["url"])
        return "paired"


def attach_pairing(ctx: Context, path: Path) -> None:
    """Pair in the background once the register has started, if ``path`` exists."""
    engine = getattr(ctx.app.state, "sync", None)
    if engine is None or not path.exists():
        return
    task: asyncio.Task[str] | None = None

    async def start() -> None:
        nonlocal task
        task = asyncio.create_task(pair_from_file(engine, path, ctx.config.register.name))

    async def stop() -> None:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    ctx.on_start(start)
    ctx.on_stop(stop)

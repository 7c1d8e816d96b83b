"""The rig's side of the virtual tier: real device processes on loopback.

Each is its own process, as a device is its own box: a register killed by a power
cut finds them where they were.

- ``DeviceProcess``: ``hil printer --listen`` / ``hil terminal --listen`` with their
  JSON-lines control channels (faults, scripted outcomes);
- ``BackOffice``: ``appliance backoffice serve`` on a SQLite file, a store and a
  pairing code made with its own commands, reached through a ``LinkProxy`` (the
  shop's uplink) that the scenario drops and restores.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hil.json_lines import control_request
from hil.link_proxy import LinkProxy

BIN = Path(sys.executable).parent
STORE_ID = "hil"


class DeviceError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _split(hostport: str) -> tuple[str, int]:
    host, _, port = hostport.strip().rpartition(":")
    return host, int(port)


class DeviceProcess:
    """A ``hil`` device command that prints its address, then "control HOST:PORT"."""

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name, self.argv, self.log_path = name, argv, log
        self.proc: asyncio.subprocess.Process | None = None
        self.address: tuple[str, int] = ("", 0)
        self.control_address: tuple[str, int] = ("", 0)

    async def start(self) -> DeviceProcess:
        with open(self.log_path, "ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hil.cli", *self.argv,
                stdout=asyncio.subprocess.PIPE, stderr=log,
            )  # fmt: skip
        assert self.proc.stdout is not None
        try:
            first = (await asyncio.wait_for(self.proc.stdout.readline(), 20)).decode()
            second = (await asyncio.wait_for(self.proc.stdout.readline(), 20)).decode()
        except TimeoutError:
            await self.stop()
            raise DeviceError(f"{self.name} did not report its address within 20 s") from None
        if not second.startswith("control "):
            await self.stop()
            raise DeviceError(f"{self.name}: unexpected output {first!r} {second!r}")
        self.address = _split(first)
        self.control_address = _split(second.split()[1])
        # Keep reading its job lines so the pipe never fills up.
        asyncio.get_running_loop().create_task(self._drain())
        return self

    async def _drain(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            with contextlib.suppress(Exception):
                while await self.proc.stdout.readline():
                    pass

    @property
    def hostport(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    async def control(self, request: dict[str, Any]) -> dict[str, Any]:
        return await control_request(self.control_address, request)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def printer_process(jobs: Path, log: Path) -> DeviceProcess:
    """The virtual ESC/POS printer as a network printer (port 9100 style), with PNGs."""
    argv = ["printer", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
            "--jobs", str(jobs), "--png"]  # fmt: skip
    return DeviceProcess("virtual printer", argv, log)


def terminal_process(log: Path, port: int = 0, record: Path | None = None) -> DeviceProcess:
    """The ZVT terminal simulator on TCP (a fixed ``port`` lets it come back after
    an "unreachable" step at the address the register knows)."""
    argv = ["terminal", "--listen", f"127.0.0.1:{port}", "--control", "127.0.0.1:0"]
    if record is not None:
        argv += ["--record", str(record)]
    return DeviceProcess("terminal simulator", argv, log)


def _appliance(*args: str) -> Any:
    result = subprocess.run(
        [str(BIN / "appliance"), *args], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise DeviceError(f"appliance {' '.join(args[:2])}: {result.stderr.strip()[-300:]}")
    return json.loads(result.stdout) if result.stdout.strip() else None


class BackOffice:
    """A real back office on SQLite behind the rig's cuttable link."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db_file = folder / "backoffice.db"
        self.db_url = f"sqlite:///{self.db_file}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.proxy: LinkProxy | None = None

    async def start(self) -> None:
        await asyncio.to_thread(_appliance, "backoffice", "add-store", STORE_ID, "HIL shop",
                                "--db", self.db_url)  # fmt: skip
        self.port = free_port()
        log = open(self.folder / "backoffice.log", "ab")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [str(BIN / "appliance"), "backoffice", "serve", "--db", self.db_url,
             "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        import httpx

        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if self.proc.poll() is not None:
                    raise DeviceError(f"the back office exited ({self.proc.returncode})")
                with contextlib.suppress(httpx.HTTPError):
                    resp = await client.get(f"http://127.0.0.1:{self.port}/api/v1/health")
                    if resp.status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise DeviceError("the back office did not answer within 30 s")
                await asyncio.sleep(0.05)
        self.proxy = LinkProxy("127.0.0.1", self.port)
        await self.proxy.start()

    async def pairing_code(self, register_id: str) -> str:
        made = await asyncio.to_thread(
            _appliance, "backoffice", "pairing-code", STORE_ID, "--register-id", register_id,
            "--db", self.db_url,
        )  # fmt: skip
        return str(made["code"])

    @property
    def url(self) -> str:
        assert self.proxy is not None
        return self.proxy.url

    def counts(self, register_id: str) -> dict[str, int]:
        """What the back office holds from this register: ops and completed sales."""
        conn = sqlite3.connect(f"file:{self.db_file}?mode=ro", uri=True, timeout=5)
        try:
            ops = conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT op_id) FROM ops WHERE register_id = ?",
                (register_id,),
            ).fetchone()
            sales = conn.execute("SELECT COUNT(*) FROM sales WHERE status = 'completed'").fetchone()
        finally:
            conn.close()
        return {"ops": int(ops[0]), "distinct_ops": int(ops[1]), "sales": int(sales[0])}

    async def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                await asyncio.to_thread(self.proc.wait, 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

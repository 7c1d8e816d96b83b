"""sd_notify: READY only once the register answers, keep-alives only while it is alive.

A real `appliance run` process is started with ``$NOTIFY_SOCKET`` pointing at a unix
datagram socket this test owns, as systemd does for a Type=notify service; the
watchdog is checked by stopping the process (SIGSTOP) and by blocking an event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance.systemd_notify import Notifier, watchdog_loop
from tests.conftest import VENV_BIN, free_port


class NotifySocket:
    """The systemd side of the protocol: a datagram socket collecting messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[tuple[float, dict[str, str]]] = []

    def receive(self, timeout: float) -> dict[str, str] | None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return None
        fields = dict(line.split("=", 1) for line in data.decode().splitlines())
        self.messages.append((time.monotonic(), fields))
        return fields

    def wait_for(self, key: str, timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            fields = self.receive(left)
            if fields is not None and key in fields:
                return fields
        raise AssertionError(f"no {key} within {timeout}s; got {self.messages}")

    def drain(self, seconds: float) -> list[dict[str, str]]:
        got = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            fields = self.receive(left)
            if fields is not None:
                got.append(fields)
        return got

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def test_ready_after_start_then_keep_alives_that_stop_with_the_process(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(notify_socket.path),
        "WATCHDOG_USEC": "600000",  # 0.6 s: keep-alives every 0.3 s
        "PYTHONUNBUFFERED": "1",
    }
    cmd = [str(VENV_BIN / "appliance"), "run", "--data-dir", str(tmp_path / "data")]
    log = open(tmp_path / "register.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        ready = notify_socket.wait_for("READY", timeout=30)
        assert ready["READY"] == "1"
        assert ready["MAINPID"] == str(proc.pid)
        assert f":{port}/" in ready["STATUS"]
        # READY means the register takes a scan now: no retry needed.
        token = (tmp_path / "data" / "api-token").read_text().strip()  # the machine token
        resp = httpx.post(f"http://127.0.0.1:{port}/api/scan", json={"code": "4006381333931"},
                          headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert resp.status_code == 200, resp.text
        assert resp.json()["action"] == "line"

        alive = [m for m in notify_socket.drain(1.5) if m.get("WATCHDOG") == "1"]
        assert len(alive) >= 3, alive

        proc.send_signal(signal.SIGSTOP)  # a hung register: no keep-alive may come
        try:
            notify_socket.drain(0.2)  # one may have been in flight
            hung = [m for m in notify_socket.drain(1.2) if m.get("WATCHDOG") == "1"]
        finally:
            proc.send_signal(signal.SIGCONT)
        assert hung == []
        notify_socket.wait_for("WATCHDOG", timeout=5)

        proc.terminate()
        stopping = notify_socket.wait_for("STOPPING", timeout=10)
        assert stopping["STOPPING"] == "1"
        # uvicorn re-raises SIGTERM after its graceful shutdown; systemd counts that clean
        assert proc.wait(10) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()


def test_blocked_event_loop_or_stuck_register_thread_sends_no_keep_alive(
    notify_socket: NotifySocket,
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "400000"})
    assert notifier.watchdog_s == pytest.approx(0.4)

    async def answers() -> None:
        return None

    async def run_blocking_the_loop() -> None:
        task = asyncio.create_task(watchdog_loop(notifier, answers))
        await asyncio.sleep(0.5)
        time.sleep(1.0)  # the loop is hung: the watchdog task cannot run
        await asyncio.sleep(0.5)
        task.cancel()

    # Receive on a thread while the loop runs, so each keep-alive is stamped on arrival.
    receiver = threading.Thread(target=notify_socket.drain, args=(2.3,))
    receiver.start()
    asyncio.run(run_blocking_the_loop())
    receiver.join()
    stamps = [t for t, m in notify_socket.messages if m.get("WATCHDOG")]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(stamps) >= 4 and max(gaps) >= 0.9, gaps  # the hang shows as one long gap
    assert sorted(gaps)[-2] < 0.35, gaps  # otherwise every 0.2 s

    never = asyncio.Event()

    async def stuck() -> None:
        await never.wait()  # the register's thread never answers

    async def run_stuck() -> None:
        task = asyncio.create_task(watchdog_loop(notifier, stuck))
        await asyncio.sleep(1.0)
        task.cancel()

    asyncio.run(run_stuck())
    assert [m for m in notify_socket.drain(0.2) if m.get("WATCHDOG")] == []


def test_notifier_outside_systemd_and_for_another_process() -> None:
    quiet = Notifier({})
    assert not quiet.enabled and not quiet.ready("x") and quiet.watchdog_s is None
    other = Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert other.address == b"\0x"
    assert other.watchdog_s is None  # the watchdog is PID 1's, not ours
    mine = Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_PID": str(os.getpid()),
                     "WATCHDOG_USEC": "2000000"})  # fmt: skip
    assert mine.watchdog_s == 2.0
    assert Notifier({"NOTIFY_SOCKET": "relative"}).enabled is False
    # systemd gone: the register keeps running
    assert Notifier({"NOTIFY_SOCKET": "/nonexistent/notify"}).keep_alive() is False


def test_ready_waits_for_scanners_to_read_their_devices() -> None:
    """READY means a scan is taken: each scanner must read its device first (bounded)."""
    from appliance.server import scanners_listening
    from drivers.scanners.evdev_source import DeviceMatch, EvdevScanner
    from drivers.scanners.manager import ScannerManager
    from drivers.scanners.serial_scanner import SerialScanner, SerialSettings

    async def scenario() -> tuple[list[str], float]:
        async def on_scan(scan: object) -> None:
            return None

        manager = ScannerManager(on_scan)
        master, slave = os.openpty()
        try:
            manager.add(SerialScanner("counter", SerialSettings(port=os.ttyname(slave))))
            # No input device on this host matches: this one never reads.
            manager.add(EvdevScanner("absent", DeviceMatch(name="No Such Scanner")))
            app = types.SimpleNamespace(state=types.SimpleNamespace(scanners=manager))
            t0 = time.monotonic()
            missing = await scanners_listening(app, timeout=1.5)
            return missing, time.monotonic() - t0
        finally:
            await manager.stop()
            os.close(master)
            os.close(slave)

    missing, waited = asyncio.run(scenario())
    assert missing == ["absent"]  # the serial scanner was reading before the bound
    assert 1.4 <= waited < 5

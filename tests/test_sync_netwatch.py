"""A network change is noticed at once: the netlink watcher in a namespace of its own.

The watcher runs in a real process inside a network namespace this test creates; the
test then changes that namespace's network (brings its loopback up, adds an
address) and the watcher must report a change within a second — that is what makes
an offline register probe the back office at once instead of after its backoff.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT, unavailable

WATCH = """
import asyncio, sys
from appliance.sync.netwatch import NetworkWatcher

async def main():
    changed = asyncio.Event()
    watcher = NetworkWatcher(changed.set)
    print("watching" if watcher.start() else "unavailable", flush=True)
    await asyncio.wait_for(changed.wait(), 10)
    print("changed", flush=True)
    watcher.stop()

asyncio.run(main())
"""


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"syncw-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        unavailable(f"cannot create a network namespace here (needs root): {made.stderr.strip()}")
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_a_network_change_is_reported_at_once(namespace: str) -> None:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", WATCH],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "watching"
        subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "up"], check=True)
        subprocess.run(
            ["ip", "-n", namespace, "addr", "add", "127.0.0.2/32", "dev", "lo"], check=True
        )
        out, err = proc.communicate(timeout=10)
        assert out.strip() == "changed", err
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)

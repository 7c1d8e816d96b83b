"""A shop LAN in network namespaces: registers as real processes behind one bridge.

Each register is an ``appliance run`` process in its own network namespace, joined to
a bridge by a veth pair, so registers find each other over real multicast DNS and
talk over real TCP. The test process reaches each register's HTTP API over a second,
point-to-point veth pair (a management link, not part of the shop LAN), so taking a
register's LAN veth down is a partition the test can still watch from both sides.

Names carry a random per-run tag (interface names stay within 15 characters) and
everything is deleted in ``close``. Used by tests/test_lan_netns.py and
bench/lan_sync.py; needs root (``ip netns``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

VENV_BIN = Path(sys.executable).parent


class NetnsUnavailable(RuntimeError):
    """This machine cannot create network namespaces (not root, no iproute2, …)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def _free_subnet() -> ipaddress.IPv4Network:
    used = _ip("-4", "-o", "addr", "show").stdout + _ip("-4", "route", "show").stdout
    for _ in range(100):
        net = ipaddress.IPv4Network(
            f"10.{secrets.randbelow(55) + 200}.{secrets.randbelow(250) + 1}.0/24"
        )
        if f"{net.network_address}"[:-1] not in used:
            return net
    raise RuntimeError("no free 10.x.y.0/24 subnet for the test LAN")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> None:
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def count_over(count: int) -> bool:
    return count > 60  # 4 addresses per management link in one /24


class ShopLan:
    def __init__(self, folder: Path, count: int, switches: int = 1) -> None:
        """``switches=2``: the first half of the registers on one bridge, the rest on
        a second, the two joined by a trunk link (``trunk(False)`` splits the shop)."""
        self.folder = folder
        self.count = count
        self.switches = switches
        self.tag = secrets.token_hex(3)
        self.bridges = [f"lbr{self.tag}", f"lbs{self.tag}"][:switches]
        self.subnet: ipaddress.IPv4Network | None = None
        self.mgmt_net: ipaddress.IPv4Network | None = None
        self.namespaces: list[str] = []
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.client = httpx.Client(timeout=5.0)

    # network ---------------------------------------------------------------
    def ns(self, i: int) -> str:
        return f"lns{self.tag}{i}"

    def host_veth(self, i: int) -> str:
        return f"vh{self.tag}{i}"

    def address(self, i: int) -> str:
        """Register ``i``'s address on the shop LAN."""
        assert self.subnet is not None
        return str(self.subnet.network_address + i + 1)

    def mgmt(self, i: int, inside: bool = True) -> str:
        """Register ``i``'s end (or the test's end) of its management link."""
        assert self.mgmt_net is not None
        return str(self.mgmt_net.network_address + 4 * i + (2 if inside else 1))

    def create(self) -> None:
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root (ip netns add)")
        try:
            probe = _ip("netns", "add", f"lnsprobe{self.tag}", check=False)
        except FileNotFoundError:
            raise NetnsUnavailable("the ip command (iproute2) is not installed") from None
        if probe.returncode != 0:
            raise NetnsUnavailable(f"ip netns add failed: {probe.stderr.strip()}")
        _ip("netns", "del", f"lnsprobe{self.tag}", check=False)
        self.subnet = _free_subnet()
        self.mgmt_net = _free_subnet()
        if self.mgmt_net == self.subnet or count_over(self.count):
            raise RuntimeError("could not pick two subnets for the test LAN")
        for bridge in self.bridges:
            _ip("link", "add", bridge, "type", "bridge")
            # Flood multicast to every port: no IGMP querier on this LAN.
            Path(f"/sys/class/net/{bridge}/bridge/multicast_snooping").write_text("0")
            _ip("link", "set", bridge, "up")
        if self.switches == 2:
            a, b = f"vt{self.tag}a", f"vt{self.tag}b"
            _ip("link", "add", a, "type", "veth", "peer", "name", b)
            _ip("link", "set", a, "master", self.bridges[0], "up")
            _ip("link", "set", b, "master", self.bridges[1], "up")
        for i in range(self.count):
            ns, host, inner = self.ns(i), self.host_veth(i), f"vn{self.tag}{i}"
            bridge = self.bridges[0 if i < self.count // self.switches else -1]
            _ip("netns", "add", ns)
            self.namespaces.append(ns)
            _ip("link", "add", host, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", host, "master", bridge, "up")
            _ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", inner)
            _ip("-n", ns, "link", "set", inner, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", inner)
            mhost, minner = f"vm{self.tag}{i}", f"vi{self.tag}{i}"
            _ip("link", "add", mhost, "type", "veth", "peer", "name", minner)
            _ip("link", "set", minner, "netns", ns)
            _ip("addr", "add", f"{self.mgmt(i, inside=False)}/30", "dev", mhost)
            _ip("link", "set", mhost, "up")
            _ip("-n", ns, "addr", "add", f"{self.mgmt(i)}/30", "dev", minner)
            _ip("-n", ns, "link", "set", minner, "up")

    def link(self, i: int, up: bool) -> None:
        """Plug register ``i``'s cable in or out (its veth end on the bridge)."""
        _ip("link", "set", self.host_veth(i), "up" if up else "down")

    def trunk(self, up: bool) -> None:
        """Plug the cable between the two switches in or out."""
        _ip("link", "set", f"vt{self.tag}a", "up" if up else "down")

    # registers -------------------------------------------------------------
    def url(self, i: int) -> str:
        return f"http://{self.mgmt(i)}:8080"

    def start(self, i: int, lan: dict[str, Any], **sections: dict[str, Any]) -> None:
        folder = self.folder / f"r{i + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "register.toml"
        write_config(
            config,
            {
                "register": {"id": f"R{i + 1}", "name": f"Till {i + 1}", "data_dir": "data"},
                "http": {"host": self.mgmt(i), "port": 8080},
                # mDNS and the sync port on the shop LAN only, not the management link.
                "lan": {"interfaces": [self.address(i)], **lan},
                **sections,
            },
        )
        log = open(folder / "register.log", "ab")  # noqa: SIM115 - closed with the process
        command = [str(VENV_BIN / "appliance"), "run", "--config", str(config)]
        self.procs[i] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(i), *command],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()

    def db_path(self, i: int) -> Path:
        return self.folder / f"r{i + 1}" / "data" / "register.db"

    def log(self, i: int) -> str:
        path = self.folder / f"r{i + 1}" / "register.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        waiting = set(self.procs)
        while waiting:
            for i in list(waiting):
                proc = self.procs[i]
                if proc.poll() is not None:
                    raise RuntimeError(f"register R{i + 1} exited: {self.log(i)}")
                with contextlib.suppress(httpx.HTTPError):
                    if self.client.get(f"{self.url(i)}/health").status_code == 200:
                        waiting.discard(i)
            if time.monotonic() > deadline:
                raise RuntimeError(f"registers {sorted(waiting)} not ready in {timeout}s")
            time.sleep(0.1)

    def headers(self, i: int) -> dict[str, str]:
        """Register i's machine token (made in its data folder at its first start)."""
        from appliance.auth.tokens import bearer_headers

        return bearer_headers(self.folder / f"r{i + 1}" / "data")

    def get(self, i: int, path: str) -> Any:
        response = self.client.get(self.url(i) + path, headers=self.headers(i))
        return response.json()

    def post(self, i: int, path: str, body: Any = None) -> httpx.Response:
        return self.client.post(self.url(i) + path, json=body, headers=self.headers(i))

    def wait(self, check: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                last = check()
                if last:
                    return
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.client.close()
        for ns in self.namespaces:  # deleting a namespace deletes its veth pairs
            _ip("netns", "del", ns, check=False)
        _ip("link", "del", f"vt{self.tag}a", check=False)
        for bridge in self.bridges:
            _ip("link", "del", bridge, check=False)

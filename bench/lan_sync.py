"""LAN sync of 16 registers: edit-to-everyone latency, partition healing, CPU and memory.

Sixteen `appliance run` processes, each in its own network namespace, on two
bridges ("switches") joined by a trunk; they find each other by multicast DNS and
sync over their sealed TCP sessions with the default settings. A 17th register with
LAN sync off is the baseline for CPU and memory. Needs root (ip netns).

1. Latency: an edit (rename of a shared saved sale) on a random register; the time
   until all 15 others hold it, measured by long-polls on each (/api/lan/wait, which
   answers the moment the op is applied). p50/p99 over --edits edits (target p99 < 1 s).
2. Partition: the trunk is pulled; each side makes --ops ops (sales, lines, renames,
   parks, spread over its registers); the trunk goes back; the time until all 16
   hold identical op logs (version vectors) and identical saved sales.
3. CPU (% of one core) and resident memory per register, idle and under load,
   against the LAN-off baseline.

Usage: sudo .venv/bin/python bench/lan_sync.py [--registers 16] [--edits 200] [--ops 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.lan_netns import ShopLan

COFFEE = "4006381333931"
BEER = "4001686301265"
SECRET = "benchmark-store-secret-0123456789"


def shared_disk_floor(folder: Path, writers: int, rounds: int = 30) -> float:
    """Median time for ``writers`` registers to each append and fsync at once on this
    machine's one disk: the floor under "applied on all others" here (on a shop's
    LAN every register has its own disk)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    def write(i: int) -> None:
        fd = os.open(folder / f"fsync{i}", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(fd, b"x" * 512)
            os.fsync(fd)
        finally:
            os.close(fd)

    times = []
    with ThreadPoolExecutor(writers) as pool:
        for _ in range(rounds):
            t0 = time.monotonic()
            list(pool.map(write, range(writers)))
            times.append(time.monotonic() - t0)
    return statistics.median(times)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Bench:
    def __init__(self, lan: ShopLan, n: int) -> None:
        self.lan, self.n = lan, n
        self.http = httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=200))
        self.procs = {i: psutil.Process(p.pid) for i, p in lan.procs.items()}

    async def get(self, i: int, path: str, **params: Any) -> Any:
        for attempt in range(3):
            try:
                url = self.lan.url(i) + path
                return (await self.http.get(url, params=params, headers=self.lan.headers(i))).json()
            except httpx.RemoteProtocolError:  # a keep-alive connection closed under us
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def check_alive(self) -> None:
        dead = [f"R{i + 1}" for i, p in self.lan.procs.items() if p.poll() is not None]
        if dead:
            raise RuntimeError(f"registers exited: {dead}: {self.lan.log(int(dead[0][1:]) - 1)}")

    async def post(self, i: int, path: str, body: Any = None) -> Any:
        url = self.lan.url(i) + path
        response = await self.http.post(url, json=body, headers=self.lan.headers(i))
        if response.status_code >= 400:
            raise RuntimeError(f"R{i + 1} {path}: {response.text}")
        return response.json()

    async def vectors(self) -> list[dict[str, int]]:
        return await asyncio.gather(*(self._vector(i) for i in range(self.n)))

    async def _vector(self, i: int) -> dict[str, int]:
        return dict((await self.get(i, "/api/lan/status"))["vector"])

    async def wait_mesh(self, timeout: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            counts = await asyncio.gather(*(self.get(i, "/api/lan/status") for i in range(self.n)))
            if all(len(c["connected"]) == self.n - 1 for c in counts):
                return time.monotonic() - start
            await asyncio.sleep(0.2)
        raise RuntimeError(f"no full mesh in {timeout}s: {[len(c['connected']) for c in counts]}")

    async def converged(self, timeout: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            vectors = await self.vectors()
            if all(v == vectors[0] for v in vectors):
                return time.monotonic() - start
            await asyncio.sleep(0.1)
        raise RuntimeError(f"not converged in {timeout}s")

    def cpu_times(self) -> dict[int, float]:
        out = {}
        for i, proc in self.procs.items():
            t = proc.cpu_times()
            out[i] = t.user + t.system
        return out

    def rss_mb(self) -> dict[int, float]:
        return {i: p.memory_info().rss / 2**20 for i, p in self.procs.items()}

    # phases ---------------------------------------------------------------
    async def latency(self, edits: int) -> list[float]:
        sale = await self.post(0, "/api/sales")
        await self.post(0, f"/api/sales/{sale['id']}/lines", {"code": COFFEE})
        await self.post(0, f"/api/sales/{sale['id']}/park", {"name": "Table 1"})
        await self.converged(30)
        own = {i: (await self._vector(i)).get(f"R{i + 1}", 0) for i in range(self.n)}
        rng = random.Random(7)
        results = []
        for k in range(edits):
            who = rng.randrange(self.n)
            origin, seq = f"R{who + 1}", own[who] + 1
            waits = [
                asyncio.create_task(
                    self.get(i, "/api/lan/wait", origin=origin, seq=seq, timeout=10)
                )
                for i in range(self.n)
                if i != who
            ]
            await asyncio.sleep(0.005)  # the long-polls are in place
            t0 = time.monotonic()
            await self.post(who, f"/api/lan/sales/{sale['id']}/rename", {"name": f"edit {k}"})
            own[who] = seq
            answers = await asyncio.gather(*waits)
            if not all(a["reached"] for a in answers):
                raise RuntimeError(f"edit {k} on {origin} did not reach everyone in 10 s")
            results.append(time.monotonic() - t0)
        return results

    async def side_ops(self, side: list[int], total: int) -> int:
        """``total`` ops spread over the registers of one side, concurrently."""
        per = total // len(side)

        async def one(i: int) -> int:
            done = 0
            sale = await self.post(i, "/api/sales")
            done += 1
            while done < per - 2:
                code = COFFEE if done % 2 else BEER
                await self.post(i, f"/api/sales/{sale['id']}/lines", {"code": code})
                done += 1
            await self.post(i, f"/api/sales/{sale['id']}/park", {"name": f"R{i + 1} tab"})
            await self.post(i, f"/api/lan/sales/{sale['id']}/rename", {"name": f"R{i + 1}"})
            return done + 2

        return sum(await asyncio.gather(*(one(i) for i in side)))


async def run(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-lan-"))
    n = args.registers
    lan = ShopLan(folder, n + 1, switches=2)
    try:
        lan.create()
        settings = {"enabled": True, "secret": SECRET}
        for i in range(n):
            lan.start(i, settings)
        lan.start(n, {"enabled": False})  # the baseline: same process, LAN sync off
        t0 = time.monotonic()
        lan.wait_ready(120)
        bench = Bench(lan, n)
        print(f"registers: {n} in network namespaces on two bridges, + 1 baseline (LAN off)")
        print(f"start to ready (all)               : {time.monotonic() - t0:.1f} s")
        mesh = await bench.wait_mesh(120)
        print(f"full mesh by mDNS discovery         : {mesh:.1f} s after ready")
        await bench.converged(60)

        base_proc = psutil.Process(lan.procs[n].pid)
        cpu0, base0, w0 = bench.cpu_times(), sum(base_proc.cpu_times()[:2]), time.monotonic()
        await asyncio.sleep(args.idle)
        cpu1, base1, w1 = bench.cpu_times(), sum(base_proc.cpu_times()[:2]), time.monotonic()
        idle = [100 * (cpu1[i] - cpu0[i]) / (w1 - w0) for i in range(n)]
        base_idle = 100 * (base1 - base0) / (w1 - w0)

        latencies = await bench.latency(args.edits)
        cpu2, w2 = bench.cpu_times(), time.monotonic()
        busy = [100 * (cpu2[i] - cpu1[i]) / (w2 - w1) for i in range(n)]
        p50, p99 = pct(latencies, 0.5), pct(latencies, 0.99)
        floor = shared_disk_floor(folder, n - 1)
        print(f"edits                               : {len(latencies)}")
        print(f"baseline: {n - 1} parallel fsyncs on this disk: {floor * 1000:.1f} ms (median)")
        print(
            f"edit to all {n - 1} others  p50 / p99    : {p50 * 1000:.1f} / {p99 * 1000:.1f} ms"
            f"  (target p99 < 1000 ms)  max {max(latencies) * 1000:.1f} ms"
        )

        half = n // 2
        lan.trunk(False)
        for i in range(half):  # each side sees the other side gone
            await bench.http.get(lan.url(i) + "/health")
        await asyncio.sleep(6)
        t_ops = time.monotonic()
        made = await asyncio.gather(
            bench.side_ops(list(range(half)), args.ops),
            bench.side_ops(list(range(half, n)), args.ops),
        )
        print(
            f"partition: ops made on each side    : {made[0]} / {made[1]}"
            f" in {time.monotonic() - t_ops:.1f} s"
        )
        cpu3, w3 = bench.cpu_times(), time.monotonic()
        lan.trunk(True)
        healed = await bench.converged(180)
        cpu4, w4 = bench.cpu_times(), time.monotonic()
        sales = await asyncio.gather(*(bench.get(i, "/api/lan/sales") for i in range(n)))
        views = [sorted((s["id"], s["name"], s["total"]) for s in v) for v in sales]
        same = all(v == views[0] for v in views)
        print(
            f"converge after the trunk is back    : {healed:.1f} s"
            f"  (identical op logs; saved sales identical: {same})"
        )
        bench.check_alive()
        heal_cpu = [100 * (cpu4[i] - cpu3[i]) / (w4 - w3) for i in range(n)]
        rss = bench.rss_mb()
        base_rss = base_proc.memory_info().rss / 2**20
        print(
            f"CPU per register idle   mean / max  : {statistics.mean(idle):.1f} / "
            f"{max(idle):.1f} % of a core  (LAN-off baseline {base_idle:.1f} %)"
        )
        print(
            f"CPU per register edits  mean / max  : {statistics.mean(busy):.1f} / "
            f"{max(busy):.1f} % of a core"
        )
        print(
            f"CPU per register heal   mean / max  : {statistics.mean(heal_cpu):.1f} / "
            f"{max(heal_cpu):.1f} % of a core"
        )
        print(
            f"memory per register     mean / max  : {statistics.mean(rss.values()):.1f} / "
            f"{max(rss.values()):.1f} MB  (LAN-off baseline {base_rss:.1f} MB,"
            f" ratio {statistics.mean(rss.values()) / base_rss:.2f}x)"
        )
        await bench.http.aclose()
    finally:
        lan.close()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--registers", type=int, default=16)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--ops", type=int, default=1000, help="ops on each side of the split")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle measured")
    parser.add_argument("--keep", action="store_true", help="keep the registers' folders")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

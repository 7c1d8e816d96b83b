"""ZVT benchmarks: decode throughput and client overhead per authorization.

    .venv/bin/python bench/zvt_codec.py [--frames 20000] [--auths 200]

Prints figures; asserts nothing. The authorization figure is a full ZVT exchange
against the simulator in the same process (loopback TCP or a pty): register client
plus simulated terminal, no PIN delay, so it is an upper bound on the register's own
overhead per payment.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drivers.zvt.apdu import decode_apdu
from drivers.zvt.client import ZvtClient
from drivers.zvt.framing import Deframer, Frame, encode_frame
from drivers.zvt.messages import decode_message
from drivers.zvt.transport import ZvtTimeouts, open_serial, open_tcp
from hil.zvt_sim.server import PtyTerminal, bound_address, serve_tcp
from hil.zvt_sim.terminal import SimTerminal, Txn

T = ZvtTimeouts(t3=5.0, t4=10.0, ack=1.0, inter_byte=0.2)


def sample_frames() -> list[bytes]:
    from drivers.zvt import messages as m

    sim = SimTerminal()
    x = Txn(
        "payment",
        1234,
        978,
        7,
        123,
        9,
        0,
        "541333******0011",
        "Mastercard",
        6,
        "2024-06-01T12:00:00",
    )
    return [
        encode_frame(m.status_information(*sim._txn_bmps(x)).encode()),
        encode_frame(m.intermediate_status(0x01).encode()),
        encode_frame(m.print_line("Karte        541333******0011").encode()),
        encode_frame(m.completion().encode()),
    ]


def bench_decode(n: int) -> None:
    frames = sample_frames()
    stream = b"".join(frames[i % len(frames)] for i in range(n))
    chunks = [stream[i : i + 64] for i in range(0, len(stream), 64)]
    d = Deframer()
    t0 = time.perf_counter()
    count = 0
    for c in chunks:
        count += sum(1 for e in d.feed(c) if isinstance(e, Frame))
    t_deframe = time.perf_counter() - t0
    d = Deframer()
    t0 = time.perf_counter()
    decoded = 0
    for c in chunks:
        for e in d.feed(c):
            if isinstance(e, Frame):
                decode_message(decode_apdu(e.apdu))
                decoded += 1
    t_full = time.perf_counter() - t0
    mb = len(stream) / 1e6
    print(f"deframe only:        {count / t_deframe:10.0f} frames/s ({mb / t_deframe:.1f} MB/s)")
    print(
        f"deframe + decode:    {decoded / t_full:10.0f} frames/s (mixed: status info, "
        "intermediate status, print line, completion)"
    )


async def bench_auth(kind: str, n: int) -> None:
    sim = SimTerminal()
    sim.reply_timeout = T.t3
    if kind == "tcp":
        server, _ = await serve_tcp(sim, timeouts=T)
        host, port = bound_address(server)
        client = ZvtClient(await open_tcp(host, port, T))
    else:
        pty = PtyTerminal(sim, timeouts=T)
        pty.start()
        client = ZvtClient(await open_serial(pty.path, 115200, T))
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        r = await client.authorize(100 + i)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.approved
    await client.close()
    if kind == "tcp":
        server.close()
    else:
        await pty.close()
    times.sort()
    print(
        f"authorization ({kind:3}): mean {statistics.mean(times):6.2f} ms, median "
        f"{statistics.median(times):6.2f} ms, p95 {times[int(len(times) * 0.95)]:6.2f} ms "
        f"over {n} (15 terminal messages each, 10 of them slip lines)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--auths", type=int, default=200)
    args = ap.parse_args()
    bench_decode(args.frames)
    asyncio.run(bench_auth("tcp", args.auths))
    asyncio.run(bench_auth("pty", max(20, args.auths // 4)))


if __name__ == "__main__":
    main()

"""Regenerate the example byte traces in hil/recordings/zvt/.

    python -m hil.zvt_sim.examples [OUTDIR]

Each trace is one register session against the simulator (see trace.py for the
format); tests replay them against the client, so they double as regression data.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from drivers.zvt.client import ZvtClient
from drivers.zvt.transport import ZvtTimeouts, open_serial, open_tcp
from hil.zvt_sim.script import parse_outcome
from hil.zvt_sim.server import PtyTerminal, bound_address, serve_tcp
from hil.zvt_sim.terminal import SimTerminal

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "recordings" / "zvt"
TIMEOUTS = ZvtTimeouts(t3=2.0, t4=5.0, ack=0.3, inter_byte=0.1)

TCP_CASES = [
    ("approve-pin-tcp", "approve,pin=0.2,interval=0.1", 1234, True),
    ("decline-05-tcp", "decline:05", 5000, True),
    ("customer-abort-tcp", "abort", 999, True),
    ("offline-approve-tcp", "approve", 1500, False),
]


async def make(outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec, amount, online in TCP_CASES:
            rec_dir = Path(tmp) / name
            sim = SimTerminal(host_online=online)
            sim.script(parse_outcome(spec))
            server, rec = await serve_tcp(sim, record_dir=rec_dir, timeouts=TIMEOUTS)
            host, port = bound_address(server)
            client = ZvtClient(await open_tcp(host, port, TIMEOUTS))
            await client.authorize(amount)
            await client.close()
            await asyncio.sleep(0.05)
            server.close()
            target = outdir / f"{name}.trace"
            shutil.copy(rec.paths[0], target)
            made.append(target)
        rec_dir = Path(tmp) / "serial"
        sim = SimTerminal()
        sim.faults.corrupt = 1
        pty = PtyTerminal(sim, record_dir=rec_dir, timeouts=TIMEOUTS)
        pty.start()
        client = ZvtClient(await open_serial(pty.path, 9600, TIMEOUTS))
        await client.authorize(2000)
        await client.close()
        await pty.close()
        target = outdir / "approve-bad-crc-serial.trace"
        shutil.copy(pty.recorder.paths[0], target)
        made.append(target)
    return made


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR
    for p in asyncio.run(make(out)):
        print(p)

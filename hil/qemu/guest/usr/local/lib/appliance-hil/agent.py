"""HIL rig guest agent: run the host's commands inside the appliance (root, HIL only).

One JSON object per line on the virtio-serial port, one answer line each:
    {"id": 1, "argv": ["appliance", "db", "check"], "timeout": 30, "input": ""}
 -> {"id": 1, "rc": 0, "stdout": "...", "stderr": "..."}
A command that runs past its timeout is killed and answered with rc -9. The agent is
part of the rig's site files, never of the appliance image.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time


def handle(request: dict) -> dict:
    answer: dict = {"id": request.get("id")}
    try:
        done = subprocess.run(
            request["argv"],
            input=request.get("input", ""),
            capture_output=True,
            text=True,
            timeout=float(request.get("timeout", 30)),
        )
        answer.update(rc=done.returncode, stdout=done.stdout, stderr=done.stderr)
    except subprocess.TimeoutExpired as exc:
        answer.update(rc=-9, stdout=str(exc.stdout or ""), stderr=f"timeout: {exc}")
    except (OSError, KeyError, TypeError, ValueError) as exc:
        answer.update(rc=-1, stdout="", stderr=f"agent: {exc!r}")
    return answer


def main(port: str) -> None:
    with open(port, "r+b", buffering=0) as channel:
        pending = b""
        while True:
            chunk = channel.read(65536)
            if not chunk:
                time.sleep(0.2)  # host not connected (yet): the port reads empty
                continue
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                try:
                    request = json.loads(line)
                except ValueError as exc:
                    request = {"argv": None, "error": str(exc)}
                if request.get("argv"):
                    answer = handle(request)
                else:
                    answer = {"id": request.get("id"), "rc": -1, "stderr": "bad request"}
                channel.write(json.dumps(answer).encode() + b"\n")


if __name__ == "__main__":
    main(sys.argv[1])

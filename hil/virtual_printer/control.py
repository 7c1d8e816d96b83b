"""A test's handle on a running virtual printer's control channel (JSON lines over TCP)."""

from __future__ import annotations

import json
import socket
from typing import Any


class PrinterControl:
    """``PrinterControl("127.0.0.1:4100").set(paper="out")`` — one request, one answer."""

    def __init__(self, address: str, timeout: float = 5.0) -> None:
        host, _, port = address.rpartition(":")
        self.sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout)
        self.file = self.sock.makefile("rwb")

    def call(self, cmd: str, **fields: Any) -> dict[str, Any]:
        self.file.write(json.dumps({"cmd": cmd, **fields}).encode() + b"\n")
        self.file.flush()
        line = self.file.readline()
        if not line:
            raise ConnectionError("the virtual printer closed its control channel")
        answer: dict[str, Any] = json.loads(line)
        if not answer.get("ok"):
            raise RuntimeError(f"virtual printer refused {cmd}: {answer.get('error')}")
        return answer

    def set(self, **faults: Any) -> dict[str, Any]:
        return self.call("set", **faults)

    def state(self) -> dict[str, Any]:
        return self.call("state")

    def jobs(self, since: int = 0) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = self.call("jobs", since=since)["jobs"]
        return jobs

    def printed(self) -> str:
        return str(self.call("printed")["text"])

    def close(self) -> None:
        self.file.close()
        self.sock.close()

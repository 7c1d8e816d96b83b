"""Where a scenario runs: the tiers share one step vocabulary.

- ``inprocess``: the register core and its asyncio service in this process, on a real
  SQLite file, the terminal simulator on a loopback socket. Fastest.
- ``virtual``: a real ``appliance run`` process on a loopback port, driven over its
  HTTP API; power cuts are real SIGKILLs.
- ``qemu`` and ``bench``: the full-system image and real devices (see hil/qemu and
  the bench file); a step a tier cannot do fails saying so.

A step a tier does not support fails with a message naming the step and the tier —
it is never skipped silently.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hil.scenario.format import Scenario, Step

Doc = dict[str, Any]
BIN = Path(sys.executable).parent


class StepFailed(Exception):
    def __init__(self, message: str, expected: Any = None, got: Any = None) -> None:
        super().__init__(message)
        self.expected = expected
        self.got = got


def _subset_mismatch(expected: Doc, got: Doc) -> list[str]:
    problems = []
    for key, want in expected.items():
        have = got.get(key, "<missing>") if isinstance(got, dict) else "<not an object>"
        if isinstance(want, dict) and isinstance(have, dict):
            problems += [f"{key}.{p}" for p in _subset_mismatch(want, have)]
        elif have != want:
            problems.append(f"{key}: expected {want!r}, got {have!r}")
    return problems


class Tier:
    """Shared step logic; subclasses provide ``request`` (the register's HTTP API)."""

    name = "tier"

    client: Any  # an httpx.AsyncClient on the register's API, set by start()

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.sale_id: str | None = None
        self.sale_open = False
        self.last_error: Doc | None = None
        self.receipts: list[str] = []

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def request(
        self, method: str, path: str, body: Any = None, timeout: float | None = None
    ) -> tuple[int, Any]:
        """The register's HTTP API, as the sell screen uses it (``self.client``)."""
        kwargs: Doc = {}
        if timeout is not None:
            kwargs["timeout"] = timeout
        if isinstance(body, str):
            kwargs["content"] = body
        elif body is not None:
            kwargs["json"] = body
        resp = await self.client.request(method, path, **kwargs)
        return resp.status_code, resp.json()

    async def run_step(self, step: Step) -> Any:
        handler = getattr(self, f"step_{step.action}", None)
        if handler is None:
            raise StepFailed(f"step '{step.action}' is not available on the {self.name} tier")
        return await handler(step)

    # helpers -------------------------------------------------------------------
    async def _ok(self, method: str, path: str, body: Any = None) -> Any:
        status, data = await self.request(method, path, body)
        if status >= 400:
            self.last_error = data.get("error") if isinstance(data, dict) else {"message": data}
            raise StepFailed(f"{method} {path} answered {status}: {data}")
        self.last_error = None
        return data

    async def _setup(self) -> None:
        setup = self.scenario.setup
        catalog = setup.get("catalog", "demo")
        if catalog != "demo":
            text = (self.scenario.path.parent / catalog).read_text(encoding="utf-8")
            status, data = await self.request("POST", "/api/catalog/import", text)
            if status != 200:
                raise StepFailed(f"setup: catalog import failed: {data}")
        if "shift_float_minor" in setup:
            _, current = await self.request("GET", "/api/shifts/current")
            if current is None:  # a bench register may already have its shift open
                await self._ok("POST", "/api/shifts", {"float_minor": setup["shift_float_minor"]})

    # steps -----------------------------------------------------------------------
    async def step_scan(self, step: Step) -> Any:
        # Scans go into the scenario's sale while it is open; after it is paid, a
        # scan starts the next sale, as at a real counter.
        current = self.sale_id if self.sale_open else None
        body = {"code": step.value, "sale_id": current}
        status, data = await self.request("POST", "/api/scan", body)
        if status >= 400:
            self.last_error = data.get("error")
            return {"refused": self.last_error}
        self.last_error = None
        if data["action"] in ("line", "customer"):
            self.sale_id = data["sale"]["id"]
            self.sale_open = data["sale"]["status"] == "open"
        return {"action": data["action"]}

    async def step_expect_error(self, step: Step) -> Any:
        if not self.last_error or self.last_error.get("code") != step.value:
            raise StepFailed("the last step did not fail as expected", step.value, self.last_error)
        return self.last_error

    async def _sale(self) -> Doc:
        if self.sale_id is None:
            raise StepFailed("no sale yet in this scenario")
        return await self._ok("GET", f"/api/sales/{self.sale_id}")

    async def step_expect_cart(self, step: Step) -> Any:
        sale = await self._sale()
        got = {
            "lines": len([x for x in sale["lines"] if not x["voided"]]),
            "total_minor": sale["totals"]["total"],
            "status": sale["status"],
            "skus": [x["sku"] for x in sale["lines"] if not x["voided"]],
        }
        problems = _subset_mismatch(step.value, got)
        if problems:
            raise StepFailed("; ".join(problems), step.value, got)
        return got

    async def step_expect_sale(self, step: Step) -> Any:
        sale = await self._sale()
        got = {
            "status": sale["status"],
            "total_minor": sale["totals"]["total"],
            "change_minor": sale["totals"]["change"],
            "tenders": [t["kind"] for t in sale["tenders"]],
            "receipt_no": sale["receipt_no"],
        }
        problems = _subset_mismatch(step.value, got)
        if problems:
            raise StepFailed("; ".join(problems), step.value, got)
        return got

    async def step_pay_cash(self, step: Step) -> Any:
        sale = await self._sale()
        sale = await self._ok(
            "POST", f"/api/sales/{sale['id']}/tenders", {"kind": "cash", "amount_minor": step.value}
        )
        self.sale_open = sale["status"] == "open"
        return {"status": sale["status"], "change_minor": sale["totals"]["change"]}

    async def step_pay_card(self, step: Step) -> Any:
        """A card payment through the register's payment path, on its simulated terminal:
        the step's value is the terminal's scripted outcome (hil/zvt_sim/script.py)."""
        sale = await self._sale()
        amount = int(step.options.get("amount_minor", sale["totals"]["due"]))
        status, data = await self.request(
            "POST", "/api/payments/simulator", {"cmd": "outcome", "spec": step.value}
        )
        if status != 200 or not data.get("ok"):
            raise StepFailed(f"cannot script the register's simulated terminal: {data}")
        wait = step.timeout_s
        status, data = await self.request(
            "POST",
            f"/api/sales/{sale['id']}/payments?wait={wait:g}",
            {"amount_minor": amount},
            timeout=wait + 5,
        )
        if status >= 400:
            self.last_error = data.get("error") if isinstance(data, dict) else {"message": data}
            return {"refused": self.last_error}
        if data["state"] in ("requested", "in_progress"):
            raise StepFailed(
                f"the card payment timed out after {wait:g} s: still {data['state']} "
                f"({data['status_text']})"
            )
        if data["state"] != "approved":
            self.last_error = {"code": f"card_{data['state']}", "message": data["message"]}
            return {"outcome": data["state"], "result_code": data["result_code"]}
        self.last_error = None
        sale = await self._sale()
        self.sale_open = sale["status"] == "open"
        return {"outcome": "approved", "status": sale["status"]}

    async def step_park(self, step: Step) -> Any:
        sale = await self._sale()
        await self._ok("POST", f"/api/sales/{sale['id']}/park", {"name": step.value})
        return {"parked": step.value}

    async def step_resume(self, step: Step) -> Any:
        parked: list[Doc] = await self._ok("GET", "/api/sales?status=parked")
        for sale in parked:
            if sale["name"] == step.value:
                await self._ok("POST", f"/api/sales/{sale['id']}/resume")
                self.sale_id = sale["id"]
                self.sale_open = True
                return {"resumed": sale["id"]}
        raise StepFailed(
            f"no parked sale named {step.value!r}", step.value, [s["name"] for s in parked]
        )

    async def step_void(self, step: Step) -> Any:
        sale = await self._sale()
        await self._ok("POST", f"/api/sales/{sale['id']}/void", {"reason": step.value})
        return {"voided": sale["id"]}

    async def step_wait_s(self, step: Step) -> Any:
        await asyncio.sleep(float(step.value))
        return None

    async def step_expect_api(self, step: Step) -> Any:
        spec = dict(step.value)
        method = str(spec.pop("method", "GET"))
        path = str(spec.pop("path"))
        want_status = int(spec.pop("status", 200))
        contains = spec.pop("json", {})
        status, data = await self.request(method, path, spec.pop("body", None))
        if status != want_status:
            raise StepFailed(f"{method} {path}: status {status}", want_status, data)
        problems = _subset_mismatch(contains, data) if contains else []
        if problems:
            raise StepFailed("; ".join(problems), contains, data)
        return {"status": status}


class InProcessTier(Tier):
    """The register's app in this process (ASGI, no socket) with its whole start and
    stop (the features' hooks run: the simulated card terminal), real SQLite."""

    name = "inprocess"

    async def start(self) -> None:
        from appliance.config import config_from_dict

        self.folder = Path(tempfile.mkdtemp(prefix="hil-inprocess-"))
        cfg: Doc = {"register": {"data_dir": str(self.folder / "data")}}
        cfg["demo"] = {"catalog": self.scenario.setup.get("catalog", "demo") == "demo"}
        for section, values in self.scenario.setup.get("config", {}).items():
            cfg.setdefault(section, {}).update(values)
        self.config = config_from_dict(cfg)
        await self._open()
        await self._setup()

    async def _open(self) -> None:
        import contextlib

        import httpx

        from appliance.api import create_app

        app = create_app(self.config)
        self.stack = contextlib.AsyncExitStack()
        await self.stack.enter_async_context(app.router.lifespan_context(app))
        self.service = app.state.service
        # A machine client, as every client of the API: the token the register made
        # in its data folder when it opened.
        from appliance.auth.tokens import bearer_headers

        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://register",
            headers=bearer_headers(self.config.data_dir),
        )

    async def stop(self) -> None:
        await self.client.aclose()
        await self.stack.aclose()

    async def step_power_cut(self, step: Step) -> Any:
        # In-process the closest to a cut is stopping the register and opening the
        # same file again; the virtual tier does a real SIGKILL.
        await self.stop()
        await self._open()
        return {"restarted": True}

    async def step_expect_db(self, step: Step) -> Any:
        from appliance.register import Register

        result = await self.service.call(Register.check)
        got = {"check": "ok" if result.ok else "failed", "ops": result.ops}
        problems = _subset_mismatch(step.value, got)
        if problems:
            raise StepFailed("; ".join(problems) + f" {result.differences[:3]}", step.value, got)
        return got


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VirtualTier(Tier):
    """A real register process on a loopback port, driven over HTTP like a sell screen."""

    name = "virtual"

    async def start(self) -> None:
        import httpx

        self.folder = Path(tempfile.mkdtemp(prefix="hil-virtual-"))
        self.port = _free_port()
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        config = self.folder / "register.toml"
        demo = "true" if self.scenario.setup.get("catalog", "demo") == "demo" else "false"
        lines = [
            f'[register]\ndata_dir = "{self.folder / "data"}"\n',
            f"[demo]\ncatalog = {demo}\n",
        ]
        for section, values in self.scenario.setup.get("config", {}).items():
            lines.append(f"[{section}]\n")
            for key, value in values.items():
                lines.append(f"{key} = {value!r}\n".replace("'", '"'))
        config.write_text("".join(lines))
        self.config_file = config
        await self._spawn()
        await self._setup()

    async def _spawn(self) -> None:
        import httpx

        self.log = open(self.folder / "register.log", "ab")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [
                str(BIN / "appliance"),
                "run",
                "--config",
                str(self.config_file),
                "--port",
                str(self.port),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StepFailed(f"register exited with {self.proc.returncode}")
            try:
                if (await self.client.get("/health")).status_code == 200:
                    from appliance.auth.tokens import bearer_headers

                    self.client.headers.update(bearer_headers(self.folder / "data"))
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
        raise StepFailed("register did not become ready within 30 s")

    async def stop(self) -> None:
        await self.client.aclose()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    async def step_power_cut(self, step: Step) -> Any:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()
        await self._spawn()
        return {"killed_and_restarted": True}

    async def step_expect_db(self, step: Step) -> Any:
        result = await asyncio.to_thread(
            subprocess.run,
            [str(BIN / "appliance"), "db", "check", "--config", str(self.config_file)],
            capture_output=True,
            text=True,
        )
        got = {"check": "ok" if result.returncode == 0 else "failed"}
        problems = _subset_mismatch({k: v for k, v in step.value.items() if k == "check"}, got)
        if problems:
            raise StepFailed("; ".join(problems) + " " + result.stdout[-500:], step.value, got)
        return got


TIER_CLASSES: dict[str, type[Tier]] = {"inprocess": InProcessTier, "virtual": VirtualTier}

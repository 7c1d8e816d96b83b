"""The in-process tier: the register's app in this process, no socket, real SQLite.

Its whole start and stop run (the features' hooks: the simulated card terminal on
loopback, the simulated printer writing its jobs under the data folder). A power cut
is closing the app and opening the same file again; the virtual tier does a SIGKILL.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

from hil.scenario.format import Step
from hil.scenario.receipts import Receipt, jobs_in
from hil.scenario.tiers import Doc, StepFailed, Tier, _subset_mismatch


class InProcessTier(Tier):
    name = "inprocess"

    async def start(self) -> None:
        from appliance.config import config_from_dict

        self.folder = Path(tempfile.mkdtemp(prefix="hil-inprocess-"))
        cfg: Doc = {"register": {"data_dir": str(self.folder / "data")}}
        cfg["demo"] = {"catalog": self.scenario.setup.get("catalog", "demo") == "demo"}
        for section, values in self.config_sections().items():
            cfg.setdefault(section, {}).update(values)
        self.config = config_from_dict(cfg)
        await self._open()
        await self._setup()

    async def _open(self) -> None:
        import httpx

        from appliance.api import create_app
        from appliance.auth.tokens import bearer_headers

        app = create_app(self.config)
        self.stack = contextlib.AsyncExitStack()
        await self.stack.enter_async_context(app.router.lifespan_context(app))
        self.service = app.state.service
        # A machine client, as every client of the API: the token the register made
        # in its data folder when it opened.
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://register",
            headers=bearer_headers(self.config.data_dir),
        )

    async def _close(self) -> None:
        await self.client.aclose()
        await self.stack.aclose()

    async def stop(self) -> None:
        try:
            if hasattr(self, "stack"):
                await self._close()
        finally:
            await self.close_devices()

    async def receipt_jobs(self, pictures: bool = False) -> list[Receipt]:
        return jobs_in(self.config.data_dir / "printer", pictures)

    async def set_printer(self, step: Step, faults: Doc) -> Doc:
        state: Doc = await self._ok("PUT", "/api/printer/simulated", faults)
        return state

    async def step_power_cut(self, step: Step) -> Any:
        # In-process the closest to a cut is stopping the register and opening the
        # same file again; the virtual tier does a real SIGKILL.
        await self._close()
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

"""Where a scenario runs: the tiers share one step vocabulary.

- ``inprocess`` (hil/scenario/inprocess.py): the register's app in this process on
  a real SQLite file; its simulated terminal and printer are in-process. Fastest.
- ``virtual`` (hil/scenario/virtual.py): a real ``appliance run`` process with its
  real drivers against real device processes on loopback: the TCP virtual printer,
  the ZVT simulator on TCP, a serial scanner on a pty; power cuts are SIGKILLs.
- ``qemu`` (hil/scenario/qemu_tier.py): the appliance image booted in QEMU.
- ``bench`` (hil/scenario/bench.py): real devices named in a bench file.

Both in-process and virtual can have a real back office (``appliance backoffice
serve`` on SQLite) behind the rig's cuttable link, started when a scenario uses
``backoffice`` or ``expect_sync``.

A step a tier does not support fails with a message naming the step and the tier —
it is never skipped silently.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from hil.scenario.format import Scenario, Step
from hil.scenario.receipts import Receipt

Doc = dict[str, Any]

# printer = "…": the fault states a scenario switches the printer to.
PRINTER_STATES: dict[str, Doc] = {
    "ok": {"paper": "ok", "cover_open": False, "online": True, "status": "normal"},
    "paper_out": {"paper": "out"},
    "paper_near_end": {"paper": "near_end"},
    "cover_open": {"cover_open": True},
    "offline": {"online": False},
    "mute": {"status": "mute"},
}
# pay_card = "…": scenario words for terminal outcomes (others go to the simulator as
# they are: approve, decline:05, abort, hang, "approve,pin=0.3", …).
CARD_OUTCOMES = {"approved": "approve", "declined": "decline:05", "timeout": "no-answer"}
POLL_S = 0.1
# With a back office in the scenario: probe and retry fast, so catching up after the
# link comes back takes moments, not the shop's minutes.
FAST_SYNC: Doc = {
    "probe_min_seconds": 0.2,
    "probe_max_seconds": 1.0,
    "retry_min_seconds": 0.2,
    "retry_max_seconds": 1.0,
    "request_timeout_seconds": 3.0,
    "long_poll_seconds": 2.0,
}


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


def _substitute(value: Any, names: dict[str, str]) -> Any:
    """``{receipt_no}`` and friends in a step's text: values the run produced."""
    if isinstance(value, str) and "{" in value:
        for key, text in names.items():
            value = value.replace("{" + key + "}", text)
        return value
    if isinstance(value, dict):
        return {k: _substitute(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, names) for v in value]
    return value


def printer_faults(state: str) -> Doc:
    """A printer step's value as virtual-printer faults (``paper_out_after:N`` too)."""
    if state.startswith("paper_out_after:"):
        count = state.split(":", 1)[1]
        if not count.isdigit() or int(count) < 1:
            raise StepFailed(f"printer: {state!r}: paper_out_after takes a line count")
        return {"paper_lines": int(count)}
    if state not in PRINTER_STATES:
        raise StepFailed(
            f"printer: unknown state {state!r} (use {', '.join(PRINTER_STATES)}, paper_out_after:N)"
        )
    return dict(PRINTER_STATES[state])


class Tier(ABC):
    """Shared step logic; subclasses start the register and its devices."""

    name = "tier"
    start_timeout_s = 60.0
    time_scale = 1.0  # step and scenario bounds are multiplied by this (qemu: TCG is slow)

    client: Any  # an httpx.AsyncClient on the register's API, set by start()

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.sale_id: str | None = None
        self.sale_open = False
        self.last_error: Doc | None = None
        self.receipts: list[Receipt] = []
        self.names: dict[str, str] = {}  # {receipt_no}: the last completed sale's
        self.refund_of: str | None = None  # a receipt scanned for a refund
        self.backoffice: Any = None  # hil.scenario.devices.BackOffice when used
        self.folder = Path(".")

    def uses(self, *actions: str) -> bool:
        return any(step.action in actions for step in self.scenario.steps)

    def config_sections(self) -> dict[str, Doc]:
        """The register's configuration: the scenario's ``setup.config`` over what
        the rig needs (fast sync probes when a back office is in the scenario)."""
        sections: dict[str, Doc] = {}
        if self.uses("backoffice", "expect_sync"):
            sections["sync"] = dict(FAST_SYNC)
        for section, values in self.scenario.setup.get("config", {}).items():
            sections.setdefault(section, {}).update(values)
        return sections

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    async def close_devices(self) -> None:
        if self.backoffice is not None:
            await self.backoffice.stop()

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
        if self.names:
            step = Step(step.index, step.line, step.action, _substitute(step.value, self.names),
                        _substitute(step.options, self.names), step.timeout_s)  # fmt: skip
        return await handler(step)

    def unsupported(self, step: Step, why: str) -> StepFailed:
        return StepFailed(f"step '{step.action}' is not available on the {self.name} tier: {why}")

    # devices the tier provides ------------------------------------------------------
    async def receipt_jobs(self, pictures: bool = False) -> list[Receipt]:
        """Every job the printer got so far as text (and PNG with ``pictures``)."""
        return []

    async def collect_receipts(self) -> None:
        try:
            self.receipts = await asyncio.wait_for(self.receipt_jobs(pictures=True), 30)
        except Exception:  # the report shows what there is; a dead printer is no crash
            self.receipts = []

    async def set_printer(self, step: Step, faults: Doc) -> Doc:
        raise self.unsupported(step, "no printer to switch")

    async def script_terminal(self, step: Step, spec: str) -> None:
        status, data = await self.request(
            "POST", "/api/payments/simulator", {"cmd": "outcome", "spec": spec}
        )
        if status != 200 or not data.get("ok"):
            raise StepFailed(f"cannot script the register's simulated terminal: {data}")

    async def terminal_unreachable(self, step: Step, down: bool) -> None:
        raise self.unsupported(step, "the terminal is in-process (unreachable needs a device)")

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
        if self.uses("backoffice", "expect_sync") and self.backoffice is None:
            await self._start_backoffice()

    async def _start_backoffice(self) -> None:
        from hil.scenario.devices import BackOffice

        folder = self.folder / "backoffice"
        folder.mkdir(parents=True, exist_ok=True)
        self.backoffice = BackOffice(folder)
        await self.backoffice.start()
        status = await self._ok("GET", "/api/status")
        code = await self.backoffice.pairing_code(status["register_id"])
        self.register_id = status["register_id"]
        await self._ok("POST", "/api/sync/pair", {"url": self.backoffice.url, "code": code})

    def _completed(self, sale: Doc) -> None:
        self.sale_open = sale["status"] == "open"
        if sale["status"] == "completed" and sale.get("receipt_no"):
            self.names["receipt_no"] = sale["receipt_no"]

    async def _poll(self, step: Step, read: Any, expected: Doc) -> Doc:
        """Read until ``expected`` is a subset of what is read, within the step's bound
        (less a margin, so a mismatch fails with its diff rather than a bare timeout)."""
        deadline = time.monotonic() + max(0.5, step.timeout_s - 1.0)
        while True:
            got: Doc = await read()
            problems = _subset_mismatch(expected, got)
            if not problems:
                return got
            if time.monotonic() > deadline:
                raise StepFailed("; ".join(problems), expected, got)
            await asyncio.sleep(POLL_S)

    # steps -----------------------------------------------------------------------
    async def step_scan(self, step: Step) -> Any:
        return await self._scan_code(step.value)

    async def _scan_code(self, code: str) -> Doc:
        # Scans go into the scenario's sale while it is open; after it is paid, a
        # scan starts the next sale, as at a real counter.
        current = self.sale_id if self.sale_open else None
        body = {"code": code, "sale_id": current}
        status, data = await self.request("POST", "/api/scan", body)
        if status >= 400:
            self.last_error = data.get("error")
            return {"refused": self.last_error}
        self.last_error = None
        if data["action"] in ("line", "customer"):
            self.sale_id = data["sale"]["id"]
            self.sale_open = data["sale"]["status"] == "open"
        elif data["action"] == "receipt":
            self.refund_of = data["receipt_no"]
        return {"action": data["action"]}

    async def step_scan_recording(self, step: Step) -> Any:
        """In-process: the recording through the driver's own decoder (the wedge decoder
        for evemu, the serial framer for serial/BLE), each scan into the sale."""
        from hil.scanner_replay import replay_recording

        text = self._recording(step)
        codes: list[str] = []
        summary = await replay_recording(
            text, codes.append, layout=step.options.get("layout"), tier="inprocess"
        )
        results = [await self._scan_code(code) for code in codes]
        return {"scans": codes, "results": results, "decoder": summary}

    def _recording(self, step: Step) -> str:
        path = self.scenario.path.parent / step.value
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise StepFailed(f"scan_recording: cannot read {path}: {exc.strerror}") from None

    async def step_refund(self, step: Step) -> Any:
        """Refund every line of the receipt scanned last (or the last sale), tender
        ``step.value`` (cash, card, other)."""
        receipt_no = self.refund_of or self.names.get("receipt_no")
        if receipt_no is None:
            raise StepFailed("refund: no receipt scanned and no sale completed yet")
        original = await self._ok("GET", f"/api/receipts/{receipt_no}")
        refund = await self._ok("POST", "/api/refunds", {"receipt_no": receipt_no})
        for line in original["lines"]:
            if not line.get("voided"):
                refund = await self._ok(
                    "POST", f"/api/refunds/{refund['id']}/lines",
                    {"original_line_no": line["no"], "qty": line["qty"]},
                )  # fmt: skip
        done = await self._ok(
            "POST", f"/api/refunds/{refund['id']}/complete", {"tender_kind": step.value}
        )
        self.sale_id, self.refund_of = done["id"], None
        self._completed(done)
        return {"refund": done["id"], "status": done["status"], "total": done["totals"]["total"]}

    async def step_expect_error(self, step: Step) -> Any:
        if not self.last_error or self.last_error.get("code") != step.value:
            raise StepFailed("the last step did not fail as expected", step.value, self.last_error)
        return self.last_error

    async def _sale(self) -> Doc:
        if self.sale_id is None:
            raise StepFailed("no sale yet in this scenario")
        sale: Doc = await self._ok("GET", f"/api/sales/{self.sale_id}")
        return sale

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
            "kind": sale.get("kind"),
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
        self._completed(sale)
        return {"status": sale["status"], "change_minor": sale["totals"]["change"]}

    async def step_pay_card(self, step: Step) -> Any:
        """A card payment through the register's payment path: the step's value is the
        terminal's scripted outcome (hil/zvt_sim/script.py; ``approved``, ``declined``,
        ``timeout`` = the terminal never answers, ``unreachable`` = no terminal there;
        ``""`` = not scripted: whatever the terminal answers, as with a real one)."""
        sale = await self._sale()
        amount = int(step.options.get("amount_minor", sale["totals"]["due"]))
        unreachable = step.value == "unreachable"
        if unreachable:
            await self.terminal_unreachable(step, True)
        elif step.value:
            await self.script_terminal(step, CARD_OUTCOMES.get(step.value, step.value))
        try:
            return await self._card_payment(step, sale, amount)
        finally:
            if unreachable:
                await self.terminal_unreachable(step, False)

    async def _card_payment(self, step: Step, sale: Doc, amount: int) -> Any:
        wait = max(1.0, step.timeout_s - 1.0)
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
        self._completed(sale)
        return {"outcome": "approved", "status": sale["status"]}

    async def step_park(self, step: Step) -> Any:
        sale = await self._sale()
        await self._ok("POST", f"/api/sales/{sale['id']}/park", {"name": step.value})
        self.sale_open = False
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
        self.sale_open = False
        return {"voided": sale["id"]}

    async def step_wait_s(self, step: Step) -> Any:
        await asyncio.sleep(float(step.value))
        return None

    async def step_expect_api(self, step: Step) -> Any:
        """A request to the register's API and what its answer must hold (a subset);
        read again until it does, within the step's bound (devices act in time)."""
        spec = dict(step.value)
        method = str(spec.pop("method", "GET"))
        path = str(spec.pop("path"))
        want_status = int(spec.pop("status", 200))
        contains = spec.pop("json", {})
        body = spec.pop("body", None)

        async def read() -> Doc:
            status, data = await self.request(method, path, body)
            return {"status": status, "json": data}

        want: Doc = {"status": want_status, **({"json": contains} if contains else {})}
        got = await self._poll(step, read, want)
        return {"status": got["status"]}

    # printer ---------------------------------------------------------------------
    async def step_printer(self, step: Step) -> Any:
        return await self.set_printer(step, printer_faults(step.value))

    async def step_expect_receipt(self, step: Step) -> Any:
        """Receipts the printer got, as rendered text. Keys: ``contains`` and
        ``not_contains`` (a text or a list), ``count`` (how many jobs match),
        ``sale`` (default true: only jobs that carry the current sale's receipt
        number; false: every job). Waits (bounded) for the printer to get there."""
        spec = dict(step.value)
        unknown = set(spec) - {"contains", "not_contains", "count", "sale"}
        if unknown:
            raise StepFailed(f"expect_receipt: unknown keys {sorted(unknown)} "
                             "(contains, not_contains, count, sale)")  # fmt: skip
        contains = spec.get("contains", [])
        contains = [contains] if isinstance(contains, str) else list(contains)
        absent = spec.get("not_contains", [])
        absent = [absent] if isinstance(absent, str) else list(absent)
        marker = None
        if spec.get("sale", True) and self.sale_id is not None:
            marker = (await self._sale()).get("receipt_no")
        expected: Doc = {"count": int(spec.get("count", 1))} if "count" in spec else {}

        async def read() -> Doc:
            jobs = await self.receipt_jobs()
            mine = [j for j in jobs if marker is None or marker in j.text]
            good = [j for j in mine if all(t in j.text for t in contains)
                    and not any(t in j.text for t in absent)]  # fmt: skip
            got: Doc = {"count": len(good), "jobs": len(jobs)}
            if not expected and good:
                got["ok"] = True
            got["texts"] = [j.text for j in mine][-3:]
            return got

        want = expected or {"ok": True}
        got = await self._poll(step, read, want)
        return {"matching_jobs": got["count"], "printer_jobs": got["jobs"]}

    # back office -----------------------------------------------------------------
    async def step_backoffice(self, step: Step) -> Any:
        if self.backoffice is None or self.backoffice.proxy is None:
            raise self.unsupported(step, "no back office link in this run")
        if step.value == "down":
            return self.backoffice.proxy.down()
        if step.value == "up":
            return self.backoffice.proxy.up()
        raise StepFailed(f"backoffice: {step.value!r}: use 'down' or 'up'")

    async def step_expect_sync(self, step: Step) -> Any:
        """The register's sync status contract (online, pending, errored,
        last_synced_at) and, with a back office in the run, what it holds:
        ``backoffice_sales`` (completed sales), ``backoffice_ops`` and
        ``duplicates`` (ops stored twice: must be 0). Waits (bounded) for a match."""

        async def read() -> Doc:
            status = await self._ok("GET", "/api/sync/status")
            got: Doc = {
                "online": status["online"],
                "pending": status["pending"],
                "errored": len(status["errored"]),
                "synced": status["last_synced_at"] is not None,
            }
            if self.backoffice is not None:
                counts = await asyncio.to_thread(self.backoffice.counts, self.register_id)
                got["backoffice_sales"] = counts["sales"]
                got["backoffice_ops"] = counts["ops"]
                got["duplicates"] = counts["ops"] - counts["distinct_ops"]
            return got

        return await self._poll(step, read, dict(step.value))


TIER_CLASSES: dict[str, type[Tier]] = {}


def tier_class(name: str) -> type[Tier] | None:
    """The tier's class, imported on demand (the qemu tier pulls in the image code)."""
    if name == "inprocess":
        from hil.scenario.inprocess import InProcessTier

        return InProcessTier
    if name == "virtual":
        from hil.scenario.virtual import VirtualTier

        return VirtualTier
    if name == "qemu":
        from hil.scenario.qemu_tier import QemuTier

        return QemuTier
    return TIER_CLASSES.get(name)

"""The HIL scenario format and runner: broken files, timeouts, bounds, reports, CLI."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from hil.scenario.format import ScenarioError, load_scenario
from hil.scenario.report import write_report
from hil.scenario.runner import run_scenario
from tests.conftest import VENV_BIN

SCENARIOS = Path(__file__).resolve().parent.parent / "hil" / "scenarios"


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ('name = "x"\n[[step]]\nscan = "1"\n[[step]]\nfly = 3\n', 5, "unknown action 'fly'"),
        ('name = "x"\n[[step]]\nscan = "1"\npay_cash = 3\n', 2, "exactly one action"),
        ('name = "x"\n[[step]]\npay_cash = "ten"\n', 3, "pay_cash: must be a int"),
        ('name = "x"\n[[step]]\nscan = "1"\ntimeout_s = 0\n', 4, "timeout_s: 1-600"),
        ('name = "x"\n\n[[step]]\nscan = 5\n', 4, "scan: must be a str"),
        ('name = "x"\n[[step]]\nscan = "1"\ncolour = "red"\n', 4, "unknown option 'colour'"),
        ('name = "x"\nspeed = 3\n[[step]]\nscan = "1"\n', 2, "unknown key 'speed'"),
        ('name = "x"\n[[step]\nscan = "1"\n', 2, "not valid TOML"),
        ('[[step]]\nscan = "1"\n', 1, "'name' is required"),
        ('name = "x"\ntiers = ["cloud"]\n[[step]]\nscan = "1"\n', 2, "'tiers' must list"),
        ('name = "x"\n[setup]\nfloat = 3\n[[step]]\nscan = "1"\n', 3, "setup.float"),
    ],
)
def test_broken_scenario_names_file_line_and_problem(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    file = tmp_path / "bad.scenario.toml"
    file.write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(file)
    assert err.value.file == file
    assert err.value.line == line, err.value
    assert problem in err.value.problem
    assert str(err.value).startswith(f"{file}:{line}: ")


def test_terminal_that_never_answers_fails_that_step_with_a_timeout(tmp_path: Path) -> None:
    file = tmp_path / "hang.scenario.toml"
    file.write_text(
        'name = "terminal hangs"\ntiers = ["inprocess"]\n[setup]\nshift_float_minor = 0\n'
        '[[step]]\nscan = "BAG"\n'
        '[[step]]\npay_card = "hang"\ntimeout_s = 2\n'
        '[[step]]\nexpect_sale = { status = "completed" }\n'
    )
    result = asyncio.run(run_scenario(load_scenario(file), "inprocess"))
    assert not result.ok
    assert [s.ok for s in result.steps] == [True, False]
    assert "timed out after" in (result.steps[1].error or "")
    assert result.seconds < 15


def test_scenario_bound_stops_a_long_scenario(tmp_path: Path) -> None:
    file = tmp_path / "slow.scenario.toml"
    file.write_text(
        'name = "slow"\ntimeout_s = 1\ntiers = ["inprocess"]\n'
        "[[step]]\nwait_s = 0.6\n[[step]]\nwait_s = 0.6\n[[step]]\nwait_s = 0.6\n"
    )
    result = asyncio.run(run_scenario(load_scenario(file), "inprocess"))
    assert not result.ok
    assert result.seconds < 5


def test_unsupported_step_fails_naming_step_and_tier(tmp_path: Path) -> None:
    file = tmp_path / "unreachable.scenario.toml"
    file.write_text(
        'name = "x"\n[setup]\nshift_float_minor = 0\n'
        '[[step]]\nscan = "BAG"\n[[step]]\npay_card = "unreachable"\n'
    )
    result = asyncio.run(run_scenario(load_scenario(file), "inprocess"))
    assert not result.ok
    assert "step 'pay_card' is not available on the inprocess tier" in (result.steps[1].error or "")


def test_wedge_recording_on_the_virtual_tier_names_uinput(tmp_path: Path) -> None:
    """This host's kernel has no uinput: the step fails saying so, naming uinput."""
    file = tmp_path / "wedge.scenario.toml"
    recording = SCENARIOS.parent / "recordings" / "scanners" / "us-enter.evemu"
    file.write_text(f'name = "x"\n[[step]]\nscan_recording = "{recording}"\n')
    result = asyncio.run(run_scenario(load_scenario(file), "virtual"))
    assert not result.ok
    error = result.steps[0].error or ""
    assert "step 'scan_recording' is not available on the virtual tier" in error
    assert "uinput" in error


def test_silent_printer_fails_that_step_and_the_next_scenario_still_runs(tmp_path: Path) -> None:
    """A printer that never answers (status mute): the receipt step fails by its own
    bound; `hil run` goes on with the next scenario, which passes."""
    hang = tmp_path / "a-mute.scenario.toml"
    hang.write_text(
        'name = "printer mute"\n[setup]\nshift_float_minor = 0\n'
        '[[step]]\nprinter = "mute"\n[[step]]\nscan = "BAG"\n[[step]]\npay_cash = 20\n'
        '[[step]]\nexpect_receipt = { contains = "Shopping bag" }\ntimeout_s = 3\n'
    )
    started = time.monotonic()
    run = subprocess.run(
        [str(VENV_BIN / "hil"), "run", str(hang), str(SCENARIOS / "cash-sale.scenario.toml"),
         "--tier", "virtual", "--report", str(tmp_path / "r.html")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAIL printer mute [virtual]" in run.stdout
    assert "ERR 4. expect_receipt" in run.stdout
    assert "PASS three scans paid in cash [virtual]" in run.stdout
    assert "1 passed, 1 failed" in run.stdout
    assert time.monotonic() - started < 60
    html = (tmp_path / "r.html").read_text()
    assert "count: expected" in html or "ok: expected True" in html  # the diff
    assert "data:image/png;base64," in html  # the cash sale's receipt as a picture


def test_unknown_tier_is_an_error_not_a_pass(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "cash-sale.scenario.toml")
    result = asyncio.run(run_scenario(scenario, "moon"))
    assert not result.ok and "not available in this build" in (result.error or "")


def test_report_has_steps_timings_and_diffs(tmp_path: Path) -> None:
    file = tmp_path / "wrong.scenario.toml"
    file.write_text(
        'name = "wrong total"\ntiers = ["inprocess"]\n'
        '[[step]]\nscan = "BAG"\n[[step]]\nexpect_cart = { total_minor = 1 }\n'
        '[[step]]\nscan = "BAG"\n'
    )
    result = asyncio.run(run_scenario(load_scenario(file), "inprocess"))
    out = tmp_path / "report.html"
    write_report([result], out)
    html = out.read_text()
    assert "FAIL wrong total" in html
    assert "total_minor: expected 1, got 20" in html
    assert "<span class='del'>-  &quot;total_minor&quot;: 1</span>" in html  # the line diff
    assert "not run" in html  # the step after the failure


def test_hil_run_cli_exit_codes(tmp_path: Path) -> None:
    ok = subprocess.run(
        [
            str(VENV_BIN / "hil"),
            "run",
            str(SCENARIOS / "misread-and-park.scenario.toml"),
            "--report",
            str(tmp_path / "r.html"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1 passed, 0 failed" in ok.stdout
    assert (tmp_path / "r.html").exists()
    bad = tmp_path / "bad.scenario.toml"
    bad.write_text('name = "x"\n[[step]]\nnope = 1\n')
    broken = subprocess.run(
        [str(VENV_BIN / "hil"), "run", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert broken.returncode == 2
    assert f"{bad}:3: step 1 must have exactly one action: unknown action 'nope'" in broken.stderr


def test_a_recorded_shop_sale_becomes_a_passing_scenario(tmp_path: Path) -> None:
    """Ring up a sale in one register, capture it from the database, replay it."""
    from appliance.config import config_from_dict
    from appliance.register import Register
    from appliance.scan import apply_scan

    reg = Register(config_from_dict({"register": {"data_dir": str(tmp_path / "shop")}}))
    from appliance.service import load_demo_catalog

    load_demo_catalog(reg)
    reg.open_shift(0)
    sale = apply_scan(reg, "4006381333931")["sale"]
    apply_scan(reg, "2100002012341", sale["id"])  # bananas, 1.234 kg from a scale label
    reg.park(sale["id"], "Ms Smith")
    reg.resume(sale["id"])
    apply_scan(reg, "BAG", sale["id"])
    done = reg.add_tender(sale["id"], "cash", 1000)
    reg.close()
    out = tmp_path / "captured.scenario.toml"
    cli = subprocess.run(
        [
            str(VENV_BIN / "hil"),
            "capture-scenario",
            str(tmp_path / "shop" / "register.db"),
            "--receipt",
            done["receipt_no"],
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    scenario = load_scenario(out)
    actions = [s.action for s in scenario.steps]
    assert actions == ["scan", "scan", "park", "resume", "scan", "pay_cash", "expect_sale"]
    assert scenario.steps[1].value == "2100002012341"
    result = asyncio.run(run_scenario(scenario, "inprocess"))
    assert result.ok, [(s.title, s.error) for s in result.steps]


def test_bench_tier_against_a_register_named_in_a_bench_file(
    tmp_path: Path, register_process: Any
) -> None:
    """The bench tier drives whatever register the bench file names (here: a real
    process on loopback); scan injection through /dev/uinput or a HID gadget fails
    saying what is missing when the machine has neither."""
    register_process.start()
    token = register_process.data_dir / "api-token"
    target = f'[register]\nurl = "{register_process.url}"\ntoken_file = "{token}"\n'
    bench = tmp_path / "bench.toml"
    bench.write_text(target + '[scanner]\ninject = "api"\n')
    scenario = load_scenario(SCENARIOS / "misread-and-park.scenario.toml")
    scenario.tiers = ("bench",)
    result = asyncio.run(run_scenario(scenario, "bench", bench))
    assert result.ok, [(s.title, s.error) for s in result.steps]
    bench.write_text(target + '[scanner]\ninject = "hidg"\ndevice = "/nonexistent/hidg0"\n')
    result = asyncio.run(run_scenario(scenario, "bench", bench))
    assert not result.ok
    assert "HID gadget /nonexistent/hidg0 does not exist" in (result.steps[0].error or "")


def test_hid_reports_are_boot_keyboard_press_release_pairs() -> None:
    from hil.scenario.bench import hid_reports

    data = hid_reports("A1\n")
    assert len(data) == 6 * 8
    assert data[0:8] == bytes([0x02, 0, 0x04, 0, 0, 0, 0, 0])  # shift + a
    assert data[8:16] == bytes(8)
    assert data[16:24] == bytes([0, 0, 0x1E, 0, 0, 0, 0, 0])  # 1
    assert data[32:40] == bytes([0, 0, 0x28, 0, 0, 0, 0, 0])  # Enter


BENCH_SCENARIO = """name = "bench card sale"
[setup]
shift_float_minor = 0
[[step]]
scan = "BAG"
[[step]]
pay_card = "declined"
[[step]]
expect_error = "card_declined"
[[step]]
pay_card = "approved"
[[step]]
expect_sale = { status = "completed", tenders = ["card"] }
[[step]]
expect_receipt = { contains = ["Shopping bag", "{receipt_no}"] }
[[step]]
printer = "paper_out"
[[step]]
expect_api = { path = "/api/printer/status", json = { printer = { paper = "out" } } }
timeout_s = 10
"""


def test_bench_tier_tees_the_printer_and_scripts_the_terminal(tmp_path: Path) -> None:
    """A bench on loopback: a real register printing to the rig's tee in front of a
    virtual printer over TCP, paying at the ZVT simulator over TCP. The receipt is read
    from the tee's copy and reached the printer too; faults and outcomes go over the
    devices' control channels, and without them those steps fail saying so."""
    from hil.scenario.devices import free_port, printer_process, terminal_process
    from tests.conftest import RegisterProcess

    scenario_file = tmp_path / "bench-card.scenario.toml"
    scenario_file.write_text(BENCH_SCENARIO)
    scenario = load_scenario(scenario_file)
    scenario.tiers = ("bench",)

    async def bench_run() -> tuple[Any, Any, Any, list[Path]]:
        printer = await printer_process(tmp_path / "jobs", tmp_path / "printer.log").start()
        terminal = await terminal_process(tmp_path / "terminal.log").start()
        register = RegisterProcess(tmp_path / "data", tmp_path / "register.toml")
        try:
            tee = f"127.0.0.1:{free_port()}"
            register.config_file.write_text(  # type: ignore[union-attr]
                f'[demo]\ncatalog = true\n[printer]\nconnection = "tcp:{tee}"\n'
                f'[payments]\nterminal = "tcp:{terminal.hostport}"\n'
            )
            await asyncio.to_thread(register.start)
            token = register.data_dir / "api-token"
            head = f'[register]\nurl = "{register.url}"\ntoken_file = "{token}"\n'
            control = f"{printer.control_address[0]}:{printer.control_address[1]}"
            term_control = f"{terminal.control_address[0]}:{terminal.control_address[1]}"
            bench = tmp_path / "bench.toml"
            bench.write_text(
                head + f'[printer]\ntee = "{tee}"\ntarget = "{printer.hostport}"\n'
                f'control = "{control}"\n'
                f'[terminal]\naddress = "{terminal.hostport}"\ncontrol = "{term_control}"\n'
            )
            scripted = await run_scenario(scenario, "bench", bench)
            await printer.control({"cmd": "set", "paper": "ok"})
            bench.write_text(
                head + f'[printer]\ntee = "{tee}"\ntarget = "{printer.hostport}"\n'
                f'[terminal]\naddress = "{terminal.hostport}"\n'
            )
            real = await run_scenario(scenario, "bench", bench)
            fault = scenario_file.with_name("fault.scenario.toml")
            fault.write_text(
                'name = "fault"\n[[step]]\nscan = "BAG"\n[[step]]\npay_cash = 100\n'
                '[[step]]\nexpect_receipt = { contains = "{receipt_no}" }\ntimeout_s = 10\n'
                '[[step]]\nprinter = "cover_open"\n'
            )  # a fresh tee on the same port gets this sale's receipt
            no_control = await run_scenario(load_scenario(fault), "bench", bench)
            return scripted, real, no_control, sorted((tmp_path / "jobs").glob("*.txt"))
        finally:
            await asyncio.to_thread(register.stop)
            await printer.stop()
            await terminal.stop()

    started = time.monotonic()
    scripted, real, no_control, printed = asyncio.run(bench_run())
    assert scripted.ok, (scripted.error, [(s.title, s.error) for s in scripted.steps])
    assert scripted.steps[1].detail["outcome"] == "declined"  # scripted, not the default
    receipt_no = scripted.steps[4].detail["receipt_no"]
    assert any(receipt_no in p.read_text() for p in printed)  # the relay reached the printer
    assert any(receipt_no in r.text for r in scripted.receipts)  # the tee's copy in the report
    assert not real.ok
    assert [s.ok for s in real.steps] == [True, False]
    assert "cannot be scripted" in (real.steps[1].error or "")
    assert not no_control.ok
    steps = [(s.ok, s.error, s.got) for s in no_control.steps]
    assert [s[0] for s in steps] == [True, True, True, False], steps
    assert "the bench has no printer control" in (no_control.steps[3].error or "")
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[register]\nurl = "http://x"\n', "register.token_file: required in [register]"),
        ('[scanner]\ninject = "api"\n', "register.url: required"),
        ('[register]\nurl = "u"\ntoken_file = "t"\n[printer]\ntee = "127.0.0.1:9100"\n',
         "printer.target: required in [printer]"),
        ('[register]\nurl = "u"\ntoken_file = "t"\n[printer]\ntee = "nowhere"\ntarget = "h:1"\n',
         "printer.tee: 'nowhere' is not HOST:PORT"),
        ('[register]\nurl = "u"\ntoken_file = "t"\n[terminal]\naddress = "h:1"\nport = "2"\n',
         "terminal.port: unknown key"),
        ('[register]\nurl = "u"\ntoken_file = "t"\n[terminal]\ncontrol = "h:1"\n',
         "terminal.address: required in [terminal]"),
        ('[register]\nurl = "u"\ntoken_file = "t"\n[drawer]\nport = "x"\n',
         "drawer: unknown section"),
        ('[register]\nurl = "u"\ntoken_file = "t"\n[scanner]\ninject = "bt"\n', "scanner.inject"),
        ('[register]\nurl = 5\n', "register.url: must be a non-empty string"),
        ("[register\n", "not valid TOML"),
    ],
)  # fmt: skip
def test_broken_bench_file_names_file_and_key(tmp_path: Path, text: str, problem: str) -> None:
    from hil.scenario.bench import BenchFileError, load_bench

    file = tmp_path / "bench.toml"
    file.write_text(text)
    with pytest.raises(BenchFileError) as err:
        load_bench(file)
    assert str(err.value).startswith(f"{file}: ")
    assert problem in str(err.value)

"""First boot: the shop's file becomes the register's config once, validated, atomically."""

from __future__ import annotations

import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.config import load_config
from appliance.errors import ConfigError
from appliance.firstboot import apply_first_boot, to_toml
from tests.conftest import VENV_BIN, free_port
from tests.sync_support import Admin, BackOfficeProcess, new_store_ids, seed, wait_until

FIRSTBOOT = """
[store]
id = "corner"
name = "Corner Shop"
receipt_header = ["Corner Shop", "Main St. 1 \\"east\\""]
[register]
id = "R2"
name = "Counter 2"
[pairing]
url = "https://backoffice.example:8800"
code = "7KQ4-9XZM"
[tax.rates]
standard = "8.875"
[payments.offline]
enabled = true
max_amount = 5000
"""


def test_first_boot_file_becomes_the_config_and_pairing(tmp_path: Path) -> None:
    source = tmp_path / "firstboot.toml"
    source.write_text(FIRSTBOOT)
    result = apply_first_boot(source, tmp_path)
    assert result.action == "configured"
    config = load_config(tmp_path / "register.toml")
    assert (config.store.id, config.store.name) == ("corner", "Corner Shop")
    assert config.store.receipt_header == ["Corner Shop", 'Main St. 1 "east"']
    assert (config.register.id, config.register.name) == ("R2", "Counter 2")
    assert config.data_dir == tmp_path / "data"  # on the data partition
    assert (config.http.host, config.http.port) == ("0.0.0.0", 8080)
    assert str(config.tax.rates["standard"]) == "8.875"
    assert config.payments.offline.enabled and config.payments.offline.max_amount == 5000
    pairing = tomllib.loads((tmp_path / "pairing.toml").read_text())
    assert pairing == {"url": "https://backoffice.example:8800", "code": "7KQ4-9XZM",
                       "store_id": "corner", "register_id": "R2"}  # fmt: skip
    assert (tmp_path / "pairing.toml").stat().st_mode & 0o077 == 0  # a secret: owner only
    assert "pairing" not in (tmp_path / "register.toml").read_text()

    # Once configured, the admin panel owns the config: a later run changes nothing.
    (tmp_path / "register.toml").write_text('[register]\nid = "R9"\n')
    assert apply_first_boot(source, tmp_path).action == "already-configured"
    assert load_config(tmp_path / "register.toml").register.id == "R9"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[store]\nid = "corner"\ncolour = "red"\n', "store.colour: unknown key"),
        ('[register]\nid = "R 2"\n', "register.id"),
        ('[pairing]\nurl = "http://bo:8800"\ncode = "x"\n', "pairing.code"),
        ('[pairing]\nurl = "bo:8800"\ncode = "ABCD-1234"\n', "pairing.url"),
        ('[pairing]\ncode = "ABCD-1234"\n', "pairing: a table with two keys"),
        ('[register]\ndata_dir = "/tmp"\n', "register.data_dir: set by the appliance"),
        ("[store\n", "not valid TOML"),
    ],
)
def test_bad_first_boot_file_is_refused_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    source = tmp_path / "firstboot.toml"
    source.write_text(text)
    with pytest.raises(ConfigError) as err:
        apply_first_boot(source, tmp_path)
    assert str(source) in err.value.message and message in err.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["firstboot.toml"]  # nothing written


def test_no_first_boot_file_gives_a_working_default_register(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "appliance"), "firstboot", "--from", str(tmp_path / "missing.toml"),
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "with the defaults" in result.stderr
    config = load_config(tmp_path / "register.toml")
    assert config.register.id == "R1" and config.db_path == tmp_path / "data" / "register.db"
    assert not (tmp_path / "pairing.toml").exists()


def test_cli_refuses_a_bad_file_with_exit_1(tmp_path: Path) -> None:
    source = tmp_path / "firstboot.toml"
    source.write_text('[tax]\nmode = "sometimes"\n')
    result = subprocess.run(
        [str(VENV_BIN / "appliance"), "firstboot", "--from", str(source),
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "nothing written" in result.stderr and "tax.mode" in result.stderr
    assert not (tmp_path / "register.toml").exists()


scalars = st.one_of(
    st.text(max_size=20),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
)
keys = st.text(min_size=1, max_size=10)
values = st.one_of(scalars, st.lists(st.text(max_size=10), max_size=4))
tables: st.SearchStrategy[dict[str, Any]] = st.recursive(
    st.dictionaries(keys, values, max_size=4),
    lambda inner: st.dictionaries(keys, st.one_of(values, inner), max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(tables)
def test_to_toml_round_trips(data: dict[str, Any]) -> None:
    assert tomllib.loads(to_toml(data)) == data


def _first_start(folder: Path, firstboot: str) -> tuple[subprocess.Popen[bytes], str]:
    """`appliance run --first-boot` as the appliance's unit runs it, on a loopback port."""
    folder.mkdir()
    (folder / "firstboot.toml").write_text(firstboot)
    port = free_port()
    cmd = [str(VENV_BIN / "appliance"), "run", "--config", str(folder / "register.toml"),
           "--first-boot", str(folder / "firstboot.toml"), "--port", str(port)]  # fmt: skip
    with open(folder / "register.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def _sync_status(url: str, folder: Path) -> dict[str, Any] | None:
    token = folder / "data" / "api-token"  # the register's machine token, made at start
    try:
        auth = {"Authorization": f"Bearer {token.read_text().strip()}"}
        status: dict[str, Any] = httpx.get(f"{url}/api/sync/status", headers=auth,
                                           timeout=2).json()  # fmt: skip
    except (httpx.HTTPError, ValueError, OSError):
        return None
    return status


@pytest.fixture
def backoffice(tmp_path: Path) -> Iterator[tuple[BackOfficeProcess, str]]:
    (tmp_path / "bo").mkdir()
    db_url = f"sqlite:///{tmp_path / 'bo' / 'bo.db'}"
    store = new_store_ids(1)[0]
    seed(db_url, (store,))
    proc = BackOfficeProcess(db_url, tmp_path / "bo")
    proc.start()
    yield proc, store
    proc.stop()


def test_first_start_pairs_from_the_first_boot_file(
    tmp_path: Path, backoffice: tuple[BackOfficeProcess, str]
) -> None:
    bo, store = backoffice
    admin = Admin(bo.url)
    code = admin.pairing_code(store)
    firstboot = (f'[store]\nid = "{store}"\n[register]\nid = "{{rid}}"\n[http]\n'
                 f'host = "127.0.0.1"\n[pairing]\nurl = "{bo.url}"\ncode = "{code}"\n')  # fmt: skip
    first, first_url = _first_start(tmp_path / "r1", firstboot.format(rid="R1"))
    second: subprocess.Popen[bytes] | None = None
    try:
        status = wait_until(
            lambda: (s := _sync_status(first_url, tmp_path / "r1")) and s.get("online") and s,
            60, "the register did not pair and come online", first,
        )  # fmt: skip
        assert not (tmp_path / "r1" / "pairing.toml").exists()  # single-use: gone once used
        assert load_config(tmp_path / "r1" / "register.toml").register.id == "R1"
        assert status["online"] is True
        # The same single-use code again: the back office refuses, the register says why.
        second, _ = _first_start(tmp_path / "r2", firstboot.format(rid="R2"))
        refused = tmp_path / "r2" / "pairing.refused.toml"
        wait_until(refused.exists, 60, "a used code was not refused", second)
        assert not (tmp_path / "r2" / "pairing.toml").exists()
        assert "pairing" in (tmp_path / "r2" / "register.log").read_text()
    finally:
        admin.close()
        for proc in (first, second):
            if proc is not None:
                proc.terminate()
                proc.wait(10)

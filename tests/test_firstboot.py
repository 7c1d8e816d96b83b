"""First boot: the shop's file becomes the register's config once, validated, atomically."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.config import load_config
from appliance.errors import ConfigError
from appliance.firstboot import apply_first_boot, to_toml
from tests.conftest import VENV_BIN

FIRSTBOOT = """
[store]
id = "corner"
name = "Corner Shop"
receipt_header = ["Corner Shop", "Main St. 1 \\"east\\""]
[register]
id = "R2"
name = "Counter 2"
[pairing]
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
    assert pairing == {"code": "7KQ4-9XZM", "store_id": "corner", "register_id": "R2"}
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
        ('[pairing]\ncode = "x"\n', "pairing.code"),
        ('[pairing]\ncode = "ABCD-1234"\nsecret = 1\n', "pairing: a table with one key"),
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

"""Configuration validation and the `appliance` CLI contracts, run as real processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from appliance.config import load_config
from appliance.errors import ConfigError
from appliance.register import Register
from tests.conftest import CATALOG_CSV, VENV_BIN, RegisterProcess, make_config


def appliance(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "appliance"), *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_defaults_need_no_file() -> None:
    config = load_config(None)
    assert config.http.host == "127.0.0.1" and config.http.port == 8080
    assert config.tax.rate_ppm("standard") == 190_000


def test_config_file_and_rates(tmp_path: Path) -> None:
    file = tmp_path / "a.toml"
    file.write_text(
        '[register]\nid = "R7"\n[tax]\nmode = "exclusive"\n[tax.rates]\nstate = "8.875"\n'
    )
    config = load_config(file)
    assert config.register.id == "R7"
    assert config.tax.rate_ppm("state") == 88_750
    assert config.db_path == tmp_path / "data" / "register.db"  # relative to the file


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[register]\nidd = 1\n",
            "register.idd: unknown key (allowed here: id, name, data_dir, durability)",
        ),
        ("[taxes]\n", "taxes: unknown key"),
        ('[tax]\nmode = "vat"\n', "tax.mode: Input should be 'inclusive' or 'exclusive'"),
        ("[http]\nport = 70000\n", "http.port: Input should be less than or equal to 65535"),
        ('[tax.rates]\nstd = "abc"\n', "rate for 'std' is not a number"),
        ('[register]\nid = "R 1"\n', "register.id: String should match pattern"),
        ("[register\n", "not valid TOML"),
    ],
)
def test_bad_config_names_file_key_and_allowed(tmp_path: Path, text: str, expected: str) -> None:
    file = tmp_path / "bad.toml"
    file.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(file)
    assert str(file) in err.value.message
    assert expected in err.value.message


def test_run_refuses_to_start_with_a_bad_config(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_text("[store]\ncurrency = 'euro'\n")
    result = appliance("run", "--config", str(file))
    assert result.returncode == 2
    assert f"{file}: store.currency" in result.stderr


def test_config_from_env_var(tmp_path: Path) -> None:
    import os

    file = tmp_path / "env.toml"
    file.write_text("[register]\nbogus = 1\n")
    result = appliance("report", "x", env={**os.environ, "APPLIANCE_CONFIG": str(file)})
    assert result.returncode == 2 and "register.bogus: unknown key" in result.stderr


def test_catalog_import_cli_all_or_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "sku,name,price_minor,barcodes,tax_category,sold_by\n"
        "A,Apple,100,4006381333931,reduced,unit\n"
        "B,,abc,,luxury,litre\n"
        "A,Again,5,,,\n"
        "C,Copy,5,4006381333931,,\n"
    )
    result = appliance("catalog", "import", str(bad), "--data-dir", str(data))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert f"{bad}:3: name: required, 1-200 characters" in lines
    assert (
        f"{bad}:3: price_minor: 'abc' is not an integer number of minor units (e.g. 199)" in lines
    )
    assert f"{bad}:3: tax_category: 'luxury' is not one of standard, reduced, zero" in lines
    assert f"{bad}:3: sold_by: 'litre' must be 'unit' or 'weight'" in lines
    assert f"{bad}:4: sku: 'A' already on line 2" in lines
    assert f"{bad}:5: barcodes: '4006381333931' already belongs to 'A' on line 2" in lines
    reg = Register(make_config(tmp_path))
    assert reg.state.product_count() == 0  # nothing half-imported
    reg.close()
    good = tmp_path / "good.csv"
    good.write_text(CATALOG_CSV)
    result = appliance("catalog", "import", str(good), "--data-dir", str(data))
    assert result.returncode == 0, result.stderr
    assert "imported 5 products" in result.stdout


def test_unknown_csv_column_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "cols.csv"
    bad.write_text("sku,name,price,colour\nA,B,1,red\n")
    result = appliance("catalog", "import", str(bad), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 1
    assert f"{bad}:1: price: unknown column" in result.stderr
    assert f"{bad}:1: price_minor: required column is missing" in result.stderr


def test_reports_and_db_check_cli(tmp_path: Path) -> None:
    reg = Register(make_config(tmp_path))
    reg.import_catalog_csv(CATALOG_CSV, "t.csv")
    reg.open_shift(1_000)
    sale = reg.open_sale()
    reg.add_line(sale["id"], "COFFEE")
    reg.add_tender(sale["id"], "cash", 500)
    reg.close()
    data = str(tmp_path / "data")
    x = appliance("report", "x", "--data-dir", data)
    assert x.returncode == 0, x.stderr
    assert "X report" in x.stdout and "Tender cash" in x.stdout and "4.99" in x.stdout
    z = appliance("report", "z", "--data-dir", data)
    assert z.returncode == 1 and "no closed shift" in z.stderr
    reg = Register(make_config(tmp_path))
    reg.close_shift(1_499)
    reg.close()
    z = appliance("report", "z", "--json", "--data-dir", data)
    assert z.returncode == 0
    report = json.loads(z.stdout)
    assert report["z_no"] == 1 and report["over_short"] == 0
    check = appliance("db", "check", "--data-dir", data)
    assert check.returncode == 0 and check.stdout.strip().endswith("OK")
    # Corrupt the derived state: the check notices.
    import sqlite3

    conn = sqlite3.connect(tmp_path / "data" / "register.db")
    conn.execute("UPDATE products SET price = 1 WHERE sku = 'COFFEE'")
    conn.commit()
    conn.close()
    check = appliance("db", "check", "--data-dir", data)
    assert check.returncode == 1 and "products COFFEE: stored row differs" in check.stdout


def test_run_starts_register_on_embedded_default(register_process: RegisterProcess) -> None:
    register_process.start()
    assert (register_process.data_dir / "register.db").exists()

"""Static checks of firmware_configs/udev: the classes of bugs these rules once had.

The host has no udevadm (and systemd 252 has no `udevadm verify`), so the grammar and
the naming rules are checked here, and the QEMU stage checks what a real udev makes
of them in the guest (tests/test_qemu_appliance.py: names, owner, group and mode of
the scanner's, terminal's and printer's nodes, and no udev complaint about a rule).

What a rule must never do again:
- name a device by the kernel's number (``%n``, ``%k``, ``$number``, ``$kernel``):
  ttyUSB0/event3 change with plug order across boots and replugs;
- give two devices the same name (a fixed ``SYMLINK`` like ``scanner-serial``): the
  second device takes the name and the config silently talks to the wrong one;
- give a generic USB-serial adapter (FTDI, Prolific, CP210x, CH340) a role by its USB
  id: the same adapter carries card terminals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RULES = sorted((ROOT / "firmware_configs" / "udev").glob("*.rules"))
SYSUSERS = ROOT / "systemd" / "sysusers.d"
# USB-serial bridge chips: FTDI, Prolific, Silicon Labs, WCH
GENERIC_SERIAL_VENDORS = ("0403", "067b", "10c4", "1a86")
# What names a device uniquely: the USB port (and interface), or its serial number.
UNIQUE_PARTS = ("$env{ID_PATH_TAG}", "$env{ID_SERIAL_SHORT}")

PAIR = re.compile(
    r'\s*([A-Z_]+)(?:\{([^}]*)\})?\s*(==|!=|\+=|-=|:=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)'
)
MATCH_KEYS = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "NAME", "SYMLINK", "SUBSYSTEM",
              "SUBSYSTEMS", "DRIVER", "DRIVERS", "ATTR", "ATTRS", "ENV", "TAG", "TAGS",
              "TEST", "PROGRAM", "RESULT", "CONST", "SYSCTL"}  # fmt: skip
ASSIGN_KEYS = {"NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "ATTR", "SYSCTL", "ENV", "TAG",
               "RUN", "LABEL", "GOTO", "IMPORT", "OPTIONS", "SECLABEL"}  # fmt: skip
# Which builtin sets the properties a rule reads (these files sort before, or beside,
# the systemd rules that would import them, so each imports what it reads).
BUILTIN_OF = {"ID_PATH_TAG": "path_id", "ID_SERIAL_SHORT": "usb_id", "ID_VENDOR_ID": "usb_id",
              "ID_MODEL_ID": "usb_id", "ID_USB_INTERFACE_NUM": "usb_id",
              "ID_USB_INTERFACES": "usb_id", "ID_SERIAL": "usb_id",
              "ID_INPUT_KEYBOARD": "input_id"}  # fmt: skip


@dataclass
class Key:
    name: str
    attr: str | None
    op: str
    value: str


@dataclass
class Rule:
    file: str
    line: int
    keys: list[Key]

    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def get(self, name: str, attr: str | None = None, ops: tuple[str, ...] = ()) -> list[Key]:
        return [k for k in self.keys if k.name == name and (attr is None or k.attr == attr)
                and (not ops or k.op in ops)]  # fmt: skip


def parse(path: Path) -> list[Rule]:
    """Rules of a file (continued lines joined); a line that does not parse fails here."""
    rules: list[Rule] = []
    lines = path.read_text().splitlines()
    n = 0
    while n < len(lines):
        start = n + 1
        text = lines[n]
        while text.endswith("\\"):
            n += 1
            text = text[:-1] + lines[n]
        n += 1
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        keys: list[Key] = []
        pos = 0
        while pos < len(text):
            match = PAIR.match(text, pos)
            assert match, f"{path.name}:{start}: cannot parse at column {pos}: {text[pos:]!r}"
            keys.append(Key(match[1], match[2], match[3], match[4]))
            pos = match.end()
        rules.append(Rule(path.name, start, keys))
    return rules


ALL = {path.name: parse(path) for path in RULES}


def all_rules() -> list[Rule]:
    return [rule for rules in ALL.values() for rule in rules]


def test_there_are_rules_for_each_kind_of_device() -> None:
    assert {"60-appliance-scanners.rules", "61-appliance-printers.rules",
            "62-appliance-serial.rules"} <= set(ALL)  # fmt: skip


@pytest.mark.parametrize("name", sorted(ALL))
def test_grammar_keys_operators_and_labels(name: str) -> None:
    labels = {k.value for r in ALL[name] for k in r.get("LABEL")}
    for rule in ALL[name]:
        for key in rule.keys:
            if key.op in ("==", "!="):
                assert key.name in MATCH_KEYS, f"{rule.where()}: {key.name} cannot be matched"
            else:
                assert key.name in ASSIGN_KEYS, f"{rule.where()}: {key.name} cannot be assigned"
            if key.name in ("ATTRS", "KERNELS", "SUBSYSTEMS", "DRIVERS"):
                # on parent keys "!=" means "some parent differs": almost never intended
                assert key.op == "==", f"{rule.where()}: {key.name}{key.op} is ambiguous"
            if key.name == "GOTO":
                assert key.value in labels, f"{rule.where()}: GOTO to a missing label"
            if key.name == "MODE":
                assert re.fullmatch(r"0[0-7]{3}", key.value), f"{rule.where()}: MODE {key.value}"


def test_no_name_depends_on_kernel_numbers() -> None:
    for rule in all_rules():
        for key in rule.get("SYMLINK") + rule.get("NAME", ops=("=", ":=")):
            assert not re.search(r"%[nk]|\$number|\$kernel", key.value), (
                f"{rule.where()}: {key.value!r} names the device by the kernel's number, "
                "which changes across boots and replugs"
            )


def test_every_name_is_unique_to_one_device() -> None:
    """Each symlink holds the port path or the serial, and only when that is known."""
    for rule in all_rules():
        for key in rule.get("SYMLINK"):
            parts = [part for part in UNIQUE_PARTS if part in key.value]
            assert parts, f"{rule.where()}: {key.value!r} can be claimed by two devices"
            for part in parts:
                prop = part.removeprefix("$env{").removesuffix("}")
                guards = rule.get("ENV", prop, ops=("==",))
                assert any(g.value == "?*" for g in guards), (
                    f'{rule.where()}: {key.value!r} without ENV{{{prop}}}=="?*": a device '
                    "without it would get a name shared with every other such device"
                )


def test_each_file_imports_the_builtins_it_reads() -> None:
    for name, rules in ALL.items():
        imported = {k.value.removeprefix("builtin=") for r in rules for k in r.keys
                    if k.name == "IMPORT" and k.attr == "builtin"}  # fmt: skip
        if name.startswith("62-"):
            imported |= {"path_id", "usb_id"}  # 60-serial.rules ran before it
        text = (ROOT / "firmware_configs/udev" / name).read_text()
        for prop, builtin in BUILTIN_OF.items():
            if re.search(rf"\{{{prop}\}}", text):
                assert builtin in imported, f"{name}: reads {prop} but never imports {builtin}"


def test_generic_usb_serial_adapters_get_no_role() -> None:
    """An FTDI adapter may be the card terminal: no scanner/terminal/printer rule takes it."""
    for rule in all_rules():
        vendors = "|".join(k.value for k in rule.get("ATTRS", "idVendor") + rule.get(
            "ATTR", "idVendor"))  # fmt: skip
        for vendor in GENERIC_SERIAL_VENDORS:
            assert vendor not in vendors.split("|"), (
                f"{rule.where()}: gives USB-serial bridge {vendor} a role by its USB id"
            )


def test_devices_go_to_the_register_user_only() -> None:
    groups = {k.value for r in all_rules() for k in r.get("GROUP")}
    modes = {k.value for r in all_rules() for k in r.get("MODE")}
    assert groups == {"appliance"} and modes == {"0660"}, (groups, modes)
    sysusers = "\n".join(p.read_text() for p in SYSUSERS.glob("*.conf"))
    assert re.search(r"^u\s+appliance\s", sysusers, re.M)  # the group comes with the user


def test_the_scanner_rules_name_only_keyboard_nodes_of_scanners() -> None:
    """Real keyboards stay the console's: the wedge rules match scanner makers only."""
    rules = ALL["60-appliance-scanners.rules"]
    for rule in rules:
        if rule.get("SUBSYSTEM", ops=("==",)) and rule.get("SUBSYSTEM")[0].value == "input":
            assert rule.get("ATTRS", "idVendor"), f"{rule.where()}: an input rule without a maker"

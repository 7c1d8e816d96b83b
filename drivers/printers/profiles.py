"""Receipt printer capability profiles: one TOML file per model in firmware_configs/printers.

    name = "Epson TM-T88V, 80 mm"
    paper_mm = 80
    dots = 512                    # printable dots per line
    dpi = 180
    columns = 42                  # characters per line in font A
    columns_font_b = 56
    cutter = "partial"            # full | partial | none
    graphics = true               # GS v 0 raster images (logo, software barcodes)
    barcodes = true               # GS k barcodes (Code128)
    qr = true                     # GS ( k QR codes
    status = true                 # answers DLE EOT status requests
    realtime_pulse = true         # DLE DC4 drawer pulse, which works while paper is out
    drawer_open_level = "high"    # DLE EOT 1 bit 2 level that means "drawer open"
    code_pages = ["PC858", "WPC1252", "PC437"]   # preference order
    [code_page_numbers]           # only where the model's ESC t numbers differ from TM-T88
    "ISO8859-15" = 44
    [usb]
    vendor = "04b8"
    product = "0202"

Unknown keys and bad values are refused with the file and the key named. Column
counts come from the model (escpos-printer-db for the listed models); code pages are
numbered as Epson's TM-T88 unless ``code_page_numbers`` says otherwise.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from drivers.printers.codepages import CODECS, KNOWN_PAGES, Numbering, TextEncoder

PROFILE_DIR = Path(__file__).resolve().parents[2] / "firmware_configs" / "printers"
DEFAULT_PROFILE = "epson-tm-t88v"
CUTTERS = ("full", "partial", "none")
LEVELS = ("high", "low")

_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "paper_mm": (int, float),
    "dots": int,
    "dpi": int,
    "columns": int,
    "columns_font_b": int,
    "cutter": str,
    "graphics": bool,
    "barcodes": bool,
    "qr": bool,
    "status": bool,
    "realtime_pulse": bool,
    "drawer_open_level": str,
    "code_pages": list,
    "code_page_numbers": dict,
    "usb": dict,
}
_REQUIRED = ("paper_mm", "dots", "columns", "code_pages")


class ProfileError(ValueError):
    """A printer profile that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class PrinterProfile:
    key: str  # file stem, what the config and `hil render --profile` name
    name: str
    paper_mm: float
    dots: int
    columns: int
    columns_font_b: int
    dpi: int = 180
    cutter: str = "partial"
    graphics: bool = True
    barcodes: bool = True
    qr: bool = True
    status: bool = True
    realtime_pulse: bool = True
    drawer_open_level: str = "high"
    code_pages: tuple[str, ...] = ("PC437",)
    code_page_numbers: dict[str, int] = field(default_factory=dict)
    usb_id: tuple[int, int] | None = None

    @property
    def numbering(self) -> Numbering:
        return Numbering(self.code_page_numbers)

    def encoder(self) -> TextEncoder:
        return TextEncoder(self.code_pages, self.numbering)

    def with_columns(self, columns: int) -> PrinterProfile:
        """The same printer laid out for ``columns`` characters (``hil render --width``)."""
        from dataclasses import replace

        ratio = self.columns_font_b / self.columns
        return replace(self, columns=columns, columns_font_b=max(1, round(columns * ratio)))


def _hex_id(file: Path, key: str, value: Any) -> int:
    try:
        number = int(str(value), 16)
    except ValueError:
        raise ProfileError(f"{file}: usb.{key}: must be 4 hex digits, got {value!r}") from None
    if not 0 <= number <= 0xFFFF:
        raise ProfileError(f"{file}: usb.{key}: must be 4 hex digits, got {value!r}")
    return number


def parse_profile(data: dict[str, Any], file: Path) -> PrinterProfile:
    for key, value in data.items():
        kind = _KEYS.get(key)
        if kind is None:
            raise ProfileError(f"{file}: {key}: unknown key (allowed: {', '.join(_KEYS)})")
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise ProfileError(f"{file}: {key}: wrong type {type(value).__name__}")
    for key in _REQUIRED:
        if key not in data:
            raise ProfileError(f"{file}: {key}: is required")
    if not 100 <= data["dots"] <= 4096:
        raise ProfileError(f"{file}: dots: must be 100-4096, got {data['dots']}")
    for key in ("columns", "columns_font_b"):
        if key in data and not 8 <= data[key] <= 200:
            raise ProfileError(f"{file}: {key}: must be 8-200, got {data[key]}")
    if data.get("cutter", "partial") not in CUTTERS:
        raise ProfileError(f"{file}: cutter: must be one of {', '.join(CUTTERS)}")
    if data.get("drawer_open_level", "high") not in LEVELS:
        raise ProfileError(f"{file}: drawer_open_level: must be high or low")
    pages = data["code_pages"]
    if not pages:
        raise ProfileError(f"{file}: code_pages: list at least one code page")
    for page in pages:
        if page not in CODECS:
            known = ", ".join(sorted(CODECS))
            raise ProfileError(f"{file}: code_pages: {page!r} is not a code page ({known})")
    numbers = data.get("code_page_numbers", {})
    for page, number in numbers.items():
        if page not in KNOWN_PAGES:
            raise ProfileError(f"{file}: code_page_numbers: {page!r} is not a code page")
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 255:
            raise ProfileError(f"{file}: code_page_numbers.{page}: must be 0-255")
    usb = data.get("usb", {})
    usb_id = None
    if usb:
        if set(usb) != {"vendor", "product"}:
            raise ProfileError(f"{file}: usb: give exactly vendor and product")
        usb_id = (_hex_id(file, "vendor", usb["vendor"]), _hex_id(file, "product", usb["product"]))
    columns = data["columns"]
    return PrinterProfile(
        key=file.stem,
        name=data.get("name", file.stem),
        paper_mm=float(data["paper_mm"]),
        dots=data["dots"],
        columns=columns,
        columns_font_b=data.get("columns_font_b", round(columns * 4 / 3)),
        dpi=data.get("dpi", 180),
        cutter=data.get("cutter", "partial"),
        graphics=data.get("graphics", True),
        barcodes=data.get("barcodes", True),
        qr=data.get("qr", True),
        status=data.get("status", True),
        realtime_pulse=data.get("realtime_pulse", True),
        drawer_open_level=data.get("drawer_open_level", "high"),
        code_pages=tuple(pages),
        code_page_numbers=dict(numbers),
        usb_id=usb_id,
    )


def profile_path(name: str | Path) -> Path:
    file = Path(name)
    if file.suffix == ".toml" and file.exists():
        return file
    return PROFILE_DIR / f"{file.stem}.toml"


@cache
def load_profile(name: str | Path = DEFAULT_PROFILE) -> PrinterProfile:
    """A profile by name (file in firmware_configs/printers) or by path."""
    file = profile_path(name)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        names = ", ".join(available_profiles())
        raise ProfileError(f"{file}: no such printer profile (available: {names})") from None
    except OSError as exc:
        raise ProfileError(f"{file}: cannot read printer profile: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{file}: not valid TOML: {exc}") from None
    return parse_profile(data, file)


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))

"""Register configuration: one TOML file, validated before anything starts.

The path comes from ``--config`` or ``APPLIANCE_CONFIG``; with neither, the defaults
below give a working register (SQLite under ./data, demo catalog, HTTP on
127.0.0.1:8080). A wrong key or value stops the start with a message that names the
file, the key and what is allowed — a register that starts with a typo in its tax
rate would be worse than one that does not start.
"""

from __future__ import annotations

import os
import re
import tomllib
import warnings
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from appliance.errors import ConfigError
from appliance.money import PPM

ENV_CONFIG = "APPLIANCE_CONFIG"
REGISTER_ID_RE = r"^[A-Za-z0-9]{1,16}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterSection(_Section):
    id: str = Field(default="R1", pattern=REGISTER_ID_RE)
    name: str = "Register 1"
    data_dir: str = "data"
    # When a change is fsynced before the API answers. every_change: every op (an
    # acknowledged scan survives a power cut). completed: only what must never be lost
    # (completion, tenders, park, shifts, payments, everything but cart edits of an open
    # sale); a cart edit survives kill -9 at once and a power cut from the next fsync.
    durability: Literal["every_change", "completed"] = "every_change"


class StoreSection(_Section):
    id: str = Field(default="store1", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: str = "Demo Shop"
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    currency_decimals: int = Field(default=2, ge=0, le=3)
    # Cash is rounded to this many minor units when the currency has no small coins
    # (5 for CHF/DKK 0.05); 1 means no cash rounding.
    cash_rounding: int = Field(default=1, ge=1, le=100)
    receipt_header: list[str] = Field(default_factory=lambda: ["Demo Shop"])
    receipt_footer: list[str] = Field(default_factory=lambda: ["Thank you!"])


class TaxSection(_Section):
    # inclusive: shelf prices include tax (VAT); exclusive: tax is added (sales tax).
    mode: Literal["inclusive", "exclusive"] = "inclusive"
    # per_line: tax is rounded on each line and summed; per_total: computed once per
    # rate on the rate's total. Both documented in ARCHITECTURE.md.
    rounding: Literal["per_line", "per_total"] = "per_total"
    # category -> percent, e.g. {standard = "19", reduced = "7", zero = "0"}
    rates: dict[str, Decimal] = Field(
        default_factory=lambda: {
            "standard": Decimal("19"),
            "reduced": Decimal("7"),
            "zero": Decimal("0"),
        }
    )

    @field_validator("rates", mode="before")
    @classmethod
    def _rates(cls, value: Any) -> Any:
        if not isinstance(value, dict) or not value:
            raise ValueError("must be a table of category = percent, with at least one entry")
        out = {}
        for key, raw in value.items():
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(key)):
                raise ValueError(f"category name {key!r} must be 1-32 of a-z 0-9 _")
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                raise ValueError(f"rate for {key!r} must be a percent number like 19 or '8.875'")
            try:
                rate = Decimal(str(raw))
            except InvalidOperation:
                raise ValueError(f"rate for {key!r} is not a number: {raw!r}") from None
            if not (Decimal(0) <= rate <= Decimal(100)):
                raise ValueError(f"rate for {key!r} must be between 0 and 100 percent")
            if (rate * 10_000) != (rate * 10_000).to_integral_value():
                raise ValueError(f"rate for {key!r} has more than 4 decimal places")
            out[str(key)] = rate
        return out

    def rate_ppm(self, category: str) -> int:
        return int(self.rates[category] * PPM / 100)


class HttpSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class DemoSection(_Section):
    # Load the shipped demo catalog on first start when the catalog is empty.
    catalog: bool = True


class BarcodeSection(_Section):
    customer_prefix: str = Field(default="CUST", min_length=1, max_length=8)
    receipt_prefix: str = Field(default="RCPT", min_length=1, max_length=8)
    # The shop's scale labels, one layout per EAN-13 prefix (20-29; "02" for UPC-A):
    # "PREFIX:ITEM_DIGITS:price|weight[:PRICE_CHECK]"; [] turns scale labels off.
    scale_labels: list[str] = Field(default_factory=lambda: ["21:5:weight:0", "23:5:price:0"])
    # Characters a keyboard-wedge scanner is set to send for FNC1 besides GS (e.g. "|").
    gs_substitutes: str = Field(default="", max_length=4)

    @field_validator("scale_labels")
    @classmethod
    def _scale_labels(cls, specs: list[str]) -> list[str]:
        from appliance.barcodes.variable_measure import VariableMeasureLayout

        prefixes = [VariableMeasureLayout.from_spec(spec).prefix for spec in specs]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError("two layouts for one prefix")
        return specs

    @field_validator("gs_substitutes")
    @classmethod
    def _gs_substitutes(cls, chars: str) -> str:
        from appliance.barcodes.gs1_ais import CSET_82

        if any(ch in CSET_82 for ch in chars):
            raise ValueError("a GS1 data character cannot stand for FNC1")
        return chars


class ScannersSection(_Section):
    # Scanner profiles (file names in firmware_configs/scanners, or paths) to run;
    # each scanner is named after its profile. Empty: scans come from the sell
    # screen and the API only (the simulated default).
    profiles: list[str] = Field(default_factory=list)
    # Keyboard layout per scanner id, over the profile's `keyboard.layout` (wedges only).
    layouts: dict[str, str] = Field(default_factory=dict)

    @field_validator("layouts")
    @classmethod
    def _layouts(cls, layouts: dict[str, str]) -> dict[str, str]:
        from drivers.scanners.keymaps import LAYOUTS

        for scanner, layout in layouts.items():
            if layout not in LAYOUTS:
                raise ValueError(
                    f"{scanner}: {layout!r} is not a keyboard layout (use one of "
                    f"{', '.join(LAYOUTS)})"
                )
        return layouts


EntryMode = Literal["chip", "contactless"]


def _default_entry_modes() -> list[EntryMode]:
    return ["chip", "contactless"]


class OfflineCardSection(_Section):
    """Offline card acceptance (store-and-forward), decided by the shop in advance.

    Offline means the terminal reports its host link down, or the register as a whole
    is offline (``appliance.sync.link``). Defaults follow the payment products
    in the field notes: 100.00 per payment (PayAnywhere's cap), 500 stored payments
    (Moneris Go's record limit), forwarded within 24 h (Square's and Toast's window;
    Square's hard stop is 72 h), chip and contactless only (Stripe, Adyen: no swipe or
    keyed). No product names a total, so the stored total defaults to ten per-payment
    maxima. Manager override of the per-payment maximum is off unless the shop
    switches it on (Toast asks for one); ``manager_pin``, when set, must be given with
    the override. Switching ``enabled`` on takes effect for the next outage, never for
    the one under way (the register remembers when it was switched on).
    """

    enabled: bool = False
    max_amount: int = Field(default=10_000, ge=1, le=10**9)
    max_total: int = Field(default=100_000, ge=1, le=10**11)
    max_count: int = Field(default=500, ge=1, le=100_000)
    max_age_hours: float = Field(default=24.0, gt=0, le=168)
    entry_modes: list[EntryMode] = Field(default_factory=_default_entry_modes, min_length=1)
    manager_override: bool = False
    manager_pin: str = Field(default="", pattern=r"^$|^\d{4,8}$")


class PaymentsSection(_Section):
    """The card terminal (ZVT) and offline card acceptance.

    terminal: "simulated" (the ZVT terminal simulator, in-process on loopback; the
    default, so the quick start takes card payments), "tcp:HOST:PORT" (ZVT over TCP,
    usually port 20007), "serial:/dev/ttyUSB0" (DLE/STX framing at ``baudrate``), or ""
    for no terminal (card payments refused).
    """

    terminal: str = Field(
        default="simulated", pattern=r"^$|^simulated$|^tcp:[^:]+:\d{1,5}$|^serial:/.+$"
    )
    baudrate: Literal[9600, 19200, 38400, 57600, 115200] = 9600
    password: str = Field(default="000000", pattern=r"^\d{6}$")
    currency: int = Field(default=978, ge=1, le=999, description="ISO 4217 numeric")
    encoding: Literal["cp437", "iso-8859-1", "iso-8859-15"] = "cp437"
    # ZVT timeouts: T3 (acknowledge) and T4 (terminal is master: card, PIN, host).
    t3_seconds: float = Field(default=5.0, gt=0, le=60)
    t4_seconds: float = Field(default=180.0, gt=0, le=600)
    # How old the last word about the terminal's host link may be before a payment
    # asks again (status enquiry; 0 = always ask), and how often the terminal is
    # polled while its host link is down, payments wait to be forwarded or an
    # interrupted payment waits to be resolved.
    link_check_seconds: float = Field(default=60.0, ge=0, le=3600)
    poll_seconds: float = Field(default=10.0, gt=0, le=3600)
    offline: OfflineCardSection = Field(default_factory=OfflineCardSection)


class PrinterSection(_Section):
    """The receipt printer and cash drawer (issue 4).

    connection: "simulated" (the virtual printer in-process; jobs kept under
    data_dir/printer), "tcp:HOST[:PORT]" (network printer, port 9100),
    "serial:/dev/ttyS0", "usb" / "usb:VVVV:PPPP" (pyusb; default id from the
    profile), or "none" (no printer: no receipts are queued).
    profile: a file in firmware_configs/printers (without .toml) or a path.
    """

    connection: str = Field(
        default="simulated",
        pattern=r"^(simulated|none|tcp:[^:\s]+(:\d{1,5})?|serial:/\S+"
        r"|usb(:[0-9a-fA-F]{4}:[0-9a-fA-F]{4})?)$",
    )
    profile: str = "epson-tm-t88v"
    baudrate: Literal[9600, 19200, 38400, 57600, 115200] = 38400
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)  # connect and write
    status_timeout_seconds: float = Field(default=0.5, gt=0, le=10)  # one DLE EOT answer
    poll_seconds: float = Field(default=2.0, gt=0, le=60)
    max_attempts: int = Field(default=5, ge=1, le=1000)  # broken transmissions before "failed"
    drawer_pin: Literal[2, 5] = 2
    drawer_on_cash: bool = True  # kick the drawer when a sale with cash completes
    print_z_on_close: bool = True  # queue the Z report when a shift closes
    logo: str = ""  # image file printed at the top (relative to the config file)
    qr: str = Field(default="", max_length=300)  # e.g. "https://shop.example/r/{receipt_no}"

    @field_validator("profile")
    @classmethod
    def _profile(cls, value: str) -> str:
        from drivers.printers.profiles import ProfileError, load_profile

        try:
            load_profile(value)
        except ProfileError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("qr")
    @classmethod
    def _qr(cls, value: str) -> str:
        try:
            value.format(receipt_no="R1-1", sale_id="x", total="1.00", register_id="R1")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"QR template {value!r}: {exc}; use {{receipt_no}} {{sale_id}} {{total}} "
                "{{register_id}}"
            ) from None
        return value


class SyncSection(_Section):
    """Sync with the back office: outbox, offline mode (issue 6).

    The back office's address and the register's token come from pairing
    (``appliance sync pair URL CODE``) and are kept in the register's database.
    """

    enabled: bool = True
    batch_size: int = Field(default=200, ge=1, le=1000)
    # Offline: probe from a few seconds up to two minutes (with jitter); at once on a
    # network change or "retry now".
    probe_min_seconds: float = Field(default=3.0, gt=0, le=60)
    probe_max_seconds: float = Field(default=120.0, gt=0, le=3600)
    # The back office answered 5xx/408/429: retry the batch with backoff.
    retry_min_seconds: float = Field(default=1.0, gt=0, le=60)
    retry_max_seconds: float = Field(default=60.0, gt=0, le=3600)
    long_poll_seconds: float = Field(default=20.0, ge=0, le=25)
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # An open sale untouched this long does not hold back-office updates back.
    idle_sale_minutes: float = Field(default=30.0, gt=0, le=24 * 60)
    watch_network: bool = True


class LanSection(_Section):
    """Serverless sync of saved sales with the store's other registers (issue 7).

    Off until the store's credentials are given: ``secret`` (the store secret every
    register of the store is paired with; ``appliance lan new-secret`` makes one) or
    ``secret_file`` (a file holding it, e.g. a key the back office issued; more lines
    are older keys still accepted while the store rotates). Registers find each other
    by DNS-SD over multicast DNS; ``peers`` ("host:port") is for networks that block
    multicast.
    """

    enabled: bool = False
    secret: str = Field(default="", repr=False)
    secret_file: str = ""
    # The sync port (TCP); every peer message on it is authenticated and encrypted.
    bind: str = "0.0.0.0"
    port: int = Field(default=8470, ge=0, le=65535)
    discovery: bool = True
    # Addresses whose interfaces multicast DNS uses; empty: every interface.
    interfaces: list[str] = Field(default_factory=list)
    peers: list[str] = Field(default_factory=list)
    # A peer silent this long is disconnected (heartbeats go every heartbeat_seconds).
    heartbeat_seconds: float = Field(default=1.0, gt=0, le=60)
    peer_timeout_seconds: float = Field(default=4.0, gt=0, le=600)
    # A checkout lease runs this long and is renewed while the register is alive.
    lease_seconds: float = Field(default=30.0, ge=1, le=3600)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str) -> str:
        if value and len(value) < 16:
            raise ValueError("must be at least 16 characters (appliance lan new-secret makes one)")
        return value

    @field_validator("peers")
    @classmethod
    def _peers(cls, value: list[str]) -> list[str]:
        for peer in value:
            host, _, port = peer.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"peer {peer!r} must be host:port")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> LanSection:
        if self.enabled and not (self.secret or self.secret_file):
            raise ValueError("enabled needs the store's credentials: secret or secret_file")
        return self


def _default_quick_keys() -> list[str]:
    return ["CROISSANT", "BREAD", "BAG", "BANANAS", "APPLES", "CARD-XMAS"]


class WebSection(_Section):
    """The sell screen, the admin panel and their authentication (issue 8).

    The admin panel (and every manager-only route) answers browser sessions from this
    machine only unless ``admin_from_lan`` is on (then also set ``http.host``). Accounts
    are locked for ``lockout_minutes`` after ``lockout_failures`` wrong passwords/PINs.
    """

    admin_from_lan: bool = False
    session_idle_minutes: int = Field(default=480, ge=1, le=7 * 24 * 60)
    session_max_hours: int = Field(default=24, ge=1, le=24 * 30)
    lockout_failures: int = Field(default=5, ge=1, le=100)
    lockout_minutes: float = Field(default=5.0, gt=0, le=24 * 60)
    # How long a supervisor's approval (price override, discount, void, refund) lasts.
    approval_seconds: int = Field(default=60, ge=5, le=3600)
    # SKUs on the sell screen's quick keys, in order.
    quick_keys: list[str] = Field(default_factory=_default_quick_keys, max_length=48)


with warnings.catch_warnings():
    # `register` is the natural TOML table name; it shadows ABCMeta.register, unused here.
    warnings.filterwarnings("ignore", message='Field name "register"')

    class Config(_Section):
        register: RegisterSection = Field(default_factory=RegisterSection)
        store: StoreSection = Field(default_factory=StoreSection)
        tax: TaxSection = Field(default_factory=TaxSection)
        http: HttpSection = Field(default_factory=HttpSection)
        demo: DemoSection = Field(default_factory=DemoSection)
        barcodes: BarcodeSection = Field(default_factory=BarcodeSection)
        scanners: ScannersSection = Field(default_factory=ScannersSection)
        printer: PrinterSection = Field(default_factory=PrinterSection)
        payments: PaymentsSection = Field(default_factory=PaymentsSection)
        sync: SyncSection = Field(default_factory=SyncSection)
        lan: LanSection = Field(default_factory=LanSection)
        web: WebSection = Field(default_factory=WebSection)

        # Where the file came from, for relative paths and messages; not a TOML key.
        source: str = Field(default="<defaults>", exclude=True)

        @property
        def data_dir(self) -> Path:
            path = Path(self.register.data_dir)
            if not path.is_absolute() and self.source not in ("<defaults>", "<dict>"):
                path = Path(self.source).parent / path
            return path

        @property
        def db_path(self) -> Path:
            return self.data_dir / "register.db"


def _describe_allowed(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """List the keys allowed at the table that holds ``loc`` (for unknown-key errors)."""
    current: Any = model
    for part in loc[:-1]:
        field = current.model_fields.get(str(part)) if hasattr(current, "model_fields") else None
        if field is None or not (
            isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        ):
            return ""
        current = field.annotation
    names = [n for n in current.model_fields if n != "source"]
    return ", ".join(names)


def _format_errors(source: str, exc: PydanticValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = _describe_allowed(Config, loc)
            lines.append(f"{source}: {key}: unknown key (allowed here: {allowed})")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{source}: {key}: {msg} (got {err.get('input')!r})")
    return "\n".join(lines)


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> Config:
    try:
        return Config.model_validate({**data, "source": source})
    except PydanticValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate the config file (flag, then env var, then defaults)."""
    if path is None:
        path = os.environ.get(ENV_CONFIG) or None
    if path is None:
        return Config()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config file: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    if "source" in data:
        raise ConfigError(f"{file}: source: unknown key")
    return config_from_dict(data, source=str(file))

"""Build the appliance image: Debian's kernel, read-only system layers, an initramfs.

The image is three files plus the kernel:

- ``base.squashfs``: Debian bookworm (debootstrap minbase + ``packages.txt``), the
  kernel's modules, the image's system files (``firmware_configs/image/rootfs``);
- ``app.squashfs``: what the appliance adds on top — its venv (wheels built on the
  host), units, udev rules, users, enabled services. Built as the upper layer of an
  overlay on the base tree, so it holds only the difference;
- ``initrd.img``: busybox and the storage modules; its ``/init`` stacks the layers
  under a RAM overlay (``firmware_configs/image/initramfs-init``) and starts systemd.

Nothing of the system is written at run time; the register's database lives on a
separate data partition (label ``appliance-data``, see ``make_data_disk``). Both
layers are cached under ``~/.cache/register-appliance/image`` (or
``$APPLIANCE_IMAGE_CACHE``), keyed by a hash of their inputs: a change to the package
list or the image files rebuilds the base, a change to the project's code rebuilds
only the app layer. Every step prints what it does and how long it took.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMAGE_DIR = REPO / "firmware_configs" / "image"
SUITE = "bookworm"
APP_PREFIX = "/opt/register-appliance"
DATA_LABEL = "appliance-data"
# Bumped when the build steps change in a way the hashed inputs do not show.
BUILD_VERSION = "1"
# Project files that go into the app layer; a change to any rebuilds it.
APP_SOURCES = ("pyproject.toml", "README.md", "appliance", "drivers", "hil", "firmware_configs",
               "systemd")  # fmt: skip
ENABLED_UNITS = ("appliance-register.service",
                 "systemd-networkd.service")  # fmt: skip
# Units a read-only register has no use for, or that would wait for a person at boot.
MASKED_UNITS = ("systemd-firstboot.service", "apt-daily.timer", "apt-daily-upgrade.timer",
                "e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer",
                "systemd-machine-id-commit.service", "dpkg-db-backup.timer",
                # state kept on the RAM layer would be thrown away at power-off anyway
                "systemd-random-seed.service", "systemd-update-utmp.service",
                "systemd-update-utmp-runlevel.service", "systemd-pstore.service",
                # kernel facilities a register does not use
                "modprobe@dm_mod.service", "modprobe@efi_pstore.service",
                "modprobe@fuse.service", "modprobe@loop.service", "modprobe@drm.service",
                "sys-kernel-debug.mount", "sys-kernel-tracing.mount", "dev-hugepages.mount",
                "sys-fs-fuse-connections.mount", "systemd-network-generator.service",
                "systemd-binfmt.service", "proc-sys-fs-binfmt_misc.automount")  # fmt: skip

BUILD_TOOLS = ("debootstrap", "mksquashfs", "depmod", "modprobe", "cpio", "zstd", "systemctl",
               "systemd-sysusers", "mkfs.ext4", "chroot", "apt-get", "dpkg-deb")  # fmt: skip

Progress = Callable[[str], None]


class ImageError(RuntimeError):
    pass


def default_cache() -> Path:
    env = os.environ.get("APPLIANCE_IMAGE_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "register-appliance" / "image"


@dataclass(frozen=True)
class Image:
    """A built image: what QEMU (or a disk writer) needs."""

    kernel: Path
    initrd: Path
    layers: tuple[Path, ...]  # top first: app, base
    kernel_version: str
    base_key: str
    app_key: str
    built_s: float  # seconds this call took (hashing the inputs, building what was missing)
    built: tuple[str, ...] = ()  # the layers this call built: "base", "app"

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.kernel, self.initrd, *self.layers))


def _log_to(progress: Progress | None) -> Progress:
    def default(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    return progress or default


class _Steps:
    """Numbered steps with elapsed times: ``image: [base 2/6] debootstrap … 48.1 s``."""

    def __init__(self, layer: str, total: int, progress: Progress) -> None:
        self.layer, self.total, self.progress = layer, total, progress
        self.n = 0
        self.started = time.monotonic()

    @contextlib.contextmanager
    def step(self, what: str) -> Iterator[None]:
        self.n += 1
        t0 = time.monotonic()
        self.progress(f"image: [{self.layer} {self.n}/{self.total}] {what} …")
        yield
        self.progress(f"image: [{self.layer} {self.n}/{self.total}] {what}: "
                      f"{time.monotonic() - t0:.1f} s")  # fmt: skip

    def done(self, what: str) -> None:
        self.progress(
            f"image: {self.layer} layer {what} in {time.monotonic() - self.started:.1f} s"
        )


@contextlib.contextmanager
def _building(out: Path, steps: _Steps, product: str) -> Iterator[Path]:
    """A layer is built in a scratch folder that becomes ``out`` only when complete."""
    work = Path(tempfile.mkdtemp(prefix=f"{steps.layer}-", dir=out.parent))
    try:
        yield work
    except BaseException:
        steps.progress(f"image: {steps.layer} layer build failed; log kept in {work}/build.log")
        raise
    shutil.rmtree(out, ignore_errors=True)
    work.rename(out)
    steps.done(f"built ({(out / product).stat().st_size / 2**20:.0f} MiB)")


def _run(cmd: list[str], log: Path | None = None, **kwargs: object) -> None:
    """Run a build command; on failure the error names it and shows its last output."""
    if log is None:
        result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
        output = (result.stdout or "") + (result.stderr or "")
    else:
        with open(log, "a") as out:
            result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, **kwargs)  # type: ignore[call-overload]
        output = log.read_text(errors="replace")
    if result.returncode != 0:
        tail = "\n".join(output.splitlines()[-25:])
        raise ImageError(f"{' '.join(cmd[:4])} … failed ({result.returncode}):\n{tail}")


def _read_list(path: Path) -> list[str]:
    items = []
    for line in path.read_text().splitlines():
        item = line.split("#", 1)[0].strip()
        if item:
            items.append(item)
    return items


def _hash_paths(h: hashlib._Hash, paths: list[Path], root: Path) -> None:
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            h.update(str(file.relative_to(root)).encode() + b"\0")
            h.update(file.read_bytes() + b"\0")


def debian_mirror() -> str:
    """The Debian mirror apt already uses here (deb822 or one-line sources)."""
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for file in sources:
        text = file.read_text()
        if re.search(rf"^Suites:.*\b{SUITE}\b", text, re.M):
            match = re.search(r"^URIs:\s*(\S+)", text, re.M)
            if match and "security" not in match.group(1):
                return match.group(1)
    for file in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.list")]:
        if file.exists():
            for line in file.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "deb" and parts[2] == SUITE:
                    return parts[1] if not parts[1].startswith("[") else parts[2]
    return "http://deb.debian.org/debian"


def kernel_package() -> str:
    """The concrete kernel package behind linux-image-amd64 (e.g. linux-image-6.1.0-56-amd64)."""
    out = subprocess.run(["apt-cache", "depends", "linux-image-amd64"],
                         capture_output=True, text=True)  # fmt: skip
    match = re.search(r"Depends:\s*(linux-image-[0-9][\w.-]*-amd64)", out.stdout)
    if not match:
        raise ImageError(
            "cannot resolve linux-image-amd64 (run `apt-get update`?): " + out.stderr.strip()
        )
    return match.group(1)


def base_key(kiosk: bool, kernel_pkg: str) -> str:
    h = hashlib.sha256(f"{BUILD_VERSION}|{SUITE}|{kernel_pkg}|kiosk={kiosk}".encode())
    inputs = [IMAGE_DIR / "packages.txt", IMAGE_DIR / "initramfs-init",
              IMAGE_DIR / "initramfs-modules.txt", IMAGE_DIR / "initramfs-modules-hardware.txt",
              IMAGE_DIR / "rootfs",
              Path(__file__)]  # fmt: skip
    if kiosk:
        inputs.append(IMAGE_DIR / "kiosk-packages.txt")
    _hash_paths(h, inputs, REPO)
    return h.hexdigest()[:16]


def app_key(base: str) -> str:
    h = hashlib.sha256(base.encode())
    _hash_paths(h, [REPO / name for name in APP_SOURCES], REPO)
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """One build at a time per cache (two test runs must not build into each other)."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_image(cache: Path | None = None, kiosk: bool = False,
                 progress: Progress | None = None) -> Image:  # fmt: skip
    """The image for the current checkout: from the cache, or built now (and cached)."""
    say = _log_to(progress)
    cache = cache or default_cache()
    if os.geteuid() != 0:
        raise ImageError("building the image needs root (debootstrap, chroot, mounts)")
    missing = [t for t in BUILD_TOOLS if shutil.which(t) is None]
    if missing or not Path("/bin/busybox").exists():
        raise ImageError(
            f"missing {', '.join(missing) or 'busybox-static'}: run ./bootstrap.sh setup"
        )
    started = time.monotonic()
    with _locked(cache):
        kpkg = kernel_package()
        bkey = base_key(kiosk, kpkg)
        kind = "kiosk-" if kiosk else ""  # kiosk layers are kept apart from the plain ones
        base = cache / f"{kind}base-{bkey}"
        built: list[str] = []
        if not (base / "done.json").exists():
            _build_base(base, kpkg, kiosk, say)
            built.append("base")
        akey = app_key(bkey)
        app = cache / f"{kind}app-{akey}"
        if not (app / "done.json").exists():
            _build_app(app, base, say)
            built.append("app")
        _prune(cache, keep={base.name, app.name})
        info = json.loads((base / "done.json").read_text())
    image = Image(
        kernel=base / "vmlinuz",
        initrd=base / "initrd.img",
        layers=(app / "app.squashfs", base / "base.squashfs"),
        kernel_version=info["kernel_version"],
        base_key=bkey,
        app_key=akey,
        built_s=round(time.monotonic() - started, 1),
        built=tuple(built),
    )
    return image


def _prune(cache: Path, keep: set[str], spare: int = 1) -> None:
    """Drop old layers, keeping the ones in use and the newest ``spare`` others of each kind."""
    for kind in ("base-", "app-", "kiosk-base-", "kiosk-app-"):
        old = sorted((p for p in cache.glob(f"{kind}*") if p.name not in keep),
                     key=lambda p: p.stat().st_mtime, reverse=True)  # fmt: skip
        for path in old[spare:]:
            shutil.rmtree(path, ignore_errors=True)


# base layer ------------------------------------------------------------------------
def _build_base(out: Path, kpkg: str, kiosk: bool, say: Progress) -> None:
    steps = _Steps("base", 7 if kiosk else 6, say)
    with _building(out, steps, "base.squashfs") as work:
        log = work / "build.log"
        tree = work / "tree"
        with steps.step(f"kernel {kpkg} (apt-get download)"):
            _run(["apt-get", "download", kpkg], cwd=work, log=log)
            deb = next(work.glob(f"{kpkg}_*.deb"))
            kroot = work / "kernel"
            _run(["dpkg-deb", "-x", str(deb), str(kroot)], log=log)
            deb.unlink()
            version = kpkg.removeprefix("linux-image-")
        packages = _read_list(IMAGE_DIR / "packages.txt")
        mirror = debian_mirror()
        with steps.step(f"debootstrap {SUITE} minbase + {len(packages)} packages from {mirror}"):
            _run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
                  SUITE, str(tree), mirror], log=log)  # fmt: skip
        if kiosk:  # apt resolves what debootstrap's --include cannot (dependency loops)
            extra = _read_list(IMAGE_DIR / "kiosk-packages.txt")
            with steps.step(f"kiosk: apt-get install {' '.join(extra)}"):
                _apt_install(tree, extra, log)
                packages += extra
        with steps.step("system files, kernel modules, masked units"):
            shutil.copytree(IMAGE_DIR / "rootfs", tree, dirs_exist_ok=True, symlinks=True)
            modules = tree / "usr/lib/modules" / version
            shutil.copytree(kroot / "lib/modules" / version, modules, symlinks=True)
            _run(["depmod", "-b", str(tree), version], log=log)
            shutil.copy2(kroot / "boot" / f"vmlinuz-{version}", work / "vmlinuz")
            (tree / "etc/machine-id").write_text("")  # a fresh id per boot, never written
            _run(["systemctl", f"--root={tree}", "mask", *MASKED_UNITS], log=log)
            _run(["systemctl", f"--root={tree}", "enable", "systemd-networkd.service"], log=log)
            _slim(tree)
        with steps.step("initramfs (busybox, storage modules, /init)"):
            _initramfs(kroot, version, work / "initrd.img", work)
            shutil.rmtree(kroot)
        with steps.step("base.squashfs (zstd)"):
            _squash(tree, work / "base.squashfs", log)
        with steps.step("record"):
            done = {"kernel_version": version, "kernel_package": kpkg, "mirror": mirror,
                    "packages": packages, "built": time.strftime("%Y-%m-%dT%H:%M:%S")}  # fmt: skip
            (work / "done.json").write_text(json.dumps(done, indent=1))


def _apt_install(tree: Path, packages: list[str], log: Path) -> None:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
           "LANG": "C.UTF-8"}  # fmt: skip
    with _chroot_mounts(tree):
        _run(["chroot", str(tree), "apt-get", "update", "-qq"], log=log, env=env)
        _run(["chroot", str(tree), "apt-get", "install", "-y", "-qq", "--no-install-recommends",
              *packages], log=log, env=env)  # fmt: skip


def _slim(tree: Path) -> None:
    """Drop what a register never reads: package caches, docs, man pages, locales."""
    for rel in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc",
                "usr/share/man", "usr/share/info"):  # fmt: skip
        path = tree / rel
        if path.is_dir():
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                elif child.name != "lock":
                    child.unlink()
    locales = tree / "usr/share/locale"
    if locales.is_dir():
        for child in locales.iterdir():
            if child.is_dir() and not child.name.startswith(("en", "de", "fr")):
                shutil.rmtree(child)


def _initramfs(kroot: Path, version: str, out: Path, work: Path) -> None:
    root = work / "initramfs"
    for sub in ("bin", "dev", "proc", "sys", "run", "newroot", "modules"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/busybox", root / "bin/busybox")
    shutil.copy2(IMAGE_DIR / "initramfs-init", root / "init")
    os.chmod(root / "init", 0o755)
    _run(["depmod", "-b", str(kroot), version])
    seen: set[str] = set()  # each module in the first list that needs it, dependencies first
    for listing, target in (("initramfs-modules.txt", "load"),
                            ("initramfs-modules-hardware.txt", "load-hardware")):  # fmt: skip
        names: list[str] = []
        for module in _read_list(IMAGE_DIR / listing):
            for path in _show_depends(kroot, version, module):
                if path.name not in seen:
                    seen.add(path.name)
                    names.append(path.name)
                    shutil.copy2(path, root / "modules" / path.name)
        (root / "modules" / target).write_text("\n".join(names) + "\n")
    _cpio(root, out)
    shutil.rmtree(root)


def _show_depends(kroot: Path, version: str, module: str) -> list[Path]:
    out = subprocess.run(["modprobe", "-d", str(kroot), "-S", version, "--show-depends", module],
                         capture_output=True, text=True)  # fmt: skip
    if out.returncode != 0:
        raise ImageError(f"initramfs module {module}: {out.stderr.strip()}")
    return [Path(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("insmod")]


def _cpio(root: Path, out: Path) -> None:
    """A zstd-compressed newc cpio of ``root`` (what the kernel unpacks as initramfs)."""
    files = subprocess.run(["find", ".", "-mindepth", "1"], cwd=root, capture_output=True,
                           check=True).stdout  # fmt: skip
    cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"], cwd=root,
                          input=files, capture_output=True, check=True).stdout  # fmt: skip
    packed = subprocess.run(["zstd", "-q", "-9", "-c"], input=cpio, capture_output=True,
                            check=True).stdout  # fmt: skip
    out.write_bytes(packed)


def site_initramfs(files: Path, out: Path) -> Path:
    """An extra initramfs archive whose ``files`` tree goes into the RAM layer at boot.

    Appended to ``initrd.img`` (the kernel unpacks concatenated archives in order), it
    adds site files — the HIL rig's guest tools — without changing the image.
    """
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        shutil.copytree(files, site, symlinks=True)
        _cpio(Path(tmp), out)
    return out


def _squash(tree: Path, out: Path, log: Path) -> None:
    _run(["mksquashfs", str(tree), str(out), "-comp", "zstd", "-Xcompression-level", "6",
          "-noappend", "-no-progress", "-quiet", "-xattrs"], log=log)  # fmt: skip


# app layer -------------------------------------------------------------------------
def _build_app(out: Path, base: Path, say: Progress) -> None:
    steps = _Steps("app", 5, say)
    with _building(out, steps, "app.squashfs") as work:
        log = work / "build.log"
        upper, ovl_work, merged = work / "upper", work / "ovl-work", work / "merged"
        for d in (upper, ovl_work, merged):
            d.mkdir()
        with steps.step("wheels (pip wheel on the host; dependencies cached)"):
            wheels = _wheels(base.parent, work, log)
        layers = f"lowerdir={base / 'tree'},upperdir={upper},workdir={ovl_work}"
        _run(["mount", "-t", "overlay", "overlay", "-o", layers, str(merged)])
        try:
            with steps.step(f"venv in {APP_PREFIX} (pip install from the wheels, in a chroot)"):
                _install_venv(merged, wheels, log)
            with steps.step("units, udev rules, users, enabled services"):
                _install_system_files(merged, log)
        finally:
            _run(["umount", str(merged)])
        with steps.step("app.squashfs (zstd)"):
            shutil.rmtree(ovl_work)
            _squash(upper, work / "app.squashfs", log)
        with steps.step("record"):
            (work / "done.json").write_text(json.dumps({"base": base.name}))
            shutil.rmtree(upper)
            shutil.rmtree(merged)


def _wheels(cache: Path, work: Path, log: Path) -> Path:
    """Wheels of the project's dependencies (cached by pyproject.toml) plus the project."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    # Build from a clean copy of the sources: no .venv, no caches, no build/ left behind.
    src = work / "src"
    src.mkdir()
    for name in APP_SOURCES:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
            shutil.copytree(REPO / name, src / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, src / name)
    deps_key = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:16]
    deps = cache / f"wheels-{deps_key}"
    if not deps.exists():
        tmp = cache / f"wheels-{deps_key}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        _run([*pip, "wheel", "-q", "-w", str(tmp), str(src)], log=log)
        for project in tmp.glob("register_appliance-*.whl"):
            project.unlink()
        tmp.rename(deps)
        for old in cache.glob("wheels-*"):
            if old != deps and not old.name.endswith(".tmp"):
                shutil.rmtree(old, ignore_errors=True)
    wheels = work / "wheels"
    shutil.copytree(deps, wheels)
    _run([*pip, "wheel", "-q", "--no-deps", "-w", str(wheels), str(src)], log=log)
    shutil.rmtree(src)
    return wheels


@contextlib.contextmanager
def _chroot_mounts(root: Path) -> Iterator[None]:
    mounted = []
    try:
        for fstype, target in (("proc", "proc"), ("sysfs", "sys")):
            _run(["mount", "-t", fstype, fstype, str(root / target)])
            mounted.append(root / target)
        _run(["mount", "--bind", "/dev", str(root / "dev")])
        mounted.append(root / "dev")
        yield
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", str(path)], check=False)


def _install_venv(root: Path, wheels: Path, log: Path) -> None:
    inside = Path("/tmp/wheels")
    shutil.copytree(wheels, root / inside.relative_to("/"))
    venv = f"{APP_PREFIX}/venv"
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1"}  # fmt: skip
    with _chroot_mounts(root):
        _run(["chroot", str(root), "python3", "-m", "venv", venv], log=log, env=env)
        _run(["chroot", str(root), f"{venv}/bin/pip", "install", "-q", "--no-index",
              "--find-links", str(inside), "register-appliance"], log=log, env=env)  # fmt: skip
        site = subprocess.run(["chroot", str(root), f"{venv}/bin/python", "-c",
                               "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, env=env, check=True)  # fmt: skip
        purelib = site.stdout.strip()
        # Scanner profiles are looked up next to the drivers package.
        shutil.copytree(REPO / "firmware_configs", root / purelib.lstrip("/") / "firmware_configs",
                        ignore=shutil.ignore_patterns("image", "kiosk"))  # fmt: skip
        # The system is read-only at run time: compile every module now.
        _run(["chroot", str(root), f"{venv}/bin/python", "-m", "compileall", "-q", "-j", "0",
              venv], log=log, env=env)  # fmt: skip
    shutil.rmtree(root / inside.relative_to("/"))
    shutil.copy2(REPO / "README.md", root / APP_PREFIX.lstrip("/") / "README.md")


def _install_system_files(root: Path, log: Path) -> None:
    unit_dir = root / "usr/lib/systemd/system"
    for unit in sorted((REPO / "systemd").glob("*.service")):
        shutil.copy2(unit, unit_dir / unit.name)
    for kind in ("tmpfiles.d", "sysusers.d"):
        target = root / "usr/lib" / kind
        target.mkdir(parents=True, exist_ok=True)
        for conf in sorted((REPO / "systemd" / kind).glob("*.conf")):
            shutil.copy2(conf, target / conf.name)
    rules = root / "usr/lib/udev/rules.d"
    for rule in sorted((REPO / "firmware_configs/udev").glob("*.rules")):
        shutil.copy2(rule, rules / rule.name)
    modprobe = root / "usr/lib/modprobe.d"
    modprobe.mkdir(parents=True, exist_ok=True)
    # usblp stays off USB receipt printers: the register drives them through pyusb.
    for conf in sorted((REPO / "firmware_configs/modprobe").glob("*.conf")):
        shutil.copy2(conf, modprobe / conf.name)
    _run(["systemd-sysusers", f"--root={root}"], log=log)
    _run(["systemctl", f"--root={root}", "enable", *ENABLED_UNITS], log=log)
    if (root / "usr/bin/cage").exists():  # a --kiosk base: the counter screen on tty1
        # chromium's policy and the kiosk's start page (firmware_configs/kiosk): in the
        # app layer, so a change to them rebuilds only that layer
        shutil.copytree(REPO / "firmware_configs/kiosk", root, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("README.md"))  # fmt: skip
        _run(["systemctl", f"--root={root}", "enable", "appliance-kiosk.service",
              "seatd.service"], log=log)  # fmt: skip
        _run(["systemctl", f"--root={root}", "set-default", "graphical.target"], log=log)


# the data partition ----------------------------------------------------------------
def make_data_disk(path: Path, size_mib: int = 256, files: dict[str, str] | None = None) -> Path:
    """A fresh ext4 data partition image (label appliance-data), optionally with files.

    ``files`` maps names to text put at the partition's root — e.g. ``firstboot.toml``.
    Built with ``mkfs.ext4 -d`` from a folder, so no loop device or mount is needed.
    """
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, text in (files or {}).items():
            (root / name).write_text(text)
        path.unlink(missing_ok=True)
        # Inode tables and journal initialised now, not by the appliance's first mount.
        _run(["mkfs.ext4", "-q", "-F", "-L", DATA_LABEL, "-d", str(root), "-E",
              "root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0", str(path),
              f"{size_mib}M"])  # fmt: skip
    return path

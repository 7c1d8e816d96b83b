#!/usr/bin/env bash
# Set up the register appliance in this checkout and then run it or its tests.
#
#   ./bootstrap.sh run    set up, then start a register (SQLite, demo catalog,
#                         simulated peripherals, HTTP on 127.0.0.1:8080)
#   ./bootstrap.sh test   set up (and start PostgreSQL for the back office tests),
#                         then run the whole test suite
#   ./bootstrap.sh setup  only set up
#
# Set-up installs the Debian/Ubuntu packages the project needs (when missing and
# when it can: as root or through sudo), creates the virtual environment at .venv
# and installs the project into it in editable mode.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(pwd)"

# System packages, one per line with what needs it.
APT_PACKAGES=(
    python3
    python3-venv
    python3-dev       # headers for evdev's C extension
    gcc               # evdev's C extension
    linux-libc-dev    # input-event headers for evdev
    iproute2          # network-namespace tests (ip netns, veth)
    systemd           # systemd-analyze verify/security of the units (tests/test_systemd_units.py)
    cage              # the kiosk unit's compositor (systemd-analyze verify checks ExecStart)
    chromium          # the kiosk unit's browser
    qemu-system-x86   # full-system HIL stage: boots the appliance image (hil/qemu)
    debootstrap       # the image's Debian base layer
    squashfs-tools    # the image's read-only layers (mksquashfs)
    busybox-static    # the image's initramfs
    kmod              # depmod/modprobe for the image's kernel modules
    cpio              # packs the initramfs
    zstd              # compresses the initramfs
    e2fsprogs         # the data partition (mkfs.ext4 -d)
    libfaketime       # sync chaos test: registers with skewed clocks (LD_PRELOAD)
    chromium          # the browser the web UI tests drive (Playwright, never its own download)
    strace            # tests/test_durability.py counts the register's real fsyncs
)

need_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
    if command -v apt-get >/dev/null; then
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        echo "bootstrap: installing system packages: ${need_apt[*]}" >&2
        $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install \
            -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    else
        echo "bootstrap: missing system packages ${need_apt[*]} and no apt-get to install them" >&2
        exit 1
    fi
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv" >&2
    "$PY" -m venv .venv
fi
# Re-install only when pyproject.toml changed since the last install.
stamp=.venv/.installed-pyproject
if ! cmp -s pyproject.toml "$stamp" 2>/dev/null; then
    echo "bootstrap: installing the project into .venv" >&2
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e ".[dev]"
    cp pyproject.toml "$stamp"
fi

# The back office tests run against SQLite and a real PostgreSQL on 127.0.0.1:5432
# (trust auth for local connections). When nothing answers there, install Debian's
# postgresql, trust loopback connections, start its cluster and add a superuser
# role for the user running the tests.
pg_answers() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
ensure_postgres() {
    pg_answers && return 0
    echo "bootstrap: no PostgreSQL on 127.0.0.1:5432: installing and starting Debian's postgresql" >&2
    local SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    if ! command -v pg_ctlcluster >/dev/null; then
        $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install \
            -y -qq --no-install-recommends postgresql >/dev/null
    fi
    local ver
    ver=$(ls /etc/postgresql | sort -V | tail -1)
    [ -d "/etc/postgresql/$ver/main" ] || $SUDO pg_createcluster "$ver" main >/dev/null
    local hba="/etc/postgresql/$ver/main/pg_hba.conf"
    if ! $SUDO grep -q "^host all all 127.0.0.1/32 trust" "$hba"; then
        printf 'host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' \
            | $SUDO tee "$hba.ci" >/dev/null
        $SUDO sh -c "cat '$hba' >> '$hba.ci' && mv '$hba.ci' '$hba'"
    fi
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    for _ in $(seq 1 60); do pg_answers && break; sleep 0.5; done
    pg_answers || { echo "bootstrap: PostgreSQL did not start" >&2; return 1; }
    local me
    me=$(id -un)
    as_postgres() { if [ -z "$SUDO" ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
    as_postgres psql -h 127.0.0.1 -qtAc "SELECT 1 FROM pg_roles WHERE rolname = '$me'" postgres \
        | grep -q 1 || as_postgres createuser -h 127.0.0.1 -s "$me"
}

case "${1:-setup}" in
    setup) ;;
    run)
        shift
        exec .venv/bin/appliance run "$@"
        ;;
    test)
        shift
        ensure_postgres
        exec .venv/bin/python -m pytest "$@"
        ;;
    *)
        echo "usage: $0 [setup|run|test] [args...]" >&2
        exit 2
        ;;
esac

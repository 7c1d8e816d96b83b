#!/usr/bin/env bash
# Set up the register appliance in this checkout and then run it or its tests.
#
#   ./bootstrap.sh run    set up, then start a register (SQLite, demo catalog,
#                         simulated peripherals, HTTP on 127.0.0.1:8080)
#   ./bootstrap.sh test   set up, then run the whole test suite
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
    chromium          # the browser the web UI tests drive (Playwright, never its own download)
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

case "${1:-setup}" in
    setup) ;;
    run)
        shift
        exec .venv/bin/appliance run "$@"
        ;;
    test)
        shift
        exec .venv/bin/python -m pytest "$@"
        ;;
    *)
        echo "usage: $0 [setup|run|test] [args...]" >&2
        exit 2
        ;;
esac

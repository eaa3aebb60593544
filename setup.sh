#!/usr/bin/env bash
# One command sets maskwatch up: a virtual environment in .venv with the pinned dependencies
# (reused when pyproject.toml is unchanged), then a first real job on generated data
# (`maskwatch demo`: make a small data set, inspect it, train, evaluate, classify).
set -euo pipefail
cd "$(dirname "$0")"
VENV=${MASKWATCH_VENV:-.venv}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
stamp="$VENV/.maskwatch-requirements"
# The stamp covers what the venv is built from: the pinned dependencies and this script's install steps.
want=$("$PY" - <<'PYEOF'
import hashlib, tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = p["dependencies"] + sorted(sum(p.get("optional-dependencies", {}).values(), []))
install = [line for line in open("setup.sh") if "pip\" install" in line]
print(hashlib.sha256(repr((deps, install)).encode()).hexdigest())
PYEOF
)
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "setup: reusing $VENV (requirements unchanged)"
    # The package itself is installed in editable mode, so a fresh clone only needs re-linking.
    "$VENV/bin/pip" install -q --no-deps -e . 2>&1 | grep -v '^WARNING: Location' || true
else
    echo "setup: building $VENV (a few minutes: torch is large)"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
    # torch and torchvision install from this machine's disk with plain pip (not uv/poetry).
    "$VENV/bin/pip" install -q torch==2.14.1 torchvision==0.29.1 2>&1 | grep -v '^WARNING: Location' || true
    # everything: the base install (inference) plus the training parts, Ray + PostgreSQL's driver and the test tools
    "$VENV/bin/pip" install -q -e '.[train,eval,scale,dev]' 2>&1 | grep -v '^WARNING: Location' || true
    "$VENV/bin/python" -c "import maskwatch, torch, timm" || { echo "setup: install failed" >&2; exit 1; }
    echo "$want" > "$stamp"
fi
# apt_install WHAT TESTS PACKAGE...: install Debian packages the tests use (one retry after `apt-get update`); on
# failure only a warning: those tests skip with their reason.
apt_install() {
    local what=$1 tests=$2 sudo=""
    shift 2
    [ "$(id -u)" = 0 ] || sudo="sudo -n"
    echo "setup: installing $what (apt) for $tests"
    if ! { $sudo apt-get install -y -q "$@" >/dev/null 2>&1 \
        || { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q "$@" >/dev/null 2>&1; }; }; then
        echo "setup: could not install $what; $tests will be skipped" >&2
    fi
}
if command -v apt-get >/dev/null; then
    # The browser test (tests/test_serve_browser.py) drives Debian's Chromium with Playwright.
    if [ ! -x /usr/bin/chromium ] && [ "${MASKWATCH_SKIP_BROWSER:-0}" != "1" ]; then
        apt_install chromium "the browser test" chromium
    fi
    # The alert tests (tests/test_alerts.py) start their own mosquitto broker on a free loopback port.
    if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
        apt_install mosquitto "the MQTT alert tests" mosquitto
    fi
    # The store tests (tests/test_store*.py) start their own PostgreSQL (initdb into a temporary folder, postgres on a
    # free loopback port).
    if ! command -v postgres >/dev/null && [ ! -x /usr/local/bin/postgres ] \
        && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
        apt_install postgresql "the PostgreSQL store tests" postgresql
    fi
    # The camera tests (tests/test_monitor_cameras.py) serve RTSP with GStreamer through the system python3-gi.
    if ! /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" >/dev/null 2>&1 \
        && [ "${MASKWATCH_SKIP_RTSP:-0}" != "1" ]; then
        apt_install "the GStreamer RTSP server" "the RTSP camera tests" \
            python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
    fi
fi
if [ "${MASKWATCH_SKIP_DEMO:-0}" != "1" ]; then
    "$VENV/bin/maskwatch" demo --out runs/demo
fi

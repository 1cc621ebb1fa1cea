#!/bin/sh
# Install promtool and the Prometheus server (Debian's `prometheus` package) for the packaging
# tests (tests/packaging): promtool checks and unit-tests charts/tradefleet/files/alerts.yaml,
# and one test starts a real Prometheus on loopback.
#
# Idempotent: does nothing when promtool and prometheus are already on PATH. Non-interactive.
# The package's maintainer scripts would start a `prometheus` service; it is kept from starting
# (policy-rc.d answers 101 during the install) and any daemon the install left behind anyway is
# stopped, so the tests' own Prometheus is the only one.
set -eu

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
    promtool --version 2>&1 | head -n 1
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_prometheus.sh: no apt-get here; install Prometheus 2.x (promtool and" \
        "prometheus on PATH) from https://prometheus.io/download/" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive

# Keep invoke-rc.d from starting services while the package installs.
POLICY=/usr/sbin/policy-rc.d
OWN_POLICY=0
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 755 "$POLICY"
    OWN_POLICY=1
fi
cleanup() {
    if [ "$OWN_POLICY" -eq 1 ]; then
        $SUDO rm -f "$POLICY"
    fi
}
trap cleanup EXIT INT TERM

$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends prometheus

# Whatever the init system, do not leave a Prometheus service running.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl stop prometheus.service >/dev/null 2>&1 || true
    $SUDO systemctl disable prometheus.service >/dev/null 2>&1 || true
fi
if [ -x /etc/init.d/prometheus ]; then
    $SUDO /etc/init.d/prometheus stop >/dev/null 2>&1 || true
fi
# A daemon started by the package runs as the `prometheus` user with the packaged config.
for pid in $(pgrep -u prometheus -x prometheus 2>/dev/null || true); do
    $SUDO kill "$pid" 2>/dev/null || true
done

promtool --version 2>&1 | head -n 1

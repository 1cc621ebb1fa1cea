#!/bin/bash
# Start a virtual display, the MetaTrader 5 terminal under Wine, and tradefleet mt5-bridge in
# front of it (Windows Python, so the MetaTrader5 package talks to the terminal). Part of the
# docker/mt5-bridge recipe: not built or run by CI.
set -euo pipefail

AUTH_DIR=${MT5_BRIDGE_AUTH_DIR:-/var/run/tradefleet/bridge-auth}
TLS_DIR=${MT5_BRIDGE_TLS_DIR:-/var/run/tradefleet/bridge-tls}
LISTEN=${MT5_BRIDGE_LISTEN:-0.0.0.0:50061}
TERMINAL_EXE="$WINEPREFIX/drive_c/Program Files/MetaTrader 5/terminal64.exe"

Xvfb :99 -screen 0 1024x768x16 -nolisten tcp &
# The terminal runs portable (its data next to it) and stays up; the bridge attaches to it.
wine "$TERMINAL_EXE" /portable &

args=(--listen "$LISTEN" --auth-dir "$AUTH_DIR" --terminal MetaTrader5)
if [ -f "$TLS_DIR/tls.crt" ]; then
    args+=(--tls-dir "$TLS_DIR")
fi
exec wine python -m tradefleet_runtime.launcher --log-format json mt5-bridge "${args[@]}"

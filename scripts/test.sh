#!/usr/bin/env bash
# The project's test command (the README's, and what .ci/run runs):
#
#   scripts/test.sh [PYTEST ARGS ...]        (no arguments: python -m pytest -n 2)
#
# The browser tests and figure export drive Chromium: $BROWSER_PATH when set, else `chromium`
# on PATH (tests/browser/conftest.py looks in the same places). When none is
# there it is installed with apt-get if this user can (root, or passwordless sudo); otherwise
# the script says in one line what to install and exits with 3 without running anything, so a
# green run always includes the browser tests. PYTHON=... picks the interpreter.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
PY="${PYTHON:-python}"

find_chromium() {
    if [ -n "${BROWSER_PATH:-}" ]; then
        [ -x "$BROWSER_PATH" ] && echo "$BROWSER_PATH"
        return
    fi
    command -v chromium 2>/dev/null
}

install_chromium() {
    local as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || return 1
        as_root=(sudo -n)
    fi
    command -v apt-get >/dev/null 2>&1 || return 1
    echo "scripts/test.sh: Chromium is missing; installing it with apt-get" >&2
    "${as_root[@]}" apt-get update -qq && "${as_root[@]}" apt-get install -y -qq chromium >/dev/null
}

if [ -n "${BROWSER_PATH:-}" ] && [ ! -x "$BROWSER_PATH" ]; then
    echo "scripts/test.sh: BROWSER_PATH=$BROWSER_PATH is not an executable file; point it at Chromium or unset it" >&2
    exit 3
fi
if [ -z "$(find_chromium)" ]; then
    if ! install_chromium || [ -z "$(find_chromium)" ]; then
        echo "scripts/test.sh: Chromium is needed by the browser and export tests and could not be installed here (apt-get needs root or passwordless sudo): run 'sudo apt-get install -y chromium' (or set BROWSER_PATH to a Chromium binary), then run this again" >&2
        exit 3
    fi
fi

if [ "$#" -eq 0 ]; then
    set -- -n 2
fi
exec "$PY" -m pytest "$@"

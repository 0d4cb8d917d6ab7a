#!/usr/bin/env bash
# Debian's Chromium for the web page's browser tests (tests/system/test_web_browser.py).
# Installed here when it is missing and this machine allows it (root or passwordless sudo, apt-get);
# otherwise this says so loudly, and the browser tests fail with the same message unless
# RQRCRON_SKIP_BROWSER=1 skips them on purpose.
set -u
if [ -n "${RQRCRON_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
if [ "${RQRCRON_SKIP_BROWSER:-}" = "1" ]; then
    echo "RQRCRON_SKIP_BROWSER=1: not installing Chromium; the web page's browser tests are skipped"
    exit 0
fi
sudo=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; fi
fi
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = "0" ] || [ -n "$sudo" ]; }; then
    echo "Installing Debian's chromium package for the web page's browser tests (apt-get)..."
    log="$(mktemp)"
    if DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends chromium >"$log" 2>&1 \
        || { $sudo apt-get update >>"$log" 2>&1 \
            && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends chromium >>"$log" 2>&1; }; then
        echo "Chromium installed: $(command -v chromium)"
        exit 0
    fi
    tail -5 "$log"
fi
cat <<'MSG'
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!! Chromium is not installed and could not be installed here (needs root or sudo, and apt-get). !!
!! The web page's browser tests will FAIL. Install Debian's chromium package, point            !!
!! RQRCRON_CHROMIUM at a Chromium binary, or set RQRCRON_SKIP_BROWSER=1 to skip those tests.   !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
MSG
exit 0

#!/usr/bin/env bash
# Browser tests drive Debian's Chromium; install it from apt when missing (never a tool's own download).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the browser tests..."
  (apt-get install -y -q chromium chromium-driver >/dev/null 2>&1) || (apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null)
else
  echo "note: /usr/bin/chromium is missing and apt-get is not usable; browser tests will be skipped." >&2
fi

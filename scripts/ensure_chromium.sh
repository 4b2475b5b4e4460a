#!/usr/bin/env bash
# Headless Chromium and its WebDriver for tests/test_browser.py: installs Debian's chromium and
# chromium-driver packages when /usr/bin/chromium or /usr/bin/chromedriver is missing.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null

#!/bin/sh
# Debian's Chromium for the web page's browser tests (tests/test_web.py drives it with Playwright,
# which therefore downloads no browser of its own). Does nothing where chromium is already installed.
set -e
command -v chromium >/dev/null 2>&1 && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium

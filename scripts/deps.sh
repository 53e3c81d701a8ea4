#!/bin/sh
# Installs the Debian packages anvil builds and tests with, when missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -eu

PKGS="pkg-config libnng-dev libprotobuf-c-dev protobuf-c-compiler \
libsqlite3-dev libcmocka-dev libjansson-dev libmbedtls-dev mandoc \
libmicrohttpd-dev libgnutls28-dev curl libcurl4-openssl-dev libpq-dev \
postgresql"
# `deps.sh fuzz` adds clang and its libFuzzer runtime.
[ "${1:-}" = fuzz ] && PKGS="$PKGS clang libclang-rt-14-dev"
# `deps.sh test` adds what only the tests use: promtool, from Debian's
# prometheus package (tests/unit/test_metrics.c checks the /metrics text),
# and headless Chromium driven by Selenium for the dashboard's browser test
# (tests/browser/test_dashboard.py).
[ "${1:-}" = test ] && PKGS="$PKGS prometheus chromium chromium-driver \
python3-selenium"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
        grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

echo "anvil: missing Debian packages:$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
    echo "run: sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >&2

#!/usr/bin/env bash
# Installs redis-server from Debian, for the sluice-spark tests (each test starts its own
# server on a free port). Returns at once when redis-server is already on PATH.
set -euo pipefail

if command -v redis-server >/dev/null; then
    exit 0
fi

sudo=""
if [[ "$(id -u)" != 0 ]]; then
    sudo="sudo"
fi

# apt-get update only when the package lists don't know redis-server yet.
if ! apt-cache show redis-server >/dev/null 2>&1; then
    $sudo apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
# The package starts a system-wide server; the tests start their own, so stop it when an
# init system is there to do it (containers usually have none).
if command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then
    $sudo systemctl stop redis-server || true
    $sudo systemctl disable redis-server >/dev/null 2>&1 || true
fi
command -v redis-server >/dev/null || { echo "install-redis.sh: redis-server still not on PATH" >&2; exit 1; }
echo "install-redis.sh: $(redis-server --version)" >&2

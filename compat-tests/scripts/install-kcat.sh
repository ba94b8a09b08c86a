#!/usr/bin/env bash
# Installs kcat from Debian. Returns at once when kcat is already on PATH.
set -euo pipefail

if command -v kcat >/dev/null; then
    exit 0
fi

sudo=""
if [[ "$(id -u)" != 0 ]]; then
    sudo="sudo"
fi

# apt-get update only when the package lists don't know kcat yet.
if ! apt-cache show kcat >/dev/null 2>&1; then
    $sudo apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq kcat >/dev/null
command -v kcat >/dev/null || { echo "install-kcat.sh: kcat still not on PATH" >&2; exit 1; }
echo "install-kcat.sh: $(kcat -V 2>&1 | head -n1)" >&2

#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver from Debian, for the browser tests of the
# broker's web console and sluice-spark's streaming page (driven through Selenium from the
# venv that install-python.sh builds). Returns at once when both are already on PATH.
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi

sudo=""
if [[ "$(id -u)" != 0 ]]; then
    sudo="sudo"
fi

# apt-get update only when the package lists don't know chromium-driver yet.
if ! apt-cache show chromium-driver >/dev/null 2>&1; then
    $sudo apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null
command -v chromium >/dev/null || { echo "install-chromium.sh: chromium still not on PATH" >&2; exit 1; }
command -v chromedriver >/dev/null || { echo "install-chromium.sh: chromedriver still not on PATH" >&2; exit 1; }
echo "install-chromium.sh: $(chromium --version 2>/dev/null)" >&2

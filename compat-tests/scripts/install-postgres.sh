#!/usr/bin/env bash
# Installs the PostgreSQL server from Debian, for sluice-spark's transactional sink tests (each
# test runs its own `initdb` cluster on a free port in a temp dir, as the Redis tests do with
# redis-server). Returns at once when `initdb` and `pg_ctl` are already reachable.
set -euo pipefail

# Debian keeps the server binaries under /usr/lib/postgresql/<major>/bin, off PATH.
find_bin() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

if find_bin >/dev/null; then
    exit 0
fi

sudo=""
if [[ "$(id -u)" != 0 ]]; then
    sudo="sudo"
fi

if ! apt-cache show postgresql >/dev/null 2>&1; then
    $sudo apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
# The package creates and starts a system-wide cluster; the tests run their own, so stop it
# when an init system is there to do it (containers usually have none).
if command -v systemctl >/dev/null && systemctl is-active --quiet postgresql 2>/dev/null; then
    $sudo systemctl stop postgresql || true
    $sudo systemctl disable postgresql >/dev/null 2>&1 || true
fi
dir="$(find_bin)" || { echo "install-postgres.sh: initdb/pg_ctl still not found" >&2; exit 1; }
echo "install-postgres.sh: $("$dir/postgres" --version)" >&2

#!/usr/bin/env bash
# Runs the README's seed-pipeline command block ("Connectors: the seed pipeline on one
# machine") exactly as written, as a newcomer would paste it into one shell, and checks
# that Redis ends up with the word counts of the line it appends.
#
# It runs as root in namespaces of its own, so that it looks like a fresh machine and
# touches nothing of this one: a private network (its own loopback, so the block's fixed
# ports 9092 and 6379 are free), a private PID namespace (every process the block starts
# in the background ends with it), and private mounts: an empty tmpfs on /tmp (no
# /tmp/sluice-flume yet) and on the repository's ./data (the broker's default data dir).
# The block runs target/release/...: a CARGO_TARGET_DIR of the caller's is mounted there.
#
# Needs: root with unshare and ip (util-linux, iproute2), redis-server and redis-cli, cargo.
# Exit status: 0 passed, 1 failed, 77 skipped (no root or no namespaces here).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
EXIT_SKIP=77
DEADLINE_SECS=120

if [[ ${1:-} != --inside ]]; then
    if [[ $(id -u) -ne 0 ]] || ! unshare -n -m -p -f --mount-proc true 2>/dev/null; then
        echo "test-readme-pipeline.sh: SKIPPED: needs root and unshare (network, mount, PID namespaces)"
        echo "0 passed, 0 failed, 1 skipped"
        exit "$EXIT_SKIP"
    fi
    for cmd in redis-server redis-cli cargo ip; do
        command -v "$cmd" >/dev/null || { echo "test-readme-pipeline.sh: $cmd is not on PATH" >&2; exit 1; }
    done
    exec unshare -n -m -p -f --mount-proc bash "${BASH_SOURCE[0]}" --inside
fi

# ---- inside the namespaces ------------------------------------------------------------------
# The block: the first ```sh fence after the sentence that introduces it. Read before /tmp is
# replaced, since the checkout itself may live under /tmp.
block=$(awk '
    /pipeline.s own config:$/ { found = 1; next }
    found && /^```sh$/ { inside = 1; next }
    inside && /^```$/ { exit }
    inside { print }
' "$root/README.md")
[[ $block == *"redis-cli HGETALL wc:counts"* ]] ||
    { echo "test-readme-pipeline.sh: cannot find the pipeline block in README.md" >&2; exit 1; }

ip link set lo up
mount --make-rprivate /
target=""
if [[ -n ${CARGO_TARGET_DIR:-} ]]; then
    target=$(realpath -m "$CARGO_TARGET_DIR")
    [[ $target != "$(realpath -m "$root/target")" ]] || target=""
    unset CARGO_TARGET_DIR
fi
# A checkout (or target dir) under /tmp must stay reachable at its own path once /tmp is an
# empty tmpfs: keep a handle on it first, then put it back at the same place.
keep=$(mktemp -d /run/readme-pipeline.XXXXXX)
mkdir -p "$keep/root" "$keep/target"
mount --rbind "$root" "$keep/root"
[[ -z $target ]] || mount --rbind "$target" "$keep/target"
mount -t tmpfs tmpfs /tmp
mkdir -p "$root"
mount --rbind "$keep/root" "$root"
if [[ -n $target ]]; then
    mkdir -p "$root/target"
    mount --rbind "$keep/target" "$root/target"
fi
mkdir -p "$root/data"
mount -t tmpfs tmpfs "$root/data"

log=/tmp/readme-pipeline.log
cd "$root"
echo "test-readme-pipeline.sh: running the README's pipeline block (log: its output, shown on failure)"
set +e
bash -c "$block" >"$log" 2>&1
status=$?
set -e
if [[ $status -ne 0 ]]; then
    tail -40 "$log"
    echo "test-readme-pipeline.sh: the block failed with status $status"
    echo "0 passed, 1 failed"
    exit 1
fi

# "hello sluice hello flume": the block's own HGETALL may come before the first batch on a
# slow machine; poll on with a deadline.
want=$'flume 1\nhello 2\nsluice 1'
end=$((SECONDS + DEADLINE_SECS))
while :; do
    got=$(redis-cli -p 6379 HGETALL wc:counts 2>/dev/null | paste -d ' ' - - | sort)
    [[ $got == "$want" ]] && break
    if ((SECONDS >= end)); then
        tail -40 "$log"
        echo "test-readme-pipeline.sh: wc:counts is '${got//$'\n'/, }', expected '${want//$'\n'/, }'"
        echo "0 passed, 1 failed"
        exit 1
    fi
    sleep 1
done
echo "test-readme-pipeline.sh: ok: wc:counts holds ${got//$'\n'/, } after the README's block"
echo "1 passed, 0 failed"

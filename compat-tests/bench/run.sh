#!/usr/bin/env bash
# Side-by-side benchmark of Sluice and Apache Kafka 4.3.1 on this machine.
#   bash compat-tests/bench/run.sh [--quick] [--repeats N] [--keep] [...]
# Installs what it needs (idempotent), builds the release binaries, then runs sidebyside.py,
# which writes compat-tests/bench/results/latest.{md,png,json}. README.md explains the figures.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
compat="$(cd "$here/.." && pwd)"
root="$(cd "$compat/.." && pwd)"
venv="$compat/.cache/venv"
# The chart's only extra dependency, pinned; installed into the compat venv once.
MATPLOTLIB="matplotlib==3.10.3"

for a in "$@"; do
    if [[ "$a" == "-h" || "$a" == "--help" ]]; then
        sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'
        echo "Flags: --quick, --repeats N, --records N, --latency-secs S, --latency-rate R,"
        echo "       --only kafka|sluice, --keep, --out-dir DIR, --consume-1000p [--tail-records N]"
        echo "       [--tail-rate R], --tls, --tls-only. See compat-tests/bench/README.md."
        exit 0
    fi
done

bash "$compat/scripts/install-java.sh"
bash "$compat/scripts/install-python.sh"
if ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    echo "run.sh: installing $MATPLOTLIB into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$MATPLOTLIB"
fi

cd "$root"
if [[ -z "${SLUICE_BIN:-}" ]]; then
    echo "run.sh: cargo build --release --bin sluice" >&2
    cargo build --release --quiet --bin sluice
    SLUICE_BIN="$root/target/release/sluice"
fi
echo "run.sh: building the e2e_latency probe (release)" >&2
probe="$(cargo build --release --quiet -p sluice-compat --bench e2e_latency --message-format=json |
    "$venv/bin/python" -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "e2e_latency" and m.get("executable"):
        print(m["executable"])')"
[[ -x "$probe" ]] || { echo "run.sh: could not find the e2e_latency binary" >&2; exit 1; }

# exec: signals now go straight to the Python process, which stops the brokers it started.
exec "$venv/bin/python" -u "$here/sidebyside.py" \
    --sluice-bin "$SLUICE_BIN" --probe-bin "$probe" \
    --command "bash compat-tests/bench/run.sh${*:+ $*}" "$@"

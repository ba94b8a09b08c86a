#!/usr/bin/env bash
# Side-by-side benchmark of sluice-spark's word count and Apache Spark 3.5's (DStream direct
# stream, Structured Streaming), on one release Sluice broker.
#   bash connectors/spark/benches/run.sh [--records N] [--rate R] [--steady-secs S] [--no-readme] [...]
# Installs the Spark jars and the venv (idempotent), builds the release binaries, then runs
# sidebyside.py, which writes benches/results/latest.{md,json} and the "Side by side with
# Apache Spark" section of connectors/spark/README.md. `--help` lists every flag.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
compat="$root/compat-tests"
venv="$compat/.cache/venv"

bash "$compat/scripts/install-python.sh"
bash "$compat/scripts/install-spark.sh"
command -v javac >/dev/null || { echo "run.sh: javac is not on PATH (apt-get install -y openjdk-17-jdk-headless)" >&2; exit 1; }

cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
if [[ -z "${SLUICE_BIN:-}" || -z "${SLUICE_SPARK_BIN:-}" ]]; then
    echo "run.sh: cargo build --release -p sluice -p sluice-spark" >&2
    cargo build --release --quiet -p sluice -p sluice-spark
fi
SLUICE_BIN="${SLUICE_BIN:-$target/release/sluice}"
SLUICE_SPARK_BIN="${SLUICE_SPARK_BIN:-$target/release/sluice-spark}"

# exec: signals now go straight to the Python process, which stops what it started.
exec "$venv/bin/python" -u "$here/sidebyside.py" \
    --sluice-bin "$SLUICE_BIN" --sluice-spark-bin "$SLUICE_SPARK_BIN" \
    --command "bash connectors/spark/benches/run.sh${*:+ $*}" "$@"

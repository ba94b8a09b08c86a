#!/usr/bin/env bash
# Throughput of avro source → memory/file channel → Kafka sink into Sluice, under sluice-flume
# and under Apache Flume 1.11 with the same config and load (connectors/flume/README.md, "Performance").
#
#   bash connectors/flume/bench/run.sh [--events N] [--repeats N] [--flows memory,file] [...]
#
# Installs Flume's jars (idempotent), builds release `sluice`, `sluice-flume` and the load
# generator (benches/avro_load.rs) into $CARGO_TARGET_DIR (default: the workspace's target/),
# then runs it; it writes connectors/flume/bench/results/latest.{md,json}. Other flags go to
# the load generator (`--help` lists them). About 5 minutes on 2 cores with the defaults (5 runs of each agent per flow).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
crate="$(cd "$here/.." && pwd)"
root="$(cd "$crate/../.." && pwd)"

bash "$root/compat-tests/scripts/install-flume.sh"

cd "$root"
echo "run.sh: cargo build --release --bin sluice --bin sluice-flume" >&2
cargo build --release --quiet -p sluice --bin sluice -p sluice-flume --bin sluice-flume
echo "run.sh: cargo bench -p sluice-flume --bench avro_load" >&2
exec cargo bench --quiet -p sluice-flume --bench avro_load -- \
    --command "bash connectors/flume/bench/run.sh${*:+ $*}" "$@"

#!/usr/bin/env bash
# Creates compat-tests/.cache/venv with pinned kafka-python and confluent-kafka, plus the codec
# libraries kafka-python needs for snappy, lz4 and zstd, Prometheus's text-format parser (the
# metrics tests) and Selenium (the browser tests, with Debian's chromedriver). Idempotent: a marker file holding the
# pinned requirement list makes a re-run return at once.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="$(cd "$here/.." && pwd)/.cache"
venv="$cache/venv"
marker="$venv/.installed"

# kafka-python's codecs: gzip is stdlib; snappy via python-snappy (or cramjam), lz4 via lz4,
# zstd via zstandard.
requirements=(
    "kafka-python==3.0.12"
    "confluent-kafka==2.16.1"
    "python-snappy==0.7.3"
    "cramjam==2.14.0"
    "lz4==4.4.5"
    "zstandard==0.25.0"
    "prometheus-client==0.26.0"
    "selenium==4.50.0"
)
want="${requirements[*]}"

if [[ -f "$marker" ]] && [[ "$(cat "$marker")" == "$want" ]] && [[ -x "$venv/bin/python" ]]; then
    exit 0
fi

python="${PYTHON:-python3}"
command -v "$python" >/dev/null || { echo "install-python.sh: $python is not on PATH" >&2; exit 1; }

echo "install-python.sh: building $venv" >&2
mkdir -p "$cache"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
"$venv/bin/python" - <<'PY'
import kafka, confluent_kafka, snappy, lz4.frame, zstandard, prometheus_client, selenium  # noqa: F401
from kafka.codec import has_gzip, has_snappy, has_lz4, has_zstd
assert has_gzip() and has_snappy() and has_lz4() and has_zstd(), "kafka-python codec missing"
print("install-python.sh: kafka-python", kafka.__version__, "confluent-kafka", confluent_kafka.version()[0],
      "librdkafka", confluent_kafka.libversion()[0])
PY
echo "$want" >"$marker"

#!/usr/bin/env bash
# Installs everything the compat tests need: system build dependencies of the `rdkafka` crate,
# Kafka's Java tools, the Python clients, kcat, the Go clients (Sarama, franz-go's tests),
# redis-server, PostgreSQL and headless Chromium from Debian. Each
# step is idempotent and fast when already done.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/install-build-deps.sh"
bash "$here/install-java.sh"
bash "$here/install-kafka-streams.sh"
bash "$here/install-python.sh"
bash "$here/install-kcat.sh"
bash "$here/install-go.sh"
bash "$here/install-redis.sh"
bash "$here/install-postgres.sh"
bash "$here/install-chromium.sh"
bash "$here/install-hadoop.sh"
bash "$here/install-flume.sh"

#!/usr/bin/env bash
# Runs one Apache Kafka main class from the jars install-java.sh cached, like Kafka's own
# bin/kafka-run-class.sh, with log4j2 at error level on stderr.
#   kafka-run-class.sh org.apache.kafka.tools.TopicCommand --bootstrap-server ... --list
set -euo pipefail

KAFKA_VERSION="4.3.1"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
home="$(cd "$here/.." && pwd)/.cache/kafka-$KAFKA_VERSION"

if [[ $# -lt 1 ]]; then
    echo "usage: kafka-run-class.sh CLASS [ARGS...]" >&2
    exit 2
fi
if [[ ! -f "$home/.installed" ]]; then
    echo "kafka-run-class.sh: Kafka jars missing; run compat-tests/scripts/install-all.sh" >&2
    exit 2
fi

class="$1"
shift
exec java ${KAFKA_HEAP_OPTS:--Xmx512m} -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$home/log4j2-quiet.properties" \
    -cp "$home/libs/*" "$class" "$@"

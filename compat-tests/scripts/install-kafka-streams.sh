#!/usr/bin/env bash
# Installs Kafka Streams 4.3.1 (and RocksDB's JNI jar, its state store) from Maven Central into
# compat-tests/.cache/kafka-streams-4.3.1/libs/, for the exactly-once word count test. Run it
# with the Kafka 4.3.1 jars of install-java.sh on the same class path: kafka-clients and slf4j
# are taken from there, so they are left out here. Idempotent: a marker file records a
# finished install, so a re-run returns at once. Kept apart from install-java.sh's directory so
# adding it never re-fetches (or swaps out under a running test) the jars that already exist.
set -euo pipefail

KAFKA_VERSION="4.3.1"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="$(cd "$here/.." && pwd)/.cache"
home="$cache/kafka-streams-$KAFKA_VERSION"
libs="$home/libs"
marker="$home/.installed"

if [[ -f "$marker" ]] && [[ "$(cat "$marker")" == "$KAFKA_VERSION" ]]; then
    exit 0
fi

command -v mvn >/dev/null || { echo "install-kafka-streams.sh: mvn is not on PATH (apt-get install -y maven)" >&2; exit 1; }

echo "install-kafka-streams.sh: fetching Kafka Streams $KAFKA_VERSION jars into $libs" >&2
mkdir -p "$home"
work="$(mktemp -d "$home/pom.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cat >"$work/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.sluice</groupId>
  <artifactId>kafka-streams-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-streams</artifactId><version>$KAFKA_VERSION</version></dependency>
  </dependencies>
</project>
POM

rm -rf "$libs.tmp"
# kafka-clients, slf4j-api, jackson and the codecs already sit in kafka-$KAFKA_VERSION/libs, at the
# same versions.
mvn -q -B -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs.tmp" \
    -DexcludeArtifactIds=kafka-clients,slf4j-api,zstd-jni,lz4-java,snappy-java \
    -DexcludeGroupIds=com.fasterxml.jackson.core
rm -rf "$libs"
mv "$libs.tmp" "$libs"

echo "$KAFKA_VERSION" >"$marker"
echo "install-kafka-streams.sh: $(ls "$libs" | tr '\n' ' ')" >&2

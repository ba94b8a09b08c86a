#!/usr/bin/env bash
# Installs the Kafka modules of Testcontainers that docker/test.sh runs against Sluice's
# image, with the clients its programs in docker/testcontainers/ use:
#
#   Python  testcontainers 4.15.0 into compat-tests/.cache/venv (confluent-kafka is already
#           there, from install-python.sh)
#   Java    org.testcontainers:kafka 1.21.4, kafka-clients and an slf4j binding from Maven
#           Central into compat-tests/.cache/testcontainers-java-1.21.4/lib/
#   Go      testcontainers-go v0.40.0 modules/kafka and sarama from the Go module proxy, as
#           pinned by docker/testcontainers/go/go.sum, into compat-tests/.cache/gomod, and
#           the program built as compat-tests/.cache/testcontainers-go/tc-kafka
#
# Idempotent: marker files record finished steps (the Go one keyed by the program's
# sources), so a re-run returns at once.
set -euo pipefail

TC_PYTHON_VERSION="4.15.0"
# testcontainers 4.15 imports `packaging` (its version checks) without declaring it.
PACKAGING_VERSION="25.0"
TC_JAVA_VERSION="1.21.4"
# The Java program's own client; 3.9 is the last kafka-clients line that still runs on Java 8+
# (Testcontainers 1.x's floor); any current one would do against Sluice.
KAFKA_CLIENTS_VERSION="3.9.1"
SLF4J_VERSION="1.7.36"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="$root/compat-tests/.cache"
progs="$root/docker/testcontainers"

# ---- Python ---------------------------------------------------------------------------------
bash "$here/install-python.sh"
venv="$cache/venv"
marker="$venv/.testcontainers"
if [[ ! -f "$marker" ]] || [[ "$(cat "$marker")" != "$TC_PYTHON_VERSION $PACKAGING_VERSION" ]]; then
    echo "install-testcontainers.sh: testcontainers $TC_PYTHON_VERSION into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "testcontainers==$TC_PYTHON_VERSION" "packaging==$PACKAGING_VERSION"
    "$venv/bin/python" -c 'from testcontainers.community.kafka import KafkaContainer'
    echo "$TC_PYTHON_VERSION $PACKAGING_VERSION" >"$marker"
fi

# ---- Java -----------------------------------------------------------------------------------
home="$cache/testcontainers-java-$TC_JAVA_VERSION"
stamp="$TC_JAVA_VERSION $KAFKA_CLIENTS_VERSION $SLF4J_VERSION"
if [[ ! -f "$home/.installed" ]] || [[ "$(cat "$home/.installed")" != "$stamp" ]]; then
    command -v java >/dev/null || { echo "install-testcontainers.sh: java is not on PATH (run install-java.sh)" >&2; exit 1; }
    command -v mvn >/dev/null || { echo "install-testcontainers.sh: mvn is not on PATH (apt-get install -y maven)" >&2; exit 1; }
    echo "install-testcontainers.sh: org.testcontainers:kafka $TC_JAVA_VERSION jars into $home/lib" >&2
    mkdir -p "$home"
    work="$(mktemp -d "$home/pom.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    cat >"$work/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.sluice</groupId>
  <artifactId>testcontainers-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.testcontainers</groupId><artifactId>kafka</artifactId><version>$TC_JAVA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-clients</artifactId><version>$KAFKA_CLIENTS_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>$SLF4J_VERSION</version></dependency>
  </dependencies>
</project>
POM
    rm -rf "$home/lib.tmp"
    mvn -q -B -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$home/lib.tmp"
    rm -rf "$home/lib"
    mv "$home/lib.tmp" "$home/lib"
    echo "$stamp" >"$home/.installed"
fi

# ---- Go -------------------------------------------------------------------------------------
out="$cache/testcontainers-go"
stamp="$(cat "$progs/go/go.mod" "$progs/go/go.sum" "$progs/go"/*.go | sha256sum | cut -c1-16)"
if [[ ! -x "$out/tc-kafka" ]] || [[ ! -f "$out/.installed" ]] || [[ "$(cat "$out/.installed")" != "$stamp" ]]; then
    command -v go >/dev/null || { echo "install-testcontainers.sh: go is not on PATH" >&2; exit 1; }
    echo "install-testcontainers.sh: building docker/testcontainers/go into $out/tc-kafka" >&2
    mkdir -p "$out"
    (cd "$progs/go" && GOMODCACHE="$cache/gomod" GOFLAGS=-mod=readonly go build -o "$out/tc-kafka" .)
    echo "$stamp" >"$out/.installed"
fi

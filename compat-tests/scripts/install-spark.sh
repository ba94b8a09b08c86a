#!/usr/bin/env bash
# Installs Apache Spark 3.5 for Scala 2.12 (Spark Streaming with its Kafka 0-10 direct stream,
# Spark SQL with its Kafka source for Structured Streaming, and their runtime dependencies)
# from Maven Central into compat-tests/.cache/spark-$SPARK_VERSION/jars/. The side-by-side
# benchmark connectors/spark/benches/sidebyside.py compiles its two Java word counts against
# these jars and runs them with `java -cp "$home/jars/*"` (local[2]); it calls this script
# itself. Not part of install-all.sh: about 300 MB of jars that no test needs.
#
# Idempotent: a marker file records a finished install, so a re-run returns at once.
set -euo pipefail

# The newest 3.5.x that Maven Central serves for all four artifacts, at one version: the
# Kafka direct stream (spark-streaming-kafka-0-10_2.12) is refused for 3.5.6, 3.5.7 and 3.5.9,
# the Kafka source of Structured Streaming (spark-sql-kafka-0-10_2.12) for 3.5.4 and 3.5.5.
SPARK_VERSION="3.5.3"
SCALA_BINARY="2.12"
# Spark 3.5's own slf4j (its log4j-slf4j2-impl binding needs slf4j 2): without it Maven's
# nearest-wins picks kafka-clients' slf4j-api 1.7.36, which finds no binding and logs nothing.
SLF4J_VERSION="2.0.7"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="$(cd "$here/.." && pwd)/.cache"
home="$cache/spark-$SPARK_VERSION"
jars="$home/jars"
marker="$home/.installed"
stamp="$SPARK_VERSION $SCALA_BINARY $SLF4J_VERSION"

if [[ -f "$marker" ]] && [[ "$(cat "$marker")" == "$stamp" ]]; then
    exit 0
fi

command -v java >/dev/null || { echo "install-spark.sh: java is not on PATH (apt-get install -y openjdk-17-jdk-headless)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "install-spark.sh: mvn is not on PATH (apt-get install -y maven)" >&2; exit 1; }

echo "install-spark.sh: fetching Apache Spark $SPARK_VERSION (Scala $SCALA_BINARY) jars into $jars" >&2
mkdir -p "$home"
work="$(mktemp -d "$home/pom.XXXXXX")"
trap 'rm -rf "$work"' EXIT

dep() {
    echo "    <dependency><groupId>org.apache.spark</groupId><artifactId>$1_$SCALA_BINARY</artifactId><version>$SPARK_VERSION</version></dependency>"
}
cat >"$work/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.sluice</groupId>
  <artifactId>spark-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
$(dep spark-streaming)
$(dep spark-streaming-kafka-0-10)
$(dep spark-sql)
$(dep spark-sql-kafka-0-10)
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>$SLF4J_VERSION</version></dependency>
  </dependencies>
</project>
POM

rm -rf "$jars.tmp"
mvn -q -B -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$jars.tmp"
rm -rf "$jars"
mv "$jars.tmp" "$jars"

# Spark 3.5 logs through log4j2 (log4j-slf4j2-impl is among its dependencies); warnings and
# errors only, to stderr, so the programs' stdout carries just their figures.
cat >"$home/log4j2-quiet.properties" <<'PROPS'
status = error
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = STDERR
PROPS

echo "$stamp" >"$marker"
echo "install-spark.sh: $(ls "$jars" | wc -l) jars in $jars" >&2

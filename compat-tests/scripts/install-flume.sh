#!/usr/bin/env bash
# Installs Apache Flume 1.11.0 (flume-ng-node and its runtime dependencies, a quiet log4j2
# binding) from Maven Central into compat-tests/.cache/flume-1.11.0/lib/, and Spark's pull sink
# (SparkSink) with the few jars it needs on top of Flume into .../spark-sink/. The Rust crate
# sluice-flume-rpc runs a real Flume agent from these jars in its interop tests:
#
#   java -cp "$home/lib/*" org.apache.flume.node.Application -n a1 -f conf.properties
#   java -cp "$home/spark-sink/*:$home/lib/*" ...   (for org.apache.spark.streaming.flume.sink.SparkSink)
#
# lib/ also holds Flume's Kafka sink (flume-ng-kafka-sink with its kafka-clients 2.7.2), which
# connectors/flume/bench/run.sh runs against sluice-flume's.
#
# Idempotent: a marker file records a finished install, so a re-run returns at once.
set -euo pipefail

FLUME_VERSION="1.11.0"
# Maven Central has no spark-streaming-flume-sink 2.4.8; 2.4.7 is the last one published, and
# the sink did not change between them.
SPARK_SINK_VERSION="2.4.7"
SCALA_VERSION="2.11.12"
# SparkSink was built with Spark 2.4's Avro 1.8.2: its Netty 3 server org.apache.avro.ipc.NettyServer
# (which Avro 1.11 moved) and generated classes that neither Avro 1.11 (AbstractMethodError in
# SpecificFixed) nor Flume 1.6's Avro 1.7 (IllegalAccessError on SpecificData) accept. Avro 1.8.2
# (core + ipc, with its Jackson 1 and paranamer) and Netty 3 sit before Flume's jars on the sink's
# classpath; the seq source and memory channel used with it don't touch Avro.
AVRO_LEGACY_VERSION="1.8.2"
JACKSON1_VERSION="1.9.13"
PARANAMER_VERSION="2.7"
NETTY3_VERSION="3.5.13.Final"
# Any current log4j2 2.x works as the binding (Flume 1.11 uses slf4j-api 1.7, hence
# log4j-slf4j-impl); it is there so the agent logs through our config, not slf4j's NOP.
LOG4J_VERSION="2.24.3"
# The marker's own revision: bumped when the jar set changes under the same versions, so an
# existing install is redone (2: Flume's Kafka sink added).
JAR_SET="2"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="$(cd "$here/.." && pwd)/.cache"
home="$cache/flume-$FLUME_VERSION"
libs="$home/lib"
spark="$home/spark-sink"
marker="$home/.installed"
stamp="$FLUME_VERSION $SPARK_SINK_VERSION $AVRO_LEGACY_VERSION $LOG4J_VERSION set-$JAR_SET"

if [[ -f "$marker" ]] && [[ "$(cat "$marker")" == "$stamp" ]]; then
    exit 0
fi

command -v java >/dev/null || { echo "install-flume.sh: java is not on PATH (apt-get install -y openjdk-17-jre-headless)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "install-flume.sh: mvn is not on PATH (apt-get install -y maven)" >&2; exit 1; }

echo "install-flume.sh: fetching Apache Flume $FLUME_VERSION jars into $home" >&2
mkdir -p "$home"
work="$(mktemp -d "$home/pom.XXXXXX")"
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/flume" "$work/spark"
cat >"$work/flume/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.sluice</groupId>
  <artifactId>flume-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.flume</groupId><artifactId>flume-ng-node</artifactId><version>$FLUME_VERSION</version></dependency>
    <dependency><groupId>org.apache.flume.flume-ng-sinks</groupId><artifactId>flume-ng-kafka-sink</artifactId><version>$FLUME_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
POM

# Only these, without their transitive dependencies: everything else SparkSink needs (Flume,
# Guava, commons-lang3) comes from Flume's own lib/.
cat >"$work/spark/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.sluice</groupId>
  <artifactId>spark-sink-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.spark</groupId><artifactId>spark-streaming-flume-sink_2.11</artifactId><version>$SPARK_SINK_VERSION</version></dependency>
    <dependency><groupId>org.scala-lang</groupId><artifactId>scala-library</artifactId><version>$SCALA_VERSION</version></dependency>
    <dependency><groupId>org.apache.avro</groupId><artifactId>avro</artifactId><version>$AVRO_LEGACY_VERSION</version></dependency>
    <dependency><groupId>org.apache.avro</groupId><artifactId>avro-ipc</artifactId><version>$AVRO_LEGACY_VERSION</version></dependency>
    <dependency><groupId>org.codehaus.jackson</groupId><artifactId>jackson-core-asl</artifactId><version>$JACKSON1_VERSION</version></dependency>
    <dependency><groupId>org.codehaus.jackson</groupId><artifactId>jackson-mapper-asl</artifactId><version>$JACKSON1_VERSION</version></dependency>
    <dependency><groupId>com.thoughtworks.paranamer</groupId><artifactId>paranamer</artifactId><version>$PARANAMER_VERSION</version></dependency>
    <dependency><groupId>io.netty</groupId><artifactId>netty</artifactId><version>$NETTY3_VERSION</version></dependency>
  </dependencies>
</project>
POM

rm -rf "$libs.tmp" "$spark.tmp"
mvn -q -B -Dstyle.color=never -f "$work/flume/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs.tmp"
mvn -q -B -Dstyle.color=never -f "$work/spark/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DexcludeTransitive=true -DoutputDirectory="$spark.tmp"
# Other slf4j bindings would fight log4j-slf4j-impl for the slf4j provider slot.
rm -f "$libs.tmp"/slf4j-reload4j-*.jar "$libs.tmp"/slf4j-log4j12-*.jar "$libs.tmp"/logback-classic-*.jar
rm -rf "$libs" "$spark"
mv "$libs.tmp" "$libs"
mv "$spark.tmp" "$spark"

# Warnings and errors, to stderr: tests keep the agent's stderr for their failure messages.
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
echo "install-flume.sh: $(ls "$libs" | wc -l) jars in $libs, $(ls "$spark" | wc -l) in $spark" >&2

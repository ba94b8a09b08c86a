#!/usr/bin/env bash
# Installs Apache Kafka 4.3.1 jars (tools, broker, clients, quiet log4j2 binding) from Maven
# Central into compat-tests/.cache/kafka-4.3.1/libs/. Idempotent: a marker file records a
# finished install, so a re-run returns at once.
set -euo pipefail

KAFKA_VERSION="4.3.1"
# Any current log4j2 2.x works as the binding; it is only there so the tools log through our
# quiet config (errors only, stderr) instead of printing slf4j NOP warnings.
LOG4J_VERSION="2.24.3"
# Kafka 4.3 depends on slf4j-api 1.7.36, so the binding is log4j-slf4j-impl (slf4j 1.x), not
# log4j-slf4j2-impl.

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="$(cd "$here/.." && pwd)/.cache"
home="$cache/kafka-$KAFKA_VERSION"
libs="$home/libs"
marker="$home/.installed"

if [[ -f "$marker" ]] && [[ "$(cat "$marker")" == "$KAFKA_VERSION $LOG4J_VERSION" ]]; then
    exit 0
fi

command -v java >/dev/null || { echo "install-java.sh: java is not on PATH (apt-get install -y openjdk-17-jre-headless)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "install-java.sh: mvn is not on PATH (apt-get install -y maven)" >&2; exit 1; }

echo "install-java.sh: fetching Apache Kafka $KAFKA_VERSION jars into $libs" >&2
mkdir -p "$home"
work="$(mktemp -d "$home/pom.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cat >"$work/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.sluice</groupId>
  <artifactId>kafka-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-clients</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
POM

rm -rf "$libs.tmp"
mvn -q -B -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs.tmp"
# Other slf4j bindings would fight log4j-slf4j-impl for the slf4j provider slot.
rm -f "$libs.tmp"/slf4j-reload4j-*.jar "$libs.tmp"/slf4j-log4j12-*.jar "$libs.tmp"/logback-classic-*.jar
rm -rf "$libs"
mv "$libs.tmp" "$libs"

# Errors only, to stderr: the tools' stdout is what tests read.
cat >"$home/log4j2-quiet.yaml" <<'YAML'
Configuration:
  status: error
  Appenders:
    Console:
      name: STDERR
      target: SYSTEM_ERR
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: error
      AppenderRef:
        - ref: STDERR
YAML
cat >"$home/log4j2-quiet.properties" <<'PROPS'
status = error
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = STDERR
PROPS

echo "$KAFKA_VERSION $LOG4J_VERSION" >"$marker"
echo "install-java.sh: $(ls "$libs" | wc -l) jars in $libs" >&2

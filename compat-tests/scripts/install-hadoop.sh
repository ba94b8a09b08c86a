#!/usr/bin/env bash
# Installs Hadoop 3.3.6's HDFS with its test classes (MiniDFSCluster) from Maven Central into
# compat-tests/.cache/hadoop-3.3.6/lib/, and compiles the small launcher
# compat-tests/scripts/minidfs/MiniDfs.java into .../classes/. The sluice-flume hdfs sink
# tests start a one-datanode HDFS from them with start-minidfs.sh, and read files back with
# Hadoop's own `fs -text` through hadoop-fs.sh (which needs the empty core-site.xml in
# .../conf/).
#
# Idempotent: a marker file records a finished install, so a re-run returns at once.
set -euo pipefail

HADOOP_VERSION="3.3.6"
# Hadoop's test classes use JUnit 4 and Mockito at class-load time in a few places.
JUNIT_VERSION="4.13.2"
MOCKITO_VERSION="2.28.2"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="$(cd "$here/.." && pwd)/.cache"
home="$cache/hadoop-$HADOOP_VERSION"
libs="$home/lib"
classes="$home/classes"
marker="$home/.installed"
src="$here/minidfs/MiniDfs.java"
# Any change to this script or the launcher re-runs the install (the jars stay cached).
stamp="$HADOOP_VERSION $(cat "$src" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)"

if [[ -f "$marker" ]] && [[ "$(cat "$marker")" == "$stamp" ]]; then
    exit 0
fi

as_root() {
    if [[ "$(id -u)" == 0 ]]; then "$@"; else sudo "$@"; fi
}

command -v java >/dev/null || { echo "install-hadoop.sh: java is not on PATH (run install-java.sh, or apt-get install -y openjdk-17-jdk-headless)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "install-hadoop.sh: mvn is not on PATH (apt-get install -y maven)" >&2; exit 1; }
if ! command -v javac >/dev/null; then
    echo "install-hadoop.sh: installing a JDK for javac" >&2
    as_root apt-get update -q
    as_root apt-get install -y -q openjdk-17-jdk-headless
fi

mkdir -p "$home"
if [[ ! -f "$home/.jars-$HADOOP_VERSION" ]]; then
    echo "install-hadoop.sh: fetching Hadoop $HADOOP_VERSION HDFS jars into $libs" >&2
    work="$(mktemp -d "$home/pom.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    cat >"$work/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.sluice</groupId>
  <artifactId>hadoop-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.hadoop</groupId><artifactId>hadoop-common</artifactId><version>$HADOOP_VERSION</version></dependency>
    <dependency><groupId>org.apache.hadoop</groupId><artifactId>hadoop-common</artifactId><version>$HADOOP_VERSION</version><type>test-jar</type></dependency>
    <dependency><groupId>org.apache.hadoop</groupId><artifactId>hadoop-hdfs</artifactId><version>$HADOOP_VERSION</version></dependency>
    <dependency><groupId>org.apache.hadoop</groupId><artifactId>hadoop-hdfs</artifactId><version>$HADOOP_VERSION</version><type>test-jar</type></dependency>
    <dependency><groupId>org.apache.hadoop</groupId><artifactId>hadoop-hdfs-client</artifactId><version>$HADOOP_VERSION</version></dependency>
    <dependency><groupId>junit</groupId><artifactId>junit</artifactId><version>$JUNIT_VERSION</version></dependency>
    <dependency><groupId>org.mockito</groupId><artifactId>mockito-core</artifactId><version>$MOCKITO_VERSION</version></dependency>
  </dependencies>
</project>
POM
    rm -rf "$libs.tmp"
    mvn -q -B -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$libs.tmp"
    rm -rf "$libs"
    mv "$libs.tmp" "$libs"
    touch "$home/.jars-$HADOOP_VERSION"
fi

mkdir -p "$home/conf"
echo '<?xml version="1.0"?><configuration></configuration>' >"$home/conf/core-site.xml"

rm -rf "$classes"
mkdir -p "$classes"
javac -nowarn -d "$classes" -cp "$libs/*" "$src"

echo "$stamp" >"$marker"
echo "install-hadoop.sh: $(ls "$libs" | wc -l) jars in $libs; MiniDfs launcher in $classes" >&2

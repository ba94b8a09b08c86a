#!/usr/bin/env bash
# Starts a one-datanode HDFS (Hadoop's MiniDFSCluster, installed by install-hadoop.sh) with its
# data under the directory given as the only argument. Prints "namenode port N" on stdout when
# it is up, and runs until its standard input is closed. Hadoop's own logging goes to stderr.
set -euo pipefail

HADOOP_VERSION="3.3.6"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
home="$(cd "$here/.." && pwd)/.cache/hadoop-$HADOOP_VERSION"

if [[ $# -ne 1 ]]; then
    echo "usage: start-minidfs.sh <base dir>" >&2
    exit 2
fi
if [[ ! -f "$home/.installed" ]]; then
    echo "start-minidfs.sh: Hadoop $HADOOP_VERSION is not installed: run compat-tests/scripts/install-hadoop.sh" >&2
    exit 1
fi
mkdir -p "$1"
exec java -Xmx512m -cp "$home/classes:$home/lib/*" MiniDfs "$1"

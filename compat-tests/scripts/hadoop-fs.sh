#!/usr/bin/env bash
# Hadoop 3.3.6's `hadoop fs` (FsShell) from the jars install-hadoop.sh fetched, e.g.
#   hadoop-fs.sh -text file:///tmp/x/FlumeData.1700000000000
# Hadoop's log noise goes to stderr.
set -euo pipefail

HADOOP_VERSION="3.3.6"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
home="$(cd "$here/.." && pwd)/.cache/hadoop-$HADOOP_VERSION"
if [[ ! -f "$home/.installed" ]]; then
    echo "hadoop-fs.sh: Hadoop $HADOOP_VERSION is not installed: run compat-tests/scripts/install-hadoop.sh" >&2
    exit 1
fi
exec java -Xmx256m -cp "$home/conf:$home/lib/*" org.apache.hadoop.fs.FsShell "$@"

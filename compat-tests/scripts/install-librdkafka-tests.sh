#!/usr/bin/env bash
# Builds librdkafka's own regression test runner (tests/test-runner) from the librdkafka source
# that the rdkafka-sys crate vendors (the version Cargo.lock pins), in
# compat-tests/.cache/librdkafka-tests/src. The transaction tests run some of its tests against
# a broker through a test.conf (see compat-tests/tests/it/transactions/librdkafka_suite.rs).
#
# Needs the crate's source in the cargo registry (any `cargo build` of the workspace fetches
# it) plus gcc, g++, make, zlib and libcurl headers (install-build-deps.sh). About 90 s on two
# cores. Not part of install-all.sh: the tests that use it are opt-in. Idempotent: a marker
# file holding the crate version and the patch level makes a re-run return at once.
#
# One patch: 0103-transactions.c creates its topics with replication factor 3, for
# librdkafka's three-broker test cluster; the brokers under test here are single nodes, so
# those topics get replication factor 1.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
home="$root/compat-tests/.cache/librdkafka-tests"

# rdkafka-sys's version as Cargo.lock pins it, e.g. 4.10.0+2.12.1 (librdkafka 2.12.1).
version="$(awk '/^name = "rdkafka-sys"$/ { getline; gsub(/"/, "", $3); print $3 }' "$root/Cargo.lock")"
[[ -n "$version" ]] || { echo "install-librdkafka-tests.sh: no rdkafka-sys in Cargo.lock" >&2; exit 1; }
stamp="$version rf1"

if [[ -x "$home/src/tests/test-runner" ]] && [[ -f "$home/.installed" ]] && [[ "$(cat "$home/.installed")" == "$stamp" ]]; then
    exit 0
fi

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
vendored="$(ls -d "$cargo_home"/registry/src/*/"rdkafka-sys-$version"/librdkafka 2>/dev/null | head -n 1)"
[[ -d "$vendored" ]] || {
    echo "install-librdkafka-tests.sh: rdkafka-sys-$version is not in $cargo_home/registry (run cargo fetch)" >&2
    exit 1
}

echo "install-librdkafka-tests.sh: building librdkafka $version's test-runner in $home/src" >&2
mkdir -p "$home"
rm -rf "$home/src"
cp -R "$vendored" "$home/src"
chmod -R u+w "$home/src"
cd "$home/src"
rf3='test_create_topic_wait_exists\((.*), 3, 5000\);'
count="$(grep -cE "$rf3" tests/0103-transactions.c || true)"
[[ "$count" == 7 ]] || {
    echo "install-librdkafka-tests.sh: expected 7 topics with replication factor 3 in 0103, found $count" >&2
    exit 1
}
sed -i -E "s/$rf3/test_create_topic_wait_exists(\1, 1, 5000);/" tests/0103-transactions.c
# SSL and GSSAPI are not needed for PLAINTEXT tests; the bundled LZ4 avoids one more -dev package.
./configure --disable-gssapi --disable-ssl --disable-lz4-ext >"$home/configure.log" 2>&1 ||
    { cat "$home/configure.log" >&2; exit 1; }
make -j2 libs >"$home/make.log" 2>&1 || { tail -n 40 "$home/make.log" >&2; exit 1; }
make -C tests -j2 build >>"$home/make.log" 2>&1 || { tail -n 40 "$home/make.log" >&2; exit 1; }
echo "$stamp" >"$home/.installed"

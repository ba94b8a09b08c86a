#!/usr/bin/env bash
# Builds the Go clients of the transaction tests (compat-tests/tests/it/transactions/), from
# the Go module proxy into compat-tests/.cache/gomod:
#
#   Sarama    compat-tests/go/sarama-txn (github.com/IBM/sarama, pinned by its go.sum),
#             built as compat-tests/.cache/go-clients/sarama-txn
#   kmsg      compat-tests/go/franz-endtxn-probe (franz-go's request types, pinned by its
#             go.sum), built as compat-tests/.cache/go-clients/franz-endtxn-probe
#   franz-go  the module source of github.com/twmb/franz-go at FRANZ_GO_VERSION, copied to
#             compat-tests/.cache/franz-go/src (the module cache is read-only), and its
#             pkg/kgo integration tests compiled as compat-tests/.cache/franz-go/kgo.test,
#             which the tests run against a broker with KGO_SEEDS, as franz-go's own CI does
#             with `go test ./...`; .installed holds the version
#
# Idempotent: marker files record finished steps (each program's keyed by its sources),
# so a re-run returns at once.
set -euo pipefail

# The newest franz-go release on the Go proxy when this was written (2026-12-05).
FRANZ_GO_VERSION="v1.22.3"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
compat="$(cd "$here/.." && pwd)"
cache="$compat/.cache"
export GOMODCACHE="$cache/gomod"
# The version pins live in go.mod/go.sum; the build must not change them.
export GOFLAGS="-mod=readonly -buildvcs=false"

need_go() {
    command -v go >/dev/null || { echo "install-go.sh: go is not on PATH" >&2; exit 1; }
}

# ---- Programs in compat-tests/go/ ----------------------------------------------------------
# Each one is built as compat-tests/.cache/go-clients/NAME, keyed by its sources.
out="$cache/go-clients"
for prog in "$compat"/go/*/; do
    name="$(basename "$prog")"
    stamp="$(cat "$prog/go.mod" "$prog/go.sum" "$prog"/*.go | sha256sum | cut -c1-16)"
    if [[ ! -x "$out/$name" ]] || [[ ! -f "$out/.$name" ]] || [[ "$(cat "$out/.$name")" != "$stamp" ]]; then
        need_go
        echo "install-go.sh: building compat-tests/go/$name into $out/$name" >&2
        mkdir -p "$out"
        (cd "$prog" && go build -o "$out/$name.tmp" .)
        mv "$out/$name.tmp" "$out/$name"
        echo "$stamp" >"$out/.$name"
    fi
done

# ---- franz-go -------------------------------------------------------------------------------
home="$cache/franz-go"
if [[ ! -x "$home/kgo.test" ]] || [[ ! -f "$home/.installed" ]] || [[ "$(cat "$home/.installed")" != "$FRANZ_GO_VERSION" ]]; then
    need_go
    echo "install-go.sh: franz-go $FRANZ_GO_VERSION pkg/kgo tests into $home/kgo.test" >&2
    # Outside any module, `go mod download MODULE@VERSION` fetches one module and prints where
    # it landed in the module cache.
    src="$(cd "$cache" && GOFLAGS=-mod=mod go mod download -json "github.com/twmb/franz-go@$FRANZ_GO_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [[ -d "$src" ]] || { echo "install-go.sh: franz-go $FRANZ_GO_VERSION did not download" >&2; exit 1; }
    mkdir -p "$home"
    rm -rf "$home/src" "$home/kgo.test.tmp"
    cp -R "$src" "$home/src"
    chmod -R u+w "$home/src"
    (cd "$home/src" && go test -c -o "$home/kgo.test.tmp" ./pkg/kgo)
    mv "$home/kgo.test.tmp" "$home/kgo.test"
    echo "$FRANZ_GO_VERSION" >"$home/.installed"
fi

#!/usr/bin/env bash
# Builds the Sluice container image and checks it with a real Kafka client (kcat) through
# a published port:
#
#   1. the image is under 30 MB, runs as uid 10001 and carries the HEALTHCHECK;
#   2. a broker started with the environment block of docker/docker-compose.yml (Apache
#      Kafka's single-node example) advertises the published address, takes keyed records
#      and gives them back byte for byte, to a partition reader and to a consumer group;
#   3. the HEALTHCHECK passes, and `sluice health` fails against a port nobody listens on;
#   4. with the image's defaults, data written to the /var/lib/sluice volume outlives
#      the container.
#
# Engines: docker when its daemon answers; otherwise podman with the flags these machines
# need (shared docs: CONTAINERS.md), installed from Debian's packages when missing.
# No image is pulled: the base image is made with debootstrap and imported, and the binary
# is built on the host (`cargo build --release --bin sluice`) and copied in by a variant of
# docker/Dockerfile whose `build` stage is swapped for a COPY; every later stage is the
# file's own. `--full` builds docker/Dockerfile as it is instead, build stage included: that
# needs rust:1-bookworm (pulled, or a local image of that name) and crates.io.
#
# Environment:
#   CONTAINER_ENGINE=docker|podman   use this engine only
#   SLUICE_PODMAN_FLAGS="..."        global podman flags (default: CONTAINERS.md's)
#
# The image is left behind as localhost/sluice:test; containers and volumes are removed.
#
# Exit status: 0 passed, 1 failed, 77 skipped because no container engine works here
# (automake's convention; a CI step should treat 77 as "not run", not as success).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
CACHE=$HERE/.cache
IMAGE=localhost/sluice:test
BASE_IMAGE=localhost/debian:bookworm-slim
MAX_IMAGE_BYTES=30000000
EXIT_SKIP=77
# Upper bound for any one wait (broker start, consumer group join, health).
DEADLINE_SECS=60

log() { printf 'docker/test.sh: %s\n' "$*"; }
skip() {
    log "SKIPPED: $*"
    echo "0 passed, 0 failed, 1 skipped"
    exit "$EXIT_SKIP"
}
passed=0
ok() {
    passed=$((passed + 1))
    log "ok: $*"
}
fail() {
    log "FAILED: $*"
    echo "$passed passed, 1 failed"
    exit 1
}

full=0
for arg in "$@"; do
    case $arg in
        --full) full=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "usage: $0 [--full]" >&2
            exit 2
            ;;
    esac
done

mkdir -p "$CACHE"

# ---- tools ------------------------------------------------------------------------------

# apt_install PKG...: install the Debian packages given, running `apt-get update` only
# when the first attempt fails (a fresh machine has no package lists).
apt_install() {
    [[ $# -gt 0 ]] || return 0
    if ! command -v apt-get >/dev/null || [[ $(id -u) -ne 0 ]]; then
        log "cannot install $* (needs root and apt-get)"
        return 1
    fi
    log "installing $* from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "$@" >"$CACHE/apt.log" 2>&1 && return 0
    if ! { apt-get update -q && apt-get install -y -q "$@"; } >>"$CACHE/apt.log" 2>&1; then
        tail -5 "$CACHE/apt.log"
        return 1
    fi
}

# need CMD:PKG...: install the packages of the commands that are missing.
need() {
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
    done
    apt_install "${missing[@]}"
}

ENGINE=()
LIMIT_FLAGS=()
RUN_FLAGS=()
BUILD_FLAGS=()
# Flags for the build that must not pull (podman's --pull=never; Docker uses a local image
# before pulling anyway, and its --pull is a plain switch).
LOCAL_BUILD_FLAGS=()
engine_name=

choose_engine() {
    local want=${CONTAINER_ENGINE:-}
    if [[ $want != podman ]] && command -v docker >/dev/null && docker info >/dev/null 2>&1; then
        ENGINE=(docker)
        engine_name=docker
        # Docker runs the image's HEALTHCHECK on a timer; run it often for the test.
        RUN_FLAGS=(--health-interval 2s)
        return 0
    fi
    if [[ $want == docker ]]; then
        skip "CONTAINER_ENGINE=docker, but no docker daemon answers here"
    fi
    if [[ -n $want && $want != podman ]]; then
        fail "CONTAINER_ENGINE must be docker or podman, not '$want'"
    fi
    if command -v docker >/dev/null; then
        log "docker is installed but no daemon answers; trying podman"
    fi
    need podman:podman runc:runc || skip "no docker daemon, and podman cannot be installed"
    # CONTAINERS.md: vfs storage (no overlay in the sandbox), runc and cgroupfs (hybrid
    # cgroups, no systemd), and ulimits that fit under the sandbox's own.
    # shellcheck disable=SC2206
    ENGINE=(podman ${SLUICE_PODMAN_FLAGS:---storage-driver=vfs --runtime runc --cgroup-manager cgroupfs})
    engine_name=podman
    LIMIT_FLAGS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
    # The image's HEALTHCHECK stays; its timer would need systemd, so it is run by hand.
    RUN_FLAGS=("${LIMIT_FLAGS[@]}" --health-interval disable)
    # Docker format: the OCI image format has no HEALTHCHECK.
    BUILD_FLAGS=("${LIMIT_FLAGS[@]}" --format docker)
    LOCAL_BUILD_FLAGS=(--pull=never)
    if ! "${ENGINE[@]}" info >"$CACHE/engine-info.log" 2>&1; then
        tail -5 "$CACHE/engine-info.log"
        skip "podman is installed but does not work here ('${ENGINE[*]} info' failed)"
    fi
}

# Makes $BASE_IMAGE from Debian's packages unless the engine has it.
ensure_base_image() {
    if "${ENGINE[@]}" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        return 0
    fi
    need debootstrap:debootstrap || skip "cannot install debootstrap to make $BASE_IMAGE"
    local rootfs=$CACHE/rootfs-bookworm
    if [[ ! -f $rootfs/.complete ]]; then
        rm -rf "$rootfs"
        log "debootstrap bookworm (minbase) into ${rootfs#"$REPO"/}"
        if ! debootstrap --variant=minbase bookworm "$rootfs" >"$CACHE/debootstrap.log" 2>&1; then
            tail -5 "$CACHE/debootstrap.log"
            skip "debootstrap failed, so there is no base image"
        fi
        touch "$rootfs/.complete"
    fi
    log "importing ${rootfs#"$REPO"/} as $BASE_IMAGE"
    tar -C "$rootfs" --exclude=./.complete -c . | "${ENGINE[@]}" import - "$BASE_IMAGE" >/dev/null
}

choose_engine
log "engine: ${ENGINE[*]}"
ensure_base_image
# The last thing that could make the engine unusable here: can it run a container at all?
if ! "${ENGINE[@]}" run --rm "${LIMIT_FLAGS[@]}" "$BASE_IMAGE" true >"$CACHE/probe.log" 2>&1; then
    tail -5 "$CACHE/probe.log"
    skip "$engine_name cannot run a container here"
fi
need kcat:kcat python3:python3 objcopy:binutils ||
    fail "kcat, python3 and objcopy are needed (Debian: kcat python3 binutils)"

# The compose files against the Compose schema, where a compose tool is at hand (neither
# needs a daemon for this).
compose=()
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null; then
    compose=(docker-compose)
fi
if [[ ${#compose[@]} -gt 0 ]]; then
    for f in docker-compose.yml docker-compose.pipeline.yml; do
        "${compose[@]}" -f "$HERE/$f" config -q || fail "${compose[*]} config: docker/$f is invalid"
    done
    ok "${compose[*]} config accepts docker-compose.yml and docker-compose.pipeline.yml"
else
    log "no docker compose or docker-compose here: the compose files' schema is not checked"
fi

# ---- containers, cleaned up on every exit ------------------------------------------------

CONTAINERS=()
VOLUMES=()
cleanup() {
    local status=$? c
    for c in "${CONTAINERS[@]}"; do
        if [[ $status -ne 0 && $status -ne $EXIT_SKIP ]]; then
            log "last log lines of $c:"
            "${ENGINE[@]}" logs --tail 30 "$c" 2>&1 | sed 's/^/    /' || true
        fi
        "${ENGINE[@]}" rm -f -v "$c" >/dev/null 2>&1 || true
    done
    for c in "${VOLUMES[@]}"; do
        "${ENGINE[@]}" volume rm -f "$c" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT

# ---- image --------------------------------------------------------------------------------

"${ENGINE[@]}" rmi -f "$IMAGE" >/dev/null 2>&1 || true
before=$("${ENGINE[@]}" images -a -q --no-trunc)
# Podman keeps each stage's image (200 MB to 1 GB each with vfs storage); drop the ones
# this build made, newest first, so that their untagged parents go with them.
drop_stage_images() {
    local final id
    final=$("${ENGINE[@]}" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null) || final=none
    for id in $("${ENGINE[@]}" images -a -q --no-trunc); do
        [[ ${id#sha256:} == "${final#sha256:}" ]] && continue
        grep -qF "$id" <<<"$before" && continue
        "${ENGINE[@]}" rmi "$id" >/dev/null 2>&1 || true
    done
}
build_failed() {
    tail -30 "$CACHE/build.log"
    drop_stage_images
    fail "image build (log: ${CACHE#"$REPO"/}/build.log)"
}
if [[ $full -eq 1 ]]; then
    log "building $IMAGE from docker/Dockerfile as it is (context: the repository root)"
    "${ENGINE[@]}" build "${BUILD_FLAGS[@]}" -f "$HERE/Dockerfile" -t "$IMAGE" "$REPO" \
        >"$CACHE/build.log" 2>&1 || build_failed
else
    log "cargo build --release --bin sluice"
    (cd "$REPO" && cargo build --release --bin sluice) || fail "cargo build"
    ctx=$CACHE/context
    rm -rf "$ctx"
    mkdir -p "$ctx/docker"
    # The Dockerfile's build stage builds without debug info; strip the host's copy instead.
    objcopy --strip-all "$REPO/target/release/sluice" "$ctx/sluice"
    cp "$HERE/rootfs.sh" "$ctx/docker/rootfs.sh"
    # Swap the `build` stage (everything from its FROM to the next FROM) for one that copies
    # the host-built binary to where the real stage installs it; keep all later stages.
    awk -v base="$BASE_IMAGE" '
        /^FROM rust:[^ ]* AS build$/ {
            print "FROM " base " AS build"
            print "COPY sluice /out/sluice"
            skip = 1; swapped = 1; next
        }
        skip && /^FROM / { skip = 0 }
        !skip { print }
        END { if (!swapped) exit 1 }
    ' "$HERE/Dockerfile" >"$ctx/Dockerfile" ||
        fail "docker/Dockerfile has no 'FROM rust:... AS build' stage to swap"
    log "building $IMAGE from docker/Dockerfile with a host-built binary"
    "${ENGINE[@]}" build "${BUILD_FLAGS[@]}" "${LOCAL_BUILD_FLAGS[@]}" -f "$ctx/Dockerfile" -t "$IMAGE" "$ctx" \
        >"$CACHE/build.log" 2>&1 || build_failed
fi
drop_stage_images

size=$("${ENGINE[@]}" image inspect --format '{{.Size}}' "$IMAGE")
log "image $IMAGE: $size bytes ($((size / 1000 / 1000)) MB)"
[[ $size -lt $MAX_IMAGE_BYTES ]] || fail "image is $size bytes, the target is under $MAX_IMAGE_BYTES"
ok "image size $size bytes < $MAX_IMAGE_BYTES"

user=$("${ENGINE[@]}" image inspect --format '{{.Config.User}}' "$IMAGE")
[[ $user == 10001:10001 ]] || fail "image user is '$user', expected 10001:10001"
health_cmd=$("${ENGINE[@]}" image inspect --format '{{json .Config.Healthcheck.Test}}' "$IMAGE")
[[ $health_cmd == '["CMD","/usr/local/bin/sluice","health"]' ]] ||
    fail "image HEALTHCHECK is $health_cmd"
ok "image runs as $user and has HEALTHCHECK $health_cmd"

# ---- helpers ---------------------------------------------------------------------------------

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# quietly CMD...: run an engine command, showing its output only when it fails. Podman
# without systemd logs an error about the health check timer on every run, stop and rm,
# and goes on: that is expected here, since the test runs the HEALTHCHECK by hand.
quietly() {
    "$@" >"$CACHE/engine.log" 2>&1 || { cat "$CACHE/engine.log"; return 1; }
}

# start NAME PORT ARGS...: run the image detached with 127.0.0.1:PORT published to 9092.
start() {
    local name=$1 port=$2
    shift 2
    CONTAINERS+=("$name")
    "${ENGINE[@]}" rm -f -v "$name" >/dev/null 2>&1 || true
    quietly "${ENGINE[@]}" run -d --name "$name" "${RUN_FLAGS[@]}" -p "127.0.0.1:$port:9092" "$@" ||
        fail "cannot start container $name"
}

# wait_ready NAME BOOTSTRAP: poll Metadata until the broker answers, or fail at the deadline.
wait_ready() {
    local name=$1 bootstrap=$2 end=$((SECONDS + DEADLINE_SECS))
    until kcat -b "$bootstrap" -L -m 2 >/dev/null 2>&1; do
        [[ $("${ENGINE[@]}" inspect --format '{{.State.Running}}' "$name") == true ]] ||
            fail "container $name exited"
        ((SECONDS < end)) || fail "broker in $name did not answer on $bootstrap within ${DEADLINE_SECS}s"
        sleep 0.5
    done
}

# Keyed records, one per line as `key:value`: UTF-8, tabs, repeated keys, a ':' in a value.
records() {
    printf '%s\n' \
        'user-1:login ok' \
        'user-2:héllo wörld ✓' \
        $'user-1:tab\tseparated\tvalue' \
        'user-3:{"json": [1, 2, 3]}' \
        'user-2:value:with:colons'
}

# produce BOOTSTRAP TOPIC: write records() with acks=all, failing on any delivery error.
produce() {
    records | kcat -b "$1" -P -t "$2" -p 0 -K : -X acks=all 2>"$CACHE/produce.err" ||
        { cat "$CACHE/produce.err"; fail "kcat produce to $2 via $1"; }
}

# consume_check WHAT EXPECTED_FILE KCAT_ARGS...: consume to end of partition, compare bytes.
consume_check() {
    local what=$1 expected=$2 got=$CACHE/consumed.out
    shift 2
    timeout "$DEADLINE_SECS" kcat "$@" -e -q -f '%k:%s\n' >"$got" 2>"$CACHE/consume.err" ||
        { cat "$CACHE/consume.err"; fail "$what: kcat consume"; }
    if ! cmp -s "$expected" "$got"; then
        diff <(od -c "$expected") <(od -c "$got") | head -20 || true
        fail "$what: consumed records differ from the produced ones"
    fi
    ok "$what: $(wc -l <"$got") keyed records back, byte for byte"
}

expected=$CACHE/expected.out
records >"$expected"

# ---- 1. Kafka's single-node compose environment ------------------------------------------------

# The `environment:` block of the broker service in docker/docker-compose.yml, as KEY=VALUE.
compose_env=()
while IFS= read -r line; do
    compose_env+=("$line")
done < <(awk '
    /^    environment:$/ { env = 1; next }
    env && /^      [A-Za-z_][A-Za-z0-9_]*:/ {
        key = $1; sub(/:$/, "", key)
        val = $0; sub(/^ *[A-Za-z0-9_]*: */, "", val)
        if (val ~ /^'\''.*'\''$/) val = substr(val, 2, length(val) - 2)
        print key "=" val; next
    }
    env { env = 0 }
' "$HERE/docker-compose.yml")
[[ ${#compose_env[@]} -ge 10 ]] || fail "could not read the environment block of docker-compose.yml"

port=$(free_port)
bootstrap=127.0.0.1:$port
env_args=()
for kv in "${compose_env[@]}"; do
    # The host listener is published on a free port here rather than 9092; advertise that.
    if [[ $kv == KAFKA_ADVERTISED_LISTENERS=* ]]; then
        [[ $kv == *PLAINTEXT_HOST://localhost:9092* ]] || fail "unexpected $kv in docker-compose.yml"
        kv=${kv//PLAINTEXT_HOST:\/\/localhost:9092/PLAINTEXT_HOST://$bootstrap}
    fi
    env_args+=(-e "$kv")
done
log "phase 1: the compose file's ${#compose_env[@]} environment variables, published on $bootstrap"
ctr=sluice-test-compose-$$
start "$ctr" "$port" --hostname broker "${env_args[@]}" "$IMAGE"
wait_ready "$ctr" "$bootstrap"
ok "broker answers Metadata on $bootstrap"

# Clients reconnect to what Metadata advertises, so it must be the published address.
meta=$(kcat -b "$bootstrap" -L -m 5 2>&1)
grep -q "broker 1 at $bootstrap" <<<"$meta" ||
    { echo "$meta" | head -5; fail "Metadata does not advertise $bootstrap (PLAINTEXT_HOST)"; }
ok "Metadata advertises broker 1 at $bootstrap"

topic=docker-test
produce "$bootstrap" "$topic"
consume_check "partition read" "$expected" -b "$bootstrap" -C -t "$topic" -p 0 -o beginning
consume_check "consumer group" "$expected" -b "$bootstrap" -G docker-test-group \
    -X auto.offset.reset=earliest "$topic"

# The HEALTHCHECK exactly as the image declares it.
if [[ $engine_name == podman ]]; then
    out=$("${ENGINE[@]}" healthcheck run "$ctr" 2>&1) || fail "podman healthcheck run: $out"
    ok "podman healthcheck run: ${out:-healthy}"
else
    end=$((SECONDS + DEADLINE_SECS))
    until [[ $(docker inspect --format '{{.State.Health.Status}}' "$ctr") == healthy ]]; do
        ((SECONDS < end)) || fail "docker never reported $ctr healthy"
        sleep 1
    done
    ok "docker reports $ctr healthy"
fi
out=$("${ENGINE[@]}" exec "$ctr" sluice health 2>&1) || fail "sluice health inside the container: $out"
# A health check that could never fail would prove nothing.
if "${ENGINE[@]}" exec "$ctr" sluice health --bootstrap 127.0.0.1:1 --timeout-ms 2000 >/dev/null 2>&1; then
    fail "sluice health succeeds against a closed port"
fi
ok "sluice health exits 0 against the broker ($out) and non-zero against a closed port"

# ---- 2. image defaults: data in the /var/lib/sluice volume -------------------------------------

port=$(free_port)
bootstrap=127.0.0.1:$port
vol=sluice-test-data-$$
VOLUMES+=("$vol")
"${ENGINE[@]}" volume create "$vol" >/dev/null
log "phase 2: image defaults, volume $vol at /var/lib/sluice, published on $bootstrap"
defaults=(-v "$vol:/var/lib/sluice" -e KAFKA_LISTENERS=PLAINTEXT://:9092
    -e "KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://$bootstrap" "$IMAGE")
ctr=sluice-test-volume-$$
start "$ctr" "$port" "${defaults[@]}"
wait_ready "$ctr" "$bootstrap"
produce "$bootstrap" "$topic"
# SIGTERM, as `docker stop` and `docker compose down` send it: the broker is PID 1 and
# must shut down by itself (exit 0) rather than be killed when the stop timeout runs out.
quietly "${ENGINE[@]}" stop -t 20 "$ctr" || fail "stop $ctr"
code=$("${ENGINE[@]}" inspect --format '{{.State.ExitCode}}' "$ctr")
[[ $code == 0 ]] || fail "broker exited with status $code on SIGTERM"
ok "broker stops on SIGTERM with exit status 0"
quietly "${ENGINE[@]}" rm -f -v "$ctr"
ctr=sluice-test-volume2-$$
start "$ctr" "$port" "${defaults[@]}"
wait_ready "$ctr" "$bootstrap"
consume_check "after replacing the container" "$expected" -b "$bootstrap" -C -t "$topic" -p 0 -o beginning

log "PASSED with $engine_name; image $IMAGE is $size bytes"
echo "$passed passed, 0 failed"

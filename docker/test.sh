#!/usr/bin/env bash
# Builds the Sluice container images and checks them with real clients (kcat, redis-cli):
#
#   1. the broker image is under 30 MB, runs as uid 10001 and carries the HEALTHCHECK;
#   2. a broker started with the environment block of docker/docker-compose.yml (Apache
#      Kafka's single-node example) advertises the published address, takes keyed records
#      and gives them back byte for byte, to a partition reader and to a consumer group;
#   3. the HEALTHCHECK passes, and `sluice health` fails against a port nobody listens on;
#   4. with the image's defaults, data written to the /var/lib/sluice volume outlives
#      the container;
#   5. the connectors image (`--target connectors`: sluice-flume and sluice-spark) runs as
#      uid 10001 and has `tail`, and every flag in the commands of
#      docker/docker-compose.pipeline.yml is one its binaries take;
#   6. the seed pipeline of docker/docker-compose.pipeline.yml runs in containers on one
#      network, each service with the compose file's command, environment, ports and
#      volumes, started in its depends_on order (waiting for service_healthy as compose
#      does): the app's loop writes lines, the test appends known ones, and Redis ends up
#      with exactly the word counts of every line in the log, the offsets stored beside
#      them count each line once, and the topic app-lines holds the log's lines;
#   7. the entrypoint: `IMAGE --help` and `IMAGE health` reach sluice, `IMAGE sh -c ...` runs
#      busybox's sh as uid 10001 with [, sleep, bash and a sourceable bash-config, and
#      SIGTERM ends the broker cleanly when a start script started it, either way the
#      Testcontainers modules do (through the entrypoint, or with `sh` as the entrypoint);
#   8. Testcontainers' Kafka modules (Python default and KRaft modes, Java, Go; installed by
#      compat-tests/scripts/install-testcontainers.sh, programs in docker/testcontainers/)
#      start the image through the engine's Docker API (podman: `podman system service`),
#      each on random host ports, and round-trip keyed records through the mapped port; the
#      start times are logged;
#   9. Apache Kafka's single-node ssl and sasl_plaintext examples (docker/docker-compose.ssl.yml
#      and docker/docker-compose.sasl.yml: Kafka's environment blocks, JKS keystores and a
#      JAAS file made by docker/secrets.sh with openssl and keytool) start from the image;
#      kcat and the Java console producer and consumer (Apache Kafka 4.3.1) round-trip
#      records over SSL with client certificates and over SASL PLAIN, and a client without
#      a certificate or with a wrong password is refused.
#
# The compose files are checked with `docker compose config`, `docker-compose config` or
# `podman compose config`, whichever works, and always read with python3's yaml module
# (the pipeline is run from what it reads).
#
# Engines: docker when its daemon answers; otherwise podman with the flags these machines
# need (shared docs: CONTAINERS.md), installed from Debian's packages when missing.
# No image is pulled: the base image is made with debootstrap and imported, and the
# binaries are built on the host, each with the `cargo build` command of its Dockerfile
# stage (`build`: the broker; `build-connectors`: sluice-flume and sluice-spark), and
# copied in by a variant of docker/Dockerfile whose two rust stages are swapped for COPYs;
# every other stage is the file's own. `--full` builds docker/Dockerfile as it is instead,
# build stages included: that needs rust:1-bookworm (pulled, or a local image of that name)
# and crates.io. The pipeline's stand-ins for images it would pull: the `app` service's
# shell loop (busybox) runs in the connectors image as root, and `redis` is an image made
# FROM scratch of the host's own redis-server and redis-cli and the libraries they load.
#
# Environment:
#   CONTAINER_ENGINE=docker|podman   use this engine only
#   SLUICE_PODMAN_FLAGS="..."        global podman flags (default: CONTAINERS.md's)
#
# The images are left behind as localhost/sluice:test, localhost/sluice-connectors:test and
# localhost/sluice-test-redis:test; containers, volumes and networks are removed.
#
# Exit status: 0 passed, 1 failed, 77 skipped because no container engine works here
# (automake's convention; a CI step should treat 77 as "not run", not as success).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
CACHE=$HERE/.cache
IMAGE=localhost/sluice:test
CONN_IMAGE=localhost/sluice-connectors:test
REDIS_IMAGE=localhost/sluice-test-redis:test
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
    # Docker format: the OCI image format has no HEALTHCHECK. --layers=false commits each
    # stage once rather than once per instruction: with vfs storage every layer is a full
    # copy of the stage's filesystem (about 220 MB for the connectors image).
    BUILD_FLAGS=("${LIMIT_FLAGS[@]}" --format docker --layers=false)
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
need kcat:kcat python3:python3 objcopy:binutils redis-server:redis-server redis-cli:redis-tools curl:curl ||
    fail "kcat, python3, objcopy, redis and curl are needed (Debian: kcat python3 binutils redis-server curl)"
if ! python3 -c 'import yaml' 2>/dev/null; then
    { apt_install python3-yaml && python3 -c 'import yaml'; } ||
        fail "python3's yaml module is needed to read the compose files (Debian: python3-yaml)"
fi

# The compose files against the Compose schema, where a compose tool is at hand (none
# needs a daemon for this).
compose=()
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null; then
    compose=(docker-compose)
elif [[ $engine_name == podman ]] && "${ENGINE[@]}" compose version >/dev/null 2>&1; then
    compose=("${ENGINE[@]}" compose)
fi
if [[ ${#compose[@]} -gt 0 ]]; then
    for f in docker-compose.yml docker-compose.pipeline.yml docker-compose.ssl.yml docker-compose.sasl.yml; do
        "${compose[@]}" -f "$HERE/$f" config -q || fail "${compose[*]} config: docker/$f is invalid"
    done
    ok "${compose[*]} config accepts docker-compose.yml, .pipeline.yml, .ssl.yml and .sasl.yml"
else
    log "no docker compose, docker-compose or podman compose here: the compose files' schema is not checked"
fi

# COMPOSE_PY MODE FILE [SERVICE KEY]: reads a compose file with python3's yaml module.
#   check                 every service has an image or a build; depends_on names services
#   order                 the services in depends_on order (file order among equals)
#   get SERVICE KEY       the items of one key of a service, with compose's `$$` -> `$`:
#                         command (a string is split like a shell would), environment
#                         (KEY=VALUE), volumes, ports, image, hostname, depends_on
#                         ("NAME CONDITION"), healthcheck (its `test` list)
# Items are written NUL-terminated; errors name the file and the key.
COMPOSE_PY=$(
    cat <<'PY'
import shlex
import sys

import yaml

mode, path = sys.argv[1], sys.argv[2]
with open(path, encoding="utf-8") as f:
    doc = yaml.safe_load(f)
if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
    sys.exit(f"{path}: no `services` mapping")
services = doc["services"]


def deps(name):
    d = services[name].get("depends_on") or {}
    if isinstance(d, list):
        return {n: "service_started" for n in d}
    return {n: (c or {}).get("condition", "service_started") for n, c in d.items()}


def plain(where, value):
    # Compose interpolates `$VAR` and `${VAR}`; `$$` is a literal `$`. The test has no
    # variables to give, so anything but `$$` is an error.
    s = str(value)
    if "$" in s.replace("$$", ""):
        sys.exit(f"{where}: variable interpolation in {s!r} is not supported by docker/test.sh")
    return s.replace("$$", "$")


if mode == "check":
    for name, svc in services.items():
        if not isinstance(svc, dict) or not ("image" in svc or "build" in svc):
            sys.exit(f"{path}: services.{name} has neither `image` nor `build`")
        for dep in deps(name):
            if dep not in services:
                sys.exit(f"{path}: services.{name}.depends_on names `{dep}`, which is no service")
    sys.exit(0)

if mode == "order":
    order, done = [], set()

    def visit(name, path_=()):
        if name in done:
            return
        if name in path_:
            sys.exit(f"{path}: depends_on cycle through {' -> '.join(path_ + (name,))}")
        for dep in deps(name):
            visit(dep, path_ + (name,))
        done.add(name)
        order.append(name)

    for name in services:
        visit(name)
    items = order
elif mode == "get":
    service, key = sys.argv[3], sys.argv[4]
    where = f"{path}: services.{service}.{key}"
    if service not in services:
        sys.exit(f"{path}: no service `{service}`")
    value = services[service].get(key)
    if value is None:
        items = []
    elif key == "environment":
        if isinstance(value, dict):
            items = [f"{k}={'' if v is None else v}" for k, v in value.items()]
        else:
            items = list(value)
    elif key == "depends_on":
        items = [f"{n} {c}" for n, c in deps(service).items()]
    elif key == "healthcheck":
        test = value.get("test", [])
        items = ["CMD-SHELL", test] if isinstance(test, str) else test
    elif key in ("command", "entrypoint") and isinstance(value, str):
        items = shlex.split(value)
    elif isinstance(value, list):
        items = value
    elif isinstance(value, (str, int)):
        items = [value]
    else:
        sys.exit(f"{where}: a {type(value).__name__} is not supported by docker/test.sh")
    items = [plain(where, i) for i in items]
else:
    sys.exit(f"unknown mode {mode}")
for item in items:
    sys.stdout.write(f"{item}\0")
PY
)
# compose_read MODE FILE [SERVICE KEY]: fills COMPOSE_ITEMS, or fails with python's message.
COMPOSE_ITEMS=()
compose_read() {
    python3 -c "$COMPOSE_PY" "$@" >"$CACHE/compose.out" 2>"$CACHE/compose.err" ||
        fail "reading ${2#"$REPO"/}: $(cat "$CACHE/compose.err")"
    mapfile -d '' -t COMPOSE_ITEMS <"$CACHE/compose.out"
}
for f in docker-compose.yml docker-compose.pipeline.yml; do
    compose_read check "$HERE/$f"
done
ok "python3 yaml reads docker-compose.yml and docker-compose.pipeline.yml (images, depends_on)"

# ---- containers, cleaned up on every exit ------------------------------------------------

CONTAINERS=()
VOLUMES=()
NETWORKS=()
TC_IMAGES=()
API_PID=
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
    for c in "${NETWORKS[@]}"; do
        "${ENGINE[@]}" network rm -f "$c" >/dev/null 2>&1 || true
    done
    # What a Testcontainers module left behind when its program failed, then the API service.
    for c in "${TC_IMAGES[@]}"; do
        "${ENGINE[@]}" ps -a -q --filter label=org.testcontainers=true --filter "ancestor=$c" 2>/dev/null |
            xargs -r "${ENGINE[@]}" rm -f -v >/dev/null 2>&1 || true
    done
    if [[ -n $API_PID ]]; then
        kill "$API_PID" 2>/dev/null || true
        wait "$API_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# ---- images -------------------------------------------------------------------------------

# Podman keeps each stage's image (200 MB to 1 GB each with vfs storage); drop_stage_images
# FINAL BEFORE drops the ones a build made (every image not in the list BEFORE, except
# FINAL), newest first, so that their untagged parents go with them.
drop_stage_images() {
    local final id
    final=$("${ENGINE[@]}" image inspect --format '{{.Id}}' "$1" 2>/dev/null) || final=none
    for id in $("${ENGINE[@]}" images -a -q --no-trunc); do
        [[ ${id#sha256:} == "${final#sha256:}" ]] && continue
        grep -qF "$id" <<<"$2" && continue
        "${ENGINE[@]}" rmi "$id" >/dev/null 2>&1 || true
    done
}

# build_image IMAGE DOCKERFILE CONTEXT [BUILD FLAGS...]: (re)build IMAGE, or show the end
# of the build log and fail.
build_image() {
    local image=$1 dockerfile=$2 context=$3 before
    shift 3
    "${ENGINE[@]}" rmi -f "$image" >/dev/null 2>&1 || true
    before=$("${ENGINE[@]}" images -a -q --no-trunc)
    log "building $image from ${dockerfile#"$REPO"/}${*:+ ($*)}"
    if ! "${ENGINE[@]}" build "${BUILD_FLAGS[@]}" "$@" -f "$dockerfile" -t "$image" "$context" \
        >"$CACHE/build.log" 2>&1; then
        tail -30 "$CACHE/build.log"
        drop_stage_images "$image" "$before"
        fail "building $image (log: ${CACHE#"$REPO"/}/build.log)"
    fi
    drop_stage_images "$image" "$before"
}

# host_build STAGE: run on the host the `cargo build` command of docker/Dockerfile's STAGE,
# so that the host builds what the stage would, and a command that cannot build (a wrong
# package or binary name) fails here rather than only under --full.
host_build() {
    local stage=$1 cmd argv
    cmd=$(awk -v stage="$stage" '
        $0 ~ "^FROM [^ ]+ AS " stage "$" { inside = 1; next }
        inside && /^FROM / { inside = 0 }
        inside { sub(/\\$/, ""); line = line " " $0 }
        END { print line }
    ' "$HERE/Dockerfile" | grep -o 'cargo build [^&]*' | sed 's/ *$//') || true
    [[ -n $cmd ]] || fail "docker/Dockerfile: stage $stage has no 'cargo build' command"
    read -ra argv <<<"$cmd"
    log "stage $stage, on the host: $cmd"
    (cd "$REPO" && "${argv[@]}") || fail "docker/Dockerfile stage $stage: '$cmd' fails on the host"
}

if [[ $full -eq 1 ]]; then
    log "building the images from docker/Dockerfile as it is (context: the repository root)"
    build_image "$IMAGE" "$HERE/Dockerfile" "$REPO"
    build_image "$CONN_IMAGE" "$HERE/Dockerfile" "$REPO" --target connectors
else
    host_build build
    host_build build-connectors
    target_dir=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])') ||
        fail "cargo metadata: cannot find the target directory"
    ctx=$CACHE/context
    rm -rf "$ctx"
    mkdir -p "$ctx/docker"
    # The Dockerfile's build stages build without debug info; strip the host's copies instead.
    for bin in sluice sluice-flume sluice-spark; do
        objcopy --strip-all "$target_dir/release/$bin" "$ctx/$bin" || fail "objcopy $bin"
    done
    cp "$HERE/rootfs.sh" "$ctx/docker/rootfs.sh"
    cp -r "$HERE/image" "$ctx/docker/image"
    # Swap the two rust stages (everything from a FROM to the next FROM) for ones that copy
    # the host-built binaries to where the real stages install them; keep every other stage.
    awk -v base="$BASE_IMAGE" '
        /^FROM rust:[^ ]* AS build$/ { copy = "COPY sluice /out/sluice" }
        /^FROM rust:[^ ]* AS build-connectors$/ { copy = "COPY sluice-flume sluice-spark /out/" }
        copy {
            print "FROM " base " AS " $NF
            print copy
            copy = ""; skip = 1; swapped++; next
        }
        skip && /^FROM / { skip = 0 }
        !skip { print }
        END { if (swapped != 2) exit 1 }
    ' "$HERE/Dockerfile" >"$ctx/Dockerfile" ||
        fail "docker/Dockerfile lacks a 'FROM rust:... AS build' or '... AS build-connectors' stage to swap"
    build_image "$IMAGE" "$ctx/Dockerfile" "$ctx" "${LOCAL_BUILD_FLAGS[@]}"
    build_image "$CONN_IMAGE" "$ctx/Dockerfile" "$ctx" "${LOCAL_BUILD_FLAGS[@]}" --target connectors
fi

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

conn_size=$("${ENGINE[@]}" image inspect --format '{{.Size}}' "$CONN_IMAGE")
log "image $CONN_IMAGE: $conn_size bytes ($((conn_size / 1000 / 1000)) MB)"
user=$("${ENGINE[@]}" image inspect --format '{{.Config.User}}' "$CONN_IMAGE")
[[ $user == 10001:10001 ]] || fail "$CONN_IMAGE: image user is '$user', expected 10001:10001"
# Who the processes run as, and the `tail` that the flume service's exec source runs.
# shellcheck disable=SC2016 # expanded by the container's shell
out=$("${ENGINE[@]}" run --rm "${LIMIT_FLAGS[@]}" "$CONN_IMAGE" \
    sh -c 'echo "$(id -u):$(id -g)"; command -v tail && tail --version | head -n 1' \
    2>"$CACHE/engine.log") || { cat "$CACHE/engine.log"; fail "$CONN_IMAGE: cannot run sh, id and tail: $out"; }
mapfile -t info <<<"$out"
[[ ${info[0]} == 10001:10001 ]] || fail "$CONN_IMAGE: processes run as uid:gid ${info[0]}, expected 10001:10001"
[[ ${info[1]:-} == /* ]] || fail "$CONN_IMAGE has no tail on its PATH"
ok "$CONN_IMAGE runs as uid:gid ${info[0]} and has ${info[1]} (${info[2]:-})"

# Every flag in the pipeline's commands for the connectors image is one its binary takes
# (clap would refuse the container's start otherwise).
PIPELINE=$HERE/docker-compose.pipeline.yml
compose_read order "$PIPELINE"
SERVICES=("${COMPOSE_ITEMS[@]}")
checked=()
for svc in "${SERVICES[@]}"; do
    compose_read get "$PIPELINE" "$svc" image
    [[ ${COMPOSE_ITEMS[0]:-} == sluice-connectors:* ]] || continue
    compose_read get "$PIPELINE" "$svc" command
    cmd=("${COMPOSE_ITEMS[@]}")
    [[ ${#cmd[@]} -ge 2 ]] ||
        fail "docker-compose.pipeline.yml: services.$svc.command '${cmd[*]}' is not BINARY SUBCOMMAND FLAGS..."
    help=$("${ENGINE[@]}" run --rm "${LIMIT_FLAGS[@]}" "$CONN_IMAGE" "${cmd[0]}" "${cmd[1]}" --help \
        2>"$CACHE/engine.log") ||
        { cat "$CACHE/engine.log"; fail "services.$svc: '${cmd[0]} ${cmd[1]} --help' fails in $CONN_IMAGE"; }
    flags=0
    for arg in "${cmd[@]:2}"; do
        case $arg in
            --*) flag=${arg%%=*} ;;
            -?*) flag=${arg:0:2} ;; # -Dkey=value, -fFILE
            *) continue ;;
        esac
        grep -qE -- "(^|[ ,])$flag([ =,]|\$)" <<<"$help" ||
            fail "docker-compose.pipeline.yml: services.$svc.command passes $flag, which '${cmd[0]} ${cmd[1]} --help' does not list"
        flags=$((flags + 1))
    done
    checked+=("$svc: ${cmd[0]} ${cmd[1]}, $flags flags;")
done
[[ ${#checked[@]} -ge 2 ]] || fail "docker-compose.pipeline.yml: expected flume and spark services on sluice-connectors"
ok "the pipeline's commands take only flags their binaries list in --help (${checked[*]%;})"

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
# The HTTP listener published too, as the README says to: every interface in the container.
hport=$(free_port)
start "$ctr" "$port" --hostname broker "${env_args[@]}" -e SLUICE_HTTP=0.0.0.0:8080 \
    -p "127.0.0.1:$hport:8080" "$IMAGE"
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

# http_status URL: the HTTP status of GET URL, the body in $CACHE/http.body.
http_status() {
    python3 - "$1" "$CACHE/http.body" <<'PY'
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
        status, body = r.status, r.read()
except urllib.error.HTTPError as e:
    status, body = e.code, e.read()
open(sys.argv[2], "wb").write(body)
print(status)
PY
}
# /metrics is open to a scraper and counts the records produced above; the console, bound
# beyond loopback with no SASL users, refuses (403) rather than show every message.
status=$(http_status "http://127.0.0.1:$hport/metrics") || fail "GET /metrics"
[[ $status == 200 ]] || fail "GET /metrics answered $status"
n=$(records | wc -l)
grep -q "^kafka_server_brokertopicmetrics_messagesin_total{topic=\"$topic\"} $n\$" "$CACHE/http.body" ||
    { grep messagesin "$CACHE/http.body" | head -5; fail "/metrics does not count the $n records"; }
status=$(http_status "http://127.0.0.1:$hport/") || fail "GET /"
[[ $status == 403 ]] || fail "the console answered $status beyond loopback without SASL users"
ok "published HTTP listener: /metrics counts the $n records; the console answers 403 without SASL users"

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

# ---- 2b. the entrypoint: sluice's own arguments, a foreign command, SIGTERM through both ----------

out=$("${ENGINE[@]}" run --rm "${LIMIT_FLAGS[@]}" "$IMAGE" --help 2>&1) || fail "'run IMAGE --help': $out"
grep -q 'Usage: sluice' <<<"$out" || fail "'run IMAGE --help' did not reach sluice: $out"
out=$("${ENGINE[@]}" run --rm "${LIMIT_FLAGS[@]}" "$IMAGE" health --bootstrap 127.0.0.1:1 --timeout-ms 500 2>&1) &&
    fail "'run IMAGE health' against a closed port succeeded"
grep -q '^unhealthy: 127.0.0.1:1' <<<"$out" || fail "'run IMAGE health' did not reach sluice: $out"
out=$("${ENGINE[@]}" run --rm "${LIMIT_FLAGS[@]}" "$IMAGE" sluice --version 2>&1) || fail "'run IMAGE sluice --version': $out"
grep -q '^sluice ' <<<"$out" || fail "'run IMAGE sluice --version' did not reach sluice: $out"
# shellcheck disable=SC2016 # expanded by the container's shell
out=$("${ENGINE[@]}" run --rm "${LIMIT_FLAGS[@]}" "$IMAGE" sh -c \
    'id -u; [ -x /etc/kafka/docker/run ] && sleep 0 && command -v bash && readlink -f /bin/sh; . /etc/confluent/docker/bash-config && echo sourced' \
    2>"$CACHE/engine.log") || { cat "$CACHE/engine.log"; fail "'run IMAGE sh -c ...': $out"; }
[[ $out == $'10001\n/bin/bash\n/bin/busybox\nsourced' ]] ||
    fail "'run IMAGE sh -c ...' (uid, [, sleep, bash, busybox sh, bash-config): $out"
ok "entrypoint: --help, health and sluice ... reach sluice; sh -c runs as uid 10001 with [, sleep, bash and bash-config"

# stop_cleanly NAME BOOTSTRAP WHAT: the broker answers, then SIGTERM ends the container with
# status 0 and the broker's own shutdown line (not the engine's SIGKILL at the timeout).
stop_cleanly() {
    local ctr=$1 bootstrap=$2 what=$3 code
    wait_ready "$ctr" "$bootstrap"
    quietly "${ENGINE[@]}" stop -t 20 "$ctr" || fail "stop $ctr"
    code=$("${ENGINE[@]}" inspect --format '{{.State.ExitCode}}' "$ctr")
    [[ $code == 0 ]] || fail "$what: exited with status $code on SIGTERM"
    "${ENGINE[@]}" logs "$ctr" 2>&1 | grep -q 'all partitions flushed; bye' ||
        fail "$what: no 'all partitions flushed; bye' from the broker after SIGTERM"
    ok "$what: SIGTERM reaches the broker (exit status 0, clean shutdown)"
}
ep_env=(-e KAFKA_LISTENERS=PLAINTEXT://:9092)
# Java's shape: the image's entrypoint runs `sh -c` whose script calls /etc/kafka/docker/run.
port=$(free_port)
ctr=sluice-test-ep-run-$$
start "$ctr" "$port" "${ep_env[@]}" -e "KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://127.0.0.1:$port" "$IMAGE" \
    sh -c 'printf "#!/bin/bash\n/etc/kafka/docker/run\n" >/tmp/start.sh && chmod +x /tmp/start.sh && /tmp/start.sh'
stop_cleanly "$ctr" "127.0.0.1:$port" "sh -c through the entrypoint, /etc/kafka/docker/run"
# Go's shape: the entrypoint replaced by sh, so the start script is PID 1 and sources bash-config.
port=$(free_port)
ctr=sluice-test-ep-launch-$$
start "$ctr" "$port" "${ep_env[@]}" -e "KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://127.0.0.1:$port" --entrypoint sh "$IMAGE" \
    -c 'printf "source /etc/confluent/docker/bash-config\n/etc/confluent/docker/configure\n/etc/confluent/docker/launch\n" >/tmp/start.sh; bash /tmp/start.sh'
stop_cleanly "$ctr" "127.0.0.1:$port" "entrypoint sh, PID 1 script sourcing bash-config, /etc/confluent/docker/launch"

# ---- 3. the seed pipeline of docker-compose.pipeline.yml ---------------------------------------

# redis:7 cannot be pulled: an image of the host's own redis-server and redis-cli, FROM
# scratch with exactly the libraries ldd resolves for them, at the same paths. Like the
# redis image, it binds every interface with protected mode off (the spark service
# connects from another container, with no password).
rctx=$CACHE/redis-context
rm -rf "$rctx"
mkdir -p "$rctx/rootfs/usr/bin"
for bin in redis-server redis-cli; do
    cp -L "$(command -v "$bin")" "$rctx/rootfs/usr/bin/$bin"
    for lib in $(ldd "$(command -v "$bin")" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
        mkdir -p "$rctx/rootfs$(dirname "$lib")"
        cp -L "$lib" "$rctx/rootfs$lib"
    done
done
cat >"$rctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/bin
WORKDIR /data
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
DOCKERFILE
build_image "$REDIS_IMAGE" "$rctx/Dockerfile" "$rctx" "${LOCAL_BUILD_FLAGS[@]}"

# The app writes the file that flume's exec source tails.
app_log=/var/log/app/app.log
grep -qE "^[^#]*\.command *= *tail -F $app_log\$" "$HERE/pipeline/flume-kafka.properties" ||
    fail "docker/pipeline/flume-kafka.properties does not tail -F $app_log"

net=sluice-test-pipeline-$$
NETWORKS+=("$net")
"${ENGINE[@]}" network create "$net" >/dev/null || fail "cannot create network $net"
pipe_port=$(free_port)
pipe_bootstrap=127.0.0.1:$pipe_port
declare -A CTR=() VOL_AT=()

# run_service SERVICE: run the service as compose would, on $net under its service name,
# with its command, hostname, environment, ports and volumes from the compose file. The
# stand-ins: busybox's loop runs in the connectors image as root (as busybox would run it;
# the fresh volume belongs to root), redis is $REDIS_IMAGE, the broker's 9092 is published
# on a free port that PLAINTEXT_HOST then advertises.
run_service() {
    local svc=$1 image args=() kv p v src dst vol ctr cmd
    compose_read get "$PIPELINE" "$svc" image
    case ${COMPOSE_ITEMS[0]:-} in
        sluice:*) image=$IMAGE ;;
        sluice-connectors:*) image=$CONN_IMAGE ;;
        busybox:*)
            image=$CONN_IMAGE
            args+=(--user 0)
            ;;
        redis:*) image=$REDIS_IMAGE ;;
        *) fail "docker-compose.pipeline.yml: services.$svc.image '${COMPOSE_ITEMS[0]:-}' has no stand-in here" ;;
    esac
    compose_read get "$PIPELINE" "$svc" hostname
    for v in "${COMPOSE_ITEMS[@]}"; do args+=(--hostname "$v"); done
    compose_read get "$PIPELINE" "$svc" environment
    for kv in "${COMPOSE_ITEMS[@]}"; do
        if [[ $kv == KAFKA_ADVERTISED_LISTENERS=* ]]; then
            [[ $kv == *PLAINTEXT_HOST://localhost:9092* ]] || fail "unexpected $kv in docker-compose.pipeline.yml"
            kv=${kv//PLAINTEXT_HOST:\/\/localhost:9092/PLAINTEXT_HOST://$pipe_bootstrap}
        fi
        args+=(-e "$kv")
    done
    compose_read get "$PIPELINE" "$svc" ports
    for p in "${COMPOSE_ITEMS[@]}"; do
        [[ $p == 9092:9092 ]] || fail "docker-compose.pipeline.yml: services.$svc.ports '$p': only 9092:9092 is mapped by the test"
        args+=(-p "$pipe_bootstrap:9092")
    done
    compose_read get "$PIPELINE" "$svc" volumes
    for v in "${COMPOSE_ITEMS[@]}"; do
        src=${v%%:*} dst=${v#*:}
        if [[ $src == .* || $src == /* ]]; then
            [[ $src == /* ]] || src=$HERE/$src
            [[ -e $src ]] || fail "docker-compose.pipeline.yml: services.$svc.volumes: $src does not exist"
            args+=(-v "$src:$dst")
        else
            vol=sluice-test-$src-$$
            if [[ " ${VOLUMES[*]} " != *" $vol "* ]]; then
                VOLUMES+=("$vol")
                "${ENGINE[@]}" volume create "$vol" >/dev/null || fail "cannot create volume $vol"
            fi
            VOL_AT[${dst%%:*}]=$vol
            args+=(-v "$vol:$dst")
        fi
    done
    compose_read get "$PIPELINE" "$svc" command
    cmd=("${COMPOSE_ITEMS[@]}")
    ctr=sluice-test-$svc-$$
    CONTAINERS+=("$ctr")
    CTR[$svc]=$ctr
    "${ENGINE[@]}" rm -f -v "$ctr" >/dev/null 2>&1 || true
    log "service $svc: $ctr"
    quietly "${ENGINE[@]}" run -d --name "$ctr" "${RUN_FLAGS[@]}" --network "$net" --network-alias "$svc" \
        "${args[@]}" "$image" "${cmd[@]}" || fail "cannot start service $svc ($ctr)"
}

# healthy_once SERVICE: one run of the service's health check: the compose file's
# healthcheck test if it has one, else the image's HEALTHCHECK.
healthy_once() {
    local ctr=${CTR[$1]} test
    compose_read get "$PIPELINE" "$1" healthcheck
    test=("${COMPOSE_ITEMS[@]}")
    if [[ ${#test[@]} -gt 0 ]]; then
        case ${test[0]} in
            CMD) "${ENGINE[@]}" exec "$ctr" "${test[@]:1}" ;;
            CMD-SHELL) "${ENGINE[@]}" exec "$ctr" sh -c "${test[1]}" ;;
            *) fail "docker-compose.pipeline.yml: services.$1.healthcheck.test '${test[*]}' is not run by the test" ;;
        esac
    elif [[ $engine_name == podman ]]; then
        "${ENGINE[@]}" healthcheck run "$ctr"
    else
        [[ $(docker inspect --format '{{.State.Health.Status}}' "$ctr") == healthy ]]
    fi
}

# wait_healthy SERVICE: poll its health check until it passes, or fail at the deadline.
wait_healthy() {
    local svc=$1 end=$((SECONDS + DEADLINE_SECS))
    until healthy_once "$svc" >"$CACHE/health.log" 2>&1; do
        [[ $("${ENGINE[@]}" inspect --format '{{.State.Running}}' "${CTR[$svc]}") == true ]] ||
            fail "service $svc (${CTR[$svc]}) exited"
        ((SECONDS < end)) || { cat "$CACHE/health.log"; fail "service $svc not healthy within ${DEADLINE_SECS}s"; }
        sleep 0.5
    done
}

log "phase 3: docker-compose.pipeline.yml's services (${SERVICES[*]}) on network $net"
for svc in "${SERVICES[@]}"; do
    compose_read get "$PIPELINE" "$svc" depends_on
    deps=("${COMPOSE_ITEMS[@]}")
    for dep in "${deps[@]}"; do
        case ${dep#* } in
            service_healthy) wait_healthy "${dep%% *}" ;;
            service_started) ;;
            *) fail "docker-compose.pipeline.yml: services.$svc.depends_on: condition '${dep#* }' is not handled by the test" ;;
        esac
    done
    run_service "$svc"
done
for svc in broker flume spark redis app; do
    [[ -n ${CTR[$svc]:-} ]] || fail "docker-compose.pipeline.yml has no service $svc"
done
logvol=${VOL_AT[$(dirname "$app_log")]:-}
[[ -n $logvol ]] || fail "docker-compose.pipeline.yml: no named volume at $(dirname "$app_log")"
ok "pipeline services started in depends_on order: ${SERVICES[*]}"

# The app's loop appends a line a second: wait for three, then stop it so that the log
# stops growing, and append known lines from the host through the same volume.
end=$((SECONDS + DEADLINE_SECS))
until n=$("${ENGINE[@]}" exec "${CTR[app]}" sh -c "wc -l < $app_log" 2>/dev/null) && ((n >= 3)); do
    [[ $("${ENGINE[@]}" inspect --format '{{.State.Running}}' "${CTR[app]}") == true ]] ||
        fail "service app (${CTR[app]}) exited"
    ((SECONDS < end)) || fail "the app service wrote ${n:-no} lines to $app_log within ${DEADLINE_SECS}s"
    sleep 0.5
done
quietly "${ENGINE[@]}" kill "${CTR[app]}" || fail "kill ${CTR[app]}"
quietly "${ENGINE[@]}" wait "${CTR[app]}" || true
known_lines() {
    printf '%s\n' \
        'sluice flume spark redis' \
        'flume to sluice to spark and to redis' \
        'héllo wörld ✓ sluice' \
        'two  spaces make an empty word'
}
# The whole log comes back on stdout: the expected counts are those of every line in it.
known_lines | "${ENGINE[@]}" run --rm -i "${LIMIT_FLAGS[@]}" --user 0 -v "$logvol:$(dirname "$app_log")" \
    "$CONN_IMAGE" sh -c "cat >> $app_log && cat $app_log" >"$CACHE/app.log" 2>"$CACHE/engine.log" ||
    { cat "$CACHE/engine.log"; fail "appending to $app_log in volume $logvol"; }
lines=$(wc -l <"$CACHE/app.log")
[[ $(tail -n 4 "$CACHE/app.log") == "$(known_lines)" ]] || fail "$app_log does not end with the known lines"
ok "$app_log: $((lines - 4)) lines from the app service, then 4 known lines"

# Spark's DirectKafkaWordCount: words are Java's line.split(" ") (a double space gives an
# empty word; trailing empty ones are dropped). HGETALL must equal the counts of the log.
WC_PY=$(
    cat <<'PY'
import collections
import sys

log_path, hgetall_path = sys.argv[1], sys.argv[2]


def java_split(line):
    parts = line.split(" ")
    if len(parts) == 1:
        return parts
    while parts and parts[-1] == "":
        parts.pop()
    return parts


expected = collections.Counter()
with open(log_path, encoding="utf-8") as f:
    for line in f.read().split("\n")[:-1]:
        expected.update(java_split(line))
with open(hgetall_path, encoding="utf-8") as f:
    out = f.read().split("\n")[:-1]
got = dict(zip(out[0::2], (int(c) for c in out[1::2])))
if got == dict(expected):
    print(f"{len(got)} words, {sum(got.values())} in all")
    sys.exit(0)
diff = [f"{w!r}: expected {expected.get(w, 0)}, got {got.get(w, 0)}"
        for w in sorted(set(expected) | set(got)) if expected.get(w, 0) != got.get(w, 0)]
print(f"{len(diff)} words differ: " + "; ".join(diff[:12]))
sys.exit(1)
PY
)
hgetall() {
    "${ENGINE[@]}" exec "${CTR[redis]}" redis-cli HGETALL "$1" >"$CACHE/hgetall.out" 2>"$CACHE/engine.log"
}
end=$((SECONDS + DEADLINE_SECS))
until hgetall wc:counts && summary=$(python3 -c "$WC_PY" "$CACHE/app.log" "$CACHE/hgetall.out"); do
    if ((SECONDS >= end)); then
        cat "$CACHE/engine.log"
        fail "redis-cli HGETALL wc:counts after ${DEADLINE_SECS}s: ${summary:-no answer}"
    fi
    sleep 1
done
ok "redis-cli HGETALL wc:counts equals the word counts of the log's $lines lines ($summary)"
hgetall wc:offsets || { cat "$CACHE/engine.log"; fail "redis-cli HGETALL wc:offsets"; }
stored=$(awk 'NR % 2 == 0 { n += $1 } END { print n + 0 }' "$CACHE/hgetall.out")
[[ $stored == "$lines" ]] ||
    fail "wc:offsets ($(paste -sd ' ' "$CACHE/hgetall.out")) sum to $stored records, the log has $lines lines"
ok "wc:offsets: $(paste -sd ' ' "$CACHE/hgetall.out"), one record per line"
# What flume put on the topic, read from the host through the published port.
timeout "$DEADLINE_SECS" kcat -b "$pipe_bootstrap" -C -t app-lines -e -q -f '%s\n' >"$CACHE/topic.out" \
    2>"$CACHE/consume.err" || { cat "$CACHE/consume.err"; fail "kcat: consume app-lines via $pipe_bootstrap"; }
cmp -s <(sort "$CACHE/app.log") <(sort "$CACHE/topic.out") ||
    { diff <(sort "$CACHE/app.log") <(sort "$CACHE/topic.out") | head -10; fail "app-lines does not hold the log's lines"; }
ok "topic app-lines holds the log's $lines lines, byte for byte"

# ---- 4. Testcontainers' Kafka modules, through the engine's Docker API ------------------------

# Each module starts the freshly built image its own way (random host ports, its start
# script, its readiness log line), and the program in docker/testcontainers/ then produces
# keyed records through the mapped port and consumes them in a consumer group. The reaper
# (Ryuk) is an image that would be pulled: it is off, and each program removes its own
# container. Python's KRaft mode takes only a version-like tag of 7.0.0 or above.
TC_KRAFT_IMAGE=localhost/sluice:7.9.0
log "phase 4: Testcontainers' Kafka modules (Python default and KRaft, Java, Go)"
bash "$REPO/compat-tests/scripts/install-testcontainers.sh" >"$CACHE/tc-install.log" 2>&1 ||
    { tail -20 "$CACHE/tc-install.log"; fail "compat-tests/scripts/install-testcontainers.sh"; }
TC_CACHE=$REPO/compat-tests/.cache
# The engine publishes the mapped ports on this machine: connect through localhost. Without
# these, a test process that itself runs in a container (as this one may: /.dockerenv)
# makes the modules look for the bridge network's gateway instead, which Python's cannot
# find in Podman's container list.
tc_env=(TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=localhost
    TESTCONTAINERS_CONNECTION_MODE=docker_host)
if [[ $engine_name == podman ]]; then
    # The Docker-compatible API, on a socket of our own. Containers made through it get the
    # ulimits CONTAINERS.md gives, from a containers.conf of the test's.
    sock=$CACHE/podman.sock
    rm -f "$sock"
    printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n' >"$CACHE/containers.conf"
    CONTAINERS_CONF=$CACHE/containers.conf "${ENGINE[@]}" system service --time=0 "unix://$sock" \
        >"$CACHE/podman-api.log" 2>&1 &
    API_PID=$!
    end=$((SECONDS + DEADLINE_SECS))
    until curl -sf --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; do
        kill -0 "$API_PID" 2>/dev/null || { tail -5 "$CACHE/podman-api.log"; fail "podman system service exited"; }
        ((SECONDS < end)) || fail "podman's API did not answer on $sock within ${DEADLINE_SECS}s"
        sleep 0.2
    done
    tc_env+=(DOCKER_HOST="unix://$sock")
fi
"${ENGINE[@]}" tag "$IMAGE" "$TC_KRAFT_IMAGE" || fail "tag $IMAGE as $TC_KRAFT_IMAGE"
TC_IMAGES=("$IMAGE" "$TC_KRAFT_IMAGE")
tc_starts=()
# tc_run NAME CMD...: run one module's program, which prints `start: SECONDS` and `ok: ...`.
tc_run() {
    local name=$1 out=$CACHE/tc-$1.log start
    shift
    log "Testcontainers $name: $*"
    if ! env "${tc_env[@]}" timeout $((3 * DEADLINE_SECS)) "$@" >"$out" 2>&1; then
        tail -40 "$out"
        fail "Testcontainers $name (log: ${out#"$REPO"/})"
    fi
    start=$(sed -n 's/^start: //p' "$out")
    [[ -n $start ]] && grep -q '^ok: ' "$out" || { tail -20 "$out"; fail "Testcontainers $name: no start time or ok line"; }
    tc_starts+=("$name ${start}s")
    ok "Testcontainers $name: started in ${start}s; $(sed -n 's/^ok: //p' "$out")"
}
tc_run python-default "$TC_CACHE/venv/bin/python" "$HERE/testcontainers/python/tc_kafka.py" "$IMAGE" default
tc_run python-kraft "$TC_CACHE/venv/bin/python" "$HERE/testcontainers/python/tc_kafka.py" "$TC_KRAFT_IMAGE" kraft
tc_run java java -Dorg.slf4j.simpleLogger.log.org.apache.kafka=warn -cp "$TC_CACHE/testcontainers-java-1.21.4/lib/*" "$HERE/testcontainers/java/TcKafka.java" "$IMAGE"
tc_run go "$TC_CACHE/testcontainers-go/tc-kafka" "$IMAGE"
log "Testcontainers start times: ${tc_starts[*]}"

# ---- 5. Apache Kafka's single-node ssl and sasl_plaintext examples ---------------------------

# compose_env_of FILE: the broker service's environment block, as KEY=VALUE lines.
compose_env_of() {
    awk '
        /^    environment:$/ { env = 1; next }
        env && /^      [A-Za-z_][A-Za-z0-9_]*:/ {
            key = $1; sub(/:$/, "", key)
            val = $0; sub(/^ *[A-Za-z0-9_]*: */, "", val)
            if (val ~ /^'\''.*'\''$/) val = substr(val, 2, length(val) - 2)
            if (val == "\"\"") val = ""
            print key "=" val; next
        }
        env { env = 0 }
    ' "$1"
}

# start_example NAME FILE PUBLISHED_PORT HOST_PORT SECRETS: run the compose file's broker
# with its environment, the secrets directory at /etc/kafka/secrets, and the host listener
# (advertised as localhost:PUBLISHED_PORT in the file) published on HOST_PORT instead.
start_example() {
    local name=$1 file=$2 published=$3 hport=$4 secrets=$5 kv args=()
    while IFS= read -r kv; do
        [[ $kv == KAFKA_ADVERTISED_LISTENERS=* ]] && kv=${kv//localhost:$published/127.0.0.1:$hport}
        args+=(-e "$kv")
    done < <(compose_env_of "$HERE/$file")
    [[ ${#args[@]} -ge 10 ]] || fail "could not read the environment block of docker/$file"
    CONTAINERS+=("$name")
    "${ENGINE[@]}" rm -f -v "$name" >/dev/null 2>&1 || true
    quietly "${ENGINE[@]}" run -d --name "$name" "${RUN_FLAGS[@]}" --hostname broker \
        -p "127.0.0.1:$hport:$published" -v "$secrets:/etc/kafka/secrets:ro" "${args[@]}" "$IMAGE" ||
        fail "cannot start container $name from docker/$file"
}

# java_roundtrip WHAT BOOTSTRAP PROPS TOPIC: the Java console producer writes three records
# and the console consumer reads them back, both with the client properties file PROPS.
java_roundtrip() {
    local what=$1 bs=$2 props=$3 topic=$4 run=$REPO/compat-tests/scripts/kafka-run-class.sh
    printf 'java-1\njava-2\njava-3\n' | timeout "$DEADLINE_SECS" "$run" org.apache.kafka.tools.ConsoleProducer \
        --bootstrap-server "$bs" --topic "$topic" --producer.config "$props" \
        >"$CACHE/java-prod.log" 2>&1 || { tail -20 "$CACHE/java-prod.log"; fail "$what: Java console producer"; }
    timeout "$DEADLINE_SECS" "$run" org.apache.kafka.tools.consumer.ConsoleConsumer \
        --bootstrap-server "$bs" --topic "$topic" --from-beginning --max-messages 3 \
        --consumer.config "$props" >"$CACHE/java-cons.out" 2>"$CACHE/java-cons.log" ||
        { tail -20 "$CACHE/java-cons.log"; fail "$what: Java console consumer"; }
    # Kafka 4.3's tools print a deprecation notice for --producer.config/--consumer.config
    # on stdout; the records are the lines that start with java-.
    [[ $(grep '^java-' "$CACHE/java-cons.out") == $'java-1\njava-2\njava-3' ]] ||
        { cat "$CACHE/java-cons.out"; fail "$what: the Java console consumer read other records"; }
    ok "$what: Java console producer and consumer (Kafka 4.3.1 tools) round-trip 3 records"
}

log "phase 5: Apache Kafka's single-node ssl and sasl_plaintext examples"
command -v openssl >/dev/null && command -v keytool >/dev/null ||
    fail "openssl and keytool (JDK) are needed to make the example's keystores"
secrets=$CACHE/secrets
bash "$HERE/secrets.sh" "$secrets" >"$CACHE/secrets.log" 2>&1 || { cat "$CACHE/secrets.log"; fail "docker/secrets.sh"; }

port=$(free_port)
bootstrap=127.0.0.1:$port
ctr=sluice-test-ssl-$$
start_example "$ctr" docker-compose.ssl.yml 9093 "$port" "$secrets/ssl"
tls=(-X security.protocol=ssl -X "ssl.ca.location=$secrets/ssl/ca.pem"
    -X "ssl.certificate.location=$secrets/ssl/client.pem" -X "ssl.key.location=$secrets/ssl/client.key")
end=$((SECONDS + DEADLINE_SECS))
until kcat -b "$bootstrap" "${tls[@]}" -L -m 2 >/dev/null 2>&1; do
    [[ $("${ENGINE[@]}" inspect --format '{{.State.Running}}' "$ctr") == true ]] ||
        { "${ENGINE[@]}" logs "$ctr" 2>&1 | tail -20; fail "container $ctr (docker-compose.ssl.yml) exited"; }
    ((SECONDS < end)) || fail "the SSL example did not answer on $bootstrap within ${DEADLINE_SECS}s"
    sleep 0.5
done
ok "SSL example: the broker read Kafka's JKS keystore and truststore and answers over TLS"
records | kcat -b "$bootstrap" "${tls[@]}" -P -t ssl-test -p 0 -K : -X acks=all 2>"$CACHE/produce.err" ||
    { cat "$CACHE/produce.err"; fail "SSL example: kcat produce"; }
consume_check "SSL example, kcat with a client certificate" "$expected" -b "$bootstrap" "${tls[@]}" \
    -C -t ssl-test -p 0 -o beginning
if kcat -b "$bootstrap" -X security.protocol=ssl -X "ssl.ca.location=$secrets/ssl/ca.pem" \
    -L -m 5 >/dev/null 2>&1; then
    fail "SSL example: a client without a certificate was let in (ssl.client.auth=required)"
fi
ok "SSL example: a client without a certificate is refused (ssl.client.auth=required)"
java_roundtrip "SSL example" "$bootstrap" "$secrets/ssl/client-ssl.properties" ssl-java
"${ENGINE[@]}" rm -f -v "$ctr" >/dev/null 2>&1 || true

port=$(free_port)
bootstrap=127.0.0.1:$port
ctr=sluice-test-sasl-$$
start_example "$ctr" docker-compose.sasl.yml 9094 "$port" "$secrets/sasl"
sasl=(-X security.protocol=sasl_plaintext -X sasl.mechanisms=PLAIN -X sasl.username=alice)
end=$((SECONDS + DEADLINE_SECS))
until kcat -b "$bootstrap" "${sasl[@]}" -X sasl.password=alice-secret -L -m 2 >/dev/null 2>&1; do
    [[ $("${ENGINE[@]}" inspect --format '{{.State.Running}}' "$ctr") == true ]] ||
        { "${ENGINE[@]}" logs "$ctr" 2>&1 | tail -20; fail "container $ctr (docker-compose.sasl.yml) exited"; }
    ((SECONDS < end)) || fail "the SASL example did not answer on $bootstrap within ${DEADLINE_SECS}s"
    sleep 0.5
done
ok "SASL example: the broker read the JAAS file KAFKA_OPTS names and authenticates alice"
records | kcat -b "$bootstrap" "${sasl[@]}" -X sasl.password=alice-secret -P -t sasl-test -p 0 -K : \
    -X acks=all 2>"$CACHE/produce.err" || { cat "$CACHE/produce.err"; fail "SASL example: kcat produce"; }
consume_check "SASL example, kcat as alice (PLAIN)" "$expected" -b "$bootstrap" "${sasl[@]}" \
    -X sasl.password=alice-secret -C -t sasl-test -p 0 -o beginning
out=$(kcat -b "$bootstrap" "${sasl[@]}" -X sasl.password=wrong -L -m 5 2>&1) &&
    fail "SASL example: a wrong password was accepted"
grep -qi "authentication" <<<"$out" || { echo "$out" | tail -5; fail "SASL example: a wrong password failed without saying why"; }
ok "SASL example: a wrong password is refused ($(grep -io 'sasl authentication[^,]*' <<<"$out" | head -1))"
java_roundtrip "SASL example" "$bootstrap" "$secrets/sasl/client-sasl.properties" sasl-java
"${ENGINE[@]}" rm -f -v "$ctr" >/dev/null 2>&1 || true

log "PASSED with $engine_name; image $IMAGE is $size bytes, $CONN_IMAGE $conn_size bytes"
echo "$passed passed, 0 failed"

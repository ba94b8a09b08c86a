"""Side-by-side benchmark: Apache Kafka 4.3.1 (KRaft, single node) against Sluice.

Run it through `compat-tests/bench/run.sh`, which installs the jars and the venv and builds
both Rust binaries first; README.md beside this file says what every figure means.

The two brokers run one at a time, alternating (Kafka, Sluice, Kafka, Sluice, ...), each in a
fresh temp dir on free ports. Both face the same load generators: Kafka's own
ProducerPerformance and ConsumerPerformance, and the rdkafka probe `e2e_latency`. While they
run, the broker's /proc entries are read for CPU time and memory. The result is a markdown
table and a PNG chart. A figure never fails the run: the exit status is non-zero only when a
broker can't be started or a tool fails.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMPAT = HERE.parent
REPO = COMPAT.parent
KAFKA_VERSION = "4.3.1"
KAFKA_HOME = COMPAT / ".cache" / f"kafka-{KAFKA_VERSION}"
QUIET_LOG4J = KAFKA_HOME / "log4j2-quiet.properties"

MIB = 1024 * 1024
GIB = 1024 * MIB
CLK_TCK = os.sysconf("SC_CLK_TCK")

# JVM flags of Kafka's bin/kafka-run-class.sh (KAFKA_JVM_PERFORMANCE_OPTS), used for the broker
# and for the perf tools alike. Heaps as in bin/kafka-server-start.sh (1 GiB) and
# bin/kafka-*-perf-test.sh (512 MiB).
JVM_PERF_OPTS = [
    "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent", "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true",
]
BROKER_HEAP = ["-Xmx1G", "-Xms1G"]
TOOL_HEAP = ["-Xmx512M"]

# How long a broker has to answer its first produce, and to exit after SIGTERM.
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
# Upper bound for any one load-generator process.
TOOL_TIMEOUT_S = 600.0

SYSTEMS = ("kafka", "sluice")
# The latency probe runs twice. First with linger.ms=1, the headline figures: the producer
# still batches (about 1 ms of records per request) but no longer waits most of the time
# it measures. Then with the clients' default linger.ms=5 (Java since Kafka 4.0, KIP-1030,
# and librdkafka), where up to 5 ms of every record's latency is the client's own wait.
# Last with linger.ms=0, as Kafka's own EndToEndLatency tool: about one record per produce
# request, which measures how many requests a second the broker turns around.
# README.md beside this file, "end-to-end latency", says more.
LATENCY_LINGER_MS = 1.0
DEFAULT_LINGER_MS = 5.0
NO_LINGER_MS = 0.0
# Length of each transaction in the transactional produce phase (ProducerPerformance's
# --transaction-duration-ms; its own default is 3000). Short, so the phase runs many
# transactions: their commit round trips and markers are what it measures.
TXN_DURATION_MS = 100
# TLS phases (--tls, --tls-only): one keystore for both brokers, made per run by `openssl`.
TLS_PASSWORD = "bench-secret"
# Java clients on the SSL listener: the CA as a PEM truststore (Kafka reads PEM stores since
# KIP-651). Hostname verification stays on (the Java default, `https`): the certificate
# names 127.0.0.1.
def java_tls_props(ca: Path) -> list[str]:
    return ["security.protocol=SSL", "ssl.truststore.type=PEM", f"ssl.truststore.location={ca}"]


# The same for the rdkafka probe (librdkafka verifies the host name by default too).
def probe_tls_props(ca: Path) -> list[str]:
    return ["security.protocol=ssl", f"ssl.ca.location={ca}"]


# Probe rate when no Kafka run precedes it (--only sluice) and --latency-rate isn't given.
DEFAULT_RATE = 5000
LABEL = {"kafka": f"Apache Kafka {KAFKA_VERSION}", "sluice": "Sluice"}


class BenchError(Exception):
    """A broker could not be started or a tool failed: the run exits non-zero."""


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived."""


# ------------------------------------------------------------------------------------------
# Cleanup: every child runs in its own session, so a terminal ^C reaches only us; we then
# stop exactly the processes we started, and remove the temp dirs we made.

_children: list[subprocess.Popen] = []
_tempdirs: list[Path] = []


def _on_signal(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


def spawn(cmd, **kw) -> subprocess.Popen:
    p = subprocess.Popen(cmd, start_new_session=True, **kw)
    _children.append(p)
    return p


def stop_process(p: subprocess.Popen, sig=signal.SIGTERM, timeout=STOP_TIMEOUT_S) -> float | None:
    """Sends `sig` to the process group of `p`, waits, then SIGKILLs. Returns seconds to exit
    after `sig`, or None if it had to be killed."""
    if p.poll() is not None:
        return 0.0
    t0 = time.monotonic()
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        return 0.0
    try:
        p.wait(timeout=timeout)
        return time.monotonic() - t0
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        return None


def cleanup():
    for p in _children:
        if p.poll() is None:
            stop_process(p, signal.SIGKILL, 10)
    _children.clear()
    for d in _tempdirs:
        shutil.rmtree(d, ignore_errors=True)
    _tempdirs.clear()


# ------------------------------------------------------------------------------------------
# /proc


def proc_cpu_s(pid: int) -> float:
    """utime + stime of the whole process (all threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        tail = f.read().rsplit(")", 1)[1].split()
    # Fields after the command: state is field 3, utime 14, stime 15 (1-based).
    return (int(tail[11]) + int(tail[12])) / CLK_TCK


def proc_status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    """Polls VmRSS every 200 ms; the peak complements VmHWM."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_kib, self._stop = pid, 0, threading.Event()

    def run(self):
        while not self._stop.wait(0.2):
            try:
                self.peak_kib = max(self.peak_kib, proc_status_kib(self.pid, "VmRSS"))
            except OSError:
                return

    def stop(self):
        self._stop.set()


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def machine() -> dict:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "java": java[0] if java else "?",
        "python": platform.python_version(),
    }


def git_rev() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True).stdout.strip()
        return rev + (" (src/ has uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def interesting_lines(path: Path, pattern: str, n: int = 8) -> list[str]:
    """First `n` distinct log lines matching `pattern` (timestamps stripped for dedup)."""
    out, seen = [], set()
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if re.search(pattern, line):
                    key = re.sub(r"[\d:.\-TZ]{8,}", "", line)[:200]
                    if key not in seen:
                        seen.add(key)
                        out.append(line.rstrip()[:400])
                        if len(out) >= n:
                            break
    except OSError:
        pass
    return out


# ------------------------------------------------------------------------------------------
# Brokers


@dataclass
class Broker:
    system: str
    workdir: Path
    bootstrap: str = ""
    # The SSL listener's address, when the run has TLS phases.
    tls_bootstrap: str = ""
    proc: subprocess.Popen | None = None
    spawned_at: float = 0.0
    log: Path | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def check_alive(self, what: str):
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise BenchError(f"{self.system} exited (status {code}) {what}; log tail:\n"
                             f"{tail(self.log) if self.log else ''}")


def java_cmd(heap: list[str], cls: str, args: list[str], log4j: Path = QUIET_LOG4J) -> list[str]:
    return (["java", *heap, *JVM_PERF_OPTS, f"-Dlog4j2.configurationFile={log4j}",
             "-cp", str(KAFKA_HOME / "libs" / "*"), cls, *args])


def child_env() -> dict:
    # Sluice reads KAFKA_* variables as config, and SLUICE_* as flags; keep the caller's out.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KAFKA_", "SLUICE_"))}
    env.pop("RUST_LOG", None)
    return env


@dataclass
class Certs:
    """A CA and one server certificate for 127.0.0.1/localhost, made once per run. Both
    brokers load the same PKCS12 keystore (key + chain); clients trust `ca`."""
    dir: Path
    keystore: Path
    ca: Path


def make_certs() -> Certs:
    d = Path(tempfile.mkdtemp(prefix="sluice-bench-certs-"))
    _tempdirs.append(d)
    script = f"""set -euo pipefail
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
  -subj "/CN=Sluice bench CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.crt
openssl pkcs12 -export -in server.crt -inkey server.key -certfile ca.pem -name broker \
  -out server.p12 -passout pass:{TLS_PASSWORD}
"""
    r = subprocess.run(["bash", "-c", script], cwd=d, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise BenchError(f"making the TLS certificates with openssl failed:\n{r.stderr[-2000:]}")
    return Certs(d, d / "server.p12", d / "ca.pem")


def tls_handshake(addr: str, ca: Path) -> str:
    """Protocol and cipher suite `openssl s_client` gets from a listener (what a client with
    openssl's preferences negotiates; Java's and librdkafka's choice is alike on TLS 1.3)."""
    try:
        r = subprocess.run(["openssl", "s_client", "-connect", addr, "-CAfile", str(ca),
                            "-verify_return_error", "-brief"], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"openssl s_client failed: {e}"
    out = r.stdout + r.stderr
    got = [l.strip() for l in out.splitlines()
           if l.startswith(("Protocol version", "Ciphersuite", "Verification"))]
    return "; ".join(got) if got else f"no handshake (exit {r.returncode}): {out[-300:]!r}"


def start_kafka(workdir: Path, extra_props: str = "", certs: Certs | None = None) -> Broker:
    port, cport = free_port(), free_port()
    sport = free_port() if certs else 0
    # With TLS phases: an SSL listener beside PLAINTEXT (which stays inter-broker and serves
    # every other phase), on the shared PKCS12 keystore.
    ssl_listener = f",SSL://127.0.0.1:{sport}" if certs else ""
    ssl_props = (f"ssl.keystore.type=PKCS12\nssl.keystore.location={certs.keystore}\n"
                 f"ssl.keystore.password={TLS_PASSWORD}\nssl.key.password={TLS_PASSWORD}\n"
                 if certs else "")
    logs = workdir / "kraft-combined-logs"
    # config/server.properties of Kafka 4.x, on our ports and dir, plus the one dev setting.
    props = f"""\
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{cport}
listeners=PLAINTEXT://127.0.0.1:{port}{ssl_listener},CONTROLLER://127.0.0.1:{cport}
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://127.0.0.1:{port}{ssl_listener},CONTROLLER://127.0.0.1:{cport}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs={logs}
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
group.initial.rebalance.delay.ms=0
{ssl_props}{extra_props}"""
    cfg = workdir / "server.properties"
    cfg.write_text(props)
    # Kafka's default log4j2 config logs INFO to files; do the same, into one file.
    log = workdir / "server.log"
    log4j = workdir / "log4j2.properties"
    log4j.write_text(f"""\
status = error
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = warn
""")
    # As Kafka's Uuid.randomUuid: never an id that starts with "-", which the storage tool's
    # argument parser would take for an option (1 in 64 random ids did, failing the run).
    cluster_id = "-"
    while cluster_id.startswith("-"):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    fmt = subprocess.run(
        java_cmd(TOOL_HEAP, "kafka.tools.StorageTool",
                 ["format", "--standalone", "-t", cluster_id, "-c", str(cfg)]),
        capture_output=True, text=True, env=child_env(), timeout=120)
    if fmt.returncode != 0:
        raise BenchError(f"kafka-storage format failed ({fmt.returncode}):\n{fmt.stdout}{fmt.stderr}")
    b = Broker("kafka", workdir, bootstrap=f"127.0.0.1:{port}", log=log,
               tls_bootstrap=f"127.0.0.1:{sport}" if certs else "")
    out = open(workdir / "broker.out", "w")
    b.spawned_at = time.monotonic()
    with out:
        b.proc = spawn(java_cmd(BROKER_HEAP, "kafka.Kafka", [str(cfg)], log4j), stdout=out,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env())
    return b


def start_sluice(workdir: Path, binary: Path, extra_toml: str = "",
                 certs: Certs | None = None) -> Broker:
    # A fixed free port, like Kafka's, so both are timed the same way: from spawn to the
    # first acknowledged produce. The `listening on` line is still read, as a check.
    port = free_port()
    sport = free_port() if certs else 0
    if certs:
        # Kafka's ssl.* keys in the [security] table, on the same PKCS12 keystore as Kafka's.
        extra_toml = (f'[security]\n"ssl.keystore.type" = "PKCS12"\n'
                      f'"ssl.keystore.location" = {json.dumps(str(certs.keystore))}\n'
                      f'"ssl.keystore.password" = "{TLS_PASSWORD}"\n'
                      f'"ssl.key.password" = "{TLS_PASSWORD}"\n' + extra_toml)
    cfg = workdir / "sluice.toml"
    cfg.write_text(extra_toml + "[group]\ninitial_rebalance_delay_ms = 0\n")
    log = workdir / "sluice.stderr"
    b = Broker("sluice", workdir, bootstrap=f"127.0.0.1:{port}", log=log,
               tls_bootstrap=f"127.0.0.1:{sport}" if certs else "")
    listen = ["--listen", b.bootstrap]
    if certs:
        listen += ["--listen", f"SSL://{b.tls_bootstrap}"]
    with open(workdir / "sluice.stdout", "w") as out, open(log, "w") as err:
        b.spawned_at = time.monotonic()
        b.proc = spawn([str(binary), *listen, "--data-dir",
                        str(workdir / "data"), "--config", str(cfg)],
                       stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=child_env())
    return b


def wait_first_ack(b: Broker) -> float:
    """Seconds from spawn to the first acknowledged produce (acks=all). Waits for the port to
    accept connections, then retries a produce with a 1 s timeout until one is acknowledged.
    The topic doesn't exist yet, so the time includes its auto-creation."""
    from confluent_kafka import Producer

    host, port = b.bootstrap.rsplit(":", 1)
    deadline = b.spawned_at + START_TIMEOUT_S
    while True:
        b.check_alive("before accepting connections")
        try:
            with socket.create_connection((host, int(port)), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise BenchError(f"{b.system} did not accept connections within {START_TIMEOUT_S} s")
            time.sleep(0.01)
    attempts = 0
    while True:
        attempts += 1
        b.check_alive("before acknowledging a produce")
        acked: list = []
        p = Producer({
            "bootstrap.servers": b.bootstrap, "acks": "all", "message.timeout.ms": 1000,
            "socket.connection.setup.timeout.ms": 1000, "reconnect.backoff.ms": 10,
            "reconnect.backoff.max.ms": 100, "retry.backoff.ms": 20,
            "retry.backoff.max.ms": 100, "log_level": 0,
        })
        p.produce("bench-first-ack", b"x" * 1024,
                  on_delivery=lambda err, _msg: acked.append(err is None))
        p.flush(2.0)
        if acked and acked[0]:
            return time.monotonic() - b.spawned_at
        if time.monotonic() > deadline:
            raise BenchError(f"{b.system}: no produce acknowledged within {START_TIMEOUT_S} s "
                             f"({attempts} attempts)")


def create_topics(bootstrap: str, names: list[str], partitions: int):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    futs = admin.create_topics([NewTopic(n, partitions, 1) for n in names],
                               operation_timeout=30, request_timeout=30)
    for name, fut in futs.items():
        try:
            fut.result(timeout=60)
        except Exception as e:  # noqa: BLE001 - the client raises KafkaException subclasses
            raise BenchError(f"CreateTopics {name}: {e}") from e
    deadline = time.monotonic() + 60
    while True:
        md = admin.list_topics(timeout=10)
        ready = all(
            n in md.topics and md.topics[n].error is None
            and len(md.topics[n].partitions) == partitions
            and all(p.leader >= 0 for p in md.topics[n].partitions.values())
            for n in names)
        if ready:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"topics {names} did not get leaders within 60 s")
        time.sleep(0.1)


# ------------------------------------------------------------------------------------------
# Load generators

PRODUCER_TOTAL = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th")


@dataclass
class ToolRun:
    name: str
    cmd: list[str]
    proc: subprocess.Popen
    stderr: Path
    lines: list[tuple[float, str]] = field(default_factory=list)
    reader: threading.Thread | None = None


def start_tool(name: str, cmd: list[str], logdir: Path) -> ToolRun:
    err = logdir / f"{name}.stderr"
    with open(err, "w") as errf:
        p = spawn(cmd, stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL,
                  text=True, env=child_env())
    t = ToolRun(name, cmd, p, err)

    def read():
        assert p.stdout is not None
        for line in p.stdout:
            t.lines.append((time.monotonic(), line.rstrip("\n")))

    def read_and_save():
        read()
        try:  # kept for --keep; the dir may already be gone after an interrupt
            (logdir / f"{name}.stdout").write_text("\n".join(l for _, l in t.lines) + "\n")
        except OSError:
            pass

    t.reader = threading.Thread(target=read_and_save, daemon=True)
    t.reader.start()
    return t


def finish_tool(t: ToolRun, broker: Broker, notes: list[str]) -> list[tuple[float, str]]:
    deadline = time.monotonic() + TOOL_TIMEOUT_S
    while t.proc.poll() is None:
        if time.monotonic() > deadline:
            stop_process(t.proc, signal.SIGKILL, 10)
            raise BenchError(f"{t.name} did not finish within {TOOL_TIMEOUT_S} s")
        if broker.proc is not None and broker.proc.poll() is not None:
            stop_process(t.proc, signal.SIGKILL, 10)
            broker.check_alive(f"during {t.name}")
        time.sleep(0.05)
    assert t.reader is not None
    t.reader.join(timeout=10)
    errs = interesting_lines(t.stderr, r"ERROR|WARN|Exception|rror", 6)
    if errs:
        notes.append(f"{broker.system} / {t.name}: tool stderr: " + " | ".join(errs))
    if t.proc.returncode != 0:
        raise BenchError(f"{t.name} against {broker.system} exited {t.proc.returncode}:\n"
                         f"stdout tail: {[l for _, l in t.lines[-5:]]}\nstderr tail:\n{tail(t.stderr)}")
    return t.lines


def producer_perf(broker: Broker, topic: str, records: int, producers: int, record_size: int,
                  logdir: Path, notes: list[str], compression: str = "none",
                  extra: tuple[str, ...] = (), tag: str = "", throughput: int = -1,
                  tls_ca: Path | None = None) -> dict:
    """`producers` ProducerPerformance JVMs at once, each sending its share (unthrottled
    unless `throughput` records/s is given), with `extra` arguments (the transactional
    phase's). Throughput = all records / (first start .. last end), where each JVM's start is
    its reported end minus its own elapsed time (records / its records/sec). With `tls_ca`,
    the producers use the SSL listener and trust that CA."""
    runs = []
    bootstrap = broker.tls_bootstrap if tls_ca else broker.bootstrap
    tls = java_tls_props(tls_ca) if tls_ca else []
    for i in range(producers):
        share = records // producers + (1 if i < records % producers else 0)
        cmd = java_cmd(TOOL_HEAP, "org.apache.kafka.tools.ProducerPerformance", [
            "--bootstrap-server", bootstrap, "--topic", topic,
            "--num-records", str(share), "--record-size", str(record_size),
            "--throughput", str(throughput), "--command-property", "acks=all",
            f"client.id=bench-producer-{i}", f"compression.type={compression}", *tls, *extra])
        runs.append((share, start_tool(f"producer-perf-{producers}p-{compression}{tag}-{i}", cmd,
                                       logdir)))
    starts, ends, lat = [], [], []
    for share, t in runs:
        lines = finish_tool(t, broker, notes)
        total = [(ts, PRODUCER_TOTAL.search(l)) for ts, l in lines if PRODUCER_TOTAL.search(l)]
        if not total:
            raise BenchError(f"{t.name} against {broker.system} printed no summary line; stdout "
                             f"tail: {[l for _, l in lines[-5:]]}")
        ts, m = total[-1]
        sent, rps = int(m.group(1)), float(m.group(2))
        if sent != share:
            notes.append(f"{broker.system} / {t.name}: {sent} records sent of {share}")
        ends.append(ts)
        starts.append(ts - (sent / rps if rps > 0 else 0.0))
        lat.append({"records_s": rps, "avg_ms": float(m.group(4)), "p50_ms": int(m.group(6)),
                    "p99_ms": int(m.group(8)), "p999_ms": int(m.group(9))})
    window = max(ends) - min(starts)
    t0 = min(starts)
    for one, s0, e0 in zip(lat, starts, ends):
        one["start_s"], one["end_s"] = round(s0 - t0, 3), round(e0 - t0, 3)
    return {
        "records": records,
        "seconds": window,
        "records_s": records / window,
        "mib_s": records * record_size / MIB / window,
        # Per JVM: its own records/s, when it ran within the window, and its produce latency
        # at saturation (mostly time queued in the client). Shown in the JSON only.
        "per_producer": lat,
    }


def consumer_perf_cmd(broker: Broker, topic: str, records: int, group: str | None = None,
                      metrics: bool = False, isolation: str = "read_uncommitted",
                      tls_ca: Path | None = None) -> list[str]:
    return java_cmd(TOOL_HEAP, "org.apache.kafka.tools.ConsumerPerformance", [
        "--bootstrap-server", broker.tls_bootstrap if tls_ca else broker.bootstrap,
        "--topic", topic,
        "--num-records", str(records), "--timeout", "30000",
        "--group", group or f"bench-consumer-{uuid.uuid4().hex[:8]}",
        "--command-property", f"isolation.level={isolation}",
        # One flag per property: ConsumerPerformance's --command-property takes one value
        # (ProducerPerformance's takes several).
        *[arg for kv in (java_tls_props(tls_ca) if tls_ca else [])
          for arg in ("--command-property", kv)],
        *(["--print-metrics"] if metrics else [])])


# `--print-metrics` lines: `group:name:{tags}  : value`.
METRIC_LINE = re.compile(r"^([\w-]+):([\w-]+):\{([^}]*)\}\s*:\s*([-\d.E+]+|NaN)\s*$")


def client_metrics(lines: list[str]) -> dict:
    """The consumer's own totals: fetch requests, and bytes it sent and received (all nodes)."""
    want = {("consumer-fetch-manager-metrics", "fetch-total"): "fetches",
            ("consumer-metrics", "outgoing-byte-total"): "bytes_out",
            ("consumer-metrics", "incoming-byte-total"): "bytes_in"}
    out = {}
    for l in lines:
        m = METRIC_LINE.match(l.strip())
        if m and (m.group(1), m.group(2)) in want and "," not in m.group(3):
            out[want[(m.group(1), m.group(2))]] = float(m.group(4))
    return out


def consumer_perf(broker: Broker, topic: str, records: int, logdir: Path,
                  notes: list[str], isolation: str = "read_uncommitted",
                  group: str | None = None, metrics: bool = False,
                  name: str | None = None, tls_ca: Path | None = None) -> dict:
    cmd = consumer_perf_cmd(broker, topic, records, group, metrics, isolation, tls_ca)
    if name is None:
        name = "consumer-perf" if isolation == "read_uncommitted" else f"consumer-perf-{isolation}"
    lines = [l for _, l in finish_tool(start_tool(name, cmd, logdir), broker, notes)]
    return parse_consumer_perf(broker, records, lines, notes)


def parse_consumer_perf(broker: Broker, records: int, lines: list[str],
                        notes: list[str]) -> dict:
    header = next((i for i, l in enumerate(lines) if l.startswith("start.time")), None)
    if header is None or header + 1 >= len(lines):
        raise BenchError(f"consumer-perf against {broker.system} printed no stats: {lines[-5:]}")
    keys = [k.strip() for k in lines[header].split(",")]
    # The figures are the next line with as many fields (a WARNING line may come first).
    vals = next(([v.strip() for v in l.split(",")] for l in lines[header + 1:]
                 if len(l.split(",")) == len(keys) and not l.startswith("WARNING")), None)
    if vals is None:
        raise BenchError(f"consumer-perf against {broker.system} printed no stats line: "
                         f"{lines[header:header + 5]}")
    row = dict(zip(keys, vals))
    for l in lines:
        if "WARNING" in l:
            notes.append(f"{broker.system} / consumer-perf: {l}")
    n = int(row["data.consumed.in.nMsg"])
    if n < records:
        notes.append(f"{broker.system} / consumer-perf: read {n} of {records} records")
    return {
        "records": n,
        "bytes_mib": float(row["data.consumed.in.MB"]),
        "mib_s_total": float(row["MB.sec"]),
        "fetch_mib_s": float(row["fetch.MB.sec"]),
        "fetch_records_s": float(row["fetch.nMsg.sec"]),
        "rebalance_ms": float(row["rebalance.time.ms"]),
        "fetch_ms": float(row["fetch.time.ms"]),
        **client_metrics(lines),
    }


def e2e_latency(broker: Broker, probe: Path, topic: str, rate: float, partitions: int,
                duration: float, warmup: float, record_size: int, linger_ms: float,
                logdir: Path, notes: list[str], tls_ca: Path | None = None,
                name: str = "e2e-latency") -> dict:
    cmd = [str(probe), "--bootstrap", broker.tls_bootstrap if tls_ca else broker.bootstrap,
           "--topic", topic, "--rate", f"{rate:.0f}",
           "--partitions", str(partitions), "--duration-secs", str(duration),
           "--warmup-secs", str(warmup), "--record-size", str(record_size),
           "--linger-ms", f"{linger_ms:g}"]
    for kv in probe_tls_props(tls_ca) if tls_ca else []:
        cmd += ["--client-config", kv]
    lines = [l for _, l in finish_tool(start_tool(name, cmd, logdir), broker, notes)]
    js = next((l for l in reversed(lines) if l.startswith("{")), None)
    if js is None:
        raise BenchError(f"e2e_latency against {broker.system} printed no result: {lines[-5:]}")
    r = json.loads(js)
    if r["delivery_errors"]:
        notes.append(f"{broker.system} / e2e-latency: {r['delivery_errors']} delivery errors, "
                     f"first: {r['first_error']}")
    if r["received"] < r["acked"]:
        notes.append(f"{broker.system} / e2e-latency: consumer read {r['received']} of "
                     f"{r['acked']} acknowledged records")
    if r["achieved_rate"] < 0.95 * r["target_rate"]:
        notes.append(f"{broker.system} / e2e-latency: sent {r['achieved_rate']:.0f} records/s, "
                     f"below the target {r['target_rate']:.0f} (client queue full)")
    return r


# ------------------------------------------------------------------------------------------
# One broker, start to stop


@dataclass
class Sizes:
    records: int
    record_size: int
    partitions: int
    latency_secs: float
    warmup_secs: float
    idle_secs: float


def run_system(system: str, rep: int, sizes: Sizes, rate_box: dict, args, notes: list[str],
               certs: Certs | None = None) -> dict:
    """One run of one broker. With `certs` it also gets an SSL listener, and the TLS phases
    run after the others (with `args.tls_only`, instead of them)."""
    res: dict = {"system": system, "repeat": rep, "load_before": loadavg()}
    workdir = Path(tempfile.mkdtemp(prefix=f"sluice-bench-{system}-"))
    _tempdirs.append(workdir)
    logdir = workdir / "tools"
    logdir.mkdir()
    broker = None
    sampler = None
    t_run = time.monotonic()
    try:
        broker = (start_kafka(workdir, certs=certs) if system == "kafka"
                  else start_sluice(workdir, Path(args.sluice_bin), certs=certs))
        res["first_ack_s"] = wait_first_ack(broker)
        if system == "sluice":
            said = (workdir / "sluice.stdout").read_text(errors="replace")
            if f"listening on {broker.bootstrap}" not in said:
                notes.append(f"sluice repeat {rep}: stdout lacks 'listening on "
                             f"{broker.bootstrap}': {said[:200]!r}")
        sampler = RssSampler(broker.pid)
        sampler.start()
        t1, t4, tl = "bench-produce-1p", "bench-produce-4p", "bench-e2e-latency"
        tz = "bench-produce-1p-lz4"
        tt = "bench-produce-1p-txn"
        ts = "bench-produce-1p-tls"
        plain = not args.tls_only
        topics = ([t1, t4, tz, tt] if plain else []) + ([ts] if certs else [])
        create_topics(broker.bootstrap, topics, sizes.partitions)
        # Let start-up work settle (Kafka's JIT and background threads) before the idle figure.
        time.sleep(sizes.idle_secs)
        broker.check_alive("while idle")
        res["rss_idle_mib"] = proc_status_kib(broker.pid, "VmRSS") / 1024
        cpu_total0 = proc_cpu_s(broker.pid)

        def phase(name, moved_bytes_fn, fn):
            c0 = proc_cpu_s(broker.pid)
            out = fn()
            cpu = proc_cpu_s(broker.pid) - c0
            out["broker_cpu_s"] = cpu
            moved = moved_bytes_fn(out)
            out["cpu_s_per_gib"] = cpu / (moved / GIB) if moved else None
            res[name] = out
            print(f"    {name}: " + ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in out.items() if not isinstance(v, (list, dict))), flush=True)
            return out

        rs = sizes.record_size
        if plain:
            phase("produce_1p", lambda o: o["records"] * rs,
                  lambda: producer_perf(broker, t1, sizes.records, 1, rs, logdir, notes))
            phase("produce_4p", lambda o: o["records"] * rs,
                  lambda: producer_perf(broker, t4, sizes.records, 4, rs, logdir, notes))
            # lz4-compressed batches: both brokers decompress every batch to validate its records
            # (Kafka's LogValidator; Sluice's log::validate) and store it as sent.
            phase("produce_1p_lz4", lambda o: o["records"] * rs,
                  lambda: producer_perf(broker, tz, sizes.records, 1, rs, logdir, notes, "lz4"))
            phase("consume", lambda o: o["records"] * rs,
                  lambda: consumer_perf(broker, t1, sizes.records, logdir, notes))
            # Transactions: one producer committing every TXN_DURATION_MS (InitProducerId with a
            # transactional id, AddPartitionsToTxn, EndTxn and a marker on each of the topic's
            # partitions per transaction), then a read_committed consumer over what it wrote,
            # control batches and all.
            phase("produce_1p_txn", lambda o: o["records"] * rs,
                  lambda: producer_perf(broker, tt, sizes.records, 1, rs, logdir, notes,
                                        extra=("--transactional-id",
                                               f"bench-txn-{uuid.uuid4().hex[:8]}",
                                               "--transaction-duration-ms", str(TXN_DURATION_MS)),
                                        tag="-txn"))
            phase("consume_rc", lambda o: o["records"] * rs,
                  lambda: consumer_perf(broker, tt, sizes.records, logdir, notes,
                                        isolation="read_committed"))
        def probe_rate() -> float:
            # Half of Kafka's best produce rate in its first run: the plaintext produce phases,
            # or in a --tls-only run the TLS one. Every later run keeps it.
            if system == "kafka" and "rate" not in rate_box:
                best = max(res[k]["records_s"] for k in ("produce_1p", "produce_4p",
                                                          "produce_1p_tls") if k in res)
                rate_box["rate"] = round(best / 2)
                rate_box["from"] = f"half of Kafka's best records/s ({best:.0f}) in repeat {rep}"
            if "rate" not in rate_box:
                rate_box.update(rate=DEFAULT_RATE, **{"from": "default for runs without Kafka"})
            return rate_box["rate"]

        if plain:
            rate = probe_rate()
            for name, linger in (("latency", args.latency_linger_ms),
                                 ("latency_default_linger", DEFAULT_LINGER_MS),
                                 ("latency_no_linger", NO_LINGER_MS)):
                phase(name, lambda o: (o["acked"] + o["received"]) * rs,
                      lambda: e2e_latency(broker, Path(args.probe_bin), f"{tl}-{name}", rate,
                                          sizes.partitions, sizes.latency_secs,
                                          sizes.warmup_secs, rs, linger, logdir, notes))
        if certs:
            # TLS, after every plaintext phase so those run as without it: the same producer,
            # consumer and probe against the SSL listener (one keystore for both brokers,
            # clients trusting its CA). The probe runs at the rate and linger.ms of the
            # headline latency row.
            res["tls_handshake"] = tls_handshake(broker.tls_bootstrap, certs.ca)
            phase("produce_1p_tls", lambda o: o["records"] * rs,
                  lambda: producer_perf(broker, ts, sizes.records, 1, rs, logdir, notes,
                                        tag="-tls", tls_ca=certs.ca))
            phase("consume_tls", lambda o: o["records"] * rs,
                  lambda: consumer_perf(broker, ts, sizes.records, logdir, notes,
                                        name="consumer-perf-tls", tls_ca=certs.ca))
            rate = probe_rate()
            phase("latency_tls", lambda o: (o["acked"] + o["received"]) * rs,
                  lambda: e2e_latency(broker, Path(args.probe_bin), f"{tl}-tls", rate,
                                      sizes.partitions, sizes.latency_secs, sizes.warmup_secs,
                                      rs, args.latency_linger_ms, logdir, notes,
                                      tls_ca=certs.ca, name="e2e-latency-tls"))
        broker.check_alive("at the end of the load")
        res["broker_cpu_total_s"] = proc_cpu_s(broker.pid) - cpu_total0
        res["rss_peak_mib"] = proc_status_kib(broker.pid, "VmHWM") / 1024
        sampler.stop()
        res["rss_peak_sampled_mib"] = sampler.peak_kib / 1024
        res["data_dir_mib"] = sum(f.stat().st_size for f in workdir.rglob("*") if f.is_file()) / MIB
    except BenchError as e:
        res["error"] = str(e)
        notes.append(f"{system} repeat {rep}: FAILED: {e}")
        print(f"    FAILED: {e}", flush=True)
    finally:
        if sampler:
            sampler.stop()
        if broker and broker.proc:
            took = stop_process(broker.proc)
            rc = broker.proc.returncode
            res["shutdown_s"] = took
            if took is None:
                notes.append(f"{system} repeat {rep}: did not exit within {STOP_TIMEOUT_S} s of "
                             f"SIGTERM; killed")
            elif rc not in (0, -signal.SIGTERM, 143):
                notes.append(f"{system} repeat {rep}: exit status {rc} after SIGTERM")
            if broker.log:
                pat = r" (ERROR|WARN) " if system == "kafka" else r"\b(ERROR|WARN)\b"
                for line in interesting_lines(broker.log, pat, 5):
                    notes.append(f"{system} repeat {rep} log: {line}")
        if args.keep:
            print(f"    kept {workdir}")
            _tempdirs.remove(workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
            _tempdirs.remove(workdir)
    res["wall_s"] = time.monotonic() - t_run
    res["load_after"] = loadavg()
    return res


# ------------------------------------------------------------------------------------------
# Report

# (key, label, unit, higher is better, getter)
METRICS = [
    ("produce_1p_mib_s", "produce, 1 producer", "MiB/s", True,
     lambda r: r["produce_1p"]["mib_s"]),
    ("produce_1p_rec_s", "produce, 1 producer", "records/s", True,
     lambda r: r["produce_1p"]["records_s"]),
    ("produce_4p_mib_s", "produce, 4 producers", "MiB/s", True,
     lambda r: r["produce_4p"]["mib_s"]),
    ("produce_4p_rec_s", "produce, 4 producers", "records/s", True,
     lambda r: r["produce_4p"]["records_s"]),
    ("produce_lz4_mib_s", "produce, 1 producer, lz4 (validated)", "MiB/s", True,
     lambda r: r["produce_1p_lz4"]["mib_s"]),
    ("produce_lz4_rec_s", "produce, 1 producer, lz4 (validated)", "records/s", True,
     lambda r: r["produce_1p_lz4"]["records_s"]),
    ("consume_mib_s", "consume (fetch phase)", "MiB/s", True,
     lambda r: r["consume"]["fetch_mib_s"]),
    ("consume_rec_s", "consume (fetch phase)", "records/s", True,
     lambda r: r["consume"]["fetch_records_s"]),
    ("consume_join_ms", "consumer group join", "ms", False,
     lambda r: r["consume"]["rebalance_ms"]),
    ("produce_txn_mib_s", f"produce, 1 transactional producer ({TXN_DURATION_MS} ms transactions)",
     "MiB/s", True, lambda r: r["produce_1p_txn"]["mib_s"]),
    ("produce_txn_rec_s", f"produce, 1 transactional producer ({TXN_DURATION_MS} ms transactions)",
     "records/s", True, lambda r: r["produce_1p_txn"]["records_s"]),
    ("consume_rc_mib_s", "consume read_committed (fetch phase)", "MiB/s", True,
     lambda r: r["consume_rc"]["fetch_mib_s"]),
    ("consume_rc_rec_s", "consume read_committed (fetch phase)", "records/s", True,
     lambda r: r["consume_rc"]["fetch_records_s"]),
    ("e2e_p50", "end-to-end latency p50", "ms", False, lambda r: r["latency"]["p50_ms"]),
    ("e2e_p99", "end-to-end latency p99", "ms", False, lambda r: r["latency"]["p99_ms"]),
    ("e2e_p999", "end-to-end latency p99.9", "ms", False, lambda r: r["latency"]["p999_ms"]),
    ("e2e_rate", "latency probe: records/s sent", "records/s", None,
     lambda r: r["latency"]["achieved_rate"]),
    ("e2e5_p50", "end-to-end latency p50, linger.ms=5", "ms", False,
     lambda r: r["latency_default_linger"]["p50_ms"]),
    ("e2e5_p99", "end-to-end latency p99, linger.ms=5", "ms", False,
     lambda r: r["latency_default_linger"]["p99_ms"]),
    ("e2e5_p999", "end-to-end latency p99.9, linger.ms=5", "ms", False,
     lambda r: r["latency_default_linger"]["p999_ms"]),
    ("e2e0_p50", "end-to-end latency p50, linger.ms=0", "ms", False,
     lambda r: r["latency_no_linger"]["p50_ms"]),
    ("e2e0_p99", "end-to-end latency p99, linger.ms=0", "ms", False,
     lambda r: r["latency_no_linger"]["p99_ms"]),
    ("e2e0_p999", "end-to-end latency p99.9, linger.ms=0", "ms", False,
     lambda r: r["latency_no_linger"]["p999_ms"]),
    ("e2e0_rate", "latency probe at linger.ms=0: records/s sent", "records/s", None,
     lambda r: r["latency_no_linger"]["achieved_rate"]),
    ("tls_produce_mib_s", "TLS: produce, 1 producer", "MiB/s", True,
     lambda r: r["produce_1p_tls"]["mib_s"]),
    ("tls_produce_rec_s", "TLS: produce, 1 producer", "records/s", True,
     lambda r: r["produce_1p_tls"]["records_s"]),
    ("tls_consume_mib_s", "TLS: consume (fetch phase)", "MiB/s", True,
     lambda r: r["consume_tls"]["fetch_mib_s"]),
    ("tls_consume_rec_s", "TLS: consume (fetch phase)", "records/s", True,
     lambda r: r["consume_tls"]["fetch_records_s"]),
    ("tls_e2e_p50", "TLS: end-to-end latency p50", "ms", False,
     lambda r: r["latency_tls"]["p50_ms"]),
    ("tls_e2e_p99", "TLS: end-to-end latency p99", "ms", False,
     lambda r: r["latency_tls"]["p99_ms"]),
    ("tls_e2e_p999", "TLS: end-to-end latency p99.9", "ms", False,
     lambda r: r["latency_tls"]["p999_ms"]),
    ("tls_e2e_rate", "TLS: latency probe: records/s sent", "records/s", None,
     lambda r: r["latency_tls"]["achieved_rate"]),
    ("first_ack", "start → first acked produce", "s", False, lambda r: r["first_ack_s"]),
    ("rss_idle", "RSS idle", "MiB", False, lambda r: r["rss_idle_mib"]),
    ("rss_peak", "RSS peak (VmHWM)", "MiB", False, lambda r: r["rss_peak_mib"]),
    ("cpu_p1", "broker CPU per GiB, produce 1p", "CPU s/GiB", False,
     lambda r: r["produce_1p"]["cpu_s_per_gib"]),
    ("cpu_p4", "broker CPU per GiB, produce 4p", "CPU s/GiB", False,
     lambda r: r["produce_4p"]["cpu_s_per_gib"]),
    ("cpu_lz4", "broker CPU per GiB, produce 1p lz4", "CPU s/GiB", False,
     lambda r: r["produce_1p_lz4"]["cpu_s_per_gib"]),
    ("cpu_c", "broker CPU per GiB, consume", "CPU s/GiB", False,
     lambda r: r["consume"]["cpu_s_per_gib"]),
    ("cpu_txn", "broker CPU per GiB, transactional produce", "CPU s/GiB", False,
     lambda r: r["produce_1p_txn"]["cpu_s_per_gib"]),
    ("cpu_rc", "broker CPU per GiB, consume read_committed", "CPU s/GiB", False,
     lambda r: r["consume_rc"]["cpu_s_per_gib"]),
    ("cpu_lat", "broker CPU per GiB, latency phase (in+out)", "CPU s/GiB", False,
     lambda r: r["latency"]["cpu_s_per_gib"]),
    ("cpu_lat5", "broker CPU per GiB, latency phase, linger.ms=5", "CPU s/GiB", False,
     lambda r: r["latency_default_linger"]["cpu_s_per_gib"]),
    ("cpu_lat0", "broker CPU per GiB, latency phase, linger.ms=0", "CPU s/GiB", False,
     lambda r: r["latency_no_linger"]["cpu_s_per_gib"]),
    ("cpu_p1_tls", "broker CPU per GiB, TLS produce 1p", "CPU s/GiB", False,
     lambda r: r["produce_1p_tls"]["cpu_s_per_gib"]),
    ("cpu_c_tls", "broker CPU per GiB, TLS consume", "CPU s/GiB", False,
     lambda r: r["consume_tls"]["cpu_s_per_gib"]),
    ("cpu_lat_tls", "broker CPU per GiB, TLS latency phase (in+out)", "CPU s/GiB", False,
     lambda r: r["latency_tls"]["cpu_s_per_gib"]),
    ("shutdown", "SIGTERM → exit", "s", False, lambda r: r["shutdown_s"]),
]

# The TLS rows in the README's compact form: (label, unit, metric keys joined with " / ").
README_TLS_ROWS = [
    ("TLS produce, 1 producer, 1 KiB, acks=all", "MiB/s", ["tls_produce_mib_s"]),
    ("TLS consume, fetch phase", "MiB/s", ["tls_consume_mib_s"]),
    ("TLS end-to-end latency p50 / p99 / p99.9", "ms",
     ["tls_e2e_p50", "tls_e2e_p99", "tls_e2e_p999"]),
    ("broker CPU per GiB, TLS produce / consume", "s", ["cpu_p1_tls", "cpu_c_tls"]),
]


def collect(runs: list[dict]) -> dict:
    """metric key -> system -> list of values over the repeats that produced it."""
    out: dict = {}
    for key, *_rest, get in METRICS:
        out[key] = {}
        for s in SYSTEMS:
            vals = []
            for r in runs:
                if r["system"] != s:
                    continue
                try:
                    v = get(r)
                except (KeyError, TypeError):
                    continue
                if v is not None:
                    vals.append(float(v))
            out[key][s] = vals
    return out


def fmt(v: float) -> str:
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def fmt_ratio(r: float) -> str:
    return f"{r:.2f}×" if r >= 0.1 else f"{r:.2g}×"


# Kafka WARN lines that every healthy start or stop of a fresh single-node KRaft broker logs;
# they stay in latest.json but not in the report's notes.
BENIGN = (
    "Performing controller activation. The metadata log appears to be empty",
    "Attempting to close NetworkClient that has already been closed",
)


def cell(vals: list[float]) -> str:
    if not vals:
        return "—"
    m = statistics.median(vals)
    if len(vals) == 1:
        return fmt(m)
    return f"{fmt(m)} ({fmt(min(vals))}–{fmt(max(vals))})"


def render_markdown(meta: dict, runs: list[dict], notes: list[str]) -> str:
    data = collect(runs)
    m = meta["machine"]
    tls_only = meta.get("tls_only", False)
    lines = [
        "# Sluice vs Apache Kafka: side-by-side benchmark" + (", TLS phases only" if tls_only
                                                             else ""),
        "",
        f"- **date:** {meta['date']}",
        f"- **command:** `{meta['command']}`",
        f"- **machine:** {m['cores']} cores ({m['cpu']}), {m['mem_gib']} GiB RAM, "
        f"Linux {m['kernel']}; {m['java']}",
        f"- **load average** (1/5/15 min) at start: {meta['load_start']}; at end: "
        f"{meta['load_end']}. Other processes on the machine share its cores with the "
        "broker and the load generators.",
        f"- **sluice:** `{meta['sluice_bin']}` at commit {meta['git']}",
        f"- **kafka:** {LABEL['kafka']}, KRaft combined broker+controller, Kafka's "
        "`config/server.properties` with `group.initial.rebalance.delay.ms=0`, heap "
        "`-Xmx1G -Xms1G` and the JVM flags of `kafka-run-class.sh`",
        f"- **order:** {meta['order']} (each broker alone, {meta['repeats']} run(s) each); "
        f"total {meta['total_min']:.1f} min",
        f"- **load:** {meta['sizes']['records']:,} records × {meta['sizes']['record_size']} B "
        f"per produce phase, topics of {meta['sizes']['partitions']} partitions; "
        f"producers `acks=all`, otherwise the perf tool's defaults. Latency probe: "
        f"{meta['rate_desc']}, {meta['sizes']['latency_secs']:g} s "
        f"({meta['sizes']['warmup_secs']:g} s warm-up not measured), three times: producer "
        f"`linger.ms={meta.get('linger_ms', LATENCY_LINGER_MS):g}` (the plain "
        f"\"end-to-end latency\" rows), then the clients' default `linger.ms=5`, then "
        f"`linger.ms=0` (Kafka's EndToEndLatency tool's setting)." + (
            " TLS phases only: the probe runs once, at that first `linger.ms`." if tls_only
            else ""),
        *([f"- **TLS:** {tls_description(tls_only)}"] if meta.get("tls") else []),
        "",
        "Medians of the repeats, with min–max in brackets. The ratio is Sluice's median over "
        "Kafka's; ↑ means higher is better, ↓ lower is better. "
        "1 MiB = 2^20 bytes of record values, as in Kafka's perf tools (they print it as MB).",
        "",
        f"| metric | unit | {LABEL['kafka']} | Sluice | Sluice/Kafka | |",
        "|---|---|---:|---:|---:|:-:|",
    ]
    for key, label, unit, higher, _get in METRICS:
        k, s = data[key]["kafka"], data[key]["sluice"]
        if not k and not s:
            continue  # a phase this run left out (--tls-only), or one that failed everywhere
        ratio = (fmt_ratio(statistics.median(s) / statistics.median(k))
                 if k and s and statistics.median(k) else "—")
        arrow = "" if higher is None else ("↑" if higher else "↓")
        lines.append(f"| {label} | {unit} | {cell(k)} | {cell(s)} | {ratio} | {arrow} |")
    if meta.get("tls"):
        lines += ["", "The TLS rows in the top-level README's form (medians):", "",
                  *readme_rows(data, README_TLS_ROWS)]
        shakes = sorted({f"{r['system']}: {r['tls_handshake']}" for r in runs
                         if r.get("tls_handshake")})
        if shakes:
            lines += ["", "Handshake `openssl s_client` gets from each SSL listener: "
                      + "; ".join(shakes) + "."]
    lines += ["", "## Runs", "",
              "| # | system | wall (s) | load avg before | load avg after | status |",
              "|---|---|---:|---|---|---|"]
    for i, r in enumerate(runs, 1):
        status = "ok" if "error" not in r else "FAILED: " + r["error"].splitlines()[0][:120]
        lines.append(f"| {i} | {r['system']} | {r['wall_s']:.0f} | {r['load_before']} | "
                     f"{r['load_after']} | {status} |")
    lines += ["", "## Notes from the run", ""]
    notes = [n for n in notes if not any(b in n for b in BENIGN)]
    lines += [f"- {n}".replace("\n", " ") for n in notes] if notes else ["- none"]
    lines += ["", f"Raw figures of every run: `{'tls' if tls_only else 'latest'}.json`. "
              "How each figure is measured: "
              "`compat-tests/bench/README.md`.", ""]
    return "\n".join(lines)


def tls_description(tls_only: bool) -> str:
    order = ("The TLS phases (produce with 1 producer, consume, and the latency probe at "
             "the rate above and the headline `linger.ms`) run alone, so Kafka's JVM is "
             "colder than after the plaintext phases" if tls_only else
             "The TLS phases (produce with 1 producer, consume, and the latency probe at "
             "the headline row's rate and `linger.ms`) run after all the plaintext ones, "
             "on topics of their own")
    return ("both brokers get an SSL listener beside their PLAINTEXT one, on the same "
            "PKCS12 keystore: an RSA 2048 server certificate for 127.0.0.1 and localhost "
            "(SAN), signed by a CA that `openssl` makes once per run. Kafka serves TLS with "
            "the JDK's JSSE, Sluice with rustls (ring). Java clients trust the CA as a PEM "
            "truststore (`security.protocol=SSL`, `ssl.truststore.type=PEM`), the rdkafka "
            f"probe through `ssl.ca.location`; both verify the host name. {order}. Every JVM, Kafka's broker and the perf tools, has the flags of "
            "Kafka's own `bin/kafka-run-class.sh` (G1, C2 JIT on), as in the plaintext "
            "phases, not the compat tests' C1-only flags, under which Java's TLS is slow.")


def readme_rows(data: dict, rows) -> list[str]:
    """`| label (unit) | Kafka | Sluice | Sluice/Kafka |` rows of medians, several metrics
    joined with " / " as the README's latency rows are."""
    out = ["| metric | Kafka " + KAFKA_VERSION + " | Sluice | Sluice/Kafka |",
           "|---|---:|---:|---:|"]
    for label, unit, keys in rows:
        ks, ss, rs = [], [], []
        for key in keys:
            k, s = data[key]["kafka"], data[key]["sluice"]
            km = statistics.median(k) if k else None
            sm = statistics.median(s) if s else None
            ks.append(fmt(km) if km is not None else "—")
            ss.append(fmt(sm) if sm is not None else "—")
            rs.append(fmt_ratio(sm / km) if km and sm is not None else "—")
        out.append(f"| {label} ({unit}) | {' / '.join(ks)} | {' / '.join(ss)} | "
                   f"{' / '.join(rs)} |")
    return out


def render_chart(meta: dict, runs: list[dict], path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = collect(runs)
    # The usual twelve panels; rows a run left out (--tls-only) give their place to the TLS
    # rows.
    has = {k for k in data if data[k]["kafka"] or data[k]["sluice"]}
    tls_panels = ["tls_produce_mib_s", "tls_consume_mib_s", "tls_e2e_p50", "tls_e2e_p99",
                  "tls_e2e_p999", "cpu_p1_tls", "cpu_c_tls"]
    panels = [k for k in (tls_panels if meta.get("tls_only") else []) + ["produce_1p_mib_s", "produce_4p_mib_s", "consume_mib_s", "consume_join_ms",
                          "e2e_p50", "e2e_p99", "e2e_p999", "first_ack",
                          "rss_idle", "rss_peak", "cpu_p1", "cpu_c", *tls_panels]
              if k in has]
    panels = list(dict.fromkeys(panels))[:12]
    info = {k: (label, unit, higher) for k, label, unit, higher, _ in METRICS}
    colors = {"kafka": "#4C72B0", "sluice": "#DD8452"}
    fig, axes = plt.subplots(3, 4, figsize=(16, 12))
    for ax, key in zip(axes.flat, panels):
        label, unit, higher = info[key]
        xs, meds, lo, hi, cols = [], [], [], [], []
        for i, s in enumerate(SYSTEMS):
            vals = data[key][s]
            if not vals:
                continue
            med = statistics.median(vals)
            xs.append(i)
            meds.append(med)
            lo.append(med - min(vals))
            hi.append(max(vals) - med)
            cols.append(colors[s])
        ax.bar(xs, meds, color=cols, yerr=[lo, hi], capsize=6, width=0.6)
        for x, v, up in zip(xs, meds, hi):
            ax.annotate(fmt(v), (x, v + up), textcoords="offset points", xytext=(0, 3),
                        ha="center", fontsize=10, fontweight="bold")
        ax.set_xticks(range(len(SYSTEMS)), ["Kafka", "Sluice"], fontsize=10)
        arrow = "" if higher is None else (", higher is better" if higher else
                                           ", lower is better")
        k, s = data[key]["kafka"], data[key]["sluice"]
        ratio = (f"Sluice/Kafka = {fmt_ratio(statistics.median(s) / statistics.median(k))}"
                 if k and s and statistics.median(k) else "")
        ax.set_title(f"{label}\n{unit}{arrow}\n{ratio}", fontsize=10)
        ax.set_ylim(0, max([m + h for m, h in zip(meds, hi)] or [1]) * 1.15 or 1)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    m = meta["machine"]
    fig.suptitle(
        f"Sluice vs Apache Kafka {KAFKA_VERSION} — medians of {meta['repeats']} runs each "
        f"(bars: min–max)\n{meta['date']} · {m['cores']} cores, {m['mem_gib']} GiB · "
        f"{meta['sizes']['records']:,} × {meta['sizes']['record_size']} B, acks=all, "
        f"{meta['sizes']['partitions']} partitions · latency at {meta['rate']:,} records/s, "
        f"linger.ms={meta.get('linger_ms', LATENCY_LINGER_MS):g} · "
        f"load avg at start {meta['load_start']}", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ------------------------------------------------------------------------------------------
# consume_1000p: one Java consumer over 1,000 partitions, with and without incremental fetch
# sessions (KIP-227), on both brokers. Run alone with --consume-1000p.

P1000 = 1000
# (system, sessions on?) in the order each repeat runs them.
P1000_CONFIGS = [("kafka", True), ("kafka", False), ("sluice", True), ("sluice", False)]
P1000_LABEL = {("kafka", True): f"Kafka {KAFKA_VERSION}, sessions on",
               ("kafka", False): f"Kafka {KAFKA_VERSION}, sessions off",
               ("sluice", True): "Sluice, sessions on",
               ("sluice", False): "Sluice, sessions off"}


def wait_partition_dirs(workdir: Path, topic: str, n: int, timeout: float = 180.0):
    """Waits until the broker has made the log directories of all `n` partitions. Kafka
    answers Metadata with leaders before it has created every partition's log, and appends
    to a partition still being created fail (out-of-order sequence) on a loaded machine."""
    deadline = time.monotonic() + timeout
    names = {f"{topic}-{i}" for i in range(n)}
    while True:
        found = sum(1 for d in workdir.rglob(f"{topic}-*") if d.is_dir() and d.name in names)
        if found >= n:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"only {found} of {n} partition dirs of {topic} after {timeout} s")
        time.sleep(0.2)


def end_offsets_total(bootstrap: str, topic: str, n: int) -> int:
    """Sum of the high watermarks of `topic`'s `n` partitions."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watermarks",
                  "log_level": 0})
    try:
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in range(n))
    finally:
        c.close()


def wait_group_stable(bootstrap: str, group: str, timeout: float = 120.0):
    """Waits until `group` is Stable with a member that has an assignment."""
    from confluent_kafka import ConsumerGroupState
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    deadline = time.monotonic() + timeout
    while True:
        try:
            d = admin.describe_consumer_groups([group])[group].result(timeout=10)
            if d.state == ConsumerGroupState.STABLE and any(
                    m.assignment and m.assignment.topic_partitions for m in d.members):
                return
        except Exception:  # noqa: BLE001 - not there yet; ask again
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"group {group} not stable within {timeout} s")
        time.sleep(0.2)


def run_1000p(system: str, sessions: bool, rep: int, records: int, tail_records: int,
              tail_rate: int, args, notes: list[str]) -> dict:
    """Start the broker (sessions off: `max.incremental.fetch.session.cache.slots=0`), fill a
    1,000-partition topic, then (1) `bulk`: ConsumerPerformance reads it all in a fresh group;
    (2) `tail`: the same group, now at the end, reads `tail_records` more while one producer
    sends them at `tail_rate` records/s. Broker CPU is read around each step; the consumer
    prints its own fetch count and bytes sent and received (`--print-metrics`)."""
    res: dict = {"system": system, "sessions": sessions, "repeat": rep, "load_before": loadavg()}
    tag = f"{system}-{'on' if sessions else 'off'}"
    workdir = Path(tempfile.mkdtemp(prefix=f"sluice-bench-1000p-{tag}-"))
    _tempdirs.append(workdir)
    logdir = workdir / "tools"
    logdir.mkdir()
    broker = None
    t_run = time.monotonic()
    try:
        if system == "kafka":
            broker = start_kafka(workdir, "" if sessions else
                                 "max.incremental.fetch.session.cache.slots=0\n")
        else:
            broker = start_sluice(workdir, Path(args.sluice_bin), "" if sessions else
                                  "[broker]\nmax_incremental_fetch_session_cache_slots = 0\n")
        wait_first_ack(broker)
        topic, group = "bench-1000p", f"bench-1000p-{uuid.uuid4().hex[:8]}"
        create_topics(broker.bootstrap, [topic], P1000)
        wait_partition_dirs(workdir, topic, P1000)
        rs = 1024
        res["produce"] = producer_perf(broker, topic, records, 1, rs, logdir, notes)
        stored = end_offsets_total(broker.bootstrap, topic, P1000)
        if stored != records:
            notes.append(f"{tag} repeat {rep}: {stored} of {records} records stored")
        c0 = proc_cpu_s(broker.pid)
        bulk = consumer_perf(broker, topic, stored, logdir, notes, group=group, metrics=True,
                             name="consumer-perf-bulk")
        bulk["broker_cpu_s"] = proc_cpu_s(broker.pid) - c0
        bulk["cpu_s_per_gib"] = bulk["broker_cpu_s"] / (bulk["records"] * rs / GIB)
        res["bulk"] = bulk
        # Tail: the group's committed offsets are the end of the topic, so the consumer reads
        # exactly what the throttled producer sends. The producer starts once the consumer
        # has joined, and the window runs from then to the consumer's exit.
        cons = start_tool("consumer-perf-tail",
                          consumer_perf_cmd(broker, topic, tail_records, group, True), logdir)
        wait_group_stable(broker.bootstrap, group)
        c0, t0 = proc_cpu_s(broker.pid), time.monotonic()
        res["tail_produce"] = producer_perf(broker, topic, tail_records, 1, rs, logdir, notes,
                                            throughput=tail_rate)
        tail = parse_consumer_perf(broker, tail_records,
                                   [l for _, l in finish_tool(cons, broker, notes)], notes)
        wall = time.monotonic() - t0
        tail["broker_cpu_s"] = proc_cpu_s(broker.pid) - c0
        tail["wall_s"] = wall
        tail["broker_cpu_pct"] = 100 * tail["broker_cpu_s"] / wall
        res["tail"] = tail
        for step in ("bulk", "tail"):
            o = res[step]
            if o.get("fetches"):
                o["bytes_out_per_fetch"] = o["bytes_out"] / o["fetches"]
                o["bytes_in_per_fetch"] = o["bytes_in"] / o["fetches"]
        print(f"    {tag}: bulk {bulk['fetch_mib_s']:.1f} MiB/s, {bulk['cpu_s_per_gib']:.2f} CPU "
              f"s/GiB, {bulk.get('fetches', 0):.0f} fetches; tail broker CPU "
              f"{tail['broker_cpu_pct']:.1f}%, {tail.get('fetches', 0):.0f} fetches, "
              f"{tail.get('bytes_out_per_fetch', 0):.0f} B out / "
              f"{tail.get('bytes_in_per_fetch', 0):.0f} B in per fetch", flush=True)
    except BenchError as e:
        res["error"] = str(e)
        notes.append(f"{tag} repeat {rep}: FAILED: {e}")
        print(f"    FAILED: {e}", flush=True)
    finally:
        if broker and broker.proc:
            stop_process(broker.proc)
            if system == "sluice" and broker.log:
                # Sluice logs its fetch session counters at shutdown.
                for line in interesting_lines(broker.log, r"fetch sessions", 1):
                    res["sluice_session_counters"] = line
                    notes.append(f"{tag} repeat {rep}: {line.split('fetch sessions', 1)[1].strip()}")
            if broker.log:
                pat = r" (ERROR|WARN) " if system == "kafka" else r"\b(ERROR|WARN)\b"
                for line in interesting_lines(broker.log, pat, 5):
                    notes.append(f"{tag} repeat {rep} log: {line}")
        if args.keep:
            print(f"    kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        _tempdirs.remove(workdir)
    res["wall_s"] = time.monotonic() - t_run
    res["load_after"] = loadavg()
    return res


# (label, unit, higher is better, getter)
P1000_METRICS = [
    ("bulk read: fetch throughput", "MiB/s", True, lambda r: r["bulk"]["fetch_mib_s"]),
    ("bulk read: fetch throughput", "records/s", True, lambda r: r["bulk"]["fetch_records_s"]),
    ("bulk read: broker CPU per GiB", "CPU s/GiB", False, lambda r: r["bulk"]["cpu_s_per_gib"]),
    ("bulk read: fetch requests", "count", None, lambda r: r["bulk"]["fetches"]),
    ("bulk read: consumer bytes sent per fetch", "B", False,
     lambda r: r["bulk"]["bytes_out_per_fetch"]),
    ("tail: broker CPU", "% of a core", False, lambda r: r["tail"]["broker_cpu_pct"]),
    ("tail: fetch requests", "count", None, lambda r: r["tail"]["fetches"]),
    ("tail: broker CPU per fetch (producer's share included)", "ms", False,
     lambda r: 1000 * r["tail"]["broker_cpu_s"] / r["tail"]["fetches"]),
    ("tail: consumer bytes sent per fetch", "B", False, lambda r: r["tail"]["bytes_out_per_fetch"]),
    ("tail: consumer bytes received per fetch", "B", False,
     lambda r: r["tail"]["bytes_in_per_fetch"]),
    ("tail: consumer group join", "ms", False, lambda r: r["tail"]["rebalance_ms"]),
]


def render_1000p(meta: dict, runs: list[dict], notes: list[str]) -> str:
    m = meta["machine"]
    lines = [
        "# One consumer of 1,000 partitions, with and without incremental fetch sessions",
        "",
        f"- **date:** {meta['date']}",
        f"- **command:** `{meta['command']}`",
        f"- **machine:** {m['cores']} cores ({m['cpu']}), {m['mem_gib']} GiB RAM, "
        f"Linux {m['kernel']}; {m['java']}",
        f"- **load average** (1/5/15 min) at start: {meta['load_start']}; at end: "
        f"{meta['load_end']}.",
        f"- **sluice:** `{meta['sluice_bin']}` at commit {meta['git']}",
        f"- **load:** a topic of {P1000:,} partitions filled with {meta['records']:,} records × "
        f"1024 B (ProducerPerformance, acks=all). **bulk read:** ConsumerPerformance reads them "
        f"all in a fresh group (Java consumer defaults, classic group). **tail:** the same "
        f"group, at the end of the topic, reads {meta['tail_records']:,} more records while "
        f"one producer sends them at {meta['tail_rate']:,} records/s; broker CPU over that "
        f"window includes the producer's requests. Sessions off = "
        f"`max.incremental.fetch.session.cache.slots=0` on the broker (every fetch is full). "
        f"Bytes and fetch counts are the consumer's own metrics (`--print-metrics`).",
        f"- **order:** {meta['order']}; total {meta['total_min']:.1f} min",
        "",
        "Medians of the repeats, with min–max in brackets.",
        "",
        "| metric | unit | " + " | ".join(P1000_LABEL[c] for c in P1000_CONFIGS) + " | |",
        "|---|---|" + "---:|" * len(P1000_CONFIGS) + ":-:|",
    ]
    for label, unit, higher, get in P1000_METRICS:
        cells = []
        for system, sessions in P1000_CONFIGS:
            vals = []
            for r in runs:
                if r["system"] == system and r["sessions"] == sessions:
                    try:
                        vals.append(float(get(r)))
                    except (KeyError, TypeError):
                        pass
            cells.append(cell(vals))
        arrow = "" if higher is None else ("↑" if higher else "↓")
        lines.append(f"| {label} | {unit} | " + " | ".join(cells) + f" | {arrow} |")
    lines += ["", "## Notes from the run", ""]
    notes = [n for n in notes if not any(b in n for b in BENIGN)]
    lines += [f"- {n}".replace("\n", " ") for n in notes] if notes else ["- none"]
    lines.append("")
    return "\n".join(lines)


def main_1000p(args) -> int:
    records = args.records or 100_000
    repeats = args.repeats or 1
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": args.command or " ".join(shlex.quote(a) for a in sys.argv),
        "machine": machine(),
        "git": git_rev(),
        "sluice_bin": os.path.relpath(args.sluice_bin, REPO),
        "load_start": loadavg(),
        "records": records,
        "tail_records": args.tail_records,
        "tail_rate": args.tail_rate,
        "order": ", ".join(P1000_LABEL[c] for c in P1000_CONFIGS) + f"; {repeats} time(s)",
    }
    print(f"consume_1000p: {repeats} repeat(s) of {len(P1000_CONFIGS)} configurations, "
          f"{records:,} records; load average {meta['load_start']}", flush=True)
    runs, notes = [], []
    t0 = time.monotonic()
    failed = False
    try:
        for rep in range(1, repeats + 1):
            for system, sessions in P1000_CONFIGS:
                if args.only and system != args.only:
                    continue
                print(f"[{rep}] {P1000_LABEL[(system, sessions)]}, load average {loadavg()}",
                      flush=True)
                r = run_1000p(system, sessions, rep, records, args.tail_records, args.tail_rate,
                              args, notes)
                runs.append(r)
                failed |= "error" in r
    except Interrupted as e:
        print(f"\ninterrupted ({e}); stopping brokers and removing temp dirs", file=sys.stderr)
        cleanup()
        return 130
    finally:
        cleanup()
    meta["load_end"] = loadavg()
    meta["total_min"] = (time.monotonic() - t0) / 60
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = render_1000p(meta, runs, notes)
    (out / "consume_1000p.md").write_text(md)
    (out / "consume_1000p.json").write_text(
        json.dumps({"meta": meta, "runs": runs, "notes": notes}, indent=1, default=str) + "\n")
    print()
    print(md)
    print(f"wrote {out / 'consume_1000p.md'}, {out / 'consume_1000p.json'}")
    return 1 if failed else 0


# ------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run of about 3 minutes")
    ap.add_argument("--repeats", type=int, default=None, help="runs of each broker (default 2)")
    ap.add_argument("--records", type=int, default=None, help="records per produce phase")
    ap.add_argument("--latency-secs", type=float, default=None)
    ap.add_argument("--latency-rate", type=float, default=None,
                    help="fixed probe rate, records/s (default: half of Kafka's best)")
    ap.add_argument("--latency-linger-ms", type=float, default=LATENCY_LINGER_MS,
                    help=f"the probe producer's linger.ms (default {LATENCY_LINGER_MS:g})")
    ap.add_argument("--only", choices=SYSTEMS, default=None, help="run one system (debugging)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs (logs, data)")
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    ap.add_argument("--sluice-bin")
    ap.add_argument("--probe-bin")
    ap.add_argument("--render-only", metavar="JSON",
                    help="only redraw latest.md and latest.png from a latest.json")
    ap.add_argument("--command", default=None, help="the command line to print in the report")
    ap.add_argument("--consume-1000p", action="store_true",
                    help="only the 1,000-partition consumer, sessions on and off, both brokers")
    ap.add_argument("--tail-records", type=int, default=30_000,
                    help="--consume-1000p: records of the tail step (default 30,000)")
    ap.add_argument("--tail-rate", type=int, default=1_000,
                    help="--consume-1000p: producer rate of the tail step, records/s")
    ap.add_argument("--tls", action="store_true",
                    help="add the TLS phases (SSL listener on both brokers) after the others")
    ap.add_argument("--tls-only", action="store_true",
                    help="only the TLS phases; writes results/tls.{md,png,json}")
    args = ap.parse_args()
    if args.render_only:
        saved = json.loads(Path(args.render_only).read_text())
        if "tail_rate" in saved["meta"]:
            md = render_1000p(saved["meta"], saved["runs"], saved["notes"])
            (Path(args.out_dir) / "consume_1000p.md").write_text(md)
            print(md)
            return 0
        return write_results(Path(args.out_dir), saved["meta"], saved["runs"], saved["notes"],
                             rewrite_json=False)
    if args.tls_only and args.consume_1000p:
        ap.error("--tls-only and --consume-1000p each select their own phases; pick one")
    if not (args.sluice_bin and args.probe_bin):
        ap.error("--sluice-bin and --probe-bin are required (run.sh passes them)")
    if args.consume_1000p:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _on_signal)
        return main_1000p(args)

    if args.quick:
        sizes = Sizes(records=150_000, record_size=1024, partitions=6, latency_secs=10,
                      warmup_secs=2, idle_secs=2)
        repeats = args.repeats or 1
    else:
        sizes = Sizes(records=500_000, record_size=1024, partitions=6, latency_secs=30,
                      warmup_secs=5, idle_secs=3)
        repeats = args.repeats or 2
    if args.records:
        sizes.records = args.records
    if args.latency_secs:
        sizes.latency_secs = args.latency_secs
        sizes.warmup_secs = min(sizes.warmup_secs, args.latency_secs / 4)
    rate_box: dict = {}
    if args.latency_rate:
        rate_box = {"rate": round(args.latency_rate), "from": "given with --latency-rate"}

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)

    certs = None
    if args.tls or args.tls_only:
        try:
            certs = make_certs()
        except BenchError as e:
            print(f"side-by-side: {e}", file=sys.stderr)
            cleanup()
            return 1

    systems = [args.only] if args.only else list(SYSTEMS)
    order = [s for _ in range(repeats) for s in systems]
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": args.command or " ".join(shlex.quote(a) for a in sys.argv),
        "machine": machine(),
        "git": git_rev(),
        "sluice_bin": os.path.relpath(args.sluice_bin, REPO),
        "load_start": loadavg(),
        "repeats": repeats,
        "order": " ".join("A" if s == "kafka" else "B" for s in order) + " (A = Kafka, B = Sluice)",
        "sizes": sizes.__dict__,
        "linger_ms": args.latency_linger_ms,
        "tls": bool(certs),
        "tls_only": bool(args.tls_only),
    }
    print(f"side-by-side: {len(order)} runs ({meta['order']}), {sizes.records:,} records per "
          f"produce phase; load average {meta['load_start']}", flush=True)
    runs, notes = [], []
    t0 = time.monotonic()
    failed = False
    try:
        for i, system in enumerate(order):
            rep = i // len(systems) + 1
            print(f"[{i + 1}/{len(order)}] {system} (repeat {rep}), load average {loadavg()}",
                  flush=True)
            r = run_system(system, rep, sizes, rate_box, args, notes, certs)
            runs.append(r)
            failed |= "error" in r
            if "first_ack_s" in r:
                print(f"    first ack {r['first_ack_s']:.2f} s, RSS idle "
                      f"{r.get('rss_idle_mib', 0):.0f} MiB, peak {r.get('rss_peak_mib', 0):.0f} "
                      f"MiB, wall {r['wall_s']:.0f} s", flush=True)
    except Interrupted as e:
        print(f"\ninterrupted ({e}); stopping brokers and removing temp dirs", file=sys.stderr)
        cleanup()
        return 130
    finally:
        cleanup()

    meta["load_end"] = loadavg()
    meta["total_min"] = (time.monotonic() - t0) / 60
    meta["rate"] = rate_box.get("rate", 0)
    meta["rate_desc"] = (f"{meta['rate']:,} records/s ({rate_box.get('from', '?')})"
                         if rate_box else "no rate (no Kafka run)")
    return max(write_results(Path(args.out_dir), meta, runs, notes), 1 if failed else 0)


def write_results(out: Path, meta: dict, runs: list[dict], notes: list[str],
                  rewrite_json: bool = True) -> int:
    out.mkdir(parents=True, exist_ok=True)
    # A --tls-only run has its own files, so it leaves the full run's latest.* alone.
    base = "tls" if meta.get("tls_only") else "latest"
    md = render_markdown(meta, runs, notes)
    (out / f"{base}.md").write_text(md)
    if rewrite_json:
        (out / f"{base}.json").write_text(json.dumps({"meta": meta, "runs": runs, "notes": notes},
                                                     indent=1, default=str) + "\n")
    status = 0
    try:
        render_chart(meta, runs, out / f"{base}.png")
    except Exception as e:  # noqa: BLE001 - a chart problem must not hide the table
        print(f"chart not written: {e}", file=sys.stderr)
        status = 1
    print()
    print(md)
    print(f"wrote {out / (base + '.md')}, {out / (base + '.png')}, {out / (base + '.json')}")
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        cleanup()

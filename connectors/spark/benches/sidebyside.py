"""Side-by-side benchmark: sluice-spark's word count against Apache Spark 3.5's, on Sluice.

Run it through `connectors/spark/benches/run.sh`, which installs the Spark jars and the venv and
builds the release binaries first. One release `sluice` broker serves every run. Three word
counts read the same data one after the other, each in its own process, on the same batch
interval:

- `sluice-spark wordcount` (the binary of this crate);
- `DStreamWordCount` (jvm/): Spark Streaming's direct stream, as the seed job;
- `StructuredWordCount` (jvm/): Structured Streaming's Kafka source, groupBy count.

Phase 1 (throughput): one topic is filled with N lines of about 1 KiB, then each word count
reads it from the earliest offset with no rate limit. Phase 2 (steady rate): for each word
count a fresh, empty topic, read from the earliest offset; once the word count has completed
its first (empty) batch, a producer writes R records/s for S seconds. Every run stops once it has counted every record,
and its per-word totals must equal the ones computed here from the lines that were produced:
a run with a wrong total is reported as such.

Figures per run (all wall-clock times in epoch ms, one clock):
- records/s: records / (start of the first non-empty batch .. end of the batch that reaches
  the last record). A batch starts at its batch time (DStream and sluice-spark: the tick,
  whose job then lists the offsets) or at its trigger (Structured Streaming).
- batch latency: end of a batch - the tick it was due at (Spark's totalDelay = scheduling delay
  + processing time). sluice-spark: the tick is its batch time, the end is when its batch's
  output reaches us. Structured Streaming: the tick is the trigger time rounded down to the
  interval (ProcessingTimeExecutor's ticks are multiples of the interval), so a batch that
  starts late after a slow one counts only its lateness since the last tick.
- start-up: process spawn -> end of its first batch (phase 2, where the topic is empty then).
- peak RSS: the process's ru_maxrss from wait4 (VmHWM), and CPU seconds (user + system).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
CRATE = HERE.parent
REPO = CRATE.parent.parent
COMPAT = REPO / "compat-tests"
SPARK_VERSION = "3.5.3"
SPARK_HOME = COMPAT / ".cache" / f"spark-{SPARK_VERSION}"
README = CRATE / "README.md"
SECTION_START = "<!-- side-by-side: start (written by benches/sidebyside.py) -->"
SECTION_END = "<!-- side-by-side: end -->"

# Spark's launcher/JavaModuleOptions (3.5): what spark-submit adds on Java 17.
SPARK_JAVA17_OPTS = [
    "-XX:+IgnoreUnrecognizedVMOptions",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.cs=ALL-UNNAMED",
    "--add-opens=java.base/sun.security.action=ALL-UNNAMED",
    "--add-opens=java.base/sun.util.calendar=ALL-UNNAMED",
    "--add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    "-Djdk.reflect.useDirectMethodHandle=false",
]
# spark-submit's default spark.driver.memory; in local mode the driver runs the executors too.
SPARK_HEAP = ["-Xmx1g"]

SYSTEMS = ("sluice-spark", "dstream", "structured")
LABEL = {
    "sluice-spark": "sluice-spark",
    "dstream": f"Spark {SPARK_VERSION} DStream (direct)",
    "structured": f"Spark {SPARK_VERSION} Structured Streaming",
}
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


class BenchError(Exception):
    """A process could not be started, failed, or did not finish in time."""


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived."""


def _on_signal(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


# ------------------------------------------------------------------------------------------
# Processes: each child in its own session, so ^C reaches only us; we stop exactly the
# processes we started and remove the temp dirs we made.

_children: list[subprocess.Popen] = []
_tempdirs: list[Path] = []


def spawn(cmd, **kw) -> subprocess.Popen:
    p = subprocess.Popen(cmd, start_new_session=True, **kw)
    _children.append(p)
    return p


def kill_group(p: subprocess.Popen, sig: int):
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass


def cleanup():
    for p in _children:
        if p.poll() is None:
            kill_group(p, signal.SIGKILL)
            p.wait()
    _children.clear()
    for d in _tempdirs:
        shutil.rmtree(d, ignore_errors=True)
    _tempdirs.clear()


def reap(p: subprocess.Popen, timeout: float) -> tuple[int, float, int]:
    """Waits for `p` with wait4: (exit status, CPU seconds user+system, peak RSS KiB). SIGKILLs
    the group after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return p.returncode, ru.ru_utime + ru.ru_stime, ru.ru_maxrss
        if time.monotonic() > deadline:
            kill_group(p, signal.SIGKILL)
            deadline = time.monotonic() + 10
        time.sleep(0.02)


def now_ms() -> float:
    return time.time() * 1000.0


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def machine() -> dict:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    return {"cores": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem_kib / 1024 / 1024, 1),
            "kernel": platform.release(), "java": java[0] if java else "?"}


def git_rev() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


# ------------------------------------------------------------------------------------------
# The broker and the data


def start_broker(binary: Path, workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    cfg = workdir / "sluice.toml"
    # As Kafka's config/server.properties: no 3 s wait before a new group's first rebalance
    # (the DStream's driver consumer joins a group).
    cfg.write_text("[group]\ninitial_rebalance_delay_ms = 0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "SLUICE_"))}
    env.pop("RUST_LOG", None)
    with open(workdir / "sluice.stdout", "w") as out, open(workdir / "sluice.stderr", "w") as err:
        p = spawn([str(binary), "--listen", bootstrap, "--data-dir", str(workdir / "data"),
                   "--config", str(cfg)], stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if p.poll() is not None:
            raise BenchError(f"sluice exited ({p.returncode}):\n{tail(workdir / 'sluice.stderr')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return p, bootstrap
        except OSError:
            if time.monotonic() > deadline:
                raise BenchError(f"sluice did not listen within {START_TIMEOUT_S} s")
            time.sleep(0.02)


def create_topic(bootstrap: str, name: str, partitions: int):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    fut = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=30)[name]
    try:
        fut.result(timeout=60)
    except Exception as e:  # noqa: BLE001 - the client raises KafkaException subclasses
        raise BenchError(f"CreateTopics {name}: {e}") from e
    deadline = time.monotonic() + 60
    while True:
        md = admin.list_topics(timeout=10).topics.get(name)
        if md is not None and md.error is None and len(md.partitions) == partitions and all(
                p.leader >= 0 for p in md.partitions.values()):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"topic {name} got no leaders within 60 s")
        time.sleep(0.1)


@dataclass
class Lines:
    """A pool of distinct lines; record i is pool[i % len(pool)], so the expected per-word
    totals of any prefix of records are known exactly."""
    pool: list[bytes]
    words: list[collections.Counter]

    def expected(self, records: int) -> collections.Counter:
        full, rest = divmod(records, len(self.pool))
        total: collections.Counter = collections.Counter()
        for i, c in enumerate(self.words):
            k = full + (1 if i < rest else 0)
            if k:
                for w, n in c.items():
                    total[w] += n * k
        return total


def make_lines(pool_size: int, line_bytes: int, vocab_size: int, seed: int) -> Lines:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab: list[str] = []
    seen: set[str] = set()
    while len(vocab) < vocab_size:
        w = "".join(rng.choice(letters) for _ in range(rng.randint(2, 10)))
        if w not in seen:
            seen.add(w)
            vocab.append(w)
    # A Zipf-like skew, as text has: a few words are frequent, most are rare.
    weights = [1.0 / (i + 1) for i in range(vocab_size)]
    pool, words = [], []
    for _ in range(pool_size):
        parts: list[str] = []
        size = -1
        while True:
            w = rng.choices(vocab, weights)[0]
            if size + 1 + len(w) > line_bytes:
                break
            parts.append(w)
            size += 1 + len(w)
        # Single spaces only, none leading or trailing: Java's String.split(" ") (the
        # DStream, sluice-spark) and Spark SQL's split(value, " ") (which keeps trailing
        # empty strings) then give the same words.
        pool.append(" ".join(parts).encode())
        words.append(collections.Counter(parts))
    return Lines(pool, words)


def producer(bootstrap: str):
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                     "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000,
                     "queue.buffering.max.kbytes": 1_048_576, "log_level": 0})


def produce_all(bootstrap: str, topic: str, lines: Lines, records: int) -> float:
    """Produces `records` records as fast as the client goes; returns seconds."""
    p = producer(bootstrap)
    failed: list[str] = []

    def on_delivery(err, _msg):
        if err is not None:
            failed.append(str(err))

    t0 = time.monotonic()
    n = len(lines.pool)
    for i in range(records):
        while True:
            try:
                p.produce(topic, lines.pool[i % n], on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
    if p.flush(120) != 0 or failed:
        raise BenchError(f"producing to {topic}: {len(failed)} failed ({failed[:3]}), "
                         f"{len(p)} undelivered")
    return time.monotonic() - t0


class SteadyProducer(threading.Thread):
    """Produces `records` records at `rate` records/s in 10 ms steps."""

    def __init__(self, bootstrap: str, topic: str, lines: Lines, records: int, rate: float):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.lines = bootstrap, topic, lines
        self.records, self.rate = records, rate
        self.error: str | None = None
        self.sent = 0
        self.behind_s = 0.0

    def run(self):
        try:
            p = producer(self.bootstrap)
            failed: list[str] = []

            def on_delivery(err, _msg):
                if err is not None:
                    failed.append(str(err))

            n = len(self.lines.pool)
            t0 = time.monotonic()
            while self.sent < self.records:
                due = min(self.records, int((time.monotonic() - t0) * self.rate) + 1)
                while self.sent < due:
                    p.produce(self.topic, self.lines.pool[self.sent % n], on_delivery=on_delivery)
                    self.sent += 1
                p.poll(0)
                next_at = t0 + self.sent / self.rate
                pause = next_at - time.monotonic()
                if pause > 0:
                    time.sleep(min(pause, 0.01))
            self.behind_s = time.monotonic() - t0 - self.records / self.rate
            if p.flush(60) != 0 or failed:
                self.error = f"{len(failed)} failed ({failed[:3]}), {len(p)} undelivered"
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            self.error = repr(e)


# ------------------------------------------------------------------------------------------
# The three word counts


@dataclass
class BatchFig:
    records: int
    start_ms: float      # the batch's start (tick, or trigger start)
    end_ms: float        # the batch's end (results out)
    delay_ms: float      # end - the tick it was due at


@dataclass
class Run:
    system: str
    phase: str
    spawned_ms: float = 0.0
    # When the steady producer was started (phase 2), epoch ms.
    load_started_ms: float = 0.0
    batches: list[BatchFig] = field(default_factory=list)
    counts: collections.Counter = field(default_factory=collections.Counter)
    done: threading.Event = field(default_factory=threading.Event)
    seen: int = 0
    cpu_s: float = 0.0
    peak_rss_kib: int = 0
    exit_code: int | None = None
    load_before: str = ""
    load_after: str = ""


def sluice_spark_cmd(binary: Path, bootstrap: str, topic: str, interval_ms: int) -> list[str]:
    # No --group: the Java jobs commit nothing either (enable.auto.commit=false and no
    # commitAsync). --top above the vocabulary prints every word of every batch, so the totals
    # can be added up here, as the Java jobs collect theirs to the driver.
    return [str(binary), "wordcount", "--bootstrap-server", bootstrap, "--topics", topic,
            "--batch-interval", f"{interval_ms}ms", "--starting", "earliest",
            "--top", "100000000"]


def java_cmd(classes: Path, cls: str, args: list[str]) -> list[str]:
    return ["java", *SPARK_HEAP, *SPARK_JAVA17_OPTS,
            f"-Dlog4j2.configurationFile={SPARK_HOME / 'log4j2-quiet.properties'}",
            "-cp", f"{SPARK_HOME / 'jars'}/*:{classes}", cls, *args]


TIME_LINE = re.compile(r"^Time: (\d+) ms$")
RANGE_LINE = re.compile(r"^(\S+) (\d+) (\d+) (\d+)$")
WORD_LINE = re.compile(r"^\((.*),(\d+)\)$")
KV = re.compile(r"(\w+)=(-?\d+)")


def run_one(system: str, phase: str, cmd: list[str], expected: int, interval_ms: int,
            logdir: Path, timeout_s: float, env: dict, start_load=None) -> Run:
    """Runs one word count until it has counted `expected` records. With `start_load`, that
    is called once the first batch (even an empty one) has completed: the job is up."""
    run = Run(system, phase)
    run.load_before = loadavg()
    err_path = logdir / f"{phase}-{system}.stderr"
    out_path = logdir / f"{phase}-{system}.stdout"
    with open(err_path, "w") as errf:
        run.spawned_ms = now_ms()
        p = spawn(cmd, stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL, env=env,
                  text=True, bufsize=1)

    def read_sluice_spark(line: str, at_ms: float, cur: dict):
        m = TIME_LINE.match(line)
        if m:
            cur.clear()
            cur.update(time=int(m.group(1)), end=at_ms, records=0, words=[])
            return
        if not cur:
            return
        m = RANGE_LINE.match(line)
        if m:
            cur["records"] += int(m.group(4)) - int(m.group(3))
            return
        m = WORD_LINE.match(line)
        if m:
            cur["words"].append((m.group(1), int(m.group(2))))
            return
        if line == "":
            # The blank line after the words ends the batch: it is counted only now, so the
            # run stops after its last batch's words are in.
            run.batches.append(BatchFig(cur["records"], cur["time"], cur["end"],
                                        cur["end"] - cur["time"]))
            for w, c in cur["words"]:
                run.counts[w] += c
            run.seen += cur["records"]
            cur.clear()
            if run.seen >= expected:
                run.done.set()

    def read_java(line: str, _at_ms: float, _cur: dict):
        if line.startswith("BATCH "):
            f = {k: int(v) for k, v in KV.findall(line)}
            if system == "dstream":
                b = BatchFig(f["records"], f["time"], f["end"], f["total"])
            else:
                start = f["start"]
                end = start + max(f["proc"], 0)
                tick = start - start % interval_ms
                b = BatchFig(f["records"], start, end, end - tick)
            run.batches.append(b)
            run.seen += b.records
        elif line.startswith("COUNT "):
            _, w, c = line.rsplit(" ", 2) if line.count(" ") >= 2 else (line, "", "0")
            run.counts[w] += int(c)
        elif line == "DONE":
            run.done.set()

    handler = read_sluice_spark if system == "sluice-spark" else read_java

    def reader():
        cur: dict = {}
        with open(out_path, "w") as save:
            assert p.stdout is not None
            for line in p.stdout:
                at = now_ms()
                line = line.rstrip("\n")
                save.write(line + "\n")
                handler(line, at, cur)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    deadline = time.monotonic() + timeout_s
    while not run.done.wait(0.05):
        if start_load is not None and run.batches and not run.load_started_ms:
            run.load_started_ms = now_ms()
            start_load()
        if p.poll() is not None:
            raise BenchError(f"{system} ({phase}) exited {p.returncode} after {run.seen} of "
                             f"{expected} records; stderr tail:\n{tail(err_path)}")
        if time.monotonic() > deadline:
            kill_group(p, signal.SIGKILL)
            raise BenchError(f"{system} ({phase}) counted {run.seen} of {expected} records in "
                             f"{timeout_s:.0f} s; stderr tail:\n{tail(err_path)}")
    run.load_after = loadavg()
    if system == "sluice-spark":
        # Ctrl-C/SIGTERM: finishes the batch in flight and exits 0.
        kill_group(p, signal.SIGTERM)
    code, run.cpu_s, run.peak_rss_kib = reap(p, STOP_TIMEOUT_S)
    run.exit_code = code
    t.join(timeout=10)
    return run


# ------------------------------------------------------------------------------------------
# Figures


def pct(xs: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(xs)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))
    return s[k]


def figures(run: Run, expected_counts: collections.Counter, records: int,
            warmup_s: float = 0.0) -> dict:
    full = [b for b in run.batches if b.records > 0]
    first = full[0] if full else None
    up = run.batches[0] if run.batches else None
    # The batch that reaches the last record.
    acc, last = 0, None
    for b in run.batches:
        acc += b.records
        if acc >= records:
            last = b
            break
    window_s = (last.end_ms - first.start_ms) / 1000 if first and last else float("nan")
    # Latency (phase 2) over the batches that start warmup_s after the producer did, up to
    # the one that reaches the last record.
    steady = []
    if run.load_started_ms:
        since = run.load_started_ms + warmup_s * 1000
        steady = [b for b in run.batches
                  if b.start_ms >= since and (last is None or b.end_ms <= last.end_ms)]
    delays = [b.delay_ms for b in steady]
    diff = {w: (expected_counts.get(w, 0), run.counts.get(w, 0))
            for w in set(expected_counts) | set(run.counts)
            if expected_counts.get(w, 0) != run.counts.get(w, 0)}
    return {
        "records": run.seen,
        "batches": len(run.batches),
        "nonempty_batches": len(full),
        "records_s": records / window_s if window_s and window_s > 0 else float("nan"),
        "window_s": window_s,
        "first_batch_s": (up.end_ms - run.spawned_ms) / 1000 if up else float("nan"),
        "first_result_s": (first.end_ms - run.spawned_ms) / 1000 if first else float("nan"),
        "latency_batches": len(delays),
        "latency_p50_ms": pct(delays, 50),
        "latency_p99_ms": pct(delays, 99),
        "latency_max_ms": max(delays) if delays else float("nan"),
        "peak_rss_mib": run.peak_rss_kib / 1024,
        "cpu_s": run.cpu_s,
        "exit_code": run.exit_code,
        "counts_ok": not diff,
        "words": len(run.counts),
        "word_total": sum(run.counts.values()),
        "count_diffs": dict(list(sorted(diff.items()))[:10]),
        "load_before": run.load_before,
        "load_after": run.load_after,
        "batch_log": [[b.records, round(b.start_ms), round(b.end_ms), round(b.delay_ms)]
                      for b in run.batches],
    }


def fmt(x: float, digits: int = 0) -> str:
    if x != x:  # NaN
        return "–"
    return f"{x:,.{digits}f}"


def ratio(a: float, b: float) -> str:
    """a / b, as `1.23×`."""
    if a != a or b != b or a <= 0 or b <= 0:
        return "–"
    return f"{a / b:.2f}×"


def render(res: dict) -> str:
    p = res["params"]
    systems = [s for s in SYSTEMS if s in res["phase1"]]
    out = []
    out.append(f"Run {res['date']} on {res['machine']['cores']} cores "
               f"({res['machine']['cpu']}, {res['machine']['mem_gib']} GiB), "
               f"{res['machine']['java']}, commit {res['commit']}. Load average (1, 5, 15 min) "
               f"at the start: {res['load_start']}, at the end: {res['load_end']}.")
    out.append("")
    out.append(f"Command: `{res['command']}`")
    out.append("")
    out.append(f"Batch interval {p['interval_ms']} ms for all three; {p['partitions']} partitions; "
               f"lines of {p['avg_line_bytes']:.0f} bytes on average ({p['words_per_line']:.0f} "
               f"words, a {p['vocab']}-word vocabulary). Phase 1: {p['records']:,} records "
               f"({p['records'] * p['avg_line_bytes'] / 1e6:.0f} MB) already in the topic, read "
               f"from the earliest offset. Phase 2: {p['rate']:,} records/s for "
               f"{p['steady_secs']:.0f} s into an empty topic, started once the word count's first "
               f"(empty) batch is done; latency over the batches that start from "
               f"{p['warmup_s']:.0f} s after the producer.")
    out.append("")
    head = "| | " + " | ".join(LABEL[s] for s in systems) + " |"
    out.append(head)
    out.append("|---|" + "---|" * len(systems))
    p1, p2 = res["phase1"], res["phase2"]

    def row(name, get, digits=0, phase=p1):
        cells = []
        for s in systems:
            v = get(phase[s]) if s in phase else float("nan")
            cells.append(fmt(v, digits))
        out.append(f"| {name} | " + " | ".join(cells) + " |")

    row("Phase 1: records/s", lambda f: f["records_s"])
    row("Phase 1: MB/s", lambda f: f["records_s"] * p["avg_line_bytes"] / 1e6, 1)
    row("Phase 1: batches (non-empty)", lambda f: f["nonempty_batches"])
    row("Phase 1: CPU seconds", lambda f: f["cpu_s"], 1)
    row("Phase 1: peak RSS (MiB)", lambda f: f["peak_rss_mib"])
    if p2:
        row("Phase 2: start-up to first batch (s)", lambda f: f["first_batch_s"], 1, p2)
        row("Phase 2: batch latency p50 (ms)", lambda f: f["latency_p50_ms"], 0, p2)
        row("Phase 2: batch latency p99 (ms)", lambda f: f["latency_p99_ms"], 0, p2)
        row("Phase 2: batches measured", lambda f: f["latency_batches"], 0, p2)
        row("Phase 2: CPU seconds", lambda f: f["cpu_s"], 1, p2)
        row("Phase 2: peak RSS (MiB)", lambda f: f["peak_rss_mib"], 0, p2)
    ok = []
    for s in systems:
        both = [ph[s] for ph in (p1, p2) if s in ph]
        ok.append("yes" if all(f["counts_ok"] for f in both) else "**NO**")
    out.append("| Word totals equal the expected ones | " + " | ".join(ok) + " |")
    out.append("")
    # Ratios: sluice-spark against each Spark mode; above 1 means sluice-spark is better.
    others = [s for s in systems if s != "sluice-spark"]
    if "sluice-spark" in systems and others:
        out.append("sluice-spark against each Spark mode (above 1: sluice-spark is better):")
        out.append("")
        out.append("| | " + " | ".join(f"vs {LABEL[s]}" for s in others) + " |")
        out.append("|---|" + "---|" * len(others))
        me1 = p1["sluice-spark"]
        me2 = p2.get("sluice-spark")

        def rrow(name, key, phase, mine, higher_better):
            cells = []
            for s in others:
                if mine is None or s not in phase:
                    cells.append("–")
                    continue
                a, b = mine[key], phase[s][key]
                cells.append(ratio(a, b) if higher_better else ratio(b, a))
            out.append(f"| {name} | " + " | ".join(cells) + " |")

        rrow("Throughput (records/s)", "records_s", p1, me1, True)
        rrow("CPU seconds for phase 1 (fewer is better)", "cpu_s", p1, me1, False)
        rrow("Peak RSS, phase 1 (smaller is better)", "peak_rss_mib", p1, me1, False)
        if me2:
            rrow("Start-up to first batch (shorter is better)", "first_batch_s", p2, me2, False)
            rrow("Batch latency p50 (lower is better)", "latency_p50_ms", p2, me2, False)
            rrow("Batch latency p99 (lower is better)", "latency_p99_ms", p2, me2, False)
        out.append("")
    sample = res.get("sample_words", {})
    if sample:
        out.append("Totals of a few words after phase 1 (expected, then each word count): " + "; ".join(
            f"`{w}` {v['expected']:,} / " + " / ".join(f"{v.get(s, 0):,}" for s in systems)
            for w, v in sample.items()) + ".")
        out.append("")
    loads = "; ".join(f"{LABEL[s]} {ph}: {res[ph][s]['load_before']} → {res[ph][s]['load_after']}"
                      for ph in ("phase1", "phase2") for s in systems if s in res[ph])
    out.append(f"Load average before → after each run: {loads}.")
    for n in res.get("notes", []):
        out.append("")
        out.append(f"Note: {n}")
    wrapped = []
    for line in out:
        if line.startswith("|") or len(line) <= 95:
            wrapped.append(line)
        else:
            wrapped.append(textwrap.fill(line, 95, break_on_hyphens=False,
                                         break_long_words=False))
    return "\n".join(wrapped) + "\n"


def write_readme(section: str):
    text = README.read_text()
    block = f"{SECTION_START}\n{section}{SECTION_END}"
    if SECTION_START in text and SECTION_END in text:
        a = text.index(SECTION_START)
        b = text.index(SECTION_END) + len(SECTION_END)
        text = text[:a] + block + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n## Side by side with Apache Spark\n\n" + README_INTRO + "\n" + block + "\n"
    README.write_text(text)


README_INTRO = """\
`bash connectors/spark/benches/run.sh` runs the seed's word count three ways on one release
`sluice` broker, one after the other, on the same data and batch interval: `sluice-spark
wordcount`, Spark 3.5's DStream direct stream (`benches/jvm/DStreamWordCount.java`:
`KafkaUtils.createDirectStream`, `PreferConsistent`, `Subscribe`, `split(" ")`, `mapToPair`,
`reduceByKey`) and Structured Streaming (`benches/jvm/StructuredWordCount.java`: the Kafka
source, `split`/`explode`, `groupBy("word").count()`, update mode, `ProcessingTime` trigger),
both Spark jobs in `local[2]` with `-Xmx1g` (spark-submit's default driver memory), Spark's own
Java 17 `--add-opens` flags, no web UI, and for Structured Streaming
`spark.sql.shuffle.partitions=2` (the default 200 state partitions would mostly measure task
overhead on two cores). Each job's batch results are collected to its driver and added up, and
every word's total must equal the total computed from the produced lines.
`compat-tests/scripts/install-spark.sh` fetches the jars (not part of `install-all.sh`).

What the figures mean: records/s is all records over the time from the start of the first
non-empty batch to the end of the batch that reaches the last record (with no rate limit that
is one batch for each); batch latency is a batch's end minus the tick it was due at (Spark's
`totalDelay`: scheduling delay + processing time), over the phase-2 batches; start-up is
process spawn to the end of the first batch (phase 2, on an empty topic); peak RSS is the
process's high-water mark (`wait4`'s `ru_maxrss`); CPU seconds are user + system time. `benches/sidebyside.py`'s docstring says exactly how
each is taken, `benches/results/latest.json` holds the raw per-batch figures. The machine has
two cores that the broker, the producer and the word count share, and other builds may have
run alongside: the load averages are part of the result.

Reading them: phase 1 is one batch for each job (no rate limit), so Spark's figure includes
its first job's warm-up (class loading, JIT, code generation), which a long-running Spark job
pays once; phase 2 shows the steady state. With a few dozen batches, p99 is the slowest batch.
Start-up includes the wait for the first tick: sluice-spark's first batch is due one interval
after it starts (a whole interval), a DStream's at the next multiple of the interval, and
Structured Streaming triggers its first batch at once.
sluice-spark's figures include printing every word of every batch to stdout (so its totals can
be checked), the Spark jobs' include collecting each batch's counts to the driver.

Spark 3.5 ships kafka-clients 3.4.1, whose ApiVersions v3 parser refuses a supported feature
whose minimum level is 0; like Kafka (KAFKA-17492), Sluice leaves those out of answers below
v4 (`src/api/meta/api_versions.rs`), without which no Spark 3.5 job could connect.
"""


# ------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=300_000, help="phase 1 records")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--interval-ms", type=int, default=2000, help="batch interval, all three")
    ap.add_argument("--line-bytes", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=2000)
    ap.add_argument("--rate", type=int, default=1000, help="phase 2 records/s")
    ap.add_argument("--steady-secs", type=float, default=60.0, help="phase 2 length")
    ap.add_argument("--warmup-s", type=float, default=10.0,
                    help="phase 2: batches starting this long after the producer count")
    ap.add_argument("--only", choices=SYSTEMS, action="append", help="run some systems only")
    ap.add_argument("--skip-steady", action="store_true", help="phase 1 only")
    ap.add_argument("--bootstrap", help="use this running broker instead of starting sluice "
                    "(debugging; the report then names no broker)")
    ap.add_argument("--sluice-bin", required=True)
    ap.add_argument("--sluice-spark-bin", required=True)
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    ap.add_argument("--no-readme", action="store_true", help="don't rewrite README.md's section")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data)")
    ap.add_argument("--command", default="bash connectors/spark/benches/run.sh")
    args = ap.parse_args()
    systems = [s for s in SYSTEMS if not args.only or s in args.only]

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    if not (SPARK_HOME / "jars").is_dir():
        print(f"no Spark jars in {SPARK_HOME}: run compat-tests/scripts/install-spark.sh",
              file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="sluice-spark-sbs-"))
    if not args.keep:
        _tempdirs.append(work)
    print(f"sidebyside: work dir {work}", file=sys.stderr)
    try:
        return bench(args, systems, work)
    except BenchError as e:
        print(f"sidebyside: FAILED: {e}", file=sys.stderr)
        return 1
    except Interrupted as e:
        print(f"sidebyside: interrupted ({e})", file=sys.stderr)
        return 130
    finally:
        cleanup()


def bench(args, systems: list[str], work: Path) -> int:
    load_start = loadavg()
    classes = work / "classes"
    classes.mkdir()
    srcs = sorted(str(p) for p in (HERE / "jvm").glob("*.java"))
    r = subprocess.run(["javac", "-nowarn", "-d", str(classes), "-cp", f"{SPARK_HOME / 'jars'}/*",
                        *srcs], capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"javac failed:\n{r.stdout}{r.stderr}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "SLUICE_", "SPARK_"))}
    env.pop("RUST_LOG", None)
    # Spark binds its driver to the host's address unless told; the broker is on loopback.
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    env["NO_COLOR"] = "1"
    logdir = work / "logs"
    logdir.mkdir()
    if args.bootstrap:
        broker, bootstrap = None, args.bootstrap
    else:
        broker, bootstrap = start_broker(Path(args.sluice_bin), work)
    lines = make_lines(1000, args.line_bytes, args.vocab, seed=20240601)
    avg_bytes = statistics.mean(len(l) for l in lines.pool)
    words_per_line = statistics.mean(sum(c.values()) for c in lines.words)
    notes: list[str] = []

    def cmd_for(system: str, topic: str, expected: int) -> list[str]:
        tag = uuid.uuid4().hex[:8]
        if system == "sluice-spark":
            return sluice_spark_cmd(Path(args.sluice_spark_bin), bootstrap, topic, args.interval_ms)
        if system == "dstream":
            return java_cmd(classes, "DStreamWordCount",
                            [bootstrap, topic, str(args.interval_ms), str(expected), f"sbs-{tag}"])
        ckpt = work / f"checkpoint-{tag}"
        return java_cmd(classes, "StructuredWordCount",
                        [bootstrap, topic, str(args.interval_ms), str(expected), str(ckpt)])

    # Phase 1: throughput over a filled topic.
    # Names unique per run, for --bootstrap's long-lived broker.
    run_tag = uuid.uuid4().hex[:6]
    topic = f"sbs-bulk-{run_tag}"
    create_topic(bootstrap, topic, args.partitions)
    print(f"sidebyside: producing {args.records:,} records to {topic}", file=sys.stderr)
    secs = produce_all(bootstrap, topic, lines, args.records)
    print(f"sidebyside: produced in {secs:.1f} s", file=sys.stderr)
    expected1 = lines.expected(args.records)
    phase1: dict = {}
    counts1: dict = {}
    for s in systems:
        if broker is not None and broker.poll() is not None:
            raise BenchError(f"sluice exited ({broker.returncode}):\n{tail(work / 'sluice.stderr')}")
        print(f"sidebyside: phase 1, {s} (load {loadavg()})", file=sys.stderr)
        run = run_one(s, "phase1", cmd_for(s, topic, args.records), args.records,
                      args.interval_ms, logdir, 600, env)
        phase1[s] = figures(run, expected1, args.records)
        counts1[s] = run.counts
        f = phase1[s]
        print(f"sidebyside:   {fmt(f['records_s'])} records/s, CPU {f['cpu_s']:.1f} s, peak RSS "
              f"{f['peak_rss_mib']:.0f} MiB, counts {'ok' if f['counts_ok'] else 'WRONG'}",
              file=sys.stderr)
        if not f["counts_ok"]:
            notes.append(f"{LABEL[s]}, phase 1: word totals differ from the expected ones, e.g. "
                         f"(expected, got) {f['count_diffs']}")
        if f["exit_code"] != 0:
            notes.append(f"{LABEL[s]}, phase 1: exit status {f['exit_code']}")

    # Phase 2: steady rate, latency.
    phase2: dict = {}
    steady_records = int(args.rate * args.steady_secs)
    expected2 = lines.expected(steady_records)
    for s in ([] if args.skip_steady else systems):
        topic2 = f"sbs-steady-{s}-{run_tag}"
        create_topic(bootstrap, topic2, args.partitions)
        print(f"sidebyside: phase 2, {s} (load {loadavg()})", file=sys.stderr)
        prod = SteadyProducer(bootstrap, topic2, lines, steady_records, args.rate)
        # The producer starts once the job's first (empty) batch is done: start-up is not
        # mixed into the latency, and every job faces the same load.
        run = run_one(s, "phase2", cmd_for(s, topic2, steady_records), steady_records,
                      args.interval_ms, logdir, args.steady_secs + 300, env, prod.start)
        prod.join(timeout=60)
        if prod.error:
            raise BenchError(f"steady producer for {s}: {prod.error}")
        if prod.behind_s > 1.0:
            notes.append(f"phase 2, {LABEL[s]}: the producer fell {prod.behind_s:.1f} s behind "
                         f"its rate")
        phase2[s] = figures(run, expected2, steady_records, args.warmup_s)
        f = phase2[s]
        print(f"sidebyside:   first batch {f['first_batch_s']:.2f} s, latency p50 "
              f"{fmt(f['latency_p50_ms'])} ms p99 {fmt(f['latency_p99_ms'])} ms over "
              f"{f['latency_batches']} batches, counts {'ok' if f['counts_ok'] else 'WRONG'}",
              file=sys.stderr)
        if not f["counts_ok"]:
            notes.append(f"{LABEL[s]}, phase 2: word totals differ from the expected ones, e.g. "
                         f"(expected, got) {f['count_diffs']}")
        if f["exit_code"] != 0:
            notes.append(f"{LABEL[s]}, phase 2: exit status {f['exit_code']}")

    # Three words from the top, the middle and the tail of the distribution.
    ranked = [w for w, _ in expected1.most_common()]
    sample = {}
    for w in (ranked[0], ranked[len(ranked) // 2], ranked[-1]) if ranked else ():
        sample[w] = {"expected": expected1[w], **{s: counts1[s].get(w, 0) for s in systems}}

    res = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_rev(),
        "command": args.command,
        "machine": machine(),
        "load_start": load_start,
        "load_end": loadavg(),
        "params": {"records": args.records, "partitions": args.partitions,
                   "interval_ms": args.interval_ms, "vocab": args.vocab,
                   "avg_line_bytes": avg_bytes, "words_per_line": words_per_line,
                   "rate": args.rate, "steady_secs": args.steady_secs,
                   "warmup_s": args.warmup_s, "spark": SPARK_VERSION},
        "phase1": phase1,
        "phase2": phase2,
        "sample_words": sample,
        "notes": notes,
    }
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = render(res)
    (out / "latest.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "latest.md").write_text(md)
    print(md)
    if not args.no_readme and set(systems) == set(SYSTEMS):
        write_readme(md)
        print(f"sidebyside: wrote {README}", file=sys.stderr)
    wrong = [s for s in systems for ph in (phase1, phase2) if s in ph and not ph[s]["counts_ok"]]
    if wrong:
        print(f"sidebyside: word totals WRONG for {sorted(set(wrong))}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

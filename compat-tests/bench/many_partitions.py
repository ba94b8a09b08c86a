#!/usr/bin/env python3
"""A broker with many partitions starts and serves them all.

    compat-tests/.cache/venv/bin/python compat-tests/bench/many_partitions.py \
        [--bin target/release/sluice] [--topics 60] [--partitions 1000] [--nofile 20000]
        [--data DIR [--skip-create]]

Runs the broker under `prlimit --nofile=N:N` (raising a hard limit needs root), creates
TOPICS topics of PARTITIONS partitions each with confluent-kafka's admin client, stops the
broker with SIGTERM, starts it again on the same data directory, and then checks that
Metadata lists every partition and that a record produced to the last partition of every
topic is read back. Prints how long each step took. The data directory is a temp dir,
removed at the end, unless `--data DIR` names one to use and keep; `--skip-create` starts on
such a directory as it is (topics named many-000, many-001, ...).

Every partition holds a file descriptor, so the partitions served are bounded by the
limit: raising a hard limit needs CAP_SYS_RESOURCE.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def start(args, data, log):
    cmd = ["prlimit", f"--nofile={args.nofile}:{args.nofile}", "--", args.bin,
           "--listen", "127.0.0.1:0", "--data-dir", data]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    for line in p.stdout:
        m = re.match(r"listening on (\S+)", line)
        if m:
            return p, m.group(1), time.monotonic() - t0
    sys.exit(f"broker exited with {p.wait()} before listening")


def stop(p):
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=600)
    if rc != 0:
        sys.exit(f"broker exited with {rc} after SIGTERM")
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/debug/sluice")
    ap.add_argument("--topics", type=int, default=60)
    ap.add_argument("--partitions", type=int, default=1000)
    ap.add_argument("--nofile", type=int, default=20000)
    ap.add_argument("--data")
    ap.add_argument("--skip-create", action="store_true")
    args = ap.parse_args()
    total = args.topics * args.partitions
    tmp = tempfile.mkdtemp(prefix="sluice-many-")
    data = args.data or os.path.join(tmp, "data")
    log = open(os.path.join(tmp, "stderr.log"), "w")
    try:
        p, addr, t = start(args, data, log)
        print(f"first start: {t:.2f}s")
        admin = AdminClient({"bootstrap.servers": addr, "broker.address.family": "v4"})
        names = [f"many-{i:03}" for i in range(args.topics)]
        t0 = time.monotonic()
        for name in [] if args.skip_create else names:
            futs = admin.create_topics([NewTopic(name, args.partitions, 1)],
                                       operation_timeout=600, request_timeout=600)
            for f in futs.values():
                f.result()
        if not args.skip_create:
            print(f"created {args.topics} topics, {total} partitions: "
                  f"{time.monotonic() - t0:.1f}s")
        print(f"clean stop: {stop(p):.1f}s")
        p, addr, t = start(args, data, log)
        print(f"restart with {total} partitions: {t:.1f}s to `listening on`")
        with open(os.path.join(tmp, "stderr.log")) as f:
            offline = sum("topic is offline" in line for line in f)
        print(f"topics logged offline: {offline}")
        admin = AdminClient({"bootstrap.servers": addr, "broker.address.family": "v4"})
        md = admin.list_topics(timeout=120)
        served = sum(len(md.topics[n].partitions) for n in names if n in md.topics)
        print(f"Metadata lists {served} of {total} partitions")
        prod = Producer({"bootstrap.servers": addr, "broker.address.family": "v4"})
        last = args.partitions - 1
        names = [n for n in names if n in md.topics and not md.topics[n].error]
        for n in names:
            prod.produce(n, value=n.encode(), partition=last)
        if prod.flush(120) != 0:
            sys.exit("records not delivered")
        cons = Consumer({"bootstrap.servers": addr, "group.id": "many",
                         "broker.address.family": "v4", "enable.auto.commit": False})
        cons.assign([TopicPartition(n, last, 0) for n in names])
        got = set()
        end = time.monotonic() + 120
        while len(got) < len(names) and time.monotonic() < end:
            m = cons.poll(1.0)
            if m is not None and m.error() is None:
                got.add(m.value().decode())
        cons.close()
        print(f"read back {len(got)} of {len(names)} records (one per topic, last partition)")
        with open(f"/proc/{p.pid}/status") as f:
            rss = next(l for l in f if l.startswith("VmRSS")).split(":")[1].strip()
        fds = len(os.listdir(f"/proc/{p.pid}/fd"))
        print(f"broker: {fds} open descriptors, RSS {rss}")
        print(f"clean stop: {stop(p):.1f}s")
        ok = served == total and len(got) == len(names)
        print("OK" if ok else "FAILED")
        sys.exit(0 if ok else 1)
    finally:
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

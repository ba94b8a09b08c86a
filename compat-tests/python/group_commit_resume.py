"""One consumer-group member run with a manual commit, for kafka-python or confluent-kafka.

Usage: group_commit_resume.py CLIENT BOOTSTRAP TOPIC GROUP COUNT EXPECT_FIRST

CLIENT is `kafka-python` or `confluent`. TOPIC has one partition whose record at offset N has
the value `rec-N`. The script subscribes to TOPIC in GROUP (auto commit off, auto.offset.reset
earliest), reads COUNT records and checks that the first one is at EXPECT_FIRST and that the
offsets run on without gaps. It then commits the offset after the last record it used, even if
the client fetched further, reads the committed offset back through its own client, and closes.
Records past the COUNT-th are never used, so the next run in GROUP must start exactly after
them. Prints `CONSUMED FIRST LAST` and `OK`; exits non-zero on any mismatch.
"""

import sys
import time

DEADLINE_S = 40


def check(cond, msg):
    if not cond:
        print(f"FAIL: {msg}", file=sys.stderr)
        sys.exit(1)


def run_kafka_python(bootstrap, topic, group, count):
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=30000,
        heartbeat_interval_ms=500,
    )
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + DEADLINE_S
    while len(got) < count and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            got.extend(batch)
    check(len(got) >= count, f"kafka-python: read {len(got)} of {count} records in {DEADLINE_S} s")
    used = got[:count]
    tp = TopicPartition(topic, 0)
    next_offset = used[-1].offset + 1
    consumer.commit({tp: OffsetAndMetadata(next_offset, "", -1)})
    committed = consumer.committed(tp)
    consumer.close()
    return [(r.offset, r.value) for r in used], committed


def run_confluent(bootstrap, topic, group, count):
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "heartbeat.interval.ms": 500,
    })
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + DEADLINE_S
    while len(got) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        check(msg.error() is None, f"confluent: consumer error {msg.error()}")
        got.append((msg.offset(), msg.value()))
    check(len(got) == count, f"confluent: read {len(got)} of {count} records in {DEADLINE_S} s")
    next_offset = got[-1][0] + 1
    consumer.commit(offsets=[TopicPartition(topic, 0, next_offset)], asynchronous=False)
    [tp] = consumer.committed([TopicPartition(topic, 0)], timeout=20)
    check(tp.error is None, f"confluent: committed() error {tp.error}")
    consumer.close()
    return got, tp.offset


def main():
    client, bootstrap, topic, group = sys.argv[1:5]
    count, expect_first = int(sys.argv[5]), int(sys.argv[6])
    if client == "kafka-python":
        used, committed = run_kafka_python(bootstrap, topic, group, count)
    elif client == "confluent":
        used, committed = run_confluent(bootstrap, topic, group, count)
    else:
        check(False, f"unknown client {client}")
    offsets = [o for o, _ in used]
    check(offsets == list(range(expect_first, expect_first + count)),
          f"{client}: offsets {offsets}, expected {expect_first}..{expect_first + count - 1}")
    for o, v in used:
        check(v == f"rec-{o}".encode(), f"{client}: value at offset {o} is {v!r}")
    check(committed == offsets[-1] + 1,
          f"{client}: committed offset reads back as {committed}, expected {offsets[-1] + 1}")
    print(f"CONSUMED {offsets[0]} {offsets[-1]}")
    print("OK")


if __name__ == "__main__":
    main()

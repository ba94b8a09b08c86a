"""kafka-python against Sluice: produce with every codec, read back with assign + seek.

Usage: kafka_python_roundtrip.py BOOTSTRAP TOPIC_PREFIX

For each codec (none, gzip, snappy, lz4, zstd) it writes keyed records, a null key, headers and
an empty value to TOPIC_PREFIX-CODEC, then reads them back without a consumer group
(group_id=None, assign + seek_to_beginning) and checks every byte. Exits non-zero on any
mismatch. kafka-python picks its protocol versions from the broker's ApiVersions answer.
"""

import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.codec import has_lz4, has_snappy, has_zstd

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]


def records(tag):
    recs = []
    for i in range(20):
        recs.append((f"key-{i}".encode(), f"{tag} value {i} {'lorem ipsum ' * 10}".encode(), []))
    recs.append((None, f"{tag} null key".encode(), []))
    recs.append((b"with-headers", b"h", [("h1", b"v1"), ("h-empty", b""), ("bin", bytes([0, 255, 1]))]))
    recs.append((b"empty-value", b"", []))
    recs.append((b"bin-key\x00\xff", bytes(range(256)), []))
    return recs


def check(cond, msg):
    if not cond:
        print(f"FAIL: {msg}", file=sys.stderr)
        sys.exit(1)


def main():
    bootstrap, prefix = sys.argv[1], sys.argv[2]
    check(has_snappy() and has_lz4() and has_zstd(), "kafka-python codec libraries missing")
    for codec in CODECS:
        name = codec or "none"
        topic = f"{prefix}-{name}"
        producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            compression_type=codec,
            acks="all",
            linger_ms=5,
            request_timeout_ms=20000,
        )
        recs = records(name)
        futures = [producer.send(topic, key=k, value=v, headers=h) for k, v, h in recs]
        producer.flush(timeout=60)
        metas = [f.get(timeout=30) for f in futures]
        producer.close(timeout=10)
        offsets = [m.offset for m in metas]
        check(offsets == list(range(len(recs))), f"{name}: offsets {offsets}")
        check(all(m.partition == 0 for m in metas), f"{name}: partitions {[m.partition for m in metas]}")

        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=30000,
        )
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        got = []
        deadline = time.monotonic() + 40
        while len(got) < len(recs) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                got.extend(batch)
        consumer.close()
        check(len(got) == len(recs), f"{name}: read {len(got)} of {len(recs)} records")
        for i, (rec, (k, v, h)) in enumerate(zip(got, recs)):
            check(rec.offset == i, f"{name}: record {i} at offset {rec.offset}")
            check(rec.key == k, f"{name}: key {i}: {rec.key!r} != {k!r}")
            check(rec.value == v, f"{name}: value {i}: {rec.value!r} != {v!r}")
            check(list(rec.headers) == h, f"{name}: headers {i}: {rec.headers!r} != {h!r}")
        print(f"kafka-python {name}: {len(recs)} records round-tripped")
    print("OK")


if __name__ == "__main__":
    main()

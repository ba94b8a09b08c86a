"""confluent-kafka (librdkafka) against Sluice: headers, metadata, offsets_for_times.

Usage: confluent_roundtrip.py BOOTSTRAP TOPIC

Produces records with headers and explicit timestamps, lists topic metadata, reads them back
with assign(OFFSET_BEGINNING) and enable.auto.commit=false (no group coordinator needed), and
looks offsets up by timestamp. Exits non-zero on any mismatch.
"""

import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition


def check(cond, msg):
    if not cond:
        print(f"FAIL: {msg}", file=sys.stderr)
        sys.exit(1)


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    base_ts = int(time.time() * 1000) - 60_000
    recs = []
    for i in range(10):
        headers = [("idx", str(i).encode()), ("kind", b"confluent"), ("empty", b"")]
        recs.append((f"k{i}".encode(), f"value-{i}".encode(), headers, base_ts + i * 1000))

    acked = []
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked.append((msg.partition(), msg.offset()))

    producer = Producer({"bootstrap.servers": bootstrap, "broker.address.family": "v4",
                         "linger.ms": 5, "compression.codec": "zstd", "acks": "all"})
    for k, v, h, ts in recs:
        producer.produce(topic, key=k, value=v, headers=h, timestamp=ts, on_delivery=on_delivery)
    remaining = producer.flush(30)
    check(remaining == 0, f"{remaining} records not delivered")
    check(not errors, f"delivery errors: {errors}")
    check(sorted(acked) == [(0, i) for i in range(len(recs))], f"acks {acked}")

    md = producer.list_topics(timeout=20)
    check(len(md.brokers) == 1, f"brokers: {md.brokers}")
    broker = next(iter(md.brokers.values()))
    check(f"{broker.host}:{broker.port}" == bootstrap,
          f"advertised {broker.host}:{broker.port}, bootstrap {bootstrap}")
    check(topic in md.topics, f"topic {topic} missing from {list(md.topics)}")
    tmd = md.topics[topic]
    check(tmd.error is None, f"topic error {tmd.error}")
    check(list(tmd.partitions) == [0], f"partitions {list(tmd.partitions)}")
    check(tmd.partitions[0].leader == broker.id, f"leader {tmd.partitions[0].leader} != {broker.id}")
    print(f"metadata: broker {broker.id} at {broker.host}:{broker.port}, {topic} has 1 partition")

    consumer = Consumer({"bootstrap.servers": bootstrap, "broker.address.family": "v4",
                         "group.id": "sluice-compat-manual", "enable.auto.commit": False,
                         "enable.auto.offset.store": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = []
    deadline = time.monotonic() + 40
    while len(got) < len(recs) and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            print(f"consumer error: {msg.error()}", file=sys.stderr)
            continue
        got.append(msg)
    check(len(got) == len(recs), f"read {len(got)} of {len(recs)}")
    for i, (msg, (k, v, h, ts)) in enumerate(zip(got, recs)):
        check(msg.offset() == i, f"offset {msg.offset()} != {i}")
        check(msg.key() == k and msg.value() == v, f"record {i}: {msg.key()!r}={msg.value()!r}")
        check(msg.headers() == h, f"headers {i}: {msg.headers()!r} != {h!r}")
        check(msg.timestamp()[1] == ts, f"timestamp {i}: {msg.timestamp()} != {ts}")

    def offset_for(ts):
        res = consumer.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=20)
        check(res[0].error is None, f"offsets_for_times error {res[0].error}")
        return res[0].offset

    check(offset_for(base_ts) == 0, f"ts base -> {offset_for(base_ts)}")
    check(offset_for(base_ts + 4500) == 5, f"ts base+4500 -> {offset_for(base_ts + 4500)}")
    check(offset_for(base_ts + 100_000) == -1, f"ts after end -> {offset_for(base_ts + 100_000)}")
    lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=20)
    check((lo, hi) == (0, len(recs)), f"watermarks {(lo, hi)}")
    consumer.close()
    print("OK")


if __name__ == "__main__":
    try:
        main()
    except KafkaException as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)

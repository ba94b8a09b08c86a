"""confluent-kafka (librdkafka) transactions: commit, abort, send_offsets_to_transaction.

Usage: txn_roundtrip.py BOOTSTRAP TOPIC INPUT OUTPUT GROUP

TOPIC must exist with three partitions, INPUT and OUTPUT with one, all empty.

1. A transactional producer commits a transaction (records "commit1-P-I" on every
   partition P), aborts a second ("abort-P-I") and commits a third ("commit2-P-I").
   A read_committed consumer must read exactly the committed records, a read_uncommitted
   one all of them; each transaction must leave one control record per partition (the
   offsets the consumers skip).
2. Consume-transform-produce: ten records go to INPUT. A member of GROUP (read_committed)
   reads them; a transaction writes the first five, transformed, to OUTPUT and sends the
   input offset 5 with send_offsets_to_transaction and commits; a second one does the same
   for the next five with offset 10 and aborts. The group must be at 5; a new member resumes
   there, and its committed transaction moves the group to 10. OUTPUT read_committed holds
   each transformed record once.

Prints "OK" at the end; exits non-zero on any mismatch.
"""

import sys
import time
import uuid

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)

DEADLINE_S = 40
TXN_CALL_S = 30
PARTITIONS = 3
PER_PARTITION = 4


def check(cond, msg):
    if not cond:
        print(f"FAIL: {msg}", file=sys.stderr)
        sys.exit(1)


def base(bootstrap):
    return {"bootstrap.servers": bootstrap, "broker.address.family": "v4"}


def txn_producer(bootstrap, acked):
    def on_delivery(err, msg):
        check(err is None, f"delivery of {msg.key()!r}: {err}")
        acked.append((msg.partition(), msg.offset(), msg.key().decode()))

    conf = dict(base(bootstrap), **{"transactional.id": f"ck-txn-{uuid.uuid4()}",
                                    "linger.ms": 5, "message.timeout.ms": 30000})
    p = Producer(conf)
    p.init_transactions(TXN_CALL_S)
    return p, on_delivery


def read_all(bootstrap, partitions, isolation, want):
    """Reads every partition from the start until `want` records arrived and each partition
    reported EOF after its last record; returns (partition, offset, key) sorted."""
    c = Consumer(dict(base(bootstrap), **{
        "group.id": "sluice-compat-manual", "enable.auto.commit": False,
        "enable.auto.offset.store": False, "enable.partition.eof": True,
        "isolation.level": isolation}))
    c.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in partitions])
    eof = {tp: False for tp in partitions}
    got = []
    deadline = time.monotonic() + DEADLINE_S
    while (len(got) < want or not all(eof.values())) and time.monotonic() < deadline:
        msg = c.poll(0.2)
        if msg is None:
            continue
        tp = (msg.topic(), msg.partition())
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                eof[tp] = True
            else:
                print(f"{isolation} consumer error: {msg.error()}", file=sys.stderr)
            continue
        eof[tp] = False
        got.append((msg.partition(), msg.offset(), msg.key().decode(), msg.value().decode()))
    c.close()
    check(len(got) >= want and all(eof.values()),
          f"{isolation}: read {len(got)} of {want}, at end {eof}: {got}")
    return sorted(got)


def commit_and_abort(bootstrap, topic):
    acked = []
    p, on_delivery = txn_producer(bootstrap, acked)
    committed = []
    for tag, commit in (("commit1", True), ("abort", False), ("commit2", True)):
        p.begin_transaction()
        start = len(acked)
        for part in range(PARTITIONS):
            for i in range(PER_PARTITION):
                p.produce(topic, key=f"{tag}-{part}-{i}", value=f"{tag} value {part} {i}",
                          partition=part, on_delivery=on_delivery)
        check(p.flush(TXN_CALL_S) == 0, f"{tag}: records left unflushed")
        check(len(acked) - start == PARTITIONS * PER_PARTITION, f"{tag}: acks {acked[start:]}")
        if commit:
            p.commit_transaction(TXN_CALL_S)
            committed.extend(acked[start:])
        else:
            p.abort_transaction(TXN_CALL_S)
    everything = sorted(acked)
    committed.sort()
    # Offsets per partition: data 0..3, marker 4, data 5..8, marker 9, data 10..13, marker 14.
    for part in range(PARTITIONS):
        offs = [o for p_, o, _ in everything if p_ == part]
        want = [t * (PER_PARTITION + 1) + i for t in range(3) for i in range(PER_PARTITION)]
        check(offs == want, f"partition {part}: offsets {offs}, want {want}")
    tps = [(topic, part) for part in range(PARTITIONS)]
    seen = read_all(bootstrap, tps, "read_committed", len(committed))
    check([s[:3] for s in seen] == committed,
          f"read_committed saw {seen}, want the committed {committed}")
    seen = read_all(bootstrap, tps, "read_uncommitted", len(everything))
    check([s[:3] for s in seen] == everything,
          f"read_uncommitted saw {seen}, want {everything}")
    print(f"commit/abort: read_committed {len(committed)}, read_uncommitted {len(everything)}")


def member(bootstrap, group, topic):
    c = Consumer(dict(base(bootstrap), **{
        "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "isolation.level": "read_committed", "session.timeout.ms": 10000}))
    c.subscribe([topic])
    return c


def take(c, n):
    got = []
    deadline = time.monotonic() + DEADLINE_S
    while len(got) < n and time.monotonic() < deadline:
        msg = c.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            print(f"member error: {msg.error()}", file=sys.stderr)
            continue
        got.append(msg)
    check(len(got) == n, f"group member read {len(got)} of {n}")
    return got


def committed_offset(c, topic):
    tp = c.committed([TopicPartition(topic, 0)], timeout=20)[0]
    check(tp.error is None, f"OffsetFetch error {tp.error}")
    return tp.offset


def consume_transform_produce(bootstrap, input_topic, output, group):
    plain = Producer(dict(base(bootstrap), **{"linger.ms": 5}))
    for i in range(10):
        plain.produce(input_topic, key=f"k{i}", value=f"in-{i}", partition=0)
    check(plain.flush(30) == 0, "input records left unflushed")

    acked = []
    p, on_delivery = txn_producer(bootstrap, acked)

    def transact(c, batch, commit):
        p.begin_transaction()
        for m in batch:
            p.produce(output, key=m.key(), value=b"out-" + m.value(), partition=0,
                      on_delivery=on_delivery)
        nxt = batch[-1].offset() + 1
        p.send_offsets_to_transaction([TopicPartition(input_topic, 0, nxt)],
                                      c.consumer_group_metadata(), TXN_CALL_S)
        if commit:
            p.commit_transaction(TXN_CALL_S)
        else:
            p.flush(TXN_CALL_S)
            p.abort_transaction(TXN_CALL_S)

    c = member(bootstrap, group, input_topic)
    first = take(c, 10)
    check([m.offset() for m in first] == list(range(10)), "input offsets")
    transact(c, first[:5], True)
    got = committed_offset(c, input_topic)
    check(got == 5, f"after the commit the group is at {got}, want 5")
    transact(c, first[5:], False)
    got = committed_offset(c, input_topic)
    check(got == 5, f"after the abort the group is at {got}, want 5")
    c.close()

    c = member(bootstrap, group, input_topic)
    again = take(c, 5)
    check([m.offset() for m in again] == list(range(5, 10)),
          f"a new member resumes at {[m.offset() for m in again]}, want 5..9")
    transact(c, again, True)
    got = committed_offset(c, input_topic)
    check(got == 10, f"after the second commit the group is at {got}, want 10")
    c.close()

    seen = read_all(bootstrap, [(output, 0)], "read_committed", 10)
    values = [s[3] for s in seen]
    check(values == [f"out-in-{i}" for i in range(10)], f"read_committed output {values}")
    seen = read_all(bootstrap, [(output, 0)], "read_uncommitted", 15)
    check(len(seen) == 15, f"read_uncommitted output {seen}")
    print("consume-transform-produce: group at 10, output committed once each")


def main():
    bootstrap, topic, input_topic, output, group = sys.argv[1:6]
    try:
        commit_and_abort(bootstrap, topic)
        consume_transform_produce(bootstrap, input_topic, output, group)
    except KafkaException as e:
        check(False, f"client error: {e!r}")
    print("OK")


if __name__ == "__main__":
    main()

"""confluent-kafka (its bundled librdkafka) over a secured listener.

Usage: secure_roundtrip.py BOOTSTRAP TOPIC CONFIG_JSON roundtrip|wrong-password

CONFIG_JSON holds the security settings (security.protocol, sasl.*, ssl.ca.location).
`roundtrip` produces three records, reads them back with assign(OFFSET_BEGINNING) and prints
them, one per line. `wrong-password` asks for metadata and prints every error the client
reports, then exits 0 if metadata was refused (the caller checks the error text).
"""

import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    bootstrap, topic, security, mode = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    errors = []
    base = {"bootstrap.servers": bootstrap, "broker.address.family": "v4",
            "error_cb": lambda e: errors.append(str(e)), **security}

    if mode == "wrong-password":
        # The client connects to the bootstrap broker at once; its error callback (run by
        # poll) reports the refusal, so wait for that rather than a metadata timeout.
        producer = Producer(base)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("Authentication" in e for e in errors):
            producer.poll(0.2)
        try:
            producer.list_topics(timeout=1)
        except KafkaException as e:
            errors.append(str(e))
        else:
            fail("metadata served to a wrong password")
        for e in errors:
            print(e)
        return

    values = [f"{topic}-{i}" for i in range(3)]
    delivered = []
    producer = Producer({**base, "linger.ms": 5, "acks": "all"})
    for v in values:
        producer.produce(topic, value=v.encode(),
                         on_delivery=lambda err, msg: delivered.append(err))
    if producer.flush(30) != 0:
        fail(f"records not delivered; client errors: {errors}")
    if any(delivered):
        fail(f"delivery errors: {delivered}")

    consumer = Consumer({**base, "group.id": f"{topic}-g", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = []
    for _ in range(60):
        if len(got) == len(values):
            break
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            errors.append(str(msg.error()))
            continue
        got.append(msg.value().decode())
    consumer.close()
    if got != values:
        fail(f"read {got}, expected {values}; client errors: {errors}")
    for v in got:
        print(v)


if __name__ == "__main__":
    main()

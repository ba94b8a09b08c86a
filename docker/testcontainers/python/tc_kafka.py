"""Testcontainers for Python's KafkaContainer against Sluice's image.

    tc_kafka.py IMAGE default|kraft

Starts the image with the module's own start-up (``KafkaContainer(IMAGE).start()``, plus
``.with_kraft()`` in kraft mode, which needs a version-like tag of 7.0.0 or above), then
produces keyed records through the mapped port with confluent-kafka and consumes them back
in a consumer group. Prints ``start: SECONDS`` (the module's start, up to its readiness log
line) and ``ok: N keyed records`` on success; exits non-zero otherwise. The caller points
DOCKER_HOST at the engine and sets TESTCONTAINERS_RYUK_DISABLED=true when no reaper image
can be pulled.
"""

import sys
import time

from confluent_kafka import Consumer, Producer
from testcontainers.community.kafka import KafkaContainer

RECORDS = [
    (b"user-1", b"login ok"),
    (b"user-2", "h\u00e9llo w\u00f6rld \u2713".encode()),
    (b"user-1", b"tab\tseparated\tvalue"),
    (b"user-3", b'{"json": [1, 2, 3]}'),
]
DEADLINE_SECS = 60


def main() -> int:
    image, mode = sys.argv[1], sys.argv[2]
    kafka = KafkaContainer(image)
    if mode == "kraft":
        kafka = kafka.with_kraft()
    elif mode != "default":
        sys.exit(f"unknown mode {mode}")
    t0 = time.monotonic()
    kafka.start()
    try:
        print(f"start: {time.monotonic() - t0:.2f}", flush=True)
        bootstrap = kafka.get_bootstrap_server()
        topic = f"tc-python-{mode}"
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        errors = []

        def delivered(err, _msg):
            if err is not None:
                errors.append(err)

        for key, value in RECORDS:
            producer.produce(topic, key=key, value=value, on_delivery=delivered)
        if producer.flush(DEADLINE_SECS) != 0 or errors:
            sys.exit(f"produce to {topic} via {bootstrap}: {errors or 'not delivered in time'}")

        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"{topic}-group",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([topic])
        got = []
        deadline = time.monotonic() + DEADLINE_SECS
        while len(got) < len(RECORDS) and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                sys.exit(f"consume {topic}: {msg.error()}")
            got.append((msg.key(), msg.value()))
        consumer.close()
        if got != RECORDS:
            sys.exit(f"consumed {got!r}, produced {RECORDS!r}")
        print(f"ok: {len(got)} keyed records through {bootstrap}", flush=True)
    finally:
        kafka.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Sends hand-built OffsetCommit requests through kafka-python's protocol layer and prints the
error code the broker gives for the partition of each.

Usage: offset_commit_probe.py BOOTSTRAP TOPIC CASE...

Each CASE is `GROUP,VERSION,GENERATION,MEMBER_ID[,PARTITION]` (MEMBER_ID may be empty,
PARTITION defaults to 0). For each case it commits offset 1 of that partition of TOPIC and
prints `CASE -> CODE`, e.g. `g,9,5,ghost -> 25`.
Apache Kafka 4.3 answers a commit with a generation >= 0 from a member the group doesn't know
with UNKNOWN_MEMBER_ID (25), or, when the group doesn't exist at all, GROUP_ID_NOT_FOUND (69)
from version 9 on and ILLEGAL_GENERATION (22) before. The caller checks the codes; this script
only fails if a request gets no answer.
"""

import sys

from kafka.admin import KafkaAdminClient
from kafka.protocol.consumer import OffsetCommitRequest


def request(version, group, generation, member, topic, partition):
    part = OffsetCommitRequest.OffsetCommitRequestTopic.OffsetCommitRequestPartition(
        partition_index=partition, committed_offset=1, committed_metadata="")
    t = OffsetCommitRequest.OffsetCommitRequestTopic(name=topic, partitions=[part])
    return OffsetCommitRequest(
        version=version,
        group_id=group,
        generation_id_or_member_epoch=generation,
        member_id=member,
        topics=[t],
    )


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)
    manager = admin._manager

    async def send(req):
        return await manager.send(req)

    for case in sys.argv[3:]:
        group, version, generation, member, *partition = case.split(",")
        partition = int(partition[0]) if partition else 0
        req = request(int(version), group, int(generation), member, topic, partition)
        resp = manager.run(send, req)
        code = resp.topics[0].partitions[0].error_code
        print(f"{case} -> {code}")
    admin.close()


if __name__ == "__main__":
    main()

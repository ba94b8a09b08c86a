//! Produce-time validation of the records inside batches, judged by real clients: a batch
//! that a consumer could not read is refused and stores nothing, and records refused one by
//! one come back to librdkafka as KIP-467 record errors.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Offset;

use crate::harness::{unique_topic, Broker};
use crate::rk::{self, Rec};

/// CRC-32C (Castagnoli), bit by bit: the batch CRC a broker checks.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A magic-v2 batch with codec `codec`, `count` records claimed, `body` as its records
/// section, and a correct CRC.
fn batch(codec: i16, count: i32, body: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes()); // base offset
    b.extend_from_slice(&0i32.to_be_bytes()); // batch length, set below
    b.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    b.push(2); // magic
    b.extend_from_slice(&0u32.to_be_bytes()); // crc, set below
    b.extend_from_slice(&codec.to_be_bytes()); // attributes
    b.extend_from_slice(&(count - 1).to_be_bytes()); // last offset delta
    let now = 1_700_000_000_000i64;
    b.extend_from_slice(&now.to_be_bytes()); // base timestamp
    b.extend_from_slice(&now.to_be_bytes()); // max timestamp
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    b.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(body);
    let len = i32::try_from(b.len() - 12).unwrap();
    b[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&i16::try_from(s.len()).unwrap().to_be_bytes());
    b.extend_from_slice(s.as_bytes());
}

/// Sends Produce v3 (acks=-1) of `records` to `topic`/0 over raw TCP, and returns the
/// partition's error code and base offset from the response.
fn produce_raw(addr: &str, topic: &str, records: &[u8]) -> (i16, i64) {
    let mut req = Vec::new();
    req.extend_from_slice(&0i16.to_be_bytes()); // Produce
    req.extend_from_slice(&3i16.to_be_bytes()); // v3
    req.extend_from_slice(&7i32.to_be_bytes()); // correlation id
    put_str(&mut req, "sluice-compat");
    req.extend_from_slice(&(-1i16).to_be_bytes()); // transactional id: null
    req.extend_from_slice(&(-1i16).to_be_bytes()); // acks
    req.extend_from_slice(&10_000i32.to_be_bytes()); // timeout
    req.extend_from_slice(&1i32.to_be_bytes()); // one topic
    put_str(&mut req, topic);
    req.extend_from_slice(&1i32.to_be_bytes()); // one partition
    req.extend_from_slice(&0i32.to_be_bytes()); // partition 0
    req.extend_from_slice(&i32::try_from(records.len()).unwrap().to_be_bytes());
    req.extend_from_slice(records);

    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(&i32::try_from(req.len()).unwrap().to_be_bytes())
        .unwrap();
    s.write_all(&req).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("a Produce response");
    let len = usize::try_from(i32::from_be_bytes(len)).unwrap();
    assert!(len < 1 << 16, "absurd response length {len}");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    // correlation id, [topic: name, [partition: index, error_code, base_offset, ...]]
    assert_eq!(&body[0..4], &7i32.to_be_bytes(), "correlation id");
    let name_len = usize::try_from(i16::from_be_bytes([body[8], body[9]])).unwrap();
    let p = 10 + name_len + 4 + 4;
    let code = i16::from_be_bytes([body[p], body[p + 1]]);
    let base = i64::from_be_bytes(body[p + 2..p + 10].try_into().unwrap());
    (code, base)
}

#[test]
fn garbage_inside_a_zstd_batch_is_refused_and_the_partition_keeps_serving() {
    let broker = Broker::start();
    let topic = unique_topic("zstd-garbage");
    rk::create_topic(broker.addr(), &topic, 1);

    // Valid header and CRC, codec zstd, and noise where the frame should be.
    let bad = batch(4, 3, &rk::noise(300, 11));
    let (code, base) = produce_raw(broker.addr(), &topic, &bad);
    assert_eq!(
        (code, base),
        (2, -1),
        "a zstd batch that doesn't decompress must get CORRUPT_MESSAGE (2) and no offset"
    );

    let good: Vec<Rec> = (0..5)
        .map(|i| Rec::kv(&format!("k{i}"), &format!("v{i}")))
        .collect();
    let acks = rk::produce_ok(
        broker.addr(),
        &topic,
        &good,
        &[("compression.type", "zstd")],
    );
    assert_eq!(
        acks,
        (0..5).map(|o| (0, o)).collect::<Vec<_>>(),
        "nothing of the refused batch may hold an offset"
    );
    let got = rk::consume(broker.addr(), &topic, 0, Offset::Beginning, 5);
    let values: Vec<_> = got
        .iter()
        .map(|g| (g.offset, g.rec.value.clone()))
        .collect();
    assert_eq!(
        values,
        (0..5)
            .map(|i| (i, Some(format!("v{i}").into_bytes())))
            .collect::<Vec<_>>(),
        "an rdkafka consumer from offset 0 reads exactly the good records"
    );
}

#[test]
fn keyless_records_on_a_compacted_topic_get_record_errors() {
    let broker = Broker::start();
    let keyless: Vec<usize> = (0..10).map(|i| i * 10 + 4).collect();
    for codec in ["none", "zstd"] {
        let topic = unique_topic(&format!("compacted-{codec}"));
        rk::create_topic_with(broker.addr(), &topic, 1, &[("cleanup.policy", "compact")]);
        let recs: Vec<Rec> = (0..100)
            .map(|i| {
                let mut r = Rec::kv(&format!("k{i}"), &format!("v{i}"));
                if keyless.contains(&i) {
                    r.key = None;
                }
                r
            })
            .collect();
        // One batch of all 100: a long linger, so the flush sends them together.
        let p = rk::producer(
            broker.addr(),
            &[
                ("linger.ms", "500"),
                ("compression.type", codec),
                ("retries", "0"),
            ],
        );
        let reports = rk::produce_all(&p, &topic, &recs);
        drop(p);
        let mut invalid = Vec::new();
        let mut collateral = 0;
        for (i, r) in reports.iter().enumerate() {
            match r {
                Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::InvalidRecord) => {
                    invalid.push(i)
                }
                Err(e)
                    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::InvalidDifferentRecord) =>
                {
                    collateral += 1
                }
                other => panic!("{codec}: record {i}: unexpected delivery report {other:?}"),
            }
        }
        assert_eq!(
            invalid, keyless,
            "{codec}: exactly the keyless records fail INVALID_RECORD"
        );
        assert_eq!(
            collateral, 90,
            "{codec}: the others fail as _INVALID_DIFFERENT_RECORD"
        );

        // Nothing was stored: keyed records start at offset 0.
        let acks = rk::produce_ok(broker.addr(), &topic, &[Rec::kv("a", "b")], &[]);
        assert_eq!(
            acks,
            vec![(0, 0)],
            "{codec}: the refused batch stored nothing"
        );
    }
}

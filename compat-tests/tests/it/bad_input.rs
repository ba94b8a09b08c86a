//! Hostile and malformed input over raw TCP. The broker must close (or answer) bad connections
//! and keep serving everyone else. Requests here are built by pushing bytes by hand: this tests
//! the broker, not a codec.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use crate::harness::{unique_topic, Broker};
use crate::rk::{self, Rec};

const READ_TIMEOUT: Duration = Duration::from_secs(10);

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn put_i16(b: &mut Vec<u8>, v: i16) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_i32(b: &mut Vec<u8>, v: i32) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    put_i16(b, i16::try_from(s.len()).unwrap());
    b.extend_from_slice(s.as_bytes());
}

/// Prefixes `body` with its 4-byte big-endian length.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(body.len() + 4);
    put_i32(&mut f, i32::try_from(body.len()).unwrap());
    f.extend_from_slice(body);
    f
}

/// Request header v1: api key, version, correlation id, client id.
fn header_v1(key: i16, version: i16, correlation: i32) -> Vec<u8> {
    let mut b = Vec::new();
    put_i16(&mut b, key);
    put_i16(&mut b, version);
    put_i32(&mut b, correlation);
    put_str(&mut b, "sluice-compat");
    b
}

/// Reads until EOF; panics if the broker leaves the connection open past `READ_TIMEOUT`.
/// Returns whatever the broker sent before closing.
fn expect_closed(mut s: TcpStream, what: &str) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                return got
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("{what}: broker kept the connection open for {READ_TIMEOUT:?}")
            }
            Err(e) => panic!("{what}: read error {e}"),
        }
    }
}

/// Reads one response frame; None if the broker closed the connection instead.
fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    match s.read_exact(&mut len) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
            ) =>
        {
            return None
        }
        Err(e) => panic!("reading response length: {e}"),
    }
    let len = usize::try_from(i32::from_be_bytes(len)).expect("non-negative response length");
    assert!(len < 1 << 20, "absurd response length {len}");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).expect("read response body");
    Some(body)
}

/// A fresh rdkafka client can still fetch metadata and produce.
fn assert_serving(broker: &Broker, topic: &str, expect_offset: i64, after: &str) {
    assert_serving_at(broker.addr(), topic, expect_offset, after);
}

/// A librdkafka produce to `topic` on `addr` is acknowledged at `expect_offset`.
fn assert_serving_at(addr: &str, topic: &str, expect_offset: i64, after: &str) {
    let acks = rk::produce_ok(addr, topic, &[Rec::kv("k", after)], &[]);
    assert_eq!(
        acks,
        vec![(0, expect_offset)],
        "produce after {after} went wrong"
    );
    assert_eq!(
        rk::partition_count(addr, topic),
        Some(1),
        "metadata after {after}"
    );
}

#[test]
fn malformed_connections_are_closed_and_broker_keeps_serving() {
    let broker = Broker::start();
    let topic = unique_topic("bad-input");
    assert_serving(&broker, &topic, 0, "start");

    let mut unknown_key = header_v1(9999, 0, 1);
    unknown_key.extend_from_slice(&[0; 8]);
    // Metadata v1 whose client id claims 32767 bytes the frame doesn't have.
    let mut torn_header = Vec::new();
    put_i16(&mut torn_header, 3);
    put_i16(&mut torn_header, 1);
    put_i32(&mut torn_header, 2);
    put_i16(&mut torn_header, i16::MAX);
    torn_header.extend_from_slice(b"short");
    let mut huge = vec![0x7f, 0xff, 0xff, 0xff];
    huge.extend_from_slice(&[0; 64]);
    let mut negative = vec![0xff, 0xff, 0xff, 0xf0];
    negative.extend_from_slice(&[0; 16]);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "http request",
            b"GET / HTTP/1.1\r\nHost: sluice\r\n\r\n".to_vec(),
        ),
        // Starts with a negative length.
        ("random bytes", rk::noise(512, 99)),
        // A sane length around noise: api key 17825, which doesn't exist.
        ("framed random bytes", frame(&rk::noise(200, 5))),
        ("length 0x7fffffff", huge),
        ("negative length", negative),
        ("unknown api key 9999", frame(&unknown_key)),
        ("torn request header", frame(&torn_header)),
    ];
    let mut offset = 1;
    for (what, bytes) in cases {
        let mut s = connect(broker.addr());
        s.write_all(&bytes)
            .unwrap_or_else(|e| panic!("{what}: write: {e}"));
        expect_closed(s, what);
        assert_serving(&broker, &topic, offset, what);
        offset += 1;
    }

    // A frame cut short, then the client half-closes: the broker must notice EOF and close.
    let mut s = connect(broker.addr());
    let mut partial = Vec::new();
    put_i32(&mut partial, 100);
    partial.extend_from_slice(&header_v1(18, 0, 3)[..8]);
    s.write_all(&partial).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    expect_closed(s, "truncated frame + half-close");
    assert_serving(&broker, &topic, offset, "truncated frame");
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Issue 13's requests whose array counts asked for 2^31 elements in a 20-byte frame: each
/// aborted the process.
const COUNT_BOMBS: [(&str, &str); 5] = [
    ("Metadata v1", "0000001000030001000000010002667a7fffffff"),
    (
        "Metadata v12 compact",
        "000000120003000c000000010002667a00ffffffff0f",
    ),
    (
        "Produce v3",
        "0000001800000003000000010002667affff0001000003e87fffffff",
    ),
    // Past what Sluice serves: its UNSUPPORTED_VERSION path decodes requests too.
    (
        "Fetch v18",
        "000000280001001200000001000266610000000000000000000000000000000000000000000000ffffffff0f",
    ),
    // Metadata v12 whose topic count is a six-byte varint (Kafka refuses past five).
    (
        "long varint",
        "000000150003000c000000010002667a008080808080010000",
    ),
];

/// Each count bomb gets its connection closed without an answer, and a real client's produce
/// on `addr` still works after each.
fn count_bombs_close_only_their_connection(addr: &str) {
    let topic = unique_topic("count-bomb");
    assert_serving_at(addr, &topic, 0, "start");
    for (i, (what, hex)) in COUNT_BOMBS.iter().enumerate() {
        let mut s = connect(addr);
        s.write_all(&unhex(hex))
            .unwrap_or_else(|e| panic!("{what}: write: {e}"));
        let got = expect_closed(s, what);
        assert!(got.is_empty(), "{what}: answered {got:02x?}");
        assert_serving_at(addr, &topic, i as i64 + 1, what);
    }
}

/// Now each is refused before it is decoded: the connection closes with one log line naming
/// the request, and everyone else is served (Kafka 4.3.1 alike: see `on_kafka_too`).
#[test]
fn array_counts_beyond_the_frame_close_only_that_connection() {
    let broker = Broker::start();
    count_bombs_close_only_their_connection(broker.addr());
    let log = broker.stderr();
    let closed = log
        .lines()
        .filter(|l| l.contains("closing connection: malformed"))
        .count();
    assert_eq!(
        closed,
        COUNT_BOMBS.len(),
        "one log line per refused request:\n{log}"
    );
}

#[test]
fn api_versions_v99_gets_v0_unsupported_version() {
    let broker = Broker::start();
    // Header v2 (flexible, as ApiVersions v3+ uses) with an empty tagged-field section, then a
    // v3-shaped body: compact client software name and version, no tags.
    let mut req = Vec::new();
    put_i16(&mut req, 18);
    put_i16(&mut req, 99);
    put_i32(&mut req, 0x1234_5678);
    put_str(&mut req, "sluice-compat");
    req.push(0);
    req.push(7);
    req.extend_from_slice(b"compat");
    req.push(2);
    req.extend_from_slice(b"1");
    req.push(0);

    let mut s = connect(broker.addr());
    s.write_all(&frame(&req)).unwrap();
    let body = read_frame(&mut s).expect("broker must answer ApiVersions v99, not close");

    // Response header v0 (correlation id only), then the v0 body:
    // error_code i16, api_keys [key i16, min i16, max i16] with an i32 count.
    assert!(body.len() >= 10, "response too short: {body:?}");
    let corr = i32::from_be_bytes(body[0..4].try_into().unwrap());
    assert_eq!(corr, 0x1234_5678, "correlation id");
    let err = i16::from_be_bytes(body[4..6].try_into().unwrap());
    assert_eq!(err, 35, "error_code must be UNSUPPORTED_VERSION (35)");
    let n = usize::try_from(i32::from_be_bytes(body[6..10].try_into().unwrap()))
        .expect("non-negative api_keys count");
    assert_eq!(
        body.len(),
        10 + 6 * n,
        "v0 body is exactly error_code + api_keys; got {} bytes for {n} keys",
        body.len()
    );
    let keys: Vec<(i16, i16, i16)> = body[10..]
        .chunks_exact(6)
        .map(|c| {
            (
                i16::from_be_bytes([c[0], c[1]]),
                i16::from_be_bytes([c[2], c[3]]),
                i16::from_be_bytes([c[4], c[5]]),
            )
        })
        .collect();
    let api_versions = keys.iter().find(|k| k.0 == 18);
    assert!(
        matches!(api_versions, Some(&(18, 0, max)) if max >= 3),
        "ApiVersions (18) must be listed with range 0..=3+: {keys:?}"
    );
    assert!(
        keys.iter().any(|k| k.0 == 0),
        "Produce (0) not listed: {keys:?}"
    );
}

#[test]
fn produce_at_unsupported_version_is_rejected() {
    let broker = Broker::start();
    let raw_topic = unique_topic("bad-produce-v2");
    // Produce v2 (Kafka 4 supports v3+): acks, timeout, [topic [partition, records]].
    let mut req = header_v1(0, 2, 77);
    put_i16(&mut req, 1);
    put_i32(&mut req, 1000);
    put_i32(&mut req, 1);
    put_str(&mut req, &raw_topic);
    put_i32(&mut req, 1);
    put_i32(&mut req, 0);
    put_i32(&mut req, 0);

    let mut s = connect(broker.addr());
    s.write_all(&frame(&req)).unwrap();
    match read_frame(&mut s) {
        // Kafka closes the connection here.
        None => {}
        Some(body) => {
            let corr = i32::from_be_bytes(body[0..4].try_into().unwrap());
            assert_eq!(corr, 77, "correlation id");
            assert!(
                body[4..].windows(2).any(|w| w == [0, 35]),
                "response to Produce v2 carries no UNSUPPORTED_VERSION (35): {body:?}"
            );
        }
    }
    drop(s);

    let topic = unique_topic("bad-produce-ok");
    assert_serving(&broker, &topic, 0, "Produce v2");
    assert_eq!(
        rk::partition_count(broker.addr(), &raw_topic),
        None,
        "a rejected Produce v2 must not create its topic"
    );
}

/// A CreateTopics of 10,001 partitions (beside a small topic) is refused whole with
/// POLICY_VIOLATION, and a CreatePartitions to 20,000 with UNKNOWN_SERVER_ERROR (Kafka's
/// controller hits the same bound there, but as an unexpected error).
fn oversized_topic_requests_are_refused(addr: &str) -> (String, String) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;

    let admin: AdminClient<DefaultClientContext> = rk::config(addr, &[]).create().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let opts = AdminOptions::new().operation_timeout(Some(rk::RPC_TIMEOUT));
    let big = unique_topic("too-big");
    let small = unique_topic("beside-it");
    let res = rt
        .block_on(admin.create_topics(
            &[
                NewTopic::new(&big, 10_001, TopicReplication::Fixed(1)),
                NewTopic::new(&small, 1, TopicReplication::Fixed(1)),
            ],
            &opts,
        ))
        .unwrap();
    for r in res {
        match r {
            Err((_, e)) => assert_eq!(e, RDKafkaErrorCode::PolicyViolation),
            Ok(t) => panic!("{t} was created"),
        }
    }
    assert_eq!(rk::partition_count(addr, &small), None);

    let grown = unique_topic("grown");
    rk::create_topic(addr, &grown, 1);
    let res = rt
        .block_on(admin.create_partitions(&[NewPartitions::new(&grown, 20_000)], &opts))
        .unwrap();
    assert!(
        matches!(&res[..], [Err((_, RDKafkaErrorCode::Unknown))]),
        "{res:?}"
    );
    (big, grown)
}

/// One admin request cannot make a million partitions: like Kafka's controller, a
/// CreateTopics or CreatePartitions that would write more than 10,000 metadata records is
/// refused, and nothing of it reaches the disk.
#[test]
fn oversized_topic_requests_are_refused_whole() {
    let broker = Broker::start();
    let (big, grown) = oversized_topic_requests_are_refused(broker.addr());
    // Kafka commits the records its bounded list held before it overflowed; Sluice adds
    // nothing for a refused topic.
    assert_eq!(rk::partition_count(broker.addr(), &grown), Some(1));
    let dirs = std::fs::read_dir(broker.data_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&big))
        .count();
    assert_eq!(dirs, 0, "directories of a refused topic");
}

/// The same two scenarios against Apache Kafka 4.3.1: the expectations above are Kafka's.
#[test]
fn on_kafka_too() {
    let kafka = crate::kafka::Kafka::start("");
    count_bombs_close_only_their_connection(kafka.addr());
    oversized_topic_requests_are_refused(kafka.addr());
}

//! Crash safety: with `[log] flush_interval_messages = 1` every record acknowledged with
//! acks=all survives `kill -9`; and recovery truncates garbage at a segment's tail.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::producer::Producer;
use rdkafka::Offset;

use crate::harness::{poll_until, read_batches, unique_topic, Broker};
use crate::rk::{self, Rec};

const FSYNC_EACH: &str = "[log]\nflush_interval_messages = 1\n";

/// Records the durability producer keeps unacknowledged at most.
const MAX_IN_FLIGHT: usize = 500;

#[test]
fn acknowledged_records_survive_kill_9() {
    let mut broker = Broker::start_with_config(FSYNC_EACH);
    let topic = unique_topic("dur-kill");
    // Create the topic up front so the stream starts at once.
    rk::produce_ok(
        broker.addr(),
        &topic,
        &[Rec::kv("k", "payload-0")],
        &[("acks", "all")],
    );

    let p = rk::producer(
        broker.addr(),
        &[
            ("acks", "all"),
            ("linger.ms", "1"),
            ("enable.idempotence", "false"),
            ("message.timeout.ms", "5000"),
        ],
    );
    let reports = p.context().reports.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let topic2 = topic.clone();
    let reports2 = reports.clone();
    let writer = thread::spawn(move || {
        let mut sent = 1usize;
        let end = Instant::now() + Duration::from_secs(60);
        while !stop2.load(Ordering::Relaxed) && Instant::now() < end {
            // Keep up to MAX_IN_FLIGHT records outstanding, so the kill lands mid-stream.
            let done = reports2.lock().unwrap().len();
            if sent - 1 - done >= MAX_IN_FLIGHT {
                p.poll(Duration::from_millis(1));
                continue;
            }
            rk::send(&p, &topic2, sent, &Rec::kv("k", &format!("payload-{sent}")));
            sent += 1;
            p.poll(Duration::ZERO);
        }
        // Undelivered records fail after message.timeout.ms; the test only counts acks.
        let _ = p.flush(Duration::from_secs(15));
        sent
    });

    let acked = || {
        reports
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.1.is_ok())
            .count()
    };
    assert!(
        poll_until(Duration::from_secs(60), || acked() >= 300),
        "producer got only {} acks",
        acked()
    );
    broker.kill9();
    stop.store(true, Ordering::Relaxed);
    let sent = writer.join().expect("writer thread");

    let acks: Vec<(usize, i32, i64)> = reports
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(i, r)| r.as_ref().ok().map(|(p, o)| (*i, *p, *o)))
        .collect();
    assert!(acks.len() >= 300);
    eprintln!(
        "sent {sent}, acknowledged {} before kill -9",
        acks.len() + 1
    );

    broker.start_again();
    let c = rk::consumer(broker.addr(), &[]);
    let (lo, hi) = c
        .fetch_watermarks(&topic, 0, rk::RPC_TIMEOUT)
        .expect("watermarks after restart");
    assert_eq!(lo, 0);
    let max_acked = acks.iter().map(|a| a.2).max().unwrap();
    assert!(
        hi > max_acked,
        "high watermark {hi} after restart, but offset {max_acked} was acknowledged"
    );
    let n = usize::try_from(hi).unwrap();
    let got = rk::consume_with(&c, &topic, 0, Offset::Beginning, n);
    for (i, g) in got.iter().enumerate() {
        assert_eq!(
            g.offset,
            i64::try_from(i).unwrap(),
            "offsets not contiguous"
        );
    }
    for (idx, p, o) in &acks {
        assert_eq!(*p, 0);
        let g = &got[usize::try_from(*o).unwrap()];
        assert_eq!(
            g.rec.value.as_deref(),
            Some(format!("payload-{idx}").as_bytes()),
            "acknowledged record {idx} at offset {o} lost or changed"
        );
    }
}

#[test]
fn recovery_truncates_garbage_at_segment_tail() {
    let mut broker = Broker::start_with_config(FSYNC_EACH);
    let topic = unique_topic("dur-garbage");
    let recs: Vec<Rec> = (0..20)
        .map(|i| Rec::kv("k", &format!("intact-{i}")))
        .collect();
    rk::produce_ok(broker.addr(), &topic, &recs, &[("acks", "all")]);
    broker.stop();

    let seg = broker
        .partition_dir(&topic, 0)
        .join("00000000000000000000.log");
    let clean_len = std::fs::metadata(&seg)
        .unwrap_or_else(|e| panic!("{}: {e}", seg.display()))
        .len();
    // A plausible-looking but torn batch header followed by junk.
    let mut garbage = vec![0u8, 0, 0, 0, 0, 0, 0, 20, 0, 0, 1, 0];
    garbage.extend_from_slice(&rk::noise(300, 11));
    OpenOptions::new()
        .append(true)
        .open(&seg)
        .and_then(|mut f| f.write_all(&garbage))
        .expect("append garbage");

    broker.start_again();
    let log = broker.stderr().to_lowercase();
    assert!(
        log.contains("truncated"),
        "broker did not report truncating the garbage tail:\n{}",
        broker.stderr()
    );

    let got = rk::consume(broker.addr(), &topic, 0, Offset::Beginning, 20);
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.offset, i64::try_from(i).unwrap());
        assert_eq!(g.rec.value, recs[i].value);
    }
    let acks = rk::produce_ok(
        broker.addr(),
        &topic,
        &[Rec::kv("k", "after-recovery")],
        &[("acks", "all")],
    );
    assert_eq!(
        acks,
        vec![(0, 20)],
        "produce continues after the intact records"
    );
    let c = rk::consumer(broker.addr(), &[]);
    assert_eq!(
        c.fetch_watermarks(&topic, 0, rk::RPC_TIMEOUT).unwrap(),
        (0, 21)
    );
    let last = rk::consume(broker.addr(), &topic, 0, Offset::Offset(20), 1);
    assert_eq!(last[0].rec.value.as_deref(), Some(&b"after-recovery"[..]));
    broker.stop();
    // `read_batches` panics on any byte after the last whole batch.
    let batches = read_batches(&broker.partition_dir(&topic, 0));
    let last = batches.last().expect("batches on disk");
    assert_eq!(
        last.base_offset + i64::from(last.record_count),
        21,
        "{batches:?}"
    );
    let len = std::fs::metadata(&seg).unwrap().len();
    assert!(
        len > clean_len,
        "segment shrank below the intact records: {len} < {clean_len}"
    );
}

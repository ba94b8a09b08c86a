//! kcat (librdkafka's command-line client, from Debian) against Sluice: metadata listing and a
//! snappy produce/consume round trip.

use crate::harness::{assert_success, codec_id, kcat, read_batches, unique_topic, Broker};
use crate::rk::{self, Rec};

#[test]
fn kcat_metadata_lists_broker_and_topic() {
    let broker = Broker::start();
    let topic = unique_topic("kcat-md");
    rk::produce_ok(broker.addr(), &topic, &[Rec::kv("k", "v")], &[]);
    let out = kcat(&["-b", broker.addr(), "-L", "-t", &topic], None);
    assert_success(&out, "kcat -L");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" 1 brokers:"), "kcat -L: {text}");
    assert!(
        text.contains(&format!("at {} (controller)", broker.addr()))
            || text.contains(&format!("at {}", broker.addr())),
        "broker not advertised as {}: {text}",
        broker.addr()
    );
    assert!(
        text.contains(&format!("topic \"{topic}\" with 1 partitions:")),
        "kcat -L: {text}"
    );
    assert!(text.contains("partition 0, leader "), "kcat -L: {text}");
}

#[test]
fn kcat_snappy_produce_consume_byte_exact() {
    let broker = Broker::start();
    let topic = unique_topic("kcat-rt");
    let lines: Vec<String> = (0..25)
        .map(|i| format!("key{i}:value {i} {}", "snappy ".repeat(12)))
        .collect();
    let input = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    let out = kcat(
        &[
            "-P",
            "-b",
            broker.addr(),
            "-t",
            &topic,
            "-z",
            "snappy",
            "-K",
            ":",
        ],
        Some(input.into_bytes()),
    );
    assert_success(&out, "kcat -P");

    let out = kcat(
        &[
            "-C",
            "-b",
            broker.addr(),
            "-t",
            &topic,
            "-o",
            "beginning",
            "-e",
            "-f",
            "%k:%s\n",
        ],
        None,
    );
    assert_success(&out, "kcat -C");
    let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(got, lines);

    let batches = read_batches(&broker.partition_dir(&topic, 0));
    assert!(
        batches.iter().all(|b| b.codec == codec_id("snappy")),
        "kcat -z snappy batches on disk: {batches:?}"
    );
}

//! librdkafka's own regression tests that exercise transactions against a live broker, run
//! by its test runner (built by `scripts/install-librdkafka-tests.sh` from the source
//! rdkafka-sys vendors) with a `test.conf` that points it at the broker:
//!
//! - 0061 consumer lag with aborted transactions before the records (lag must reach 0
//!   across the control records);
//! - 0103 transactions: API misuse, basic commit/abort with and without compression,
//!   consume-transform-produce, fencing, empty transactions, watermarks per isolation level,
//!   the abort marker's leader epoch;
//! - 0129 a `read_committed` consumer reads past an aborted transaction that spans several
//!   segments (Sluice only: its topic has `segment.bytes=20000`, which Kafka 4 refuses since
//!   KIP-1030 set the minimum to 1 MiB);
//! - 0137 batch consume across control records ("barriers").
//!
//! Left out: 0055 (producer latency, transactional variant included) asserts latencies;
//! 0098 (consumer transactions driven by a Java helper) skips itself without RapidJSON; 0105
//! runs against librdkafka's mock cluster, not a broker. The runner runs one test at a time
//! (`-p1`), not in quick mode (which skips most subtests), without its socket-fault tests
//! (`-E`), with its timeouts tripled for two shared cores, and told the broker is Kafka
//! 4.3.1, so no test is skipped for an old broker. Opt-in: the build takes about 90 s and
//! the run a few minutes.

use std::fs;
use std::process::{Command, Output};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::{installed, Target};
use crate::harness::{assert_success, poll_until, run_with_timeout, unique_topic};
use crate::rk;

/// The tests to run against Kafka (the runner matches each test's number as a substring).
const TESTS: &str = "0061,0103,0137";
/// The tests to run against Sluice: [`TESTS`] and 0129.
const SLUICE_TESTS: &str = "0061,0103,0129,0137";

/// Bound on one run of the runner.
const TIMEOUT: Duration = Duration::from_secs(900);

/// Makes the broker create its internal topics before the runner starts: librdkafka's
/// tests fail on the first error a consumer reports, and a new Kafka answers the first
/// OffsetFetch with NOT_COORDINATOR while `__consumer_offsets` is being created.
fn warm_up(addr: &str) {
    let topic = unique_topic("rdktests-warmup");
    rk::create_topic(addr, &topic, 1);
    let c: BaseConsumer = rk::config(addr, &[("group.id", &topic)])
        .create()
        .expect("create consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(0))
        .expect("build offsets");
    let ok = poll_until(rk::RPC_TIMEOUT, || c.commit(&tpl, CommitMode::Sync).is_ok());
    assert!(ok, "no offset commit succeeded on the fresh broker");
    let p: BaseProducer = rk::config(addr, &[("transactional.id", &topic)])
        .create()
        .expect("create transactional producer");
    p.init_transactions(rk::RPC_TIMEOUT)
        .expect("init_transactions on the fresh broker");
}

/// Runs `tests` against `target`, in a temp dir (the runner writes a statistics file per
/// test into its working directory).
fn run(target: &Target, tests: &str) -> Output {
    warm_up(target.addr());
    let runner = installed(
        "librdkafka-tests/src/tests/test-runner",
        "install-librdkafka-tests.sh",
    );
    let src = runner
        .parent()
        .and_then(|tests| tests.parent())
        .expect("test-runner sits in SRC/tests/")
        .to_path_buf();
    let tmp = tempfile::Builder::new()
        .prefix("sluice-compat-rdktests-")
        .tempdir()
        .expect("temp dir");
    let conf = tmp.path().join("test.conf");
    // Random topic names, so runs never share a topic; v4, since the runner's clients
    // would otherwise try ::1 for a name that resolves to both.
    fs::write(
        &conf,
        format!(
            "bootstrap.servers={}\nbroker.address.family=v4\ntest.topic.random=true\n\
             test.timeout.multiplier=3\n",
            target.addr()
        ),
    )
    .expect("write test.conf");
    let mut cmd = Command::new(&runner);
    cmd.args(["-p1", "-E", "-V", "4.3.1"])
        .current_dir(tmp.path())
        .env(
            "LD_LIBRARY_PATH",
            format!(
                "{}:{}",
                src.join("src").display(),
                src.join("src-cpp").display()
            ),
        )
        .env("RDKAFKA_TEST_CONF", &conf)
        .env("TESTS", tests);
    let out = run_with_timeout(cmd, None, TIMEOUT);
    // The runner's summary table: one line per test with PASSED, FAILED or SKIPPED.
    for line in String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .filter(|l| {
            (l.contains("PASSED") || l.contains("FAILED") || l.contains("SKIPPED"))
                && l.contains('|')
        })
    {
        println!("{line}");
    }
    out
}

#[test]
#[ignore = "opt-in: needs scripts/install-librdkafka-tests.sh; a few minutes"]
fn librdkafka_transaction_tests() {
    let out = run(&Target::sluice(), SLUICE_TESTS);
    assert_success(&out, "librdkafka test-runner");
}

#[test]
#[ignore = "opt-in: starts Apache Kafka 4.3.1; needs scripts/install-librdkafka-tests.sh"]
fn librdkafka_transaction_tests_on_kafka() {
    let out = run(&Target::kafka(), TESTS);
    assert_success(&out, "librdkafka test-runner");
}

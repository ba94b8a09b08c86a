//! The bounded pass of the wire fuzzer (`src/fuzz.rs`): 50,000 fuzzed frames over every
//! advertised (API, version), a real client's produce and fetch every 1,000 of them, and the
//! broker still alive and exiting cleanly on SIGTERM afterwards. The long run is the
//! `sluice-fuzz` binary (see the README's "Robustness" section).

use sluice_compat::fuzz::{self, Config};

use crate::harness::Broker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_thousand_fuzzed_frames_crash_nothing() {
    let mut broker = Broker::start();
    let advertised: Vec<(i16, i16, i16)> = sluice::api::advertised()
        .map(|(k, min, max)| (k as i16, min, max))
        .collect();
    let cfg = Config {
        frames: 50_000,
        ..Config::default()
    };
    let report = fuzz::run(broker.addr(), &advertised, &cfg)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", broker.stderr()));
    eprintln!("{report}");
    assert_eq!(report.total(), 50_000);
    assert_eq!(report.checks, 50, "a real client every 1,000 frames");
    assert!(report.answered > 0 && report.closed > 0, "{report}");
    let log = broker.stderr();
    assert!(!log.contains("panicked"), "a handler panicked:\n{log}");
    // SIGTERM → exit 0: nothing crashed and shutdown still works after the run.
    broker.stop();
}

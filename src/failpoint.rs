//! Crash points for tests: `SLUICE_FAILPOINT=<name>` makes the broker abort (SIGABRT, no
//! flush, no clean-up: a `kill -9` at an exact spot) the first time it reaches the point of
//! that name. Used to prove recovery at places no client can time a kill for. Unset, a
//! point costs one relaxed atomic load.
//!
//! Points: `txn-after-prepare` (a transaction's Prepare record is written, no marker yet),
//! `txn-after-markers` (the markers are written, the Complete record is not).

use std::sync::OnceLock;

static ARMED: OnceLock<Option<String>> = OnceLock::new();

/// Abort the process here if `SLUICE_FAILPOINT` names `point`.
pub fn hit(point: &str) {
    let armed = ARMED.get_or_init(|| std::env::var("SLUICE_FAILPOINT").ok());
    if armed.as_deref() == Some(point) {
        eprintln!("failpoint {point} reached: aborting");
        std::process::abort();
    }
}

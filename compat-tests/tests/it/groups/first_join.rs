//! The first generation of a new classic group at `group.initial.rebalance.delay.ms = 0`:
//! librdkafka members that subscribe together share it, on Sluice and (opt-in) on Apache
//! Kafka 4.3.1.

use super::*;

/// Two eager librdkafka members of a new group subscribe one right after the other (static
/// members with `group.instance.id` if `static_ids`); returns each member's rebalance
/// callbacks once both hold partitions.
fn two_members_first_join(addr: &str, label: &str, static_ids: bool) -> Vec<Vec<String>> {
    const PARTS: i32 = 4;
    let topic = unique_topic(&format!("grp-first-{label}"));
    let group = unique_topic("g-first");
    rk::create_topic(addr, &topic, PARTS);
    let names = [format!("{label}-a"), format!("{label}-b")];
    let mut members: Vec<Member> = names
        .iter()
        .map(|name| {
            let mut cfg = vec![("group.id", group.as_str())];
            cfg.extend_from_slice(&classic("range"));
            if static_ids {
                cfg.push(("group.instance.id", name.as_str()));
            }
            Member::new(addr, name, &topic, &cfg)
        })
        .collect();
    settle(
        &mut members,
        PARTS,
        &BTreeSet::new(),
        &format!("{label}: both joined"),
    );
    members.iter().map(Member::rebalances).collect()
}

/// 7. `group.initial.rebalance.delay.ms = 0` (as in GROUP_CONFIG, Docker users' settings and
///    the dev-compose examples): two consumers that subscribe one right after the other
///    start out together. Each sees one assignment and nothing else; before, the first one
///    often got all partitions in a generation of its own and had them revoked when the
///    second arrived (what librdkafka's static-group and commit-on-rebalance tests tripped
///    over). Six new groups, dynamic and static members.
#[test]
fn zero_delay_first_generation_takes_members_that_subscribe_together() {
    let broker = Broker::start_with_config(GROUP_CONFIG);
    let mut runs = Vec::new();
    for i in 0..6 {
        let static_ids = i % 2 == 1;
        let label = format!("{}{i}", if static_ids { "static" } else { "dynamic" });
        runs.push((
            label.clone(),
            two_members_first_join(broker.addr(), &label, static_ids),
        ));
    }
    let extra: Vec<&(String, Vec<Vec<String>>)> = runs
        .iter()
        .filter(|(_, seen)| seen.iter().any(|events| events.len() != 1))
        .collect();
    assert!(
        extra.is_empty(),
        "members that subscribed together must share the first generation: one assignment \
         each, no revoke; runs with more rebalance callbacks: {extra:?}"
    );
}

/// The scenario above against Apache Kafka 4.3.1 at `group.initial.rebalance.delay.ms=0`.
/// Kafka leaves the first join of a new group to a timer task even at delay 0, so the second
/// member is in generation 1 when its JoinGroup is handled before that task runs, which is a
/// race of about a millisecond. The test reports, per run, the size of generation 1 from the
/// coordinator's log and the rebalance callbacks, and asserts that generation 1 held both
/// members in at least one of 20 runs (it did in about half of them when measured; see
/// FINDINGS.md). Opt-in, as it starts a JVM broker.
#[test]
#[ignore = "starts Apache Kafka 4.3.1 from the cached jars; run with --ignored"]
fn zero_delay_first_generation_on_kafka() {
    let kafka = crate::kafka::Kafka::start("group.initial.rebalance.delay.ms=0");
    let mut report = Vec::new();
    let mut shared_first = 0;
    for i in 0..20 {
        let static_ids = i % 2 == 1;
        let label = format!("{}{i}", if static_ids { "static" } else { "dynamic" });
        let seen = two_members_first_join(kafka.addr(), &label, static_ids);
        // The coordinator's "Stabilized group G generation 1 with N members." for this run's
        // group, found by the member ids, which start with the client ids.
        let first_gen: Option<String> = kafka.log().lines().find_map(|l| {
            let rest = l.split("Stabilized group ").nth(1)?;
            let (group, tail) = rest.split_once(' ')?;
            let size = tail.strip_prefix("generation 1 with ")?.split(' ').next()?;
            let ours = kafka.log().lines().any(|m| {
                m.contains(&format!("group {group} ")) && m.contains(&format!("{label}-a"))
            });
            ours.then(|| size.to_string())
        });
        if first_gen.as_deref() == Some("2") {
            shared_first += 1;
        }
        report.push(format!(
            "{label}: generation 1 members {first_gen:?}, callbacks {seen:?}"
        ));
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        shared_first > 0,
        "Kafka never put both members in generation 1:\n{}",
        report.join("\n")
    );
}

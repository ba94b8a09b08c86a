//! The client-side range assignor, as Kafka's `RangeAssignor` computes it: for each topic,
//! the members subscribed to it are sorted (by `group.instance.id` when both have one,
//! static members first, then by member id), its partitions are sorted, and each member
//! gets a contiguous range; the first `partitions % members` members get one extra.

use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Partitions per topic, each list ascending.
pub type Assignment = BTreeMap<String, Vec<i32>>;

/// One member's subscription, as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    /// Member id.
    pub member_id: String,
    /// Static membership id, if the member has one.
    pub group_instance_id: Option<String>,
    /// Topics it subscribes to.
    pub topics: Vec<String>,
}

/// Kafka's `MemberInfo.compareTo`.
fn member_order(a: &MemberSubscription, b: &MemberSubscription) -> Ordering {
    match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    }
}

/// Assigns `partitions` (topic → partition ids) to `members`. Every member gets an entry,
/// empty when it gets nothing. Topics without partition metadata are left out, as Kafka's
/// assignor skips them.
pub fn range_assign(
    members: &[MemberSubscription],
    partitions: &BTreeMap<String, Vec<i32>>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.clone(), Assignment::new()))
        .collect();
    for (topic, parts) in partitions {
        let mut subscribed: Vec<&MemberSubscription> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .collect();
        if subscribed.is_empty() {
            continue;
        }
        subscribed.sort_by(|a, b| member_order(a, b));
        let mut parts = parts.clone();
        parts.sort_unstable();
        parts.dedup();
        let per_member = parts.len() / subscribed.len();
        let with_extra = parts.len() % subscribed.len();
        for (i, member) in subscribed.iter().enumerate() {
            let start = per_member * i + i.min(with_extra);
            let len = per_member + usize::from(i < with_extra);
            let Some(range) = parts.get(start..start + len) else {
                continue;
            };
            if range.is_empty() {
                continue;
            }
            if let Some(a) = out.get_mut(&member.member_id) {
                a.entry(topic.clone()).or_default().extend_from_slice(range);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn member(id: &str, topics: &[&str]) -> MemberSubscription {
        MemberSubscription {
            member_id: id.to_owned(),
            group_instance_id: None,
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    fn parts(list: &[(&str, i32)]) -> BTreeMap<String, Vec<i32>> {
        list.iter()
            .map(|(t, n)| ((*t).to_owned(), (0..*n).collect()))
            .collect()
    }

    #[test]
    fn even_split_gives_contiguous_ranges_in_member_order() {
        let members = [member("b", &["t"]), member("a", &["t"])];
        let out = range_assign(&members, &parts(&[("t", 4)]));
        assert_eq!(out["a"]["t"], vec![0, 1]);
        assert_eq!(out["b"]["t"], vec![2, 3]);
    }

    #[test]
    fn first_members_get_the_remainder() {
        // Kafka's javadoc example: 3 partitions, 2 consumers → C0 [p0, p1], C1 [p2].
        let members = [member("c0", &["t0", "t1"]), member("c1", &["t0", "t1"])];
        let out = range_assign(&members, &parts(&[("t0", 3), ("t1", 3)]));
        assert_eq!(out["c0"]["t0"], vec![0, 1]);
        assert_eq!(out["c0"]["t1"], vec![0, 1]);
        assert_eq!(out["c1"]["t0"], vec![2]);
        assert_eq!(out["c1"]["t1"], vec![2]);
    }

    #[test]
    fn more_members_than_partitions_leaves_some_empty() {
        let members = [
            member("a", &["t"]),
            member("b", &["t"]),
            member("c", &["t"]),
        ];
        let out = range_assign(&members, &parts(&[("t", 2)]));
        assert_eq!(out["a"]["t"], vec![0]);
        assert_eq!(out["b"]["t"], vec![1]);
        assert!(out["c"].is_empty(), "c still gets an (empty) entry");
    }

    #[test]
    fn only_subscribers_share_a_topic_and_unknown_topics_are_skipped() {
        let members = [member("a", &["x", "missing"]), member("b", &["y"])];
        let out = range_assign(&members, &parts(&[("x", 2), ("y", 1)]));
        assert_eq!(out["a"].len(), 1);
        assert_eq!(out["a"]["x"], vec![0, 1]);
        assert_eq!(out["b"]["y"], vec![0]);
    }

    #[test]
    fn static_members_sort_first_by_instance_id() {
        let mut a = member("a", &["t"]);
        let mut z = member("z", &["t"]);
        z.group_instance_id = Some("i1".to_owned());
        a.group_instance_id = Some("i2".to_owned());
        let dynamic = member("0", &["t"]);
        let out = range_assign(&[a, z, dynamic], &parts(&[("t", 3)]));
        assert_eq!(out["z"]["t"], vec![0]);
        assert_eq!(out["a"]["t"], vec![1]);
        assert_eq!(out["0"]["t"], vec![2]);
    }

    #[test]
    fn every_partition_is_assigned_exactly_once() {
        for n_members in 1..6usize {
            for n_parts in 0..11 {
                let members: Vec<MemberSubscription> = (0..n_members)
                    .map(|i| member(&format!("m{i}"), &["t"]))
                    .collect();
                let out = range_assign(&members, &parts(&[("t", n_parts)]));
                let mut seen = BTreeSet::new();
                let mut sizes = Vec::new();
                for a in out.values() {
                    let got = a.get("t").cloned().unwrap_or_default();
                    sizes.push(got.len());
                    for p in got {
                        assert!(seen.insert(p), "partition {p} twice");
                    }
                }
                assert_eq!(
                    seen,
                    (0..n_parts).collect(),
                    "{n_members} members, {n_parts} parts"
                );
                let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(max - min <= 1, "balanced: {sizes:?}");
            }
        }
    }
}

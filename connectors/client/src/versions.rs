//! The one table of API versions this client implements, and version negotiation against a
//! broker's ApiVersions response: per key, the highest version both sides support.
//!
//! The table is not `ApiKey::valid_versions()`: that is what `kafka-protocol` can encode,
//! not what the code in this crate fills in correctly. Upper bounds stop where a request's
//! shape changes in a way this client does not implement (Produce v13 and Fetch v13 name
//! topics by id only; OffsetCommit/OffsetFetch v10 likewise). Lower bounds start where the
//! shape this client builds begins (FindCoordinator v4 and OffsetFetch v8 batch groups,
//! JoinGroup v4 has MEMBER_ID_REQUIRED, LeaveGroup v3 lists members): every Kafka since 3.0,
//! and Sluice, offers them.
//!
//! The transaction APIs stop at transaction version 1's client forms: AddPartitionsToTxn v3
//! (v4+ is the brokers' batched form), TxnOffsetCommit v4 and EndTxn v4 (v5 of either
//! declares transaction version 2). InitProducerId starts at v3, which can bump the epoch of
//! a known producer id (KIP-360).

use std::fmt;

use kafka_protocol::messages::ApiKey;

/// `(key, min, max)` for every API this client sends.
pub const IMPLEMENTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 4, 12),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 8, 9),
    (ApiKey::FindCoordinator, 4, 6),
    (ApiKey::JoinGroup, 4, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 3, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::InitProducerId, 3, 5),
    (ApiKey::AddPartitionsToTxn, 1, 3),
    (ApiKey::AddOffsetsToTxn, 1, 4),
    (ApiKey::TxnOffsetCommit, 3, 4),
    (ApiKey::EndTxn, 1, 4),
    // v0 of SaslHandshake means raw tokens without SaslAuthenticate framing; Kafka 1.0+
    // offers v1, and every SaslAuthenticate version (v1 adds the session lifetime, v2 is
    // the flexible encoding).
    (ApiKey::SaslHandshake, 1, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

/// The range this client implements for `api`, if it sends it at all.
pub(crate) fn implemented(api: ApiKey) -> Option<(i16, i16)> {
    IMPLEMENTED
        .iter()
        .find(|(k, _, _)| *k == api)
        .map(|&(_, min, max)| (min, max))
}

/// Outcome of negotiating one API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    /// Send this version.
    Use(i16),
    /// The broker offers the API, but no version in our range.
    NoOverlap { broker_min: i16, broker_max: i16 },
}

/// Versions chosen for one broker connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versions {
    chosen: Vec<(ApiKey, Choice)>,
}

/// Why an API cannot be used with a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NoVersion {
    pub(crate) client_min: i16,
    pub(crate) client_max: i16,
    /// The broker's range, or "none".
    pub(crate) broker: String,
}

impl Versions {
    /// Picks, per implemented key, `min(our max, broker max)` when that is inside both ranges.
    /// `broker` lists `(api_key, min, max)` as the broker's ApiVersions response does.
    pub fn negotiate(broker: impl IntoIterator<Item = (i16, i16, i16)>) -> Self {
        let broker: Vec<(i16, i16, i16)> = broker.into_iter().collect();
        let chosen = IMPLEMENTED
            .iter()
            .filter_map(|&(api, min, max)| {
                let &(_, bmin, bmax) = broker.iter().find(|(k, _, _)| *k == api as i16)?;
                let v = max.min(bmax);
                let choice = if v >= min && v >= bmin {
                    Choice::Use(v)
                } else {
                    Choice::NoOverlap {
                        broker_min: bmin,
                        broker_max: bmax,
                    }
                };
                Some((api, choice))
            })
            .collect();
        Self { chosen }
    }

    /// The version to send `api` at.
    pub fn get(&self, api: ApiKey) -> Option<i16> {
        self.chosen.iter().find_map(|(k, c)| match c {
            Choice::Use(v) if *k == api => Some(*v),
            _ => None,
        })
    }

    /// The version to send `api` at, or why there is none.
    pub(crate) fn require(&self, api: ApiKey) -> Result<i16, NoVersion> {
        let (client_min, client_max) = implemented(api).unwrap_or((0, -1));
        let broker = match self.chosen.iter().find(|(k, _)| *k == api) {
            Some((_, Choice::Use(v))) => return Ok(*v),
            Some((
                _,
                Choice::NoOverlap {
                    broker_min,
                    broker_max,
                },
            )) => format!("{broker_min}..={broker_max}"),
            None => "none".to_owned(),
        };
        Err(NoVersion {
            client_min,
            client_max,
            broker,
        })
    }
}

impl fmt::Display for Versions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (api, choice) in &self.chosen {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            match choice {
                Choice::Use(v) => write!(f, "{api:?} v{v}")?,
                Choice::NoOverlap { .. } => write!(f, "{api:?} none")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_within_what_kafka_protocol_can_encode() {
        for &(api, min, max) in IMPLEMENTED {
            let valid = api.valid_versions();
            assert!(min <= max, "{api:?}");
            assert!(
                valid.min <= min && max <= valid.max,
                "{api:?} {min}..={max} vs {valid}"
            );
        }
    }

    #[test]
    fn table_has_each_key_once() {
        for (i, (a, _, _)) in IMPLEMENTED.iter().enumerate() {
            assert!(
                IMPLEMENTED.iter().skip(i + 1).all(|(b, _, _)| a != b),
                "{a:?} twice"
            );
        }
    }

    #[test]
    fn picks_the_lower_of_the_two_maxima() {
        let v = Versions::negotiate([
            (ApiKey::Produce as i16, 0, 13),
            (ApiKey::Fetch as i16, 4, 7),
        ]);
        assert_eq!(v.get(ApiKey::Produce), Some(12));
        assert_eq!(v.get(ApiKey::Fetch), Some(7));
    }

    #[test]
    fn no_overlap_and_absent_keys_are_errors_naming_both_ranges() {
        let v = Versions::negotiate([(ApiKey::OffsetFetch as i16, 0, 7)]);
        let err = v.require(ApiKey::OffsetFetch).unwrap_err();
        assert_eq!((err.client_min, err.client_max), (8, 9));
        assert_eq!(err.broker, "0..=7");
        let err = v.require(ApiKey::JoinGroup).unwrap_err();
        assert_eq!(err.broker, "none");
        assert_eq!(v.get(ApiKey::JoinGroup), None);
    }

    #[test]
    fn broker_minimum_above_our_maximum_is_no_overlap() {
        let v = Versions::negotiate([(ApiKey::Produce as i16, 13, 14)]);
        assert_eq!(v.get(ApiKey::Produce), None);
        assert_eq!(v.require(ApiKey::Produce).unwrap_err().broker, "13..=14");
    }
}

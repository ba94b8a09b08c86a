//! [`ConsumerStrategy`]: which partitions the stream reads (Spark's `ConsumerStrategies`:
//! `Subscribe`, `SubscribePattern`, `Assign`) and any explicit starting offsets. The
//! subscribe variants are asked again before every batch, so topics and partitions
//! created while the stream runs are picked up.
//!
//! Unlike Spark's driver consumer, the stream does not join the consumer group to learn
//! its partitions: it reads them from the cluster's metadata. One stream per group (what
//! Spark's docs ask for) behaves the same, and a stream killed with `kill -9` can restart
//! at once instead of waiting for the group to expire its old member.

use std::collections::BTreeMap;

use regex::Regex;
use sluice_client::{Client, ResponseError};

use crate::error::{Error, Result};
use crate::range::TopicPartition;

/// Which partitions to read, and from where.
#[derive(Debug, Clone)]
pub struct ConsumerStrategy {
    kind: Kind,
    offsets: BTreeMap<TopicPartition, i64>,
}

#[derive(Debug, Clone)]
enum Kind {
    Subscribe(Vec<String>),
    Pattern { source: String, regex: Regex },
    Assign(Vec<TopicPartition>),
}

impl ConsumerStrategy {
    /// Every partition of these topics, including partitions added later
    /// (`ConsumerStrategies.Subscribe`).
    pub fn subscribe<I, S>(topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            kind: Kind::Subscribe(topics.into_iter().map(Into::into).collect()),
            offsets: BTreeMap::new(),
        }
    }

    /// Every partition of every topic whose whole name matches `pattern` (as Java's
    /// `Pattern.matcher(topic).matches()`), including topics created later
    /// (`ConsumerStrategies.SubscribePattern`). Internal topics never match.
    pub fn subscribe_pattern(pattern: &str) -> Result<Self> {
        let regex = Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| Error::Config(format!("topic pattern {pattern:?}: {e}")))?;
        Ok(Self {
            kind: Kind::Pattern {
                source: pattern.to_owned(),
                regex,
            },
            offsets: BTreeMap::new(),
        })
    }

    /// Exactly these partitions (`ConsumerStrategies.Assign`).
    pub fn assign<I>(partitions: I) -> Self
    where
        I: IntoIterator<Item = TopicPartition>,
    {
        Self {
            kind: Kind::Assign(partitions.into_iter().collect()),
            offsets: BTreeMap::new(),
        }
    }

    /// Explicit starting offsets; they win over the group's committed offsets and
    /// `auto.offset.reset`. Partitions not named here start as usual.
    pub fn with_offsets(mut self, offsets: BTreeMap<TopicPartition, i64>) -> Self {
        self.offsets = offsets;
        self
    }

    /// The explicit starting offsets.
    pub fn offsets(&self) -> &BTreeMap<TopicPartition, i64> {
        &self.offsets
    }

    /// A short description for logs: `subscribe [a, b]`, `pattern x.*`, `assign [t-0]`.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Subscribe(t) => format!("subscribe {t:?}"),
            Kind::Pattern { source, .. } => format!("pattern {source}"),
            Kind::Assign(p) => {
                let names: Vec<String> = p.iter().map(ToString::to_string).collect();
                format!("assign [{}]", names.join(", "))
            }
        }
    }

    /// The partitions to read now, sorted.
    pub async fn partitions(&self, client: &Client) -> Result<Vec<TopicPartition>> {
        let mut out = match &self.kind {
            Kind::Assign(p) => p.clone(),
            Kind::Subscribe(topics) => topic_partitions(client, topics).await?,
            Kind::Pattern { regex, .. } => {
                let names: Vec<String> = client
                    .topics()
                    .await?
                    .into_iter()
                    .filter(|t| regex.is_match(t))
                    .collect();
                topic_partitions(client, &names).await?
            }
        };
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// All partitions of `topics`. A topic that does not exist (yet) has none, as for a
/// subscribed Kafka consumer.
async fn topic_partitions(client: &Client, topics: &[String]) -> Result<Vec<TopicPartition>> {
    let mut out = Vec::new();
    for topic in topics {
        match client.topic(topic).await {
            Ok(info) => out.extend(
                info.partitions
                    .into_keys()
                    .map(|p| TopicPartition::new(topic.clone(), p)),
            ),
            Err(e) if e.kafka_error() == Some(ResponseError::UnknownTopicOrPartition) => {
                tracing::debug!(topic, "subscribed topic does not exist");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_matches_whole_names_only() {
        let s = ConsumerStrategy::subscribe_pattern("app-.*").unwrap();
        let Kind::Pattern { regex, .. } = &s.kind else {
            panic!("not a pattern")
        };
        assert!(regex.is_match("app-lines"));
        assert!(
            !regex.is_match("my-app-lines"),
            "Java's matches() anchors both ends"
        );
        assert!(ConsumerStrategy::subscribe_pattern("(").is_err());
    }
}

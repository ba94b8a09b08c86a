//! [`TopicPartition`] and [`OffsetRange`], Spark's `OffsetRange` and `HasOffsetRanges`
//! element: a half-open offset interval `[fromOffset, untilOffset)` of one partition.

use std::fmt;

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic-partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    /// Kafka's `TopicPartition.toString`: `topic-partition`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// The records of one partition in one batch: offsets `from_offset` (inclusive) to
/// `until_offset` (exclusive). Equality compares all four fields, as Spark's does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OffsetRange {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// First offset of the range.
    pub from_offset: i64,
    /// One past the last offset of the range.
    pub until_offset: i64,
}

impl OffsetRange {
    /// A range of `topic`/`partition`.
    pub fn new(
        topic: impl Into<String>,
        partition: i32,
        from_offset: i64,
        until_offset: i64,
    ) -> Self {
        Self {
            topic: topic.into(),
            partition,
            from_offset,
            until_offset,
        }
    }

    /// `untilOffset - fromOffset`: the number of offsets covered. On a compacted or
    /// transactional topic fewer records than this may be read.
    pub fn count(&self) -> i64 {
        self.until_offset.saturating_sub(self.from_offset)
    }

    /// The partition.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.topic.clone(), self.partition)
    }
}

impl fmt::Display for OffsetRange {
    /// `topic partition fromOffset untilOffset`, the line the seed job prints per range.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.topic, self.partition, self.from_offset, self.until_offset
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_and_display_match_spark() {
        let r = OffsetRange::new("app-lines", 2, 10, 25);
        assert_eq!(r.count(), 15);
        assert_eq!(r.to_string(), "app-lines 2 10 25");
        assert_eq!(r.topic_partition().to_string(), "app-lines-2");
        assert_ne!(r, OffsetRange::new("app-lines", 2, 10, 26));
    }
}

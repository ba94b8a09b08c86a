//! Aggregates and the per-batch result updates every sink applies.
//!
//! A job groups records into [`Cell`]s (an optional event-time window start and a key,
//! the word for the word count) and folds each cell's values into a [`Partial`], one per
//! cell per batch. A batch's [`Updates`] hold those partials; a sink merges them into what
//! it stores, together with the batch's offset ranges (see `sink`), so a batch lands
//! exactly once. Partials are mergeable the way Spark's partial aggregates are
//! (`reduceByKey`'s combine): counts and sums add, min and max compare, distinct values
//! union. What does not live here: windows and the watermark (`window`), and storage.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// An aggregate function (the job file's `aggregate = "count" | "sum" | ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    /// Number of records (or words) in the cell.
    Count,
    /// Sum of the numbers parsed from the records.
    Sum,
    /// Smallest number seen.
    Min,
    /// Largest number seen.
    Max,
    /// Number of distinct values seen (exact, not Spark's approximate `approx_count_distinct`).
    DistinctCount,
}

impl Aggregate {
    /// The name used in job files and in sinks' stored metadata.
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Count => "count",
            Aggregate::Sum => "sum",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::DistinctCount => "distinct_count",
        }
    }

    /// The partial one record's value contributes: `Count(1)`; for `Sum`/`Min`/`Max` the
    /// value parsed as a number (`None` when it is not one, or not finite); for
    /// `DistinctCount` the value itself.
    pub fn partial_of(self, value: &str) -> Option<Partial> {
        let number = || {
            value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v: &f64| v.is_finite())
        };
        Some(match self {
            Aggregate::Count => Partial::Count(1),
            Aggregate::Sum => Partial::Sum(number()?),
            Aggregate::Min => Partial::Min(number()?),
            Aggregate::Max => Partial::Max(number()?),
            Aggregate::DistinctCount => Partial::Distinct(BTreeSet::from([value.to_owned()])),
        })
    }
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Aggregate {
    type Err = Error;

    /// `count`, `sum`, `min`, `max` or `distinct_count` (also `count_distinct`).
    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "count" => Aggregate::Count,
            "sum" => Aggregate::Sum,
            "min" => Aggregate::Min,
            "max" => Aggregate::Max,
            "distinct_count" | "count_distinct" => Aggregate::DistinctCount,
            other => {
                return Err(Error::Config(format!(
                    "aggregate {other:?}: expected count, sum, min, max or distinct_count"
                )))
            }
        })
    }
}

/// A batch's partial result for one cell, mergeable with the stored one.
/// Sum/Min/Max are f64 (numbers parsed from the record); Distinct holds the distinct values seen.
#[derive(Debug, Clone, PartialEq)]
pub enum Partial {
    /// A count.
    Count(i64),
    /// A sum.
    Sum(f64),
    /// A minimum.
    Min(f64),
    /// A maximum.
    Max(f64),
    /// The distinct values seen.
    Distinct(BTreeSet<String>),
}

impl Partial {
    /// Merges `other` in: add (count, sum), min, max, union (distinct). Partials of
    /// different aggregates never meet in one cell ([`Updates::add`] keeps one aggregate
    /// per batch); if they do, `self` is kept unchanged and a debug build panics.
    pub fn merge(&mut self, other: Partial) {
        match (self, other) {
            (Partial::Count(a), Partial::Count(b)) => *a = a.saturating_add(b),
            (Partial::Sum(a), Partial::Sum(b)) => *a += b,
            (Partial::Min(a), Partial::Min(b)) => *a = a.min(b),
            (Partial::Max(a), Partial::Max(b)) => *a = a.max(b),
            (Partial::Distinct(a), Partial::Distinct(b)) => {
                if a.is_empty() {
                    *a = b;
                } else {
                    a.extend(b);
                }
            }
            (a, b) => debug_assert!(false, "merging {b:?} into {a:?}"),
        }
    }

    /// The value: the count, sum, min or max, or the number of distinct values.
    pub fn value(&self) -> f64 {
        match self {
            // Counts beyond 2^53 lose precision here; sinks store counts as integers.
            Partial::Count(c) => *c as f64,
            Partial::Sum(v) | Partial::Min(v) | Partial::Max(v) => *v,
            Partial::Distinct(set) => set.len() as f64,
        }
    }

    /// Which aggregate this partial belongs to.
    pub fn aggregate(&self) -> Aggregate {
        match self {
            Partial::Count(_) => Aggregate::Count,
            Partial::Sum(_) => Aggregate::Sum,
            Partial::Min(_) => Aggregate::Min,
            Partial::Max(_) => Aggregate::Max,
            Partial::Distinct(_) => Aggregate::DistinctCount,
        }
    }
}

/// A result cell: the window's start (ms since the epoch; None when the job has no window)
/// and the grouping key (the word, for the word count).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cell {
    /// Start of the event-time window, ms since the epoch; `None` without windows.
    pub window_start: Option<i64>,
    /// The grouping key.
    pub key: String,
}

impl Cell {
    /// A cell without a window.
    pub fn unwindowed(key: impl Into<String>) -> Self {
        Self {
            window_start: None,
            key: key.into(),
        }
    }

    /// A cell of the window starting at `start` (ms since the epoch).
    pub fn windowed(start: i64, key: impl Into<String>) -> Self {
        Self {
            window_start: Some(start),
            key: key.into(),
        }
    }
}

/// A record behind the watermark: dropped from the aggregation, counted, and optionally
/// written to a side output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateRecord {
    /// The record's topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its event time, ms since the epoch.
    pub event_time_ms: i64,
    /// The watermark it was behind, ms since the epoch.
    pub watermark_ms: i64,
}

/// One batch's output: the cells it changes, plus what the watermark dropped.
#[derive(Debug, Clone, Default)]
pub struct Updates {
    /// What the partials are (None when empty).
    pub aggregate: Option<Aggregate>,
    /// The cells this batch changes, each with this batch's partial.
    pub cells: BTreeMap<Cell, Partial>,
    /// Records behind the watermark (counted/dropped or side output).
    pub late: Vec<LateRecord>,
}

impl Updates {
    /// Adds `partial` to `cell`, merging with what this batch already holds for it. The
    /// first partial fixes the batch's aggregate; a partial of another aggregate is a bug
    /// in the job (debug builds panic; release builds ignore it).
    pub fn add(&mut self, cell: Cell, partial: Partial) {
        let kind = partial.aggregate();
        match self.aggregate {
            None => self.aggregate = Some(kind),
            Some(a) if a != kind => {
                debug_assert!(false, "a {kind} partial in a batch of {a}");
                return;
            }
            Some(_) => {}
        }
        match self.cells.get_mut(&cell) {
            Some(p) => p.merge(partial),
            None => {
                self.cells.insert(cell, partial);
            }
        }
    }

    /// Merges another part of the same batch (another partition's) into this one.
    pub fn merge(&mut self, other: Updates) {
        for (cell, partial) in other.cells {
            self.add(cell, partial);
        }
        self.late.extend(other.late);
    }

    /// Whether the batch changes no cell and dropped no record.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty() && self.late.is_empty()
    }

    /// The unwindowed word counts of this batch (cells without a window, as counts).
    pub fn from_counts<I>(counts: I) -> Self
    where
        I: IntoIterator<Item = (String, i64)>,
    {
        let mut u = Updates::default();
        for (word, c) in counts {
            u.add(Cell::unwindowed(word), Partial::Count(c));
        }
        u
    }

    /// The distinct window starts this batch touches, ascending.
    pub fn window_starts(&self) -> BTreeSet<i64> {
        self.cells.keys().filter_map(|c| c.window_start).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partials_merge_by_kind() {
        let mut c = Partial::Count(2);
        c.merge(Partial::Count(3));
        assert_eq!(c.value(), 5.0);
        let mut s = Partial::Sum(1.5);
        s.merge(Partial::Sum(2.0));
        assert_eq!(s.value(), 3.5);
        let mut mn = Partial::Min(4.0);
        mn.merge(Partial::Min(-1.0));
        mn.merge(Partial::Min(7.0));
        assert_eq!(mn.value(), -1.0);
        let mut mx = Partial::Max(4.0);
        mx.merge(Partial::Max(-1.0));
        mx.merge(Partial::Max(7.0));
        assert_eq!(mx.value(), 7.0);
        let mut d = Partial::Distinct(BTreeSet::from(["a".to_owned(), "b".to_owned()]));
        d.merge(Partial::Distinct(BTreeSet::from([
            "b".to_owned(),
            "c".to_owned(),
        ])));
        assert_eq!(d.value(), 3.0);
        assert_eq!(d.aggregate(), Aggregate::DistinctCount);
    }

    #[test]
    fn aggregate_parses_and_makes_partials() {
        for a in [
            Aggregate::Count,
            Aggregate::Sum,
            Aggregate::Min,
            Aggregate::Max,
            Aggregate::DistinctCount,
        ] {
            assert_eq!(a.name().parse::<Aggregate>().unwrap(), a);
        }
        assert!("avg".parse::<Aggregate>().is_err());
        assert_eq!(Aggregate::Count.partial_of("x"), Some(Partial::Count(1)));
        assert_eq!(Aggregate::Sum.partial_of(" 2.5 "), Some(Partial::Sum(2.5)));
        assert_eq!(Aggregate::Max.partial_of("nope"), None);
        assert_eq!(Aggregate::Min.partial_of("NaN"), None);
        assert_eq!(
            Aggregate::DistinctCount.partial_of("v"),
            Some(Partial::Distinct(BTreeSet::from(["v".to_owned()])))
        );
    }

    #[test]
    fn updates_merge_per_cell() {
        let mut u = Updates::default();
        assert!(u.is_empty());
        u.add(Cell::windowed(60_000, "a"), Partial::Count(1));
        u.add(Cell::windowed(60_000, "a"), Partial::Count(2));
        u.add(Cell::windowed(0, "a"), Partial::Count(1));
        u.add(Cell::unwindowed("b"), Partial::Count(4));
        assert_eq!(u.aggregate, Some(Aggregate::Count));
        assert_eq!(u.cells.len(), 3);
        assert_eq!(
            u.cells.get(&Cell::windowed(60_000, "a")),
            Some(&Partial::Count(3))
        );
        assert_eq!(u.window_starts(), BTreeSet::from([0, 60_000]));
        let w = Updates::from_counts([("x".to_owned(), 2), ("y".to_owned(), 1)]);
        assert_eq!(
            w.cells.get(&Cell::unwindowed("x")),
            Some(&Partial::Count(2))
        );
        assert!(w.window_starts().is_empty());
        let mut m = Updates::from_counts([("x".to_owned(), 1)]);
        m.merge(w);
        assert_eq!(
            m.cells.get(&Cell::unwindowed("x")),
            Some(&Partial::Count(3))
        );
    }
}

//! STUB per the shared contract, replaced by spark-window's on merge.
#![allow(missing_docs, dead_code)]
use std::collections::{BTreeMap, BTreeSet};
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    Count,
    Sum,
    Min,
    Max,
    DistinctCount,
}
#[derive(Debug, Clone, PartialEq)]
pub enum Partial {
    Count(i64),
    Sum(f64),
    Min(f64),
    Max(f64),
    Distinct(BTreeSet<String>),
}
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cell {
    pub window_start: Option<i64>,
    pub key: String,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub event_time_ms: i64,
    pub watermark_ms: i64,
}
#[derive(Debug, Clone, Default)]
pub struct Updates {
    pub aggregate: Option<Aggregate>,
    pub cells: BTreeMap<Cell, Partial>,
    pub late: Vec<LateRecord>,
}
impl Updates {
    pub fn add(&mut self, cell: Cell, partial: Partial) {
        self.cells.insert(cell, partial);
    }
    pub fn from_counts<I>(counts: I) -> Self
    where
        I: IntoIterator<Item = (String, i64)>,
    {
        let mut u = Updates {
            aggregate: Some(Aggregate::Count),
            ..Default::default()
        };
        for (k, c) in counts {
            u.add(
                Cell {
                    window_start: None,
                    key: k,
                },
                Partial::Count(c),
            );
        }
        u
    }
}

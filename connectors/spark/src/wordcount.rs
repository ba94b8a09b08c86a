//! The built-in job: Spark's `DirectKafkaWordCount` (`lines.flatMap(_.split(" "))
//! .map(x => (x, 1L)).reduceByKey(_ + _)`), per partition and then merged.
//!
//! Words are split exactly as Java's `String.split(" ")`: on each single space, so two
//! spaces in a row give an empty word, a leading space gives an empty first word, and
//! trailing empty words are dropped (so `" "` has no words but `""` is one empty word).
//! Values are decoded as UTF-8 (invalid bytes become U+FFFD, as Kafka's
//! `StringDeserializer` does); a record with a null value (a tombstone) has no words,
//! where Spark's job would fail on it.

use std::collections::HashMap;

use sluice_client::FetchedRecord;

/// Word → count.
pub type Counts = HashMap<String, i64>;

/// Java's `line.split(" ")`.
pub fn java_split(line: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = line.split(' ').collect();
    if parts.len() == 1 {
        // No separator found: Java returns the input itself, even when it is empty.
        return parts;
    }
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

/// Adds the words of `line` to `counts`, allocating only for words not seen before.
pub fn count_line(counts: &mut Counts, line: &str) {
    for word in java_split(line) {
        match counts.get_mut(word) {
            Some(c) => *c += 1,
            None => {
                counts.insert(word.to_owned(), 1);
            }
        }
    }
}

/// Counts the words of every record's value.
pub fn count_records<I>(records: I) -> Counts
where
    I: IntoIterator<Item = FetchedRecord>,
{
    let mut counts = Counts::new();
    for r in records {
        let Some(value) = r.value else { continue };
        count_line(&mut counts, &String::from_utf8_lossy(&value));
    }
    counts
}

/// Adds `more` into `into` (`reduceByKey(_ + _)` across partitions).
pub fn merge(into: &mut Counts, more: Counts) {
    if into.is_empty() {
        *into = more;
        return;
    }
    for (w, c) in more {
        *into.entry(w).or_insert(0) += c;
    }
}

/// The `n` most frequent words, ties by word.
pub fn top(counts: &Counts, n: usize) -> Vec<(&str, i64)> {
    let mut all: Vec<(&str, i64)> = counts.iter().map(|(w, c)| (w.as_str(), *c)).collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    all.truncate(n);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_follows_java() {
        assert_eq!(java_split("a b c"), vec!["a", "b", "c"]);
        assert_eq!(java_split("a  b"), vec!["a", "", "b"]);
        assert_eq!(java_split(" a"), vec!["", "a"]);
        assert_eq!(java_split("a b  "), vec!["a", "b"]);
        assert_eq!(java_split(""), vec![""]);
        assert!(java_split(" ").is_empty());
        assert!(java_split("   ").is_empty());
        assert_eq!(java_split("a\tb"), vec!["a\tb"], "only the space separates");
    }

    #[test]
    fn counts_merge_and_rank() {
        let mut a = Counts::new();
        count_line(&mut a, "to be or not to be");
        let mut b = Counts::new();
        count_line(&mut b, "be quick");
        merge(&mut a, b);
        assert_eq!(a.get("be"), Some(&3));
        assert_eq!(a.get("to"), Some(&2));
        assert_eq!(top(&a, 2), vec![("be", 3), ("to", 2)]);
        assert_eq!(top(&a, 10).len(), 5);
    }
}

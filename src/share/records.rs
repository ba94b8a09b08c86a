//! The records Sluice keeps in `__share_group_state`: one per (group, topic, partition),
//! holding that share partition's whole durable state, so the last record of a key is all
//! that replay needs and compaction can drop the older ones. A record without a value
//! deletes the share partition (DeleteShareGroupOffsets, DeleteGroups).
//!
//! This is Sluice's own layout, not Kafka's `ShareSnapshot`/`ShareUpdate` records (which
//! the share coordinator of a Kafka cluster writes): the key starts with version 100 so
//! the two can never be mistaken for one another.
//!
//! ```text
//! key:   i16 version (100) | i16 length + group id (UTF-8) | 16-byte topic id | i32 partition
//! value: i16 version (0)   | i64 start offset | i32 count | count × (i64 first | i64 last |
//!        i8 state | i16 deliveries)
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

use super::partition::{RecordState, Snapshot, StateBatch};

const KEY_VERSION: i16 = 100;
const VALUE_VERSION: i16 = 0;
/// Bytes of one persisted state batch.
const BATCH_LEN: usize = 8 + 8 + 1 + 2;

/// The key of a share partition: (group, topic id, partition).
pub type Key = (String, Uuid, i32);

/// Encode a key.
pub fn encode_key(k: &Key) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(KEY_VERSION);
    // Group ids are far shorter than 32 KiB; a longer one is cut, never mis-framed.
    let g = k.0.as_bytes();
    let len = i16::try_from(g.len()).unwrap_or(i16::MAX);
    b.put_i16(len);
    b.put_slice(
        g.get(..usize::try_from(len).unwrap_or(0))
            .unwrap_or_default(),
    );
    b.put_slice(k.1.as_bytes());
    b.put_i32(k.2);
    b.freeze()
}

/// Decode a key; `None` for anything else found in the topic.
pub fn decode_key(mut b: Bytes) -> Option<Key> {
    if b.remaining() < 4 || b.get_i16() != KEY_VERSION {
        return None;
    }
    let len = usize::try_from(b.get_i16()).ok()?;
    if b.remaining() < len + 16 + 4 {
        return None;
    }
    let group = String::from_utf8(b.split_to(len).to_vec()).ok()?;
    let id = Uuid::from_slice(&b.split_to(16)).ok()?;
    Some((group, id, b.get_i32()))
}

/// Encode a snapshot.
pub fn encode_value(s: &Snapshot) -> Bytes {
    let mut b = BytesMut::with_capacity(14 + s.batches.len() * BATCH_LEN);
    b.put_i16(VALUE_VERSION);
    b.put_i64(s.start);
    b.put_i32(i32::try_from(s.batches.len()).unwrap_or(i32::MAX));
    for x in &s.batches {
        b.put_i64(x.first);
        b.put_i64(x.last);
        b.put_i8(x.state.code());
        b.put_i16(x.deliveries);
    }
    b.freeze()
}

/// Decode a snapshot; `None` if it is not one. The batch count is checked against the
/// bytes present before anything is allocated for it.
pub fn decode_value(mut b: Bytes) -> Option<Snapshot> {
    if b.remaining() < 14 || b.get_i16() != VALUE_VERSION {
        return None;
    }
    let start = b.get_i64();
    let n = usize::try_from(b.get_i32()).ok()?;
    if n.checked_mul(BATCH_LEN)? > b.remaining() {
        return None;
    }
    let mut batches = Vec::with_capacity(n);
    for _ in 0..n {
        let first = b.get_i64();
        let last = b.get_i64();
        let state = RecordState::from_code(b.get_i8())?;
        let deliveries = b.get_i16();
        if last < first || first < start {
            return None;
        }
        batches.push(StateBatch {
            first,
            last,
            state,
            deliveries,
        });
    }
    Some(Snapshot { start, batches })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        let k = ("g".to_string(), Uuid::new_v4(), 3);
        assert_eq!(decode_key(encode_key(&k)), Some(k));
        let s = Snapshot {
            start: 5,
            batches: vec![StateBatch {
                first: 6,
                last: 9,
                state: RecordState::Acknowledged,
                deliveries: 2,
            }],
        };
        assert_eq!(decode_value(encode_value(&s)), Some(s));
        // a count larger than the bytes is refused, not allocated
        let mut bad = BytesMut::new();
        bad.put_i16(0);
        bad.put_i64(0);
        bad.put_i32(i32::MAX);
        assert_eq!(decode_value(bad.freeze()), None);
    }
}

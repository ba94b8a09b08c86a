//! `__transaction_state` records in Kafka's layouts, so operators' tools read the log as
//! Kafka's: key `TransactionLogKey` v0 (the transactional id), value `TransactionLogValue`
//! v1 (flexible, with the previous/next producer ids and the client's transaction version
//! as tagged fields). A tombstone (no value) forgets a transactional id.
//!
//! These records are not part of the wire protocol, so `kafka-protocol` has no type for
//! them (nor public primitives): the few encodings they use (big-endian integers, unsigned
//! varints, compact strings and arrays) are written here, as `group::offsets` does for the
//! offsets records. Decoding reads a file the broker wrote, but checks every count against
//! the bytes left all the same.

use std::collections::BTreeSet;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::state::{TxnMeta, TxnState, NO_EPOCH, NO_PID};

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 1;
const TAG_PREVIOUS_PID: u32 = 0;
const TAG_NEXT_PID: u32 = 1;
const TAG_CLIENT_TV: u32 = 2;

/// Encode the key of `transactional_id`.
pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + transactional_id.len());
    b.put_i16(KEY_VERSION);
    let len = i16::try_from(transactional_id.len()).unwrap_or(i16::MAX);
    b.put_i16(len);
    b.put_slice(&transactional_id.as_bytes()[..usize::try_from(len).unwrap_or(0)]);
    b.freeze()
}

/// Decode a key: the transactional id.
pub fn decode_key(mut b: Bytes) -> Option<String> {
    if b.remaining() < 4 || b.get_i16() != KEY_VERSION {
        return None;
    }
    let len = usize::try_from(b.get_i16()).ok()?;
    if b.remaining() < len {
        return None;
    }
    String::from_utf8(b.split_to(len).to_vec()).ok()
}

fn put_uvarint(b: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        b.put_u8((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}

fn put_compact_str(b: &mut BytesMut, s: &str) {
    put_uvarint(b, u32::try_from(s.len() + 1).unwrap_or(0));
    b.put_slice(s.as_bytes());
}

/// An unsigned varint of at most 5 bytes (Kafka refuses longer ones).
fn get_uvarint(b: &mut Bytes) -> Option<u32> {
    let mut v: u32 = 0;
    for i in 0..5 {
        if !b.has_remaining() {
            return None;
        }
        let x = b.get_u8();
        v |= u32::from(x & 0x7f) << (7 * i);
        if x & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// A compact array or string length: `n - 1` elements, at most `remaining / min_size`.
fn get_compact_len(b: &mut Bytes, min_size: usize) -> Option<Option<usize>> {
    let n = get_uvarint(b)?;
    if n == 0 {
        return Some(None);
    }
    let len = usize::try_from(n - 1).ok()?;
    (len.saturating_mul(min_size.max(1)) <= b.remaining()).then_some(Some(len))
}

/// Encode the value of `m` (TransactionLogValue v1).
pub fn encode_value(m: &TxnMeta) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_i16(VALUE_VERSION);
    b.put_i64(m.producer_id);
    b.put_i16(m.producer_epoch);
    b.put_i32(m.timeout_ms);
    b.put_i8(m.state.id());
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (t, p) in &m.partitions {
        match topics.last_mut() {
            Some((last, ps)) if *last == t.as_str() => ps.push(*p),
            _ => topics.push((t.as_str(), vec![*p])),
        }
    }
    put_uvarint(&mut b, u32::try_from(topics.len() + 1).unwrap_or(0));
    for (t, ps) in &topics {
        put_compact_str(&mut b, t);
        put_uvarint(&mut b, u32::try_from(ps.len() + 1).unwrap_or(0));
        for p in ps {
            b.put_i32(*p);
        }
        put_uvarint(&mut b, 0);
    }
    b.put_i64(m.last_update_ms);
    b.put_i64(m.start_ms);
    let mut tags: Vec<(u32, Vec<u8>)> = Vec::new();
    if m.previous_producer_id != NO_PID {
        tags.push((
            TAG_PREVIOUS_PID,
            m.previous_producer_id.to_be_bytes().to_vec(),
        ));
    }
    if m.next_producer_id != NO_PID {
        tags.push((TAG_NEXT_PID, m.next_producer_id.to_be_bytes().to_vec()));
    }
    if m.client_tv != 0 {
        tags.push((TAG_CLIENT_TV, m.client_tv.to_be_bytes().to_vec()));
    }
    put_uvarint(&mut b, u32::try_from(tags.len()).unwrap_or(0));
    for (tag, data) in tags {
        put_uvarint(&mut b, tag);
        put_uvarint(&mut b, u32::try_from(data.len()).unwrap_or(0));
        b.put_slice(&data);
    }
    b.freeze()
}

/// Decode a value (v0 or v1) for `transactional_id`.
pub fn decode_value(transactional_id: &str, mut b: Bytes) -> Option<TxnMeta> {
    if b.remaining() < 2 {
        return None;
    }
    let version = b.get_i16();
    if !(0..=VALUE_VERSION).contains(&version) || b.remaining() < 15 {
        return None;
    }
    let producer_id = b.get_i64();
    let producer_epoch = b.get_i16();
    let timeout_ms = b.get_i32();
    let state = TxnState::from_id(b.get_i8())?;
    let mut partitions = BTreeSet::new();
    if version == 0 {
        if b.remaining() < 4 {
            return None;
        }
        let n = b.get_i32();
        let n = usize::try_from(n).unwrap_or(0);
        if n.saturating_mul(6) > b.remaining() {
            return None;
        }
        for _ in 0..n {
            if b.remaining() < 2 {
                return None;
            }
            let len = usize::try_from(b.get_i16()).ok()?;
            if b.remaining() < len + 4 {
                return None;
            }
            let topic = String::from_utf8(b.split_to(len).to_vec()).ok()?;
            let k = usize::try_from(b.get_i32()).ok()?;
            if k.saturating_mul(4) > b.remaining() {
                return None;
            }
            for _ in 0..k {
                partitions.insert((topic.clone(), b.get_i32()));
            }
        }
    } else if let Some(n) = get_compact_len(&mut b, 3)? {
        for _ in 0..n {
            let len = get_compact_len(&mut b, 1)??;
            if b.remaining() < len {
                return None;
            }
            let topic = String::from_utf8(b.split_to(len).to_vec()).ok()?;
            let k = get_compact_len(&mut b, 4)?.unwrap_or(0);
            for _ in 0..k {
                partitions.insert((topic.clone(), b.get_i32()));
            }
            skip_tags(&mut b)?;
        }
    }
    if b.remaining() < 16 {
        return None;
    }
    let last_update_ms = b.get_i64();
    let start_ms = b.get_i64();
    let mut m = TxnMeta {
        transactional_id: transactional_id.to_string(),
        producer_id,
        previous_producer_id: NO_PID,
        next_producer_id: NO_PID,
        producer_epoch,
        last_producer_epoch: NO_EPOCH,
        timeout_ms,
        state,
        partitions,
        start_ms,
        last_update_ms,
        client_tv: 0,
    };
    if version >= 1 {
        let n = get_uvarint(&mut b)?;
        for _ in 0..n {
            let tag = get_uvarint(&mut b)?;
            let size = usize::try_from(get_uvarint(&mut b)?).ok()?;
            if b.remaining() < size {
                return None;
            }
            let mut data = b.split_to(size);
            match (tag, size) {
                (TAG_PREVIOUS_PID, 8) => m.previous_producer_id = data.get_i64(),
                (TAG_NEXT_PID, 8) => m.next_producer_id = data.get_i64(),
                (TAG_CLIENT_TV, 2) => m.client_tv = data.get_i16(),
                _ => {}
            }
        }
    }
    Some(m)
}

fn skip_tags(b: &mut Bytes) -> Option<()> {
    let n = get_uvarint(b)?;
    for _ in 0..n {
        get_uvarint(b)?;
        let size = usize::try_from(get_uvarint(b)?).ok()?;
        if b.remaining() < size {
            return None;
        }
        b.advance(size);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_with_tagged_fields() {
        let mut m = TxnMeta::new("tx-1", 42, 30_000, 1000);
        m.producer_epoch = 3;
        m.state = TxnState::Ongoing;
        m.start_ms = 900;
        m.partitions.insert(("a".into(), 0));
        m.partitions.insert(("a".into(), 2));
        m.partitions.insert(("b".into(), 1));
        m.previous_producer_id = 41;
        m.client_tv = 2;
        let back = decode_value("tx-1", encode_value(&m)).unwrap();
        assert_eq!(back, m);
        assert_eq!(decode_key(encode_key("tx-1")).as_deref(), Some("tx-1"));
    }

    #[test]
    fn truncated_or_lying_values_are_refused() {
        let mut m = TxnMeta::new("tx", 1, 1, 1);
        m.partitions.insert(("t".into(), 0));
        let v = encode_value(&m);
        for cut in 0..v.len() - 1 {
            // Every strict prefix either fails or decodes without the tags; none panics.
            let _ = decode_value("tx", v.slice(..cut));
        }
        // A partition count far beyond the bytes left is refused before any allocation.
        let mut bad = BytesMut::new();
        bad.put_i16(1);
        bad.put_i64(1);
        bad.put_i16(0);
        bad.put_i32(1);
        bad.put_i8(0);
        bad.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(decode_value("tx", bad.freeze()).is_none());
    }
}

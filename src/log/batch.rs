//! A zero-copy view of a magic-v2 record batch header, and the validation the broker does on
//! produce. Records inside a batch are never decoded here: the broker only patches the base
//! offset, the leader epoch and (for LogAppendTime) the max timestamp.

use super::Error;

/// Size of the fixed magic-v2 batch header.
pub const HEADER_LEN: usize = 61;
/// Bytes before `batchLength` ends: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;

const OFF_BASE_OFFSET: usize = 0;
const OFF_LENGTH: usize = 8;
const OFF_LEADER_EPOCH: usize = 12;
const OFF_MAGIC: usize = 16;
const OFF_CRC: usize = 17;
const OFF_ATTRIBUTES: usize = 21;
const OFF_LAST_OFFSET_DELTA: usize = 23;
const OFF_BASE_TIMESTAMP: usize = 27;
const OFF_MAX_TIMESTAMP: usize = 35;
const OFF_PRODUCER_ID: usize = 43;
const OFF_PRODUCER_EPOCH: usize = 51;
const OFF_BASE_SEQUENCE: usize = 53;
const OFF_RECORDS_COUNT: usize = 57;

/// Attribute bit set when the timestamps are LogAppendTime.
pub const ATTR_LOG_APPEND_TIME: i16 = 0x08;
/// Attribute bit of a transactional batch.
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Attribute bit of a control batch (transaction markers).
pub const ATTR_CONTROL: i16 = 0x20;

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

/// Read `(base_offset, batch_length)` from the first [`LOG_OVERHEAD`] bytes, if present.
pub fn peek_offset_and_len(buf: &[u8]) -> Option<(i64, i32)> {
    if buf.len() < LOG_OVERHEAD {
        return None;
    }
    Some((be_i64(buf, OFF_BASE_OFFSET), be_i32(buf, OFF_LENGTH)))
}

/// A borrowed view of one complete batch (header and records). Construction checks that the
/// header is all there and that the length field matches the slice, so every accessor is
/// in bounds.
#[derive(Clone, Copy)]
pub struct BatchView<'a> {
    bytes: &'a [u8],
}

impl<'a> BatchView<'a> {
    /// Split the first batch off `buf`. Returns the batch and the rest, or an error naming
    /// what is wrong. `Ok(None)` means `buf` is empty.
    pub fn split_first(buf: &'a [u8]) -> Result<Option<(BatchView<'a>, &'a [u8])>, Error> {
        if buf.is_empty() {
            return Ok(None);
        }
        let (_, len) = peek_offset_and_len(buf).ok_or(Error::ShortBatch {
            need: LOG_OVERHEAD,
            have: buf.len(),
        })?;
        let total = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(LOG_OVERHEAD))
            .filter(|t| *t >= HEADER_LEN)
            .ok_or(Error::BadBatchLength(len))?;
        if buf.len() < total {
            return Err(Error::ShortBatch {
                need: total,
                have: buf.len(),
            });
        }
        let (this, rest) = buf.split_at(total);
        Ok(Some((BatchView { bytes: this }, rest)))
    }

    /// The whole batch, as stored and served.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Total size in bytes, including the 12-byte log overhead.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }
    /// First offset of the batch.
    pub fn base_offset(&self) -> i64 {
        be_i64(self.bytes, OFF_BASE_OFFSET)
    }
    /// Message format version; only 2 is accepted.
    pub fn magic(&self) -> i8 {
        i8::from_be_bytes([self.bytes[OFF_MAGIC]])
    }
    /// CRC-32C stored in the header.
    pub fn stored_crc(&self) -> u32 {
        u32::from_be_bytes([
            self.bytes[OFF_CRC],
            self.bytes[OFF_CRC + 1],
            self.bytes[OFF_CRC + 2],
            self.bytes[OFF_CRC + 3],
        ])
    }
    /// CRC-32C computed over `attributes..end`.
    pub fn computed_crc(&self) -> u32 {
        crc32c::crc32c(&self.bytes[OFF_ATTRIBUTES..])
    }
    /// Attribute bits (codec, timestamp type, transactional, control).
    pub fn attributes(&self) -> i16 {
        be_i16(self.bytes, OFF_ATTRIBUTES)
    }
    /// Records in the batch minus one, as the header says.
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.bytes, OFF_LAST_OFFSET_DELTA)
    }
    /// Last offset covered by the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .saturating_add(i64::from(self.last_offset_delta()))
    }
    /// First timestamp of the batch.
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.bytes, OFF_BASE_TIMESTAMP)
    }
    /// Largest timestamp in the batch.
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.bytes, OFF_MAX_TIMESTAMP)
    }
    /// Producer id, -1 when not idempotent.
    pub fn producer_id(&self) -> i64 {
        be_i64(self.bytes, OFF_PRODUCER_ID)
    }
    /// Producer epoch.
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.bytes, OFF_PRODUCER_EPOCH)
    }
    /// Sequence number of the first record, -1 when not idempotent.
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.bytes, OFF_BASE_SEQUENCE)
    }
    /// Sequence of the last record (wrapping at i32::MAX as Kafka does).
    pub fn last_sequence(&self) -> i32 {
        let base = i64::from(self.base_sequence());
        let last = base + i64::from(self.last_offset_delta());
        if last > i64::from(i32::MAX) {
            (last - i64::from(i32::MAX) - 1) as i32
        } else {
            last as i32
        }
    }
    /// Number of records the header claims.
    pub fn records_count(&self) -> i32 {
        be_i32(self.bytes, OFF_RECORDS_COUNT)
    }
    /// Whether this is a control batch (transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes() & ATTR_CONTROL != 0
    }
    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes() & ATTR_TRANSACTIONAL != 0
    }

    /// Check what the broker must check of a batch arriving from a producer or found on disk:
    /// magic 2, a sane record count, and the CRC.
    pub fn validate(&self) -> Result<(), Error> {
        if self.magic() != 2 {
            return Err(Error::UnsupportedMagic(self.magic()));
        }
        if self.last_offset_delta() < 0 || self.records_count() < 0 {
            return Err(Error::BadRecordCount(self.records_count()));
        }
        let (stored, computed) = (self.stored_crc(), self.computed_crc());
        if stored != computed {
            return Err(Error::CrcMismatch { stored, computed });
        }
        Ok(())
    }
}

/// Patch the broker-assigned fields of a batch in place: base offset and leader epoch sit in
/// front of the CRC'd region, so the CRC stays valid.
pub fn assign_offset(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    if batch.len() >= HEADER_LEN {
        batch[OFF_BASE_OFFSET..OFF_BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
        batch[OFF_LEADER_EPOCH..OFF_LEADER_EPOCH + 4].copy_from_slice(&leader_epoch.to_be_bytes());
    }
}

/// Stamp LogAppendTime: set the timestamp-type bit and max timestamp, then recompute the CRC.
/// This is the only case where the broker rewrites CRC'd bytes, as Kafka does.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    if batch.len() < HEADER_LEN {
        return;
    }
    let attrs = be_i16(batch, OFF_ATTRIBUTES) | ATTR_LOG_APPEND_TIME;
    batch[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&attrs.to_be_bytes());
    batch[OFF_MAX_TIMESTAMP..OFF_MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[OFF_ATTRIBUTES..]);
    batch[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Build a minimal valid uncompressed batch holding `n` empty records.
    pub(crate) fn make_batch(n: i32, ts: i64, pid: i64, seq: i32) -> Vec<u8> {
        let mut records = Vec::new();
        for i in 0..n {
            // length, attributes, tsDelta, offsetDelta, keyLen(-1), valueLen(1) 'x', headers 0
            let body = [0u8, 0, (i as u8) << 1, 1, 2, b'x', 0];
            records.push((body.len() as u8) << 1);
            records.extend_from_slice(&body);
        }
        let mut b = vec![0u8; HEADER_LEN];
        b.extend_from_slice(&records);
        let len = (b.len() - LOG_OVERHEAD) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[16] = 2;
        b[23..27].copy_from_slice(&(n - 1).to_be_bytes());
        b[27..35].copy_from_slice(&ts.to_be_bytes());
        b[35..43].copy_from_slice(&ts.to_be_bytes());
        b[43..51].copy_from_slice(&pid.to_be_bytes());
        b[51..53].copy_from_slice(&0i16.to_be_bytes());
        b[53..57].copy_from_slice(&seq.to_be_bytes());
        b[57..61].copy_from_slice(&n.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn view_reads_header_and_validates_crc() {
        let b = make_batch(3, 1000, -1, -1);
        let (v, rest) = BatchView::split_first(&b).unwrap().unwrap();
        assert!(rest.is_empty());
        assert_eq!(v.last_offset_delta(), 2);
        assert_eq!(v.records_count(), 3);
        assert_eq!(v.max_timestamp(), 1000);
        v.validate().unwrap();
    }

    #[test]
    fn corrupt_crc_is_rejected() {
        let mut b = make_batch(1, 1, -1, -1);
        let last = b.len() - 1;
        b[last] ^= 0xff;
        let (v, _) = BatchView::split_first(&b).unwrap().unwrap();
        assert!(matches!(v.validate(), Err(Error::CrcMismatch { .. })));
    }

    #[test]
    fn short_and_bad_lengths_are_errors() {
        let b = make_batch(1, 1, -1, -1);
        assert!(BatchView::split_first(&b[..b.len() - 1]).is_err());
        let mut bad = b.clone();
        bad[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(matches!(
            BatchView::split_first(&bad),
            Err(Error::BadBatchLength(-5))
        ));
    }

    #[test]
    fn assign_offset_keeps_crc_valid() {
        let mut b = make_batch(2, 1, -1, -1);
        assign_offset(&mut b, 42, 0);
        let (v, _) = BatchView::split_first(&b).unwrap().unwrap();
        assert_eq!(v.base_offset(), 42);
        assert_eq!(v.last_offset(), 43);
        v.validate().unwrap();
    }

    #[test]
    fn log_append_time_recomputes_crc() {
        let mut b = make_batch(1, 5, -1, -1);
        set_log_append_time(&mut b, 99);
        let (v, _) = BatchView::split_first(&b).unwrap().unwrap();
        assert_eq!(v.max_timestamp(), 99);
        assert_ne!(v.attributes() & ATTR_LOG_APPEND_TIME, 0);
        v.validate().unwrap();
    }

    #[test]
    fn sequence_wraps() {
        let b = make_batch(3, 1, 7, i32::MAX - 1);
        let (v, _) = BatchView::split_first(&b).unwrap().unwrap();
        assert_eq!(v.last_sequence(), 0);
    }
}

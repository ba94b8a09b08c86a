//! Valid requests of any described (key, version), built from the guard's layouts: the
//! fuzzer's seeds, and the test that holds the layouts against `kafka-protocol`'s decoder.
//! Values are small and drawn from short vocabularies (names, ids, counts), so that a fuzzed
//! broker is not asked to create millions of topics by a request that is otherwise valid.

use super::schema::{Field, Message, Type};

/// A small deterministic generator (splitmix64), so a failing seed can be replayed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// True once in `n` times.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// Names a sample uses for strings: topics, groups, members, config keys.
const WORDS: &[&str] = &["fuzz", "t", "g", "", "cleanup.policy", "fuzz-2", "m-1"];

/// A request frame (header and body, no length prefix) for `msg` at `version`, with a
/// request header of `header_version`.
pub fn request(
    msg: &Message,
    version: i16,
    header_version: i16,
    correlation_id: i32,
    rng: &mut Rng,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&msg.key.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&correlation_id.to_be_bytes());
    if header_version >= 1 {
        let id = b"sluice-sample";
        out.extend_from_slice(&(id.len() as i16).to_be_bytes());
        out.extend_from_slice(id);
    }
    if header_version >= 2 {
        out.push(0);
    }
    let mut w = Writer {
        out,
        rng,
        msg,
        v: version,
    };
    w.fields(&msg.fields, 0);
    w.out
}

/// Append `v` as an unsigned varint.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Writer<'a> {
    out: Vec<u8>,
    rng: &'a mut Rng,
    msg: &'a Message,
    v: i16,
}

/// How deep arrays may nest before they are always empty (keeps samples small).
const MAX_ARRAY_DEPTH: usize = 3;

impl Writer<'_> {
    fn flexible(&self) -> bool {
        self.msg.flexible.contains(self.v)
    }

    fn fields(&mut self, fields: &[Field], depth: usize) {
        let v = self.v;
        for f in fields.iter().filter(|f| f.regular_at(v)) {
            self.value(f, depth);
        }
        if self.flexible() {
            let mut tagged: Vec<&Field> = fields
                .iter()
                .filter(|f| f.tagged_at(v) && self.rng.one_in(2))
                .collect();
            tagged.sort_by_key(|f| f.tag.map(|(t, _)| t));
            put_uvarint(&mut self.out, tagged.len() as u32);
            for f in tagged {
                let body = std::mem::take(&mut self.out);
                self.value(f, depth);
                let data = std::mem::replace(&mut self.out, body);
                put_uvarint(&mut self.out, f.tag.map_or(0, |(t, _)| t));
                put_uvarint(&mut self.out, data.len() as u32);
                self.out.extend_from_slice(&data);
            }
        }
    }

    fn value(&mut self, f: &Field, depth: usize) {
        let nullable = f.nullable.contains(self.v);
        if let Type::Struct(fields) = &f.ty {
            if nullable {
                let present = !self.rng.one_in(3);
                self.out.push(if present { 1 } else { 0xff });
                if present {
                    self.fields(fields, depth);
                }
                return;
            }
        }
        if nullable && !matches!(f.ty, Type::Struct(_)) && self.rng.one_in(4) {
            self.null(&f.ty);
            return;
        }
        self.typed(&f.ty, depth);
    }

    fn null(&mut self, ty: &Type) {
        if self.flexible() {
            self.out.push(0);
        } else if matches!(ty, Type::Str) {
            self.out.extend_from_slice(&(-1i16).to_be_bytes());
        } else {
            self.out.extend_from_slice(&(-1i32).to_be_bytes());
        }
    }

    fn small(&mut self) -> u64 {
        if self.rng.one_in(8) {
            self.rng.next_u64()
        } else {
            self.rng.below(4) as u64
        }
    }

    fn length(&mut self, n: usize, wide: bool) {
        if self.flexible() {
            put_uvarint(&mut self.out, n as u32 + 1);
        } else if wide {
            self.out.extend_from_slice(&(n as i32).to_be_bytes());
        } else {
            self.out.extend_from_slice(&(n as i16).to_be_bytes());
        }
    }

    fn typed(&mut self, ty: &Type, depth: usize) {
        match ty {
            Type::Bool => {
                let b = self.rng.below(2) as u8;
                self.out.push(b);
            }
            Type::I8 => {
                let n = self.small() as u8;
                self.out.push(n);
            }
            Type::I16 | Type::U16 => {
                let n = self.small() as u16;
                self.out.extend_from_slice(&n.to_be_bytes());
            }
            Type::I32 | Type::U32 => {
                let n = self.small() as u32;
                self.out.extend_from_slice(&n.to_be_bytes());
            }
            Type::I64 => {
                let n = self.small();
                self.out.extend_from_slice(&n.to_be_bytes());
            }
            Type::F64 => {
                let n = self.small() as f64;
                self.out.extend_from_slice(&n.to_be_bytes());
            }
            Type::Uuid => {
                let (a, b) = (self.rng.next_u64(), self.rng.next_u64());
                self.out.extend_from_slice(&a.to_be_bytes());
                self.out.extend_from_slice(&b.to_be_bytes());
            }
            Type::Str => {
                let w = WORDS[self.rng.below(WORDS.len())];
                self.length(w.len(), false);
                self.out.extend_from_slice(w.as_bytes());
            }
            Type::Bytes => {
                let n = self.rng.below(12);
                self.length(n, true);
                for _ in 0..n {
                    self.out.push(self.rng.next_u64() as u8);
                }
            }
            Type::Records => {
                let batch = record_batch(self.rng);
                self.length(batch.len(), true);
                self.out.extend_from_slice(&batch);
            }
            Type::Struct(fields) => self.fields(fields, depth),
            Type::Array(elem) => {
                let n = if depth >= MAX_ARRAY_DEPTH {
                    0
                } else {
                    self.rng.below(3)
                };
                self.length(n, true);
                for _ in 0..n {
                    self.typed(elem, depth + 1);
                }
            }
        }
    }
}

/// One valid, uncompressed record batch of one to three small records.
pub fn record_batch(rng: &mut Rng) -> Vec<u8> {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let n = 1 + rng.below(3);
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: 1_700_000_000_000,
            key: Some(bytes::Bytes::from(format!("k{i}"))),
            value: Some(bytes::Bytes::from(format!("v{}", rng.below(1000)))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    match RecordBatchEncoder::encode(&mut buf, &records, &options) {
        Ok(()) => buf.to_vec(),
        Err(_) => Vec::new(),
    }
}

//! The Avro binary encoding of the few types the two protocols use: `long`/`int` (zig-zag
//! varints), `boolean`, `string`, `bytes`, `fixed`, `map` and `array` blocks, enum and union
//! indexes. Records are just their fields in order, so they live with their types
//! (`event.rs`, `handshake.rs`), not here.
//!
//! Decoding never trusts a length or count from the input: every length is checked against the
//! bytes that are actually left before anything is allocated or sliced, and a block count is
//! checked against the remaining input too (every item of our types takes at least one byte).
//! The frame layer has already capped the whole datum at `max_frame_bytes`.

use std::fmt;

/// Why an Avro datum could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}: {problem}")]
pub struct DecodeError {
    /// The field or value being read (`"AvroFlumeEvent.headers"`, `"handshake match"`...).
    pub what: String,
    /// Byte offset into the datum where the problem was found.
    pub offset: usize,
    /// What was wrong.
    pub problem: Problem,
}

/// The kinds of malformed input [`DecodeError`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The datum ended before the value did.
    Truncated,
    /// A varint longer than 10 bytes, or one that overflows 64 bits.
    BadVarint,
    /// A length or count that is negative.
    Negative(i64),
    /// A length or block count larger than the bytes left in the datum.
    TooLong {
        /// The declared length or count.
        declared: i64,
        /// Bytes left in the datum.
        left: usize,
    },
    /// An `int` outside the 32-bit range.
    IntOutOfRange(i64),
    /// A `string` that is not UTF-8.
    NotUtf8,
    /// A `boolean` byte other than 0 or 1.
    BadBoolean(u8),
    /// An enum symbol or union branch index outside the type.
    BadIndex {
        /// The index read.
        index: i64,
        /// How many symbols or branches the type has.
        of: usize,
    },
    /// Bytes left over after the datum.
    TrailingBytes(usize),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Truncated => write!(f, "datum truncated"),
            Problem::BadVarint => write!(f, "malformed varint"),
            Problem::Negative(n) => write!(f, "negative length {n}"),
            Problem::TooLong { declared, left } => {
                write!(f, "length {declared} exceeds the {left} bytes left")
            }
            Problem::IntOutOfRange(n) => write!(f, "int {n} out of 32-bit range"),
            Problem::NotUtf8 => write!(f, "string is not UTF-8"),
            Problem::BadBoolean(b) => write!(f, "boolean byte {b:#04x} is neither 0 nor 1"),
            Problem::BadIndex { index, of } => {
                write!(f, "index {index} out of range (type has {of})")
            }
            Problem::TrailingBytes(n) => write!(f, "{n} trailing bytes after the datum"),
        }
    }
}

/// Appends Avro binary values to a byte vector.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    pub(crate) fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    pub(crate) fn long(&mut self, v: i64) {
        // Zig-zag maps small magnitudes of either sign to small unsigned numbers.
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            let byte = (z & 0x7f) as u8;
            z >>= 7;
            if z == 0 {
                self.buf.push(byte);
                return;
            }
            self.buf.push(byte | 0x80);
        }
    }

    pub(crate) fn int(&mut self, v: i32) {
        self.long(i64::from(v));
    }

    /// A length, block count, enum or union index (always non-negative here).
    pub(crate) fn len(&mut self, n: usize) {
        // A usize from an in-memory collection always fits in i64 on 64-bit targets; clamp
        // rather than wrap if it somehow does not.
        self.long(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn boolean(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.buf.extend_from_slice(v);
    }

    pub(crate) fn string(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    pub(crate) fn fixed(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    pub(crate) fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// A `map<string>` as one block followed by the end marker (an empty map is just `00`).
    pub(crate) fn string_map<'a>(
        &mut self,
        len: usize,
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        if len > 0 {
            self.len(len);
            for (k, v) in entries {
                self.string(k);
                self.string(v);
            }
        }
        self.long(0);
    }

    /// An empty `map<bytes>`: call metadata and handshake meta as Sluice sends them.
    pub(crate) fn empty_map(&mut self) {
        self.long(0);
    }
}

/// Reads Avro binary values from a byte slice, tracking the offset for error messages.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn left(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    pub(crate) fn err(&self, what: &str, problem: Problem) -> DecodeError {
        DecodeError {
            what: what.to_string(),
            offset: self.pos,
            problem,
        }
    }

    /// Fails unless every byte has been read.
    pub(crate) fn finish(&self, what: &str) -> Result<(), DecodeError> {
        match self.left() {
            0 => Ok(()),
            n => Err(self.err(what, Problem::TrailingBytes(n))),
        }
    }

    fn byte(&mut self, what: &str) -> Result<u8, DecodeError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.err(what, Problem::Truncated))?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn long(&mut self, what: &str) -> Result<i64, DecodeError> {
        let start = self.pos;
        let mut z: u64 = 0;
        for i in 0..10u32 {
            let b = self.byte(what)?;
            let bits = u64::from(b & 0x7f);
            // The 10th byte may only carry the one remaining bit.
            if i == 9 && bits > 1 {
                self.pos = start;
                return Err(self.err(what, Problem::BadVarint));
            }
            z |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        self.pos = start;
        Err(self.err(what, Problem::BadVarint))
    }

    pub(crate) fn int(&mut self, what: &str) -> Result<i32, DecodeError> {
        let start = self.pos;
        let v = self.long(what)?;
        i32::try_from(v).map_err(|_| {
            self.pos = start;
            self.err(what, Problem::IntOutOfRange(v))
        })
    }

    pub(crate) fn boolean(&mut self, what: &str) -> Result<bool, DecodeError> {
        match self.byte(what)? {
            0 => Ok(false),
            1 => Ok(true),
            b => {
                self.pos -= 1;
                Err(self.err(what, Problem::BadBoolean(b)))
            }
        }
    }

    /// A non-negative length no larger than what is left of the input.
    fn length(&mut self, what: &str) -> Result<usize, DecodeError> {
        let start = self.pos;
        let n = self.long(what)?;
        if n < 0 {
            self.pos = start;
            return Err(self.err(what, Problem::Negative(n)));
        }
        match usize::try_from(n) {
            Ok(len) if len <= self.left() => Ok(len),
            _ => {
                self.pos = start;
                let left = self.left();
                Err(self.err(what, Problem::TooLong { declared: n, left }))
            }
        }
    }

    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.err(what, Problem::Truncated))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.err(what, Problem::Truncated))?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn bytes(&mut self, what: &str) -> Result<&'a [u8], DecodeError> {
        let n = self.length(what)?;
        self.take(n, what)
    }

    pub(crate) fn string(&mut self, what: &str) -> Result<&'a str, DecodeError> {
        let start = self.pos;
        let b = self.bytes(what)?;
        std::str::from_utf8(b).map_err(|_| {
            self.pos = start;
            self.err(what, Problem::NotUtf8)
        })
    }

    pub(crate) fn fixed<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DecodeError> {
        let b = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    /// An enum symbol or union branch index in `0..of`.
    pub(crate) fn index(&mut self, of: usize, what: &str) -> Result<usize, DecodeError> {
        let start = self.pos;
        let i = self.long(what)?;
        match usize::try_from(i) {
            Ok(u) if u < of => Ok(u),
            _ => {
                self.pos = start;
                Err(self.err(what, Problem::BadIndex { index: i, of }))
            }
        }
    }

    /// The item count of the next block of a map or array (0 ends it). A negative count is
    /// followed by the block's size in bytes, which is read and checked but not needed.
    pub(crate) fn block_count(&mut self, what: &str) -> Result<usize, DecodeError> {
        let start = self.pos;
        let n = self.long(what)?;
        let count = if n < 0 {
            let _block_bytes = self.length(what)?;
            n.checked_neg()
                .ok_or_else(|| self.err(what, Problem::Negative(n)))?
        } else {
            n
        };
        // Each item of every map or array in these protocols takes at least one byte, so a
        // count beyond the bytes left is a lie: stop before looping over it.
        match usize::try_from(count) {
            Ok(c) if c <= self.left() => Ok(c),
            _ => {
                let left = self.left();
                self.pos = start;
                Err(self.err(
                    what,
                    Problem::TooLong {
                        declared: count,
                        left,
                    },
                ))
            }
        }
    }

    /// Reads a whole map, calling `entry` for each key and value reader position.
    pub(crate) fn map<F>(&mut self, what: &str, mut entry: F) -> Result<(), DecodeError>
    where
        F: FnMut(&mut Self, &'a str) -> Result<(), DecodeError>,
    {
        loop {
            let n = self.block_count(what)?;
            if n == 0 {
                return Ok(());
            }
            for _ in 0..n {
                let key = self.string(what)?;
                entry(self, key)?;
            }
        }
    }

    /// Reads a whole array, calling `item` for each element.
    pub(crate) fn array<F>(&mut self, what: &str, mut item: F) -> Result<(), DecodeError>
    where
        F: FnMut(&mut Self) -> Result<(), DecodeError>,
    {
        loop {
            let n = self.block_count(what)?;
            if n == 0 {
                return Ok(());
            }
            for _ in 0..n {
                item(self)?;
            }
        }
    }

    /// Reads and drops a `map<bytes>` (call metadata, handshake meta).
    pub(crate) fn skip_bytes_map(&mut self, what: &str) -> Result<(), DecodeError> {
        self.map(what, |r, _key| r.bytes(what).map(|_| ()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc_long(v: i64) -> Vec<u8> {
        let mut w = Writer::new();
        w.long(v);
        w.into_inner()
    }

    #[test]
    fn zigzag_matches_the_spec_examples() {
        // Avro spec table: 0→00, -1→01, 1→02, -2→03, 2→04, -64→7f, 64→80 01.
        for (v, bytes) in [
            (0i64, vec![0x00u8]),
            (-1, vec![0x01]),
            (1, vec![0x02]),
            (-2, vec![0x03]),
            (2, vec![0x04]),
            (-64, vec![0x7f]),
            (64, vec![0x80, 0x01]),
        ] {
            assert_eq!(enc_long(v), bytes, "encoding {v}");
            assert_eq!(Reader::new(&bytes).long("v").unwrap(), v);
        }
        for v in [i64::MIN, i64::MAX, i64::from(i32::MIN), 123_456_789] {
            let b = enc_long(v);
            assert!(b.len() <= 10);
            assert_eq!(Reader::new(&b).long("v").unwrap(), v);
        }
    }

    #[test]
    fn overlong_or_truncated_varints_are_errors() {
        let eleven = [0xffu8; 11];
        assert_eq!(
            Reader::new(&eleven).long("v").unwrap_err().problem,
            Problem::BadVarint
        );
        let truncated = [0x80u8, 0x80];
        assert_eq!(
            Reader::new(&truncated).long("v").unwrap_err().problem,
            Problem::Truncated
        );
        // 10th byte carrying more than the last bit would overflow 64 bits.
        let mut over = [0xffu8; 10];
        over[9] = 0x02;
        assert_eq!(
            Reader::new(&over).long("v").unwrap_err().problem,
            Problem::BadVarint
        );
    }

    #[test]
    fn int_range_is_checked() {
        let b = enc_long(i64::from(i32::MAX) + 1);
        assert!(matches!(
            Reader::new(&b).int("n").unwrap_err().problem,
            Problem::IntOutOfRange(_)
        ));
    }

    #[test]
    fn lengths_beyond_the_input_fail_without_allocating() {
        // bytes with a declared length of 2^62: must be rejected up front.
        let b = enc_long(1 << 62);
        let err = Reader::new(&b).bytes("body").unwrap_err();
        assert!(matches!(err.problem, Problem::TooLong { .. }), "{err}");
        let neg = enc_long(-5);
        assert_eq!(
            Reader::new(&neg).bytes("body").unwrap_err().problem,
            Problem::Negative(-5)
        );
    }

    #[test]
    fn huge_block_counts_are_rejected() {
        for count in [i64::MAX, i64::MIN, 1 << 40, -(1 << 40)] {
            let mut w = Writer::new();
            w.long(count);
            w.long(0);
            let b = w.into_inner();
            let err = Reader::new(&b)
                .map("headers", |r, _| r.string("v").map(|_| ()))
                .unwrap_err();
            assert!(
                matches!(
                    err.problem,
                    Problem::TooLong { .. } | Problem::Negative(_) | Problem::Truncated
                ),
                "count {count}: {err}"
            );
        }
    }

    #[test]
    fn negative_block_count_carries_a_byte_size() {
        // map<string> {a: b} written as a block of -1 items, 4 bytes.
        let b = [0x01u8, 0x08, 0x02, b'a', 0x02, b'b', 0x00];
        let mut got = Vec::new();
        let mut r = Reader::new(&b);
        r.map("m", |r, k| {
            got.push((k.to_string(), r.string("v")?.to_string()));
            Ok(())
        })
        .unwrap();
        r.finish("m").unwrap();
        assert_eq!(got, vec![("a".to_string(), "b".to_string())]);
    }

    #[test]
    fn strings_must_be_utf8_and_booleans_0_or_1() {
        let b = [0x02u8, 0xff];
        assert_eq!(
            Reader::new(&b).string("s").unwrap_err().problem,
            Problem::NotUtf8
        );
        assert_eq!(
            Reader::new(&[2u8]).boolean("flag").unwrap_err().problem,
            Problem::BadBoolean(2)
        );
    }
}

//! The request guard: every frame is walked against its message layout before `kafka-protocol`
//! decodes it, because that decoder trusts the wire — it sizes a `Vec` from an array count
//! before it checks how many bytes are left, so one 20-byte request asking for 2³¹ elements
//! aborts the process. The walk reads no more than the frame, allocates nothing, and refuses
//! what Apache Kafka's generated readers refuse:
//!
//! - an array count whose elements cannot fit in the bytes left (Kafka: "Tried to allocate a
//!   collection of size N, but there are only M bytes remaining"); Sluice also counts each
//!   element's smallest encoding, so the count times that must fit;
//! - a string or bytes length beyond the bytes left, or negative other than -1 (null);
//! - an unsigned varint longer than 5 bytes (Kafka's `ByteUtils.readUnsignedVarint`);
//! - a known tag in a version where that field is not tagged.
//!
//! It mirrors the decoder's reading exactly, so every count the decoder reads has been
//! checked here at the same offset: known tagged fields are read from the frame itself, not
//! from within their announced size, because that is what the decoder does.
//!
//! - [`schema`]: the layouts, parsed from `requests.schema`.
//! - [`sample`]: valid requests of every described (key, version), built from the same
//!   layouts, for tests and the fuzzer.
//!
//! Used by `server::connection` for every frame and by `group` for the member metadata it
//! decodes. Not here: framing (`server::frame`), what a request means (`api`).

pub mod sample;
pub mod schema;

use schema::{Field, Message, Type};

/// Kafka's cap on an unsigned varint: 5 bytes for 32 bits.
const MAX_VARINT_BYTES: usize = 5;

/// Why a request frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset} of the frame")]
pub struct Malformed {
    /// Offset in the frame (after the length prefix) where reading stopped.
    pub offset: usize,
    /// What was wrong.
    pub what: String,
}

/// Check a request frame (header and body, without the length prefix) against the layout of
/// its API key and version. `header_version` is the request header version for that key and
/// version. Unknown keys and versions that the schema does not describe are refused: the
/// decoder will not be asked to read what was not checked.
pub fn check(frame: &[u8], header_version: i16) -> Result<(), Malformed> {
    let schema = schema::get().map_err(|e| Malformed {
        offset: 0,
        what: e.to_string(),
    })?;
    let mut r = Reader { buf: frame, pos: 0 };
    let key = r.i16()?;
    let version = r.i16()?;
    let msg = schema
        .request(key, version)
        .ok_or_else(|| r.fail(format!("no layout for api key {key} version {version}")))?;
    r.take(4)?; // correlation id
    if header_version >= 1 {
        r.string(false)?; // client id: always an int16-length string, even in header v2
    }
    if header_version >= 2 {
        r.tagged(&[], 0, msg)?;
    }
    r.fields(&msg.fields, version, msg)
}

/// Check bytes that carry the embedded message `name` (see [`schema::Schema::embedded`]) at
/// `version`, before the codec decodes them: a consumer's subscription inside JoinGroup, for
/// instance.
pub fn check_embedded(bytes: &[u8], name: &str, version: i16) -> Result<(), Malformed> {
    let schema = schema::get().map_err(|e| Malformed {
        offset: 0,
        what: e.to_string(),
    })?;
    let msg = schema.embedded(name, version).ok_or_else(|| Malformed {
        offset: 0,
        what: format!("no layout for {name} version {version}"),
    })?;
    Reader { buf: bytes, pos: 0 }.fields(&msg.fields, version, msg)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn left(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn fail(&self, what: String) -> Malformed {
        Malformed {
            offset: self.pos,
            what,
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], Malformed> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.fail(format!("{n} bytes wanted, {} left", self.left())))?;
        let b = self.buf.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(b)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn i16(&mut self) -> Result<i16, Malformed> {
        Ok(i16::from_be_bytes(self.fixed()?))
    }

    fn i32(&mut self) -> Result<i32, Malformed> {
        Ok(i32::from_be_bytes(self.fixed()?))
    }

    fn uvarint(&mut self) -> Result<u32, Malformed> {
        let start = self.pos;
        let mut value: u32 = 0;
        for i in 0..MAX_VARINT_BYTES {
            let [b] = self.fixed()?;
            value |= u32::from(b & 0x7f).wrapping_shl(7 * u32::try_from(i).unwrap_or(0));
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Malformed {
            offset: start,
            what: "unsigned varint longer than 5 bytes".into(),
        })
    }

    /// A length or count: `None` for null, `Some(n)` otherwise.
    fn length(&mut self, flexible: bool, wide: bool) -> Result<Option<usize>, Malformed> {
        if flexible {
            let n = self.uvarint()?;
            return Ok(n.checked_sub(1).map(|n| n as usize));
        }
        let n = if wide {
            self.i32()?
        } else {
            i32::from(self.i16()?)
        };
        match n {
            -1 => Ok(None),
            n => usize::try_from(n)
                .map(Some)
                .map_err(|_| self.fail(format!("negative length {n}"))),
        }
    }

    fn string(&mut self, flexible: bool) -> Result<(), Malformed> {
        if let Some(n) = self.length(flexible, false)? {
            self.take(n)?;
        }
        Ok(())
    }

    fn fields(&mut self, fields: &[Field], v: i16, msg: &Message) -> Result<(), Malformed> {
        let flexible = msg.flexible.contains(v);
        for f in fields.iter().filter(|f| f.regular_at(v)) {
            self.value(f, v, msg)?;
        }
        if flexible {
            self.tagged(fields, v, msg)?;
        }
        Ok(())
    }

    fn tagged(&mut self, fields: &[Field], v: i16, msg: &Message) -> Result<(), Malformed> {
        let n = self.uvarint()?;
        for _ in 0..n {
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            match fields
                .iter()
                .find(|f| matches!(f.tag, Some((t, _)) if t == tag))
            {
                Some(f) if f.tagged_at(v) => self.value(f, v, msg)?,
                Some(f) => {
                    return Err(self.fail(format!(
                        "tag {tag} ({}) is not valid in version {v}",
                        f.name
                    )))
                }
                None => {
                    self.take(size)?;
                }
            }
        }
        Ok(())
    }

    fn value(&mut self, f: &Field, v: i16, msg: &Message) -> Result<(), Malformed> {
        let nullable = f.nullable.contains(v);
        match &f.ty {
            Type::Struct(fields) if nullable => {
                // The decoder reads an int8 marker: 1 is present, anything else absent.
                let [marker] = self.fixed()?;
                if marker == 1 {
                    self.fields(fields, v, msg)?;
                }
                Ok(())
            }
            ty => self.typed(ty, v, msg, &f.name),
        }
    }

    fn typed(&mut self, ty: &Type, v: i16, msg: &Message, name: &str) -> Result<(), Malformed> {
        let flexible = msg.flexible.contains(v);
        match ty {
            Type::Bool | Type::I8 => self.take(1).map(drop),
            Type::I16 | Type::U16 => self.take(2).map(drop),
            Type::I32 | Type::U32 => self.take(4).map(drop),
            Type::I64 | Type::F64 => self.take(8).map(drop),
            Type::Uuid => self.take(16).map(drop),
            Type::Str => self.string(flexible),
            Type::Bytes | Type::Records => {
                if let Some(n) = self.length(flexible, true)? {
                    self.take(n)?;
                }
                Ok(())
            }
            Type::Struct(fields) => self.fields(fields, v, msg),
            Type::Array(elem) => {
                let at = self.pos;
                let Some(count) = self.length(flexible, true)? else {
                    return Ok(());
                };
                let each = min_size(elem, v, flexible).max(1);
                if count.saturating_mul(each) > self.left() {
                    return Err(Malformed {
                        offset: at,
                        what: format!(
                            "{name}: array of {count} elements of at least {each} bytes, \
                             {} bytes left",
                            self.left()
                        ),
                    });
                }
                for _ in 0..count {
                    self.typed(elem, v, msg, name)?;
                }
                Ok(())
            }
        }
    }
}

/// The fewest bytes a value of `ty` takes at version `v`.
fn min_size(ty: &Type, v: i16, flexible: bool) -> usize {
    match ty {
        Type::Bool | Type::I8 => 1,
        Type::I16 | Type::U16 => 2,
        Type::I32 | Type::U32 => 4,
        Type::I64 | Type::F64 => 8,
        Type::Uuid => 16,
        Type::Str if !flexible => 2,
        Type::Bytes | Type::Records | Type::Array(_) if !flexible => 4,
        Type::Str | Type::Bytes | Type::Records | Type::Array(_) => 1,
        Type::Struct(fields) => {
            let own: usize = fields
                .iter()
                .filter(|f| f.regular_at(v))
                .map(|f| {
                    if f.nullable.contains(v) && matches!(f.ty, Type::Struct(_)) {
                        1
                    } else {
                        min_size(&f.ty, v, flexible)
                    }
                })
                .sum();
            own + usize::from(flexible)
        }
    }
}

#[cfg(test)]
mod tests;

//! The on-disk format of the file channel's write-ahead log: file header, records, and the
//! sequential scanner used by recovery. Plain synchronous code, unit-tested in temp dirs.
//!
//! A log file is `log-N` (N = file id, unique across all data dirs):
//!
//! ```text
//! header   "SLFCLOG1" (8 bytes)  file id u32 BE  reserved u32 (0)
//! record*  len u32 BE            crc32c u32 BE (of the `len` bytes that follow)
//!          kind u8               write-order id u64 BE   transaction id u64 BE
//!          payload (len - 17 bytes)
//! ```
//!
//! Payloads: `put` = the event (`u32` header count, then `u32`-length-prefixed key and value
//! per header, then the `u32`-length-prefixed body); `take` = the pointer to the put
//! record (file id u32, offset u64); `commit` and `rollback` are empty. Write-order ids rise
//! strictly through the log (across files, since one file is written at a time), so replay
//! is a single pass in file order. A record whose length runs past the end of the file,
//! whose CRC does not match, or whose kind is unknown ends the readable part of its file:
//! the scanner reports it as a torn tail and recovery truncates the file there.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use bytes::Bytes;

use crate::event::{Event, Headers};

/// The first bytes of every log file.
pub(super) const FILE_MAGIC: &[u8; 8] = b"SLFCLOG1";
/// Magic, file id, reserved.
pub(super) const FILE_HEADER_LEN: u64 = 16;
/// `len` + `crc`.
pub(super) const PREFIX_LEN: usize = 8;
/// `kind` + write-order id + transaction id.
pub(super) const META_LEN: usize = 17;
/// No record is longer than Flume's largest log file (`maxFileSize` is capped at it).
pub(super) const MAX_RECORD_LEN: u64 = super::DEFAULT_MAX_FILE_SIZE;

/// Where a record starts: its log file and byte offset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Ptr {
    /// Log file id.
    pub(super) file: u32,
    /// Byte offset of the record's length prefix.
    pub(super) offset: u64,
}

/// Record kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Put = 1,
    Take = 2,
    Commit = 3,
    Rollback = 4,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Put),
            2 => Some(Kind::Take),
            3 => Some(Kind::Commit),
            4 => Some(Kind::Rollback),
            _ => None,
        }
    }
}

/// A record's payload, encoded before the channel's lock is taken. Its CRC is computed
/// under the lock by continuing the CRC of the record's metadata over these bytes
/// (`crc32c_append`): hardware CRC over a few hundred bytes costs far less than
/// `crc32c_combine`'s matrix method, which took three quarters of the agent's CPU.
#[derive(Debug, Clone, Default)]
pub(super) struct Payload {
    bytes: Vec<u8>,
}

impl Payload {
    /// An empty payload (commit, rollback).
    pub(super) fn empty() -> Payload {
        Payload::default()
    }

    /// A put payload: the event.
    pub(super) fn put(e: &Event) -> Payload {
        let size = 8
            + e.body.len()
            + e.headers
                .iter()
                .map(|(k, v)| 8 + k.len() + v.len())
                .sum::<usize>();
        let mut b = Vec::with_capacity(size);
        put_u32(&mut b, e.headers.len());
        for (k, v) in &e.headers {
            put_u32(&mut b, k.len());
            b.extend_from_slice(k.as_bytes());
            put_u32(&mut b, v.len());
            b.extend_from_slice(v.as_bytes());
        }
        put_u32(&mut b, e.body.len());
        b.extend_from_slice(&e.body);
        Payload::from_bytes(b)
    }

    /// A take payload: the pointer to the put record.
    pub(super) fn take(target: Ptr) -> Payload {
        let mut b = Vec::with_capacity(12);
        b.extend_from_slice(&target.file.to_be_bytes());
        b.extend_from_slice(&target.offset.to_be_bytes());
        Payload::from_bytes(b)
    }

    fn from_bytes(bytes: Vec<u8>) -> Payload {
        Payload { bytes }
    }

    /// Bytes the record holding this payload takes in the log.
    pub(super) fn record_len(&self) -> u64 {
        (PREFIX_LEN + META_LEN + self.bytes.len()) as u64
    }
}

fn put_u32(b: &mut Vec<u8>, n: usize) {
    // Lengths come from in-memory strings and bodies; a body over 4 GiB cannot be
    // logged anyway (maxFileSize is below 2 GiB), and `append` rejects it first.
    b.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

/// Appends one record to `buf`.
pub(super) fn append_record(buf: &mut Vec<u8>, kind: Kind, woid: u64, txn: u64, payload: &Payload) {
    let mut meta = [0u8; META_LEN];
    meta[0] = kind as u8;
    meta[1..9].copy_from_slice(&woid.to_be_bytes());
    meta[9..17].copy_from_slice(&txn.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&meta), &payload.bytes);
    let len = META_LEN + payload.bytes.len();
    put_u32(buf, len);
    buf.extend_from_slice(&crc.to_be_bytes());
    buf.extend_from_slice(&meta);
    buf.extend_from_slice(&payload.bytes);
}

/// The header of log file `id`.
pub(super) fn file_header(id: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(FILE_HEADER_LEN as usize);
    b.extend_from_slice(FILE_MAGIC);
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b
}

/// A record's fixed fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Meta {
    pub(super) kind: Kind,
    pub(super) woid: u64,
    pub(super) txn: u64,
}

/// One record as recovery sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Item {
    /// Where the record is.
    pub(super) at: Ptr,
    /// Its fixed fields.
    pub(super) meta: Meta,
    /// For a take: the put it takes.
    pub(super) target: Option<Ptr>,
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)?.try_into().ok().map(u32::from_be_bytes)
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)?.try_into().ok().map(u64::from_be_bytes)
}

/// Checks a record's body (the `len` bytes after the prefix) against `crc` and splits it.
pub(super) fn parse_body(body: &[u8], crc: u32) -> Result<(Meta, &[u8]), String> {
    if body.len() < META_LEN {
        return Err(format!(
            "record of {} bytes is shorter than its {META_LEN}-byte header",
            body.len()
        ));
    }
    let actual = crc32c::crc32c(body);
    if actual != crc {
        return Err(format!(
            "CRC mismatch (stored {crc:08x}, computed {actual:08x})"
        ));
    }
    let kind = body
        .first()
        .and_then(|b| Kind::from_u8(*b))
        .ok_or_else(|| format!("unknown record kind {:?}", body.first()))?;
    let (Some(woid), Some(txn)) = (be_u64(body, 1), be_u64(body, 9)) else {
        return Err("record header is cut short".to_string());
    };
    Ok((
        Meta { kind, woid, txn },
        body.get(META_LEN..).unwrap_or(&[]),
    ))
}

/// Decodes a take payload.
pub(super) fn parse_take(payload: &[u8]) -> Result<Ptr, String> {
    match (be_u32(payload, 0), be_u64(payload, 4), payload.len()) {
        (Some(file), Some(offset), 12) => Ok(Ptr { file, offset }),
        _ => Err(format!(
            "take record payload of {} bytes (expected 12)",
            payload.len()
        )),
    }
}

/// Decodes a put payload into the event.
pub(super) fn parse_put(payload: &[u8]) -> Result<Event, String> {
    let count = be_u32(payload, 0).ok_or("put record: header count is cut short")?;
    let mut at = 4usize;
    let mut next = |what: &str| -> Result<&[u8], String> {
        let n =
            be_u32(payload, at).ok_or_else(|| format!("put record: {what} length is cut short"))?;
        let start = at + 4;
        let end = start
            .checked_add(usize::try_from(n).unwrap_or(usize::MAX))
            .filter(|e| *e <= payload.len())
            .ok_or_else(|| format!("put record: {what} of {n} bytes runs past the record"))?;
        at = end;
        Ok(payload.get(start..end).unwrap_or(&[]))
    };
    let mut headers = Headers::new();
    for _ in 0..count {
        let k = String::from_utf8_lossy(next("header key")?).into_owned();
        let v = String::from_utf8_lossy(next("header value")?).into_owned();
        headers.insert(k, v);
    }
    let body = Bytes::copy_from_slice(next("body")?);
    if at != payload.len() {
        return Err(format!(
            "put record has {} bytes after the body",
            payload.len() - at
        ));
    }
    Ok(Event { headers, body })
}

/// How a scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ScanEnd {
    /// Every byte was part of a good record.
    Clean,
    /// The bytes from `offset` on are not a good record.
    Torn {
        /// Where the bad data starts.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
}

/// Checks a log file's header; `Ok(false)` when the file is too short to hold one (a file
/// created just before a crash).
pub(super) fn check_header(path: &Path, id: u32) -> io::Result<bool> {
    let mut f = File::open(path)?;
    let mut h = [0u8; FILE_HEADER_LEN as usize];
    let mut got = 0;
    while got < h.len() {
        let n = f.read(&mut h[got..])?;
        if n == 0 {
            return Ok(false);
        }
        got += n;
    }
    if &h[..8] != FILE_MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is not a sluice-flume log file (bad magic); is this a Java Flume file channel directory?",
                path.display()
            ),
        ));
    }
    let stored = be_u32(&h, 8).unwrap_or(0);
    if stored != id {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} says it is log file {stored}", path.display()),
        ));
    }
    Ok(true)
}

/// Reads the records of log file `id` from byte `start` (at least the header length) in
/// order, calling `f` for each. Returns how the scan ended and the offset after the last
/// good record.
pub(super) fn scan(
    path: &Path,
    id: u32,
    start: u64,
    mut f: impl FnMut(Item),
) -> io::Result<(ScanEnd, u64)> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let start = start.max(FILE_HEADER_LEN);
    if start >= size {
        return Ok((ScanEnd::Clean, start.min(size)));
    }
    let mut r = BufReader::with_capacity(1 << 20, file);
    io::copy(&mut (&mut r).take(start), &mut io::sink())?;
    let mut at = start;
    let mut body = Vec::new();
    loop {
        let remaining = size - at;
        if remaining == 0 {
            return Ok((ScanEnd::Clean, at));
        }
        let torn = |reason: String| Ok((ScanEnd::Torn { offset: at, reason }, at));
        if remaining < PREFIX_LEN as u64 {
            return torn(format!("{remaining} bytes left, too few for a record"));
        }
        let mut prefix = [0u8; PREFIX_LEN];
        r.read_exact(&mut prefix)?;
        let len = u64::from(be_u32(&prefix, 0).unwrap_or(0));
        let crc = be_u32(&prefix, 4).unwrap_or(0);
        if len < META_LEN as u64 || len > MAX_RECORD_LEN {
            return torn(format!("record length {len} is impossible"));
        }
        if len > remaining - PREFIX_LEN as u64 {
            return torn(format!(
                "record of {len} bytes but only {} left in the file",
                remaining - PREFIX_LEN as u64
            ));
        }
        body.resize(usize::try_from(len).unwrap_or(0), 0);
        r.read_exact(&mut body)?;
        let (meta, payload) = match parse_body(&body, crc) {
            Ok(v) => v,
            Err(e) => return torn(e),
        };
        let target = if meta.kind == Kind::Take {
            match parse_take(payload) {
                Ok(p) => Some(p),
                Err(e) => return torn(e),
            }
        } else {
            None
        };
        f(Item {
            at: Ptr {
                file: id,
                offset: at,
            },
            meta,
            target,
        });
        at += PREFIX_LEN as u64 + len;
    }
}

/// Reads the event of the put record at `offset` in `file` (positional reads; safe to
/// call while the file is being appended to).
pub(super) fn read_put(file: &File, offset: u64) -> Result<Event, String> {
    use std::os::unix::fs::FileExt;
    let mut prefix = [0u8; PREFIX_LEN];
    file.read_exact_at(&mut prefix, offset)
        .map_err(|e| format!("reading the record at offset {offset}: {e}"))?;
    let len = u64::from(be_u32(&prefix, 0).unwrap_or(0));
    let crc = be_u32(&prefix, 4).unwrap_or(0);
    if len < META_LEN as u64 || len > MAX_RECORD_LEN {
        return Err(format!(
            "record at offset {offset} has impossible length {len}"
        ));
    }
    let mut body =
        vec![0u8; usize::try_from(len).map_err(|_| format!("record length {len} is too large"))?];
    file.read_exact_at(&mut body, offset + PREFIX_LEN as u64)
        .map_err(|e| format!("reading the {len}-byte record at offset {offset}: {e}"))?;
    let (meta, payload) =
        parse_body(&body, crc).map_err(|e| format!("record at offset {offset}: {e}"))?;
    if meta.kind != Kind::Put {
        return Err(format!(
            "record at offset {offset} is a {:?}, not a put",
            meta.kind
        ));
    }
    parse_put(payload).map_err(|e| format!("record at offset {offset}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_log(path: &Path, id: u32, records: &[(Kind, u64, u64, Payload)]) -> Vec<u64> {
        let mut buf = file_header(id);
        let mut offsets = Vec::new();
        for (k, w, t, p) in records {
            offsets.push(buf.len() as u64);
            append_record(&mut buf, *k, *w, *t, p);
        }
        File::create(path).unwrap().write_all(&buf).unwrap();
        offsets
    }

    #[test]
    fn put_payload_round_trips_and_reads_back_by_pointer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log-7");
        let e = Event::new("hello")
            .with_header("a", "1")
            .with_header("key", "k");
        let offsets = write_log(
            &path,
            7,
            &[
                (Kind::Put, 1, 1, Payload::put(&e)),
                (Kind::Commit, 2, 1, Payload::empty()),
                (
                    Kind::Take,
                    3,
                    3,
                    Payload::take(Ptr {
                        file: 7,
                        offset: 16,
                    }),
                ),
            ],
        );
        assert_eq!(offsets[0], FILE_HEADER_LEN);
        let f = File::open(&path).unwrap();
        assert_eq!(read_put(&f, offsets[0]).unwrap(), e);
        assert!(read_put(&f, offsets[1]).unwrap_err().contains("not a put"));

        let mut items = Vec::new();
        assert!(check_header(&path, 7).unwrap());
        let (end, after) = scan(&path, 7, 0, |i| items.push(i)).unwrap();
        assert_eq!(end, ScanEnd::Clean);
        assert_eq!(after, std::fs::metadata(&path).unwrap().len());
        assert_eq!(items.len(), 3);
        assert_eq!(
            items[1].meta,
            Meta {
                kind: Kind::Commit,
                woid: 2,
                txn: 1
            }
        );
        assert_eq!(
            items[2].target,
            Some(Ptr {
                file: 7,
                offset: 16
            })
        );
        assert_eq!(
            items[2].at,
            Ptr {
                file: 7,
                offset: offsets[2]
            }
        );
    }

    #[test]
    fn a_flipped_bit_fails_the_crc() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log-1");
        let offsets = write_log(
            &path,
            1,
            &[
                (Kind::Put, 1, 1, Payload::put(&Event::new("abc"))),
                (Kind::Put, 2, 1, Payload::put(&Event::new("def"))),
            ],
        );
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let f = File::open(&path).unwrap();
        assert!(read_put(&f, offsets[1])
            .unwrap_err()
            .contains("CRC mismatch"));
        let mut n = 0;
        let (end, after) = scan(&path, 1, 0, |_| n += 1).unwrap();
        assert_eq!(n, 1);
        assert_eq!(after, offsets[1]);
        match end {
            ScanEnd::Torn { offset, reason } => {
                assert_eq!(offset, offsets[1]);
                assert!(reason.contains("CRC"), "{reason}");
            }
            other => panic!("expected a torn tail, got {other:?}"),
        }
    }

    #[test]
    fn a_cut_record_is_a_torn_tail_at_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log-2");
        let offsets = write_log(
            &path,
            2,
            &[
                (Kind::Put, 1, 1, Payload::put(&Event::new("abc"))),
                (Kind::Commit, 2, 1, Payload::empty()),
            ],
        );
        let len = std::fs::metadata(&path).unwrap().len();
        for cut in 1..(len - offsets[1]) {
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(len - cut).unwrap();
            let mut n = 0;
            let (end, after) = scan(&path, 2, 0, |_| n += 1).unwrap();
            assert_eq!(n, 1, "cut {cut}");
            assert_eq!(after, offsets[1]);
            assert!(matches!(end, ScanEnd::Torn { offset, .. } if offset == offsets[1]));
        }
        // Zeros where a record should be (a filesystem that extended the file but lost the
        // data) are torn too.
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(offsets[1] + 64).unwrap();
        let (end, _) = scan(&path, 2, 0, |_| {}).unwrap();
        assert!(matches!(end, ScanEnd::Torn { offset, .. } if offset == offsets[1]));
    }

    #[test]
    fn header_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log-3");
        std::fs::write(&path, b"SLFC").unwrap();
        assert!(!check_header(&path, 3).unwrap());
        std::fs::write(&path, file_header(4)).unwrap();
        assert!(check_header(&path, 3).is_err());
        std::fs::write(&path, [0u8; 32]).unwrap();
        let err = check_header(&path, 3).unwrap_err();
        assert!(err.to_string().contains("not a sluice-flume log"), "{err}");
    }

    #[test]
    fn scan_starts_at_a_given_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log-5");
        let offsets = write_log(
            &path,
            5,
            &[
                (Kind::Put, 1, 1, Payload::put(&Event::new("abc"))),
                (Kind::Commit, 2, 1, Payload::empty()),
                (Kind::Rollback, 3, 9, Payload::empty()),
            ],
        );
        let mut woids = Vec::new();
        scan(&path, 5, offsets[1], |i| woids.push(i.meta.woid)).unwrap();
        assert_eq!(woids, vec![2, 3]);
    }
}

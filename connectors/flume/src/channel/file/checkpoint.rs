//! The file channel's checkpoint: a snapshot of the queue (pointers to put records, in
//! order), of the transactions open at that moment (their put and take pointers, Flume's
//! `inflightputs`/`inflighttakes`), the write-order id it covers and where in the log the
//! first record it does not cover starts. Replay starts there.
//!
//! ```text
//! "SLFCCKP1"  woid u64  replay-from (file u32, offset u64)
//! queue: count u64, (file u32, offset u64)*
//! open:  count u64, (txn u64, puts u32, ptr*, takes u32, ptr*)*
//! crc32c u32 of everything before it
//! ```
//!
//! Written atomically: `checkpoint.tmp` is written and fsynced, renamed over `checkpoint`,
//! and the directory is fsynced. A checkpoint that fails its CRC is refused as a whole.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::record::Ptr;

const MAGIC: &[u8; 8] = b"SLFCCKP1";
/// The checkpoint's file name in its directory.
pub(super) const FILE_NAME: &str = "checkpoint";
const TMP_NAME: &str = "checkpoint.tmp";

/// A transaction open when the checkpoint was taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct OpenTxn {
    /// Transaction id.
    pub(super) txn: u64,
    /// Its put records so far.
    pub(super) puts: Vec<Ptr>,
    /// The puts it has taken so far, in take order.
    pub(super) takes: Vec<Ptr>,
}

/// A checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Checkpoint {
    /// Every record with a write-order id up to this one is reflected.
    pub(super) woid: u64,
    /// Where the first record not reflected starts (or will start).
    pub(super) replay_from: Ptr,
    /// The queue, head first.
    pub(super) queue: Vec<Ptr>,
    /// Open transactions.
    pub(super) open: Vec<OpenTxn>,
}

fn put_ptr(b: &mut Vec<u8>, p: Ptr) {
    b.extend_from_slice(&p.file.to_be_bytes());
    b.extend_from_slice(&p.offset.to_be_bytes());
}

fn len_u32(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes()
}

impl Checkpoint {
    /// The bytes of the checkpoint file.
    pub(super) fn encode(&self) -> Vec<u8> {
        let ptrs = self.queue.len()
            + self
                .open
                .iter()
                .map(|t| t.puts.len() + t.takes.len())
                .sum::<usize>();
        let mut b = Vec::with_capacity(64 + ptrs * 12 + self.open.len() * 16);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&self.woid.to_be_bytes());
        put_ptr(&mut b, self.replay_from);
        b.extend_from_slice(&(self.queue.len() as u64).to_be_bytes());
        for p in &self.queue {
            put_ptr(&mut b, *p);
        }
        b.extend_from_slice(&(self.open.len() as u64).to_be_bytes());
        for t in &self.open {
            b.extend_from_slice(&t.txn.to_be_bytes());
            b.extend_from_slice(&len_u32(t.puts.len()));
            for p in &t.puts {
                put_ptr(&mut b, *p);
            }
            b.extend_from_slice(&len_u32(t.takes.len()));
            for p in &t.takes {
                put_ptr(&mut b, *p);
            }
        }
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_be_bytes());
        b
    }

    /// Parses checkpoint bytes.
    pub(super) fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
        let Some((body, crc)) = bytes.split_last_chunk::<4>() else {
            return Err(format!(
                "{} bytes is too short for a checkpoint",
                bytes.len()
            ));
        };
        let stored = u32::from_be_bytes(*crc);
        let actual = crc32c::crc32c(body);
        if stored != actual {
            return Err(format!(
                "CRC mismatch (stored {stored:08x}, computed {actual:08x})"
            ));
        }
        let mut r = Reader { b: body, at: 0 };
        if r.take(8)? != MAGIC {
            return Err("bad magic: not a sluice-flume checkpoint".to_string());
        }
        let woid = r.u64()?;
        let replay_from = r.ptr()?;
        let n = r.count(12)?;
        let mut queue = Vec::with_capacity(n);
        for _ in 0..n {
            queue.push(r.ptr()?);
        }
        let n = r.count(16)?;
        let mut open = Vec::with_capacity(n);
        for _ in 0..n {
            let txn = r.u64()?;
            let np = r.count32()?;
            let puts = (0..np).map(|_| r.ptr()).collect::<Result<Vec<_>, _>>()?;
            let nt = r.count32()?;
            let takes = (0..nt).map(|_| r.ptr()).collect::<Result<Vec<_>, _>>()?;
            open.push(OpenTxn { txn, puts, takes });
        }
        if r.at != body.len() {
            return Err(format!("{} unexpected bytes at the end", body.len() - r.at));
        }
        Ok(Checkpoint {
            woid,
            replay_from,
            queue,
            open,
        })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self
            .at
            .checked_add(n)
            .and_then(|end| self.b.get(self.at..end))
            .ok_or_else(|| format!("cut short at byte {}", self.at))?;
        self.at += n;
        Ok(s)
    }
    fn u64(&mut self) -> Result<u64, String> {
        let s = self.take(8)?;
        Ok(u64::from_be_bytes(
            s.try_into().map_err(|_| "bad u64".to_string())?,
        ))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes(
            s.try_into().map_err(|_| "bad u32".to_string())?,
        ))
    }
    fn ptr(&mut self) -> Result<Ptr, String> {
        Ok(Ptr {
            file: self.u32()?,
            offset: self.u64()?,
        })
    }
    /// A u64 count of items at least `min_size` bytes each, checked against what is left
    /// before anything is allocated.
    fn count(&mut self, min_size: usize) -> Result<usize, String> {
        let n = self.u64()?;
        let left = (self.b.len() - self.at) as u64;
        if n.saturating_mul(min_size as u64) > left {
            return Err(format!(
                "count {n} at byte {} exceeds the file",
                self.at - 8
            ));
        }
        usize::try_from(n).map_err(|_| format!("count {n} is too large"))
    }
    fn count32(&mut self) -> Result<usize, String> {
        let n = self.u32()?;
        let left = (self.b.len() - self.at) as u64;
        if u64::from(n) * 12 > left {
            return Err(format!(
                "count {n} at byte {} exceeds the file",
                self.at - 4
            ));
        }
        usize::try_from(n).map_err(|_| format!("count {n} is too large"))
    }
}

/// Path of the checkpoint in `dir`.
pub(super) fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Writes `bytes` as the checkpoint of `dir`, atomically and durably.
pub(super) fn write(dir: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(TMP_NAME);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path_in(dir))?;
    File::open(dir)?.sync_all()
}

/// Reads the checkpoint of `dir`: `Ok(None)` when there is none.
pub(super) fn read(dir: &Path) -> Result<Option<Checkpoint>, String> {
    let path = path_in(dir);
    match fs::read(&path) {
        Ok(bytes) => Checkpoint::decode(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            woid: 42,
            replay_from: Ptr {
                file: 3,
                offset: 900,
            },
            queue: vec![
                Ptr {
                    file: 2,
                    offset: 16,
                },
                Ptr {
                    file: 3,
                    offset: 40,
                },
            ],
            open: vec![OpenTxn {
                txn: 40,
                puts: vec![Ptr {
                    file: 3,
                    offset: 800,
                }],
                takes: vec![Ptr {
                    file: 1,
                    offset: 16,
                }],
            }],
        }
    }

    #[test]
    fn round_trip_and_atomic_write() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let c = sample();
        write(dir.path(), &c.encode()).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(c));
        assert!(!dir.path().join(TMP_NAME).exists());
    }

    #[test]
    fn any_damage_is_refused() {
        let bytes = sample().encode();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(
                Checkpoint::decode(&b).is_err(),
                "flip at byte {i} was accepted"
            );
        }
        for cut in 0..bytes.len() {
            assert!(
                Checkpoint::decode(&bytes[..cut]).is_err(),
                "cut at {cut} was accepted"
            );
        }
    }
}

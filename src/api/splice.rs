//! Record bytes that go from a segment file straight to the socket (zero-copy fetch).
//!
//! A handler that wants this (Fetch) registers the file region and puts the placeholder it
//! gets back where the records go in its response. The response is still encoded by
//! kafka-protocol, field by field; the connection's output buffer recognises a placeholder
//! by its address when the codec copies it in, and sends the file region there instead
//! (`sendfile` on Linux). Kafka's broker does the same with its `FileRecords`.
//!
//! Placeholders point into one private zeroed allocation, at an index that names the
//! region, so no other bytes can be mistaken for one. It is made once and never read or
//! written: the allocator maps fresh zero pages for it, so it costs address space, not
//! memory.

use std::sync::OnceLock;

use bytes::Bytes;

use crate::log::FileRegion;

/// Largest region sent from the file; larger ones are copied through memory.
pub const MAX_SPLICE: usize = 64 * 1024 * 1024;
/// Most regions in one response (one per partition).
const MAX_REGIONS: usize = 4096;
/// Regions smaller than this are read into memory: one `write` of a small response costs
/// less than a `sendfile` call per partition.
#[cfg(target_os = "linux")]
pub const MIN_SPLICE: usize = 64 * 1024;
/// Only Linux has `sendfile` from a file into a socket here; elsewhere regions are copied.
#[cfg(not(target_os = "linux"))]
pub const MIN_SPLICE: usize = usize::MAX;

static PLACEHOLDERS: OnceLock<&'static [u8]> = OnceLock::new();

fn placeholders() -> &'static [u8] {
    PLACEHOLDERS.get_or_init(|| vec![0u8; MAX_SPLICE + MAX_REGIONS].leak())
}

/// The file regions a response refers to, in the order they were registered.
#[derive(Debug, Default)]
pub struct Splices {
    regions: Vec<FileRegion>,
}

impl Splices {
    /// Register a region; the placeholder to put in the response in its place, or `None`
    /// when the region must be copied instead (too large, or too many regions).
    pub fn add(&mut self, region: FileRegion) -> Option<Bytes> {
        let i = self.regions.len();
        if region.len == 0 || region.len > MAX_SPLICE || i >= MAX_REGIONS {
            return None;
        }
        let placeholder = placeholders().get(i..i + region.len)?;
        self.regions.push(region);
        Some(Bytes::from_static(placeholder))
    }

    /// The region a slice being encoded stands for, if it is one of our placeholders.
    pub fn find(&self, s: &[u8]) -> Option<&FileRegion> {
        let base = PLACEHOLDERS.get()?.as_ptr() as usize;
        let i = (s.as_ptr() as usize).checked_sub(base)?;
        let r = self.regions.get(i)?;
        (r.len == s.len()).then_some(r)
    }

    /// How many regions are registered.
    pub fn len(&self) -> usize {
        self.regions.len()
    }

    /// No regions registered.
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }
}

/// Whether `s` points into the placeholder array at all (registered or not).
pub fn is_placeholder(s: &[u8]) -> bool {
    let Some(all) = PLACEHOLDERS.get() else {
        return false;
    };
    let p = s.as_ptr() as usize;
    let base = all.as_ptr() as usize;
    !s.is_empty() && p >= base && p < base + all.len()
}

//! HDFS through the pure-Rust `hdfs-native` client (not wired in yet).

use std::io;

use async_trait::async_trait;

use super::fs::{FileSystem, OutFile};

/// A connection to one namenode.
pub(super) struct HdfsFs;

impl HdfsFs {
    /// Connect to the namenode at `authority` (`host:port`).
    pub(super) fn connect(authority: &str) -> io::Result<HdfsFs> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("hdfs://{authority}: HDFS support is not built in yet"),
        ))
    }
}

#[async_trait]
impl FileSystem for HdfsFs {
    async fn create(&self, path: &str) -> io::Result<Box<dyn OutFile>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{path}: HDFS is not built in yet"),
        ))
    }
    async fn rename(&self, from: &str, _to: &str) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{from}: HDFS is not built in yet"),
        ))
    }
}

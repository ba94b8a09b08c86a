//! HDFS through the pure-Rust `hdfs-native` client: one client per namenode address
//! (`hdfs://host:port`), running its I/O on the agent's tokio runtime. The user is
//! `HADOOP_USER_NAME` (or the OS user), as Hadoop's simple authentication picks it; Kerberos
//! is not supported. `create` overwrites and makes parent directories (Hadoop's
//! `FileSystem.create`); a flush is an `hsync` (data on every datanode of the pipeline and the
//! length visible on the namenode, at least what Flume's `hflush` promises).

use std::io;

use async_trait::async_trait;
use bytes::Bytes;
use hdfs_native::{Client, ClientBuilder, HdfsError, WriteOptions};

use super::fs::{FileSystem, OutFile};

/// A client of one namenode.
pub(super) struct HdfsFs {
    client: Client,
    authority: String,
}

fn io_err(authority: &str, what: &str, path: &str, e: HdfsError) -> io::Error {
    let kind = match &e {
        HdfsError::IOError(io) => io.kind(),
        HdfsError::FileNotFound(_) => io::ErrorKind::NotFound,
        HdfsError::AlreadyExists(_) => io::ErrorKind::AlreadyExists,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, format!("hdfs://{authority}{path}: {what}: {e}"))
}

impl HdfsFs {
    /// A client for the namenode at `authority` (`host:port`); connections are made on use.
    pub(super) fn connect(authority: &str) -> io::Result<HdfsFs> {
        let mut builder = ClientBuilder::new().with_url(format!("hdfs://{authority}"));
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            builder = builder.with_io_runtime(handle);
        }
        let client = builder
            .build()
            .map_err(|e| io_err(authority, "creating the HDFS client", "", e))?;
        Ok(HdfsFs {
            client,
            authority: authority.to_string(),
        })
    }
}

struct HdfsFile {
    authority: String,
    path: String,
    writer: hdfs_native::file::FileWriter,
}

#[async_trait]
impl FileSystem for HdfsFs {
    async fn create(&self, path: &str) -> io::Result<Box<dyn OutFile>> {
        let opts = WriteOptions::default().overwrite(true).create_parent(true);
        let writer = self
            .client
            .create(path, opts)
            .await
            .map_err(|e| io_err(&self.authority, "create", path, e))?;
        Ok(Box::new(HdfsFile {
            authority: self.authority.clone(),
            path: path.to_string(),
            writer,
        }))
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        match self.client.get_file_info(from).await {
            Ok(_) => {}
            Err(HdfsError::FileNotFound(_)) => return Ok(()),
            Err(e) => return Err(io_err(&self.authority, "stat", from, e)),
        }
        self.client
            .rename(from, to, false)
            .await
            .map_err(|e| io_err(&self.authority, &format!("rename to {to}"), from, e))
    }
}

#[async_trait]
impl OutFile for HdfsFile {
    async fn write_flush(&mut self, data: Vec<u8>) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.writer
            .write_bytes(Bytes::from(data))
            .await
            .map_err(|e| io_err(&self.authority, "write", &self.path, e))?;
        self.writer
            .hsync()
            .await
            .map_err(|e| io_err(&self.authority, "hsync", &self.path, e))
    }

    async fn close(&mut self) -> io::Result<()> {
        self.writer
            .close()
            .await
            .map_err(|e| io_err(&self.authority, "close", &self.path, e))
    }
}

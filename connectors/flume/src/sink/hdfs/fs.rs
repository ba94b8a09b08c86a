//! The `hdfs` sink's filesystem interface ([`FileSystem`], [`OutFile`]) and the local
//! filesystem behind it ([`LocalFs`]). Unlike Hadoop's checksummed `LocalFileSystem`, no
//! `.crc` side files are written (Flume's `hdfs.useRawLocalFileSystem = true` behaviour),
//! and a flush writes to the OS without fsync, like Hadoop's local `hflush`. Which
//! filesystem a path is on is decided in `resolve`; HDFS itself is in `hdfs_fs`.
//!
//! `create` makes missing parent directories and replaces an existing file, like Hadoop's
//! `FileSystem.create(path)`; `rename` does nothing when the source is gone, like Flume's
//! `renameBucket`.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

/// An open output file.
#[async_trait]
pub trait OutFile: Send {
    /// Append `data` and make it visible to readers (Hadoop's write + hflush).
    async fn write_flush(&mut self, data: Vec<u8>) -> io::Result<()>;
    /// Close the file.
    async fn close(&mut self) -> io::Result<()>;
}

/// A filesystem.
#[async_trait]
pub trait FileSystem: Send + Sync {
    /// Create (or truncate) `path`, making its parent directories.
    async fn create(&self, path: &str) -> io::Result<Box<dyn OutFile>>;
    /// Rename `from` to `to` if `from` exists.
    async fn rename(&self, from: &str, to: &str) -> io::Result<()>;
}

/// The local filesystem, with blocking calls on the blocking pool.
pub struct LocalFs;

struct LocalFile {
    path: String,
    file: Arc<Mutex<std::fs::File>>,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(format!("blocking file task failed: {e}")))?
}

#[async_trait]
impl FileSystem for LocalFs {
    async fn create(&self, path: &str) -> io::Result<Box<dyn OutFile>> {
        let p = PathBuf::from(path);
        let shown = path.to_string();
        let file = blocking(move || {
            if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("creating directory {}: {e}", parent.display()),
                    )
                })?;
            }
            std::fs::File::create(&p)
                .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", p.display())))
        })
        .await?;
        Ok(Box::new(LocalFile {
            path: shown,
            file: Arc::new(Mutex::new(file)),
        }))
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (from, to) = (PathBuf::from(from), PathBuf::from(to));
        blocking(move || {
            if !from.exists() {
                return Ok(());
            }
            std::fs::rename(&from, &to).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("renaming {} to {}: {e}", from.display(), to.display()),
                )
            })
        })
        .await
    }
}

#[async_trait]
impl OutFile for LocalFile {
    async fn write_flush(&mut self, data: Vec<u8>) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let file = self.file.clone();
        let path = self.path.clone();
        blocking(move || {
            let mut f = file
                .lock()
                .map_err(|_| io::Error::other("file lock poisoned"))?;
            f.write_all(&data)
                .and_then(|()| f.flush())
                .map_err(|e| io::Error::new(e.kind(), format!("writing {path}: {e}")))
        })
        .await
    }

    async fn close(&mut self) -> io::Result<()> {
        // std::fs::File has no user-space buffer; dropping the handle closes it.
        Ok(())
    }
}

//! Where the `hdfs` sink's files go: a path is resolved by its scheme, as Hadoop's
//! `Path.getFileSystem` does with no cluster configuration:
//! - no scheme, `file:/x` or `file:///x`: the local filesystem (Hadoop's default
//!   `fs.defaultFS` is `file:///`). Unlike Hadoop's checksummed `LocalFileSystem`, no `.crc`
//!   side files are written (Flume's `hdfs.useRawLocalFileSystem = true` behaviour), and a
//!   flush writes to the OS without fsync, like Hadoop's local `hflush`;
//! - `hdfs://host:port/x`: a real HDFS namenode through the pure-Rust `hdfs-native` client,
//!   one client per namenode address; a flush is an `hsync`.
//!
//! `create` makes missing parent directories and replaces an existing file, like Hadoop's
//! `FileSystem.create(path)`; `rename` does nothing when the source is gone, like Flume's
//! `renameBucket`.

use std::collections::HashMap;
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

/// Which filesystem a path is on, and the path within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local path.
    Local(String),
    /// An HDFS path on the namenode at `authority` (`host:port`).
    Hdfs {
        /// `host:port`.
        authority: String,
        /// The absolute path on it.
        path: String,
    },
}

/// Split a path or URI into its filesystem and path.
pub fn locate(uri: &str) -> io::Result<Location> {
    if let Some(rest) = uri.strip_prefix("file://") {
        // file:///x (empty authority) or file://localhost/x.
        let path = match rest.find('/') {
            Some(i) => rest.get(i..).unwrap_or("/"),
            None => "/",
        };
        return Ok(Location::Local(path.to_string()));
    }
    if let Some(rest) = uri.strip_prefix("file:") {
        return Ok(Location::Local(rest.to_string()));
    }
    if let Some(rest) = uri.strip_prefix("hdfs://") {
        let (authority, path) = match rest.find('/') {
            Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/")),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{uri}: an hdfs:// path needs the namenode address (hdfs://host:port/path)"
                ),
            ));
        }
        return Ok(Location::Hdfs {
            authority: authority.to_string(),
            path: path.to_string(),
        });
    }
    if let Some((scheme, _)) = uri.split_once("://") {
        if !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{uri}: filesystem scheme {scheme}:// is not supported by sluice-flume (file:// and hdfs:// are)"),
            ));
        }
    }
    Ok(Location::Local(uri.to_string()))
}

/// Resolves paths to filesystems, keeping one client per HDFS namenode.
#[derive(Default)]
pub struct Filesystems {
    hdfs: Mutex<HashMap<String, Arc<dyn FileSystem>>>,
}

impl Filesystems {
    /// The filesystem of `uri` and the path on it.
    pub fn resolve(&self, uri: &str) -> io::Result<(Arc<dyn FileSystem>, String)> {
        match locate(uri)? {
            Location::Local(p) => Ok((Arc::new(LocalFs), p)),
            Location::Hdfs { authority, path } => {
                let mut map = self
                    .hdfs
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(fs) = map.get(&authority) {
                    return Ok((fs.clone(), path));
                }
                let fs: Arc<dyn FileSystem> =
                    Arc::new(super::hdfs_fs::HdfsFs::connect(&authority)?);
                map.insert(authority, fs.clone());
                Ok((fs, path))
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_by_scheme() {
        assert_eq!(locate("/a/b").unwrap(), Location::Local("/a/b".into()));
        assert_eq!(
            locate("file:///a/b").unwrap(),
            Location::Local("/a/b".into())
        );
        assert_eq!(locate("file:/a/b").unwrap(), Location::Local("/a/b".into()));
        assert_eq!(
            locate("hdfs://master:9999/user/x").unwrap(),
            Location::Hdfs {
                authority: "master:9999".into(),
                path: "/user/x".into()
            }
        );
        assert!(locate("hdfs:///user/x").is_err());
        assert!(locate("s3a://bucket/x")
            .unwrap_err()
            .to_string()
            .contains("s3a://"));
    }
}

//! Where the `hdfs` sink's files go: a path is resolved by its scheme, as Hadoop's
//! `Path.getFileSystem` does with no cluster configuration:
//! - no scheme, `file:/x` or `file:///x`: the local filesystem ([`LocalFs`]; Hadoop's
//!   default `fs.defaultFS` is `file:///`);
//! - `hdfs://host:port/x`: a real HDFS namenode through the pure-Rust `hdfs-native` client
//!   ([`HdfsFs`]), one client per namenode address; a flush is an `hsync`.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

use super::fs::{FileSystem, LocalFs};
use super::hdfs_fs::HdfsFs;

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
                let fs: Arc<dyn FileSystem> = Arc::new(HdfsFs::connect(&authority)?);
                map.insert(authority, fs.clone());
                Ok((fs, path))
            }
        }
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

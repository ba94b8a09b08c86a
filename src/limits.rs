//! Process resource limits the broker depends on. Each partition keeps its segment files
//! open for as long as the broker runs, so the open-files limit bounds how many partitions
//! a broker can serve; the soft limit is raised to the hard one at start-up, as Kafka's
//! packaging asks operators to do by hand. Nothing else lives here.

/// Raise the soft open-files limit (RLIMIT_NOFILE) to the hard limit. Returns the limit in
/// force afterwards, and what it was before when it changed; `None` where the limit cannot
/// be read.
#[cfg(target_os = "linux")]
pub fn raise_open_files_limit() -> Option<(u64, Option<u64>)> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    // `None` is RLIM_INFINITY. Linux refuses an infinite open-files limit, so an
    // unlimited hard limit is read as the kernel's per-process ceiling.
    let target = match now.maximum {
        Some(max) => max,
        None => std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())?,
    };
    let current = now.current.unwrap_or(u64::MAX);
    if current >= target {
        return Some((current, None));
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: now.maximum,
        },
    ) {
        Ok(()) => Some((target, Some(current))),
        Err(_) => Some((current, None)),
    }
}

/// Elsewhere the limit is left as it is.
#[cfg(not(target_os = "linux"))]
pub fn raise_open_files_limit() -> Option<(u64, Option<u64>)> {
    None
}

/// The soft open-files limit in force, where it can be read.
#[cfg(target_os = "linux")]
pub fn open_files_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// The soft open-files limit in force, where it can be read.
#[cfg(not(target_os = "linux"))]
pub fn open_files_limit() -> Option<u64> {
    None
}

//! The standard `process_*` metrics every Prometheus client library exports (resident
//! memory, CPU seconds, open descriptors, start time), read from `/proc/self` at scrape
//! time. Empty on systems without `/proc`.

/// One reading of the process' resources.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Process {
    /// `process_resident_memory_bytes`.
    pub resident_memory_bytes: u64,
    /// `process_virtual_memory_bytes`.
    pub virtual_memory_bytes: u64,
    /// `process_cpu_seconds_total`: user plus system time.
    pub cpu_seconds: f64,
    /// `process_open_fds`.
    pub open_fds: u64,
    /// `process_max_fds`: the soft open-files limit.
    pub max_fds: Option<u64>,
    /// `process_start_time_seconds`, since the Unix epoch.
    pub start_time_seconds: f64,
}

/// Reads `/proc/self`; `None` where there is no such thing.
#[cfg(target_os = "linux")]
pub fn read() -> Option<Process> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    parse(
        &stat,
        &boot,
        &limits,
        fds,
        rustix::param::clock_ticks_per_second(),
        rustix::param::page_size() as u64,
    )
}

/// Reads `/proc/self`; `None` where there is no such thing.
#[cfg(not(target_os = "linux"))]
pub fn read() -> Option<Process> {
    None
}

/// The fields of `/proc/self/stat` (see proc(5)) after the command name, which is in
/// parentheses and may itself hold spaces and parentheses: utime and stime are fields 14
/// and 15, starttime 22 (clock ticks after boot), vsize 23 (bytes), rss 24 (pages).
fn parse(
    stat: &str,
    proc_stat: &str,
    limits: &str,
    open_fds: u64,
    ticks: u64,
    page: u64,
) -> Option<Process> {
    let after = stat.get(stat.rfind(')')? + 1..)?;
    // `after` starts with field 3 (state).
    let f: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { f.get(n.checked_sub(3)?)?.parse().ok() };
    let ticks = ticks.max(1) as f64;
    let btime: u64 = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let max_fds = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok());
    Some(Process {
        resident_memory_bytes: field(24)?.saturating_mul(page),
        virtual_memory_bytes: field(23)?,
        cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
        open_fds,
        max_fds,
        start_time_seconds: btime as f64 + field(22)? as f64 / ticks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_tricky_command_name() {
        let stat = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1000 \
                    123456789 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        let p = parse(
            stat,
            "cpu 1 2 3\nbtime 1700000000\n",
            "Max open files            1024                 4096                 files\n",
            7,
            100,
            4096,
        )
        .unwrap();
        assert_eq!(p.cpu_seconds, 3.0);
        assert_eq!(p.start_time_seconds, 1_700_000_010.0);
        assert_eq!(p.virtual_memory_bytes, 123_456_789);
        assert_eq!(p.resident_memory_bytes, 300 * 4096);
        assert_eq!(p.open_fds, 7);
        assert_eq!(p.max_fds, Some(1024));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let p = read().unwrap();
        assert!(p.resident_memory_bytes > 0 && p.open_fds > 0, "{p:?}");
    }
}

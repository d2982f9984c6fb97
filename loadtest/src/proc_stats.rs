//! Process statistics read from `/proc` (Linux).

/// Resident set size of this process in bytes, if `/proc/self/statm` is readable.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// CPU time this process has used (user + system, all threads), if `/proc/self/stat` is
/// readable. Clock ticks are 100 per second on Linux.
pub fn cpu_time() -> Option<std::time::Duration> {
    cpu_time_of("/proc/self/stat")
}

/// CPU time (user + system) of process `pid`.
pub fn cpu_time_of(stat_path: &str) -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // The command name may hold spaces: fields count from the closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(std::time::Duration::from_millis((utime + stime) * 10))
}

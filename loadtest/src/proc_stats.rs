//! Process statistics read from `/proc` (Linux).

/// Resident set size of this process in bytes, if `/proc/self/statm` is readable.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

//! The store's records as the services use them. Layouts, key prefixes and key builders
//! live in `storage::records` (one registry for every crate); this module adds how ids and
//! times are shown, and reads that fail with the services' error.

pub use storage::records::*;
use storage::Store;

use crate::Result;

/// Bytes as lowercase hex (digests, sealed values, tokens).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The id in `text` if it is `prefix` followed by exactly 32 lowercase hex digits (how
/// every id is shown: `pay_…`, `re_…`, `mch_…`); any other spelling is an unknown id.
pub fn parse_id(text: &str, prefix: &str) -> Option<u128> {
    let hex = text.strip_prefix(prefix)?;
    if hex.len() != 32 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u128::from_str_radix(hex, 16).ok()
}

/// A stored time (ns since the epoch) as answers show it: RFC 3339, milliseconds, UTC.
pub fn time_text(ns: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns))
        .to_string()
}

/// The ids of the records under `prefix` whose keys are the prefix and an id (the markers of
/// work to resume at start), in key order, at most `max`.
pub fn ids_with_prefix(store: &Store, prefix: &[u8], max: usize) -> Result<Vec<u128>> {
    let mut ids = Vec::new();
    store.for_each_aux_with_prefix(prefix, max, |key, _| {
        ids.extend(id_after(key, prefix));
        Ok(())
    })?;
    Ok(ids)
}

/// Reads and decodes a record; a record that does not decode is a storage fault, not a
/// caller's mistake.
pub fn read<T: bincode::Decode<()>>(store: &Store, key: &[u8]) -> Result<Option<T>> {
    Ok(storage::records::read(store, key)?)
}

/// Reads an expiring record; `None` when absent or expired.
pub fn read_expiring<T: bincode::Decode<()>>(store: &Store, key: &[u8]) -> Result<Option<T>> {
    Ok(storage::records::read_expiring(
        store,
        key,
        crate::platform::now_ns(),
    )?)
}

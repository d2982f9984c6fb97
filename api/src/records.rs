//! The store's records as the HTTP layer uses them. Layouts, key prefixes and key builders
//! live in `storage::records` (one registry for every crate); this module adds how ids and
//! times are shown, and reads that answer with the API's error.

pub use services::records::{parse_id, time_text, *};
use storage::Store;

use crate::error::ApiError;

/// Reads and decodes a record; a record that does not decode is a storage fault (503), not a
/// client error.
pub fn read<T: bincode::Decode<()>>(store: &Store, key: &[u8]) -> Result<Option<T>, ApiError> {
    Ok(storage::records::read(store, key)?)
}

/// Reads an expiring record; `None` when absent or expired.
pub fn read_expiring<T: bincode::Decode<()>>(
    store: &Store,
    key: &[u8],
) -> Result<Option<T>, ApiError> {
    Ok(storage::records::read_expiring(
        store,
        key,
        crate::state::now_ns(),
    )?)
}

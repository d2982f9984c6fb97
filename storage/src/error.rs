//! Storage errors: infrastructure failures, never business outcomes.

use crate::codec::CodecError;

pub type Result<T> = std::result::Result<T, StoreError>;

/// Cloneable so that one failed group write can be reported to every submitter in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("storage i/o failed: {0}")]
    Io(String),
    #[error("store is poisoned by an earlier failed write ({0}); restart to recover")]
    Poisoned(String),
    #[error("commit queue is full ({0} units waiting)")]
    Overloaded(usize),
    #[error("store is shut down")]
    Closed,
    #[error("corrupt record in {cf} at key {key}: {source}")]
    Corrupt {
        cf: &'static str,
        key: String,
        source: CodecError,
    },
    #[error("store is inconsistent: {0}")]
    Inconsistent(String),
    #[error("commit unit too large: {0}")]
    TooLarge(String),
    #[error("store is in use by another process ({0})")]
    Locked(String),
    /// The unit posts a transfer id that is already durable (or appears earlier in the same
    /// group): nothing of the unit was written. A business outcome the writer answers from
    /// the batch it writes, so no submitter needs a point read first.
    #[error("transfer {0:032x} was already posted")]
    DuplicateTransfer(u128),
}

#[cfg(feature = "rocksdb")]
impl From<rocksdb::Error> for StoreError {
    fn from(e: rocksdb::Error) -> Self {
        StoreError::Io(e.into_string())
    }
}

//! Errors of the actor layer: infrastructure and overload, never business outcomes.

use storage::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// A bound was reached (in-flight commands, active accounts, commit queue): answer
    /// 429/503 and let the client retry later. Nothing changed.
    #[error("overloaded: too many {0}")]
    Overloaded(&'static str),
    /// The store failed or is poisoned. The command's outcome is unknown to the caller only
    /// if the failure came after submission; it was never acknowledged.
    #[error(transparent)]
    Store(StoreError),
    /// The actor system is shutting down.
    #[error("ledger is shutting down")]
    ShuttingDown,
}

impl From<StoreError> for LedgerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Overloaded(_) => LedgerError::Overloaded("queued commits"),
            other => LedgerError::Store(other),
        }
    }
}

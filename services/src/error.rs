//! The one error type of the services: what went wrong, in words the caller can act on,
//! never how a transport shows it. `api` maps each variant to a status and an error code
//! with one exhaustive match.
//!
//! Business outcomes that are part of a result (a payment declined for insufficient funds)
//! are values in the result, not errors; an invariant broken is a panic that crashes into
//! recovery (the three tiers of STYLE.md).

/// What a service call could not do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The command is understood but invalid: `code` says which rule, `param` which field.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        param: Option<String>,
    },
    /// Nothing by that id that the caller may see (others' objects are not found either, so
    /// ids cannot be probed).
    #[error("{message}")]
    NotFound {
        message: String,
        param: Option<String>,
    },
    /// The command conflicts with the state of what it acts on. `payment_id` names the
    /// first payment of a duplicate `out_trade_no`.
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        param: Option<String>,
        payment_id: Option<String>,
    },
    /// The credentials or a signature do not check out.
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    /// Too many requests for one key (a source, a merchant, a payer, a phone number): retry
    /// after `retry_after_s`.
    #[error("{message}")]
    RateLimited { message: String, retry_after_s: u64 },
    /// A request with this idempotency key is still in flight.
    #[error("a request with this idempotency key is still in progress; retry after it finishes")]
    IdempotencyKeyInUse,
    /// This idempotency key was used with a different request.
    #[error("this idempotency key was used with a different request")]
    IdempotencyKeyReused,
    /// The store is still being recovered.
    #[error("the server is recovering its store; retry shortly")]
    NotReady,
    /// A bound was reached (mailboxes, in-flight commands, a queue): retry later.
    #[error("the server is overloaded ({0}); retry later")]
    Overloaded(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The store failed: nothing was acknowledged (retrying with the same idempotency key
    /// is safe).
    #[error("{0}")]
    Storage(String),
    /// A service the command needs is not there or not configured (`code` says which).
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// A well-formed request whose content (an uploaded file) cannot be used: `code` says
    /// why, the message where (a statement's line).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid {
            code,
            message: message.into(),
            param: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Error {
        Error::NotFound {
            message: message.into(),
            param: None,
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Error {
        Error::Conflict {
            code,
            message: message.into(),
            param: None,
            payment_id: None,
        }
    }

    /// A store fault or a stored record that cannot be used: nothing was acknowledged.
    pub fn storage(message: impl Into<String>) -> Error {
        Error::Storage(message.into())
    }

    /// The same error naming the field it is about (only `Invalid`, `NotFound` and
    /// `Conflict` carry one).
    pub fn with_param(self, param: impl Into<String>) -> Error {
        match self {
            Error::Invalid { code, message, .. } => Error::Invalid {
                code,
                message,
                param: Some(param.into()),
            },
            Error::NotFound { message, .. } => Error::NotFound {
                message,
                param: Some(param.into()),
            },
            Error::Conflict {
                code,
                message,
                payment_id,
                ..
            } => Error::Conflict {
                code,
                message,
                param: Some(param.into()),
                payment_id,
            },
            other => other,
        }
    }
}

impl From<actors::LedgerError> for Error {
    fn from(e: actors::LedgerError) -> Self {
        match e {
            actors::LedgerError::Overloaded(what) => Error::Overloaded(what.to_string()),
            actors::LedgerError::Store(e) => {
                Error::Storage(format!("the write was not acknowledged: {e}"))
            }
            actors::LedgerError::ShuttingDown => Error::ShuttingDown,
        }
    }
}

impl From<storage::StoreError> for Error {
    fn from(e: storage::StoreError) -> Self {
        match e {
            // A read found a record it cannot decode: a storage fault, not a failed write.
            e @ storage::StoreError::Corrupt { .. } => {
                Error::Storage(format!("a stored record does not decode: {e}"))
            }
            e => actors::LedgerError::from(e).into(),
        }
    }
}

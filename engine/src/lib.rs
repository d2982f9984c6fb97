//! rongpay's ledger core. Pure and deterministic: no I/O, no clock, no threads, no async, so it
//! can be tested exhaustively and replayed bit for bit.
//!
//! Layout:
//! - [`cards`]: bank-card rules (Luhn, brand, expiry) and card numbers found in free text.
//! - [`gl`]: the general ledger's rules: chart of accounts, business date, turnover and the
//!   trial balance.
//! - [`money`]: ISO 4217 currencies, strict decimal parsing into integer minor units, fees.
//! - [`ids`]: 128-bit account and transfer ids with no machine-local meaning; timestamps.
//! - [`account`]: the account record and the prepare / commit / release rules every posting
//!   obeys (the same rules the per-account actors run).
//! - [`transfer`]: balanced sets of postings (payment, deposit, refund, transfer).
//! - [`risk`]: payment risk scoring (rules, bounded velocity memory, score → decision).
//! - [`routing`]: channel health (sliding window, circuit breaker, bulkhead, daily volume)
//!   and the router's filter-and-rank by policy.
//! - [`state_machine`]: the batch state machine, outcome per command, effects to persist, and
//!   journal replay.
//!
//! Failure tiers: a business rejection is a [`Reject`] value; a contradiction in a replayed
//! journal is a [`state_machine::ReplayError`]; a broken invariant panics.

pub mod account;
pub mod cards;
pub mod coupons;
pub mod credit;
pub mod gl;
pub mod ids;
pub mod kyc;
pub mod money;
pub mod positions;
pub mod recon;
pub mod risk;
pub mod routing;
pub mod settlement;
pub mod splits;
pub mod state_machine;
pub mod statement;
pub mod transfer;

pub use account::{Account, AccountStatus, LiveAccount};
pub use ids::{AccountId, PlatformRole, Timestamp, TransferId};
pub use money::{Currency, MoneyError, AMOUNT_MINOR_MAX};
pub use state_machine::{trial_balance, Applied, Command, Effect, Ledger, ReplayError};
pub use transfer::{PaymentParties, Posting, Transfer, TransferKind, POSTINGS_PER_TRANSFER_MAX};

/// A business rejection: the command was understood and refused, nothing changed. A value,
/// not an error; each maps to one public failure code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Reject {
    #[error("insufficient funds in {0}")]
    InsufficientFunds(AccountId),
    #[error("account {0} is frozen")]
    AccountFrozen(AccountId),
    #[error("account {0} is closed")]
    AccountClosed(AccountId),
    #[error("unknown account {0}")]
    UnknownAccount(AccountId),
    #[error("account {0} already exists")]
    AccountExists(AccountId),
    #[error("posting currency differs from account {0}'s")]
    CurrencyMismatch(AccountId),
    #[error("balance of {0} would overflow")]
    Overflow(AccountId),
    #[error("transfer id already used")]
    DuplicateId,
    #[error("postings in {0} do not sum to zero")]
    Unbalanced(Currency),
    #[error("a transfer needs at least two postings")]
    TooFewPostings,
    #[error("too many postings (max {POSTINGS_PER_TRANSFER_MAX})")]
    TooManyPostings,
    #[error("posting amount is zero or above the maximum")]
    InvalidAmount,
    #[error("account {0} appears twice in one transfer")]
    DuplicateAccount(AccountId),
    #[error("account {0} is not empty")]
    AccountNotEmpty(AccountId),
    #[error("credit limit must not be negative")]
    InvalidCreditLimit,
    #[error("account {0} already has a status change in progress")]
    StatusChangePending(AccountId),
    #[error("the accounting date is in a closed period; book a correction in the open one")]
    PeriodClosed,
    #[error("the accounting date must be the open business date")]
    InvalidAccountingDate,
    #[error("the value date must not be after the accounting date")]
    InvalidValueDate,
}

impl Reject {
    /// The stable snake_case code of this rejection (API `failure_code`, metrics label).
    pub fn code(&self) -> &'static str {
        match self {
            Reject::InsufficientFunds(_) => "insufficient_funds",
            Reject::AccountFrozen(_) => "account_frozen",
            Reject::AccountClosed(_) => "account_closed",
            Reject::UnknownAccount(_) => "unknown_account",
            Reject::AccountExists(_) => "account_exists",
            Reject::CurrencyMismatch(_) => "currency_mismatch",
            Reject::Overflow(_) => "overflow",
            Reject::DuplicateId => "duplicate_id",
            Reject::Unbalanced(_) => "unbalanced",
            Reject::TooFewPostings => "too_few_postings",
            Reject::TooManyPostings => "too_many_postings",
            Reject::InvalidAmount => "invalid_amount",
            Reject::DuplicateAccount(_) => "duplicate_account",
            Reject::AccountNotEmpty(_) => "account_not_empty",
            Reject::InvalidCreditLimit => "invalid_credit_limit",
            Reject::StatusChangePending(_) => "status_change_pending",
            Reject::PeriodClosed => "period_closed",
            Reject::InvalidAccountingDate => "invalid_accounting_date",
            Reject::InvalidValueDate => "invalid_value_date",
        }
    }
}

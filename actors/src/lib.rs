//! rongpay's actor layer: per-account actix actors own each account's live state and
//! serialize its changes; the [`Ledger`] handle coordinates multi-account transfers over them
//! and makes each durable through the store's group commit before answering.
//!
//! Layout:
//! - [`account_actor`]: one actor per account in memory; prepare / commit / release of
//!   postings, pending status changes, passivation.
//! - [`registry`]: lazy activation from the store, idle sweep, the bound on active accounts.
//! - [`ledger`]: the protocol of one command (admission, dedup, prepare, durable write,
//!   commit), cancellation-safe.
//! - [`error`]: overload and storage failures (business rejections are `engine::Reject`).

pub mod account_actor;
pub mod error;
pub mod ledger;
pub mod registry;

pub use error::LedgerError;
pub use ledger::{Ledger, LedgerConfig, Outcome, Seq};

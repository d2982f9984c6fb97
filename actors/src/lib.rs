//! rongpay's actor layer: shard actors own the live state of the accounts hashed to them and
//! serialize its changes; the [`Ledger`] handle coordinates transfers over them in rounds
//! (one message per shard per round, not per posting) and makes each durable through the
//! store's group commit before answering.
//!
//! Layout:
//! - [`shard`]: the shard actor; prepare / commit / release of a round's legs, pending
//!   status changes, lazy activation from the store, passivation of idle accounts.
//! - [`ledger`]: admission, the coordinator's rounds, the durable write, the answers;
//!   cancellation-safe.
//! - [`claims`]: the transfer ids in flight, so that a duplicate of one is refused before
//!   it reserves anything.
//! - [`error`]: overload and storage failures (business rejections are `engine::Reject`).

pub mod claims;
pub mod error;
pub mod ledger;
pub mod shard;

pub use error::LedgerError;
pub use ledger::{AccountFacts, Ledger, LedgerConfig, Outcome, Seq};

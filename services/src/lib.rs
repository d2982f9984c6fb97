//! rongpay's business flows and background work, between the HTTP layer (`api`) and the
//! actors: typed commands and results, no HTTP (it never depends on actix-web, never knows
//! a status code). An object's public representation (a payment's, a refund's, a channel's
//! view) is defined here because webhook events carry it too; `api` renders it.
//!
//! Layout, one module per capability:
//! - [`platform`]: what the flows share ([`Platform`]), its recovery at start and the
//!   background work started from it; ids and time.
//! - [`payments`], [`card_payments`] (routing, charging, status sync, channel results),
//!   [`refunds`], [`accounts`], [`merchants`], [`cards`] (with [`vault`] and [`pan`]).
//! - [`channels`]: configuration, live health, notifications; [`channels::wire`] is the
//!   protocol payd's channel client speaks (`channel-sim` in the `sims` crate plays it).
//! - [`risk`]: the rules file; scoring itself is `engine::risk`.
//! - [`webhooks`]: the durable outbox and its delivery.
//! - [`notifications`]: the SMS platform; [`notifications::wire`] is the gateway protocol
//!   (`sms-sim` plays it).
//! - [`gl`]: the general ledger: the business date (its rules are `engine::gl`).
//! - [`settlement`]: merchant settlement: maturity (T+N), netting, batches (its rules are
//!   `engine::settlement`); [`payouts`]: their payouts through the payout channel.
//! - [`audit`]: the operator action log.
//! - [`ratelimit`]: keyed token buckets (sources, merchants, payers, phone numbers).
//! - [`metrics`]: every metric's name and the recording helpers; [`stats`]: today's totals.
//! - [`error`]: the one error type; `api` maps each variant to a status and a code.
//! - [`records`]: the store's records with id and time text; [`json_int`]: integers in JSON
//!   bodies as JSON Schema defines them (`220.0` is `220`); [`secret`]: values never shown;
//!   [`signature`]: the `t=…,v1=…` HMAC-SHA256 signature of channel notifications, SMS
//!   receipts and merchant webhooks.

pub mod accounts;
pub mod audit;
pub mod authorizations;
pub mod card_payments;
pub mod cards;
pub mod channels;
pub mod checkout;
pub mod console;
pub mod coupons;
pub mod credit;
pub mod customers;
pub mod day_end;
pub mod error;
pub mod floor;
pub mod gl;
pub mod idempotency;
pub mod json_int;
pub mod merchants;
pub mod metrics;
pub mod notifications;
pub mod orders;
pub mod pan;
pub mod payments;
pub mod payouts;
pub mod platform;
pub mod positions;
pub mod ratelimit;
pub mod recon;
pub mod records;
pub mod refunds;
pub mod reports;
pub mod risk;
pub mod secret;
pub mod settlement;
pub mod shelf;
pub mod signature;
pub mod stats;
pub mod tls;
pub mod transfers;
pub mod vault;
pub mod webhooks;

pub use error::{Error, Result};
pub use merchants::Caller;
pub use platform::{Platform, Settings};
/// Threads' scheduling policies: payd puts its ledger's thread at `SCHED_BATCH`.
pub use storage::sched;

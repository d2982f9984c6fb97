//! rongpay's business flows and background work, between the HTTP layer (`api`) and the
//! actors: typed commands and results, no HTTP (it never depends on actix-web, never builds
//! a JSON response, never knows a status code).
//!
//! Layout, one module per capability (issue #13 moves the flows here from `api` one
//! capability at a time; the funds layer adds its modules here from its first line):
//! - [`channels`]: payment channels; [`channels::wire`] is the protocol payd's channel client
//!   speaks, which `channel-sim` (in the `sims` tooling crate) plays.
//! - [`notifications`]: the SMS platform; [`notifications::wire`] is the SMS gateway
//!   protocol, which `sms-sim` plays.
//! - [`error`]: the one error type; `api` maps each variant to a status and a code.
//! - [`json_int`]: integers in JSON bodies as JSON Schema defines them (`220.0` is `220`).
//! - [`signature`]: the `t=…,v1=…` HMAC-SHA256 signature of channel notifications, SMS
//!   receipts and merchant webhooks.

pub mod channels;
pub mod error;
pub mod json_int;
pub mod notifications;
pub mod signature;

pub use error::{Error, Result};

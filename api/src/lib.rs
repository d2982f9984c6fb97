//! rongpay's HTTP API on actix-web: the public contract of `shared/API.md` over the actors.
//!
//! Layout:
//! - [`config`]: defaults, TOML file, `RONGPAY_*` environment, validation.
//! - [`server`]: binding, background recovery and readiness, graceful shutdown, routes.
//! - [`routes`]: one module per resource (health, accounts, …).
//! - [`body`]: JSON bodies with a size limit, a deadline and field-precise errors.
//! - [`auth`]: bearer tokens (the operator's; merchants' secret keys next).
//! - [`error`]: the contract's error shape for every non-2xx answer.
//! - [`records`]: API objects persisted atomically with the effects they describe.
//! - [`metrics`]: Prometheus exposition.

pub mod access;
pub mod alerts;
pub mod audit;
pub mod auth;
pub mod body;
pub mod config;
pub mod error;
pub mod idempotency;
pub mod logfmt;
pub mod logwriter;
pub mod metrics;
pub mod notify;
pub mod openapi;
pub mod ops;
pub mod otp;
pub mod pages;
pub mod pan;
pub mod records;
pub mod risk;
pub mod routes;
pub mod server;
pub mod signing;
pub mod state;
pub mod webhooks;

pub use services::{ratelimit, secret, vault};

//! The integration tests of payd: every file beside this one is a module of one test binary,
//! which drives the real `payd` binary over HTTP on a real RocksDB directory (`common`).
//! One binary instead of one per file: each binary links RocksDB. With the C++'s debug info
//! (off since: Cargo.toml) the 43 binaries took 21 GB and filled CI's disk, and one link is
//! faster than 43 however small they are. Run one file's tests with
//! `cargo test --release --workspace --test integration gl::` (workspace-wide, as every
//! build here: see docs/ARCHITECTURE.md).

mod common;

mod abuse;
mod alerting;
mod audit;
mod card_payments;
mod cards;
mod channel_sim;
mod channels;
mod checkout;
mod console;
mod coupons;
mod credit;
mod customers;
mod disk_full;
mod fees;
mod gl;
mod http_basics;
mod idempotency;
mod leak_scan;
mod loadtest;
mod logs;
mod onboarding;
mod operations;
mod ops_page;
mod orders;
mod outbound_tls;
mod payments;
mod payouts;
mod positions;
mod prometheus;
mod rate_limits;
mod reconciliation;
mod refunds;
mod reports;
mod risk;
mod schemathesis;
mod settlement;
mod signatures;
mod splits;
mod statements;
mod tls;
mod transfers;
mod two_phase;
mod webhooks;

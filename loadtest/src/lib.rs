//! Load generation and measurement for rongpay.
//!
//! - [`engine`]: the in-process engine benchmark (`payd bench engine`): durable transfers per
//!   second and commit latency through the real actors and store, with N concurrent
//!   submitters, uniform or hot-account, next to the raw RocksDB synced-write ceiling
//!   measured in the same run.
//! - [`proc_stats`]: resident memory of this process.

pub mod engine;
pub mod proc_stats;

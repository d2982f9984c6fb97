//! Load generation and measurement for rongpay.
//!
//! - [`delay`]: waits as long as asked (tokio's timer is a millisecond late): the harness's
//!   open-loop schedule and channel-sim's latencies.
//! - [`engine`]: the in-process engine benchmark (`payd bench engine`): durable transfers per
//!   second and commit latency through the real actors and store, with N concurrent
//!   submitters, uniform or hot-account, next to the raw RocksDB synced-write ceiling
//!   measured in the same run.
//! - [`harness`]: the load-test harness of the `loadtest` binary (payd over HTTP, and the
//!   PostgreSQL baseline): closed or open loop, HDR latencies, end-of-run checks, reports.
//! - [`proc_stats`]: resident memory of this process.

pub mod delay;
pub mod engine;
pub mod harness;
pub mod proc_stats;

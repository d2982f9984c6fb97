//! The storage integration tests: every file beside this one is a module of one test binary
//! (one link of RocksDB instead of one per file). Run one file's tests with
//! `cargo test --release --workspace --test integration recovery::`.

mod common;

mod checkpoint;
mod dedup_runs;
mod disk_full;
mod expiry;
mod flush_priority;
mod format_fixtures;
mod group_commit;
mod ingested_checkpoints;
mod key_filter;
mod notes;
mod recovery;

//! rongpay's durable store: RocksDB with column families, versioned and checksummed records,
//! and a group-commit writer that makes every acknowledged commit a synced write.
//!
//! Layout:
//! - [`archive`]: archive segments, one file per archived day (compressed, checksummed).
//! - [`codec`]: record framing (format version, kind, CRC-32) around bincode 2 payloads.
//! - `dedup` (crate-private): the dedup index's newest ids, held as sorted runs by the writer
//!   and ingested into the dedup family as table files by a thread of their own.
//! - `idfilter` (crate-private): the writer's in-memory filter of durable transfer ids (a
//!   split block bloom filter), so that most new ids are never looked up in RocksDB.
//! - `keyfilter` (crate-private): an in-memory filter of the aux keys requests look up and
//!   almost never find (idempotency records, `out_trade_no` indexes, customer links).
//! - [`legacy`]: decoders of record format 1, upgraded on read.
//! - [`mounts`]: the file system a data dir is on (`/proc/self/mountinfo`), to warn about
//!   online `discard`.
//! - [`schema`]: column families, journal entries and account merge operands.
//! - [`sched`]: a thread's scheduling policy (the ledger's thread at `SCHED_BATCH`).
//! - [`shelf`]: record segments, one file per shelved day (final business records out of
//!   the hot store, read back one key at a time).
//! - [`records`]: the registry of every key prefix the layers above use, the key builders
//!   and the record layouts stored under them.
//! - [`writer`]: the group-commit thread: queue, batch, one synced `WriteBatch`, ack; poison
//!   on failure.
//! - [`store`]: open and recovery checks, reads, full verification against a journal replay.
//!
//! What is durable when: a commit unit is durable exactly when its [`writer::Ack`] resolves
//! `Ok(seq)`. The journal entry and the unit's auxiliary records are in that one synced
//! `WriteBatch`, so they are recovered together or not at all. Balance deltas and dedup keys
//! follow from the journal: they reach their families later (checkpoints, ingested runs) and
//! open replays the journal after the marks that say how far each is complete.

pub mod archive;
pub mod codec;
#[cfg(feature = "rocksdb")]
pub(crate) mod dedup;
pub mod error;
pub mod flushprio;
pub(crate) mod idfilter;
pub(crate) mod keyfilter;
pub mod legacy;
pub mod mounts;
pub mod records;
pub mod sched;
pub mod schema;
pub mod shelf;
#[cfg(feature = "rocksdb")]
pub mod store;
#[cfg(feature = "rocksdb")]
pub mod writer;

/// Where table files are written before they are ingested, inside the store's directory.
#[cfg(feature = "rocksdb")]
pub use dedup::INGEST_DIR;
pub use error::{Result, StoreError};
pub use schema::JournalEntry;
#[cfg(feature = "rocksdb")]
pub use store::{GlCut, Recovery, Store, StoreOptions, Verification, WriterStats};
#[cfg(feature = "rocksdb")]
pub use writer::{Ack, BatchAck, CommitDelay, CommitUnit};

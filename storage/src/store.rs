//! Opening, recovering, reading and verifying the store.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use engine::gl::{BusinessDate, GlAccount, GlBook, Turnover};
use engine::{Account, AccountId, Currency, Ledger, TransferId};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType,
    DBRecoveryMode, IteratorMode, MergeOperands, Options, ReadOptions, DB,
};
use tokio::sync::oneshot;

use crate::codec::{self, Kind};
use crate::error::{Result, StoreError};
use crate::legacy;
use crate::schema::*;
use crate::writer::{self, Ack, BatchAck, CommitUnit, Deltas, Msg, Reply, Unflushed};

/// Units queued for the writer at most; beyond it `submit` answers `Overloaded`.
pub const COMMIT_QUEUE_UNITS_MAX: usize = 65_536;
/// Units one group write takes at most (one `WriteBatch`, one sync).
pub const GROUP_UNITS_MAX: usize = 8_192;
/// Journal entries whose checksum and sequence are checked on every open.
pub const RECOVERY_TAIL_ENTRIES: u64 = 4_096;
/// The archive segments' directory, inside the store's.
pub const ARCHIVE_DIR: &str = "archive";
/// Where the record segments are, under [`ARCHIVE_DIR`].
pub const SHELF_DIR: &str = "records";
/// Effects one commit unit may carry.
pub const UNIT_EFFECTS_MAX: usize = engine::state_machine::BATCH_COMMANDS_MAX;

/// How the store is opened. `Default` is what payd uses.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Upper bound on units per group write.
    pub group_units_max: usize,
    /// Upper bound on units waiting for the writer.
    pub queue_units_max: usize,
    /// RocksDB memtable size per column family, in bytes.
    pub write_buffer_bytes: usize,
    /// Memtable size of the id-keyed column families (accounts, dedup), in bytes.
    pub id_write_buffer_bytes: usize,
    /// Block cache shared by the column families, in bytes.
    pub block_cache_bytes: usize,
    /// Fault injection for tests: the Nth group write (1-based) and all after it fail as if
    /// the disk had. `None` in production.
    pub fail_group_write_from: Option<u64>,
    /// A balance checkpoint is written by the group this many group writes after the last...
    pub checkpoint_groups: u64,
    /// ...or by the first group this long after it (or when 4,096 accounts wait).
    pub checkpoint_interval: Duration,
    /// The nice value RocksDB's flush and compaction threads get once the store is open
    /// (0: left as started). [`crate::sched::renice_threads`].
    pub background_nice: i32,
    /// The nice value of RocksDB's flush threads while no flush presses
    /// ([`crate::flushprio`]); 0, or not above `background_nice`, or a process that may not
    /// lower a nice value again: they keep `background_nice`.
    pub flush_idle_nice: i32,
    /// The most memory the writer's filter of durable transfer ids takes
    /// ([`crate::idfilter`]); under 2 MiB turns it off.
    pub dedup_filter_bytes_max: usize,
    /// The most memory the filter of the aux keys requests look up and almost never find
    /// takes ([`crate::keyfilter`]); under 2 MiB turns it off.
    pub key_filter_bytes_max: usize,
    /// The writer's runs of new transfer ids are ingested into the dedup family once they
    /// hold this many ([`crate::dedup`])...
    pub dedup_seal_ids: usize,
    /// ...and hold at most this many: past it groups write their dedup keys inline.
    pub dedup_held_ids_max: usize,
    /// Balance deltas of at least [`writer::INGEST_MIN_ACCOUNTS`] accounts are checkpointed
    /// as a table file ingested into the accounts family once they hold this many accounts
    /// (or a second after the last checkpoint); 0: never, every checkpoint goes to the
    /// memtable.
    pub balance_seal_accounts: usize,
    /// How long a group may wait for more units under load ([`writer::CommitDelay`]).
    pub commit_delay: writer::CommitDelay,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            group_units_max: GROUP_UNITS_MAX,
            queue_units_max: COMMIT_QUEUE_UNITS_MAX,
            write_buffer_bytes: 64 << 20,
            id_write_buffer_bytes: 8 << 20,
            block_cache_bytes: 128 << 20,
            fail_group_write_from: None,
            checkpoint_groups: writer::CHECKPOINT_GROUPS,
            checkpoint_interval: writer::CHECKPOINT_INTERVAL,
            background_nice: 0,
            flush_idle_nice: 0,
            dedup_filter_bytes_max: DEDUP_FILTER_BYTES_MAX,
            key_filter_bytes_max: KEY_FILTER_BYTES_MAX,
            dedup_seal_ids: DEDUP_SEAL_IDS,
            dedup_held_ids_max: DEDUP_HELD_IDS_MAX,
            balance_seal_accounts: BALANCE_SEAL_ACCOUNTS,
            commit_delay: writer::CommitDelay::OFF,
        }
    }
}

/// [`StoreOptions::dedup_filter_bytes_max`]'s default: 64M transfer ids.
pub const DEDUP_FILTER_BYTES_MAX: usize = 128 << 20;
/// [`StoreOptions::key_filter_bytes_max`]'s default: 32M keys.
pub const KEY_FILTER_BYTES_MAX: usize = 64 << 20;
/// `StoreOptions::dedup_held_ids_max`'s default ([`crate::dedup`]).
pub const DEDUP_HELD_IDS_MAX: usize = crate::dedup::HELD_IDS_MAX;
/// `StoreOptions::dedup_seal_ids`'s default.
pub const DEDUP_SEAL_IDS: usize = crate::dedup::SEAL_IDS;
/// `StoreOptions::balance_seal_accounts`'s default.
pub const BALANCE_SEAL_ACCOUNTS: usize = writer::SEAL_ACCOUNTS;

/// Counters of the group-commit writer, read by metrics and benchmarks.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub group_writes: AtomicU64,
    pub units: AtomicU64,
    pub bytes: AtomicU64,
    /// RocksDB records (puts and merge operands) written, balance checkpoints included (as in
    /// `bytes`), though a checkpoint is not written to the WAL.
    pub keys: AtomicU64,
    pub write_nanos: AtomicU64,
    /// Of those, the group writes that carried a balance checkpoint, and their time.
    pub checkpoints: AtomicU64,
    pub checkpoint_nanos: AtomicU64,
    /// Milliseconds group writes waited out RocksDB write stalls (`no_slowdown` refused the
    /// write; one per 1 ms retry). The metric `rongpay_wal_write_stalls_total` counts groups.
    pub stalls: AtomicU64,
    /// Transfer ids looked up in the dedup index, and those the writer's id filter ruled
    /// out without a lookup ([`crate::idfilter`]).
    pub dedup_lookups: AtomicU64,
    pub dedup_filtered: AtomicU64,
    /// Transfer ids ingested into the dedup family from the writer's runs
    /// ([`crate::dedup`]), and group writes that wrote theirs inline because the runs were
    /// full (ingestion failing or behind).
    pub dedup_ingested: AtomicU64,
    pub dedup_inline_groups: AtomicU64,
    /// The filter's build after open is over (built, failed or cancelled): the writer takes
    /// a built filter at its next group.
    pub dedup_filter_built: std::sync::atomic::AtomicBool,
    /// Reads of aux keys the key filter answered "absent" without RocksDB
    /// ([`crate::keyfilter`]), and whether its build after open is over.
    pub key_filter_ruled_out: AtomicU64,
    pub key_filter_built: std::sync::atomic::AtomicBool,
    /// Balance checkpoints ingested as table files by the ingesting thread
    /// ([`writer::ingest_sealed_balances`]), the accounts and bytes in them, and their time
    /// (building the file, flushing the accounts memtable, ingesting): none of it the
    /// writer's.
    pub ingested_checkpoints: AtomicU64,
    /// Balance checkpoints the writer sealed for ingestion (one more than those ingested
    /// while one is in flight; a failed ingestion gives its deltas back).
    pub balance_seals: AtomicU64,
    pub ingested_accounts: AtomicU64,
    pub ingested_bytes: AtomicU64,
    pub ingest_nanos: AtomicU64,
}

impl WriterStats {
    /// A group write, before its units are answered: a caller that reads the counters after
    /// its answer sees its group in them.
    pub(crate) fn record_group(&self, units: usize, bytes: usize, keys: usize, elapsed: Duration) {
        self.group_writes.fetch_add(1, Ordering::Relaxed);
        self.units.fetch_add(units as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.keys.fetch_add(keys as u64, Ordering::Relaxed);
        self.write_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    /// The checkpoint a group wrote after its answers: its records and time count with the
    /// group's (`group_write` is the group's own write time, already in `write_nanos`).
    pub(crate) fn record_checkpoint(
        &self,
        bytes: usize,
        keys: usize,
        group_write: Duration,
        elapsed: Duration,
    ) {
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        self.checkpoint_nanos
            .fetch_add((group_write + elapsed).as_nanos() as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.keys.fetch_add(keys as u64, Ordering::Relaxed);
        self.write_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    /// A balance checkpoint the ingesting thread ingested.
    pub(crate) fn record_ingested_checkpoint(
        &self,
        accounts: usize,
        bytes: usize,
        elapsed: Duration,
    ) {
        self.ingested_checkpoints.fetch_add(1, Ordering::Relaxed);
        self.ingested_accounts
            .fetch_add(accounts as u64, Ordering::Relaxed);
        self.ingested_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
        self.ingest_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }
}

/// What was found on open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Sequence number of the last durable journal entry (0: empty store).
    pub last_seq: u64,
    /// Journal entries after the last balance checkpoint, replayed into the balances.
    pub replayed: u64,
    /// Transfer ids of the journal after the dedup family's mark (held in memory by the
    /// writer when the store stopped), put into the dedup family.
    pub dedup_replayed: u64,
    pub accounts: u64,
    /// Sum of balances per currency; all zero, or the open would have failed.
    pub trial_balance: BTreeMap<Currency, i128>,
    pub elapsed: Duration,
}

/// The GL at one point of the journal ([`Store::gl_since`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GlCut {
    /// (currency, GL account, credit-positive balance), non-zero ones only.
    pub balances: Vec<(Currency, GlAccount, i128)>,
    /// Each date's turnover from the date asked for on, oldest first.
    pub days: Vec<(BusinessDate, Turnover)>,
}

/// What a full verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    pub entries: u64,
    pub transfers: u64,
    pub accounts: u64,
    pub trial_balance: BTreeMap<Currency, i128>,
}

pub(crate) struct Inner {
    pub(crate) db: DB,
    pub(crate) last_seq: AtomicU64,
    pub(crate) stats: WriterStats,
    poison: OnceLock<String>,
    /// Fault injection (tests only): group writes from this one (1-based) on fail.
    fail_from: Option<u64>,
    /// Group writes attempted, counted only for `fail_from`.
    groups_attempted: AtomicU64,
    /// Balance changes durable in the journal, not yet in the accounts family.
    unflushed: RwLock<Unflushed>,
    /// Transfer ids durable in the journal, not yet in the dedup family.
    pub(crate) dedup: crate::dedup::Dedup,
    /// Journal records of keys below this are in archive segments (`archive/`), not in the
    /// journal family ([`META_ARCHIVED_THROUGH`]; 0: none archived).
    archived_through: AtomicU64,
    /// Where the archive segments are.
    archive_dir: PathBuf,
    /// The last archive segment read, decoded: a reader going through an archived day asks
    /// for it chunk by chunk.
    segment_cache: Mutex<Option<(PathBuf, Arc<crate::archive::Records>)>>,
    /// The record segments (`archive/records/`, [`crate::shelf`]), oldest first: their
    /// headers (date, id time range) and paths, read on open.
    shelves: RwLock<Vec<(crate::shelf::ShelfHeader, PathBuf)>>,
    /// The aux keys requests look up and almost never find ([`crate::keyfilter`]).
    pub(crate) key_filter: crate::keyfilter::KeyFilter,
}

impl Inner {
    fn cf(&self, name: &str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column family created on open")
    }
    pub(crate) fn cf_journal(&self) -> &ColumnFamily {
        self.cf(CF_JOURNAL)
    }
    pub(crate) fn cf_accounts(&self) -> &ColumnFamily {
        self.cf(CF_ACCOUNTS)
    }
    pub(crate) fn cf_dedup(&self) -> &ColumnFamily {
        self.cf(CF_DEDUP)
    }
    pub(crate) fn cf_audit(&self) -> &ColumnFamily {
        self.cf(CF_AUDIT)
    }

    /// The sequence numbers at which transfers were posted, from the dedup index, for
    /// transfer ids (big-endian keys) given in key order: one sorted multi-get.
    /// The writer's runs first: an ingestion drops its runs only once the family holds
    /// their ids, so an id missing from the runs and then from the family was never posted.
    pub(crate) fn posted<'a>(
        &self,
        sorted_keys: impl IntoIterator<Item = &'a [u8; 16]>,
    ) -> Result<Vec<Option<u64>>> {
        let keys: Vec<&[u8; 16]> = sorted_keys.into_iter().collect();
        let mut seqs = vec![None; keys.len()];
        let mut rest = Vec::new();
        {
            let runs = self.dedup.runs();
            for (i, key) in keys.iter().enumerate() {
                match runs.find(key) {
                    Some(seq) => seqs[i] = Some(seq),
                    None => rest.push(i),
                }
            }
        }
        if rest.is_empty() {
            return Ok(seqs);
        }
        let found =
            self.db
                .batched_multi_get_cf(self.cf_dedup(), rest.iter().map(|&i| keys[i]), true);
        for (&i, found) in rest.iter().zip(found) {
            seqs[i] = match found? {
                None => None,
                Some(v) => Some(seq_from_key(&v).ok_or_else(|| {
                    StoreError::Inconsistent(format!("a dedup entry of {} bytes", v.len()))
                })?),
            };
        }
        Ok(seqs)
    }

    pub(crate) fn cf_aux(&self) -> &ColumnFamily {
        self.cf(CF_AUX)
    }

    pub(crate) fn cf_meta(&self) -> &ColumnFamily {
        self.cf(CF_META)
    }

    /// An account as of the last durable entry (for the writer's rare GL reassignment).
    pub(crate) fn account_now(&self, id: AccountId) -> Result<Option<Account>> {
        let unflushed = self.unflushed();
        let Some(bytes) = self
            .db
            .get_pinned_cf(self.cf_accounts(), id.to_be_bytes())?
        else {
            return Ok(None);
        };
        let mut account = legacy::decode_account(&bytes).map_err(|source| StoreError::Corrupt {
            cf: CF_ACCOUNTS,
            key: id.to_string(),
            source,
        })?;
        unflushed.apply(&mut account)?;
        Ok(Some(account))
    }

    pub(crate) fn unflushed(&self) -> RwLockReadGuard<'_, Unflushed> {
        self.unflushed.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn unflushed_mut(&self) -> RwLockWriteGuard<'_, Unflushed> {
        self.unflushed.write().unwrap_or_else(|p| p.into_inner())
    }
    pub(crate) fn poison_reason(&self) -> Option<String> {
        self.poison.get().cloned()
    }
    pub(crate) fn poison(&self, reason: String) {
        let _ = self.poison.set(reason);
    }
    /// Background errors (failed flushes or compactions) since open.
    pub(crate) fn background_errors(&self) -> u64 {
        self.db
            .property_int_value("rocksdb.background-errors")
            .ok()
            .flatten()
            .unwrap_or(0)
    }
    pub(crate) fn inject_failure(&self) -> bool {
        let n = self.groups_attempted.fetch_add(1, Ordering::Relaxed) + 1;
        self.fail_from.is_some_and(|from| n >= from)
    }
}

/// The durable store. Cheap to share behind an `Arc`; all writes go through [`Store::submit`].
pub struct Store {
    inner: Arc<Inner>,
    tx: crossbeam_channel::Sender<Msg>,
    writer: Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
}

pub(crate) fn merge_full(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    let mut account: Option<Account> = match existing {
        Some(bytes) => Some(legacy::decode_account(bytes).ok()?),
        None => None,
    };
    for op in operands {
        if codec::kind_of(op).ok()? == Kind::Account as u8 {
            account = Some(legacy::decode_account(op).ok()?);
            continue;
        }
        let delta = legacy::decode_delta(op).ok()?;
        // A delta without a base record means the store lost an account: refuse to make one up.
        delta.apply(account.as_mut()?)?;
    }
    Some(codec::encode(Kind::Account, &account?))
}

pub(crate) fn merge_partial(
    _key: &[u8],
    _existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    let mut sum = AccountDelta::default();
    for op in operands {
        // A base record among the operands cannot be folded into a delta: let RocksDB keep
        // the operands as they are.
        let delta = legacy::decode_delta(op).ok()?;
        sum = sum.then(delta)?;
    }
    Some(codec::encode(Kind::AccountDelta, &sum))
}

/// L0 files that start a compaction of the accounts, dedup and aux families (RocksDB's
/// default is 4).
pub const L0_COMPACTION_TRIGGER: i32 = 16;

/// Compaction filter of the `aux` family: drops expiring records past their expiry.
fn drop_expired(_level: u32, key: &[u8], value: &[u8]) -> rocksdb::CompactionDecision {
    if key.first() != Some(&AUX_EXPIRING_PREFIX) {
        return rocksdb::CompactionDecision::Keep;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    match split_expiring(value) {
        Some((expires_at, _)) if expires_at < now => rocksdb::CompactionDecision::Remove,
        _ => rocksdb::CompactionDecision::Keep,
    }
}

/// Column families keyed by 16-byte ids in random order, read by point lookups (accounts,
/// dedup): small memtables, bloom filters, no compression.
fn keyed_by_id(cf: &str) -> bool {
    cf == CF_ACCOUNTS || cf == CF_DEDUP
}

/// A column family's memtable size.
fn memtable_bytes(options: &StoreOptions, cf: &str) -> usize {
    if keyed_by_id(cf) {
        options.id_write_buffer_bytes
    } else {
        options.write_buffer_bytes
    }
}

impl Store {
    /// Opens (creating when missing) the store in `path`, recovers, checks, and starts the
    /// writer. Refuses to open a store whose records do not check out.
    pub fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<(Store, Recovery)> {
        let started = Instant::now();
        let path = path.as_ref().to_path_buf();
        let mut db_options = Options::default();
        db_options.create_if_missing(true);
        db_options.create_missing_column_families(true);
        // A torn last record (a write the crash interrupted, never acknowledged) is dropped;
        // corruption anywhere else refuses to open instead of silently losing what follows.
        db_options.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
        // Column families flush together, so the journal and the balances it explains can
        // never be recovered from different points in time.
        db_options.set_atomic_flush(true);
        db_options.set_paranoid_checks(true);
        db_options.set_max_background_jobs(2);
        db_options.set_max_total_wal_size(512 << 20);
        // RocksDB's own info log: bounded like everything else (4 files of 4 MiB at most).
        db_options.set_max_log_file_size(4 << 20);
        db_options.set_keep_log_file_num(4);
        // The MANIFEST grows with every flush and compaction until it rolls over (1 GiB by
        // default): rolled at 64 MiB, the data dir's fixed overhead stays small.
        db_options.set_max_manifest_file_size(64 << 20);
        db_options.set_db_write_buffer_size(options.write_buffer_bytes * 4);

        // One writer thread: memtable inserts are never concurrent.
        db_options.set_allow_concurrent_memtable_write(false);
        // A flush or compaction starts writing its file back every 1 MiB instead of leaving
        // it all to the file's final fsync. That fsync put up to a whole memtable's bytes in
        // the disk's queue at once, and a WAL sync arriving behind it waited for all of them:
        // the engine's p999 at 1,024 submitters was 16–33 ms in six runs before, 11–14 ms in
        // six after (session 37, docs/BENCHMARKS.md). The WAL keeps its own sync per group.
        db_options.set_bytes_per_sync(1 << 20);

        let cache = Cache::new_lru_cache(options.block_cache_bytes);
        let cf = |name: &str| {
            let keyed_by_id = keyed_by_id(name);
            let mut o = Options::default();
            o.set_write_buffer_size(memtable_bytes(&options, name));
            o.set_compression_type(DBCompressionType::Lz4);
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            if keyed_by_id {
                // Keys are 16-byte ids in random order, read by point lookups. A small
                // memtable keeps each skiplist insert's walk inside the CPU caches (the
                // writer thread's main cost with a large one); flushes of a small sorted
                // memtable are cheap and sequential. (A hash-indexed memtable makes inserts
                // O(1) but its flush must sort everything: measured worse overall.)
                if name == CF_ACCOUNTS {
                    // A memtable filter costs every insert a cache miss and spares a
                    // read of a key not in the memtable its skiplist walk. Accounts are
                    // read whenever one is not resident (idle ones are passivated after
                    // minutes), about once a payment in production: kept. Dedup keys are
                    // read almost never: the writer's id filter rules out nearly every id
                    // before RocksDB is asked (`idfilter`). Without the dedup family's
                    // filter, the engine bench's CPU per transfer fell ≈ 5% (session 36,
                    // docs/BENCHMARKS.md).
                    o.set_memtable_prefix_bloom_ratio(0.1);
                    o.set_memtable_whole_key_filtering(true);
                }
                table.set_bloom_filter(10.0, false);
                table.set_whole_key_filtering(true);
            }
            o.set_block_based_table_factory(&table);
            if name == CF_ACCOUNTS || name == CF_DEDUP || name == CF_AUX {
                // Keys spread over the whole key range (account ids in every checkpoint;
                // transfer ids; idempotency keys): every L0 file overlaps the whole base
                // level, so each L0 compaction rewrites all of it
                // (and, for accounts, runs the merge operator on every touched account: the
                // busiest thread at 1,024 submitters over 1M accounts). Compacting at 16 files
                // instead of 4 does that a quarter as often. Accounts: CPU per transfer
                // 8.4 → 6.8 µs (with the change below). Dedup and aux (session 19): the
                // batch endpoint +7% to +15% in eight alternated runs, the engine and balance
                // payments unchanged (docs/BENCHMARKS.md). A lookup that misses probes up to
                // 16 L0 bloom filters instead of 4.
                o.set_level_zero_file_num_compaction_trigger(L0_COMPACTION_TRIGGER);
                o.set_level_zero_slowdown_writes_trigger(L0_COMPACTION_TRIGGER * 5 / 2);
                o.set_level_zero_stop_writes_trigger(L0_COMPACTION_TRIGGER * 4);
            }
            if name == CF_ACCOUNTS {
                o.set_merge_operator(ACCOUNT_MERGE_OPERATOR, merge_full, merge_partial);
            }
            if keyed_by_id {
                // Random 16-byte keys and small values: LZ4 found little to compress and cost
                // 4% of the engine's CPU in flushes and compactions.
                o.set_compression_type(DBCompressionType::None);
            }
            if name == CF_AUX {
                // Most point reads here look for something absent (an out_trade_no or an
                // idempotency key not used before): bloom filters answer those without
                // walking the memtable's skiplist or reading a block.
                o.set_memtable_prefix_bloom_ratio(0.05);
                o.set_memtable_whole_key_filtering(true);
                table.set_bloom_filter(10.0, false);
                table.set_whole_key_filtering(true);
                o.set_block_based_table_factory(&table);
                o.set_compaction_filter("rongpay.aux.expiry", drop_expired);
                // Compact every file at least daily, so expired records go even when idle.
                o.set_periodic_compaction_seconds(24 * 3600);
            }
            ColumnFamilyDescriptor::new(name, o)
        };
        let descriptors = vec![
            cf(CF_JOURNAL),
            cf(CF_ACCOUNTS),
            cf(CF_DEDUP),
            cf(CF_AUX),
            cf(CF_META),
            cf(CF_AUDIT),
        ];
        let db = DB::open_cf_descriptors(&db_options, &path, descriptors).map_err(|e| {
            let message = e.into_string();
            // RocksDB's advisory lock on `LOCK`: another process has this store open.
            if message.contains("While lock file") {
                StoreError::Locked(format!("{}: {message}", path.display()))
            } else {
                StoreError::Inconsistent(format!(
                    "cannot open store in {}: {message}",
                    path.display()
                ))
            }
        })?;
        let inner = Arc::new(Inner {
            db,
            last_seq: AtomicU64::new(0),
            stats: WriterStats::default(),
            poison: OnceLock::new(),
            fail_from: options.fail_group_write_from,
            groups_attempted: AtomicU64::new(0),
            unflushed: RwLock::new(Unflushed::new(
                options.checkpoint_groups,
                options.checkpoint_interval,
                options.balance_seal_accounts,
            )),
            dedup: crate::dedup::Dedup::new(
                &path,
                options.dedup_seal_ids,
                options.dedup_held_ids_max,
            ),
            archived_through: AtomicU64::new(0),
            archive_dir: path.join(ARCHIVE_DIR),
            segment_cache: Mutex::new(None),
            shelves: RwLock::new(Vec::new()),
            key_filter: crate::keyfilter::KeyFilter::new(crate::idfilter::fits(
                options.key_filter_bytes_max,
            )),
        });
        inner
            .archived_through
            .store(read_archived_through(&inner)?, Ordering::Release);
        // A segment whose write a crash interrupted is not a segment.
        if let Ok(entries) = std::fs::read_dir(&inner.archive_dir) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let shelf_dir = inner.archive_dir.join(SHELF_DIR);
        if let Ok(entries) = std::fs::read_dir(&shelf_dir) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        {
            let mut shelves = Vec::new();
            for path in crate::shelf::list(&shelf_dir).map_err(archive_error)? {
                shelves.push((
                    crate::shelf::read_header(&path).map_err(archive_error)?,
                    path,
                ));
            }
            *inner.shelves.write().unwrap_or_else(|e| e.into_inner()) = shelves;
        }
        let (last_seq, layout) = check_format_and_tail(&inner)?;
        inner.last_seq.store(last_seq, Ordering::Release);
        // The ids the writer held in memory when the store stopped, from the journal; then a
        // store of layout 4 (every dedup key written with its entry, now marked complete)
        // is labelled 5, which no older build opens.
        inner.dedup.clear_dir()?;
        let dedup_replayed = crate::dedup::replay(&inner, last_seq, layout)?;
        // A store of an older layout (or a new one) has no GL book yet: it is opened from
        // the accounts once they are complete. Otherwise it is read as of the checkpoint,
        // and the replay brings it to the last entry with the balances.
        let has_book = matches!(
            layout,
            Some(LAYOUT_VERSION | LAYOUT_DEDUP_RUNS | LAYOUT_GL_BOOK)
        );
        if has_book {
            inner.unflushed_mut().book = load_book(&inner)?;
        }
        let replayed = replay_unflushed(&inner, last_seq, has_book, layout)?;
        // The replay wrote the accounts' own position: a store of layout 4 or 5 (dedup
        // marked complete above) is labelled 6, which no older build opens.
        if matches!(layout, Some(LAYOUT_GL_BOOK | LAYOUT_DEDUP_RUNS)) {
            write_layout(&inner, LAYOUT_VERSION, None, None)?;
        }
        let (accounts, trial_balance) = check_trial_balance(&inner, has_book)?;

        let cancel_filter = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (filter, filter_thread) = spawn_dedup_filter(
            &inner,
            options.dedup_filter_bytes_max,
            Arc::clone(&cancel_filter),
        );
        let key_filter_thread = spawn_key_filter(
            &inner,
            options.key_filter_bytes_max,
            Arc::clone(&cancel_filter),
        );
        // RocksDB's pools started with the database: background work, behind the threads
        // that serve when they share a core (docs/ARCHITECTURE.md, "Actors, memory and
        // bounds"). RocksDB names them `rocksdb:high` and `rocksdb:low`.
        if options.background_nice != 0 {
            if let Err(e) = crate::sched::renice_threads("rocksdb:", options.background_nice) {
                tracing::warn!("RocksDB's threads keep their nice value: {e}");
            }
        }
        let flush_priority = crate::flushprio::FlushPriority::start(
            options.flush_idle_nice,
            options.background_nice,
            COLUMN_FAMILIES
                .iter()
                .map(|cf| (*cf, memtable_bytes(&options, cf) as u64))
                .collect(),
        );
        let (tx, rx) = crossbeam_channel::bounded(options.queue_units_max);
        let ingester = crate::dedup::spawn_ingester(&inner)?;
        let writer_inner = Arc::clone(&inner);
        let cancel_on_error = Arc::clone(&cancel_filter);
        let group_units_max = options.group_units_max.clamp(1, GROUP_UNITS_MAX);
        let commit_delay = options.commit_delay;
        let writer = std::thread::Builder::new()
            .name("rongpay-wal".to_string())
            .spawn(move || {
                // Prompt, whatever the opening thread's policy (payd opens the store from a
                // thread of its ledger's, at SCHED_BATCH): a group waiting for the HTTP
                // worker to block measured a worse p99 (docs/ARCHITECTURE.md).
                if let Err(e) = crate::sched::set_current_thread(crate::sched::Policy::Normal) {
                    tracing::warn!("the writer's thread keeps its inherited policy: {e}");
                }
                writer::run(
                    writer_inner,
                    rx,
                    group_units_max,
                    commit_delay,
                    filter,
                    flush_priority,
                    ingester,
                );
                cancel_filter.store(true, Ordering::Release);
                // The scan holds the database open: the store is closed, and its directory
                // free to open again, only once it stopped (it checks `cancel` every 64Ki
                // keys).
                for scan in [filter_thread, key_filter_thread].into_iter().flatten() {
                    let _ = scan.join();
                }
            })
            .map_err(|e| {
                cancel_on_error.store(true, Ordering::Release);
                StoreError::Io(format!("cannot start writer thread: {e}"))
            })?;
        let recovery = Recovery {
            last_seq,
            replayed,
            dedup_replayed,
            accounts,
            trial_balance,
            elapsed: started.elapsed(),
        };
        tracing::info!(
            last_seq,
            accounts,
            replayed,
            dedup_replayed,
            elapsed_ms = recovery.elapsed.as_millis() as u64,
            "store recovered"
        );
        report_mount(&path);
        Ok((
            Store {
                inner,
                tx,
                writer: Mutex::new(Some(writer)),
                path,
            },
            recovery,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a unit for the next group write. The returned [`Ack`] resolves with the unit's
    /// sequence number once its group is synced, or with the error that kept it from disk.
    pub fn submit(&self, unit: CommitUnit) -> Result<Ack> {
        if let Some(reason) = self.inner.poison_reason() {
            return Err(StoreError::Poisoned(reason));
        }
        if unit.effects.len() > UNIT_EFFECTS_MAX {
            return Err(StoreError::TooLarge(format!(
                "{} effects",
                unit.effects.len()
            )));
        }
        let (ack_tx, ack_rx) = oneshot::channel();
        self.send(Msg::Commit(vec![unit], Reply::One(ack_tx)))?;
        Ok(ack_rx)
    }

    /// Queues units for the next group write as one message (they are written in the same
    /// group, in this order). The [`BatchAck`] resolves once that group is synced with one
    /// outcome per unit: its sequence number, or [`StoreError::DuplicateTransfer`] for a unit
    /// posting a transfer id that is already durable (or posted by an earlier unit), which was
    /// not written. One channel message and one wake-up for the lot.
    pub fn submit_many(&self, units: Vec<CommitUnit>) -> Result<BatchAck> {
        if let Some(reason) = self.inner.poison_reason() {
            return Err(StoreError::Poisoned(reason));
        }
        if let Some(unit) = units.iter().find(|u| u.effects.len() > UNIT_EFFECTS_MAX) {
            return Err(StoreError::TooLarge(format!(
                "{} effects",
                unit.effects.len()
            )));
        }
        if units.len() > GROUP_UNITS_MAX {
            return Err(StoreError::TooLarge(format!(
                "{} units in one submission",
                units.len()
            )));
        }
        let (ack_tx, ack_rx) = oneshot::channel();
        self.send(Msg::Commit(units, Reply::Many(ack_tx)))?;
        Ok(ack_rx)
    }

    fn send(&self, msg: Msg) -> Result<()> {
        match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(crossbeam_channel::TrySendError::Full(_)) => {
                Err(StoreError::Overloaded(self.tx.len()))
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => Err(StoreError::Closed),
        }
    }

    /// Submits and waits, for callers outside an async runtime.
    pub fn commit_blocking(&self, unit: CommitUnit) -> Result<u64> {
        self.submit(unit)?
            .blocking_recv()
            .map_err(|_| StoreError::Closed)?
    }

    /// False once a write failed: the store accepts nothing more until restarted.
    pub fn is_healthy(&self) -> bool {
        self.inner.poison.get().is_none()
    }

    pub fn poison_reason(&self) -> Option<String> {
        self.inner.poison_reason()
    }

    pub fn last_seq(&self) -> u64 {
        self.inner.last_seq.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> &WriterStats {
        &self.inner.stats
    }

    /// Units waiting for the writer right now.
    pub fn queue_len(&self) -> usize {
        self.tx.len()
    }

    /// The durable state of an account, or `None` if it was never created.
    pub fn account(&self, id: AccountId) -> Result<Option<Account>> {
        let key = id.to_be_bytes();
        // Under the read lock: no checkpoint moves a delta into the family meanwhile.
        let unflushed = self.inner.unflushed();
        let Some(bytes) = self.inner.db.get_pinned_cf(self.inner.cf_accounts(), key)? else {
            return Ok(None);
        };
        let mut account: Account =
            legacy::decode_account(&bytes).map_err(|source| StoreError::Corrupt {
                cf: CF_ACCOUNTS,
                key: id.to_string(),
                source,
            })?;
        unflushed.apply(&mut account)?;
        Ok(Some(account))
    }

    /// The sequence number of the journal entry that posted `id`, if it was posted.
    pub fn transfer_seq(&self, id: TransferId) -> Result<Option<u64>> {
        Ok(self.inner.posted([&id.to_be_bytes()])?[0])
    }

    /// [`Store::transfer_seq`] of many ids in one sorted multi-get.
    pub fn transfer_seqs(&self, ids: &[TransferId]) -> Result<Vec<Option<u64>>> {
        let mut keys: Vec<(usize, [u8; 16])> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (i, id.to_be_bytes()))
            .collect();
        keys.sort_unstable_by_key(|(_, k)| *k);
        let found = self.inner.posted(keys.iter().map(|(_, k)| k))?;
        let mut seqs = vec![None; ids.len()];
        for ((i, _), seq) in keys.iter().zip(found) {
            seqs[*i] = seq;
        }
        Ok(seqs)
    }

    /// A record of the layers above.
    pub fn aux(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if !self.inner.key_filter.may_contain(key) {
            self.inner
                .stats
                .key_filter_ruled_out
                .fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        Ok(self.inner.db.get_cf(self.inner.cf_aux(), key)?)
    }

    /// Calls `f` with up to `limit` records of the layers above whose keys start with
    /// `prefix`, in key order (for small registries such as channels, loaded at start).
    pub fn for_each_aux_with_prefix(
        &self,
        prefix: &[u8],
        limit: usize,
        f: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<usize> {
        self.for_each_aux_with_prefix_from(prefix, prefix, limit, f)
    }

    /// [`Store::for_each_aux_with_prefix`], starting at the first key ≥ `from` (which
    /// should start with `prefix`): pages through a prefix without reading what came before.
    pub fn for_each_aux_with_prefix_from(
        &self,
        prefix: &[u8],
        from: &[u8],
        limit: usize,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<usize> {
        let start = if from >= prefix { from } else { prefix };
        let iter = self.inner.db.iterator_cf(
            self.inner.cf_aux(),
            IteratorMode::From(start, rocksdb::Direction::Forward),
        );
        let mut seen = 0;
        for item in iter {
            let (key, value) = item?;
            if !key.starts_with(prefix) || seen >= limit {
                break;
            }
            f(&key, &value)?;
            seen += 1;
        }
        Ok(seen)
    }

    /// Calls `f` with every record of the layers above with a key in `start..end`, in key
    /// order.
    pub fn for_each_aux_range(
        &self,
        start: &[u8],
        end: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut options = rocksdb::ReadOptions::default();
        options.set_iterate_upper_bound(end.to_vec());
        let iter = self.inner.db.iterator_cf_opt(
            self.inner.cf_aux(),
            options,
            IteratorMode::From(start, rocksdb::Direction::Forward),
        );
        for item in iter {
            let (key, value) = item?;
            f(&key, &value)?;
        }
        Ok(())
    }

    /// Calls `f` on audit entries in key order from the first key ≥ `from`, at most
    /// `limit` of them.
    pub fn for_each_audit_from(
        &self,
        from: &[u8],
        limit: usize,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<usize> {
        let iter = self.inner.db.iterator_cf(
            self.inner.cf_audit(),
            IteratorMode::From(from, rocksdb::Direction::Forward),
        );
        let mut seen = 0;
        for item in iter {
            let (key, value) = item?;
            if seen >= limit {
                break;
            }
            f(&key, &value)?;
            seen += 1;
        }
        Ok(seen)
    }

    /// Compacts the `aux` family now, dropping expired records (compaction does this by
    /// itself over time; operators and tests can force it).
    pub fn compact_aux(&self) {
        self.inner
            .db
            .compact_range_cf(self.inner.cf_aux(), None::<&[u8]>, None::<&[u8]>);
    }

    /// Calls `f` with every journal entry from `from_seq` on, in order.
    pub fn for_each_entry(
        &self,
        from_seq: u64,
        f: impl FnMut(JournalEntry) -> Result<()>,
    ) -> Result<()> {
        for_each_entry(&self.inner, from_seq, f)
    }

    /// Calls `f` with every account, as of one consistent cut. Holds the balances' read lock
    /// for the whole scan, so the writer's next group waits until it ends: for `payd verify`,
    /// open and tests, not for a serving process.
    pub fn for_each_account(&self, f: impl FnMut(Account) -> Result<()>) -> Result<()> {
        for_each_account(&self.inner, f)
    }

    /// The GL book as of the last durable entry: every GL account's balance, and the
    /// turnover of the dates still open in memory (see [`Store::gl_days_from`] for all).
    pub fn gl_book(&self) -> GlBook {
        self.inner.unflushed().book.clone()
    }

    /// Every GL account's balance and the GL turnover of every date from `from` on (oldest
    /// first), as of the last durable entry, in one consistent cut: what the meta family
    /// holds, with what is held in memory over it. A date's opening and closing follow from
    /// the balances minus the turnover of the dates after it.
    pub fn gl_since(&self, from: BusinessDate) -> Result<GlCut> {
        // Under the read lock: no group is folded in and no checkpoint moves a date to the
        // meta family meanwhile.
        let unflushed = self.inner.unflushed();
        let mut days: BTreeMap<BusinessDate, Turnover> =
            gl_days_from(&self.inner, from)?.into_iter().collect();
        for date in unflushed.book.dates().filter(|d| *d >= from) {
            if let Some(day) = unflushed.book.day(date) {
                days.insert(date, day.clone());
            }
        }
        Ok(GlCut {
            balances: unflushed.book.balances().collect(),
            days: days.into_iter().collect(),
        })
    }

    /// Every account as it was just after journal entry `seq`, in id order, while writes
    /// go on (a day-end's snapshot of the closed date): the accounts family read at one
    /// RocksDB snapshot, corrected by the journal between that snapshot's balance
    /// checkpoint and `seq` (entries after the checkpoint added, or entries after `seq`
    /// taken back), without the accounts created after `seq`. Takes no lock the writer
    /// waits on. `seq` must be durable.
    pub fn for_each_account_at(
        &self,
        seq: u64,
        mut f: impl FnMut(Account) -> Result<()>,
    ) -> Result<()> {
        let inner = &self.inner;
        let snap = inner.db.snapshot();
        // The accounts' own position, read at the snapshot with their records (a
        // checkpoint's operands and position are one write, or one ingested file).
        let value = snap.get_cf(inner.cf_accounts(), ACCOUNTS_THROUGH_KEY)?;
        let through = meta_seq(value.as_deref(), "accounts_through")?.unwrap_or(0);
        let last = match snap
            .iterator_cf(inner.cf_journal(), IteratorMode::End)
            .next()
            .transpose()?
        {
            Some((key, value)) => decode_record(&key, &value)?.last().map_or(0, |e| e.seq),
            None => 0,
        };
        if seq > last {
            return Err(StoreError::Inconsistent(format!(
                "entry {seq} is not durable (the journal ends at {last})"
            )));
        }
        /// What the journal between the checkpoint and `seq` changes of an account.
        #[derive(Default)]
        struct Fix {
            balance: i128,
            gl: Option<GlAccount>,
        }
        let mut fixes: HashMap<AccountId, Fix> = HashMap::new();
        let mut created_after: std::collections::HashSet<AccountId> = Default::default();
        let (from, to, sign) = if through < seq {
            (through + 1, seq, 1i128)
        } else {
            (seq + 1, through, -1i128)
        };
        // One pass over the entries after min(seq, through), up to `last`.
        let start = through.min(seq) + 1;
        if start <= last {
            scan_entries(inner, start, |entry| {
                let in_fix = entry.seq >= from && entry.seq <= to;
                for effect in &entry.effects {
                    match effect {
                        engine::Effect::AccountCreated(a) if entry.seq > seq => {
                            created_after.insert(a.id);
                        }
                        engine::Effect::Posted(t) if in_fix => {
                            for p in &t.postings {
                                fixes.entry(p.account).or_default().balance +=
                                    sign * i128::from(p.amount);
                            }
                        }
                        engine::Effect::GlAssigned {
                            account, from, gl, ..
                        } if in_fix => {
                            let fix = fixes.entry(*account).or_default();
                            if sign > 0 {
                                // Forward: the last reassignment wins.
                                fix.gl = Some(*gl);
                            } else {
                                // Backward: the first one says what it was before.
                                fix.gl.get_or_insert(*from);
                            }
                        }
                        _ => {}
                    }
                }
                Ok(entry.seq < last)
            })?;
        }
        let mut read = ReadOptions::default();
        read.set_total_order_seek(true);
        read.set_snapshot(&snap);
        for item in inner
            .db
            .iterator_cf_opt(inner.cf_accounts(), read, IteratorMode::Start)
        {
            let (key, value) = item?;
            if key[..] == ACCOUNTS_THROUGH_KEY {
                continue;
            }
            let mut account =
                legacy::decode_account(&value).map_err(|source| StoreError::Corrupt {
                    cf: CF_ACCOUNTS,
                    key: format!("{key:02x?}"),
                    source,
                })?;
            if created_after.contains(&account.id) {
                continue;
            }
            if let Some(fix) = fixes.get(&account.id) {
                account.balance = i128::from(account.balance)
                    .checked_add(fix.balance)
                    .and_then(|b| i64::try_from(b).ok())
                    .ok_or_else(|| {
                        StoreError::Inconsistent(format!("account {} overflows i64", account.id))
                    })?;
                if let Some(gl) = fix.gl {
                    account.gl = gl;
                }
            }
            f(account)?;
        }
        Ok(())
    }

    /// Moves a closed day's journal records out of the journal family into an archive
    /// segment (`archive/<date>.seg`): the records from the one holding `from_seq` to the one
    /// before the record holding `switch_seq + 1` (a record straddling the switch stays for
    /// the next day's segment, so the segments partition the journal). The segment is
    /// written, synced and read back before the records are deleted, in one synced batch
    /// with the new [`META_ARCHIVED_THROUGH`]. Refused unless it continues the archive and the
    /// range is behind the balance checkpoint.
    pub fn archive_day(
        &self,
        date: BusinessDate,
        (from_seq, switch_seq): (u64, u64),
        snapshot_sha256: [u8; 32],
    ) -> Result<crate::archive::SegmentInfo> {
        let inner = &self.inner;
        let record_key_of = |seq: u64| -> Result<Option<u64>> {
            Ok(inner
                .db
                .iterator_cf(
                    inner.cf_journal(),
                    IteratorMode::From(&seq_key(seq), rocksdb::Direction::Reverse),
                )
                .next()
                .transpose()?
                .and_then(|(k, _)| seq_from_key(&k)))
        };
        let archived = inner.archived_through.load(Ordering::Acquire);
        let first_key = match record_key_of(from_seq)? {
            Some(k) if k >= archived => k,
            // The record holding `from_seq` is already archived (it straddled the last
            // archived day's switch): this day starts where the archive ends.
            _ => archived.max(1),
        };
        if archived != 0 && first_key != archived {
            return Err(StoreError::Inconsistent(format!(
                "the archive ends at journal key {archived}; {date} starts at {first_key}"
            )));
        }
        let end_key = record_key_of(switch_seq + 1)?.ok_or_else(|| {
            StoreError::Inconsistent(format!("no journal entry after the switch of {date}"))
        })?;
        // Open replays from the accounts' position (the GL book's is never behind it).
        let through = accounts_through(inner)?.unwrap_or(0);
        // That checkpoint may still be only in the memtables (checkpoints are written without
        // the WAL): made durable before any record it covers is deleted, or a crash could
        // leave open a checkpoint older than the journal it must replay.
        self.flush()?;
        // Recovery replays the journal after the balance checkpoint from the journal family
        // (the tail check reads through the archive like every reader).
        if end_key > through.saturating_add(1) {
            return Err(StoreError::Inconsistent(format!(
                "{date} is too recent to archive (its records end at key {end_key}; balances checkpointed through {through})"
            )));
        }
        let mut records = Vec::new();
        for item in inner.db.iterator_cf(
            inner.cf_journal(),
            IteratorMode::From(&seq_key(first_key), rocksdb::Direction::Forward),
        ) {
            let (key, value) = item?;
            let Some(k) = seq_from_key(&key) else { break };
            if k >= end_key {
                break;
            }
            records.push((k, value.to_vec()));
        }
        let header = crate::archive::SegmentHeader {
            date,
            first_key,
            end_key,
            snapshot_sha256,
        };
        let info = crate::archive::write(&inner.archive_dir, &header, records.iter().cloned())
            .map_err(archive_error)?;
        let (check, read_back) =
            crate::archive::read(&inner.archive_dir.join(crate::archive::file_name(date)))
                .map_err(archive_error)?;
        if check != info || read_back != records {
            return Err(StoreError::Inconsistent(format!(
                "the archive segment of {date} does not read back as written"
            )));
        }
        let mut batch = rocksdb::WriteBatch::default();
        batch.delete_range_cf(inner.cf_journal(), seq_key(first_key), seq_key(end_key));
        batch.put_cf(
            inner.cf_meta(),
            META_ARCHIVED_THROUGH,
            codec::encode(Kind::Meta, &BalancesThrough { seq: end_key }),
        );
        write_synced(inner, batch)?;
        inner.archived_through.store(end_key, Ordering::Release);
        inner.db.compact_range_cf(
            inner.cf_journal(),
            Some(seq_key(first_key)),
            Some(seq_key(end_key)),
        );
        Ok(info)
    }

    /// Moves final records of the layers above out of the hot store into `date`'s record
    /// segment ([`crate::shelf`]): `records` (key, value as read, sorted by key) are written,
    /// synced and read back, then deleted from `aux` in one synced write together with the
    /// dedup keys of `transfers` (transfers of journal entries before `dedup_through`, whose
    /// at-most-once window is over: their records are final and shelved). A crash between the
    /// two leaves the records hot and the segment written; the retry rewrites it with a
    /// superset. `min_ms..=max_ms`: the id times of the time-ordered records (point reads by
    /// id look only in segments whose range holds the id's time).
    pub fn shelve(
        &self,
        header: crate::shelf::ShelfHeader,
        records: &crate::shelf::Records,
        transfers: &[engine::TransferId],
        dedup_through: u64,
    ) -> Result<crate::shelf::ShelfInfo> {
        let inner = &self.inner;
        let dir = inner.archive_dir.join(SHELF_DIR);
        // A day shelved before (a retried run, or stragglers that became final since): the
        // new segment holds what the old one held and what is new.
        let path = dir.join(crate::shelf::file_name(header.date));
        let mut all = if path.exists() {
            crate::shelf::read(&path).map_err(archive_error)?.1
        } else {
            Vec::new()
        };
        let mut header = header;
        if let Some((old, _)) = inner
            .shelves
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(h, _)| h.date == header.date)
        {
            header.min_ms = header.min_ms.min(old.min_ms);
            header.max_ms = header.max_ms.max(old.max_ms);
        }
        all.extend(records.iter().cloned());
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all.dedup_by(|b, a| a.0 == b.0);
        let info = crate::shelf::write(&dir, &header, &all).map_err(archive_error)?;
        let (check, read_back) = crate::shelf::read(&path).map_err(archive_error)?;
        if check != info || read_back != all {
            return Err(StoreError::Inconsistent(format!(
                "the record segment of {} does not read back as written",
                header.date
            )));
        }
        {
            let mut shelves = inner.shelves.write().unwrap_or_else(|e| e.into_inner());
            shelves.retain(|(h, _)| h.date != header.date);
            shelves.push((header, path));
            shelves.sort_by_key(|(h, _)| h.date);
        }
        // Every held id into the family first: an id still in the writer's runs, deleted
        // here, would come back with their ingestion.
        crate::dedup::ingest_all(inner)?;
        let mut batch = rocksdb::WriteBatch::default();
        for (key, _) in records {
            batch.delete_cf(inner.cf_aux(), key);
        }
        let mut ids: Vec<[u8; 16]> = transfers.iter().map(|t| t.to_be_bytes()).collect();
        ids.sort_unstable();
        for id in &ids {
            batch.delete_cf(inner.cf_dedup(), id);
        }
        let value = inner
            .db
            .get_cf(inner.cf_meta(), META_DEDUP_PRUNED_THROUGH)?;
        let pruned = meta_seq(value.as_deref(), "dedup_pruned_through")?.unwrap_or(0);
        batch.put_cf(
            inner.cf_meta(),
            META_DEDUP_PRUNED_THROUGH,
            codec::encode(
                Kind::Meta,
                &BalancesThrough {
                    seq: pruned.max(dedup_through),
                },
            ),
        );
        write_synced(inner, batch)?;
        if let (Some((first, _)), Some((last, _))) = (records.first(), records.last()) {
            let mut end = last.clone();
            end.push(0);
            inner
                .db
                .compact_range_cf(inner.cf_aux(), Some(first.as_slice()), Some(end.as_slice()));
        }
        if let (Some(first), Some(last)) = (ids.first(), ids.last()) {
            inner.db.compact_range_cf(
                inner.cf_dedup(),
                Some(first.as_slice()),
                Some(last.as_slice()),
            );
        }
        Ok(info)
    }

    /// A shelved record ([`Store::shelve`]): the newest segment holding `key`. `id_ms`, the
    /// time of the time-ordered id in the key, narrows the search to the segments whose id
    /// range holds it; `None` (index keys such as an `out_trade_no`) searches every segment,
    /// newest first: a cold path, one block read per segment.
    pub fn shelved(&self, key: &[u8], id_ms: Option<u64>) -> Result<Option<Vec<u8>>> {
        let shelves = self
            .inner
            .shelves
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (header, path) in shelves.iter().rev() {
            if id_ms.is_some_and(|ms| ms < header.min_ms || ms > header.max_ms) {
                continue;
            }
            if let Some(v) = crate::shelf::get(path, key).map_err(archive_error)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// `date`'s record segment, if the date is shelved.
    fn shelf_path(&self, date: BusinessDate) -> Option<PathBuf> {
        self.inner
            .shelves
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(h, _)| h.date == date)
            .map(|(_, p)| p.clone())
    }

    /// The record under `key` in `date`'s record segment, if the date is shelved.
    pub fn shelved_at(&self, date: BusinessDate, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.shelf_path(date) {
            Some(path) => crate::shelf::get(&path, key).map_err(archive_error),
            None => Ok(None),
        }
    }

    /// The records whose keys start with `prefix` in the record segments whose id range
    /// holds `id_ms` (the time of the id the prefix is about: a payment's refunds are
    /// shelved with it), newest segment first, each read whole: a cold path.
    pub fn shelved_prefix_near(&self, prefix: &[u8], id_ms: u64) -> Result<crate::shelf::Records> {
        let shelves = self
            .inner
            .shelves
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (header, path) in shelves.iter().rev() {
            if id_ms < header.min_ms || id_ms > header.max_ms {
                continue;
            }
            let (_, records) = crate::shelf::read(path).map_err(archive_error)?;
            let found: crate::shelf::Records = records
                .into_iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .collect();
            if !found.is_empty() {
                return Ok(found);
            }
        }
        Ok(Vec::new())
    }

    /// `date`'s record segment's figures (header and trailer), if the date is shelved.
    pub fn shelf_info(&self, date: BusinessDate) -> Result<Option<crate::shelf::ShelfInfo>> {
        self.shelf_path(date)
            .map(|p| crate::shelf::read_info(&p).map_err(archive_error))
            .transpose()
    }

    /// The dates with a record segment, oldest first.
    pub fn shelved_dates(&self) -> Vec<BusinessDate> {
        self.inner
            .shelves
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(h, _)| h.date)
            .collect()
    }

    /// Deletes every aux record whose key starts with `prefix` (derived records of archived
    /// days), in one synced write.
    pub fn delete_aux_prefix(&self, prefix: &[u8]) -> Result<()> {
        let end = prefix_end(prefix);
        let mut batch = rocksdb::WriteBatch::default();
        if end.is_empty() {
            return Err(StoreError::Inconsistent("an empty prefix".into()));
        }
        batch.delete_range_cf(self.inner.cf_aux(), prefix, &end);
        write_synced(&self.inner, batch)?;
        self.inner
            .db
            .compact_range_cf(self.inner.cf_aux(), Some(prefix), Some(end.as_slice()));
        Ok(())
    }

    /// Records in the journal family (not archived): what the hot store holds of history.
    pub fn hot_journal_records(&self) -> Result<u64> {
        let mut n = 0;
        for item in self
            .inner
            .db
            .iterator_cf(self.inner.cf_journal(), IteratorMode::Start)
        {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// What the hot store holds, by column family and, in `aux`, by key prefix (its first
    /// two bytes, three for expiring ones): (family, prefix, records, key and value bytes).
    /// A full scan: for tests and tools, not the serving path.
    pub fn census(&self) -> Result<Vec<(String, String, u64, u64)>> {
        let inner = &self.inner;
        let mut out: Vec<(String, String, u64, u64)> = Vec::new();
        for name in crate::schema::COLUMN_FAMILIES {
            let cf = inner
                .db
                .cf_handle(name)
                .ok_or_else(|| StoreError::Inconsistent(format!("no column family {name}")))?;
            let mut by: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
            for item in inner.db.iterator_cf(cf, IteratorMode::Start) {
                let (k, v) = item?;
                let prefix = if name == crate::schema::CF_AUX {
                    let n = if k.first() == Some(&crate::schema::AUX_EXPIRING_PREFIX) {
                        3
                    } else {
                        2
                    };
                    String::from_utf8_lossy(&k[..n.min(k.len())]).into_owned()
                } else {
                    String::new()
                };
                let e = by.entry(prefix).or_default();
                e.0 += 1;
                e.1 += (k.len() + v.len()) as u64;
            }
            out.extend(
                by.into_iter()
                    .map(|(prefix, (n, bytes))| (name.to_string(), prefix, n, bytes)),
            );
        }
        Ok(out)
    }

    /// Journal records below this key are archived ([`Store::archive_day`]).
    pub fn archived_through(&self) -> u64 {
        self.inner.archived_through.load(Ordering::Acquire)
    }

    /// Up to `limit` journal entries from sequence number `from` on, in order.
    pub fn entries(&self, from: u64, limit: usize) -> Result<Vec<JournalEntry>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        scan_entries(&self.inner, from.max(1), |entry| {
            out.push(entry);
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// Checks the store from a closed day's snapshot instead of from the first entry:
    /// `base` is every account as of journal entry `seq` (id, currency, GL account,
    /// balance); the entries after `seq` are replayed onto it, each posted transfer must be
    /// indexed at its entry, and every account's balance and GL account must equal its
    /// replay, every currency sum to zero, every GL account equal the sum of its accounts.
    /// What is archived is not read (see [`Store::check_archive`]).
    pub fn verify_since(
        &self,
        seq: u64,
        base: impl IntoIterator<Item = (AccountId, Currency, GlAccount, i64)>,
    ) -> Result<Verification> {
        let mut accounts: HashMap<AccountId, (Currency, GlAccount, i128)> = base
            .into_iter()
            .map(|(id, c, g, b)| (id, (c, g, i128::from(b))))
            .collect();
        let (mut entries, mut transfers) = (0u64, 0u64);
        let mut expected = seq + 1;
        scan_entries(&self.inner, seq + 1, |entry| {
            if entry.seq != expected {
                return Err(StoreError::Inconsistent(format!(
                    "journal entry {} where {expected} was expected",
                    entry.seq
                )));
            }
            expected += 1;
            entries += 1;
            for effect in &entry.effects {
                match effect {
                    engine::Effect::AccountCreated(a) => {
                        if accounts
                            .insert(a.id, (a.currency, a.gl, i128::from(a.balance)))
                            .is_some()
                        {
                            return Err(StoreError::Inconsistent(format!(
                                "account {} created twice (entry {})",
                                a.id, entry.seq
                            )));
                        }
                    }
                    engine::Effect::Posted(t) => {
                        transfers += 1;
                        if self.transfer_seq(t.id)? != Some(entry.seq) {
                            return Err(StoreError::Inconsistent(format!(
                                "transfer {} in entry {} is not indexed there",
                                t.id, entry.seq
                            )));
                        }
                        for p in &t.postings {
                            let a = accounts.get_mut(&p.account).ok_or_else(|| {
                                StoreError::Inconsistent(format!(
                                    "entry {} posts to unknown account {}",
                                    entry.seq, p.account
                                ))
                            })?;
                            a.2 += i128::from(p.amount);
                        }
                    }
                    engine::Effect::GlAssigned { account, gl, .. } => {
                        if let Some(a) = accounts.get_mut(account) {
                            a.1 = *gl;
                        }
                    }
                    engine::Effect::StatusSet { .. } | engine::Effect::DateSwitched { .. } => {}
                }
            }
            Ok(true)
        })?;
        let mut stored = 0u64;
        let mut sums: BTreeMap<Currency, i128> = BTreeMap::new();
        let mut by_gl: BTreeMap<(Currency, GlAccount), i128> = BTreeMap::new();
        self.for_each_account(|a| {
            stored += 1;
            let Some((currency, gl, balance)) = accounts.get(&a.id) else {
                return Err(StoreError::Inconsistent(format!(
                    "account {} is in neither the snapshot nor the journal after it",
                    a.id
                )));
            };
            if (*currency, *gl, *balance) != (a.currency, a.gl, i128::from(a.balance)) {
                return Err(StoreError::Inconsistent(format!(
                    "account {} is {} in GL {} but the snapshot and the journal after it give {balance} in GL {}",
                    a.id,
                    a.balance,
                    a.gl.code(),
                    gl.code()
                )));
            }
            *sums.entry(a.currency).or_default() += i128::from(a.balance);
            *by_gl.entry((a.currency, a.gl)).or_default() += i128::from(a.balance);
            Ok(())
        })?;
        if stored != accounts.len() as u64 {
            return Err(StoreError::Inconsistent(format!(
                "the snapshot and the journal after it hold {} accounts, the store {stored}",
                accounts.len()
            )));
        }
        check_zero(&sums)?;
        by_gl.retain(|_, b| *b != 0);
        check_book(&self.inner.unflushed().book, &by_gl)?;
        Ok(Verification {
            entries,
            transfers,
            accounts: stored,
            trial_balance: sums,
        })
    }

    /// Reads every archive segment whole, checking each block's CRC-32 and each file's
    /// SHA-256 and that they continue one another; answers how many records they hold.
    pub fn check_archive(&self) -> Result<u64> {
        let mut records = 0;
        let mut next = None;
        for path in crate::archive::list(&self.inner.archive_dir).map_err(archive_error)? {
            let (info, _) = crate::archive::read(&path).map_err(archive_error)?;
            if next.is_some_and(|n| n != info.header.first_key) {
                return Err(StoreError::Inconsistent(format!(
                    "archive segment {} starts at key {}, not where the one before ended",
                    path.display(),
                    info.header.first_key
                )));
            }
            next = Some(info.header.end_key);
            records += info.records;
        }
        for path in
            crate::shelf::list(&self.inner.archive_dir.join(SHELF_DIR)).map_err(archive_error)?
        {
            let (info, _) = crate::shelf::read(&path).map_err(archive_error)?;
            records += info.records;
        }
        Ok(records)
    }

    /// Replays the whole journal through the engine and checks that it agrees with the
    /// accounts and the dedup index: sequence numbers contiguous from 1, every posted transfer
    /// indexed at its entry, every account equal to its replay, trial balance zero.
    pub fn verify(&self) -> Result<Verification> {
        let mut ledger = Ledger::new();
        // The GL book replayed beside the ledger. A leg written before the chart has no GL
        // account: it is booked to its account's GL account of the time, which is what the
        // book was opened with when the store gained it (accounts of format 1 decode with
        // the GL account their id implies, and only a later `GlAssigned` moves them).
        let mut book = GlBook::default();
        let mut expected_seq = 1u64;
        let mut transfers = 0u64;
        let value = self
            .inner
            .db
            .get_cf(self.inner.cf_meta(), META_DEDUP_PRUNED_THROUGH)?;
        let pruned = meta_seq(value.as_deref(), "dedup_pruned_through")?.unwrap_or(0);
        self.for_each_entry(1, |entry| {
            if entry.seq != expected_seq {
                return Err(StoreError::Inconsistent(format!(
                    "journal entry {} where {} was expected",
                    entry.seq, expected_seq
                )));
            }
            expected_seq += 1;
            for effect in &entry.effects {
                book.apply(effect, &mut |id| ledger.account(id).cloned())
                    .map_err(|e| {
                        StoreError::Inconsistent(format!("journal entry {}: {e}", entry.seq))
                    })?;
                ledger.replay(effect).map_err(|e| {
                    StoreError::Inconsistent(format!("journal entry {}: {e}", entry.seq))
                })?;
                if let engine::Effect::Posted(t) = effect {
                    transfers += 1;
                    let indexed = self.transfer_seq(t.id)?;
                    // Before `pruned` a transfer's key may have left the index (shelved);
                    // one still there must point at its entry.
                    let pruned_away = entry.seq < pruned && indexed.is_none();
                    if indexed != Some(entry.seq) && !pruned_away {
                        return Err(StoreError::Inconsistent(format!(
                            "transfer {} in entry {} is not indexed there",
                            t.id, entry.seq
                        )));
                    }
                }
            }
            Ok(())
        })?;
        let mut accounts = 0u64;
        self.for_each_account(|stored| {
            accounts += 1;
            match ledger.account(stored.id) {
                Some(replayed) if *replayed == stored => Ok(()),
                Some(replayed) => Err(StoreError::Inconsistent(format!(
                    "account {} is {stored:?} but the journal replays to {replayed:?}",
                    stored.id
                ))),
                None => Err(StoreError::Inconsistent(format!(
                    "account {} is not in the journal",
                    stored.id
                ))),
            }
        })?;
        let replayed_accounts = ledger.accounts().count() as u64;
        if replayed_accounts != accounts {
            return Err(StoreError::Inconsistent(format!(
                "journal creates {replayed_accounts} accounts, store holds {accounts}"
            )));
        }
        let trial_balance = engine::trial_balance(ledger.accounts());
        check_zero(&trial_balance)?;
        let stored: Vec<_> = self.gl_book().balances().collect();
        let replayed: Vec<_> = book.balances().collect();
        if stored != replayed {
            return Err(StoreError::Inconsistent(format!(
                "the GL book holds {stored:?} but the journal replays to {replayed:?}"
            )));
        }
        for (date, day) in self.gl_since(BusinessDate(0))?.days {
            if book.day(date) != Some(&day) && !day.is_empty() {
                return Err(StoreError::Inconsistent(format!(
                    "the GL turnover of {date} differs from the journal's"
                )));
            }
        }
        Ok(Verification {
            entries: expected_seq - 1,
            transfers,
            accounts,
            trial_balance,
        })
    }

    /// Stops the writer after it wrote everything queued so far. Idempotent.
    pub fn shutdown(&self) {
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = self.tx.send(Msg::Stop);
            let _ = handle.join();
            // The writer wrote a final balance checkpoint, without the WAL: the flush makes
            // it durable. It also leaves nothing in the write-ahead log: the next open
            // replays neither, and a tool that opens the files without our merge operator
            // cannot stop at a merge record in the log and drop what follows it.
            if self.inner.poison_reason().is_none() {
                if let Err(e) = self.flush() {
                    tracing::warn!(error = %e, "flush at shutdown failed; the next open replays the journal");
                }
            }
        }
    }

    /// Flushes every column family's memtable to its tables, together (`atomic_flush`):
    /// the balance checkpoints written since the last flush become durable, and the next
    /// open replays the journal only after the last of them.
    pub fn flush(&self) -> Result<()> {
        let cfs: Vec<&ColumnFamily> = COLUMN_FAMILIES
            .iter()
            .map(|name| self.inner.cf(name))
            .collect();
        let mut flush = rocksdb::FlushOptions::default();
        flush.set_wait(true);
        self.inner.db.flush_cfs_opt(&cfs, &flush)?;
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The journal entries of one record: a single entry, or a group's (store layout 3).
fn decode_record(key: &[u8], value: &[u8]) -> Result<Vec<JournalEntry>> {
    let seq = seq_from_key(key)
        .ok_or_else(|| StoreError::Inconsistent(format!("journal key of {} bytes", key.len())))?;
    let corrupt = |source| StoreError::Corrupt {
        cf: CF_JOURNAL,
        key: seq.to_string(),
        source,
    };
    if codec::kind_of(value).map_err(corrupt)? == Kind::JournalGroup as u8 {
        let group: JournalGroup = legacy::decode_group(value).map_err(corrupt)?;
        if group.first_seq != seq || group.entries.is_empty() {
            return Err(StoreError::Inconsistent(format!(
                "journal group of {} entries from {} stored at key {seq}",
                group.entries.len(),
                group.first_seq
            )));
        }
        return Ok((seq..)
            .zip(group.entries)
            .map(|(seq, effects)| JournalEntry { seq, effects })
            .collect());
    }
    let entry: JournalEntry = legacy::decode_entry(value).map_err(corrupt)?;
    if entry.seq != seq {
        return Err(StoreError::Inconsistent(format!(
            "journal entry {} stored at key {seq}",
            entry.seq
        )));
    }
    Ok(vec![entry])
}

/// Calls `f` with every journal entry from `from` on, in order. The record holding `from`
/// may be a group's that starts before it: reading starts at the last key ≤ `from`.
fn for_each_entry(
    inner: &Inner,
    from: u64,
    mut f: impl FnMut(JournalEntry) -> Result<()>,
) -> Result<()> {
    scan_entries(inner, from, |entry| f(entry).map(|()| true))
}

/// Calls `f` with every journal entry from `from` on, in order, while it answers `true`.
fn scan_entries(
    inner: &Inner,
    from: u64,
    mut f: impl FnMut(JournalEntry) -> Result<bool>,
) -> Result<()> {
    // What is archived comes from the segments, in order; the rest from the journal family.
    let archived = inner.archived_through.load(Ordering::Acquire);
    if from < archived {
        for path in crate::archive::list(&inner.archive_dir).map_err(archive_error)? {
            // A segment wholly before `from` is skipped on its header alone.
            let header = crate::archive::read_header(&path).map_err(archive_error)?;
            if header.end_key <= from {
                continue;
            }
            let records = segment(inner, &path)?;
            for (key, value) in records.iter() {
                // A record holds entries from its key on: skip records wholly before `from`.
                let entries = decode_record(&seq_key(*key), value)?;
                for entry in entries {
                    if entry.seq >= from && !f(entry)? {
                        return Ok(());
                    }
                }
            }
        }
        return scan_hot(inner, archived.max(from), &mut f);
    }
    scan_hot(inner, from, &mut f)
}

/// A segment's records, decoded and checked (the last one read is kept).
fn segment(inner: &Inner, path: &Path) -> Result<Arc<crate::archive::Records>> {
    let mut cache = inner
        .segment_cache
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((p, records)) = cache.as_ref() {
        if p == path {
            return Ok(Arc::clone(records));
        }
    }
    let (_, records) = crate::archive::read(path).map_err(archive_error)?;
    let records = Arc::new(records);
    *cache = Some((path.to_path_buf(), Arc::clone(&records)));
    Ok(records)
}

fn archive_error(e: crate::archive::SegmentError) -> StoreError {
    StoreError::Inconsistent(format!("archive segment {e}"))
}

fn read_archived_through(inner: &Inner) -> Result<u64> {
    let value = inner.db.get_cf(inner.cf_meta(), META_ARCHIVED_THROUGH)?;
    Ok(meta_seq(value.as_deref(), "archived_through")?.unwrap_or(0))
}

/// A journal position stored in the meta family ([`BalancesThrough`]-shaped): `None` when
/// absent, an error naming `key` when it does not decode.
pub(crate) fn meta_seq(value: Option<&[u8]>, key: &str) -> Result<Option<u64>> {
    value
        .map(|bytes| {
            codec::decode::<BalancesThrough>(Kind::Meta, bytes)
                .map(|b| b.seq)
                .map_err(|source| StoreError::Corrupt {
                    cf: CF_META,
                    key: key.into(),
                    source,
                })
        })
        .transpose()
}

/// Each GL account of the book must hold the sum of its ledger accounts (`by_gl`, non-zero
/// sums only): control account = sub-ledger. The error names the first that does not.
fn check_book(book: &GlBook, by_gl: &BTreeMap<(Currency, GlAccount), i128>) -> Result<()> {
    let book: BTreeMap<(Currency, GlAccount), i128> =
        book.balances().map(|(c, g, b)| ((c, g), b)).collect();
    let differs = by_gl
        .keys()
        .chain(book.keys())
        .find(|k| book.get(k) != by_gl.get(k));
    match differs {
        None => Ok(()),
        Some((currency, gl)) => Err(StoreError::Inconsistent(format!(
            "GL {} in {currency}: the GL book holds {}, its accounts sum to {}",
            gl.code(),
            book.get(&(*currency, *gl)).copied().unwrap_or(0),
            by_gl.get(&(*currency, *gl)).copied().unwrap_or(0),
        ))),
    }
}

/// [`scan_entries`] over the journal family only.
fn scan_hot(
    inner: &Inner,
    from: u64,
    f: &mut impl FnMut(JournalEntry) -> Result<bool>,
) -> Result<()> {
    let from_key = seq_key(from);
    let start = inner
        .db
        .iterator_cf(
            inner.cf_journal(),
            IteratorMode::From(&from_key, rocksdb::Direction::Reverse),
        )
        .next()
        .transpose()?
        .map(|(key, _)| key.to_vec())
        .unwrap_or_else(|| from_key.to_vec());
    let records = inner.db.iterator_cf(
        inner.cf_journal(),
        IteratorMode::From(&start, rocksdb::Direction::Forward),
    );
    for item in records {
        let (key, value) = item?;
        for entry in decode_record(&key, &value)? {
            if entry.seq >= from && !f(entry)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// [`for_each_entry`], checking that the entries are contiguous from `from`.
pub(crate) fn for_each_contiguous_entry(
    inner: &Inner,
    from: u64,
    mut f: impl FnMut(JournalEntry) -> Result<()>,
) -> Result<()> {
    let mut expected = from;
    for_each_entry(inner, from, |entry| {
        if entry.seq != expected {
            return Err(StoreError::Inconsistent(format!(
                "journal gap: entry {} follows {}",
                entry.seq,
                expected - 1
            )));
        }
        expected += 1;
        f(entry)
    })
}

/// Builds the writer's filter of the transfer ids in the dedup index ([`crate::idfilter`])
/// from a scan of its keys, on a thread of its own while the store serves: a store with
/// millions of ids would otherwise open seconds later (7.7M ids: 2.3 s of a 3.1 s open,
/// caches cold). The writer looks every id up in RocksDB meanwhile, and keeps the ids it
/// writes, to add them when the filter arrives ([`writer::IdFilterState`]): the scan sees at
/// least every key written before it started, the writer's list every key after.
/// `cancel`: the writer stopped, stop scanning. The scan's thread is returned to be joined
/// by the writer's as it stops.
fn spawn_dedup_filter(
    inner: &Arc<Inner>,
    bytes_max: usize,
    cancel: Arc<std::sync::atomic::AtomicBool>,
) -> (writer::IdFilterState, Option<JoinHandle<()>>) {
    if !crate::idfilter::fits(bytes_max) {
        return (writer::IdFilterState::Off, None);
    }
    let (built, rx) = crossbeam_channel::bounded(1);
    let inner = Arc::clone(inner);
    let spawned = std::thread::Builder::new()
        .name("rongpay-idfilter".to_string())
        .spawn(move || {
            match dedup_filter(&inner, bytes_max, &cancel) {
                Ok(Some(filter)) => {
                    let _ = built.send(filter);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    error = %e,
                    "the dedup filter could not be built: every transfer id is looked up in RocksDB"
                ),
            }
            inner
                .stats
                .dedup_filter_built
                .store(true, Ordering::Release);
        });
    match spawned {
        Ok(scan) => (writer::IdFilterState::building(rx), Some(scan)),
        Err(e) => {
            tracing::warn!(error = %e, "no thread for the dedup filter: every transfer id is looked up in RocksDB");
            (writer::IdFilterState::Off, None)
        }
    }
}

/// Builds the filter of the aux keys requests look up and almost never find
/// ([`crate::keyfilter`]) from a scan of their prefixes, on a thread of its own while the
/// store serves (as the dedup filter is): the writer adds the keys it writes meanwhile.
/// The thread is returned to be joined by the writer's as it stops (`cancel`).
fn spawn_key_filter(
    inner: &Arc<Inner>,
    bytes_max: usize,
    cancel: Arc<std::sync::atomic::AtomicBool>,
) -> Option<JoinHandle<()>> {
    if !crate::idfilter::fits(bytes_max) {
        inner.stats.key_filter_built.store(true, Ordering::Release);
        return None;
    }
    let scanning = Arc::clone(inner);
    let spawned = std::thread::Builder::new()
        .name("rongpay-keyfilter".to_string())
        .spawn(move || {
            let inner = scanning;
            match key_filter(&inner, bytes_max, &cancel) {
                Ok(Some(built)) => {
                    let keys = built.len();
                    let bytes = inner.key_filter.install(built);
                    tracing::info!(keys, bytes, "aux key filter built");
                }
                Ok(None) => inner.key_filter.give_up(),
                Err(e) => {
                    inner.key_filter.give_up();
                    tracing::warn!(
                        error = %e,
                        "the aux key filter could not be built: every idempotency, out_trade_no and customer-link lookup goes to RocksDB"
                    );
                }
            }
            inner.stats.key_filter_built.store(true, Ordering::Release);
        });
    match spawned {
        Ok(scan) => Some(scan),
        Err(e) => {
            inner.key_filter.give_up();
            inner.stats.key_filter_built.store(true, Ordering::Release);
            tracing::warn!(error = %e, "no thread for the aux key filter: every lookup goes to RocksDB");
            None
        }
    }
}

/// Bytes of the aux key filter (a gauge, [`crate::keyfilter`]).
pub use crate::keyfilter::KEY_FILTER_BYTES;

/// 1 while the data dir's file system is mounted with online `discard`, else 0
/// ([`crate::mounts`]).
pub const STORE_ONLINE_DISCARD: &str = "rongpay_store_online_discard";

/// Says, once at open, whether the data dir's file system discards blocks as they are freed:
/// a warning and [`STORE_ONLINE_DISCARD`] at 1 if so. The journal's synced writes queue behind
/// those discards (crate::mounts).
fn report_mount(path: &Path) {
    let mount = crate::mounts::of(path);
    let discard = mount
        .as_ref()
        .is_some_and(crate::mounts::Mount::online_discard);
    metrics::gauge!(STORE_ONLINE_DISCARD).set(if discard { 1.0 } else { 0.0 });
    match mount {
        Some(m) if discard => tracing::warn!(
            mount = %m.point.display(),
            device = %m.source,
            fs = %m.fs_type,
            "the data dir's file system is mounted with online discard: every file deleted there \
             (old WAL and table files) sends the disk a discard that journal syncs wait behind, \
             holding every payment in flight; remount it without discard and trim on a timer \
             (fstrim.timer)"
        ),
        Some(m) => {
            tracing::info!(mount = %m.point.display(), device = %m.source, fs = %m.fs_type, "data dir's file system")
        }
        None => {}
    }
}

/// The key filter from a scan of the filtered prefixes' keys; `None` when cancelled.
fn key_filter(
    inner: &Inner,
    bytes_max: usize,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<Option<crate::idfilter::IdFilter>> {
    let cf = inner.cf_aux();
    let mut filter = crate::keyfilter::KeyFilter::empty(estimated_keys(inner, cf)?, bytes_max);
    for prefix in crate::keyfilter::FILTERED {
        let scanned = scan_keys(inner, cf, prefix, Some(prefix_end(prefix)), cancel, |key| {
            crate::keyfilter::KeyFilter::add_scanned(&mut filter, key);
            Ok(!filter.saturated())
        })?;
        match scanned {
            Scanned::Cancelled => return Ok(None),
            Scanned::Stopped => break,
            Scanned::All => {}
        }
    }
    Ok(Some(filter))
}

/// How a [`scan_keys`] ended.
enum Scanned {
    All,
    /// Its callback asked to stop (a filter saturated).
    Stopped,
    /// `cancel` was set: the writer stopped.
    Cancelled,
}

/// Calls `each` with every key of `cf` from `from` (below `upper` when given), for a filter
/// built after open: a total-order scan that reads ahead and leaves the block cache to the
/// requests. `each` answers whether to go on; `cancel` is checked every 64Ki keys.
fn scan_keys(
    inner: &Inner,
    cf: &ColumnFamily,
    from: &[u8],
    upper: Option<Vec<u8>>,
    cancel: &std::sync::atomic::AtomicBool,
    mut each: impl FnMut(&[u8]) -> Result<bool>,
) -> Result<Scanned> {
    let mut read = ReadOptions::default();
    read.set_total_order_seek(true);
    read.fill_cache(false);
    read.set_readahead_size(4 << 20);
    if let Some(upper) = upper {
        read.set_iterate_upper_bound(upper);
    }
    let mut iter = inner.db.raw_iterator_cf_opt(cf, read);
    iter.seek(from);
    let mut scanned = 0u64;
    while let Some(key) = iter.key() {
        if !each(key)? {
            return Ok(Scanned::Stopped);
        }
        scanned += 1;
        if scanned.is_multiple_of(65_536) && cancel.load(Ordering::Acquire) {
            return Ok(Scanned::Cancelled);
        }
        iter.next();
    }
    iter.status()?;
    Ok(Scanned::All)
}

/// RocksDB's estimate of the keys in a column family (what a filter is first sized for).
fn estimated_keys(inner: &Inner, cf: &ColumnFamily) -> Result<usize> {
    let estimate = inner
        .db
        .property_int_value_cf(cf, "rocksdb.estimate-num-keys")?
        .unwrap_or(0);
    Ok(usize::try_from(estimate).unwrap_or(usize::MAX))
}

/// The first key after every key that starts with `prefix` (empty when `prefix` is empty
/// or all 0xff: no such key).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    end
}

/// The filter from a scan of the dedup index's keys; `None` when cancelled.
fn dedup_filter(
    inner: &Inner,
    bytes_max: usize,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<Option<crate::idfilter::IdFilter>> {
    let started = Instant::now();
    let cf = inner.cf_dedup();
    let mut filter = crate::idfilter::IdFilter::new(estimated_keys(inner, cf)?, bytes_max);
    let scanned = scan_keys(inner, cf, &[], None, cancel, |key| {
        let id: &[u8; 16] = key
            .try_into()
            .map_err(|_| StoreError::Inconsistent(format!("a dedup key of {} bytes", key.len())))?;
        filter.insert(id);
        Ok(!filter.saturated())
    })?;
    if let Scanned::Cancelled = scanned {
        return Ok(None);
    }
    tracing::info!(
        ids = filter.len(),
        bytes = filter.bytes(),
        saturated = filter.saturated(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "dedup filter built"
    );
    Ok(Some(filter))
}

fn for_each_account(inner: &Inner, mut f: impl FnMut(Account) -> Result<()>) -> Result<()> {
    // The whole scan under the read lock: one consistent cut, no checkpoint half seen.
    let unflushed = inner.unflushed();
    // Whole-key bloom filters are on: a full scan asks for total order explicitly.
    let mut read = ReadOptions::default();
    read.set_total_order_seek(true);
    for item in inner
        .db
        .iterator_cf_opt(inner.cf_accounts(), read, IteratorMode::Start)
    {
        let (key, value) = item?;
        if key[..] == ACCOUNTS_THROUGH_KEY {
            continue;
        }
        let mut account: Account =
            legacy::decode_account(&value).map_err(|source| StoreError::Corrupt {
                cf: CF_ACCOUNTS,
                key: format!("{key:02x?}"),
                source,
            })?;
        if account.id.to_be_bytes()[..] != key[..] {
            return Err(StoreError::Inconsistent(format!(
                "account {} stored under another key",
                account.id
            )));
        }
        unflushed.apply(&mut account)?;
        f(account)?;
    }
    Ok(())
}

/// Checks the layout version, migrating a layout-1 store's balances, then the journal's tail
/// ([`check_tail`]). Answers the last entry and the layout found (`None`: a new store). The
/// label [`LAYOUT_VERSION`] is written with the GL book ([`check_trial_balance`]), so a
/// store labelled 4 always has one.
fn check_format_and_tail(inner: &Inner) -> Result<(u64, Option<u8>)> {
    let meta = inner.cf_meta();
    let last_key = inner
        .db
        .iterator_cf(inner.cf_journal(), IteratorMode::End)
        .next()
        .transpose()?
        .map(|(k, _)| k);
    let mut migrate = false;
    let mut layout = None;
    match inner.db.get_cf(meta, META_FORMAT_VERSION)? {
        Some(bytes) => {
            let found: FormatMeta =
                codec::decode(Kind::Meta, &bytes).map_err(|source| StoreError::Corrupt {
                    cf: CF_META,
                    key: "format_version".into(),
                    source,
                })?;
            layout = Some(found.format_version);
            match found.format_version {
                // Layout 2's journal records are single entries, which this build reads;
                // layout 3 lacks only the GL book.
                LAYOUT_VERSION | LAYOUT_DEDUP_RUNS | LAYOUT_GL_BOOK | LAYOUT_GROUP_RECORDS
                | LAYOUT_CHECKPOINTED => {}
                LAYOUT_PER_GROUP_BALANCES => migrate = true,
                other => {
                    return Err(StoreError::Inconsistent(format!(
                    "store format {other} is not supported by this build (format {LAYOUT_VERSION})"
                )))
                }
            }
        }
        None if last_key.is_none() => write_layout(inner, LAYOUT_GROUP_RECORDS, Some(0), None)?,
        None => {
            return Err(StoreError::Inconsistent(
                "journal present but format version missing".into(),
            ));
        }
    }
    let last = check_tail(inner, last_key)?;
    if migrate {
        // Layout 1 wrote every group's balance changes with the group: the accounts family
        // is complete through the last entry.
        write_layout(inner, LAYOUT_GROUP_RECORDS, Some(last), None)?;
        tracing::info!(
            last_seq = last,
            "store migrated to layout {LAYOUT_GROUP_RECORDS} (checkpointed balances)"
        );
        layout = Some(LAYOUT_GROUP_RECORDS);
    } else if layout == Some(LAYOUT_CHECKPOINTED) {
        // Only the label changes: a layout-2 build must not open a store that may now hold
        // group records it cannot read.
        write_layout(inner, LAYOUT_GROUP_RECORDS, None, None)?;
    }
    Ok((last, layout))
}

/// Labels the store with layout `label`, and, when given, its balances complete through
/// `through` and its GL book, in one synced write.
fn write_layout(
    inner: &Inner,
    label: u8,
    through: Option<u64>,
    book: Option<&GlBook>,
) -> Result<()> {
    let mut batch = rocksdb::WriteBatch::default();
    let layout = FormatMeta {
        format_version: label,
    };
    batch.put_cf(
        inner.cf_meta(),
        META_FORMAT_VERSION,
        codec::encode(Kind::Meta, &layout),
    );
    if let Some(seq) = through {
        // The accounts family complete through `seq`, and the book's position with it.
        batch.put_cf(
            inner.cf_meta(),
            META_BALANCES_THROUGH,
            writer::through_value(seq),
        );
        batch.put_cf(
            inner.cf_accounts(),
            ACCOUNTS_THROUGH_KEY,
            writer::through_value(seq),
        );
    }
    if let Some(book) = book {
        // Where the book is written whole (a store gaining it), it is as of the checkpoint.
        let at = match through {
            Some(seq) => seq,
            None => book_through(inner)?.unwrap_or(0),
        };
        writer::add_book(inner, &mut batch, book, at);
    }
    write_synced(inner, batch)
}

/// The GL book as of the balance checkpoint: its balances, and the newest date's turnover
/// (older dates are final and stay in the meta family, read by [`Store::gl_day`]).
fn load_book(inner: &Inner) -> Result<GlBook> {
    let corrupt = |key: &str| {
        let key = key.to_string();
        move |source| StoreError::Corrupt {
            cf: CF_META,
            key,
            source,
        }
    };
    let Some(bytes) = inner.db.get_cf(inner.cf_meta(), META_GL_BALANCES)? else {
        return Err(StoreError::Inconsistent(
            "the GL book is missing from a store of layout 4 or later".into(),
        ));
    };
    let balances: GlBalances = codec::decode(Kind::Meta, &bytes).map_err(corrupt("gl_balances"))?;
    let newest = gl_days_from(inner, BusinessDate(0))?.pop();
    Ok(GlBook::from_parts(balances.rows, newest))
}

/// The persisted turnover of every date from `from` on, oldest first.
fn gl_days_from(inner: &Inner, from: BusinessDate) -> Result<Vec<(BusinessDate, Turnover)>> {
    let mut days = Vec::new();
    let start = gl_day_key(from);
    for item in inner.db.iterator_cf(
        inner.cf_meta(),
        IteratorMode::From(&start, rocksdb::Direction::Forward),
    ) {
        let (key, value) = item?;
        let Some(date) = gl_day_of_key(&key) else {
            break;
        };
        let day: Turnover =
            codec::decode(Kind::Meta, &value).map_err(|source| StoreError::Corrupt {
                cf: CF_META,
                key: format!("gl_day/{date}"),
                source,
            })?;
        days.push((date, day));
    }
    Ok(days)
}

/// One synced write outside the writer thread (open, before the writer starts).
pub(crate) fn write_synced(inner: &Inner, batch: rocksdb::WriteBatch) -> Result<()> {
    let mut o = rocksdb::WriteOptions::default();
    o.set_sync(true);
    inner.db.write_opt(batch, &o)?;
    Ok(())
}

/// The GL book's position ([`META_BALANCES_THROUGH`]), if the store has one.
fn book_through(inner: &Inner) -> Result<Option<u64>> {
    let value = inner.db.get_cf(inner.cf_meta(), META_BALANCES_THROUGH)?;
    meta_seq(value.as_deref(), "balances_through")
}

/// The accounts' position ([`ACCOUNTS_THROUGH_KEY`]), if the family has one.
pub(crate) fn accounts_through(inner: &Inner) -> Result<Option<u64>> {
    let value = inner.db.get_cf(inner.cf_accounts(), ACCOUNTS_THROUGH_KEY)?;
    meta_seq(value.as_deref(), "accounts_through")
}

/// Brings the accounts family and the GL book up to the last journal entry: replays the
/// entries after the accounts' position (a crash lost the deltas not yet checkpointed,
/// never the journal) into the accounts, and those after the book's position
/// ([`META_BALANCES_THROUGH`], never behind the accounts') into the book, in one pass; then
/// writes both as a new checkpoint (with the accounts' position where a store of layout 5
/// or older had none: its one position was both's). Answers how many entries were
/// replayed into the accounts.
fn replay_unflushed(inner: &Inner, last: u64, has_book: bool, layout: Option<u8>) -> Result<u64> {
    let book_through = book_through(inner)?.ok_or_else(|| {
        StoreError::Inconsistent("the balance checkpoint's position is missing".into())
    })?;
    let (through, had_position) = match accounts_through(inner)? {
        Some(seq) => (seq, true),
        None if layout == Some(LAYOUT_VERSION) => {
            return Err(StoreError::Inconsistent(
                "the accounts family's checkpoint position is missing".into(),
            ))
        }
        None => (book_through, false),
    };
    if book_through > last {
        return Err(StoreError::Inconsistent(format!(
            "balances checkpointed through entry {book_through}, past the journal's last entry {last}"
        )));
    }
    if through > book_through {
        return Err(StoreError::Inconsistent(format!(
            "the accounts are checkpointed through entry {through}, past the GL book's {book_through}"
        )));
    }
    if through == last && had_position {
        return Ok(0);
    }
    let mut deltas = Deltas::default();
    let mut book = std::mem::take(&mut inner.unflushed_mut().book);
    if through < last {
        for_each_contiguous_entry(inner, through + 1, |entry| {
            for effect in &entry.effects {
                if has_book && entry.seq > book_through {
                    // The account as of just before the effect: the checkpointed record
                    // plus what the replay added so far (every entry after the accounts'
                    // position, and the book's is not before it).
                    let mut at = |id: AccountId| {
                        let bytes = inner
                            .db
                            .get_cf(inner.cf_accounts(), id.to_be_bytes())
                            .ok()??;
                        let mut account = legacy::decode_account(&bytes).ok()?;
                        writer::apply_delta(&mut account, &deltas).ok()?;
                        Some(account)
                    };
                    book.apply(effect, &mut at).map_err(|e| {
                        StoreError::Inconsistent(format!("journal entry {}: {e}", entry.seq))
                    })?;
                }
                writer::add_effect(&mut deltas, effect);
            }
            Ok(())
        })?;
    }
    let mut batch = rocksdb::WriteBatch::default();
    writer::add_checkpoint(inner, &mut batch, deltas.iter(), last);
    if has_book {
        writer::add_book(inner, &mut batch, &book, last);
        book.forget_all_but_newest();
    } else {
        batch.put_cf(
            inner.cf_meta(),
            META_BALANCES_THROUGH,
            writer::through_value(last),
        );
    }
    write_synced(inner, batch)?;
    inner.unflushed_mut().book = book;
    Ok(last - through)
}

/// Checks the journal's tail: the last [`RECOVERY_TAIL_ENTRIES`] entries decode, carry their
/// own key, and are contiguous. Answers the last entry's sequence number (0: none).
fn check_tail(inner: &Inner, last_key: Option<Box<[u8]>>) -> Result<u64> {
    let Some(last_key) = last_key else {
        return Ok(0);
    };
    let value = inner
        .db
        .get_cf(inner.cf_journal(), &last_key)?
        .unwrap_or_default();
    let last = decode_record(&last_key, &value)?
        .last()
        .map(|entry| entry.seq)
        .expect("a journal record holds at least one entry");
    let from = last.saturating_sub(RECOVERY_TAIL_ENTRIES - 1).max(1);
    for_each_contiguous_entry(inner, from, |_| Ok(()))?;
    Ok(last)
}

/// Sums every account per currency (each must be zero) and per GL account: the GL book
/// must hold exactly those sums (each control account equals its sub-ledger). A store
/// without a book (`has_book` false) gets it here, from those sums, with its new layout
/// label in the same write.
fn check_trial_balance(inner: &Inner, has_book: bool) -> Result<(u64, BTreeMap<Currency, i128>)> {
    let mut sums = BTreeMap::new();
    let mut by_gl: BTreeMap<(Currency, GlAccount), i128> = BTreeMap::new();
    let mut accounts = 0u64;
    for_each_account(inner, |a| {
        accounts += 1;
        *sums.entry(a.currency).or_insert(0i128) += i128::from(a.balance);
        *by_gl.entry((a.currency, a.gl)).or_insert(0i128) += i128::from(a.balance);
        Ok(())
    })?;
    check_zero(&sums)?;
    by_gl.retain(|_, b| *b != 0);
    if has_book {
        check_book(&inner.unflushed().book, &by_gl)?;
    } else {
        let book = GlBook::from_parts(by_gl.into_iter().map(|((c, g), b)| (c, g, b)), []);
        write_layout(inner, LAYOUT_VERSION, None, Some(&book))?;
        tracing::info!("store gained its GL book (layout {LAYOUT_VERSION})");
        inner.unflushed_mut().book = book;
    }
    Ok((accounts, sums))
}

fn check_zero(sums: &BTreeMap<Currency, i128>) -> Result<()> {
    for (currency, sum) in sums {
        if *sum != 0 {
            return Err(StoreError::Inconsistent(format!(
                "trial balance of {currency} is {sum} minor units, not zero"
            )));
        }
    }
    Ok(())
}

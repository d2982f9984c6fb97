//! The group-commit writer: one thread owns every write to the store.
//!
//! Submitters put commit units on a bounded channel and wait on a oneshot. The writer takes
//! the first unit, drains whatever queued behind it (up to `batch_units_max`), writes the lot
//! as one RocksDB `WriteBatch` with `sync = true`, and only then acknowledges each submitter
//! with its sequence number. While one sync is in flight the next group queues up, so the
//! batch size adapts to the load: one unit per sync when idle, thousands under pressure.
//!
//! Before its write a group may also take the units the other threads of a busy core
//! submit while the writer yields to them ([`CommitDelay`]): fewer, larger groups leave more
//! of a saturated core to the requests.
//!
//! A failed write or sync poisons the store for good: the failed group and every later unit
//! are refused. We never retry an fsync: after a failed fsync the kernel may have dropped the
//! dirty pages, and a retry that "succeeds" would acknowledge data that is not on disk.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bincode::Encode;
use crossbeam_channel::Receiver;
use std::collections::{HashMap, HashSet};

use engine::gl::GlBook;
use engine::{Account, AccountId, Effect, TransferId};
use rocksdb::{WriteBatch, WriteOptions};
use tokio::sync::oneshot;

use crate::codec::{self, Kind};
use crate::error::{Result, StoreError};
use crate::idfilter::IdFilter;
use crate::schema::{
    gl_day_key, seq_key, AccountDelta, BalancesThrough, GlBalances, ACCOUNTS_THROUGH_KEY,
    META_BALANCES_THROUGH, META_GL_BALANCES,
};
use crate::store::Inner;

/// Everything that must become durable together: effects for the journal and the accounts,
/// plus records of the layers above (idempotency keys, API objects) that must never be
/// separated from the effects they describe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitUnit {
    pub effects: Vec<Effect>,
    /// Key/value pairs for the `aux` column family.
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// A note of the layers above on this unit's journal entry (empty: none), e.g. a batch
    /// transfer's client id and reference ([`crate::records::Note`], encoded). The writer
    /// keeps the notes of a group's written units together, in one `aux` record keyed by the
    /// first one's sequence number ([`crate::records::JournalNotes`]): a unit's note costs
    /// no key of its own, and the keys ascend as the journal's do.
    pub note: Vec<u8>,
}

impl CommitUnit {
    pub fn effect(effect: Effect) -> CommitUnit {
        CommitUnit {
            effects: vec![effect],
            ..CommitUnit::default()
        }
    }

    /// Transfer ids this unit posts.
    pub fn transfer_ids(&self) -> impl Iterator<Item = TransferId> + '_ {
        self.effects.iter().filter_map(|e| match e {
            Effect::Posted(t) => Some(t.id),
            _ => None,
        })
    }
}

/// The acknowledgement of one unit: its journal sequence number once synced.
pub type Ack = oneshot::Receiver<Result<u64>>;

/// The acknowledgement of units submitted together: once their group is synced, one outcome
/// per unit in submission order (its sequence number, or [`StoreError::DuplicateTransfer`]
/// for a unit that was not written); the outer error when the group write failed.
pub type BatchAck = oneshot::Receiver<Result<Vec<Result<u64>>>>;

pub(crate) enum Reply {
    One(oneshot::Sender<Result<u64>>),
    Many(oneshot::Sender<Result<Vec<Result<u64>>>>),
}

impl Reply {
    fn fail(self, e: StoreError) {
        match self {
            Reply::One(tx) => {
                let _ = tx.send(Err(e));
            }
            Reply::Many(tx) => {
                let _ = tx.send(Err(e));
            }
        }
    }
}

pub(crate) enum Msg {
    Commit(Vec<CommitUnit>, Reply),
    /// Finish what is queued, then exit.
    Stop,
}

/// A journal entry borrowed from a unit: encodes exactly like [`crate::JournalEntry`].
#[derive(Encode)]
struct JournalEntryRef<'a> {
    seq: u64,
    effects: &'a [Effect],
}

/// A group's journal entries borrowed from its units: encodes exactly like
/// [`crate::schema::JournalGroup`].
#[derive(Encode)]
struct JournalGroupRef<'a> {
    first_seq: u64,
    entries: Vec<&'a [Effect]>,
}

/// Seconds one group write took, `fdatasync` included (a histogram).
pub const WAL_SYNC_SECONDS: &str = "rongpay_wal_sync_duration_seconds";
/// Commit units per synced group write (a histogram).
pub const WAL_BATCH_UNITS: &str = "rongpay_wal_batch_units";
/// Bytes per synced group write (a histogram).
pub const WAL_BATCH_BYTES: &str = "rongpay_wal_batch_bytes";
/// RocksDB records (puts and merge operands) per synced group write (a histogram).
pub const WAL_BATCH_KEYS: &str = "rongpay_wal_batch_keys";
/// Balance checkpoints written (a counter).
pub const WAL_CHECKPOINTS: &str = "rongpay_wal_checkpoints_total";
/// Of those, checkpoints ingested as table files (a counter).
pub const WAL_CHECKPOINTS_INGESTED: &str = "rongpay_wal_checkpoints_ingested_total";
/// RocksDB records (merge operands, the GL book, the checkpoint's mark) written by balance
/// checkpoints (a counter): per commit unit, what balances cost besides the group write.
pub const WAL_CHECKPOINT_KEYS: &str = "rongpay_wal_checkpoint_keys_total";
/// Transfer ids checked for duplicates (a counter), by what answered: `filter` (the id
/// filter ruled it out in memory) or `index` (looked up in the dedup index).
pub const WAL_DEDUP_IDS: &str = "rongpay_wal_dedup_ids_total";
/// Seconds a group waited for more units before its write, for each group that lingered
/// ([`CommitDelay`]), a histogram.
pub const WAL_COMMIT_DELAY_SECONDS: &str = "rongpay_wal_commit_delay_seconds";
/// Bytes of the writer's id filter (a gauge): 0 while it is being built after open, or off.
pub const WAL_DEDUP_FILTER_BYTES: &str = "rongpay_wal_dedup_filter_bytes";
/// Transfer ids durable in the journal and held in the writer's runs, not yet ingested into
/// the dedup family (a gauge; bounded by `crate::dedup::HELD_IDS_MAX`).
pub const WAL_DEDUP_HELD_IDS: &str = "rongpay_wal_dedup_held_ids";
/// Transfer ids ingested from the writer's runs into the dedup family (a counter).
pub const WAL_DEDUP_INGESTED_IDS: &str = "rongpay_wal_dedup_ingested_ids_total";
/// Group writes that met a RocksDB write stall (flushes or compactions behind) and waited.
pub const WAL_WRITE_STALLS: &str = "rongpay_wal_write_stalls_total";

/// How long a group may wait for more units before it is written, while other threads of
/// the writer's core have work: the group-commit counterpart of PostgreSQL's `commit_delay`,
/// without a guess at when to wait.
///
/// Without it a group is what queued while the last one was written. On a saturated core
/// whose requests also wait for something else (a card payment waits ≈ 1 ms for its
/// channel) that is a few dozen units, each group paying the writer's fixed cost of a synced
/// write (≈ 130 µs of CPU besides ≈ 3 µs a unit, docs/BENCHMARKS.md session 49). With it,
/// after draining the queue the writer yields its core (`sched_yield`) and takes what the
/// threads that ran meanwhile submitted, again while each yield brings more, until one
/// brings nothing, `max` has passed or the group is full. A yield returns at once when no
/// other thread is runnable on the core, so a server whose clients are all in the group
/// already writes at once: the wait never leaves the core idle, unlike a timed one (which at
/// 64 closed-loop connections of balance payments cost 3–20% of their rate, session 50). A
/// quiet server's groups, of one unit, do not linger at all ([`LINGER_AFTER_UNITS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitDelay {
    /// The longest a group waits; zero turns the delay off.
    pub max: Duration,
}

impl CommitDelay {
    /// Never waits.
    pub const OFF: CommitDelay = CommitDelay {
        max: Duration::ZERO,
    };
    /// payd's default (its `commit_delay_us`); [`crate::StoreOptions`]'s default is
    /// [`CommitDelay::OFF`], which the engine's load test and the tests' stores keep.
    pub const DEFAULT: CommitDelay = CommitDelay {
        max: Duration::from_millis(1),
    };
}

/// A group lingers ([`CommitDelay`]) only when the one before it held at least this many
/// units: at a rate where groups hold one payment, nothing would come, and a yield to a
/// thread that happens to run (a response being written) would only delay the write.
const LINGER_AFTER_UNITS: usize = 2;

/// Takes more units into `group` while they keep coming ([`CommitDelay`]), calling `yield_core`
/// (`std::thread::yield_now`) before each look. Answers whether the writer is to stop after
/// this group (`Stop` came, or every sender is gone).
fn linger(
    rx: &Receiver<Msg>,
    group: &mut Group,
    delay: &CommitDelay,
    units_max: usize,
    mut yield_core: impl FnMut(),
) -> bool {
    let started = Instant::now();
    let mut stop = false;
    while group.units < units_max && started.elapsed() < delay.max {
        yield_core();
        let before = group.units;
        while group.units < units_max {
            match rx.try_recv() {
                Ok(Msg::Commit(units, reply)) => group.push(units, reply),
                Ok(Msg::Stop) | Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    stop = true;
                    break;
                }
                Err(crossbeam_channel::TryRecvError::Empty) => break,
            }
        }
        if stop || group.units == before {
            break;
        }
    }
    stop
}

pub(crate) fn run(
    inner: Arc<Inner>,
    rx: Receiver<Msg>,
    batch_units_max: usize,
    delay: CommitDelay,
    mut filter: IdFilterState,
    mut flush_priority: Option<crate::flushprio::FlushPriority>,
    ingester: (crossbeam_channel::Sender<()>, std::thread::JoinHandle<()>),
) {
    let (ingest, ingester) = ingester;
    let wal_metrics = WalMetrics {
        sync: metrics::histogram!(WAL_SYNC_SECONDS),
        units: metrics::histogram!(WAL_BATCH_UNITS),
        bytes: metrics::histogram!(WAL_BATCH_BYTES),
        keys: metrics::histogram!(WAL_BATCH_KEYS),
        checkpoints: metrics::counter!(WAL_CHECKPOINTS),
        checkpoint_keys: metrics::counter!(WAL_CHECKPOINT_KEYS),
        dedup_by_filter: metrics::counter!(WAL_DEDUP_IDS, "answered_by" => "filter"),
        dedup_by_index: metrics::counter!(WAL_DEDUP_IDS, "answered_by" => "index"),
        filter_bytes: metrics::gauge!(WAL_DEDUP_FILTER_BYTES),
        held_ids: metrics::gauge!(WAL_DEDUP_HELD_IDS),
        write_stalls: metrics::counter!(WAL_WRITE_STALLS),
    };
    let delayed = metrics::histogram!(WAL_COMMIT_DELAY_SECONDS);
    let mut previous_units = 0;
    let mut write_options = WriteOptions::default();
    write_options.set_sync(true);
    write_options.set_no_slowdown(true);
    let mut group = Group::default();
    let mut stopping = false;
    while !stopping {
        match rx.recv() {
            Ok(Msg::Commit(units, reply)) => group.push(units, reply),
            Ok(Msg::Stop) | Err(_) => break,
        }
        // A message is taken whole, so a group may pass the bound by one message's units.
        while group.units < batch_units_max {
            match rx.try_recv() {
                Ok(Msg::Commit(units, reply)) => group.push(units, reply),
                Ok(Msg::Stop) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        if !stopping
            && !delay.max.is_zero()
            && previous_units >= LINGER_AFTER_UNITS
            && group.units < batch_units_max
        {
            let started = Instant::now();
            stopping = linger(
                &rx,
                &mut group,
                &delay,
                batch_units_max,
                std::thread::yield_now,
            );
            delayed.record(started.elapsed().as_secs_f64());
        }
        previous_units = group.units;
        if write_group(
            &inner,
            &mut group,
            &mut filter,
            &write_options,
            &wal_metrics,
        ) {
            // Full: the thread is busy and will look again when done.
            let _ = ingest.try_send(());
        }
        if let Some(p) = &mut flush_priority {
            p.poll(&inner.db);
        }
    }
    checkpoint_at_stop(&inner);
    // The held ids into the dedup family: the next open then replays none.
    if inner.poison_reason().is_none() {
        if let Err(e) = crate::dedup::ingest_all(&inner) {
            tracing::warn!(error = %e, "ingesting the dedup index's ids at stop failed; the next open replays them");
        }
    }
    drop(ingest);
    let _ = ingester.join();
    // Anything that raced with Stop is refused, not dropped silently.
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Commit(_, reply) = msg {
            reply.fail(StoreError::Closed);
        }
    }
}

/// The messages of one group write, with room for each unit's outcome.
#[derive(Default)]
struct Group {
    msgs: Vec<(Vec<CommitUnit>, Reply)>,
    units: usize,
    /// Per unit in group order: `None` to be written, or why it is not.
    refused: Vec<Option<StoreError>>,
    /// Scratch: the transfer ids the group posts, with the unit posting each; sorted by
    /// [`find_duplicates`], and written in that order by [`build_batch`].
    ids: Vec<([u8; 16], usize)>,
    /// Scratch: those of them the id filter could not rule out.
    maybe: Vec<([u8; 16], usize)>,
}

impl Group {
    fn push(&mut self, units: Vec<CommitUnit>, reply: Reply) {
        self.units += units.len();
        self.msgs.push((units, reply));
    }

    fn units(&self) -> impl Iterator<Item = &CommitUnit> {
        self.msgs.iter().flat_map(|(units, _)| units.iter())
    }

    fn fail(&mut self, e: &StoreError) {
        for (_, reply) in self.msgs.drain(..) {
            reply.fail(e.clone());
        }
        self.units = 0;
    }
}

/// Balances are checkpointed (the unflushed deltas written to the accounts family as merge
/// operands, with [`BalancesThrough`]) by the group that brings them to this many accounts
/// (a checkpoint is one long write after its group's: more accounts per checkpoint raised
/// p99 at 1,024 submitters over 1M accounts; 2,048 rather than 4,096 once checkpoints left
/// the WAL: p99 ≈ 0.8 ms lower for the same throughput; 1,024 rather than 2,048: a group of
/// that load (≈ 1,270 accounts) then writes its own checkpoint instead of every other group
/// writing one twice as long: with `bytes_per_sync` (store.rs), engine p99 7.8–8.8 against
/// 8.5–10.5 ms, CPU per transfer ≈ 4% lower; session 37 in docs/BENCHMARKS.md; since
/// session 41 the checkpoint follows its group's acknowledgement), unless the group's accounts
/// recur: most of them are already unflushed or were in the last checkpoint (transfers
/// among a set of accounts, as the batch endpoint's load test sends). Waiting then folds
/// more of each account's deltas into one merge operand. Payments over many accounts, a hot
/// merchant's and payouts to many payees do not recur, and checkpoint at this many as
/// before — when checkpoints are never ingested (`balance_seal_accounts` 0); otherwise they
/// wait for a table file ([`INGEST_MIN_ACCOUNTS`]). Accounts held by both the deltas and
/// the group count once...
pub const CHECKPOINT_ACCOUNTS: usize = 1_024;
/// ...or, recurring or not, at this many: a checkpoint's write stays bounded...
pub const CHECKPOINT_ACCOUNTS_MAX: usize = 16_384;
/// ...or this many group writes after the last checkpoint...
pub const CHECKPOINT_GROUPS: u64 = 64;
/// ...or the first group this long after it: bounds the deltas held in memory. After a
/// crash, open replays the journal after the last checkpoint that reached the flushed tables
/// (checkpoints are written without the WAL, `write_checkpoint`): the column families flush
/// together whenever one memtable fills, so that is at most one 8 MiB memtable of the
/// busiest id-keyed family behind the journal's end (≈ 80k–180k transfers). An ingested
/// checkpoint is durable once ingested: after it open replays the deltas since the last
/// seal ([`SEAL_ACCOUNTS`], [`SEAL_INTERVAL`]) and the seal in flight.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);
/// The group's accounts looked up to tell whether they recur (a sample, strided in hash order).
const RECUR_SAMPLE: usize = 64;

/// A balance checkpoint of at least this many accounts (fewer when
/// [`crate::store::StoreOptions::balance_seal_accounts`] is lower) is written as a table file
/// ingested into the accounts family by the ingesting thread ([`ingest_sealed_balances`])
/// instead of as merge operands in the accounts memtable: the deltas wait until
/// `balance_seal_accounts` accounts or [`SEAL_INTERVAL`], then are sealed. Memtable
/// inserts, their flushes and their L0 compactions were ≈ 4.5 of the engine's ≈ 7 µs per
/// transfer over 1M accounts (session 41, docs/BENCHMARKS.md). Below it (few accounts, or
/// accounts that recur: the batch endpoint's load among a set of accounts) the memtable
/// checkpoints above stay: a table file a second of a few hundred accounts would only feed
/// compactions.
pub const INGEST_MIN_ACCOUNTS: usize = 4_096;
/// `StoreOptions::balance_seal_accounts`'s default: the deltas are sealed for ingestion once
/// they hold this many accounts (≈ 16 MiB of deltas, a table file of ≈ 10 MiB)...
pub const SEAL_ACCOUNTS: usize = 262_144;
/// ...or, holding at least [`INGEST_MIN_ACCOUNTS`], this long after the last checkpoint.
/// With the ingestion's time, bounds what open replays after a crash.
pub const SEAL_INTERVAL: Duration = Duration::from_secs(1);
/// After a failed ingestion (its deltas are taken back, [`unseal`]) checkpoints go to the
/// memtable for this long.
const INGEST_RETRY_AFTER: Duration = Duration::from_secs(5);

/// What follows a group write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Checkpoint {
    No,
    /// Merge operands in the accounts memtable, after the group's answers.
    Memtable,
    /// The deltas sealed for the ingesting thread, after the group's answers.
    Seal,
}

/// Deltas sealed for ingestion: no longer changed, still read (accounts family + sealed +
/// unflushed) until the ingestion ends.
pub(crate) struct Sealed {
    pub(crate) deltas: Deltas,
    /// The last journal entry they hold.
    pub(crate) through: u64,
}

/// Balance and status changes that are durable in the journal but not yet in the accounts
/// family: between checkpoints an account touched by many transfers costs one merge operand
/// per checkpoint instead of one per group write. Readers of an account add its sealed and
/// its unflushed delta (under the read lock, so a checkpoint is never seen half done: the
/// writer holds the write lock across a memtable checkpoint's write, the ingesting thread
/// across an ingestion). After a crash, open replays the journal after the accounts'
/// position ([`crate::schema::ACCOUNTS_THROUGH_KEY`]) instead.
pub(crate) struct Unflushed {
    pub(crate) deltas: Deltas,
    /// Being ingested ([`Checkpoint::Seal`]); while it is, no other checkpoint is written
    /// (a memtable checkpoint's position would be overtaken by the file's older one).
    pub(crate) sealed: Option<Arc<Sealed>>,
    /// The GL book as of the last durable entry: every GL account's balance, and the
    /// turnover of the dates not yet final in the meta family (the group before a
    /// checkpoint writes it whole and keeps only the newest date). Read by the GL's readers
    /// under the same lock.
    pub(crate) book: GlBook,
    /// The accounts the last checkpoint wrote: whether a group's accounts recur.
    last: HashSet<AccountId, foldhash::fast::RandomState>,
    /// Group writes since the last checkpoint, and when it was.
    groups: u64,
    since: Option<Instant>,
    /// The policy: [`CHECKPOINT_GROUPS`] and [`CHECKPOINT_INTERVAL`] unless configured.
    every_groups: u64,
    every: Duration,
    /// [`SEAL_ACCOUNTS`] unless configured; 0: never ingest.
    seal_accounts: usize,
    /// When an ingestion last failed.
    ingest_failed: Option<Instant>,
}

impl Unflushed {
    pub(crate) fn new(every_groups: u64, every: Duration, seal_accounts: usize) -> Unflushed {
        Unflushed {
            deltas: Deltas::default(),
            sealed: None,
            book: GlBook::default(),
            last: HashSet::default(),
            groups: 0,
            since: None,
            every_groups: every_groups.max(1),
            every,
            seal_accounts,
            ingest_failed: None,
        }
    }

    /// What follows the group with these deltas.
    pub(crate) fn plan(&self, group: &Deltas) -> Checkpoint {
        if self.sealed.is_some() {
            return Checkpoint::No;
        }
        let ingest = self.seal_accounts > 0
            && self
                .ingest_failed
                .is_none_or(|t| t.elapsed() >= INGEST_RETRY_AFTER);
        // The group-count rule, unless the deltas are on their way to a table file (below).
        let mut by_groups = true;
        if ingest {
            let min = INGEST_MIN_ACCOUNTS.min(self.seal_accounts);
            // The sum bounds the union from above: count the accounts only near the limit.
            if self.deltas.len() + group.len() >= min {
                let accounts = self.accounts_with(group);
                if accounts >= min {
                    // Enough to wait for a table file: sealed once full or old enough.
                    let old = self.since.is_some_and(|t| t.elapsed() >= SEAL_INTERVAL);
                    return if accounts >= self.seal_accounts || old {
                        Checkpoint::Seal
                    } else {
                        Checkpoint::No
                    };
                }
            }
            // Deltas of this many accounts are on their way to a table file: the group-count
            // rule waits for it, and only the interval writes them to the memtable first.
            // HTTP-sized groups (a few dozen payments) brought a memtable checkpoint of
            // ≈ 2,000 accounts every 64 groups, 0.83–0.91 merge operands a payment, and never
            // reached a seal (docs/BENCHMARKS.md, sessions 42–43).
            by_groups = self.deltas.len() < CHECKPOINT_ACCOUNTS.min(min);
        }
        // Accounts that do not recur wait for a table file when there is one to wait for:
        // a memtable checkpoint at CHECKPOINT_ACCOUNTS would write them there first.
        if (!ingest && self.accounts_due(group))
            || (by_groups && self.groups + 1 >= self.every_groups)
            || self.since.is_some_and(|t| t.elapsed() >= self.every)
        {
            Checkpoint::Memtable
        } else {
            Checkpoint::No
        }
    }

    /// The accounts of the deltas and the group's together.
    fn accounts_with(&self, group: &Deltas) -> usize {
        self.deltas.len()
            + group
                .keys()
                .filter(|a| !self.deltas.contains_key(*a))
                .count()
    }

    fn accounts_due(&self, group: &Deltas) -> bool {
        // The sum bounds the union from above: count the accounts only near the limit.
        if self.deltas.len() + group.len() < CHECKPOINT_ACCOUNTS {
            return false;
        }
        let accounts = self.accounts_with(group);
        if accounts >= CHECKPOINT_ACCOUNTS_MAX {
            return true;
        }
        if accounts < CHECKPOINT_ACCOUNTS {
            return false;
        }
        // Spread over the whole table: its first slots are not a fair sample (ids that differ
        // only in their low bits do not hash independently: of a group of 7,000 accounts,
        // five in seven recurring, the first 64 were under half recurring in 3 of 300 runs
        // of a test below; strided, in 1 of 2,000).
        let stride = (group.len() / RECUR_SAMPLE).max(1);
        let (mut sampled, mut recurring) = (0, 0);
        for a in group.keys().step_by(stride).take(RECUR_SAMPLE) {
            sampled += 1;
            recurring += usize::from(self.deltas.contains_key(a) || self.last.contains(a));
        }
        recurring * 2 < sampled
    }

    fn fold(&mut self, group: Deltas) {
        for (account, delta) in group {
            add_delta(&mut self.deltas, account, delta);
        }
        self.groups += 1;
        self.since.get_or_insert_with(Instant::now);
    }

    /// After a memtable checkpoint: the deltas are in the accounts family.
    fn clear(&mut self) {
        self.last.clear();
        self.last.extend(self.deltas.keys().copied());
        self.deltas.clear();
        self.groups = 0;
        self.since = Some(Instant::now());
    }

    /// Seals the deltas (through `through`) for the ingesting thread.
    fn seal(&mut self, through: u64) {
        let deltas = std::mem::take(&mut self.deltas);
        self.sealed = Some(Arc::new(Sealed { deltas, through }));
        self.last.clear();
        self.groups = 0;
        self.since = Some(Instant::now());
    }

    /// A failed ingestion: its deltas back under the newer ones (a delta's status is the
    /// newer one's), and checkpoints in the memtable for a while.
    fn unseal(&mut self) {
        let Some(sealed) = self.sealed.take() else {
            return;
        };
        let newer = std::mem::take(&mut self.deltas);
        self.deltas = Arc::try_unwrap(sealed)
            .map(|s| s.deltas)
            .unwrap_or_else(|s| s.deltas.clone());
        for (account, delta) in newer {
            add_delta(&mut self.deltas, account, delta);
        }
        self.ingest_failed = Some(Instant::now());
    }

    /// `account` as of the last durable journal entry, from its record in the accounts
    /// family: plus its sealed delta, then its unflushed one.
    pub(crate) fn apply(&self, account: &mut Account) -> Result<()> {
        if let Some(sealed) = &self.sealed {
            apply_delta(account, &sealed.deltas)?;
        }
        apply_delta(account, &self.deltas)
    }
}

/// `account` plus its delta in `deltas`, if it has one.
pub(crate) fn apply_delta(account: &mut Account, deltas: &Deltas) -> Result<()> {
    match deltas.get(&account.id) {
        None => Ok(()),
        Some(delta) => delta.apply(account).ok_or_else(|| {
            StoreError::Inconsistent(format!("account {} overflows i64", account.id))
        }),
    }
}

/// Adds to `batch` one merge operand per account of `deltas` (in key order: each memtable
/// insert starts where the previous ended) and the accounts' position
/// ([`ACCOUNTS_THROUGH_KEY`]).
pub(crate) fn add_checkpoint<'a>(
    inner: &Inner,
    batch: &mut WriteBatch,
    deltas: impl Iterator<Item = (&'a AccountId, &'a AccountDelta)>,
    through: u64,
) {
    let mut deltas: Vec<(AccountId, AccountDelta)> = deltas.map(|(a, d)| (*a, *d)).collect();
    add_sorted_checkpoint(inner, batch, &mut deltas, through);
}

/// [`add_checkpoint`] of deltas in a vector (one per account: every caller's come from a
/// map), which it sorts.
fn add_sorted_checkpoint(
    inner: &Inner,
    batch: &mut WriteBatch,
    deltas: &mut [(AccountId, AccountDelta)],
    through: u64,
) {
    deltas.sort_unstable_by_key(|(account, _)| account.0);
    debug_assert!(deltas.windows(2).all(|w| w[0].0 != w[1].0));
    let cf = inner.cf_accounts();
    // One buffer for every operand: a checkpoint encodes thousands (docs/BENCHMARKS.md).
    let mut value = Vec::with_capacity(64);
    for (account, delta) in deltas.iter() {
        codec::encode_into(Kind::AccountDelta, delta, &mut value);
        batch.merge_cf(cf, account.to_be_bytes(), &value);
    }
    batch.put_cf(cf, ACCOUNTS_THROUGH_KEY, through_value(through));
}

/// A position's stored value.
pub(crate) fn through_value(seq: u64) -> Vec<u8> {
    codec::encode(Kind::Meta, &BalancesThrough { seq })
}

/// Adds the GL book as of entry `through` to a batch: its balances, each date's turnover it
/// holds (whole: a date's record is its full turnover so far), and its position
/// ([`META_BALANCES_THROUGH`]).
pub(crate) fn add_book(inner: &Inner, batch: &mut WriteBatch, book: &GlBook, through: u64) {
    let balances = GlBalances {
        rows: book.balances().collect(),
    };
    batch.put_cf(
        inner.cf_meta(),
        META_GL_BALANCES,
        codec::encode(Kind::Meta, &balances),
    );
    for date in book.dates() {
        if let Some(day) = book.day(date) {
            batch.put_cf(
                inner.cf_meta(),
                gl_day_key(date),
                codec::encode(Kind::Meta, day),
            );
        }
    }
    batch.put_cf(
        inner.cf_meta(),
        META_BALANCES_THROUGH,
        through_value(through),
    );
}

/// At a clean stop: the sealed deltas ingested, then the GL book and the unflushed deltas
/// written, so the next open replays nothing. The book goes in a synced write before the
/// accounts' operands (its position is never behind theirs); the operands, like every
/// memtable checkpoint, without the WAL (a checkpoint in the WAL could outlive an earlier
/// one lost from the memtables and claim its deltas); the shutdown's flush makes them
/// durable.
fn checkpoint_at_stop(inner: &Inner) {
    if inner.poison_reason().is_some() {
        return;
    }
    if let Err(e) = crate::dedup::ingest_balances_now(inner) {
        tracing::warn!(error = %e, "ingesting the sealed balance checkpoint at stop failed; the next open replays it");
        return;
    }
    let (book, through) = {
        let unflushed = inner.unflushed();
        if unflushed.groups == 0 {
            return;
        }
        (
            unflushed.book.clone(),
            inner.last_seq.load(Ordering::Acquire),
        )
    };
    let mut batch = WriteBatch::default();
    add_book(inner, &mut batch, &book, through);
    if let Err(e) = crate::store::write_synced(inner, batch) {
        tracing::warn!(error = %e, "writing the GL book at stop failed; the next open replays the journal");
        return;
    }
    checkpoint_accounts(inner);
}

/// Writes the unflushed deltas to the accounts memtable through `last_seq` (the group
/// that brought the checkpoint due wrote the GL book through it already, in its synced
/// write). Answers the bytes and records written, if it was.
fn checkpoint_accounts(inner: &Inner) -> Option<(usize, usize)> {
    if inner.poison_reason().is_some() {
        return None;
    }
    // Held from before the write until the deltas are cleared: a reader of an account sees
    // its balance either before the checkpoint (accounts family + unflushed delta) or after
    // it (accounts family alone), never the delta twice or not at all.
    let mut unflushed = inner.unflushed_mut();
    if unflushed.groups == 0 || unflushed.sealed.is_some() {
        return None;
    }
    let through = inner.last_seq.load(Ordering::Acquire);
    let written = write_checkpoint(inner, &unflushed, through)?;
    unflushed.clear();
    Some(written)
}

/// The longest a group waits out a RocksDB write stall before the store poisons itself.
pub const WRITE_STALL_MAX: Duration = Duration::from_secs(10);

/// How checkpoints are written: without the WAL, never waiting out a stall.
fn checkpoint_options() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.disable_wal(true);
    options.set_no_slowdown(true);
    options
}

/// Writes a balance checkpoint through `through` — the unflushed deltas as one merge
/// operand per account, and the accounts' position — in its own write to the accounts
/// family, without the WAL: everything in it is in the journal, synced already, so a crash
/// that loses it only makes the next open replay more journal. Operands and position are
/// in one write to one memtable, so a crash keeps both or neither. Answers the bytes and
/// records written, or `None` if it was not (a write stall, an error): the deltas then stay
/// unflushed and a later group tries again.
fn write_checkpoint(inner: &Inner, unflushed: &Unflushed, through: u64) -> Option<(usize, usize)> {
    let mut batch = WriteBatch::default();
    let mut all: Vec<(AccountId, AccountDelta)> =
        unflushed.deltas.iter().map(|(a, d)| (*a, *d)).collect();
    add_sorted_checkpoint(inner, &mut batch, &mut all, through);
    let written = (batch.size_in_bytes(), batch.len());
    match inner.db.write_opt(batch, &checkpoint_options()) {
        Ok(()) => Some(written),
        // A stall: the next group tries again.
        Err(e) if e.kind() == rocksdb::ErrorKind::Incomplete => None,
        Err(e) => {
            tracing::warn!(error = %e, "balance checkpoint failed; the deltas stay unflushed");
            None
        }
    }
}

/// The options balance table files are written with: the dedup files' (the accounts family
/// is id-keyed too: whole-key bloom filters, no compression), with the merge operator.
fn balance_table_options() -> rocksdb::Options {
    let mut o = crate::dedup::table_options();
    o.set_merge_operator(
        crate::schema::ACCOUNT_MERGE_OPERATOR,
        crate::store::merge_full,
        crate::store::merge_partial,
    );
    o
}

/// Ingests the sealed deltas, if any: one table file of their merge operands (sorted by
/// account) and the accounts' position, ingested into the accounts family. The accounts
/// memtable is flushed first: the file continues the memtable checkpoints before the seal,
/// which must not be lost behind it, and an ingestion that overlaps the memtable would flush
/// it itself while every write waits. The balances' write lock is held across the
/// ingestion and the drop of the sealed deltas (readers never see them twice or not at
/// all). A failed ingestion gives the deltas back ([`Unflushed::unseal`]). Under the
/// ingesting lock ([`crate::dedup`]).
pub(crate) fn ingest_sealed_balances(inner: &Inner, dir: &std::path::Path) -> Result<()> {
    let Some(sealed) = inner.unflushed().sealed.clone() else {
        return Ok(());
    };
    let started = Instant::now();
    let mut rows: Vec<(AccountId, AccountDelta)> =
        sealed.deltas.iter().map(|(a, d)| (*a, *d)).collect();
    rows.sort_unstable_by_key(|(account, _)| account.0);
    let path = dir.join(format!("balances-{:020}.sst", sealed.through));
    let result = std::fs::create_dir_all(dir)
        .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", dir.display())))
        .and_then(|()| write_balance_table(&path, &rows, sealed.through))
        .and_then(|bytes| {
            let mut flush = rocksdb::FlushOptions::default();
            flush.set_wait(true);
            inner.db.flush_cf_opt(inner.cf_accounts(), &flush)?;
            let mut o = rocksdb::IngestExternalFileOptions::default();
            // Linked into the store, not copied: the file is the store's from here on.
            o.set_move_files(true);
            let mut unflushed = inner.unflushed_mut();
            inner
                .db
                .ingest_external_file_cf_opts(inner.cf_accounts(), &o, vec![&path])?;
            unflushed.sealed = None;
            Ok(bytes)
        });
    let _ = std::fs::remove_file(&path);
    match result {
        Ok(bytes) => {
            inner
                .stats
                .record_ingested_checkpoint(rows.len(), bytes, started.elapsed());
            metrics::counter!(WAL_CHECKPOINTS).increment(1);
            metrics::counter!(WAL_CHECKPOINTS_INGESTED).increment(1);
            metrics::counter!(WAL_CHECKPOINT_KEYS).increment(rows.len() as u64 + 1);
            Ok(())
        }
        Err(e) => {
            inner.unflushed_mut().unseal();
            Err(e)
        }
    }
}

/// Writes the table file of a sealed checkpoint; answers its size.
fn write_balance_table(
    path: &std::path::Path,
    rows: &[(AccountId, AccountDelta)],
    through: u64,
) -> Result<usize> {
    let options = balance_table_options();
    let mut writer = rocksdb::SstFileWriter::create(&options);
    writer.open(path)?;
    let mut value = Vec::with_capacity(64);
    for (account, delta) in rows {
        codec::encode_into(Kind::AccountDelta, delta, &mut value);
        writer.merge(account.to_be_bytes(), &value)?;
    }
    writer.put(ACCOUNTS_THROUGH_KEY, through_value(through))?;
    writer.finish()?;
    Ok(writer.file_size() as usize)
}

/// The group as one `WriteBatch`: every written unit's journal entry, records and dedup keys,
/// after the base records of the accounts this group creates.
/// `seqs`: each unit's sequence number ([`unit_seqs`]); a group of at least one written unit.
/// `book`: the GL book and its position, when a balance checkpoint follows the group.
fn build_batch(
    inner: &Inner,
    group: &Group,
    seqs: &[u64],
    inline_ids: bool,
    book: Option<(&GlBook, u64)>,
) -> WriteBatch {
    let first_seq = seqs[0];
    let mut batch = WriteBatch::default();
    let mut aux = Vec::new();
    let mut entries = Vec::with_capacity(group.units);
    let mut notes = Notes::default();
    for ((unit, refused), &seq) in group.units().zip(&group.refused).zip(seqs) {
        if refused.is_none() {
            add_unit(inner, &mut batch, &mut aux, unit);
            entries.push(unit.effects.as_slice());
            notes.add(inner, &mut batch, seq, unit);
        }
    }
    notes.finish(inner, &mut batch);
    // One journal record for the group: a unit costs no key of its own in the journal.
    let record = match entries.as_slice() {
        [effects] => codec::encode(
            Kind::Journal,
            &JournalEntryRef {
                seq: first_seq,
                effects,
            },
        ),
        _ => {
            // A transfer's entry is ≈ 100 bytes (two postings): room for the group's at once.
            let capacity = 64 + 128 * entries.len();
            let group = JournalGroupRef { first_seq, entries };
            codec::encode_sized(Kind::JournalGroup, &group, capacity)
        }
    };
    batch.put_cf(inner.cf_journal(), seq_key(first_seq), record);
    add_aux(inner, &mut batch, aux);
    // Only when the writer's runs are full (`crate::dedup`): random 16-byte keys, inserted
    // in key order, so that each memtable insert starts its search from where the previous
    // one ended (the skiplist's sequential splice) instead of from the top.
    // `find_duplicates` sorted the group's ids already: a written unit's are in there once.
    if inline_ids {
        let cf = inner.cf_dedup();
        for &(id, unit) in &group.ids {
            if group.refused[unit].is_none() {
                batch.put_cf(cf, id, seq_key(seqs[unit]));
            }
        }
    }
    if let Some((book, through)) = book {
        add_book(inner, &mut batch, book, through);
    }
    batch
}

/// The notes of a group's written units, gathered into [`crate::records::JournalNotes`]
/// records: one per group, or one per business date when a date switch is among the units
/// (so that a record belongs to one date, and the shelf moves it whole with that date's).
#[derive(Default)]
struct Notes<'a> {
    first_seq: u64,
    notes: Vec<(u32, &'a [u8])>,
}

impl<'a> Notes<'a> {
    fn add(&mut self, inner: &Inner, batch: &mut WriteBatch, seq: u64, unit: &'a CommitUnit) {
        if unit
            .effects
            .iter()
            .any(|e| matches!(e, Effect::DateSwitched { .. }))
        {
            self.finish(inner, batch);
        }
        if unit.note.is_empty() {
            return;
        }
        if self.notes.is_empty() {
            self.first_seq = seq;
        }
        // A group holds far fewer than 2^32 units (`batch_units_max`).
        let offset = u32::try_from(seq - self.first_seq).expect("a group's units fit in u32");
        self.notes.push((offset, unit.note.as_slice()));
    }

    fn finish(&mut self, inner: &Inner, batch: &mut WriteBatch) {
        if self.notes.is_empty() {
            return;
        }
        let record = crate::records::JournalNotesRef {
            first_seq: self.first_seq,
            notes: std::mem::take(&mut self.notes),
        };
        batch.put_cf(
            inner.cf_aux(),
            crate::records::journal_notes_key(self.first_seq),
            crate::records::encode(&record),
        );
    }
}

/// The GL changes of the group's written units, in journal order.
fn group_gl(inner: &Inner, group: &Group) -> std::result::Result<GlBook, String> {
    let units: Vec<&CommitUnit> = group
        .units()
        .zip(&group.refused)
        .filter(|(_, r)| r.is_none())
        .map(|(u, _)| u)
        .collect();
    let mut book = GlBook::default();
    for (i, unit) in units.iter().enumerate() {
        for effect in &unit.effects {
            let mut at = |id| account_before(inner, &units[..i], id);
            book.apply(effect, &mut at).map_err(|e| e.to_string())?;
        }
    }
    Ok(book)
}

/// `id` as of just after the durable entries and `earlier` (units of the group being
/// written): only a GL reassignment, or a leg written without its GL account (tools that
/// write to the store directly; the ledger fills every leg's), asks, so a point read and a
/// pass over the group are cheap enough.
fn account_before(inner: &Inner, earlier: &[&CommitUnit], id: AccountId) -> Option<Account> {
    let mut account = inner.account_now(id).ok().flatten();
    for effect in earlier.iter().flat_map(|u| u.effects.iter()) {
        match effect {
            Effect::AccountCreated(a) if a.id == id => account = Some(a.clone()),
            Effect::Posted(t) => {
                for p in t.postings.iter().filter(|p| p.account == id) {
                    let a = account.as_mut()?;
                    a.balance = a.balance.checked_add(p.amount)?;
                }
            }
            Effect::GlAssigned { account: a, gl, .. } if *a == id => {
                account.as_mut()?.gl = *gl;
            }
            _ => {}
        }
    }
    account
}

/// The balance and status changes of the group's written units, summed per account.
fn group_deltas(group: &Group) -> Deltas {
    // Two accounts per unit is the common case (a transfer): no rehash while filling.
    let mut deltas = Deltas::with_capacity_and_hasher(2 * group.units, Default::default());
    for (unit, refused) in group.units().zip(&group.refused) {
        if refused.is_none() {
            for effect in &unit.effects {
                add_effect(&mut deltas, effect);
            }
        }
    }
    deltas
}

/// What `effect` changes in balances and statuses, added to `deltas`.
pub(crate) fn add_effect(deltas: &mut Deltas, effect: &Effect) {
    match effect {
        Effect::AccountCreated(_) => {}
        Effect::Posted(transfer) => {
            for p in &transfer.postings {
                let delta = AccountDelta {
                    balance: i128::from(p.amount),
                    ..Default::default()
                };
                add_delta(deltas, p.account, delta);
            }
        }
        Effect::StatusSet { account, status } => {
            let delta = AccountDelta {
                status: Some(*status),
                ..Default::default()
            };
            add_delta(deltas, *account, delta);
        }
        Effect::GlAssigned { account, gl, .. } => {
            let delta = AccountDelta {
                gl: Some(*gl),
                ..Default::default()
            };
            add_delta(deltas, *account, delta);
        }
        Effect::DateSwitched { .. } => {}
    }
}

/// Ids the writer keeps for a filter being built (64 MiB): past it, the filter is given up
/// until a restart.
const PENDING_IDS_MAX: usize = 1 << 22;

/// The writer's id filter ([`crate::idfilter`]): being built after open, ready, or off.
pub(crate) enum IdFilterState {
    /// Being built from a scan of the dedup index (`crate::store::spawn_dedup_filter`): it
    /// rules nothing out yet, and the ids written meanwhile wait in `pending`.
    Building {
        built: Receiver<IdFilter>,
        pending: Vec<[u8; 16]>,
    },
    Ready(IdFilter),
    /// Turned off, failed to build, or given up: every id is looked up.
    Off,
}

impl IdFilterState {
    pub(crate) fn building(built: Receiver<IdFilter>) -> IdFilterState {
        IdFilterState::Building {
            built,
            pending: Vec::new(),
        }
    }

    /// Takes the built filter, if it arrived, with the ids written since the scan began.
    fn poll(&mut self) {
        if let IdFilterState::Building { built, pending } = self {
            match built.try_recv() {
                Ok(mut filter) => {
                    for id in pending.iter() {
                        filter.insert(id);
                    }
                    *self = IdFilterState::Ready(filter);
                }
                Err(crossbeam_channel::TryRecvError::Empty) => {}
                Err(crossbeam_channel::TryRecvError::Disconnected) => *self = IdFilterState::Off,
            }
        }
    }

    fn may_contain(&self, id: &[u8; 16]) -> bool {
        match self {
            IdFilterState::Ready(filter) => filter.may_contain(id),
            _ => true,
        }
    }

    /// Bytes of a filter in use (0 while building, or off).
    fn bytes(&self) -> usize {
        match self {
            IdFilterState::Ready(filter) => filter.bytes(),
            _ => 0,
        }
    }

    fn insert_all<'a>(&mut self, ids: impl Iterator<Item = &'a [u8; 16]>) {
        match self {
            IdFilterState::Ready(filter) => {
                let saturated = filter.saturated();
                for id in ids {
                    filter.insert(id);
                }
                if filter.saturated() && !saturated {
                    tracing::warn!(
                        bytes_max = filter.bytes_max(),
                        "the dedup filter is full: every transfer id is looked up in RocksDB until a restart sizes it afresh"
                    );
                }
            }
            IdFilterState::Building { pending, .. } => {
                pending.extend(ids);
                if pending.len() > PENDING_IDS_MAX {
                    tracing::warn!(
                        "the dedup filter took too long to build: every transfer id is looked up in RocksDB until a restart"
                    );
                    *self = IdFilterState::Off;
                }
            }
            IdFilterState::Off => {}
        }
    }
}

/// Marks the units of the group that post a transfer id already durable, or posted by an
/// earlier unit of the same group: they are answered, not written. The writer's id filter
/// rules out most ids; the rest are looked up in one sorted multi-get over the dedup index
/// per group, on this thread, instead of a point read per transfer on the submitters'
/// thread. Every id of the group then goes into the filter, before any is written.
fn find_duplicates(
    inner: &Inner,
    group: &mut Group,
    filter: &mut IdFilterState,
    wal_metrics: &WalMetrics,
) -> Result<()> {
    filter.poll();
    group.refused.clear();
    group.refused.resize(group.units, None);
    group.ids.clear();
    for (i, unit) in group.msgs.iter().flat_map(|(u, _)| u.iter()).enumerate() {
        for id in unit.transfer_ids() {
            group.ids.push((id.to_be_bytes(), i));
        }
    }
    if group.ids.is_empty() {
        return Ok(());
    }
    // By id, then by unit: of equal ids the earliest unit comes first and is the one kept.
    group.ids.sort_unstable();
    for w in 1..group.ids.len() {
        let (id, unit) = group.ids[w];
        if id == group.ids[w - 1].0 {
            group.refused[unit] = Some(StoreError::DuplicateTransfer(u128::from_be_bytes(id)));
        }
    }
    group.maybe.clear();
    group
        .maybe
        .extend(group.ids.iter().filter(|(id, _)| filter.may_contain(id)));
    if !group.maybe.is_empty() {
        let found = inner.posted(group.maybe.iter().map(|(k, _)| k))?;
        for ((id, unit), found) in group.maybe.iter().zip(found) {
            if found.is_some() {
                group.refused[*unit] =
                    Some(StoreError::DuplicateTransfer(u128::from_be_bytes(*id)));
            }
        }
    }
    let looked_up = group.maybe.len() as u64;
    let ruled_out = (group.ids.len() - group.maybe.len()) as u64;
    inner
        .stats
        .dedup_lookups
        .fetch_add(looked_up, Ordering::Relaxed);
    inner
        .stats
        .dedup_filtered
        .fetch_add(ruled_out, Ordering::Relaxed);
    wal_metrics.dedup_by_index.increment(looked_up);
    wal_metrics.dedup_by_filter.increment(ruled_out);
    // Refused units' ids too: a superset is still correct, and one pass is cheaper.
    filter.insert_all(group.ids.iter().map(|(id, _)| id));
    wal_metrics.filter_bytes.set(filter.bytes() as f64);
    Ok(())
}

/// The writer's histograms and counters, looked up once when it starts (the process's
/// recorder is installed before the store opens).
struct WalMetrics {
    sync: metrics::Histogram,
    units: metrics::Histogram,
    bytes: metrics::Histogram,
    keys: metrics::Histogram,
    checkpoints: metrics::Counter,
    checkpoint_keys: metrics::Counter,
    dedup_by_filter: metrics::Counter,
    dedup_by_index: metrics::Counter,
    filter_bytes: metrics::Gauge,
    held_ids: metrics::Gauge,
    write_stalls: metrics::Counter,
}

/// Writes one group and answers its units. Answers whether it sealed the dedup runs for
/// ingestion (`crate::dedup`): the ingesting thread is to be woken.
fn write_group(
    inner: &Inner,
    group: &mut Group,
    filter: &mut IdFilterState,
    write_options: &WriteOptions,
    wal_metrics: &WalMetrics,
) -> bool {
    if let Some(reason) = inner.poison_reason() {
        group.fail(&StoreError::Poisoned(reason));
        return false;
    }
    if let Err(e) = find_duplicates(inner, group, filter, wal_metrics) {
        // A failed read of the index: the store cannot tell what is durable. Poison, as for
        // a failed write: nothing more is acknowledged until a restart recovers.
        let reason = format!("reading the dedup index failed: {e}");
        tracing::error!(error = %reason, "store poisoned");
        inner.poison(reason.clone());
        group.fail(&StoreError::Poisoned(reason));
        return false;
    }
    let written = group.refused.iter().filter(|r| r.is_none()).count();
    // The group's ids go to the runs, unless they are full: then into this write, as keys.
    let inline_ids = !inner.dedup.runs().has_room(group.ids.len());
    let first_seq = inner.last_seq.load(Ordering::Acquire) + 1;
    let seqs = unit_seqs(group, first_seq);
    let started = Instant::now();
    let mut bytes = 0;
    let mut keys = 0;
    let deltas = group_deltas(group);
    let group_book = match group_gl(inner, group) {
        Ok(book) => book,
        Err(e) => {
            // The journal would contradict itself: write nothing more.
            let reason = format!("booking a group in the GL failed: {e}");
            tracing::error!(error = %reason, "store poisoned");
            inner.poison(reason.clone());
            group.fail(&StoreError::Poisoned(reason));
            return false;
        }
    };
    // Only this thread changes `unflushed` (but for the ingesting thread dropping or giving
    // back the sealed deltas, which only makes a later group's plan differ), so deciding
    // outside the lock is safe.
    let plan = if written > 0 {
        inner.unflushed().plan(&deltas)
    } else {
        Checkpoint::No
    };
    // A checkpoint follows: the GL book through the group's last entry goes into its synced
    // write, so the book's position is durable before the accounts' position can pass it
    // (open replays the accounts from theirs, the book from its own, in one pass: docs/
    // ARCHITECTURE.md). It costs no sync of its own.
    let last_of_group = first_seq + written as u64 - 1;
    let book_after = (plan != Checkpoint::No).then(|| {
        let mut book = inner.unflushed().book.clone();
        book.absorb(&group_book)
            .expect("GL balances fit in i128 (checked when the group was booked)");
        book
    });
    let mut stalled = false;
    let result = loop {
        if written == 0 {
            // Every unit was a duplicate: nothing to write or sync.
            break Ok(());
        }
        let batch = build_batch(
            inner,
            group,
            &seqs,
            inline_ids,
            book_after.as_ref().map(|b| (b, last_of_group)),
        );
        bytes = batch.size_in_bytes();
        keys = batch.len();
        if inner.inject_failure() {
            break Err(StoreError::Io("injected write failure".to_string()));
        }
        match inner.db.write_opt(batch, write_options) {
            Ok(()) => break Ok(()),
            // `no_slowdown`: RocksDB refused to wait out a write stall and wrote nothing.
            // A stall from load clears as flushes and compactions catch up; one caused by a
            // failed background job (a flush that hit a full disk) never does, and RocksDB
            // would otherwise block this thread until space appears, acknowledging nothing
            // and failing nothing. So: retry briefly, give up on a background error or after
            // WRITE_STALL_MAX.
            Err(e) if e.kind() == rocksdb::ErrorKind::Incomplete => {
                if inner.background_errors() > 0 {
                    break Err(StoreError::Io(format!(
                        "writes stalled after a background flush or compaction failed (disk full?): {}",
                        e.into_string()
                    )));
                }
                if started.elapsed() > WRITE_STALL_MAX {
                    break Err(StoreError::Io(format!(
                        "writes stalled for more than {} s: {}",
                        WRITE_STALL_MAX.as_secs(),
                        e.into_string()
                    )));
                }
                if !stalled {
                    // Once a group, not once a millisecond it waits.
                    wal_metrics.write_stalls.increment(1);
                    stalled = true;
                }
                inner.stats.stalls.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => break Err(StoreError::from(e)),
        }
    };
    let synced = started.elapsed();
    let durable = written > 0 && result.is_ok();
    if written > 0 {
        inner.stats.record_group(written, bytes, keys, synced);
        wal_metrics.sync.record(synced.as_secs_f64());
        wal_metrics.units.record(written as f64);
        wal_metrics.bytes.record(bytes as f64);
        wal_metrics.keys.record(keys as f64);
    }
    let mut sealed = false;
    match result {
        Ok(()) => {
            // Before any acknowledgement: once a caller hears its transfer is durable, a
            // lookup of its id must find it...
            if written > 0 && !group.ids.is_empty() {
                if inline_ids {
                    inner
                        .stats
                        .dedup_inline_groups
                        .fetch_add(1, Ordering::Relaxed);
                } else {
                    let held;
                    (sealed, held) = hold_ids(inner, group, &seqs, written);
                    wal_metrics.held_ids.set(held as f64);
                }
            }
            // ...and a read of the accounts it touched must include it.
            if written > 0 {
                let mut u = inner.unflushed_mut();
                match book_after {
                    Some(mut book) => {
                        // The group wrote this book whole: every date but the newest is final
                        // in the meta family (dates only move forward in the journal).
                        book.forget_all_but_newest();
                        u.book = book;
                    }
                    None => u
                        .book
                        .absorb(&group_book)
                        .expect("GL balances fit in i128 (checked when the group was booked)"),
                }
                u.fold(deltas);
            }
            let mut seq = first_seq;
            if written > 0 {
                inner
                    .last_seq
                    .store(first_seq + written as u64 - 1, Ordering::Release);
            }
            let mut refused = group.refused.drain(..);
            for (units, reply) in group.msgs.drain(..) {
                // A submitter that gave up waiting is fine: its unit is durable regardless.
                let mut outcome = || match refused.next().flatten() {
                    Some(e) => Err(e),
                    None => {
                        seq += 1;
                        Ok(seq - 1)
                    }
                };
                match reply {
                    Reply::One(tx) => {
                        let _ = tx.send(outcome());
                    }
                    Reply::Many(tx) => {
                        let outcomes = units.iter().map(|_| outcome()).collect();
                        let _ = tx.send(Ok(outcomes));
                    }
                }
            }
            group.units = 0;
        }
        Err(e) => {
            let reason = e.to_string();
            tracing::error!(error = %reason, units = group.units, "group write failed; store poisoned");
            inner.poison(reason);
            group.fail(&e);
        }
    }
    // The checkpoint, after the group is acknowledged: it only moves deltas that readers
    // already see (accounts family + unflushed) into the accounts family, so no caller
    // needs to wait for it. Before the acknowledgement it added its whole write (≈ 1.5 ms
    // for ≈ 1,300 accounts, three groups in four at 1,024 submitters over 1M accounts) to
    // every transfer of its group (docs/BENCHMARKS.md, session 41). Through `last_seq`,
    // this group's last entry.
    if plan == Checkpoint::Seal && durable {
        inner.unflushed_mut().seal(last_of_group);
        inner.stats.balance_seals.fetch_add(1, Ordering::Relaxed);
        sealed = true;
    }
    if plan == Checkpoint::Memtable && durable {
        let checkpoint_started = Instant::now();
        if let Some((bytes, keys)) = checkpoint_accounts(inner) {
            // The writer's counters include the checkpoint's records and time; the WAL
            // histograms above describe the synced write only.
            inner
                .stats
                .record_checkpoint(bytes, keys, synced, checkpoint_started.elapsed());
            wal_metrics.checkpoints.increment(1);
            wal_metrics.checkpoint_keys.increment(keys as u64);
        }
    }
    sealed
}

/// Each unit's sequence number from `first_seq` on: written units take one each, in order
/// (a refused unit's, its next one's, is never read).
fn unit_seqs(group: &Group, first_seq: u64) -> Vec<u64> {
    let mut seqs = Vec::with_capacity(group.units);
    let mut seq = first_seq;
    for refused in &group.refused {
        seqs.push(seq);
        if refused.is_none() {
            seq += 1;
        }
    }
    seqs
}

/// Adds the written units' transfer ids (sorted by `find_duplicates`) to the dedup runs, at
/// their units' sequence numbers. Answers whether the runs were sealed for ingestion, and
/// the ids held now.
fn hold_ids(inner: &Inner, group: &Group, seqs: &[u64], written: usize) -> (bool, usize) {
    let ids: Vec<crate::dedup::Posted> = group
        .ids
        .iter()
        .filter(|(_, unit)| group.refused[*unit].is_none())
        .map(|&(id, unit)| (id, seqs[unit]))
        .collect();
    let mut runs = inner.dedup.runs_mut();
    let sealed = runs.push(ids, seqs[0] + written as u64 - 1);
    (sealed, runs.held())
}

/// Balance and status changes of one group, summed per account.
pub(crate) type Deltas = HashMap<AccountId, AccountDelta, foldhash::fast::RandomState>;

fn add_delta(deltas: &mut Deltas, account: AccountId, delta: AccountDelta) {
    let slot = deltas.entry(account).or_default();
    // Each delta is an i64 amount (or a sum of them): overflowing i128 would take 2^64
    // postings between two checkpoints.
    *slot = slot.then(delta).expect("unflushed deltas fit in i128");
}

/// A unit's account records, dedup keys and records of the layers above (its journal entry
/// goes into the group's record).
fn add_unit<'a>(
    inner: &Inner,
    batch: &mut WriteBatch,
    aux: &mut Vec<(&'a [u8], &'a [u8])>,
    unit: &'a CommitUnit,
) {
    for effect in &unit.effects {
        match effect {
            Effect::AccountCreated(account) => {
                batch.put_cf(
                    inner.cf_accounts(),
                    account.id.to_be_bytes(),
                    codec::encode(Kind::Account, account),
                );
            }
            // Its dedup key is written from the group's sorted ids (`build_batch`).
            Effect::Posted(_)
            | Effect::StatusSet { .. }
            | Effect::GlAssigned { .. }
            | Effect::DateSwitched { .. } => {}
        }
    }
    for (key, value) in &unit.aux {
        aux.push((key, value));
    }
}

/// The group's records of the layers above, in key order (stable: of two writes of one key
/// the later unit's stays last, and wins): as for the dedup keys, each memtable insert then
/// starts from where the previous one ended.
fn add_aux(inner: &Inner, batch: &mut WriteBatch, mut aux: Vec<(&[u8], &[u8])>) {
    aux.sort_by(|a, b| a.0.cmp(b.0));
    // Before the write: a read that may no longer miss the key must find it in the filter
    // (a failed write leaves a false positive, never a miss).
    inner.key_filter.insert(aux.iter().map(|(key, _)| *key));
    for (key, value) in aux {
        match key.strip_prefix(crate::schema::AUDIT_ROUTE) {
            Some(audit_key) => batch.put_cf(inner.cf_audit(), audit_key, value),
            None => batch.put_cf(inner.cf_aux(), key, value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit() -> Msg {
        let (tx, _rx) = oneshot::channel();
        Msg::Commit(vec![CommitUnit::default()], Reply::One(tx))
    }

    const WAIT: CommitDelay = CommitDelay {
        max: Duration::from_secs(5),
    };

    #[test]
    fn a_lingering_group_takes_what_queued_and_ends_when_a_yield_brings_nothing() {
        let (tx, rx) = crossbeam_channel::unbounded();
        for _ in 0..3 {
            tx.send(commit()).unwrap();
        }
        let mut group = Group::default();
        let started = Instant::now();
        // Nothing else sends: the first yield that brings nothing ends the wait, long
        // before `max`.
        assert!(!linger(&rx, &mut group, &WAIT, 100, || {}));
        assert_eq!(group.units, 3);
        // The same again with nothing queued: the group stays as it is.
        assert!(!linger(&rx, &mut group, &WAIT, 100, || {}));
        assert_eq!(group.units, 3);
        assert!(started.elapsed() < WAIT.max);
    }

    #[test]
    fn a_lingering_group_stops_at_stop_at_the_last_sender_and_when_full() {
        let (tx, rx) = crossbeam_channel::unbounded();
        tx.send(commit()).unwrap();
        tx.send(commit()).unwrap();
        tx.send(Msg::Stop).unwrap();
        tx.send(commit()).unwrap();
        let mut group = Group::default();
        assert!(linger(&rx, &mut group, &WAIT, 100, || {}), "Stop is seen");
        assert_eq!(group.units, 2, "nothing behind Stop is taken");
        let (tx, rx) = crossbeam_channel::unbounded();
        tx.send(commit()).unwrap();
        drop(tx);
        let mut group = Group::default();
        assert!(linger(&rx, &mut group, &WAIT, 100, || {}), "no sender left");
        assert_eq!(group.units, 1);
        let (tx, rx) = crossbeam_channel::unbounded();
        for _ in 0..10 {
            tx.send(commit()).unwrap();
        }
        let mut group = Group::default();
        assert!(!linger(&rx, &mut group, &WAIT, 4, || {}));
        assert_eq!(group.units, 4, "a full group waits no more");
        assert_eq!(rx.len(), 6);
    }

    #[test]
    fn a_lingering_group_fed_without_end_is_written_after_max() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let delay = CommitDelay {
            max: Duration::from_millis(20),
        };
        let mut group = Group::default();
        let mut yields = 0;
        let started = Instant::now();
        // Every yield brings a unit: only `max` ends the wait.
        let stop = linger(&rx, &mut group, &delay, usize::MAX, || {
            yields += 1;
            tx.send(commit()).unwrap();
        });
        let waited = started.elapsed();
        assert!(!stop);
        assert!(waited >= delay.max, "waited {waited:?}");
        assert_eq!(group.units, yields);
        assert!(yields > 1);
    }

    fn deltas(accounts: std::ops::Range<u128>) -> Deltas {
        accounts
            .map(|a| (AccountId(a), AccountDelta::default()))
            .collect()
    }

    impl Unflushed {
        fn due(&self, group: &Deltas) -> bool {
            self.plan(group) != Checkpoint::No
        }
    }

    fn unflushed() -> Unflushed {
        Unflushed::new(u64::MAX, Duration::from_secs(3600), 0)
    }

    #[test]
    fn a_checkpoint_counts_accounts_once() {
        let mut u = unflushed();
        let n = CHECKPOINT_ACCOUNTS as u128;
        assert!(!u.due(&deltas(0..n - 1)));
        assert!(u.due(&deltas(0..n)));
        u.fold(deltas(0..n / 2));
        // The same accounts again do not bring the checkpoint nearer...
        assert!(!u.due(&deltas(0..n / 2)));
        assert!(!u.due(&deltas(0..n - 1)));
        // ...new ones do.
        assert!(u.due(&deltas(n / 2..n + n / 2)));
    }

    #[test]
    fn a_checkpoint_waits_while_the_accounts_recur() {
        let mut u = unflushed();
        let n = CHECKPOINT_ACCOUNTS as u128;
        // Transfers among 10,000 accounts: the first group has nothing to recur against.
        assert!(u.due(&deltas(0..7_000)));
        u.fold(deltas(0..7_000));
        u.clear();
        // After that checkpoint its accounts recur, in the next groups and among them.
        assert!(!u.due(&deltas(1_000..8_000)));
        u.fold(deltas(1_000..8_000));
        // (Six in seven recur: a sample of 64 finds under half recurring about never. At
        // five in seven, as this test had it, 1 run in 2,000 did.)
        assert!(!u.due(&deltas(2_000..9_000)));
        // Up to CHECKPOINT_ACCOUNTS_MAX accounts.
        let max = CHECKPOINT_ACCOUNTS_MAX as u128;
        let mut u = unflushed();
        u.fold(deltas(0..2 * max));
        u.clear();
        assert!(!u.due(&deltas(0..max - 1)));
        assert!(u.due(&deltas(0..max)));
        // New accounts: a checkpoint at CHECKPOINT_ACCOUNTS, as without recurrence.
        let mut u = unflushed();
        u.fold(deltas(0..10_000));
        u.clear();
        assert!(!u.due(&deltas(10_000..10_000 + n - 1)));
        assert!(u.due(&deltas(10_000..10_000 + n)));
    }

    #[test]
    fn a_checkpoint_is_due_after_its_groups_whatever_the_accounts() {
        let mut u = Unflushed::new(3, Duration::from_secs(3600), 0);
        u.fold(deltas(0..1));
        assert!(!u.due(&deltas(0..1)));
        u.fold(deltas(0..1));
        assert!(u.due(&deltas(0..1)));
    }

    #[test]
    fn deltas_of_many_accounts_are_sealed_and_wait_for_their_ingestion() {
        let mut u = Unflushed::new(u64::MAX, Duration::from_secs(3600), 64);
        let deltas = |accounts: std::ops::Range<u128>| -> Deltas {
            accounts
                .map(|a| {
                    let delta = AccountDelta {
                        balance: 1,
                        ..AccountDelta::default()
                    };
                    (AccountId(a), delta)
                })
                .collect()
        };
        // Under the seal's size (and INGEST_MIN_ACCOUNTS, here 64): the memtable's rules,
        // but for accounts that do not recur (those wait for a table file).
        assert_eq!(u.plan(&deltas(0..63)), Checkpoint::No);
        let by_default = Unflushed::new(u64::MAX, Duration::from_secs(3600), SEAL_ACCOUNTS);
        assert_eq!(by_default.plan(&deltas(0..2_000)), Checkpoint::No);
        assert_eq!(by_default.plan(&deltas(0..4_096)), Checkpoint::No);
        u.fold(deltas(0..40));
        assert_eq!(u.plan(&deltas(30..63)), Checkpoint::No);
        assert_eq!(u.plan(&deltas(30..64)), Checkpoint::Seal);
        u.fold(deltas(30..64));
        u.seal(7);
        assert!(u.deltas.is_empty());
        assert_eq!(
            u.sealed.as_ref().map(|s| (s.deltas.len(), s.through)),
            Some((64, 7))
        );
        // While it is ingested, nothing else is written, however many accounts wait.
        assert_eq!(u.plan(&deltas(0..100_000)), Checkpoint::No);
        // Readers add the sealed delta, then the newer one.
        u.fold(deltas(0..1));
        let mut account =
            Account::new(AccountId(0), engine::Currency::CNY, 0, engine::Timestamp(1));
        u.apply(&mut account).unwrap();
        assert_eq!(account.balance, 2);
        // A failed ingestion gives the deltas back, and checkpoints go to the memtable.
        u.unseal();
        assert!(u.sealed.is_none());
        assert_eq!((u.deltas.len(), u.deltas[&AccountId(0)].balance), (64, 2));
        assert_eq!(u.plan(&deltas(0..100)), Checkpoint::No);
        assert_eq!(
            u.plan(&deltas(0..CHECKPOINT_ACCOUNTS_MAX as u128)),
            Checkpoint::Memtable
        );
    }

    #[test]
    fn many_accounts_on_their_way_to_a_seal_wait_out_the_group_count() {
        let mut u = Unflushed::new(3, Duration::from_secs(3600), SEAL_ACCOUNTS);
        let n = CHECKPOINT_ACCOUNTS as u128;
        // Few accounts: a memtable checkpoint after three groups, as without ingestion.
        u.fold(deltas(0..10));
        u.fold(deltas(0..10));
        assert_eq!(u.plan(&deltas(0..10)), Checkpoint::Memtable);
        u.clear();
        // CHECKPOINT_ACCOUNTS unflushed and more coming: no checkpoint by the group count...
        let mut u = Unflushed::new(3, Duration::from_secs(3600), SEAL_ACCOUNTS);
        u.fold(deltas(0..n));
        u.fold(deltas(n..n + 100));
        assert_eq!(u.plan(&deltas(n + 100..n + 200)), Checkpoint::No);
        // ...up to INGEST_MIN_ACCOUNTS, then the seal's rules (SEAL_ACCOUNTS or the interval).
        u.fold(deltas(n + 100..INGEST_MIN_ACCOUNTS as u128 - 1));
        assert_eq!(u.plan(&deltas(0..1)), Checkpoint::No);
        assert_eq!(u.plan(&deltas(0..SEAL_ACCOUNTS as u128)), Checkpoint::Seal);
        // The interval still writes them to the memtable below INGEST_MIN_ACCOUNTS.
        let mut u = Unflushed::new(3, Duration::ZERO, SEAL_ACCOUNTS);
        u.fold(deltas(0..n));
        assert_eq!(u.plan(&deltas(0..1)), Checkpoint::Memtable);
        // Without ingestion the group count applies whatever the accounts.
        let mut u = Unflushed::new(3, Duration::from_secs(3600), 0);
        u.fold(deltas(0..n));
        u.fold(deltas(0..n));
        assert_eq!(u.plan(&deltas(0..1)), Checkpoint::Memtable);
    }

    #[test]
    fn ids_written_while_the_filter_is_built_are_added_when_it_arrives() {
        let id = |n: u128| n.to_be_bytes();
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut state = IdFilterState::building(rx);
        // Building: nothing is ruled out, and written ids wait.
        state.poll();
        assert!(state.may_contain(&id(99)));
        state.insert_all([id(1), id(2)].iter());
        // The scan's filter, which saw id 3 (written before it started) but not 1 or 2.
        let mut scanned = IdFilter::new(0, 64 << 20);
        scanned.insert(&id(3));
        tx.send(scanned).unwrap();
        state.poll();
        assert!(matches!(state, IdFilterState::Ready(_)));
        for n in 1..=3 {
            assert!(state.may_contain(&id(n)), "id {n}");
        }
        let ruled_out = (1_000..2_000)
            .filter(|&n| !state.may_contain(&id(n)))
            .count();
        assert!(ruled_out > 990, "{ruled_out}");
        state.insert_all([id(4)].iter());
        assert!(state.may_contain(&id(4)));
    }

    #[test]
    fn a_filter_that_fails_to_build_or_waits_too_long_is_off() {
        let (tx, rx) = crossbeam_channel::bounded::<IdFilter>(1);
        let mut state = IdFilterState::building(rx);
        drop(tx);
        state.poll();
        assert!(matches!(state, IdFilterState::Off));
        assert!(state.may_contain(&[0; 16]));

        let (_tx, rx) = crossbeam_channel::bounded::<IdFilter>(1);
        let mut state = IdFilterState::building(rx);
        let ids: Vec<[u8; 16]> = (0..=PENDING_IDS_MAX as u128)
            .map(u128::to_be_bytes)
            .collect();
        state.insert_all(ids.iter());
        assert!(matches!(state, IdFilterState::Off));
    }
}

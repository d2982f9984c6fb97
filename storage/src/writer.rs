//! The group-commit writer: one thread owns every write to the store.
//!
//! Submitters put commit units on a bounded channel and wait on a oneshot. The writer takes
//! the first unit, drains whatever queued behind it (up to `batch_units_max`), writes the lot
//! as one RocksDB `WriteBatch` with `sync = true`, and only then acknowledges each submitter
//! with its sequence number. While one sync is in flight the next group queues up, so the
//! batch size adapts to the load: one unit per sync when idle, thousands under pressure.
//!
//! A failed write or sync poisons the store for good: the failed group and every later unit
//! are refused. We never retry an fsync: after a failed fsync the kernel may have dropped the
//! dirty pages, and a retry that "succeeds" would acknowledge data that is not on disk.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bincode::Encode;
use crossbeam_channel::Receiver;
use std::collections::HashMap;

use engine::{AccountId, Effect, TransferId};
use rocksdb::{WriteBatch, WriteOptions};
use tokio::sync::oneshot;

use crate::codec::{self, Kind};
use crate::error::{Result, StoreError};
use crate::schema::{seq_key, AccountDelta};
use crate::store::Inner;

/// Everything that must become durable together: effects for the journal and the accounts,
/// plus records of the layers above (idempotency keys, API objects) that must never be
/// separated from the effects they describe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitUnit {
    pub effects: Vec<Effect>,
    /// Key/value pairs for the `aux` column family.
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
}

impl CommitUnit {
    pub fn effect(effect: Effect) -> CommitUnit {
        CommitUnit {
            effects: vec![effect],
            aux: Vec::new(),
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

pub(crate) enum Msg {
    Commit(CommitUnit, oneshot::Sender<Result<u64>>),
    /// Finish what is queued, then exit.
    Stop,
}

/// A journal entry borrowed from a unit: encodes exactly like [`crate::JournalEntry`].
#[derive(Encode)]
struct JournalEntryRef<'a> {
    seq: u64,
    effects: &'a [Effect],
}

/// Seconds one group write took, `fdatasync` included (a histogram).
pub const WAL_SYNC_SECONDS: &str = "rongpay_wal_sync_duration_seconds";
/// Commit units per synced group write (a histogram).
pub const WAL_BATCH_UNITS: &str = "rongpay_wal_batch_units";
/// Bytes per synced group write (a histogram).
pub const WAL_BATCH_BYTES: &str = "rongpay_wal_batch_bytes";

pub(crate) fn run(inner: Arc<Inner>, rx: Receiver<Msg>, batch_units_max: usize) {
    let wal_metrics = WalMetrics {
        sync: metrics::histogram!(WAL_SYNC_SECONDS),
        units: metrics::histogram!(WAL_BATCH_UNITS),
        bytes: metrics::histogram!(WAL_BATCH_BYTES),
    };
    let mut write_options = WriteOptions::default();
    write_options.set_sync(true);
    write_options.set_no_slowdown(true);
    let mut group: Vec<(CommitUnit, oneshot::Sender<Result<u64>>)> =
        Vec::with_capacity(batch_units_max);
    let mut stopping = false;
    while !stopping {
        match rx.recv() {
            Ok(Msg::Commit(unit, ack)) => group.push((unit, ack)),
            Ok(Msg::Stop) | Err(_) => break,
        }
        while group.len() < batch_units_max {
            match rx.try_recv() {
                Ok(Msg::Commit(unit, ack)) => group.push((unit, ack)),
                Ok(Msg::Stop) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        write_group(&inner, &mut group, &write_options, &wal_metrics);
    }
    // Anything that raced with Stop is refused, not dropped silently.
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Commit(_, ack) = msg {
            let _ = ack.send(Err(StoreError::Closed));
        }
    }
}

/// The longest a group waits out a RocksDB write stall before the store poisons itself.
pub const WRITE_STALL_MAX: Duration = Duration::from_secs(10);

/// The group as one `WriteBatch`: every unit's journal entry, records and dedup keys, then one
/// merge operand per account (a hot account costs one memtable insert per sync, not one per
/// transfer), after the base records of the accounts this group creates.
fn build_batch(
    inner: &Inner,
    group: &[(CommitUnit, oneshot::Sender<Result<u64>>)],
    first_seq: u64,
) -> WriteBatch {
    let mut batch = WriteBatch::default();
    let mut deltas = Deltas::default();
    for (i, (unit, _)) in group.iter().enumerate() {
        add_unit(inner, &mut batch, &mut deltas, first_seq + i as u64, unit);
    }
    for (account, delta) in &deltas {
        batch.merge_cf(
            inner.cf_accounts(),
            account.to_be_bytes(),
            codec::encode(Kind::AccountDelta, delta),
        );
    }
    batch
}

/// The writer's histograms, looked up once when it starts (the process's recorder is
/// installed before the store opens).
struct WalMetrics {
    sync: metrics::Histogram,
    units: metrics::Histogram,
    bytes: metrics::Histogram,
}

fn write_group(
    inner: &Inner,
    group: &mut Vec<(CommitUnit, oneshot::Sender<Result<u64>>)>,
    write_options: &WriteOptions,
    wal_metrics: &WalMetrics,
) {
    if let Some(reason) = inner.poison_reason() {
        for (_, ack) in group.drain(..) {
            let _ = ack.send(Err(StoreError::Poisoned(reason.clone())));
        }
        return;
    }
    let first_seq = inner.last_seq.load(Ordering::Acquire) + 1;
    let started = Instant::now();
    let mut bytes;
    let result = loop {
        let batch = build_batch(inner, group, first_seq);
        bytes = batch.size_in_bytes();
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
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => break Err(StoreError::from(e)),
        }
    };
    let elapsed = started.elapsed();
    inner.stats.record_group(group.len(), bytes, elapsed);
    wal_metrics.sync.record(elapsed.as_secs_f64());
    wal_metrics.units.record(group.len() as f64);
    wal_metrics.bytes.record(bytes as f64);
    match result {
        Ok(()) => {
            let last = first_seq + group.len() as u64 - 1;
            inner.last_seq.store(last, Ordering::Release);
            for (i, (_, ack)) in group.drain(..).enumerate() {
                // A submitter that gave up waiting is fine: its unit is durable regardless.
                let _ = ack.send(Ok(first_seq + i as u64));
            }
        }
        Err(e) => {
            let reason = e.to_string();
            tracing::error!(error = %reason, units = group.len(), "group write failed; store poisoned");
            inner.poison(reason);
            for (_, ack) in group.drain(..) {
                let _ = ack.send(Err(e.clone()));
            }
        }
    }
}

/// Balance and status changes of one group, summed per account.
type Deltas = HashMap<AccountId, AccountDelta, foldhash::fast::RandomState>;

fn add_delta(deltas: &mut Deltas, account: AccountId, delta: AccountDelta) {
    let slot = deltas.entry(account).or_default();
    // Two deltas of one group sum to less than the largest possible balance swing: this
    // cannot overflow i128.
    *slot = slot.then(delta).expect("group deltas fit in i128");
}

fn add_unit(
    inner: &Inner,
    batch: &mut WriteBatch,
    deltas: &mut Deltas,
    seq: u64,
    unit: &CommitUnit,
) {
    let entry = JournalEntryRef {
        seq,
        effects: &unit.effects,
    };
    batch.put_cf(
        inner.cf_journal(),
        seq_key(seq),
        codec::encode(Kind::Journal, &entry),
    );
    for effect in &unit.effects {
        match effect {
            Effect::AccountCreated(account) => {
                batch.put_cf(
                    inner.cf_accounts(),
                    account.id.to_be_bytes(),
                    codec::encode(Kind::Account, account),
                );
            }
            Effect::Posted(transfer) => {
                batch.put_cf(inner.cf_dedup(), transfer.id.to_be_bytes(), seq_key(seq));
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
        }
    }
    for (key, value) in &unit.aux {
        match key.strip_prefix(crate::schema::AUDIT_ROUTE) {
            Some(audit_key) => batch.put_cf(inner.cf_audit(), audit_key, value),
            None => batch.put_cf(inner.cf_aux(), key, value),
        }
    }
}

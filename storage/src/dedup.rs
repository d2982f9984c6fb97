//! The dedup index's newest ids, held in memory as sorted runs and written to the dedup
//! family as whole table files (RocksDB's external file ingestion) instead of one memtable
//! insert each.
//!
//! Why: a transfer's dedup key (its id, random, → the sequence number of its entry) was the
//! one key of a batch transfer, and its skiplist insert, its flush and its compactions were
//! more than a quarter of the batch endpoint's CPU: without the key (a throwaway build that
//! did not write it) the endpoint did 588k–645k transfers/s against 446k–453k in alternated
//! runs (docs/BENCHMARKS.md, session 39). The id needs no key of its own in the synced
//! write: the group's journal record, in that same write, names every transfer it posts.
//! So the writer keeps each group's ids (already sorted, `writer::find_duplicates`) as a
//! run in memory, readers look there before the family, and a thread of its own merges the
//! runs into one sorted table file now and then and ingests it (no memtable, no flush).
//!
//! What is durable when: an id is durable with its journal entry, as before. The meta key
//! [`META_DEDUP_THROUGH`] says through which entry every posted id is in the dedup family;
//! it is written after the ingestion that made that true returns (the ingestion syncs its
//! file and RocksDB's MANIFEST), so it can lag, never lead. Open replays the journal after
//! it into the family ([`replay`]), as it replays balances after their checkpoint.
//!
//! Bounds: ids held in memory are at most [`HELD_IDS_MAX`]; past it (ingestion failing or
//! behind) the writer writes its groups' dedup keys in the synced write again, as it did
//! before runs existed, until ingestion catches up. A run is merged with the one before it
//! while the two are of like size and small ([`MERGE_IDS_MAX`]), so a lookup searches few
//! runs.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rocksdb::{
    BlockBasedOptions, DBCompressionType, IngestExternalFileOptions, Options, SstFileWriter,
};

use crate::codec::{self, Kind};
use crate::error::{Result, StoreError};
use crate::schema::{seq_key, BalancesThrough, META_DEDUP_THROUGH};
use crate::store::{write_synced, Inner};

/// A posted transfer's id (big-endian, the family's key) and its entry's sequence number.
pub(crate) type Posted = ([u8; 16], u64);

/// The open runs are sealed for ingestion once they hold this many ids...
pub const SEAL_IDS: usize = 262_144;
/// ...or, holding any, this long after the last seal.
pub const SEAL_INTERVAL: Duration = Duration::from_secs(5);
/// Ids held in memory (sealed and open) at most; past it groups write their dedup keys
/// inline. 24 bytes each: 24 MiB.
pub const HELD_IDS_MAX: usize = 1 << 20;
/// Two neighbouring runs are merged only while the result holds at most this many ids
/// (a merge is the writer's time: ≈ 0.1 ms at this size).
pub const MERGE_IDS_MAX: usize = 16_384;
/// A failed ingestion is tried again after this long.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Where table files are written before they are ingested, inside the store's directory.
pub const INGEST_DIR: &str = "ingest";

/// One group's ids, or several neighbouring groups' merged: sorted by id, unique.
struct Run {
    /// Shared: the ingesting thread takes the sealed runs' ids without copying them, and
    /// merges them after it has let go of the runs' lock.
    ids: Arc<Vec<Posted>>,
    /// The last sequence number of the groups it holds.
    through: u64,
}

/// The ids posted since [`META_DEDUP_THROUGH`], oldest run first: `runs[..sealed]` are being
/// ingested (nothing changes them until the ingestion ends), the rest are open.
pub(crate) struct Runs {
    runs: Vec<Run>,
    sealed: usize,
    held: usize,
    last_seal: Option<Instant>,
    /// [`SEAL_IDS`] and [`HELD_IDS_MAX`] unless configured (`StoreOptions`).
    seal_ids: usize,
    held_max: usize,
}

impl Default for Runs {
    fn default() -> Runs {
        Runs::new(SEAL_IDS, HELD_IDS_MAX)
    }
}

impl Runs {
    pub(crate) fn new(seal_ids: usize, held_max: usize) -> Runs {
        Runs {
            runs: Vec::new(),
            sealed: 0,
            held: 0,
            // Counted from the start: a store's first group is not ingested on its own.
            last_seal: Some(Instant::now()),
            seal_ids: seal_ids.max(1),
            held_max,
        }
    }

    /// The entry that posted `id`, if a run holds it (the newest run first: an id posted
    /// again after its key was pruned is found at its newer entry).
    pub(crate) fn find(&self, id: &[u8; 16]) -> Option<u64> {
        self.runs.iter().rev().find_map(|run| {
            run.ids
                .binary_search_by(|(k, _)| k.cmp(id))
                .ok()
                .map(|i| run.ids[i].1)
        })
    }

    /// Ids held, sealed and open.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Whether a group's ids may be added (else they are written inline).
    pub(crate) fn has_room(&self, ids: usize) -> bool {
        self.held + ids <= self.held_max
    }

    /// Adds a written group's ids (sorted by id, unique) through entry `through`, merging
    /// the newest runs while they are of like size, and seals the open runs when ingestion
    /// is idle and they hold enough (or it is long enough since the last seal). Answers
    /// whether it sealed: the ingesting thread is to be woken.
    pub(crate) fn push(&mut self, ids: Vec<Posted>, through: u64) -> bool {
        debug_assert!(ids.windows(2).all(|w| w[0].0 < w[1].0));
        self.held += ids.len();
        self.runs.push(Run {
            ids: Arc::new(ids),
            through,
        });
        while self.runs.len() - self.sealed >= 2 {
            let n = self.runs.len();
            let (a, b) = (self.runs[n - 2].ids.len(), self.runs[n - 1].ids.len());
            if a > 2 * b || a + b > MERGE_IDS_MAX {
                break;
            }
            let newer = self.runs.pop().expect("two open runs");
            let older = self.runs.last_mut().expect("two open runs");
            older.ids = Arc::new(merge(&older.ids, &newer.ids));
            older.through = newer.through;
            // Merging drops nothing but an id in both (posted again after a prune).
            self.held -= a + b - older.ids.len();
        }
        let open: usize = self.runs[self.sealed..].iter().map(|r| r.ids.len()).sum();
        let due = self.sealed == 0
            && open > 0
            && (open >= self.seal_ids
                || self.last_seal.is_none_or(|t| t.elapsed() >= SEAL_INTERVAL));
        if due {
            self.seal_all();
        }
        due
    }

    /// Seals every open run for ingestion; answers how many runs are sealed (0: none held).
    fn seal_all(&mut self) -> usize {
        self.sealed = self.runs.len();
        self.last_seal = Some(Instant::now());
        self.sealed
    }

    /// The sealed runs (oldest first, shared, not copied) and the last entry they cover.
    /// Cheap, for the runs' lock: [`merge_runs`] makes one list of them after it is let go.
    /// (Copying and sorting them under the read lock held up the writer, which takes the
    /// write lock after every group: 12–15 ms at each seal of 262,144 ids, session 41.)
    fn sealed_runs(&self) -> (Vec<Arc<Vec<Posted>>>, u64) {
        let sealed = &self.runs[..self.sealed];
        let through = sealed.iter().map(|r| r.through).max().unwrap_or(0);
        (sealed.iter().map(|r| Arc::clone(&r.ids)).collect(), through)
    }

    #[cfg(test)]
    fn sealed_ids(&self) -> (Vec<Posted>, u64) {
        let (runs, through) = self.sealed_runs();
        (merge_runs(runs), through)
    }

    /// The sealed runs are in the family: drop them.
    fn ingested(&mut self) {
        self.runs.drain(..self.sealed);
        self.sealed = 0;
        self.held = self.runs.iter().map(|r| r.ids.len()).sum();
    }
}

/// Sorted runs, oldest first, as one sorted list; of an id in several, the newest run's
/// entry. One copy and a stable sort, which finds the runs already sorted: 12–15 ms for
/// 262,800 ids in 24 runs, where merging neighbours pairwise took 19–20 ms (session 41).
fn merge_runs(runs: Vec<Arc<Vec<Posted>>>) -> Vec<Posted> {
    let mut ids = Vec::with_capacity(runs.iter().map(|r| r.len()).sum());
    for run in &runs {
        ids.extend_from_slice(run);
    }
    // Stable, and the runs are sorted: a merge of runs, oldest first among equals.
    ids.sort_by_key(|a| a.0);
    let mut out: Vec<Posted> = Vec::with_capacity(ids.len());
    for p in ids {
        match out.last_mut() {
            Some(last) if last.0 == p.0 => *last = p,
            _ => out.push(p),
        }
    }
    out
}

/// Two sorted runs as one; of an id in both, `newer`'s entry.
fn merge(older: &[Posted], newer: &[Posted]) -> Vec<Posted> {
    let mut out = Vec::with_capacity(older.len() + newer.len());
    let (mut i, mut j) = (0, 0);
    while i < older.len() && j < newer.len() {
        match older[i].0.cmp(&newer[j].0) {
            std::cmp::Ordering::Less => {
                out.push(older[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(newer[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(newer[j]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&older[i..]);
    out.extend_from_slice(&newer[j..]);
    out
}

/// The runs and their ingestion, shared by the writer, the readers and the ingesting thread.
pub(crate) struct Dedup {
    pub(crate) runs: RwLock<Runs>,
    /// Held across one ingestion: the thread's, or a caller's that needs every id in the
    /// family first ([`ingest_all`]).
    ingesting: Mutex<()>,
    dir: PathBuf,
}

impl Dedup {
    pub(crate) fn new(store_dir: &Path, seal_ids: usize, held_max: usize) -> Dedup {
        Dedup {
            runs: RwLock::new(Runs::new(seal_ids, held_max)),
            ingesting: Mutex::new(()),
            dir: store_dir.join(INGEST_DIR),
        }
    }

    /// The ingesting lock: one ingestion at a time.
    fn turn(&self) -> std::sync::MutexGuard<'_, ()> {
        self.ingesting.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn runs(&self) -> std::sync::RwLockReadGuard<'_, Runs> {
        self.runs.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn runs_mut(&self) -> std::sync::RwLockWriteGuard<'_, Runs> {
        self.runs.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes what an interrupted ingestion left (a file written, never ingested).
    pub(crate) fn clear_dir(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io(format!(
                "cannot clear {}: {e}",
                self.dir.display()
            ))),
        }
    }
}

/// The options table files are written with: the dedup family's (store.rs, `keyed_by_id`):
/// bloom filters of 10 bits a key on whole keys, no compression; and, as the store's own
/// flushes, written back every 1 MiB rather than all at the file's final sync, which would
/// put ≈ 8 MiB in the disk's queue ahead of the WAL's next sync.
pub(crate) fn table_options() -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    table.set_whole_key_filtering(true);
    let mut o = Options::default();
    o.set_block_based_table_factory(&table);
    o.set_compression_type(DBCompressionType::None);
    o.set_bytes_per_sync(1 << 20);
    o
}

/// Ingests the sealed runs, if any: one table file of their ids, then
/// [`META_DEDUP_THROUGH`], then the runs are dropped. Under `ingesting`.
fn ingest_sealed(inner: &Inner) -> Result<()> {
    let (runs, through) = {
        let runs = inner.dedup.runs();
        if runs.sealed == 0 {
            return Ok(());
        }
        runs.sealed_runs()
    };
    let ids = merge_runs(runs);
    let dir = &inner.dedup.dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join(format!("dedup-{through:020}.sst"));
    let written = write_table(&path, &ids).and_then(|()| {
        let mut o = IngestExternalFileOptions::default();
        // Linked into the store, not copied: the file is the store's from here on.
        o.set_move_files(true);
        inner
            .db
            .ingest_external_file_cf_opts(inner.cf_dedup(), &o, vec![&path])
            .map_err(StoreError::from)
    });
    let _ = std::fs::remove_file(&path);
    written?;
    // After the ingestion returned (its file and the MANIFEST synced): the mark never
    // claims an id the family does not hold.
    mark(inner, through)?;
    inner.dedup.runs_mut().ingested();
    inner
        .stats
        .dedup_ingested
        .fetch_add(ids.len() as u64, Ordering::Relaxed);
    metrics::counter!(crate::writer::WAL_DEDUP_INGESTED_IDS).increment(ids.len() as u64);
    Ok(())
}

fn write_table(path: &Path, ids: &[Posted]) -> Result<()> {
    let options = table_options();
    let mut writer = SstFileWriter::create(&options);
    writer.open(path)?;
    for (id, seq) in ids {
        writer.put(id, seq_key(*seq))?;
    }
    writer.finish()?;
    Ok(())
}

/// Puts every held id into the dedup family now (before ids are deleted from it, so that a
/// later ingestion cannot bring a pruned id back; and at a clean stop, so the next open
/// replays nothing).
pub(crate) fn ingest_all(inner: &Inner) -> Result<()> {
    let _turn = inner.dedup.turn();
    // Runs sealed before and not ingested (a failed try) go first, then the rest.
    ingest_sealed(inner)?;
    let through = {
        let mut runs = inner.dedup.runs_mut();
        if runs.seal_all() > 0 {
            None
        } else {
            // Nothing held: every id posted so far is in the family (ingested, or written
            // inline while the runs were full). Read under the lock: the writer adds a
            // group's run before it moves `last_seq` past the group.
            Some(inner.last_seq.load(Ordering::Acquire))
        }
    };
    match through {
        None => ingest_sealed(inner),
        Some(through) => mark(inner, through),
    }
}

/// Ingests the sealed balance checkpoint now, if there is one (a clean stop), waiting for
/// the ingesting thread if it is ingesting.
pub(crate) fn ingest_balances_now(inner: &Inner) -> Result<()> {
    let _turn = inner.dedup.turn();
    crate::writer::ingest_sealed_balances(inner, &inner.dedup.dir)
}

/// Writes [`META_DEDUP_THROUGH`]. Not synced: a mark lost in a crash only makes the next
/// open replay more.
fn mark(inner: &Inner, through: u64) -> Result<()> {
    let mut batch = rocksdb::WriteBatch::default();
    batch.put_cf(
        inner.cf_meta(),
        META_DEDUP_THROUGH,
        codec::encode(Kind::Meta, &BalancesThrough { seq: through }),
    );
    inner.db.write(batch)?;
    Ok(())
}

/// The ingesting thread: told by the writer when runs are sealed, it ingests them; a
/// failed ingestion is tried again every [`RETRY_AFTER`]. Stops when the writer drops its
/// end of `rx`.
pub(crate) fn spawn_ingester(inner: &Arc<Inner>) -> Result<(Sender<()>, JoinHandle<()>)> {
    let (tx, rx): (Sender<()>, Receiver<()>) = crossbeam_channel::bounded(1);
    let inner = Arc::clone(inner);
    let handle = std::thread::Builder::new()
        .name("rongpay-dedup".to_string())
        .spawn(move || {
            let mut failing = false;
            loop {
                let wait = if failing {
                    RETRY_AFTER
                } else {
                    Duration::from_secs(3600)
                };
                match rx.recv_timeout(wait) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                let _turn = inner.dedup.turn();
                // The sealed balance checkpoint first: the writer writes no other until it is
                // in. A failure gives its deltas back to the writer, so it is not retried here.
                if let Err(e) = crate::writer::ingest_sealed_balances(&inner, &inner.dedup.dir) {
                    tracing::warn!(
                        error = %e,
                        "ingesting a balance checkpoint failed; its deltas stay in memory and checkpoints go to the memtable for a while"
                    );
                }
                match ingest_sealed(&inner) {
                    Ok(()) => failing = false,
                    Err(e) => {
                        if !failing {
                            tracing::warn!(
                                error = %e,
                                "ingesting the dedup index's ids failed; they stay in memory and it is tried again"
                            );
                        }
                        failing = true;
                    }
                }
            }
        })
        .map_err(|e| StoreError::Io(format!("cannot start the dedup thread: {e}")))?;
    Ok((tx, handle))
}

/// Ids replayed into the family a write at a time on open.
const REPLAY_CHUNK: usize = 65_536;

/// On open: puts into the dedup family the ids of the journal entries after
/// [`META_DEDUP_THROUGH`] (held in memory when the store stopped), in synced writes, the
/// last with the new mark. A store without the mark (layout 4 and older) wrote every id
/// with its entry: marked complete through `last`. Answers the ids replayed.
pub(crate) fn replay(inner: &Inner, last: u64, layout: Option<u8>) -> Result<u64> {
    let value = inner.db.get_cf(inner.cf_meta(), META_DEDUP_THROUGH)?;
    let through = match crate::store::meta_seq(value.as_deref(), "dedup_through")? {
        Some(seq) => seq,
        None if layout.is_some_and(|l| l >= crate::schema::LAYOUT_DEDUP_RUNS) => {
            return Err(StoreError::Inconsistent(
                "the dedup index's mark is missing from a store of layout 5 or later".into(),
            ))
        }
        None => last,
    };
    if through > last {
        return Err(StoreError::Inconsistent(format!(
            "the dedup index is marked complete through entry {through}, past the journal's last entry {last}"
        )));
    }
    let mut replayed = 0u64;
    let mut pending: Vec<Posted> = Vec::new();
    let batch_of = |pending: &mut Vec<Posted>| {
        pending.sort_unstable();
        let mut batch = rocksdb::WriteBatch::default();
        for (id, seq) in pending.drain(..) {
            batch.put_cf(inner.cf_dedup(), id, seq_key(seq));
        }
        batch
    };
    if through < last {
        crate::store::for_each_contiguous_entry(inner, through + 1, |entry| {
            for effect in &entry.effects {
                if let engine::Effect::Posted(t) = effect {
                    pending.push((t.id.to_be_bytes(), entry.seq));
                    replayed += 1;
                }
            }
            if pending.len() >= REPLAY_CHUNK {
                write_synced(inner, batch_of(&mut pending))?;
            }
            Ok(())
        })?;
    }
    let mut batch = batch_of(&mut pending);
    batch.put_cf(
        inner.cf_meta(),
        META_DEDUP_THROUGH,
        codec::encode(Kind::Meta, &BalancesThrough { seq: last }),
    );
    write_synced(inner, batch)?;
    Ok(replayed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> [u8; 16] {
        n.to_be_bytes()
    }

    #[test]
    fn merging_keeps_order_and_the_newer_entry() {
        let older = vec![(id(1), 1), (id(3), 1), (id(5), 1)];
        let newer = vec![(id(2), 2), (id(3), 2), (id(6), 2)];
        assert_eq!(
            merge(&older, &newer),
            vec![(id(1), 1), (id(2), 2), (id(3), 2), (id(5), 1), (id(6), 2)]
        );
    }

    #[test]
    fn runs_merge_while_small_and_alike_and_find_every_id() {
        let mut runs = Runs::default();
        let mut all = Vec::new();
        for g in 0..200u64 {
            let ids: Vec<Posted> = (0..100u128)
                .map(|k| (id(u128::from(g) * 1_000 + k * 3), g + 1))
                .collect();
            all.extend_from_slice(&ids);
            runs.push(ids, g + 1);
        }
        // 20,000 ids in runs of at most MERGE_IDS_MAX: a handful of runs, not 200.
        assert!(runs.runs.len() < 12, "{} runs", runs.runs.len());
        assert_eq!(runs.held(), all.len());
        for (k, seq) in &all {
            assert_eq!(runs.find(k), Some(*seq));
        }
        assert_eq!(runs.find(&id(u128::MAX)), None);
    }

    #[test]
    fn sealed_runs_stay_as_they_are_and_open_ones_keep_merging() {
        let mut runs = Runs::new(1, HELD_IDS_MAX);
        // Sealed as soon as it holds `seal_ids`.
        assert!(runs.push(vec![(id(10), 1)], 1));
        assert_eq!(runs.sealed, 1);
        assert!(!runs.push(vec![(id(5), 2)], 2));
        assert!(!runs.push(vec![(id(7), 3)], 3));
        // The two open runs merged; the sealed one did not take them.
        assert_eq!(runs.runs.len(), 2);
        let (ids, through) = runs.sealed_ids();
        assert_eq!((ids, through), (vec![(id(10), 1)], 1));
        runs.ingested();
        assert_eq!(runs.held(), 2);
        assert_eq!(runs.find(&id(10)), None);
        assert_eq!(runs.find(&id(7)), Some(3));
    }

    #[test]
    fn sealed_runs_merge_into_one_list_the_newest_entry_winning() {
        let run = |v: Vec<(u128, u64)>| Arc::new(v.into_iter().map(|(k, s)| (id(k), s)).collect());
        let merged = merge_runs(vec![
            run(vec![(1, 1), (3, 1), (9, 1)]),
            run(vec![(2, 2), (3, 2)]),
            run(vec![(3, 3), (4, 3), (9, 3)]),
            run(vec![(0, 4)]),
            run(vec![(4, 5), (8, 5)]),
        ]);
        let want: Vec<Posted> = [(0, 4), (1, 1), (2, 2), (3, 3), (4, 5), (8, 5), (9, 3)]
            .into_iter()
            .map(|(k, s)| (id(k), s))
            .collect();
        assert_eq!(merged, want);
        assert_eq!(merge_runs(vec![run(vec![(7, 1)])]), vec![(id(7), 1)]);
        assert!(merge_runs(Vec::new()).is_empty());
    }

    #[test]
    fn an_id_in_two_sealed_runs_is_ingested_at_its_newer_entry() {
        let mut runs = Runs::default();
        assert!(!runs.push((0..20_000u128).map(|k| (id(k * 2), 1)).collect(), 1));
        assert!(!runs.push(vec![(id(4), 2), (id(5), 2)], 2));
        assert_eq!(runs.seal_all(), 2);
        let (ids, through) = runs.sealed_ids();
        assert_eq!(through, 2);
        assert_eq!(ids.len(), 20_001);
        assert!(ids.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(ids.contains(&(id(4), 2)) && ids.contains(&(id(5), 2)));
        assert_eq!(runs.find(&id(4)), Some(2));
    }
}

//! The dedup index's newest ids held by the writer as runs and ingested into the dedup
//! family as table files (`storage::dedup`): every acknowledged id is found and refused
//! again, held, ingested, inline past the bound, and after a crash.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::common::*;
use engine::TransferId;
use storage::{Store, StoreError, StoreOptions};

fn options(seal_ids: usize, held_max: usize) -> StoreOptions {
    StoreOptions {
        dedup_seal_ids: seal_ids,
        dedup_held_ids_max: held_max,
        ..StoreOptions::default()
    }
}

/// Submits transfers `ids` (user 0 → user 1, 1 each) as one group; answers their seqs.
fn post(store: &Store, ids: std::ops::Range<u128>) -> Vec<u64> {
    let units = ids.map(|id| transfer(id, user(0), user(1), 1)).collect();
    block_on(store.submit_many(units).unwrap())
        .unwrap()
        .into_iter()
        .map(|o| o.unwrap())
        .collect()
}

/// Sends `ids` again: every one must be refused as a duplicate.
fn assert_refused(store: &Store, ids: std::ops::Range<u128>) {
    let units = ids
        .clone()
        .map(|id| transfer(id, user(0), user(1), 1))
        .collect();
    let outcomes = block_on(store.submit_many(units).unwrap()).unwrap();
    for (id, outcome) in ids.zip(outcomes) {
        assert_eq!(
            outcome,
            Err(StoreError::DuplicateTransfer(id)),
            "transfer {id}"
        );
    }
}

fn assert_found(store: &Store, first_id: u128, seqs: &[u64]) {
    let ids: Vec<TransferId> = (0..seqs.len() as u128)
        .map(|k| TransferId(first_id + k))
        .collect();
    let found = store.transfer_seqs(&ids).unwrap();
    for (k, (found, seq)) in found.iter().zip(seqs).enumerate() {
        assert_eq!(*found, Some(*seq), "transfer {}", first_id + k as u128);
    }
}

/// Waits for a oneshot outside any runtime (the writer answers from its own thread).
fn block_on<T>(rx: tokio::sync::oneshot::Receiver<T>) -> T {
    rx.blocking_recv().expect("the writer answers")
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "waited 30 s for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn held_and_ingested_ids_are_found_refused_and_survive_a_crash() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let (store, _) = Store::open(&live, options(1_000, 1 << 20)).unwrap();
    store.commit_blocking(create_accounts(2)).unwrap();
    store
        .commit_blocking(transfer(1, FUNDS, user(0), 1_000_000))
        .unwrap();
    // Ten groups of 300: sealed at 1,000 held, ingested by the writer's thread.
    let mut seqs = Vec::new();
    for g in 0..10u128 {
        seqs.extend(post(&store, 10_000 + g * 300..10_000 + (g + 1) * 300));
    }
    wait_for("an ingestion", || {
        store.stats().dedup_ingested.load(Ordering::Relaxed) >= 1_000
    });
    let ingested = store.stats().dedup_ingested.load(Ordering::Relaxed);
    assert!(ingested < 3_000, "some ids still held: {ingested} ingested");
    assert_eq!(store.stats().dedup_inline_groups.load(Ordering::Relaxed), 0);
    // Found wherever they are (runs or family), and refused again: ingested ones, held ones,
    // and a group mixing both with new ids.
    assert_found(&store, 10_000, &seqs);
    assert_refused(&store, 10_000..10_100);
    assert_refused(&store, 12_900..13_000);
    let mixed: Vec<_> = (12_950..13_050)
        .map(|id| transfer(id, user(0), user(1), 1))
        .collect();
    let outcomes = block_on(store.submit_many(mixed).unwrap()).unwrap();
    assert!(outcomes[..50]
        .iter()
        .all(|o| matches!(o, Err(StoreError::DuplicateTransfer(_)))));
    assert!(outcomes[50..].iter().all(|o| o.is_ok()));
    let v = store.verify().unwrap();
    assert_eq!(v.transfers, 1 + 3_000 + 50);

    // A crash: the image holds what the ingestions wrote and the journal, not the runs.
    wait_for("the ingestion to settle", || {
        let before = store.stats().dedup_ingested.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(50));
        before == store.stats().dedup_ingested.load(Ordering::Relaxed)
    });
    let image = root.path().join("image");
    copy_dir(&live, &image);
    drop(store);
    let (store, recovery) = Store::open(&image, options(1_000, 1 << 20)).unwrap();
    assert!(
        recovery.dedup_replayed > 0 && recovery.dedup_replayed < 3_051,
        "{recovery:?}"
    );
    assert_found(&store, 10_000, &seqs);
    assert_refused(&store, 10_000..13_050);
    store.verify().unwrap();
    drop(store);

    // A clean stop ingests what is held: the next open replays nothing.
    let (store, recovery) = Store::open(&live, options(1_000, 1 << 20)).unwrap();
    assert_eq!(recovery.dedup_replayed, 0);
    assert_refused(&store, 10_000..13_050);
    store.verify().unwrap();
}

#[test]
fn past_the_bound_groups_write_their_ids_inline() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    // Never sealed by count (the interval is 5 s): the runs fill up at 300 ids.
    let (store, _) = Store::open(&live, options(1 << 30, 300)).unwrap();
    store.commit_blocking(create_accounts(2)).unwrap();
    store
        .commit_blocking(transfer(1, FUNDS, user(0), 1_000_000))
        .unwrap();
    let mut seqs = Vec::new();
    for g in 0..6u128 {
        seqs.extend(post(&store, 10_000 + g * 100..10_000 + (g + 1) * 100));
    }
    let inline = store.stats().dedup_inline_groups.load(Ordering::Relaxed);
    assert!(inline >= 3, "{inline} groups inline");
    assert_found(&store, 10_000, &seqs);
    assert_refused(&store, 10_000..10_600);
    let image = root.path().join("image");
    copy_dir(&live, &image);
    drop(store);
    let (store, recovery) = Store::open(&image, options(1 << 30, 300)).unwrap();
    // The held ones come back from the journal; the inline ones were in the family.
    assert!(recovery.dedup_replayed >= 1, "{recovery:?}");
    assert_found(&store, 10_000, &seqs);
    assert_refused(&store, 10_000..10_600);
    store.verify().unwrap();
}

#[test]
fn a_store_of_layout_4_is_marked_complete_and_labelled_5() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Every key written inline, as layout 4 did; then the mark removed and the label
        // set back, as a layout-4 store has them.
        let (store, _) = Store::open(dir.path(), options(1 << 30, 0)).unwrap();
        store.commit_blocking(create_accounts(2)).unwrap();
        store
            .commit_blocking(transfer(1, FUNDS, user(0), 1_000))
            .unwrap();
        post(&store, 100..200);
        assert!(store.stats().dedup_inline_groups.load(Ordering::Relaxed) >= 2);
    }
    {
        let opts = rocksdb::Options::default();
        let db = rocksdb::DB::open_cf(&opts, dir.path(), storage::schema::COLUMN_FAMILIES).unwrap();
        let meta = db.cf_handle(storage::schema::CF_META).unwrap();
        db.delete_cf(meta, storage::schema::META_DEDUP_THROUGH)
            .unwrap();
        db.put_cf(
            meta,
            storage::schema::META_FORMAT_VERSION,
            storage::codec::encode(
                storage::codec::Kind::Meta,
                &storage::schema::FormatMeta {
                    format_version: storage::schema::LAYOUT_GL_BOOK,
                },
            ),
        )
        .unwrap();
        db.flush_cf(meta).unwrap();
    }
    let (store, recovery) = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!((recovery.last_seq, recovery.dedup_replayed), (102, 0));
    assert_refused(&store, 100..200);
    store.verify().unwrap();
    drop(store);
    let opts = rocksdb::Options::default();
    let db = rocksdb::DB::open_cf_for_read_only(
        &opts,
        dir.path(),
        storage::schema::COLUMN_FAMILIES,
        false,
    )
    .unwrap();
    let meta = db.cf_handle(storage::schema::CF_META).unwrap();
    let layout: storage::schema::FormatMeta = storage::codec::decode(
        storage::codec::Kind::Meta,
        &db.get_cf(meta, storage::schema::META_FORMAT_VERSION)
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(layout.format_version, storage::schema::LAYOUT_VERSION);
}

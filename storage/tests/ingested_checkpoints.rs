//! Balance checkpoints ingested as table files (store layout 6): once the unflushed deltas
//! hold `balance_seal_accounts` accounts the writer seals them, and the ingesting thread
//! writes them, with the accounts' position, as one table file of merge operands that it
//! ingests into the accounts family. Reads see every balance throughout; a crash after an
//! ingestion, or with a sealed checkpoint never ingested (the GL book's position ahead of
//! the accounts'), recovers every balance and the GL book.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::common::*;
use storage::{Store, StoreOptions};

const USERS: u128 = 64;

/// Sealed at 16 accounts: every ninth group or so.
fn options() -> StoreOptions {
    StoreOptions {
        balance_seal_accounts: 16,
        checkpoint_interval: Duration::from_secs(3600),
        ..StoreOptions::default()
    }
}

/// The accounts, each user funded with 1,000; answers the balances expected.
fn open_accounts(store: &Store) -> Vec<i64> {
    store.commit_blocking(create_accounts(USERS)).unwrap();
    for i in 0..USERS {
        store
            .commit_blocking(transfer(1 + i, FUNDS, user(i), 1_000))
            .unwrap();
    }
    vec![1_000; USERS as usize]
}

/// `n` transfers of 1 to 10 between users, one group each, from id `from` on.
fn transfers(store: &Store, expected: &mut [i64], from: u128, n: u128) {
    for k in from..from + n {
        let (a, b) = (k % USERS, (k * 7 + 3) % USERS);
        if a == b {
            continue;
        }
        let amount = (k % 10 + 1) as i64;
        store
            .commit_blocking(transfer(10_000 + k, user(a), user(b), amount))
            .unwrap();
        expected[a as usize] -= amount;
        expected[b as usize] += amount;
    }
}

/// Moves `account` to the merchants' available balances in the GL.
fn reassign(store: &Store, account: engine::AccountId) {
    let from = store.account(account).unwrap().unwrap().gl;
    let gl = engine::gl::GlAccount::MerchantAvailable;
    assert_ne!(from, gl);
    store
        .commit_blocking(storage::CommitUnit::effect(engine::Effect::GlAssigned {
            account,
            from,
            gl,
            date: None,
        }))
        .unwrap();
}

fn check(store: &Store, expected: &[i64]) {
    for (i, want) in expected.iter().enumerate() {
        let got = store.account(user(i as u128)).unwrap().unwrap().balance;
        assert_eq!(got, *want, "user {i}");
    }
    store.verify().unwrap();
}

fn ingested(store: &Store) -> u64 {
    store.stats().ingested_checkpoints.load(Ordering::Relaxed)
}

/// Once the writer has passed every group so far (a duplicate is answered after the groups
/// before it, and a seal follows its group's answers), waits out the ingestion of every
/// sealed checkpoint. Answers the seals.
fn quiet(store: &Store) -> u64 {
    let _ = store.commit_blocking(transfer(1, FUNDS, user(0), 1_000));
    let seals = store.stats().balance_seals.load(Ordering::Relaxed);
    wait_for_ingestions(store, seals);
    seals
}

fn wait_for_ingestions(store: &Store, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while ingested(store) < at_least {
        assert!(Instant::now() < deadline, "no ingestion in 20 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn sealed_deltas_are_ingested_while_reads_see_every_balance_and_a_clean_stop_replays_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options()).unwrap();
    let mut expected = open_accounts(&store);
    transfers(&store, &mut expected, 0, 300);
    assert!(quiet(&store) >= 2);
    check(&store, &expected);
    let stats = store.stats();
    let accounts = stats.ingested_accounts.load(Ordering::Relaxed);
    let checkpoints = ingested(&store);
    assert!(
        accounts >= 16 * checkpoints,
        "{accounts} accounts in {checkpoints} table files"
    );
    println!("{checkpoints} checkpoints ingested, {accounts} accounts in them");
    transfers(&store, &mut expected, 300, 7);
    drop(store);
    let (store, recovery) = Store::open(dir.path(), options()).unwrap();
    assert_eq!(recovery.replayed, 0, "{recovery:?}");
    check(&store, &expected);
}

#[test]
fn a_crash_after_an_ingestion_replays_only_what_came_after_it() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let (store, _) = Store::open(&live, options()).unwrap();
    let mut expected = open_accounts(&store);
    transfers(&store, &mut expected, 0, 100);
    reassign(&store, user(5));
    transfers(&store, &mut expected, 100, 100);
    // A few groups after the last ingestion, none sealed (else again).
    let mut next = 200;
    loop {
        let seals = quiet(&store);
        assert!(seals >= 1);
        transfers(&store, &mut expected, next, 3);
        next += 3;
        if quiet(&store) == seals {
            break;
        }
    }
    let last = store.last_seq();
    let image = root.path().join("image");
    copy_dir(&live, &image);
    let (crashed, recovery) = Store::open(&image, options()).unwrap();
    assert_eq!(recovery.last_seq, last);
    assert!(
        recovery.replayed >= 3 && recovery.replayed < 100,
        "the ingested checkpoints are durable: {recovery:?}"
    );
    check(&crashed, &expected);
}

#[test]
fn a_crash_with_a_sealed_checkpoint_never_ingested_recovers_balances_and_book() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    // No memtable checkpoint by group count either: after the failed seal nothing moves
    // either position, so the reassignment below comes after the book's, with the account's
    // transfers since the accounts' position still to replay.
    let options = || StoreOptions {
        checkpoint_groups: u64::MAX,
        ..options()
    };
    let (store, _) = Store::open(&live, options()).unwrap();
    let mut expected = open_accounts(&store);
    // Where the table files are written, a file: every ingestion fails, its deltas go back
    // to the writer, and the groups that sealed them have written the GL book's position.
    let before = quiet(&store);
    let _ = std::fs::remove_dir_all(live.join(storage::INGEST_DIR));
    std::fs::write(live.join(storage::INGEST_DIR), b"in the way").unwrap();
    transfers(&store, &mut expected, 0, 50);
    // A GL reassignment among them: the replay books it into the GL book with the account
    // as it was just before (its balance moves from one GL account to the other).
    reassign(&store, user(3));
    transfers(&store, &mut expected, 50, 50);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ingested(&store), before);
    assert!(store.stats().balance_seals.load(Ordering::Relaxed) > before);
    check(&store, &expected);
    let image = root.path().join("image");
    copy_dir(&live, &image);
    std::fs::remove_file(image.join(storage::INGEST_DIR)).unwrap();
    let (crashed, recovery) = Store::open(&image, options()).unwrap();
    assert_eq!(recovery.last_seq, store.last_seq());
    check(&crashed, &expected);
    drop(crashed);
    // The live store goes on: checkpoints to the memtable meanwhile, then ingested again.
    std::fs::remove_file(live.join(storage::INGEST_DIR)).unwrap();
    transfers(&store, &mut expected, 100, 100);
    check(&store, &expected);
    drop(store);
    let (store, recovery) = Store::open(&live, options()).unwrap();
    assert_eq!(recovery.replayed, 0);
    check(&store, &expected);
}

//! Checkpointed balances (store layout 2) and group journal records (layout 3): between
//! checkpoints a group writes no balance merge operands; reads add what is not checkpointed
//! yet; a crash loses only the in-memory deltas, which open replays from the journal; a
//! group of units is one journal record; layout-1 and layout-2 stores open.

use crate::common::*;
use storage::codec::{self, Kind};
use storage::schema::{
    BalancesThrough, FormatMeta, CF_META, COLUMN_FAMILIES, LAYOUT_VERSION, META_BALANCES_THROUGH,
    META_FORMAT_VERSION,
};
use storage::{Store, StoreOptions};

/// Checkpoints by group count only: the tests do not depend on how fast the disk syncs.
fn options() -> StoreOptions {
    StoreOptions {
        checkpoint_interval: std::time::Duration::from_secs(3600),
        ..StoreOptions::default()
    }
}

fn meta(dir: &std::path::Path, key: &[u8]) -> Option<Vec<u8>> {
    let db = rocksdb::DB::open_cf_for_read_only(
        &rocksdb::Options::default(),
        dir,
        COLUMN_FAMILIES,
        false,
    )
    .unwrap();
    db.get_cf(db.cf_handle(CF_META).unwrap(), key).unwrap()
}

fn layout(dir: &std::path::Path) -> u8 {
    let bytes = meta(dir, META_FORMAT_VERSION).unwrap();
    codec::decode::<FormatMeta>(Kind::Meta, &bytes)
        .unwrap()
        .format_version
}

fn through(dir: &std::path::Path) -> u64 {
    let bytes = meta(dir, META_BALANCES_THROUGH).unwrap();
    codec::decode::<BalancesThrough>(Kind::Meta, &bytes)
        .unwrap()
        .seq
}

fn edit_meta(dir: &std::path::Path, f: impl FnOnce(&rocksdb::DB, &rocksdb::ColumnFamily)) {
    let mut o = rocksdb::Options::default();
    o.create_if_missing(false);
    let db = rocksdb::DB::open_cf(&o, dir, COLUMN_FAMILIES).unwrap();
    f(&db, db.cf_handle(CF_META).unwrap());
    db.flush_wal(true).unwrap();
}

/// 10 transfers user 0 → user 1 of 5 each, one unit (and group) each: fewer groups than a
/// checkpoint waits for.
fn ten_transfers(store: &Store) {
    store.commit_blocking(create_accounts(2)).unwrap();
    store
        .commit_blocking(transfer(1, FUNDS, user(0), 1_000))
        .unwrap();
    for i in 0..10 {
        store
            .commit_blocking(transfer(100 + i, user(0), user(1), 5))
            .unwrap();
    }
}

#[test]
fn between_checkpoints_a_transfer_writes_no_balance_record_and_reads_still_see_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options()).unwrap();
    ten_transfers(&store);
    let keys = store
        .stats()
        .keys
        .load(std::sync::atomic::Ordering::Relaxed);
    let groups = store
        .stats()
        .group_writes
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(groups, 12);
    // The first unit: its journal entry and 3 account records. Then a journal entry per
    // transfer: no merge operand, no checkpoint (12 groups, 3 accounts), and no dedup key
    // (the writer holds the ids, and ingests them into the dedup family later).
    assert_eq!(keys, 4 + 11);
    assert_eq!(store.account(user(0)).unwrap().unwrap().balance, 950);
    assert_eq!(store.account(user(1)).unwrap().unwrap().balance, 50);
    let v = store.verify().unwrap();
    assert_eq!((v.entries, v.transfers, v.accounts), (12, 11, 3));
}

#[test]
fn a_crash_loses_only_the_unflushed_deltas_and_open_replays_them() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let (store, _) = Store::open(&live, options()).unwrap();
    ten_transfers(&store);
    let image = root.path().join("image");
    copy_dir(&live, &image);
    drop(store);
    assert_eq!(
        through(&image),
        0,
        "no checkpoint was written before the crash"
    );
    let (store, recovery) = Store::open(&image, options()).unwrap();
    assert_eq!((recovery.last_seq, recovery.replayed), (12, 12));
    assert_eq!(store.account(user(0)).unwrap().unwrap().balance, 950);
    assert_eq!(store.account(user(1)).unwrap().unwrap().balance, 50);
    store.verify().unwrap();
    drop(store);
    assert_eq!(through(&image), 12, "open checkpointed what it replayed");
    let (_, recovery) = Store::open(&image, options()).unwrap();
    assert_eq!(recovery.replayed, 0);
}

#[test]
fn checkpoints_come_every_few_groups_and_a_clean_stop_writes_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options()).unwrap();
    store.commit_blocking(create_accounts(2)).unwrap();
    store
        .commit_blocking(transfer(1, FUNDS, user(0), 100_000))
        .unwrap();
    let groups = storage::writer::CHECKPOINT_GROUPS + 10;
    for i in 0..groups {
        store
            .commit_blocking(transfer(100 + u128::from(i), user(0), user(1), 1))
            .unwrap();
    }
    // A crash now: checkpoints are written without the WAL, so the one in the memtables is
    // lost with them and open replays the whole journal (nothing was flushed yet).
    let image = dir.path().join("../image-checkpoint");
    let _ = std::fs::remove_dir_all(&image);
    copy_dir(dir.path(), &image);
    let (crashed, recovery) = Store::open(&image, options()).unwrap();
    assert_eq!(recovery.replayed, groups + 2);
    assert_eq!(
        crashed.account(user(1)).unwrap().unwrap().balance,
        groups as i64
    );
    drop(crashed);
    std::fs::remove_dir_all(&image).unwrap();
    // Once flushed, the checkpoint is durable: a crash replays only what came after it.
    store.flush().unwrap();
    copy_dir(dir.path(), &image);
    let (crashed, recovery) = Store::open(&image, options()).unwrap();
    assert_eq!(
        recovery.replayed,
        groups + 2 - storage::writer::CHECKPOINT_GROUPS
    );
    assert!(
        recovery.replayed > 0 && recovery.replayed < groups,
        "a checkpoint was written after {} groups: {recovery:?}",
        storage::writer::CHECKPOINT_GROUPS
    );
    assert_eq!(
        crashed.account(user(1)).unwrap().unwrap().balance,
        groups as i64
    );
    drop(crashed);
    std::fs::remove_dir_all(&image).unwrap();
    drop(store);
    assert_eq!(through(dir.path()), groups + 2, "a clean stop checkpoints");
    let (store, recovery) = Store::open(dir.path(), options()).unwrap();
    assert_eq!(recovery.replayed, 0);
    assert_eq!(
        store.account(user(1)).unwrap().unwrap().balance,
        groups as i64
    );
}

#[test]
fn a_layout_1_store_migrates_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options()).unwrap();
    ten_transfers(&store);
    drop(store);
    // What layout 1 left: balances complete in the accounts family, no checkpoint position.
    edit_meta(dir.path(), |db, cf| {
        let v1 = FormatMeta { format_version: 1 };
        db.put_cf(cf, META_FORMAT_VERSION, codec::encode(Kind::Meta, &v1))
            .unwrap();
        db.delete_cf(cf, META_BALANCES_THROUGH).unwrap();
    });
    let (store, recovery) = Store::open(dir.path(), options()).unwrap();
    assert_eq!((recovery.last_seq, recovery.replayed), (12, 0));
    assert_eq!(store.account(user(0)).unwrap().unwrap().balance, 950);
    store.verify().unwrap();
    drop(store);
    assert_eq!(layout(dir.path()), LAYOUT_VERSION);
    assert_eq!(through(dir.path()), 12);
}

#[test]
fn a_store_of_an_unknown_layout_or_without_its_checkpoint_position_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options()).unwrap();
    ten_transfers(&store);
    drop(store);
    edit_meta(dir.path(), |db, cf| {
        db.delete_cf(cf, META_BALANCES_THROUGH).unwrap();
    });
    let msg = Store::open(dir.path(), options())
        .err()
        .expect("must refuse")
        .to_string();
    assert!(msg.contains("checkpoint"), "{msg}");
    edit_meta(dir.path(), |db, cf| {
        let v9 = FormatMeta { format_version: 9 };
        db.put_cf(cf, META_FORMAT_VERSION, codec::encode(Kind::Meta, &v9))
            .unwrap();
    });
    let msg = Store::open(dir.path(), options())
        .err()
        .expect("must refuse")
        .to_string();
    assert!(msg.contains("store format 9 is not supported"), "{msg}");
}

#[test]
fn a_group_of_units_is_one_journal_record_read_back_entry_by_entry() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let (store, _) = Store::open(&live, options()).unwrap();
    store.commit_blocking(create_accounts(2)).unwrap();
    store
        .commit_blocking(transfer(1, FUNDS, user(0), 1_000))
        .unwrap();
    let keys_before = store
        .stats()
        .keys
        .load(std::sync::atomic::Ordering::Relaxed);
    // One submission is one group: 100 units, seqs 3..=102.
    let units = (0..100)
        .map(|i| transfer(100 + i, user(0), user(1), 3))
        .collect();
    let outcomes = block_on(store.submit_many(units).unwrap()).unwrap();
    let seqs: Vec<u64> = outcomes.into_iter().map(|o| o.unwrap()).collect();
    assert_eq!(seqs, (3..=102).collect::<Vec<_>>());
    let keys = store
        .stats()
        .keys
        .load(std::sync::atomic::Ordering::Relaxed)
        - keys_before;
    assert_eq!(
        keys, 1,
        "one journal record (the dedup keys are held, to be ingested)"
    );
    // Reading from the middle of the group's record.
    let mut seen = Vec::new();
    store
        .for_each_entry(50, |e| {
            seen.push(e.seq);
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, (50..=102).collect::<Vec<_>>());
    assert_eq!(store.verify().unwrap().transfers, 101);
    let image = root.path().join("image");
    copy_dir(&live, &image);
    drop(store);
    let (store, recovery) = Store::open(&image, options()).unwrap();
    assert_eq!((recovery.last_seq, recovery.replayed), (102, 102));
    assert_eq!(store.account(user(1)).unwrap().unwrap().balance, 300);
    assert_eq!(
        store.transfer_seq(engine::TransferId(150)).unwrap(),
        Some(53)
    );
    store.verify().unwrap();
}

#[test]
fn a_layout_2_store_opens_and_is_relabelled() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options()).unwrap();
    ten_transfers(&store);
    drop(store);
    edit_meta(dir.path(), |db, cf| {
        let v2 = FormatMeta { format_version: 2 };
        db.put_cf(cf, META_FORMAT_VERSION, codec::encode(Kind::Meta, &v2))
            .unwrap();
    });
    let (store, recovery) = Store::open(dir.path(), options()).unwrap();
    assert_eq!((recovery.last_seq, recovery.replayed), (12, 0));
    assert_eq!(store.account(user(1)).unwrap().unwrap().balance, 50);
    drop(store);
    assert_eq!(layout(dir.path()), LAYOUT_VERSION);
}

/// Deletes the accounts family's checkpoint position (what a store of layout 5 or older
/// lacks) and labels the store `label`.
fn drop_accounts_position(dir: &std::path::Path, label: u8) {
    edit_meta(dir, |db, cf| {
        let layout = FormatMeta {
            format_version: label,
        };
        db.put_cf(cf, META_FORMAT_VERSION, codec::encode(Kind::Meta, &layout))
            .unwrap();
        let accounts = db.cf_handle(storage::schema::CF_ACCOUNTS).unwrap();
        db.delete_cf(accounts, storage::schema::ACCOUNTS_THROUGH_KEY)
            .unwrap();
    });
}

#[test]
fn a_layout_5_store_gains_the_accounts_position_and_is_relabelled() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options()).unwrap();
    ten_transfers(&store);
    drop(store);
    // Layout 5: one position, in the meta family, for the accounts and the GL book.
    drop_accounts_position(dir.path(), storage::schema::LAYOUT_DEDUP_RUNS);
    let (store, recovery) = Store::open(dir.path(), options()).unwrap();
    assert_eq!((recovery.last_seq, recovery.replayed), (12, 0));
    assert_eq!(store.account(user(0)).unwrap().unwrap().balance, 950);
    assert_eq!(store.account(user(1)).unwrap().unwrap().balance, 50);
    store.verify().unwrap();
    drop(store);
    assert_eq!(layout(dir.path()), LAYOUT_VERSION);
    assert_eq!(through(dir.path()), 12);
    // Opened as layout 6: the upgrade wrote the accounts' position.
    let (store, recovery) = Store::open(dir.path(), options()).unwrap();
    assert_eq!(recovery.replayed, 0);
    drop(store);
    // A store of layout 6 without the accounts' position cannot tell what its balances hold.
    drop_accounts_position(dir.path(), LAYOUT_VERSION);
    let msg = Store::open(dir.path(), options())
        .err()
        .expect("must refuse")
        .to_string();
    assert!(
        msg.contains("accounts family's checkpoint position"),
        "{msg}"
    );
}

/// Waits for a oneshot outside any runtime (the writer answers from its own thread).
fn block_on<T>(rx: tokio::sync::oneshot::Receiver<T>) -> T {
    rx.blocking_recv().expect("the writer answers")
}

mod gl_book {
    use super::*;
    use engine::gl::{BusinessDate, GlAccount};
    use engine::{Account, Currency, Effect, Timestamp, Transfer, TransferId, TransferKind};
    use storage::schema::{gl_day_key, GlBalances, META_GL_BALANCES};
    use storage::CommitUnit;

    const DAY: BusinessDate = BusinessDate(20_788);

    /// The reserve (an asset), two customers and a fee account; 1,000 deposited to user 0,
    /// then `n` payments of 5 from user 0 to user 1 with 1 of fee, on `DAY`, legs booked as
    /// the ledger books them (GL account on each).
    fn traffic(store: &Store, n: u128) {
        let reserve =
            Account::new(FUNDS, Currency::CNY, i64::MAX, Timestamp(1)).in_gl(GlAccount::Reserve);
        let fees =
            Account::new(user(9), Currency::CNY, 0, Timestamp(1)).in_gl(GlAccount::FeeIncome);
        let mut effects = vec![
            Effect::AccountCreated(reserve),
            Effect::AccountCreated(fees),
        ];
        for i in 0..2 {
            effects.push(Effect::AccountCreated(Account::new(
                user(i),
                Currency::CNY,
                0,
                Timestamp(1),
            )));
        }
        store
            .commit_blocking(CommitUnit {
                effects,
                ..CommitUnit::default()
            })
            .unwrap();
        let dated = |mut t: Transfer, gls: &[GlAccount]| {
            for (p, gl) in t.postings.iter_mut().zip(gls) {
                p.gl = Some(*gl);
            }
            t.accounting_date = Some(DAY);
            t.value_date = Some(DAY);
            CommitUnit::effect(Effect::Posted(t))
        };
        let deposit = Transfer::between(
            TransferId(1),
            TransferKind::Deposit,
            FUNDS,
            user(0),
            Currency::CNY,
            1_000,
            Timestamp(2),
        );
        store
            .commit_blocking(dated(
                deposit,
                &[GlAccount::Reserve, GlAccount::CustomerBalances],
            ))
            .unwrap();
        for i in 0..n {
            let parties = engine::PaymentParties {
                payer: user(0),
                merchant: user(1),
                fee_account: user(9),
            };
            let pay = Transfer::payment(
                TransferId(100 + i),
                parties,
                Currency::CNY,
                5,
                1,
                Timestamp(3),
            );
            store
                .commit_blocking(dated(
                    pay,
                    &[
                        GlAccount::CustomerBalances,
                        GlAccount::CustomerBalances,
                        GlAccount::FeeIncome,
                    ],
                ))
                .unwrap();
        }
    }

    fn balance(store: &Store, gl: GlAccount) -> i128 {
        store.gl_book().balance(Currency::CNY, gl)
    }

    #[test]
    fn the_gl_book_is_kept_with_the_writes_and_replayed_after_a_crash() {
        let root = tempfile::tempdir().unwrap();
        let live = root.path().join("live");
        let (store, _) = Store::open(&live, options()).unwrap();
        traffic(&store, 10);
        assert_eq!(balance(&store, GlAccount::Reserve), -1_000);
        assert_eq!(balance(&store, GlAccount::CustomerBalances), 990);
        assert_eq!(balance(&store, GlAccount::FeeIncome), 10);
        let cut = store.gl_since(DAY).unwrap();
        assert_eq!(cut.days.len(), 1);
        let day = &cut.days[0].1;
        let customers = day.movement(GlAccount::CustomerBalances, Currency::CNY);
        assert_eq!(
            (customers.debit, customers.credit, customers.postings),
            (50, 1_000 + 40, 21)
        );
        assert_eq!(day.movement(GlAccount::Reserve, Currency::CNY).debit, 1_000);
        // A crash before any checkpoint: the book is replayed from the journal with the
        // balances, and open checks it against the accounts.
        let image = root.path().join("image");
        copy_dir(&live, &image);
        let (crashed, recovery) = Store::open(&image, options()).unwrap();
        assert_eq!(recovery.replayed, 12);
        assert_eq!(
            crashed.gl_book().balances().collect::<Vec<_>>(),
            store.gl_book().balances().collect::<Vec<_>>()
        );
        assert_eq!(crashed.gl_since(DAY).unwrap(), cut);
        crashed.verify().unwrap();
        drop(crashed);
        // Past a checkpoint (and a clean stop): the same.
        traffic_more(&store, CHECKPOINT_GROUPS_PLUS);
        let before = store.gl_since(DAY).unwrap();
        drop(store);
        let (store, recovery) = Store::open(&live, options()).unwrap();
        assert_eq!(recovery.replayed, 0);
        assert_eq!(store.gl_since(DAY).unwrap(), before);
        store.verify().unwrap();
    }

    const CHECKPOINT_GROUPS_PLUS: u128 = storage::writer::CHECKPOINT_GROUPS as u128 + 5;

    fn traffic_more(store: &Store, n: u128) {
        for i in 0..n {
            let mut t = Transfer::between(
                TransferId(10_000 + i),
                TransferKind::Transfer,
                user(1),
                user(0),
                Currency::CNY,
                1,
                Timestamp(4),
            );
            t.accounting_date = Some(DAY.next().unwrap());
            // No GL account on the legs: booked to the accounts' own.
            store
                .commit_blocking(CommitUnit::effect(Effect::Posted(t)))
                .unwrap();
        }
    }

    #[test]
    fn a_store_without_a_book_gains_it_from_its_accounts_and_a_wrong_book_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), options()).unwrap();
        traffic(&store, 3);
        drop(store);
        // What layout 3 left: no book.
        edit_meta(dir.path(), |db, cf| {
            let v3 = FormatMeta { format_version: 3 };
            db.put_cf(cf, META_FORMAT_VERSION, codec::encode(Kind::Meta, &v3))
                .unwrap();
            db.delete_cf(cf, META_GL_BALANCES).unwrap();
            db.delete_cf(cf, gl_day_key(DAY)).unwrap();
        });
        let (store, _) = Store::open(dir.path(), options()).unwrap();
        assert_eq!(balance(&store, GlAccount::Reserve), -1_000);
        assert_eq!(balance(&store, GlAccount::FeeIncome), 3);
        assert!(
            store.gl_since(DAY).unwrap().days.is_empty(),
            "no turnover before the book"
        );
        drop(store);
        assert_eq!(layout(dir.path()), LAYOUT_VERSION);
        // A book that disagrees with the accounts: refused, naming the GL account.
        edit_meta(dir.path(), |db, cf| {
            let wrong = GlBalances {
                rows: vec![
                    (Currency::CNY, GlAccount::Reserve, -1_000),
                    (Currency::CNY, GlAccount::CustomerBalances, 996),
                    (Currency::CNY, GlAccount::FeeIncome, 4),
                ],
            };
            db.put_cf(cf, META_GL_BALANCES, codec::encode(Kind::Meta, &wrong))
                .unwrap();
        });
        let msg = Store::open(dir.path(), options())
            .err()
            .expect("must refuse")
            .to_string();
        assert!(msg.contains("GL 2001 in CNY"), "{msg}");
        // A store of layout 4 or later without its book: refused, not silently rebuilt.
        edit_meta(dir.path(), |db, cf| {
            db.delete_cf(cf, META_GL_BALANCES).unwrap();
        });
        let msg = Store::open(dir.path(), options())
            .err()
            .expect("must refuse")
            .to_string();
        assert!(msg.contains("GL book is missing"), "{msg}");
    }
}

#[test]
fn a_checkpoint_combines_an_unflushed_change_with_the_groups_in_journal_order() {
    // Two groups per checkpoint: the first group's changes stay unflushed, the second's
    // group writes them with its own.
    let opts = || StoreOptions {
        checkpoint_groups: 3,
        ..options()
    };
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), opts()).unwrap();
    store.commit_blocking(create_accounts(2)).unwrap(); // group 1
    let status = |status| {
        storage::CommitUnit::effect(engine::Effect::StatusSet {
            account: user(0),
            status,
        })
    };
    store
        .commit_blocking(status(engine::AccountStatus::Frozen))
        .unwrap(); // group 2: unflushed
    assert_eq!(through(dir.path()), 0, "no checkpoint yet");
    store
        .commit_blocking(status(engine::AccountStatus::Active))
        .unwrap(); // group 3: the checkpoint, with group 2's change before its own
                   // The writer writes the checkpoint after it has answered group 3.
    let started = std::time::Instant::now();
    while store
        .stats()
        .checkpoints
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no checkpoint after group 3"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    store.flush().unwrap();
    let image = dir.path().join("../image-order");
    let _ = std::fs::remove_dir_all(&image);
    copy_dir(dir.path(), &image);
    drop(store);
    // The crash image after a flush: the checkpoint is in it, and nothing is replayed.
    let (store, recovery) = Store::open(&image, opts()).unwrap();
    assert_eq!((recovery.last_seq, recovery.replayed), (3, 0));
    assert_eq!(
        store.account(user(0)).unwrap().unwrap().status,
        engine::AccountStatus::Active
    );
    drop(store);
    std::fs::remove_dir_all(&image).unwrap();
}

//! Recovery: reopen, torn and corrupted write-ahead-log tails, corrupted records.
//!
//! A crash image is made by copying the store's files while it is open, after every unit was
//! acknowledged (synced): exactly what a kill -9 or power loss leaves behind.

use std::path::Path;

use crate::common::*;
use engine::TransferId;
use storage::codec::{self, Kind};
use storage::schema::{seq_key, CF_ACCOUNTS, CF_JOURNAL, COLUMN_FAMILIES};
use storage::{Store, StoreOptions};

const TRANSFERS: u64 = 300;

/// A crash image holding accounts, one deposit and `TRANSFERS` transfers, each its own synced
/// WAL record. Returns the image directory; seq of transfer i (1-based) is i + 2.
fn crash_image(root: &Path) -> std::path::PathBuf {
    let live = root.join("live");
    let (store, _) = Store::open(&live, StoreOptions::default()).unwrap();
    store.commit_blocking(create_accounts(4)).unwrap();
    store
        .commit_blocking(transfer(1, FUNDS, user(0), 1_000_000))
        .unwrap();
    for i in 0..TRANSFERS {
        store
            .commit_blocking(transfer(
                100 + u128::from(i),
                user(0),
                user(1 + u128::from(i % 3)),
                7,
            ))
            .unwrap();
    }
    let image = root.join("image");
    copy_dir(&live, &image);
    drop(store);
    image
}

/// Opens a damaged copy. Either it refuses with a message, or what it recovered is a
/// consistent prefix: entries 1..=last all there and verified, nothing after.
fn open_damaged(dir: &Path) -> Result<u64, String> {
    match Store::open(dir, StoreOptions::default()) {
        Err(e) => Err(e.to_string()),
        Ok((store, recovery)) => {
            let last = recovery.last_seq;
            let v = store.verify().expect("a recovered store verifies");
            assert_eq!(v.entries, last);
            for i in 0..TRANSFERS {
                let seq = store.transfer_seq(TransferId(100 + u128::from(i))).unwrap();
                if i + 3 <= last {
                    assert_eq!(seq, Some(i + 3), "transfer {i} inside the recovered prefix");
                } else {
                    assert_eq!(seq, None, "transfer {i} after the recovered prefix");
                }
            }
            let sent: i64 = store.account(user(1)).unwrap().unwrap().balance
                + store.account(user(2)).unwrap().unwrap().balance
                + store.account(user(3)).unwrap().unwrap().balance;
            assert_eq!(
                store.account(user(0)).unwrap().unwrap().balance,
                1_000_000 - sent
            );
            Ok(last)
        }
    }
}

#[test]
fn reopen_recovers_everything_acknowledged() {
    let root = tempfile::tempdir().unwrap();
    let image = crash_image(root.path());
    let last = open_damaged(&image).expect("an undamaged crash image opens");
    assert_eq!(last, TRANSFERS + 2);
}

#[test]
fn truncated_wal_tail_recovers_to_the_last_whole_batch() {
    let root = tempfile::tempdir().unwrap();
    let image = crash_image(root.path());
    let wal = wal_files(&image).pop().expect("a write-ahead log");
    let len = std::fs::metadata(&wal).unwrap().len();
    for cut in [1, 2, 9, 40, 100, 1_000, len / 3] {
        let copy = root.path().join(format!("cut-{cut}"));
        copy_dir(&image, &copy);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(copy.join(wal.file_name().unwrap()))
            .unwrap();
        file.set_len(len - cut).unwrap();
        let last = open_damaged(&copy).unwrap_or_else(|e| panic!("cut {cut}: refused: {e}"));
        assert!(
            last < TRANSFERS + 2,
            "cut {cut}: the torn last record must be dropped"
        );
        assert!(last > 2, "cut {cut}: the whole batches before it are kept");
        println!("cut {cut} bytes of {len}: recovered through seq {last}");
    }
}

#[test]
fn garbage_after_the_wal_tail_is_dropped_or_refused() {
    let root = tempfile::tempdir().unwrap();
    let image = crash_image(root.path());
    let wal = wal_files(&image).pop().unwrap();
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes.extend((0..777u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    std::fs::write(&wal, bytes).unwrap();
    match open_damaged(&image) {
        Ok(last) => assert_eq!(
            last,
            TRANSFERS + 2,
            "garbage must not cost acknowledged entries"
        ),
        Err(e) => assert!(!e.is_empty()),
    }
}

#[test]
fn corruption_inside_the_wal_is_never_silently_accepted() {
    let root = tempfile::tempdir().unwrap();
    let image = crash_image(root.path());
    let wal = wal_files(&image).pop().unwrap();
    let len = std::fs::metadata(&wal).unwrap().len() as usize;
    for at in [len / 4, len / 2, len * 3 / 4] {
        let copy = root.path().join(format!("flip-{at}"));
        copy_dir(&image, &copy);
        let path = copy.join(wal.file_name().unwrap());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[at] ^= 0x5a;
        std::fs::write(&path, bytes).unwrap();
        // Either a clear refusal, or a verified prefix (open_damaged asserts the prefix).
        match open_damaged(&copy) {
            Err(e) => {
                assert!(e.contains("cannot open store"), "{e}");
                println!("flip at {at}: refused: {e}");
            }
            Ok(last) => println!("flip at {at}: recovered verified prefix through seq {last}"),
        }
    }
}

/// Writes raw bytes under a key, bypassing the store (as a bad disk or a bug would).
fn poke(dir: &Path, cf: &str, key: &[u8], value: &[u8]) {
    let mut o = rocksdb::Options::default();
    o.create_if_missing(false);
    let db = rocksdb::DB::open_cf(&o, dir, COLUMN_FAMILIES).unwrap();
    let mut w = rocksdb::WriteOptions::default();
    w.set_sync(true);
    db.put_cf_opt(db.cf_handle(cf).unwrap(), key, value, &w)
        .unwrap();
}

#[test]
fn corrupt_journal_record_refuses_to_start() {
    let root = tempfile::tempdir().unwrap();
    let image = crash_image(root.path());
    let last = TRANSFERS + 2;
    let (store, _) = Store::open(&image, StoreOptions::default()).unwrap();
    drop(store);
    // Take a real entry and flip one payload bit: the checksum must catch it.
    let db = rocksdb::DB::open_cf_for_read_only(
        &rocksdb::Options::default(),
        &image,
        COLUMN_FAMILIES,
        false,
    )
    .unwrap();
    let mut entry = db
        .get_cf(db.cf_handle(CF_JOURNAL).unwrap(), seq_key(last))
        .unwrap()
        .unwrap();
    drop(db);
    let n = entry.len();
    entry[n - 2] ^= 0x01;
    poke(&image, CF_JOURNAL, &seq_key(last), &entry);
    let err = Store::open(&image, StoreOptions::default())
        .err()
        .expect("must refuse");
    let msg = err.to_string();
    assert!(
        msg.contains("corrupt record in journal") && msg.contains("checksum"),
        "{msg}"
    );
}

#[test]
fn journal_gap_refuses_to_start() {
    let root = tempfile::tempdir().unwrap();
    let image = crash_image(root.path());
    // An entry far past the end, well-formed: the tail check sees the gap.
    let stray = storage::JournalEntry {
        seq: 10_000,
        effects: vec![],
    };
    poke(
        &image,
        CF_JOURNAL,
        &seq_key(10_000),
        &codec::encode(Kind::Journal, &stray),
    );
    let msg = Store::open(&image, StoreOptions::default())
        .err()
        .expect("must refuse")
        .to_string();
    assert!(msg.contains("journal gap"), "{msg}");
}

#[test]
fn unbalanced_accounts_refuse_to_start() {
    let root = tempfile::tempdir().unwrap();
    let image = crash_image(root.path());
    let mut forged = engine::Account::new(user(3), engine::Currency::CNY, 0, engine::Timestamp(1));
    forged.balance = 1_000_000_000;
    poke(
        &image,
        CF_ACCOUNTS,
        &user(3).to_be_bytes(),
        &codec::encode(Kind::Account, &forged),
    );
    let msg = Store::open(&image, StoreOptions::default())
        .err()
        .expect("must refuse")
        .to_string();
    assert!(msg.contains("trial balance of CNY"), "{msg}");
}

//! The aux key filter (`storage::keyfilter`): the idempotency records, `out_trade_no` indexes
//! and customer links a store holds are found by `Store::aux` whether they were written
//! before a restart, while the filter was being built after it, or after; keys never written
//! are answered "absent" in memory once the filter is built, and by RocksDB when it is off.

use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::time::{Duration, Instant};

use engine::ids::AccountId;
use storage::records::{customer_by_account_key, idempotency_key, out_trade_no_key};
use storage::schema::expiring_value;
use storage::store::KEY_FILTER_BYTES_MAX;
use storage::{CommitUnit, Store, StoreOptions};

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A payment's three client-keyed records, as `services` writes them: `n` of each, from
/// `from` on.
fn keys(from: u64, n: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    let expires = now_ns() + 3_600_000_000_000;
    (from..from + n)
        .flat_map(|i| {
            [
                (
                    idempotency_key(&7u128.to_be_bytes(), format!("idem-{i}").as_bytes()),
                    expiring_value(expires, b"answer"),
                ),
                (
                    out_trade_no_key(7, &format!("order-{i}")),
                    b"payment id".to_vec(),
                ),
                (
                    customer_by_account_key(AccountId(1_000_000 + u128::from(i))),
                    b"customer id".to_vec(),
                ),
            ]
        })
        .collect()
}

fn write(store: &Store, records: &[(Vec<u8>, Vec<u8>)]) {
    for chunk in records.chunks(300) {
        store
            .commit_blocking(CommitUnit {
                effects: vec![],
                aux: chunk.to_vec(),
                note: Vec::new(),
            })
            .unwrap();
    }
}

fn wait_built(store: &Store) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !store.stats().key_filter_built.load(Acquire) {
        assert!(Instant::now() < deadline, "the key filter was never built");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn all_found(store: &Store, records: &[(Vec<u8>, Vec<u8>)]) {
    for (key, value) in records {
        assert_eq!(
            store.aux(key).unwrap().as_ref(),
            Some(value),
            "{}",
            String::from_utf8_lossy(key)
        );
    }
}

/// Looks up keys never written; returns how many of them the filter answered.
fn none_found(store: &Store, from: u64, n: u64) -> u64 {
    let before = store.stats().key_filter_ruled_out.load(Relaxed);
    for (key, _) in keys(from, n) {
        assert_eq!(store.aux(&key).unwrap(), None);
    }
    store.stats().key_filter_ruled_out.load(Relaxed) - before
}

#[test]
fn written_keys_are_found_across_restarts_and_absent_ones_ruled_out_in_memory() {
    for bytes_max in [KEY_FILTER_BYTES_MAX, 0] {
        let options = || StoreOptions {
            key_filter_bytes_max: bytes_max,
            ..StoreOptions::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), options()).unwrap();
        let first = keys(0, 2_000);
        write(&store, &first);
        wait_built(&store);
        let second = keys(2_000, 2_000);
        write(&store, &second);
        all_found(&store, &first);
        all_found(&store, &second);
        let ruled_out = none_found(&store, 1_000_000, 1_000);
        drop(store);

        // Reopened: records written before the filter is built, while the scan may run.
        let (store, _) = Store::open(dir.path(), options()).unwrap();
        let third = keys(4_000, 2_000);
        write(&store, &third);
        wait_built(&store);
        let fourth = keys(6_000, 2_000);
        write(&store, &fourth);
        for records in [&first, &second, &third, &fourth] {
            all_found(&store, records);
        }
        let ruled_out_reopened = none_found(&store, 2_000_000, 1_000);
        if bytes_max == 0 {
            assert_eq!(
                (ruled_out, ruled_out_reopened),
                (0, 0),
                "off: RocksDB answers"
            );
        } else {
            // 3,000 absent keys each time; a false positive is looked up in RocksDB.
            assert!(ruled_out >= 2_990, "{ruled_out} of 3,000 ruled out");
            assert!(
                ruled_out_reopened >= 2_990,
                "{ruled_out_reopened} of 3,000 ruled out"
            );
        }
    }
}

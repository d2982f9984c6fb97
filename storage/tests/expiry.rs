//! Expiring aux records (idempotency keys) are dropped by compaction once expired, and only
//! then: their storage stays bounded without losing a live key.

use storage::schema::{expiring_value, split_expiring, AUX_EXPIRING_PREFIX};
use storage::{CommitUnit, Store, StoreOptions};

#[test]
fn compaction_drops_expired_records_only() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let expired = [AUX_EXPIRING_PREFIX, b'i', 1].to_vec();
    let live = [AUX_EXPIRING_PREFIX, b'i', 2].to_vec();
    let plain = b"py-plain".to_vec();
    let unit = CommitUnit {
        effects: vec![],
        aux: vec![
            (expired.clone(), expiring_value(now - 1, b"old")),
            (
                live.clone(),
                expiring_value(now + 3_600_000_000_000, b"new"),
            ),
            (plain.clone(), b"kept forever".to_vec()),
        ],
        note: Vec::new(),
    };
    store.commit_blocking(unit).unwrap();
    assert!(
        store.aux(&expired).unwrap().is_some(),
        "still there before compaction"
    );
    store.compact_aux();
    assert_eq!(store.aux(&expired).unwrap(), None);
    let value = store.aux(&live).unwrap().unwrap();
    assert_eq!(split_expiring(&value).unwrap().1, b"new");
    assert_eq!(
        store.aux(&plain).unwrap().as_deref(),
        Some(b"kept forever".as_slice())
    );
    drop(store);
    let (store, _) = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.aux(&expired).unwrap(), None, "gone for good");
    assert!(store.aux(&live).unwrap().is_some());
}

//! Disk full, for real: the store lives on a small tmpfs that runs out of space.
//!
//! Needs root (to mount a tmpfs), as the test command and CI run. Writes must fail cleanly,
//! the store must poison itself, nothing acknowledged may be lost, and once space is freed a
//! restart recovers everything that was acknowledged.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use engine::TransferId;
use storage::{Store, StoreError, StoreOptions};

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "the disk-full test mounts a tmpfs and needs root: mount failed"
        );
        Tmpfs(at.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("run mount");
        assert!(status.success(), "remount failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Runs the scenario with units of three sizes: depending on which write meets the full disk
/// first (the WAL append, a memtable flush, a compaction), RocksDB reports it differently —
/// an immediate I/O error, or a write stall behind a failed background job — and each must
/// end the same way.
#[test]
fn disk_full_poisons_loses_nothing_and_recovers_after_space_is_freed() {
    for aux_bytes in [16 << 10, 1 << 10, 64 << 10] {
        disk_full_scenario(aux_bytes);
    }
}

fn disk_full_scenario(aux_bytes: usize) {
    let root = tempfile::tempdir().unwrap();
    let mount = Tmpfs::mount(root.path(), "6m");
    let dir = root.path().join("store");
    let options = StoreOptions {
        write_buffer_bytes: 1 << 20,
        block_cache_bytes: 1 << 20,
        ..StoreOptions::default()
    };
    let (store, _) = Store::open(&dir, options.clone()).unwrap();
    store.commit_blocking(create_accounts(2)).unwrap();
    store
        .commit_blocking(transfer(1, FUNDS, user(0), i64::MAX / 4))
        .unwrap();

    // Each unit carries auxiliary data so the 6 MiB fill up quickly.
    let mut acked = Vec::new();
    let mut failure = None;
    for i in 0..100_000u128 {
        let mut unit = transfer(100 + i, user(0), user(1), 1);
        unit.aux
            .push((format!("blob-{i}").into_bytes(), vec![0xa5; aux_bytes]));
        match store.commit_blocking(unit) {
            Ok(seq) => acked.push((100 + i, seq)),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.expect("a 6 MiB disk must fill up");
    println!(
        "disk full after {} acknowledged units: {failure}",
        acked.len()
    );
    assert!(matches!(failure, StoreError::Io(_)), "{failure:?}");
    assert!(!store.is_healthy());
    assert!(matches!(
        store.submit(transfer(99_999, user(0), user(1), 1)),
        Err(StoreError::Poisoned(_))
    ));
    assert!(acked.len() > 10, "some units fit before the disk filled");
    drop(store);

    mount.resize("256m");
    let (store, recovery) = Store::open(&dir, options).expect("restart after space is freed");
    assert!(recovery.last_seq >= acked.last().unwrap().1);
    for (id, seq) in &acked {
        assert_eq!(
            store.transfer_seq(TransferId(*id)).unwrap(),
            Some(*seq),
            "acknowledged transfer {id}"
        );
    }
    let v = store.verify().unwrap();
    let moved = store.account(user(1)).unwrap().unwrap().balance;
    assert_eq!(
        moved as u64,
        v.transfers - 1,
        "each posted transfer moved exactly one unit"
    );
    assert!(moved as usize >= acked.len());
    // And the store takes writes again.
    store
        .commit_blocking(transfer(200_000, user(0), user(1), 1))
        .unwrap();
}

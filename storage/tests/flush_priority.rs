//! RocksDB's background threads' nice values once the store is open: the flush threads at
//! `flush_idle_nice` where the process may lower them again (`storage::flushprio`), the
//! compaction threads (and, elsewhere, the flush threads) at `background_nice`.

use storage::{Store, StoreOptions};

/// The nice value of each of this process's threads named `name`.
fn nice_of(name: &str) -> Vec<i32> {
    let mut nices = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap().path();
        let Ok(comm) = std::fs::read_to_string(task.join("comm")) else {
            continue;
        };
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.join("stat")).unwrap();
        // The fields after the command's closing parenthesis; nice is the 19th of stat.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        nices.push(rest.split(' ').nth(16).unwrap().parse().unwrap());
    }
    nices
}

#[test]
fn flush_threads_wait_at_the_idle_nice_and_compactions_at_the_background_one() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(
        dir.path(),
        StoreOptions {
            background_nice: 5,
            flush_idle_nice: 19,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let low = nice_of("rocksdb:low");
    assert!(
        !low.is_empty() && low.iter().all(|&n| n == 5),
        "compaction: {low:?}"
    );
    let high = nice_of("rocksdb:high");
    let idle = if storage::sched::can_lower_nice(19, 5) {
        19
    } else {
        5
    };
    assert!(
        !high.is_empty() && high.iter().all(|&n| n == idle),
        "flush: {high:?}, expected {idle}"
    );
    drop(store);
}

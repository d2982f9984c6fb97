//! A thread's scheduling policy (Linux; elsewhere a no-op).
//!
//! payd's ledger (its coordinator and shards, on the main thread) is woken by every command
//! an HTTP worker sends it. At the normal policy that wakeup preempts the worker when they
//! share a core: the ledger then takes one command, sleeps, and the worker resumes — about
//! one context switch each way per payment. At [`Policy::Batch`] (`SCHED_BATCH`) a wakeup
//! does not preempt: the ledger runs when the worker waits for its sockets (or at the next
//! tick), and takes every command queued meanwhile in one round. Nothing else changes: the
//! thread keeps its fair share of the CPU, and on a machine with an idle core it is woken
//! there at once as before. docs/ARCHITECTURE.md, "Actors, memory and bounds" (threads and
//! their scheduling policy).
//!
//! Threads inherit their creator's policy, so a thread that must answer promptly (an HTTP
//! worker, the group-commit writer) sets [`Policy::Normal`] itself.
//!
//! RocksDB's flush and compaction threads are background work too: payd raises their nice
//! value ([`renice_threads`], setting `rocksdb_background_nice`), so that a flush of a large
//! memtable on the serving core takes a smaller share of it while it runs.

/// How the kernel schedules the calling thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// `SCHED_OTHER`: a wakeup may preempt the running thread.
    Normal,
    /// `SCHED_BATCH`: same share of the CPU, but a wakeup waits for the running thread to
    /// block or for the tick.
    Batch,
}

/// Sets the calling thread's policy (not the process's: on Linux each thread is scheduled on
/// its own). Needs no privilege: both policies are the unprivileged time-sharing ones.
#[cfg(target_os = "linux")]
pub fn set_current_thread(policy: Policy) -> std::io::Result<()> {
    let raw = match policy {
        Policy::Normal => libc::SCHED_OTHER,
        Policy::Batch => libc::SCHED_BATCH,
    };
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param for the call's duration; pid 0 is this thread.
    if unsafe { libc::sched_setscheduler(0, raw, &param) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sets the nice value of every thread of this process whose name starts with `prefix`
/// (RocksDB names its pools' threads `rocksdb:high`, `rocksdb:low`); returns how many. An
/// unprivileged process may raise a thread's nice value but not lower it back.
#[cfg(target_os = "linux")]
pub fn renice_threads(prefix: &str, nice: i32) -> std::io::Result<usize> {
    let mut count = 0;
    for task in std::fs::read_dir("/proc/self/task")? {
        let task = task?.path();
        let Ok(comm) = std::fs::read_to_string(task.join("comm")) else {
            continue; // a thread that just ended
        };
        if !comm.starts_with(prefix) {
            continue;
        }
        let Some(tid) = task
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<libc::id_t>().ok())
        else {
            continue;
        };
        // SAFETY: plain integers; PRIO_PROCESS with a thread id sets that thread's value.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        count += 1;
    }
    Ok(count)
}

/// Whether this process may lower a thread's nice value from `high` back to `low` (it may
/// always raise it): root, `CAP_SYS_NICE`, or an `RLIMIT_NICE` that allows `low` (systemd's
/// `LimitNICE=`). Probed on a short-lived thread of its own, so nothing else moves.
#[cfg(target_os = "linux")]
pub fn can_lower_nice(high: i32, low: i32) -> bool {
    std::thread::spawn(move || {
        // SAFETY: plain integers; who 0 is the calling thread.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, 0, high) == 0
                && libc::setpriority(libc::PRIO_PROCESS, 0, low) == 0
        }
    })
    .join()
    .unwrap_or(false)
}

#[cfg(not(target_os = "linux"))]
pub fn can_lower_nice(_high: i32, _low: i32) -> bool {
    false
}

#[cfg(not(target_os = "linux"))]
pub fn renice_threads(_prefix: &str, _nice: i32) -> std::io::Result<usize> {
    Ok(0)
}

#[cfg(not(target_os = "linux"))]
pub fn set_current_thread(_policy: Policy) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The calling thread's policy; `None` for the other (real-time, idle, deadline) ones.
    fn current_thread() -> Option<Policy> {
        // SAFETY: no arguments beyond the pid; 0 is this thread.
        match unsafe { libc::sched_getscheduler(0) } {
            libc::SCHED_OTHER => Some(Policy::Normal),
            libc::SCHED_BATCH => Some(Policy::Batch),
            _ => None,
        }
    }

    /// The calling thread's nice value.
    fn current_thread_nice() -> i32 {
        // SAFETY: pid 0 is this thread; getpriority on oneself does not fail.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }

    #[test]
    fn a_thread_sets_its_own_policy_and_its_children_inherit_it() {
        let outside = current_thread();
        std::thread::spawn(|| {
            set_current_thread(Policy::Batch).unwrap();
            assert_eq!(current_thread(), Some(Policy::Batch));
            // A thread spawned now starts at SCHED_BATCH and may go back on its own.
            std::thread::spawn(|| {
                assert_eq!(current_thread(), Some(Policy::Batch));
                set_current_thread(Policy::Normal).unwrap();
                assert_eq!(current_thread(), Some(Policy::Normal));
            })
            .join()
            .unwrap();
            // The parent is unchanged by its child's choice.
            assert_eq!(current_thread(), Some(Policy::Batch));
        })
        .join()
        .unwrap();
        // Nor was the test's own thread touched.
        assert_eq!(current_thread(), outside);
    }

    #[test]
    fn threads_are_reniced_by_name_and_no_others() {
        let (named_tx, named_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let done_rx = std::sync::Arc::new(std::sync::Mutex::new(done_rx));
        let spawn = |name: &str| {
            let (tx, rx) = (named_tx.clone(), std::sync::Arc::clone(&done_rx));
            std::thread::Builder::new()
                .name(name.to_string())
                .spawn(move || {
                    tx.send(()).unwrap();
                    let _ = rx.lock().unwrap().recv();
                    current_thread_nice()
                })
                .unwrap()
        };
        let target = spawn("sched-renice-t");
        let other = spawn("sched-other-t");
        named_rx.recv().unwrap();
        named_rx.recv().unwrap();
        assert_eq!(renice_threads("sched-renice", 7).unwrap(), 1);
        drop(done_tx);
        assert_eq!(target.join().unwrap(), 7);
        assert_eq!(other.join().unwrap(), current_thread_nice());
    }
}

//! A thread's scheduling policy (Linux; elsewhere a no-op).
//!
//! payd's ledger (its coordinator and shards, on the main thread) is woken by every command
//! an HTTP worker sends it. At the normal policy that wakeup preempts the worker when they
//! share a core: the ledger then takes one command, sleeps, and the worker resumes — about
//! one context switch each way per payment. At [`Policy::Batch`] (`SCHED_BATCH`) a wakeup
//! does not preempt: the ledger runs when the worker waits for its sockets (or at the next
//! tick), and takes every command queued meanwhile in one round. Nothing else changes: the
//! thread keeps its fair share of the CPU, and on a machine with an idle core it is woken
//! there at once as before. docs/ARCHITECTURE.md, "The ledger's thread at SCHED_BATCH".
//!
//! Threads inherit their creator's policy, so a thread that must answer promptly (an HTTP
//! worker, the group-commit writer) sets [`Policy::Normal`] itself.

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

/// The calling thread's policy; `None` for the other (real-time, idle, deadline) policies.
#[cfg(target_os = "linux")]
pub fn current_thread() -> Option<Policy> {
    // SAFETY: no arguments beyond the pid; 0 is this thread.
    match unsafe { libc::sched_getscheduler(0) } {
        libc::SCHED_OTHER => Some(Policy::Normal),
        libc::SCHED_BATCH => Some(Policy::Batch),
        _ => None,
    }
}

#[cfg(not(target_os = "linux"))]
pub fn set_current_thread(_policy: Policy) -> std::io::Result<()> {
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub fn current_thread() -> Option<Policy> {
    Some(Policy::Normal)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

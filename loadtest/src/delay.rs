//! Waits as long as asked: the harness's open-loop schedule and the simulators' latencies
//! (channel-sim's charges, identity-sim's checks, sms-sim's delivery receipts).
//!
//! Tokio's timer, and so actix-rt's `sleep`, counts whole milliseconds and fires on the
//! driver's next tick after the deadline. On this project's 2-core VM a channel-sim charge
//! with a `sleep` of 0 answered in 1.3 ms and one with 1 ms in 2.5 ms (docs/BENCHMARKS.md,
//! session 45): a channel configured at a 1 ms median answered at 2.5 ms, and an open-loop
//! request was sent up to 2 ms after its due time, its latency counted from that time. Here
//! one thread keeps the pending deadlines in a heap and waits on a condition variable until
//! the earliest of them (a futex timeout: late by the kernel's timer slack, ≈ 50 µs), then
//! wakes their tasks.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// At least this long, tokio's timer is precise enough (≤ 2% off) and is used instead.
const COARSE: Duration = Duration::from_millis(100);
/// Pending delays the thread holds; past it, delays fall back to tokio's timer (late, but
/// bounded memory whatever the load).
const PENDING_MAX: usize = 100_000;

/// Waits `d`, to within tens of microseconds for delays under [`COARSE`].
pub async fn sleep(d: Duration) {
    sleep_until(Instant::now() + d).await;
}

/// Waits until `deadline`, to within tens of microseconds when it is less than [`COARSE`]
/// away (the load generator's open-loop schedule, a simulator's latency).
pub async fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline <= now {
        return;
    }
    if deadline - now < COARSE {
        let (wake, woken) = oneshot::channel();
        if timer().add(deadline, wake) {
            // The sender is only dropped once sent (the thread never exits).
            let _ = woken.await;
            return;
        }
    }
    tokio::time::sleep_until(deadline.into()).await;
}

struct Pending {
    at: Instant,
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Pending>>,
    seq: u64,
}

struct Timer {
    queue: Mutex<Queue>,
    earlier: Condvar,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let t: &'static Timer = Box::leak(Box::new(Timer {
            queue: Mutex::default(),
            earlier: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("delays".into())
            .spawn(move || t.run())
            .expect("the delay thread");
        t
    })
}

impl Timer {
    /// Queues a wake-up at `at`; false when the queue is full.
    fn add(&self, at: Instant, wake: oneshot::Sender<()>) -> bool {
        let mut q = self.queue.lock().expect("delay queue");
        if q.heap.len() >= PENDING_MAX {
            return false;
        }
        let first = q.heap.peek().is_none_or(|Reverse(p)| at < p.at);
        q.seq += 1;
        let seq = q.seq;
        q.heap.push(Reverse(Pending { at, seq, wake }));
        if first {
            self.earlier.notify_one();
        }
        true
    }

    fn run(&self) {
        let mut q = self.queue.lock().expect("delay queue");
        loop {
            let now = Instant::now();
            while q.heap.peek().is_some_and(|Reverse(p)| p.at <= now) {
                if let Some(Reverse(p)) = q.heap.pop() {
                    // A task that stopped waiting (its request was dropped) is fine.
                    let _ = p.wake.send(());
                }
            }
            q = match q.heap.peek() {
                Some(Reverse(p)) => {
                    let wait = p.at.saturating_duration_since(now);
                    self.earlier.wait_timeout(q, wait).expect("delay queue").0
                }
                None => self.earlier.wait(q).expect("delay queue"),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each delay ends no earlier than asked (how much later is a timing, measured by
    /// `loadtest/sim-latency.py`, not tested).
    #[actix_rt::test]
    async fn delays_end_no_earlier_than_asked() {
        for micros in [0u64, 200, 1_000, 3_000, 150_000] {
            let asked = Duration::from_micros(micros);
            let start = Instant::now();
            sleep(asked).await;
            let took = start.elapsed();
            assert!(took >= asked, "{took:?} < {asked:?}");
        }
    }

    /// Delays added out of order end in deadline order.
    #[actix_rt::test]
    async fn earlier_deadlines_first() {
        let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        for ms in [9u64, 3, 6, 1] {
            let order = order.clone();
            tasks.push(actix_rt::spawn(async move {
                sleep(Duration::from_millis(ms)).await;
                order.borrow_mut().push(ms);
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(*order.borrow(), vec![1, 3, 6, 9]);
    }
}

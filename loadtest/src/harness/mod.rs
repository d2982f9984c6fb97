//! The load-test harness behind the `loadtest` binary: drives a target (payd over HTTP, or
//! the PostgreSQL baseline ledger) with N connections, closed-loop or open-loop on a
//! schedule, records every latency in HDR histograms, and checks at the end that the
//! target lost nothing it acknowledged.
//!
//! Everything runs on one thread (a tokio current-thread runtime and a `LocalSet`): the
//! generator is meant to be pinned to its own core, and one thread needs no locks.

pub mod payd;
pub mod pg;
pub mod report;
pub mod schedule;

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

pub use schedule::Schedule;

/// Highest latency recorded exactly (µs); slower answers are clamped to it.
const LATENCY_MAX_US: u64 = 120_000_000;
/// Longest run the per-second timeline covers.
pub const RUN_SECS_MAX: u64 = 24 * 3600;

/// How requests are paced.
#[derive(Clone, Debug)]
pub enum Pacing {
    /// Each connection sends its next request as soon as the previous one is answered.
    Closed,
    /// Requests are due on a schedule whatever the answers; latency counts from when a
    /// request was due, so time spent waiting for a free connection is charged too.
    Open(Schedule),
}

/// What a request came to, for the error table.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// 2xx (a declined payment is a 2xx: the target decided it).
    pub ok: bool,
    /// e.g. `succeeded`, `declined:insufficient_funds`, `503:overloaded`, `io_error`.
    pub label: Cow<'static, str>,
}

impl Outcome {
    pub fn ok(label: impl Into<Cow<'static, str>>) -> Outcome {
        Outcome {
            ok: true,
            label: label.into(),
        }
    }
    pub fn err(label: impl Into<Cow<'static, str>>) -> Outcome {
        Outcome {
            ok: false,
            label: label.into(),
        }
    }
}

/// A system under load. `exec` runs one operation on one connection and folds the answer
/// into the target's own bookkeeping (for the end-of-run checks).
#[allow(async_fn_in_trait)] // single-threaded by design: these futures need not be Send
pub trait Target {
    type Conn;
    type Op;
    async fn connect(&self) -> anyhow::Result<Self::Conn>;
    /// The i-th operation of the run.
    fn next_op(&self, i: u64) -> Self::Op;
    async fn exec(&self, conn: &mut Option<Self::Conn>, op: Self::Op) -> Outcome;
}

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub connections: usize,
    pub pacing: Pacing,
    /// Wall time of the whole run, warmup included (open loop: the schedule's length).
    pub duration: Duration,
    /// Answers to requests sent before this are left out of the statistics.
    pub warmup: Duration,
    pub max_requests: u64,
    /// Print a progress line to stderr every second.
    pub progress: bool,
    /// When set, each measured answer is also counted in the histogram of the phase this
    /// cell held when its request was sent (0, 1 or 2: before, during and after an event
    /// another task drives, such as a day-end).
    pub phase: Option<Rc<Cell<u8>>>,
}

/// One second of the run (by completion time).
pub struct Second {
    pub ok: u64,
    pub errors: u64,
    pub latency: Histogram<u64>,
}

pub struct Stats {
    pub latency: Histogram<u64>,
    pub outcomes: BTreeMap<String, u64>,
    pub timeline: Vec<Second>,
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    /// Length of the measured window (after warmup).
    pub measured: Duration,
    /// Measured latencies by [`RunConfig::phase`] (before, during, after), when phased.
    pub phases: Option<[Histogram<u64>; 3]>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("valid histogram bounds")
}

struct Shared {
    next: Cell<u64>,
    started: Instant,
    deadline: Instant,
    latency: RefCell<Histogram<u64>>,
    outcomes: RefCell<BTreeMap<String, u64>>,
    timeline: RefCell<Vec<Second>>,
    ok: Cell<u64>,
    errors: Cell<u64>,
    sent: Cell<u64>,
    phases: RefCell<[Histogram<u64>; 3]>,
}

impl Shared {
    fn record(
        &self,
        due: Instant,
        done: Instant,
        outcome: &Outcome,
        measured: bool,
        phase: Option<u8>,
    ) {
        let us = (done - due).as_micros().clamp(1, LATENCY_MAX_US as u128) as u64;
        let second = (done - self.started).as_secs() as usize;
        {
            let mut timeline = self.timeline.borrow_mut();
            while timeline.len() <= second {
                timeline.push(Second {
                    ok: 0,
                    errors: 0,
                    latency: histogram(),
                });
            }
            let s = &mut timeline[second];
            if outcome.ok {
                s.ok += 1;
            } else {
                s.errors += 1;
            }
            let _ = s.latency.record(us);
        }
        if !measured {
            return;
        }
        let _ = self.latency.borrow_mut().record(us);
        if let Some(p) = phase {
            let _ = self.phases.borrow_mut()[usize::from(p.min(2))].record(us);
        }
        if outcome.ok {
            self.ok.set(self.ok.get() + 1);
        } else {
            self.errors.set(self.errors.get() + 1);
        }
        let mut outcomes = self.outcomes.borrow_mut();
        match outcomes.get_mut(outcome.label.as_ref()) {
            Some(n) => *n += 1,
            None => {
                outcomes.insert(outcome.label.to_string(), 1);
            }
        }
    }
}

/// Runs the load and returns its statistics. Must be called inside a `LocalSet`.
pub async fn run<T: Target + 'static>(target: Rc<T>, config: &RunConfig) -> Stats {
    let started = Instant::now();
    let duration = match &config.pacing {
        Pacing::Closed => config.duration,
        Pacing::Open(s) => Duration::from_secs_f64(s.total_secs()),
    }
    .min(Duration::from_secs(RUN_SECS_MAX));
    let shared = Rc::new(Shared {
        next: Cell::new(0),
        started,
        deadline: started + duration,
        latency: RefCell::new(histogram()),
        outcomes: RefCell::new(BTreeMap::new()),
        timeline: RefCell::new(Vec::new()),
        ok: Cell::new(0),
        errors: Cell::new(0),
        sent: Cell::new(0),
        phases: RefCell::new([histogram(), histogram(), histogram()]),
    });
    let measure_from = started + config.warmup;
    let mut tasks = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        let (target, shared, pacing) = (target.clone(), shared.clone(), config.pacing.clone());
        let phase = config.phase.clone();
        let max = config.max_requests;
        tasks.push(tokio::task::spawn_local(async move {
            let mut conn = target.connect().await.ok();
            loop {
                let i = shared.next.get();
                if i >= max {
                    break;
                }
                shared.next.set(i + 1);
                let due = match &pacing {
                    Pacing::Closed => Instant::now(),
                    Pacing::Open(schedule) => match schedule.offset(i) {
                        Some(offset) => shared.started + offset,
                        None => break,
                    },
                };
                if due >= shared.deadline {
                    break;
                }
                // Tokio's timer ticks in milliseconds and fires a tick late (1–2 ms), which
                // bunched the schedule's requests and counted the lateness into their
                // latency: a timer thread keeps to the microsecond-scale schedule.
                crate::delay::sleep_until(due).await;
                let op = target.next_op(i);
                shared.sent.set(shared.sent.get() + 1);
                let in_phase = phase.as_ref().map(|p| p.get());
                let outcome = target.exec(&mut conn, op).await;
                shared.record(due, Instant::now(), &outcome, due >= measure_from, in_phase);
            }
        }));
    }
    let progress = config.progress.then(|| {
        let shared = shared.clone();
        tokio::task::spawn_local(async move {
            let mut last = (0u64, 0u64);
            let mut tick = tokio::time::interval_at(
                (shared.started + Duration::from_secs(1)).into(),
                Duration::from_secs(1),
            );
            loop {
                tick.tick().await;
                let t = shared.started.elapsed().as_secs();
                let (ok, errors) = {
                    let timeline = shared.timeline.borrow();
                    timeline
                        .iter()
                        .fold((0, 0), |(o, e), s| (o + s.ok, e + s.errors))
                };
                let p99 = shared
                    .timeline
                    .borrow()
                    .get(t.saturating_sub(1) as usize)
                    .map(|s| s.latency.value_at_quantile(0.99))
                    .unwrap_or(0);
                eprintln!(
                    "loadtest: t={t:>4}s  ok/s {:>8}  errors/s {:>6}  p99 {:>8.3} ms  sent {}",
                    ok - last.0,
                    errors - last.1,
                    p99 as f64 / 1000.0,
                    shared.sent.get()
                );
                last = (ok, errors);
            }
        })
    });
    for t in tasks {
        let _ = t.await;
    }
    if let Some(p) = progress {
        p.abort();
    }
    let ended = Instant::now();
    Stats {
        latency: shared.latency.replace(histogram()),
        outcomes: shared.outcomes.take(),
        timeline: shared.timeline.take(),
        sent: shared.sent.get(),
        ok: shared.ok.get(),
        errors: shared.errors.get(),
        measured: ended.saturating_duration_since(measure_from),
        phases: config.phase.is_some().then(|| {
            shared
                .phases
                .replace([histogram(), histogram(), histogram()])
        }),
    }
}

/// Runs `work(i, state)` for i in 0..n over `workers` concurrent workers, each with its own
/// state (a connection) that `work` hands back for its next item (setup and checks).
pub async fn for_each_concurrently<S, F, Fut>(n: usize, workers: usize, work: F)
where
    S: Default + 'static,
    F: Fn(usize, S) -> Fut + 'static,
    Fut: std::future::Future<Output = S> + 'static,
{
    let next = Rc::new(Cell::new(0usize));
    let work = Rc::new(work);
    let tasks: Vec<_> = (0..workers.clamp(1, n.max(1)))
        .map(|_| {
            let (next, work) = (next.clone(), work.clone());
            tokio::task::spawn_local(async move {
                let mut state = S::default();
                loop {
                    let i = next.get();
                    if i >= n {
                        break;
                    }
                    next.set(i + 1);
                    state = work(i, state).await;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

//! payd's log writer: lines gather in one bounded buffer, and a thread writes what gathered
//! every [`INTERVAL`] with one `write(2)`.
//!
//! tracing-appender's non-blocking writer (used before) hands each line to its thread
//! through a channel, so under load that thread woke for nearly every line: a futex wake on
//! the serving thread, a context switch and a `write(2)` per line, its spin-and-yield
//! backoff on the serving core. At 8,700 card payments/s (two lines each) that thread took
//! 2.2–2.3 µs of payd's CPU per payment, against 0.7 µs for this one (`loadtest/threads.sh`,
//! docs/BENCHMARKS.md). Here a line is a `memcpy` under a mutex, and the thread wakes once
//! per interval that has lines at all.
//!
//! Bounds and what is given up:
//! - The buffer holds at most [`BUFFER_BYTES`]; a line that does not fit is dropped and
//!   counted (`rongpay_log_lines_dropped_total`): a slow disk or pipe never stalls a payment.
//! - A warning or an error wakes the thread at once. Other lines reach stderr up to
//!   [`INTERVAL`] late, and a kill -9 loses what the buffer held (the non-blocking writer
//!   lost its queue the same way). The log is not the record of money: the journal is.
//! - A clean exit (the [`Flusher`] dropped) writes everything out, and so does a fatal
//!   error's exit ([`flush_all`] before `std::process::exit`).

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long lines gather before the thread writes them.
pub const INTERVAL: Duration = Duration::from_millis(10);
/// The most bytes of lines held (about two seconds of lines at 20,000 payments/s).
pub const BUFFER_BYTES: usize = 16 << 20;
/// What the thread's spare buffer is cut back to after a burst.
const KEEP_BYTES: usize = 1 << 20;

struct State {
    lines: Vec<u8>,
    /// The thread waits for a first line (only then does a line wake it).
    idle: bool,
    /// A warning or error is waiting: write without waiting out the interval.
    urgent: bool,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    limit: usize,
    interval: Duration,
    /// Where lines go. Whoever writes (the thread, or [`LogWriter::flush`]) takes the lines
    /// out of the buffer while holding it, so lines keep their order.
    out: Mutex<Box<dyn Write + Send>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only bytes behind: keep logging.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes what is buffered, through `spare` (emptied after).
    fn write_out(&self, spare: &mut Vec<u8>) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut self.lock().lines, spare);
        if !spare.is_empty() {
            // Nothing can be done about a failing stderr but to go on.
            let _ = out.write_all(spare).and_then(|()| out.flush());
        }
        spare.clear();
        if spare.capacity() > KEEP_BYTES {
            spare.shrink_to(KEEP_BYTES);
        }
    }
}

/// Where payd's lines go: the `MakeWriter` of its subscriber, and of the access log.
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Writes out what is buffered and stops the thread when dropped.
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// The process's log writer, for [`flush_all`].
static PROCESS: std::sync::OnceLock<LogWriter> = std::sync::OnceLock::new();

/// A writer of lines to `out` (payd: stderr) through a thread named `log-writer`. The first
/// one spawned is the process's, which [`flush_all`] writes out.
pub fn spawn(out: impl Write + Send + 'static) -> std::io::Result<(LogWriter, Flusher)> {
    let spawned = spawn_with(out, BUFFER_BYTES, INTERVAL)?;
    let _ = PROCESS.set(spawned.0.clone());
    Ok(spawned)
}

/// Writes out every line the process's log writer holds, on the calling thread: before
/// `std::process::exit`, which skips the [`Flusher`].
pub fn flush_all() {
    if let Some(writer) = PROCESS.get() {
        writer.flush();
    }
}

fn spawn_with(
    out: impl Write + Send + 'static,
    limit: usize,
    interval: Duration,
) -> std::io::Result<(LogWriter, Flusher)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            lines: Vec::with_capacity(64 << 10),
            idle: false,
            urgent: false,
            closed: false,
        }),
        wake: Condvar::new(),
        limit,
        interval,
        out: Mutex::new(Box::new(out)),
    });
    let theirs = shared.clone();
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || run(&theirs))?;
    Ok((
        LogWriter {
            shared: shared.clone(),
        },
        Flusher {
            shared,
            thread: Some(thread),
        },
    ))
}

fn run(shared: &Shared) {
    let mut spare: Vec<u8> = Vec::with_capacity(64 << 10);
    loop {
        let mut state = shared.lock();
        state.idle = true;
        while state.lines.is_empty() && !state.closed {
            state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.idle = false;
        // Let lines gather, unless one is urgent or payd is stopping.
        let (mut state, _) = shared
            .wake
            .wait_timeout_while(state, shared.interval, |s| !s.urgent && !s.closed)
            .unwrap_or_else(|e| e.into_inner());
        state.urgent = false;
        if state.closed && state.lines.is_empty() {
            return;
        }
        drop(state);
        shared.write_out(&mut spare);
    }
}

impl LogWriter {
    /// Writes out every line buffered so far, on the calling thread.
    pub fn flush(&self) {
        self.shared.write_out(&mut Vec::new());
    }
}

/// One line's writer (tracing writes a formatted line with one `write_all`).
pub struct Line<'a> {
    shared: &'a Shared,
    urgent: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut state = self.shared.lock();
        if state.lines.len() + buf.len() > self.shared.limit {
            drop(state);
            metrics::counter!(services::metrics::LOG_LINES_DROPPED).increment(1);
            // Reported as written: a dropped line is not the caller's error.
            return Ok(buf.len());
        }
        state.lines.extend_from_slice(buf);
        let wake = state.idle || (self.urgent && !state.urgent);
        state.urgent |= self.urgent;
        // Wake the thread once per interval at most (and for a warning): not per line.
        state.idle = false;
        drop(state);
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            shared: &self.shared,
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        Line {
            shared: &self.shared,
            urgent: *meta.level() <= tracing::Level::WARN,
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tracing_subscriber::fmt::MakeWriter;

    /// An output the test can read while the writer holds it.
    #[derive(Clone, Default)]
    struct Out(Arc<Mutex<Vec<u8>>>);

    impl Write for Out {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Out {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn eventually(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn lines_arrive_whole_in_order_and_a_clean_stop_writes_the_rest() {
        let out = Out::default();
        let (writer, flusher) = spawn(out.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..2_000 {
                        let line = format!(
                            "{{\"t\":{t},\"i\":{i},\"pad\":\"{}\"}}\n",
                            "x".repeat(i % 97)
                        );
                        writer.make_writer().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // The last lines are still in the buffer, or on their way: the stop writes them.
        drop(flusher);
        let text = out.text();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let (t, i) = (
                v["t"].as_u64().unwrap() as usize,
                v["i"].as_u64().unwrap() as usize,
            );
            assert_eq!(i, next[t], "thread {t}'s lines in order");
            next[t] += 1;
        }
        assert_eq!(next, [2_000; 4]);
    }

    #[test]
    fn a_line_reaches_the_output_within_the_interval_without_a_stop() {
        let out = Out::default();
        let (writer, _flusher) = spawn(out.clone()).unwrap();
        for round in 0..3 {
            let line = format!("line {round}\n");
            writer.make_writer().write_all(line.as_bytes()).unwrap();
            eventually("the line is written", || out.text().contains(&line));
            // The thread has gone idle again before the next round: a line still wakes it.
            std::thread::sleep(INTERVAL * 2);
        }
    }

    #[test]
    fn a_full_buffer_drops_lines_and_keeps_the_ones_it_took() {
        // An output that blocks until released: the buffer fills behind it.
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        struct Blocked(Arc<(Mutex<bool>, Condvar)>, Out);
        impl Write for Blocked {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let (open, cv) = &*self.0;
                let mut o = open.lock().unwrap();
                while !*o {
                    o = cv.wait(o).unwrap();
                }
                self.1.write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let out = Out::default();
        let (writer, flusher) =
            spawn_with(Blocked(gate.clone(), out.clone()), 100, INTERVAL).unwrap();
        // The first line is taken by the thread, which then blocks writing it.
        writer.make_writer().write_all(b"first\n").unwrap();
        eventually("the thread took the first line", || {
            writer.shared.lock().lines.is_empty()
        });
        // 100 bytes of room: ten 10-byte lines fit, the rest are dropped, and no write
        // waits for the blocked output.
        let started = Instant::now();
        for i in 0..50 {
            writer
                .make_writer()
                .write_all(format!("line {i:04}\n").as_bytes())
                .unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        drop(flusher);
        let kept: Vec<String> = out.text().lines().map(str::to_string).collect();
        let expected: Vec<String> = std::iter::once("first".to_string())
            .chain((0..10).map(|i| format!("line {i:04}")))
            .collect();
        assert_eq!(kept, expected);
    }

    #[test]
    fn flush_writes_what_is_buffered_at_once_and_in_order() {
        let out = Out::default();
        let (writer, flusher) =
            spawn_with(out.clone(), BUFFER_BYTES, Duration::from_secs(3600)).unwrap();
        writer.make_writer().write_all(b"one\n").unwrap();
        writer.make_writer().write_all(b"two\n").unwrap();
        writer.flush();
        assert_eq!(out.text(), "one\ntwo\n");
        writer.make_writer().write_all(b"three\n").unwrap();
        drop(flusher);
        assert_eq!(out.text(), "one\ntwo\nthree\n");
    }

    #[test]
    fn a_warning_is_written_without_waiting_out_the_interval() {
        let out = Out::default();
        // An interval longer than any test: only a warning (or the stop) writes.
        let (writer, flusher) =
            spawn_with(out.clone(), BUFFER_BYTES, Duration::from_secs(3600)).unwrap();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer)
            .without_time()
            .with_target(false)
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("first");
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(out.text(), "", "an info line waits for the interval");
            tracing::warn!("second");
            eventually("the warning and the line before it", || {
                out.text().lines().count() == 2
            });
            let text = out.text();
            assert!(text.contains("first") && text.contains("second"), "{text}");
            tracing::info!("third");
        });
        drop(flusher);
        let lines: Vec<String> = out.text().lines().map(|l| l.trim().to_string()).collect();
        assert_eq!(lines, ["INFO first", "WARN second", "INFO third"]);
    }
}

//! The nice value of RocksDB's flush threads, following the flushes (issue #14, session 28).
//!
//! A flush at the normal nice takes a share of the serving core while it runs, which shows
//! in the payments' p99; at nice 19 it runs in the core's idle moments and the p99 of
//! balance payments at 64 connections fell from 6.1–6.8 to 5.1–5.4 ms. But a load that
//! writes faster than idle moments can flush (the batch endpoint) then fills the memtables,
//! and RocksDB stops every write until a flush is done (229–249 stops in 30 s, a 1.7 s
//! second; docs/BENCHMARKS.md). So the flush threads sit at the idle nice while nothing
//! presses, and go to the store's background nice once a flush is pending and a column
//! family's active memtable is half full or filling fast ([`must_hurry`]): the flush then
//! finishes before that memtable fills and writes stop. Checked by the writer every
//! [`CHECK_EVERY`], only when the process may lower a nice value again
//! ([`crate::sched::can_lower_nice`]).

use std::time::{Duration, Instant};

use rocksdb::DB;

/// How often the writer looks at the memtables.
pub const CHECK_EVERY: Duration = Duration::from_millis(10);
/// Over how long a family's fill rate is measured.
pub const RATE_WINDOW: Duration = Duration::from_millis(100);
/// A flush is pending and some family's active memtable is half full: the flush threads
/// hurry. Under balance payments a flush at nice 19 was done with the next memtable about
/// 55% full, three seconds a memtable; under the batch endpoint it was not.
pub const HURRY_FILL_PERCENT: u64 = 50;
/// ...or a family fills a whole memtable in under this long: a pending flush at nice 19
/// would not be done before the next memtable is full (the batch endpoint fills the dedup
/// family's in well under a second), so the flush threads hurry at once.
pub const HURRY_FILL_TIME: Duration = Duration::from_secs(1);

/// One column family's active memtable: bytes in it, its size, and how fast it grew over
/// the last [`RATE_WINDOW`] (bytes per second; 0 unknown, e.g. just after a switch).
#[derive(Clone, Copy, Debug)]
pub struct Fill {
    pub used: u64,
    pub size: u64,
    pub bytes_per_s: u64,
}

/// Whether the flush threads must hurry: a flush is pending (`immutable` memtables wait)
/// and some family's active memtable is [`HURRY_FILL_PERCENT`] full or fills a memtable in
/// under [`HURRY_FILL_TIME`].
pub fn must_hurry(immutable: u64, fills: impl IntoIterator<Item = Fill>) -> bool {
    immutable > 0
        && fills.into_iter().any(|f| {
            f.used.saturating_mul(100) >= f.size.saturating_mul(HURRY_FILL_PERCENT)
                || f.bytes_per_s as u128 * HURRY_FILL_TIME.as_millis() >= f.size as u128 * 1000
        })
}

pub(crate) struct FlushPriority {
    idle: i32,
    busy: i32,
    current: i32,
    /// Each column family's name and memtable size.
    families: Vec<(&'static str, u64)>,
    checked: Instant,
    /// Each family's bytes at the start of the rate window, and its last measured rate.
    window: (Instant, Vec<u64>),
    rates: Vec<u64>,
}

impl FlushPriority {
    /// Puts RocksDB's flush threads at `idle` and answers the controller that moves them
    /// between `idle` and `busy`; `None` (the threads left at `busy`) when `idle` is not
    /// above `busy` or the process may not lower a nice value again. `families`: each
    /// column family's name and memtable size.
    pub(crate) fn start(idle: i32, busy: i32, families: Vec<(&'static str, u64)>) -> Option<Self> {
        if idle <= busy || !crate::sched::can_lower_nice(idle, busy) {
            return None;
        }
        if let Err(e) = crate::sched::renice_threads("rocksdb:high", idle) {
            tracing::warn!("RocksDB's flush threads keep their nice value: {e}");
            return None;
        }
        let n = families.len();
        Some(FlushPriority {
            idle,
            busy,
            current: idle,
            families,
            checked: Instant::now(),
            window: (Instant::now(), vec![0; n]),
            rates: vec![0; n],
        })
    }

    /// After a group write: at most every [`CHECK_EVERY`], the memtables' state decides the
    /// flush threads' nice value.
    pub(crate) fn poll(&mut self, db: &DB) {
        if self.checked.elapsed() < CHECK_EVERY {
            return;
        }
        self.checked = Instant::now();
        let property = |cf: &str, name: &str| {
            db.cf_handle(cf)
                .and_then(|h| db.property_int_value_cf(&h, name).ok().flatten())
                .unwrap_or(0)
        };
        let immutable: u64 = self
            .families
            .iter()
            .map(|(cf, _)| property(cf, "rocksdb.num-immutable-mem-table"))
            .sum();
        let used: Vec<u64> = self
            .families
            .iter()
            .map(|(cf, _)| property(cf, "rocksdb.cur-size-active-mem-table"))
            .collect();
        let window = self.window.0.elapsed();
        if window >= RATE_WINDOW {
            for ((rate, now), then) in self.rates.iter_mut().zip(&used).zip(&self.window.1) {
                // A smaller memtable than before: it was switched, the rate is unknown.
                *rate = now.checked_sub(*then).map_or(0, |grew| {
                    (grew as u128 * 1000 / window.as_millis().max(1)) as u64
                });
            }
            self.window = (Instant::now(), used.clone());
        }
        let hurry =
            must_hurry(
                immutable,
                self.families.iter().zip(&used).zip(&self.rates).map(
                    |(((_, size), used), rate)| Fill {
                        used: *used,
                        size: *size,
                        bytes_per_s: *rate,
                    },
                ),
            );
        let want = if hurry { self.busy } else { self.idle };
        if want != self.current {
            match crate::sched::renice_threads("rocksdb:high", want) {
                Ok(_) => self.current = want,
                // Stay where it is; the next check tries again.
                Err(e) => tracing::warn!("RocksDB's flush threads keep nice {}: {e}", self.current),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_pending_flush_with_a_filling_memtable_hurries() {
        let mib = 1 << 20;
        let fill = |used: u64, size: u64, bytes_per_s: u64| Fill {
            used: used * mib,
            size: size * mib,
            bytes_per_s: bytes_per_s * mib,
        };
        // Nothing pending: however full or fast, the flush threads stay idle.
        assert!(!must_hurry(0, [fill(64, 64, 640)]));
        // Pending, the memtables under half full and filling in over a second.
        assert!(!must_hurry(1, [fill(31, 64, 21), fill(3, 8, 7)]));
        // Pending, and one family half full...
        assert!(must_hurry(1, [fill(10, 64, 21), fill(4, 8, 1)]));
        // ...or filling a memtable within a second.
        assert!(must_hurry(1, [fill(10, 64, 21), fill(1, 8, 8)]));
        assert!(must_hurry(2, [fill(64, 64, 0)]));
    }
}

//! An in-memory filter of the aux family's keys under the prefixes that requests look up and
//! almost never find: a payment's idempotency record (`xi`), its `out_trade_no` index
//! (`ot`) and its payer's customer link (`ca`). Each such read of an absent key cost
//! RocksDB a probe of the memtable's filter, of every immutable memtable's and of every L0
//! file's bloom filter (up to 16, [`crate::store::L0_COMPACTION_TRIGGER`]) and of each level
//! below, a cache miss each: ≈ 1 µs, three times a balance payment. This filter rules
//! those keys out with one probe of one 32-byte block (the split block bloom filter of
//! [`crate::idfilter`], 16 bits per key); only keys it cannot rule out go to RocksDB.
//!
//! Invariant: while the filter is ready, every key of a filtered prefix in the aux family is
//! in it. Keys enter the aux family only through the group-commit writer, which adds each
//! filtered key here before the group's write (`writer::add_aux`); a group that then fails
//! leaves false positives, never a miss. After open, a thread builds the filter from a scan
//! of the filtered prefixes while the writer keeps the hashes of the keys it writes
//! meanwhile ([`KeyFilter::insert`] while building): the scan sees every key written before
//! its iterator was created, the writer's list every key after, and both are in the filter
//! when it becomes ready ([`KeyFilter::install`]). Until then, and when off, every read goes
//! to RocksDB as before the filter existed.
//!
//! A reader that must see a key written by another request is ordered after that write
//! through the request's own synchronization (the idempotency and `out_trade_no` claims,
//! held until the write is durable; a client that saw an answer): the filter's lock orders
//! the writer's insert before any read that follows it.
//!
//! Bounded as the id filter is: the first segment is sized for twice the aux family's keys
//! at open (at least 1M keys), a full one is followed by one twice its size up to
//! [`KeyFilter`]'s `bytes_max`; past it the filter is saturated and rules nothing out, until
//! a restart sizes it afresh. The writer's list while building is bounded too
//! ([`PENDING_MAX`]): past it the filter is given up (off) until the next open. Keys that
//! leave the family (expired idempotency records dropped by compaction, shelved indexes)
//! stay in the filter as false positives until the next open.

use std::hash::BuildHasher;
use std::sync::RwLock;

use crate::idfilter::IdFilter;
use crate::records::prefix;

/// The prefixes whose keys the filter holds. Every read of a key under one of them may be
/// answered "absent" by the filter, so every write of one must reach [`KeyFilter::insert`].
pub const FILTERED: [&[u8]; 3] = [
    prefix::IDEMPOTENCY,
    prefix::OUT_TRADE_NO,
    prefix::CUSTOMER_BY_ACCOUNT,
];

/// Bytes of the filter (a gauge): 0 while it is built after open, or off, given up or
/// saturated.
pub const KEY_FILTER_BYTES: &str = "rongpay_store_key_filter_bytes";

/// Hashes of keys the writer keeps while the filter is built (8 bytes each, 8 MiB).
pub const PENDING_MAX: usize = 1 << 20;

/// Whether `key` is under a filtered prefix.
pub fn filtered(key: &[u8]) -> bool {
    FILTERED.iter().any(|p| key.starts_with(p))
}

/// A key's 64-bit hash (foldhash's quality variant, fixed seed: every bit varies, and the
/// same key hashes the same in the scan and in the writer).
fn hash(key: &[u8]) -> u64 {
    const SEED: u64 = 0x6b65_7966_696c_7472;
    foldhash::quality::FixedState::with_seed(SEED).hash_one(key)
}

enum State {
    /// The scan after open runs; the hashes of the keys written meanwhile.
    Building(Vec<u64>),
    Ready(IdFilter),
    /// Turned off, given up, or the scan failed: every read goes to RocksDB.
    Off,
}

/// See the module's documentation.
pub struct KeyFilter {
    state: RwLock<State>,
    bytes: metrics::Gauge,
}

impl KeyFilter {
    /// A filter being built (`on`) or off.
    pub fn new(on: bool) -> KeyFilter {
        KeyFilter {
            state: RwLock::new(if on {
                State::Building(Vec::new())
            } else {
                State::Off
            }),
            bytes: metrics::gauge!(KEY_FILTER_BYTES),
        }
    }

    /// Adds the filtered ones of a group's keys (the writer, before the group's write).
    pub fn insert<'a>(&self, keys: impl IntoIterator<Item = &'a [u8]>) {
        let mut keys = keys.into_iter().filter(|k| filtered(k)).peekable();
        if keys.peek().is_none() {
            return;
        }
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        match &mut *state {
            State::Ready(filter) => {
                let before = filter.bytes();
                keys.for_each(|k| filter.insert_hash(hash(k)));
                // A new segment, or saturated (its segments dropped).
                let after = filter.bytes();
                if after != before {
                    self.bytes.set(after as f64);
                }
            }
            State::Building(pending) => {
                pending.extend(keys.map(hash));
                if pending.len() > PENDING_MAX {
                    tracing::warn!(
                        "the aux key filter's build fell behind the writes: every lookup goes to RocksDB until a restart"
                    );
                    *state = State::Off;
                    self.bytes.set(0.0);
                }
            }
            State::Off => {}
        }
    }

    /// False only when `key` is not in the aux family: a filtered key the ready filter rules
    /// out. Every other key "may" be there and is looked up.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        if !filtered(key) {
            return true;
        }
        let h = hash(key);
        match &*self.state.read().unwrap_or_else(|p| p.into_inner()) {
            State::Ready(filter) => filter.may_contain_hash(h),
            State::Building(_) | State::Off => true,
        }
    }

    /// A filter sized for `expected` keys, growing to at most `bytes_max` bytes, for the
    /// scan to fill ([`KeyFilter::add_scanned`]) before [`KeyFilter::install`].
    pub fn empty(expected: usize, bytes_max: usize) -> IdFilter {
        IdFilter::new(expected, bytes_max)
    }

    /// Adds a key found by the scan to the filter it builds.
    pub fn add_scanned(filter: &mut IdFilter, key: &[u8]) {
        filter.insert_hash(hash(key));
    }

    /// The scan is over: its filter, with the keys written meanwhile, becomes the one reads
    /// use. Returns the filter's bytes (0 when the filter was given up meanwhile).
    pub fn install(&self, mut built: IdFilter) -> usize {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        match std::mem::replace(&mut *state, State::Off) {
            State::Building(pending) => {
                pending.into_iter().for_each(|h| built.insert_hash(h));
                let bytes = built.bytes();
                *state = State::Ready(built);
                self.bytes.set(bytes as f64);
                bytes
            }
            State::Ready(_) | State::Off => 0,
        }
    }

    /// The scan failed or was cancelled: every read goes to RocksDB.
    pub fn give_up(&self) {
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = State::Off;
        self.bytes.set(0.0);
    }

    /// Whether the filter is ready (reads of absent filtered keys are answered in memory).
    #[cfg(test)]
    fn ready(&self) -> bool {
        matches!(
            &*self.state.read().unwrap_or_else(|p| p.into_inner()),
            State::Ready(f) if !f.saturated()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(prefix: &[u8], n: usize, seed: u64) -> Vec<Vec<u8>> {
        (0..n as u64)
            .map(|i| {
                let mut k = prefix.to_vec();
                k.extend_from_slice(&seed.to_be_bytes());
                k.extend_from_slice(format!("order-{i}").as_bytes());
                k
            })
            .collect()
    }

    fn ready(filter: &KeyFilter, scanned: &[Vec<u8>]) {
        let mut built = KeyFilter::empty(scanned.len(), 64 << 20);
        for k in scanned {
            KeyFilter::add_scanned(&mut built, k);
        }
        assert!(filter.install(built) > 0);
    }

    #[test]
    fn every_key_scanned_or_written_meanwhile_or_after_is_found() {
        let filter = KeyFilter::new(true);
        let before = keys(prefix::OUT_TRADE_NO, 50_000, 1);
        let meanwhile = keys(prefix::IDEMPOTENCY, 50_000, 2);
        let after = keys(prefix::CUSTOMER_BY_ACCOUNT, 50_000, 3);
        // While building, everything "may" be there.
        filter.insert(meanwhile.iter().map(Vec::as_slice));
        assert!(!filter.ready());
        assert!(keys(prefix::OUT_TRADE_NO, 100, 9)
            .iter()
            .all(|k| filter.may_contain(k)));
        ready(&filter, &before);
        assert!(filter.ready());
        filter.insert(after.iter().map(Vec::as_slice));
        assert!(before
            .iter()
            .chain(&meanwhile)
            .chain(&after)
            .all(|k| filter.may_contain(k)));
    }

    #[test]
    fn rules_out_almost_every_filtered_key_never_added_and_no_other() {
        let filter = KeyFilter::new(true);
        ready(&filter, &keys(prefix::OUT_TRADE_NO, 200_000, 1));
        let absent = keys(prefix::OUT_TRADE_NO, 100_000, 2);
        let maybe = absent.iter().filter(|k| filter.may_contain(k)).count();
        assert!(maybe < 300, "{maybe} false positives in 100,000");
        // A key of another prefix is never ruled out: its writes are not tracked.
        assert!(keys(prefix::PAYMENT, 1_000, 2)
            .iter()
            .all(|k| filter.may_contain(k)));
        assert!(keys(prefix::OUT_REFUND_NO, 1_000, 2)
            .iter()
            .all(|k| filter.may_contain(k)));
    }

    #[test]
    fn off_given_up_or_overrun_rules_nothing_out() {
        let absent = keys(prefix::IDEMPOTENCY, 1_000, 5);
        let off = KeyFilter::new(false);
        assert!(absent.iter().all(|k| off.may_contain(k)));
        assert_eq!(off.install(KeyFilter::empty(0, 64 << 20)), 0);
        assert!(absent.iter().all(|k| off.may_contain(k)));

        let given_up = KeyFilter::new(true);
        given_up.give_up();
        assert_eq!(given_up.install(KeyFilter::empty(0, 64 << 20)), 0);
        assert!(absent.iter().all(|k| given_up.may_contain(k)));

        // The writer's list while building is bounded: past it, off for good.
        let overrun = KeyFilter::new(true);
        let many = keys(prefix::IDEMPOTENCY, PENDING_MAX + 1, 6);
        overrun.insert(many.iter().map(Vec::as_slice));
        assert_eq!(overrun.install(KeyFilter::empty(0, 64 << 20)), 0);
        assert!(!overrun.ready());
        assert!(absent.iter().all(|k| overrun.may_contain(k)));
    }

    #[test]
    fn saturated_rules_nothing_out() {
        // Room for the first segment only (2 MiB, 1M keys): the next key saturates it.
        let filter = KeyFilter::new(true);
        let mut built = KeyFilter::empty(0, 3 << 20);
        for k in keys(prefix::OUT_TRADE_NO, crate::idfilter::MIN_IDS, 7) {
            KeyFilter::add_scanned(&mut built, &k);
        }
        filter.install(built);
        assert!(filter.ready());
        filter.insert([b"ot-one-more".as_slice()]);
        assert!(!filter.ready());
        assert!(keys(prefix::OUT_TRADE_NO, 1_000, 8)
            .iter()
            .all(|k| filter.may_contain(k)));
    }

    #[test]
    fn readers_and_the_writer_concurrently() {
        // One writer adding keys while readers look them up: once `insert` returned, a
        // reader started after it finds the key.
        let filter = std::sync::Arc::new(KeyFilter::new(true));
        ready(&filter, &[]);
        let written = keys(prefix::IDEMPOTENCY, 20_000, 11);
        let (tx, rx) = std::sync::mpsc::channel::<usize>();
        let reader = {
            let filter = std::sync::Arc::clone(&filter);
            let written = written.clone();
            std::thread::spawn(move || {
                for upto in rx {
                    assert!(written[..upto].iter().all(|k| filter.may_contain(k)));
                }
            })
        };
        for (i, chunk) in written.chunks(1_000).enumerate() {
            filter.insert(chunk.iter().map(Vec::as_slice));
            tx.send((i + 1) * 1_000).expect("reader alive");
        }
        drop(tx);
        reader.join().expect("no lookup missed a written key");
    }
}

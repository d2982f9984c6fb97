//! The writer's in-memory filter of the transfer ids in the dedup index.
//!
//! Every group write asks which of its transfer ids are already durable. Most are not, and
//! RocksDB answered each of those by probing the dedup family's memtable filter and then
//! the bloom filter of every L0 file and of each level below: up to 16 L0 files
//! ([`crate::store::L0_COMPACTION_TRIGGER`]), a cache miss each. This filter answers the
//! same question for all of them in one probe of one 32-byte block: a *split block bloom
//! filter* (Putze, Sanders and Singler, "Cache-, Hash- and Space-Efficient Bloom Filters";
//! the layout of Apache Parquet's and Impala's), 16 bits per id. Only ids it cannot rule
//! out go to RocksDB.
//!
//! Invariant: once the writer uses the filter, every key in the dedup family is in it. A
//! thread builds it from a scan of the family after the store opens; the writer (the only
//! thread that adds dedup keys) looks every id up until it arrives, keeps the ids it writes
//! meanwhile and adds them to it, then adds each group's ids before they are written
//! (`writer::IdFilterState`). Ids that leave the family (shelved) stay in the filter as
//! false positives until the next open.
//!
//! Bounded: the first segment is sized for twice the ids found at open (at least
//! [`MIN_IDS`]); a full segment is followed by one twice its size, until
//! [`IdFilter::bytes_max`]. Past that the filter is *saturated*: it rules nothing out, and
//! every id goes to RocksDB as before the filter existed. A restart sizes it afresh.

/// Bits of filter per id a segment is sized for (false positives ≈ 0.07% in a full one).
pub const BITS_PER_ID: usize = 16;
/// The smallest segment, in ids (2 MiB).
pub const MIN_IDS: usize = 1 << 20;

/// One 256-bit block: an id sets one bit in each of its eight words.
type Block = [u32; 8];

const SALT: [u32; 8] = [
    0x47b6_137b,
    0x4497_4d91,
    0x8824_ad5b,
    0xa2b7_289d,
    0x7054_95c7,
    0x2df1_424b,
    0x9efc_4947,
    0x5c6b_fb31,
];

struct Segment {
    blocks: Vec<Block>,
    /// Ids this segment is sized for, and ids added.
    capacity: usize,
    len: usize,
}

impl Segment {
    fn new(capacity: usize) -> Segment {
        let blocks = (capacity * BITS_PER_ID).div_ceil(256).max(1);
        Segment {
            // Zeroed pages come from the kernel untouched: a segment's memory is resident
            // only as ids land in it.
            blocks: vec![[0u32; 8]; blocks],
            capacity,
            len: 0,
        }
    }

    fn bytes(&self) -> usize {
        self.blocks.len() * std::mem::size_of::<Block>()
    }

    fn locate(&self, h: u64) -> (usize, [u32; 8]) {
        let block = (((h >> 32) * self.blocks.len() as u64) >> 32) as usize;
        let key = h as u32;
        let mut mask = [0u32; 8];
        for (m, salt) in mask.iter_mut().zip(SALT) {
            *m = 1 << (key.wrapping_mul(salt) >> 27);
        }
        (block, mask)
    }

    fn insert(&mut self, h: u64) {
        let (block, mask) = self.locate(h);
        for (word, m) in self.blocks[block].iter_mut().zip(mask) {
            *word |= m;
        }
        self.len += 1;
    }

    fn may_contain(&self, h: u64) -> bool {
        let (block, mask) = self.locate(h);
        self.blocks[block]
            .iter()
            .zip(mask)
            .all(|(word, m)| word & m != 0)
    }
}

/// See the module's documentation.
pub struct IdFilter {
    segments: Vec<Segment>,
    bytes_max: usize,
    saturated: bool,
}

/// A 64-bit hash of a 16-byte id. Ids are either hashes already (the batch endpoint's) or
/// time-ordered (the engine's), whose high bits barely change: every bit is mixed in
/// (MurmurHash3's 64-bit finalizer, twice).
fn hash(id: &[u8; 16]) -> u64 {
    let hi = u64::from_be_bytes(id[..8].try_into().expect("8 bytes"));
    let lo = u64::from_be_bytes(id[8..].try_into().expect("8 bytes"));
    fmix64(lo ^ fmix64(hi))
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// Ids a segment of `bytes` holds.
fn ids_in(bytes: usize) -> usize {
    bytes * 8 / BITS_PER_ID
}

/// Whether `bytes_max` leaves room for a filter at all (a first segment of [`MIN_IDS`]);
/// without it, [`IdFilter::new`] is saturated from the start.
pub fn fits(bytes_max: usize) -> bool {
    ids_in(bytes_max) >= MIN_IDS
}

impl IdFilter {
    /// An empty filter sized for `expected` ids, growing to at most `bytes_max` bytes.
    pub fn new(expected: usize, bytes_max: usize) -> IdFilter {
        let mut filter = IdFilter {
            segments: Vec::new(),
            bytes_max,
            saturated: false,
        };
        filter.grow(expected.saturating_mul(2).max(MIN_IDS));
        filter
    }

    /// Adds a segment for `capacity` ids, as large as fits in what is left of `bytes_max`;
    /// with no room for one of [`MIN_IDS`] ids, saturates
    /// (a `bytes_max` under 2 MiB turns the filter off).
    fn grow(&mut self, capacity: usize) {
        let left = self.bytes_max.saturating_sub(self.bytes());
        let capacity = capacity.min(ids_in(left));
        if capacity < MIN_IDS {
            self.saturated = true;
            self.segments = Vec::new();
            return;
        }
        self.segments.push(Segment::new(capacity));
    }

    /// Adds an id.
    pub fn insert(&mut self, id: &[u8; 16]) {
        self.insert_hash(hash(id));
    }

    /// Adds a key by its 64-bit hash, every bit of which must vary (the aux family's key
    /// filter, [`crate::keyfilter`], hashes whole keys).
    pub fn insert_hash(&mut self, h: u64) {
        if self.saturated {
            return;
        }
        let full = self.segments.last().is_none_or(|s| s.len >= s.capacity);
        if full {
            let next = self.segments.last().map_or(MIN_IDS, |s| s.capacity * 2);
            self.grow(next);
            if self.saturated {
                return;
            }
        }
        if let Some(segment) = self.segments.last_mut() {
            segment.insert(h);
        }
    }

    /// False only for an id never added.
    pub fn may_contain(&self, id: &[u8; 16]) -> bool {
        self.may_contain_hash(hash(id))
    }

    /// False only for a hash never added ([`IdFilter::insert_hash`]).
    pub fn may_contain_hash(&self, h: u64) -> bool {
        if self.saturated {
            return true;
        }
        self.segments.iter().any(|s| s.may_contain(h))
    }

    /// Bytes allocated (resident only as far as written).
    pub fn bytes(&self) -> usize {
        self.segments.iter().map(Segment::bytes).sum()
    }

    /// The most bytes the filter grows to.
    pub fn bytes_max(&self) -> usize {
        self.bytes_max
    }

    /// Ids added.
    pub fn len(&self) -> usize {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// Whether it outgrew `bytes_max` and rules nothing out.
    pub fn saturated(&self) -> bool {
        self.saturated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic ids: SHA-256-like (every bit varies) or time-ordered (a millisecond
    /// clock in the high bits, a counter below).
    fn random_ids(n: usize, seed: u64) -> Vec<[u8; 16]> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                let mut id = [0u8; 16];
                for chunk in id.chunks_mut(8) {
                    state = fmix64(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
                    chunk.copy_from_slice(&state.to_le_bytes());
                }
                id
            })
            .collect()
    }

    fn time_ordered_ids(n: usize, start_ms: u64) -> Vec<[u8; 16]> {
        (0..n as u64)
            .map(|i| (((start_ms + i / 50) as u128) << 64 | i as u128).to_be_bytes())
            .collect()
    }

    fn false_positives(filter: &IdFilter, absent: &[[u8; 16]]) -> f64 {
        absent.iter().filter(|id| filter.may_contain(id)).count() as f64 / absent.len() as f64
    }

    #[test]
    fn every_id_added_is_found() {
        let mut filter = IdFilter::new(0, 64 << 20);
        let ids = random_ids(300_000, 1);
        let ordered = time_ordered_ids(300_000, 1_764_000_000_000);
        for id in ids.iter().chain(&ordered) {
            filter.insert(id);
        }
        assert!(ids.iter().chain(&ordered).all(|id| filter.may_contain(id)));
        assert_eq!(filter.len(), 600_000);
    }

    #[test]
    fn rules_out_almost_every_id_not_added() {
        let mut filter = IdFilter::new(0, 64 << 20);
        for id in random_ids(MIN_IDS, 2) {
            filter.insert(&id);
        }
        for id in time_ordered_ids(MIN_IDS, 1_764_000_000_000) {
            filter.insert(&id);
        }
        // Two full segments of the first size: the false-positive rate is about twice one
        // segment's at 16 bits per id (≈ 0.07% each; 0.139% and 0.143% measured here).
        let random = false_positives(&filter, &random_ids(200_000, 3));
        let ordered = false_positives(&filter, &time_ordered_ids(200_000, 1_800_000_000_000));
        assert!(random < 0.003, "{random}");
        assert!(ordered < 0.003, "{ordered}");
    }

    #[test]
    fn grows_by_doubling_segments_then_saturates() {
        // Room for the first segment (2 MiB) and its double (4 MiB), not for 8 MiB more.
        let mut filter = IdFilter::new(0, 7 << 20);
        assert_eq!(filter.bytes(), 2 << 20);
        let ids = random_ids(3 * MIN_IDS, 4);
        for id in &ids[..MIN_IDS + 1] {
            filter.insert(id);
        }
        assert_eq!(filter.bytes(), 6 << 20);
        assert!(!filter.saturated());
        for id in &ids[MIN_IDS + 1..] {
            filter.insert(id);
        }
        assert!(!filter.saturated());
        filter.insert(&random_ids(1, 5)[0]);
        // The third segment would need 8 MiB: saturated, everything is "maybe", nothing held.
        assert!(filter.saturated());
        assert_eq!(filter.bytes(), 0);
        assert!(random_ids(1_000, 6).iter().all(|id| filter.may_contain(id)));
    }

    #[test]
    fn sized_at_open_for_twice_the_ids_found() {
        let filter = IdFilter::new(3 * MIN_IDS, 1 << 30);
        assert_eq!(filter.bytes(), 6 * MIN_IDS * BITS_PER_ID / 8);
        // Less room than asked: the segment takes what fits.
        let filter = IdFilter::new(3 * MIN_IDS, 4 << 20);
        assert_eq!(filter.bytes(), 4 << 20);
        // Not even the smallest segment fits: saturated from the start, and still correct.
        let filter = IdFilter::new(0, 1 << 20);
        assert!(filter.saturated());
        assert!(!fits(1 << 20) && !fits((2 << 20) - 1) && fits(2 << 20));
        assert!(!IdFilter::new(0, 2 << 20).saturated());
        assert!(filter.may_contain(&[7; 16]));
    }
}

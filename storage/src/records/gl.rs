//! Records of the general ledger (issue #15): the business date, and the day-end of each
//! closed date ([`DayEnd`] with its steps; every account's day, `engine::gl::AccountDay`,
//! under the date).

use bincode::{Decode, Encode};
use engine::gl::{BusinessDate, GlAccount};
use engine::Currency;

/// The business date and the last closed one (`../shared/FUNDS.md`, "Business date and
/// day-end"): set on the first start from the wall clock in the configured time zone, then
/// moved only by a day-end. One record, under [`super::gl_dates_key`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct GlDates {
    pub business_date: BusinessDate,
    /// `None` before the first day-end.
    pub closed_through: Option<BusinessDate>,
}

/// Where a day-end (or one of its steps) stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum DayEndStatus {
    Pending,
    Running,
    Done,
    Failed,
}

impl DayEndStatus {
    pub fn name(self) -> &'static str {
        match self {
            DayEndStatus::Pending => "pending",
            DayEndStatus::Running => "running",
            DayEndStatus::Done => "done",
            DayEndStatus::Failed => "failed",
        }
    }
}

/// One step of a day-end, with its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct DayEndStep {
    pub name: String,
    pub status: DayEndStatus,
    /// What it found or did (counts, the failed checks), or why it failed.
    pub detail: String,
}

/// One GL account's figures of a closed date, debit-positive (frozen by the day-end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct GlDayRow {
    pub currency: Currency,
    pub gl: GlAccount,
    pub opening: i128,
    pub debit: i128,
    pub credit: i128,
    pub closing: i128,
}

/// The day-end of one business date (`../shared/FUNDS.md`, "Business date and day-end"):
/// written with the switch that closed the date, then before and after each step.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct DayEnd {
    pub date: BusinessDate,
    pub status: DayEndStatus,
    /// The journal's entries of the date: positions `from_seq` to `switch_seq - 1` (the
    /// switch itself at `switch_seq`; 0 until it is durable).
    pub from_seq: u64,
    pub switch_seq: u64,
    pub steps: Vec<DayEndStep>,
    /// Accounts in the snapshot and the date's postings on them, once taken.
    pub accounts: u64,
    pub postings: u64,
    /// The GL's figures of the date, once frozen.
    pub gl: Vec<GlDayRow>,
    /// SHA-256 of the snapshot, chained to the previous day's, once computed.
    pub snapshot_sha256: Option<[u8; 32]>,
    pub started_at_ns: u64,
    pub finished_at_ns: Option<u64>,
    /// Once the date's journal records moved to an archive segment: the segment.
    pub archived: Option<ArchivedSegment>,
    /// Once the final business records made before the date's switch moved to a record
    /// segment (`crate::shelf`): the segment.
    pub shelved: super::Tail<Option<ShelvedRecords>>,
}

/// A date's record segment, as the day-end that shelved it recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ShelvedRecords {
    /// File name in the store's `archive/records/` directory.
    pub file: String,
    /// Records moved (with their index keys) and dedup keys dropped.
    pub records: u64,
    pub transfers: u64,
    pub bytes: u64,
    pub sha256: [u8; 32],
}

/// A date's archive segment, as the day-end that archived it recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ArchivedSegment {
    /// File name in the store's `archive/` directory.
    pub file: String,
    pub records: u64,
    pub bytes: u64,
    pub sha256: [u8; 32],
    /// The journal keys it holds: `first_key..end_key`.
    pub first_key: u64,
    pub end_key: u64,
}

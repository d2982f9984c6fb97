//! Reconciliation (对账, issue #17): the channels' statements as received, the runs that
//! matched them, their mismatches, and what each channel's reconciliation carries from one
//! date to the next (the pool of items no statement has listed yet).

use bincode::{Decode, Encode};
use engine::gl::BusinessDate;

use super::Tail;

/// A channel's statement of one date as it was received: the file itself, compressed
/// (lz4 block; `raw_len` bytes once decompressed) then sealed under the master key (context:
/// its SHA-256), and its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct StatementFile {
    pub channel: u128,
    pub date: BusinessDate,
    /// 0 Alipay trade bill, 1 WeChat Pay bill.
    pub format: u8,
    pub sha256: [u8; 32],
    pub raw_len: u32,
    pub compressed: Vec<u8>,
    pub received_at_ns: u64,
    /// `fetched` by the day-end, or `uploaded by <actor>`.
    pub source: String,
    pub extra: Tail<()>,
}

/// A reconciliation run's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum RunStatus {
    /// The statement is kept; the outcome is not booked yet (a restart finishes it).
    Running,
    /// Matched, its mismatches booked to suspense, the pool carried on.
    Done,
}

/// One channel statement matched against the platform's items.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ReconRun {
    pub id: u128,
    pub channel: u128,
    pub channel_name: String,
    pub date: BusinessDate,
    pub sha256: [u8; 32],
    pub status: RunStatus,
    /// Detail rows on the statement.
    pub rows: u64,
    /// Items matched, and their Σ amount (minor units; refunds count positive).
    pub matched_count: u64,
    pub matched_amount: i64,
    /// Mismatches found (their records: `recon_mismatch_key(id, 1..=n)`).
    pub mismatches: u32,
    /// Booked to suspense: long (GL 2901) and short (GL 1901), minor units ≥ 0.
    pub long: i64,
    pub short: i64,
    /// Items left waiting for a later statement.
    pub pooled: u64,
    pub created_at_ns: u64,
    pub finished_at_ns: Option<u64>,
    pub source: String,
    pub extra: Tail<()>,
}

/// A mismatch's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum MismatchStatus {
    Open,
    /// A money-moving resolution proposed, waiting for a second operator.
    Proposed,
    Resolved,
}

/// How a mismatch was (or is proposed to be) resolved.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Resolution {
    pub action: String,
    pub note: String,
    /// Audit actor names; `system` for the automatic rules.
    pub proposed_by: String,
    pub proposed_at_ns: u64,
    pub approved_by: Option<String>,
    pub resolved_at_ns: Option<u64>,
    /// The suspense cleared by it (signed as the mismatch's), minor units.
    pub amount: i64,
}

/// One difference between a statement and the platform's records.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ReconMismatch {
    pub run: u128,
    /// 1, 2, … within its run.
    pub n: u32,
    pub channel: u128,
    pub date: BusinessDate,
    /// `engine::recon::MismatchType` as its position in FUNDS.md's list: 0
    /// missing_on_platform, 1 missing_at_channel, 2 amount, 3 status, 4 fee, 5 duplicate.
    pub kind: u8,
    /// 0 charge, 1 refund.
    pub row_kind: u8,
    /// Our charge request id at the channel (its `out_trade_no`).
    pub out_trade_no: String,
    /// Our refund request id, refunds only.
    pub out_refund_no: Option<String>,
    pub channel_reference: Option<String>,
    /// The platform's side (None when it has no item) and the channel's (None when no row).
    pub platform_amount: Option<i64>,
    pub platform_fee: Option<i64>,
    /// 0 succeeded, 1 processing, 2 failed.
    pub platform_status: Option<u8>,
    pub channel_amount: Option<i64>,
    pub channel_fee: Option<i64>,
    /// The payment (and refund) of the item, when there is one.
    pub payment: Option<u128>,
    pub refund: Option<u128>,
    /// Its merchant, and what of the merchant's takings of `item_date` it holds back from
    /// settlement until resolved.
    pub merchant: Option<u128>,
    pub item_date: Option<BusinessDate>,
    pub held: i64,
    /// Booked to suspense: + long, − short.
    pub suspense: i64,
    pub status: MismatchStatus,
    pub resolution: Option<Resolution>,
    pub created_at_ns: u64,
    pub extra: Tail<()>,
}

/// An item waiting for a later statement: a card charge or refund the platform booked
/// with the channel (or still has processing), by the business date its wait started.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct PoolItem {
    pub payment: u128,
    /// The refund, for a refund item.
    pub refund: Option<u128>,
    pub date: BusinessDate,
}

/// A channel's reconciliation state between runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct ReconChannel {
    /// The last date reconciled (runs go in date order).
    pub through: Option<BusinessDate>,
    pub pool: Vec<PoolItem>,
    /// Dates whose statement the day-end could not fetch yet, with when it first tried
    /// (retried in date order; the `ReconStatementMissing` alert counts the late ones).
    pub missing: Vec<(BusinessDate, u64)>,
    pub extra: Tail<()>,
}

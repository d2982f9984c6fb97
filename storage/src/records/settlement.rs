//! Merchant settlement (issue #16): each merchant's clearing state and its settlement
//! batches.

use bincode::{Decode, Encode};
use engine::gl::BusinessDate;

use super::Tail;

/// How a merchant is settled: its cycle, the least it is paid out, where to.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SettlementTerms {
    /// T+N: business days from the date a payment is booked to the day-end that makes it
    /// available (0..=`engine::settlement::CYCLE_DAYS_MAX`).
    pub cycle_days: u16,
    /// A batch pays out only from this amount on (minor units); less stays available.
    pub min_payout: i64,
    /// The bank account payouts go to; none: nothing is paid out (it stays available).
    pub payout_account: Option<PayoutAccount>,
}

impl Default for SettlementTerms {
    /// T+1, no minimum, no payout account (`../shared/FUNDS.md`'s defaults).
    fn default() -> SettlementTerms {
        SettlementTerms {
            cycle_days: 1,
            min_payout: 0,
            payout_account: None,
        }
    }
}

/// A merchant's bank account for payouts. The number is sealed under the master key and
/// shown masked.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct PayoutAccount {
    pub bank: String,
    pub name: String,
    /// The account number, sealed (context: the merchant id).
    pub number_sealed: Vec<u8>,
    /// Its last four characters, for the masked form.
    pub last4: String,
}

/// Where a batch stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum BatchStatus {
    /// Nothing sent: below `min_payout` or no payout account (the money stays available),
    /// or the payout is moved to in transit and waits to be sent.
    Pending,
    /// Sent to the payout channel; in transit until it answers.
    Paying,
    /// The payout channel confirmed it (or nothing was left to pay after netting).
    Paid,
    /// The payout channel refused it: the money is back in available.
    Failed,
    /// What the merchant owes exceeded what matured: nothing paid, the rest carried.
    Carried,
}

impl BatchStatus {
    pub fn name(self) -> &'static str {
        match self {
            BatchStatus::Pending => "pending",
            BatchStatus::Paying => "paying",
            BatchStatus::Paid => "paid",
            BatchStatus::Failed => "failed",
            BatchStatus::Carried => "carried",
        }
    }
}

/// One matured business date of a batch: the ledger's net movement of the pending account
/// that date, and the date's payments and refunds as its frozen report has them.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SettlementItem {
    pub date: BusinessDate,
    /// What matured from this date (the ledger's figure).
    pub net: i64,
    /// Succeeded payments of the date (amounts).
    pub gross: i64,
    /// Succeeded refunds of the date (amounts).
    pub refunds: i64,
    /// Fees of the date, net of the fee parts refunds returned.
    pub fees: i64,
    /// Shares split off to other merchants, less shares received as a split receiver (a
    /// receiver's are negative), net of what refunds took back.
    pub splits: i64,
}

/// A merchant's settlement batch of one business date (one per merchant and currency).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SettlementBatch {
    pub merchant: u128,
    /// The day-end that made it.
    pub date: BusinessDate,
    pub currency: u16,
    pub items: Vec<SettlementItem>,
    /// Σ items' net: what moved from pending to available (negative: refunds above takings).
    pub matured: i64,
    /// What the merchant owed before the batch.
    pub owed_before: i64,
    /// Owed offset from available.
    pub offset: i64,
    /// Sent (or to be sent) to the merchant's bank account.
    pub payout: i64,
    /// Left in available (below `min_payout`, or no payout account).
    pub kept: i64,
    /// What the merchant owes after the batch.
    pub owed_after: i64,
    pub status: BatchStatus,
    /// The payout: the channel's name and its reference once answered.
    pub payout_channel: Option<String>,
    pub payout_reference: Option<String>,
    /// Why a payout failed.
    pub failure: Option<String>,
    pub created_at_ns: u64,
    pub updated_at_ns: u64,
    /// The batch step has netted it (before: a draft the maturity step wrote).
    pub netted: bool,
    /// Later fields.
    pub extra: Tail<()>,
}

impl SettlementBatch {
    /// A batch of `merchant` at `date`'s day-end with nothing in it yet: pending, not
    /// netted.
    pub fn new(merchant: u128, date: BusinessDate, currency: u16, now_ns: u64) -> SettlementBatch {
        SettlementBatch {
            merchant,
            date,
            currency,
            items: Vec::new(),
            matured: 0,
            owed_before: 0,
            offset: 0,
            payout: 0,
            kept: 0,
            owed_after: 0,
            status: BatchStatus::Pending,
            payout_channel: None,
            payout_reference: None,
            failure: None,
            created_at_ns: now_ns,
            updated_at_ns: now_ns,
            netted: false,
            extra: Tail(()),
        }
    }
}

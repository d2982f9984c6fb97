//! Payments, refunds, deposits, card tokens and what the ledger does not know about an
//! account.

use bincode::{Decode, Encode};
use engine::AccountId;

use super::Tail;

/// What the ledger does not know about an account.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct AccountMeta {
    pub owner: Option<String>,
}

/// A confirmed top-up.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Deposit {
    pub account: AccountId,
    pub amount: i64,
    pub reference: Option<String>,
    pub created_at_ns: u64,
}

/// A transfer made through the batch endpoint: what the ledger's transfer does not say. Written
/// before notes on journal entries ([`super::BatchTransferNote`]); read by the shelf.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct BatchTransfer {
    /// The client's own id of the transfer (the ledger's id is derived from it).
    pub client_id: String,
    /// The merchant that submitted it; 0 for the operator.
    pub merchant: u128,
    pub reference: Option<String>,
    pub created_at_ns: u64,
}

/// Payment outcome as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum PaymentStatus {
    Succeeded,
    Failed,
    /// Decided later: held for a risk review (nothing has moved yet).
    Processing,
    /// A two-phase payment's amount is held on the payer (issue #19): captured or voided
    /// later, or voided by itself at its expiry.
    Authorized,
    /// A two-phase payment voided: everything held went back to the payer.
    Canceled,
}

/// The risk assessment a payment got before any money moved.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct RiskRecord {
    pub score: u8,
    /// 0 approve, 1 review, 2 reject.
    pub decision: u8,
    /// (reason code, points).
    pub reasons: Vec<(String, u8)>,
    /// The operator's review, when there was one: (approved, at).
    pub reviewed: Option<(bool, u64)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Payment {
    pub id: u128,
    pub merchant: u128,
    pub out_trade_no: String,
    pub amount: i64,
    /// ISO 4217 numeric code.
    pub currency: u16,
    pub fee: i64,
    pub payer: AccountId,
    pub status: PaymentStatus,
    /// Stable code of why it failed (`insufficient_funds`, …).
    pub failure_code: Option<String>,
    pub description: Option<String>,
    pub metadata: Vec<(String, String)>,
    pub refunded: i64,
    pub created_at_ns: u64,
    /// `None` only in payments made before risk scoring existed.
    pub risk: Tail<Option<RiskRecord>>,
    /// A bank-card payment: the card and its way through the channels.
    pub card: Tail<Option<CardPayment>>,
    /// The business date the payment was created on (issue #15): its daily report's date,
    /// and its postings' value date when a channel answers after a day-end. `None` for
    /// payments written before.
    pub business_date: Tail<Option<engine::gl::BusinessDate>>,
    /// Profit sharing (issue #16): each receiver's share of the payment after its fee, in
    /// the order requested. Empty for payments without splits and those written before.
    pub splits: Tail<Vec<Split>>,
    /// The version of the merchant's agreement the payment was taken under (issue #18);
    /// 0 for payments written before.
    pub agreement_version: Tail<u32>,
    /// The coupon it redeemed (issue #18): the payer paid `amount − discount`.
    pub coupon: Tail<Option<super::CouponUse>>,
    /// The credit line it drew on (issue #18); its `payer` is the line's principal account.
    pub credit_line: Tail<Option<u128>>,
    /// A two-phase payment (issue #19): what was held and until when. Its `amount` is the
    /// amount authorized until a capture makes it the amount captured.
    pub authorization: Tail<Option<Authorization>>,
}

/// A two-phase payment's hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Authorization {
    /// What was held (minor units).
    pub authorized: i64,
    /// When it is voided by itself unless captured first.
    pub expires_at_ns: u64,
    /// When it was captured or voided.
    pub closed_at_ns: Option<u64>,
    /// Why it was voided: `voided` (the merchant) or `expired`.
    pub void_reason: Option<String>,
}

/// One receiver's share of a payment. Receivers are merchants (partners, sub-merchants):
/// the share is credited to the receiver's pending-settlement account and settles with it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Split {
    /// The receiving merchant.
    pub merchant: u128,
    /// Its pending-settlement account (the `account_id` the split named).
    pub account: AccountId,
    /// The share, in minor units.
    pub amount: i64,
}

impl Payment {
    /// Σ of its shares.
    pub fn split_total(&self) -> i64 {
        self.splits.0.iter().map(|s| s.amount).sum()
    }

    /// What the merchant keeps: the amount less the fee and the shares.
    pub fn net_amount(&self) -> i64 {
        self.amount - self.merchant_discount() - self.fee - self.split_total()
    }

    /// What a coupon took off the order (0 without one).
    pub fn discount(&self) -> i64 {
        self.coupon.0.as_ref().map_or(0, |c| c.discount)
    }

    /// What the payer paid: the amount less the coupon's discount.
    pub fn payer_amount(&self) -> i64 {
        self.amount - self.discount()
    }

    /// The discount the merchant bears: a merchant-funded coupon's (a platform-funded one is
    /// paid to the merchant from the stock's budget).
    pub fn merchant_discount(&self) -> i64 {
        self.coupon
            .0
            .as_ref()
            .filter(|c| c.budget.is_none())
            .map_or(0, |c| c.discount)
    }

    /// A payment that did not go through charges nothing: no fee, no shares, no coupon.
    pub fn fail(&mut self, code: &str) {
        self.status = PaymentStatus::Failed;
        self.failure_code = Some(code.to_string());
        self.fee = 0;
        self.splits.0.clear();
        self.coupon.0 = None;
    }
}

/// How a card payment went through the channels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct CardPayment {
    pub token: u128,
    pub brand: String,
    pub last4: String,
    /// The channel of the current (or last) attempt, its name and our request id there.
    pub channel: Option<(u128, String)>,
    pub request_id: Option<String>,
    /// The channel's fee on this payment (a cost to the platform).
    pub channel_fee: i64,
    /// (channel name, outcome) of each attempt, in order.
    pub attempts: Vec<(String, String)>,
    /// Channels left out and why, when routing found none.
    pub excluded: Vec<(String, String)>,
}

/// A tokenized card. The number and the holder are sealed by the vault (never stored in
/// clear); the rest is what risk rules and receipts may show.
#[derive(Clone, PartialEq, Eq, Encode, Decode)]
pub struct Card {
    pub token: u128,
    pub merchant: u128,
    /// `vault.seal(number \0 holder, token)`.
    pub sealed: Vec<u8>,
    pub brand: String,
    pub bin: u32,
    pub last4: String,
    pub exp_month: u8,
    pub exp_year: u16,
    /// Keyed fingerprint of the number (first 8 bytes of the vault's HMAC).
    pub fingerprint: u64,
    pub created_at_ns: u64,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Card(tok_{:032x}, {} ****{})",
            self.token, self.brand, self.last4
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Refund {
    pub id: u128,
    pub payment: u128,
    pub out_refund_no: String,
    pub amount: i64,
    /// The part of the refund taken back from the platform's fee income.
    pub fee_part: i64,
    pub status: PaymentStatus,
    pub failure_code: Option<String>,
    pub reason: Option<String>,
    pub created_at_ns: u64,
    /// The business date the refund was created on (issue #15); `None` for refunds written
    /// before.
    pub business_date: Tail<Option<engine::gl::BusinessDate>>,
    /// What it took back from each of the payment's shares, in the payment's split order
    /// (issue #16); empty when the payment had none.
    pub split_parts: Tail<Vec<i64>>,
    /// The part of the channel's fee on the payment the channel returns with this refund
    /// (a card refund, issue #17: its statement lists it), pro rata on cumulative amounts,
    /// half up; 0 for balance refunds and refunds written before.
    pub channel_fee_part: Tail<i64>,
    /// Of a coupon payment's refund (issue #18): the part of `amount` that was the
    /// coupon's (pro rata of the discount), given back to its stock rather than to the payer.
    pub coupon_part: Tail<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{self, Kind};
    use crate::records::encode;

    /// A payment exactly as written before risk scoring existed.
    #[derive(Encode)]
    struct PaymentBeforeRisk {
        id: u128,
        merchant: u128,
        out_trade_no: String,
        amount: i64,
        currency: u16,
        fee: i64,
        payer: AccountId,
        status: PaymentStatus,
        failure_code: Option<String>,
        description: Option<String>,
        metadata: Vec<(String, String)>,
        refunded: i64,
        created_at_ns: u64,
    }

    #[test]
    fn records_written_before_a_field_existed_still_decode() {
        let old = encode(&PaymentBeforeRisk {
            id: 7,
            merchant: 9,
            out_trade_no: "o-1".into(),
            amount: 1234,
            currency: 156,
            fee: 7,
            payer: AccountId(5),
            status: PaymentStatus::Succeeded,
            failure_code: None,
            description: Some("tea".into()),
            metadata: vec![("k".into(), "v".into())],
            refunded: 0,
            created_at_ns: 42,
        });
        let p: Payment = codec::decode(Kind::Aux, &old).unwrap();
        assert_eq!((p.id, p.amount, p.created_at_ns), (7, 1234, 42));
        assert_eq!(p.risk, Tail(None));
        // And the new layout round-trips with the field.
        let mut p = p;
        p.risk = Tail(Some(RiskRecord {
            score: 55,
            decision: 1,
            reasons: vec![("large_amount".into(), 55)],
            reviewed: Some((true, 99)),
        }));
        let back: Payment = codec::decode(Kind::Aux, &encode(&p)).unwrap();
        assert_eq!(back, p);
        // A record cut short is still an error (its checksum fails), never a default.
        let bytes = encode(&p);
        let cut = bytes[..bytes.len() - 3].to_vec();
        assert!(codec::decode::<Payment>(Kind::Aux, &cut).is_err());
    }
}

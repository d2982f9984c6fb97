//! Every record the layers above keep in the store: its key prefix, its key layout and its
//! record layout, in one place. The services build every key through the functions here and
//! no crate builds one by hand, so two features cannot pick the same prefix, and a layout
//! change is seen next to the format fixtures that pin it (`tests/format_fixtures.rs`).
//!
//! Layout:
//! - [`REGISTRY`]: the one table of key prefixes (column family, key layout, record, expiry).
//! - the key builders below it, one per registered prefix.
//! - [`payments`], [`merchants`], [`channels`], [`outbox`]: the record layouts by capability.
//! - [`Tail`]: a field added after a record's first layout.
//!
//! Records are framed and checksummed by [`crate::codec`] (`Kind::Aux`). A key of the `aux`
//! column family starting with [`crate::schema::AUX_EXPIRING_PREFIX`] holds an expiring value
//! (`schema::expiring_value`), dropped by compaction once expired.

pub mod channels;
pub mod coupons;
pub mod credit;
pub mod customers;
pub mod gl;
pub mod merchants;
pub mod notes;
pub mod orders;
pub mod outbox;
pub mod payments;
pub mod positions;
pub mod recon;
mod settlement;
pub mod staff;

use bincode::{Decode, Encode};
use engine::{AccountId, TransferId};

pub use channels::{ChannelRecord, ChannelSettlementTerms};
pub use coupons::{Coupon, CouponStatus, CouponStock, CouponUse, StockStatus};
pub use credit::CreditLine;
pub use customers::Customer;
pub use gl::{
    ArchivedSegment, DayEnd, DayEndStatus, DayEndStep, GlDates, GlDayRow, ShelvedRecords,
};
pub use merchants::{
    methods, Agreement, AgreementVersion, FeeParts, KeyEntry, Merchant, MerchantAuth, Onboarding,
    OnboardingStatus, SigningEntry,
};
pub(crate) use notes::JournalNotesRef;
pub use notes::{BatchTransferNote, JournalNotes, Note};
pub use orders::{Order, OrderStatus};
pub use outbox::{
    AuditEntry, Endpoint, Event, EventStatus, IdemForm, IdemRecord, OtpRecord, SmsRecord,
};
pub use payments::{
    AccountMeta, Authorization, BatchTransfer, Card, CardPayment, Deposit, Payment, PaymentStatus,
    Refund, RiskRecord, Split,
};
pub use positions::{ReserveRecord, ReserveTransfer};
pub use recon::{
    MismatchStatus, PoolItem, ReconChannel, ReconMismatch, ReconRun, Resolution, RunStatus,
    StatementFile,
};
pub use settlement::{
    BatchStatus, PayoutAccount, SettlementBatch, SettlementItem, SettlementTerms,
};
pub use staff::{Staff, StaffRole};

use crate::codec::{self, Kind};
use crate::schema::{AUDIT_ROUTE, CF_AUDIT, CF_AUX};

/// One registered key prefix.
#[derive(Clone, Copy, Debug)]
pub struct Registered {
    pub prefix: &'static [u8],
    /// The column family its keys live in.
    pub cf: &'static str,
    /// What follows the prefix in a key.
    pub key: &'static str,
    /// The record stored under it.
    pub record: &'static str,
    /// Whether its values are expiring (`schema::expiring_value`).
    pub expiring: bool,
}

/// Key prefixes, one constant each: the builders below use these and nothing else.
pub mod prefix {
    pub const ACCOUNT_META: &[u8] = b"am";
    pub const GL_DATES: &[u8] = b"gd";
    pub const DAY_END: &[u8] = b"de";
    pub const ACCOUNT_DAY: &[u8] = b"ds";
    pub const DAILY_REPORT: &[u8] = b"rp";
    pub const DEPOSIT: &[u8] = b"dp";
    /// Batch transfers written before session 20, keyed by transfer id (read by the shelf).
    pub const BATCH_TRANSFER: &[u8] = b"bt";
    /// Batch transfers written in session 20, keyed by creation time (read by the shelf).
    pub const BATCH_TRANSFER_AT: &[u8] = b"bq";
    pub const JOURNAL_NOTES: &[u8] = b"jn";
    pub const MERCHANT: &[u8] = b"mc";
    pub const CUSTOMER: &[u8] = b"cu";
    pub const CUSTOMER_BY_ACCOUNT: &[u8] = b"ca";
    pub const CUSTOMER_BY_OWNER: &[u8] = b"co";
    pub const CUSTOMER_BY_PHONE: &[u8] = b"cp";
    pub const CUSTOMER_CARD: &[u8] = b"cw";
    pub const MIGRATION: &[u8] = b"mg";
    pub const STAFF: &[u8] = b"sf";
    pub const STAFF_BY_PHONE: &[u8] = b"sp";
    pub const KYC_COUNTERS: &[u8] = b"ky";
    pub const COUPON_STOCK: &[u8] = b"ks";
    pub const COUPON: &[u8] = b"kc";
    pub const COUPON_HOLDER: &[u8] = b"kh";
    pub const COUPON_COUNT: &[u8] = b"kn";
    pub const CREDIT_LINE: &[u8] = b"ln";
    pub const CREDIT_LINE_BY_ACCOUNT: &[u8] = b"la";
    pub const ORDER: &[u8] = b"od";
    pub const ORDER_BY_OUT_TRADE_NO: &[u8] = b"oo";
    pub const ORDER_EXPIRY: &[u8] = b"xox";
    pub const AUTHORIZATION_EXPIRY: &[u8] = b"xau";
    pub const MERCHANT_KEY_INDEX: &[u8] = b"mk";
    pub const AGREEMENT: &[u8] = b"mv";
    pub const MERCHANT_BY_ACCOUNT: &[u8] = b"ma";
    pub const RESERVE: &[u8] = b"rv";
    pub const RESERVE_TRANSFER: &[u8] = b"rx";
    pub const CHANNEL_CLEARING: &[u8] = b"cc";
    pub const POSITIONS: &[u8] = b"pz";
    pub const RECON_STATEMENT: &[u8] = b"rs";
    pub const RECON_BY_SHA: &[u8] = b"rh";
    pub const RECON_RUN: &[u8] = b"ru";
    pub const RECON_MISMATCH: &[u8] = b"rm";
    pub const RECON_CHANNEL: &[u8] = b"rq";
    pub const RECON_HOLD: &[u8] = b"rk";
    pub const CLEARING: &[u8] = b"sc";
    pub const SETTLEMENT_BATCH: &[u8] = b"sb";
    pub const SETTLEMENT_BY_MERCHANT: &[u8] = b"sn";
    pub const PAYMENT: &[u8] = b"py";
    pub const OUT_TRADE_NO: &[u8] = b"ot";
    pub const CARD: &[u8] = b"cd";
    pub const REFUND: &[u8] = b"rf";
    pub const OUT_REFUND_NO: &[u8] = b"or";
    pub const CHANNEL: &[u8] = b"cn";
    pub const CHANNEL_NAME: &[u8] = b"cN";
    pub const WEBHOOK_ENDPOINT: &[u8] = b"wh";
    pub const WEBHOOK_EVENT: &[u8] = b"ev";
    pub const WEBHOOK_PENDING: &[u8] = b"xwq";
    pub const OPEN_ATTEMPT: &[u8] = b"xoa";
    pub const OPEN_REFUND: &[u8] = b"xro";
    pub const OPEN_PAYOUT: &[u8] = b"xop";
    pub const RECON_OPEN: &[u8] = b"xrm";
    pub const IDEMPOTENCY: &[u8] = b"xi";
    pub const OTP: &[u8] = b"xot";
    pub const SMS: &[u8] = b"xsm";
    pub const BENCH_FLOOR: &[u8] = b"xbf";
    /// Routed to the `audit` column family by the writer (`schema::AUDIT_ROUTE`).
    pub const AUDIT: &[u8] = crate::schema::AUDIT_ROUTE;
}

/// Every prefix in use. A test checks that no prefix starts another, that expiring ones
/// (and only they) start with [`AUX_EXPIRING_PREFIX`], and that each builder uses its own.
pub const REGISTRY: &[Registered] = &[
    Registered {
        prefix: prefix::ACCOUNT_META,
        cf: CF_AUX,
        key: "account id (u128 BE)",
        record: "AccountMeta",
        expiring: false,
    },
    Registered {
        prefix: prefix::GL_DATES,
        cf: CF_AUX,
        key: "nothing (one record)",
        record: "GlDates",
        expiring: false,
    },
    Registered {
        prefix: prefix::DAY_END,
        cf: CF_AUX,
        key: "business date (i32 BE, days since 1970-01-01)",
        record: "DayEnd",
        expiring: false,
    },
    Registered {
        prefix: prefix::ACCOUNT_DAY,
        cf: CF_AUX,
        key: "business date (i32 BE), account id (u128 BE)",
        record: "engine::gl::AccountDay (a day-end's snapshot)",
        expiring: false,
    },
    Registered {
        prefix: prefix::DAILY_REPORT,
        cf: CF_AUX,
        key: "business date (i32 BE), merchant id (u128 BE; 0: the platform)",
        record: "a closed date's frozen daily report (its JSON, bytes)",
        expiring: false,
    },
    Registered {
        prefix: prefix::DEPOSIT,
        cf: CF_AUX,
        key: "transfer id (u128 BE)",
        record: "Deposit",
        expiring: false,
    },
    Registered {
        prefix: prefix::BATCH_TRANSFER,
        cf: CF_AUX,
        key: "transfer id (u128 BE); written before session 20, no longer",
        record: "BatchTransfer",
        expiring: false,
    },
    Registered {
        prefix: prefix::BATCH_TRANSFER_AT,
        cf: CF_AUX,
        key: "created at (ns since the epoch, u64 BE), transfer id (u128 BE); written in session 20, no longer",
        record: "BatchTransfer",
        expiring: false,
    },
    Registered {
        prefix: prefix::JOURNAL_NOTES,
        cf: CF_AUX,
        key: "sequence number of its first note's journal entry (u64 BE)",
        record: "JournalNotes (the notes of one group write on one business date: batch transfers' client ids and references)",
        expiring: false,
    },
    Registered {
        prefix: prefix::CLEARING,
        cf: CF_AUX,
        key: "merchant id (u128 BE)",
        record: "engine::settlement::Clearing (the merchant's maturity queue, owed, paid out)",
        expiring: false,
    },
    Registered {
        prefix: prefix::SETTLEMENT_BATCH,
        cf: CF_AUX,
        key: "business date (i32 BE), merchant id (u128 BE)",
        record: "SettlementBatch",
        expiring: false,
    },
    Registered {
        prefix: prefix::SETTLEMENT_BY_MERCHANT,
        cf: CF_AUX,
        key: "merchant id (u128 BE), business date (i32 BE)",
        record: "[] (an index of the merchant's batches)",
        expiring: false,
    },
    Registered {
        prefix: prefix::MERCHANT,
        cf: CF_AUX,
        key: "merchant id (u128 BE)",
        record: "Merchant",
        expiring: false,
    },
    Registered {
        prefix: prefix::CUSTOMER,
        cf: CF_AUX,
        key: "customer id (u128 BE, time-ordered)",
        record: "Customer",
        expiring: false,
    },
    Registered {
        prefix: prefix::CUSTOMER_BY_ACCOUNT,
        cf: CF_AUX,
        key: "a customer's balance account id (u128 BE)",
        record: "customer id (u128)",
        expiring: false,
    },
    Registered {
        prefix: prefix::CUSTOMER_BY_OWNER,
        cf: CF_AUX,
        key: "owning merchant id (u128 BE; 0: the operator), customer id (u128 BE)",
        record: "[] (an index of a merchant's customers)",
        expiring: false,
    },
    Registered {
        prefix: prefix::CUSTOMER_BY_PHONE,
        cf: CF_AUX,
        key: "keyed MAC of the phone (16 bytes), owner (u128 BE; 0: the operator), customer id (u128 BE)",
        record: "[] (finds a customer by phone at the checkout's sign-in)",
        expiring: false,
    },
    Registered {
        prefix: prefix::CUSTOMER_CARD,
        cf: CF_AUX,
        key: "customer id (u128 BE), card token (u128 BE)",
        record: "[] (the cards a customer saved at the checkout)",
        expiring: false,
    },
    Registered {
        prefix: prefix::STAFF,
        cf: CF_AUX,
        key: "merchant id (u128 BE), staff id (u128 BE)",
        record: "Staff",
        expiring: false,
    },
    Registered {
        prefix: prefix::STAFF_BY_PHONE,
        cf: CF_AUX,
        key: "merchant id (u128 BE), keyed MAC of the phone (16 bytes)",
        record: "staff id (u128)",
        expiring: false,
    },
    Registered {
        prefix: prefix::MIGRATION,
        cf: CF_AUX,
        key: "the migration's name (ASCII)",
        record: "u64 (when it finished, ns since the epoch)",
        expiring: false,
    },
    Registered {
        prefix: prefix::KYC_COUNTERS,
        cf: CF_AUX,
        key: "customer id (u128 BE)",
        record: "engine::kyc::Counters (paid in the business day and year)",
        expiring: false,
    },
    Registered {
        prefix: prefix::AGREEMENT,
        cf: CF_AUX,
        key: "merchant id (u128 BE), version (u32 BE)",
        record: "AgreementVersion",
        expiring: false,
    },
    Registered {
        prefix: prefix::COUPON_STOCK,
        cf: CF_AUX,
        key: "stock id (u128 BE, time-ordered)",
        record: "CouponStock",
        expiring: false,
    },
    Registered {
        prefix: prefix::COUPON,
        cf: CF_AUX,
        key: "coupon id (u128 BE, time-ordered)",
        record: "Coupon",
        expiring: false,
    },
    Registered {
        prefix: prefix::COUPON_HOLDER,
        cf: CF_AUX,
        key: "account id (u128 BE), coupon id (u128 BE)",
        record: "[] (an index of an account's coupons)",
        expiring: false,
    },
    Registered {
        prefix: prefix::COUPON_COUNT,
        cf: CF_AUX,
        key: "stock id (u128 BE), account id (u128 BE)",
        record: "coupons of the stock issued to the account (u32)",
        expiring: false,
    },
    Registered {
        prefix: prefix::CREDIT_LINE,
        cf: CF_AUX,
        key: "credit line id (u128 BE, time-ordered)",
        record: "CreditLine",
        expiring: false,
    },
    Registered {
        prefix: prefix::CREDIT_LINE_BY_ACCOUNT,
        cf: CF_AUX,
        key: "the customer's balance account id (u128 BE)",
        record: "credit line id (u128)",
        expiring: false,
    },
    Registered {
        prefix: prefix::ORDER,
        cf: CF_AUX,
        key: "order id (u128 BE, time-ordered)",
        record: "Order",
        expiring: false,
    },
    Registered {
        prefix: prefix::ORDER_BY_OUT_TRADE_NO,
        cf: CF_AUX,
        key: "merchant id (u128 BE), out_trade_no (UTF-8)",
        record: "order id (u128)",
        expiring: false,
    },
    Registered {
        prefix: prefix::AUTHORIZATION_EXPIRY,
        cf: CF_AUX,
        key: "expiry (u64 BE, ns since the epoch), payment id (u128 BE)",
        record: "[1] (an authorization's void timer; [0] once captured or voided)",
        expiring: true,
    },
    Registered {
        prefix: prefix::ORDER_EXPIRY,
        cf: CF_AUX,
        key: "expiry (u64 BE, ns since the epoch), order id (u128 BE)",
        record: "[1] (an open order's expiry timer; [0] once paid or closed)",
        expiring: true,
    },
    Registered {
        prefix: prefix::MERCHANT_KEY_INDEX,
        cf: CF_AUX,
        key: "SHA-256 of a secret key (32 bytes)",
        record: "merchant id (u128)",
        expiring: false,
    },
    Registered {
        prefix: prefix::MERCHANT_BY_ACCOUNT,
        cf: CF_AUX,
        key: "a merchant's pending-settlement account id (u128 BE)",
        record: "merchant id (u128)",
        expiring: false,
    },
    Registered {
        prefix: prefix::RESERVE,
        cf: CF_AUX,
        key: "reserve account number (u32 BE)",
        record: "ReserveRecord",
        expiring: false,
    },
    Registered {
        prefix: prefix::RESERVE_TRANSFER,
        cf: CF_AUX,
        key: "reserve transfer id (u128 BE, time-ordered)",
        record: "ReserveTransfer",
        expiring: false,
    },
    Registered {
        prefix: prefix::CHANNEL_CLEARING,
        cf: CF_AUX,
        key: "channel id (u128 BE)",
        record: "engine::positions::ChannelClearing",
        expiring: false,
    },
    Registered {
        prefix: prefix::POSITIONS,
        cf: CF_AUX,
        key: "business date (i32 BE)",
        record: "frozen positions (JSON bytes)",
        expiring: false,
    },
    Registered {
        prefix: prefix::RECON_STATEMENT,
        cf: CF_AUX,
        key: "channel id (u128 BE), business date (i32 BE)",
        record: "StatementFile",
        expiring: false,
    },
    Registered {
        prefix: prefix::RECON_BY_SHA,
        cf: CF_AUX,
        key: "statement SHA-256 (32 bytes)",
        record: "the run id it was matched by (u128)",
        expiring: false,
    },
    Registered {
        prefix: prefix::RECON_RUN,
        cf: CF_AUX,
        key: "run id (u128 BE, time-ordered)",
        record: "ReconRun",
        expiring: false,
    },
    Registered {
        prefix: prefix::RECON_MISMATCH,
        cf: CF_AUX,
        key: "run id (u128 BE), n (u32 BE)",
        record: "ReconMismatch",
        expiring: false,
    },
    Registered {
        prefix: prefix::RECON_CHANNEL,
        cf: CF_AUX,
        key: "channel id (u128 BE)",
        record: "ReconChannel",
        expiring: false,
    },
    Registered {
        prefix: prefix::RECON_HOLD,
        cf: CF_AUX,
        key: "merchant id (u128 BE), business date (i32 BE)",
        record: "minor units held back from settlement by open mismatches (i64)",
        expiring: false,
    },
    Registered {
        prefix: prefix::PAYMENT,
        cf: CF_AUX,
        key: "payment id (u128 BE, time-ordered)",
        record: "Payment",
        expiring: false,
    },
    Registered {
        prefix: prefix::OUT_TRADE_NO,
        cf: CF_AUX,
        key: "merchant id (u128 BE), out_trade_no (UTF-8)",
        record: "payment id (u128)",
        expiring: false,
    },
    Registered {
        prefix: prefix::CARD,
        cf: CF_AUX,
        key: "card token (u128 BE)",
        record: "Card",
        expiring: false,
    },
    Registered {
        prefix: prefix::REFUND,
        cf: CF_AUX,
        key: "refund id (u128 BE, time-ordered)",
        record: "Refund",
        expiring: false,
    },
    Registered {
        prefix: prefix::OUT_REFUND_NO,
        cf: CF_AUX,
        key: "payment id (u128 BE), out_refund_no (UTF-8)",
        record: "refund id (u128)",
        expiring: false,
    },
    Registered {
        prefix: prefix::CHANNEL,
        cf: CF_AUX,
        key: "channel id (u128 BE)",
        record: "ChannelRecord",
        expiring: false,
    },
    Registered {
        prefix: prefix::CHANNEL_NAME,
        cf: CF_AUX,
        key: "channel name (UTF-8)",
        record: "channel id (u128)",
        expiring: false,
    },
    Registered {
        prefix: prefix::WEBHOOK_ENDPOINT,
        cf: CF_AUX,
        key: "merchant id (u128 BE)",
        record: "Endpoint",
        expiring: false,
    },
    Registered {
        prefix: prefix::WEBHOOK_EVENT,
        cf: CF_AUX,
        key: "merchant id (u128 BE), event id (u128 BE)",
        record: "Event",
        expiring: false,
    },
    Registered {
        prefix: prefix::WEBHOOK_PENDING,
        cf: CF_AUX,
        key: "merchant id (u128 BE), event id (u128 BE)",
        record: "empty (a pending delivery marker)",
        expiring: true,
    },
    Registered {
        prefix: prefix::OPEN_ATTEMPT,
        cf: CF_AUX,
        key: "payment id (u128 BE)",
        record: "[1] (a channel call that may be unanswered)",
        expiring: true,
    },
    Registered {
        prefix: prefix::OPEN_REFUND,
        cf: CF_AUX,
        key: "refund id (u128 BE)",
        record: "[1] (a card refund that may be unanswered)",
        expiring: true,
    },
    Registered {
        prefix: prefix::OPEN_PAYOUT,
        cf: CF_AUX,
        key: "business date (i32 BE), merchant id (u128 BE)",
        record: "[1] (a settlement payout to send or resolve; [0] once resolved)",
        expiring: true,
    },
    Registered {
        prefix: prefix::RECON_OPEN,
        cf: CF_AUX,
        key: "run id (u128 BE), n (u32 BE)",
        record: "an open reconciliation mismatch's creation time (u64 BE; [0] once resolved)",
        expiring: true,
    },
    Registered {
        prefix: prefix::IDEMPOTENCY,
        cf: CF_AUX,
        key: "caller scope, Idempotency-Key (as sent)",
        record: "IdemRecord",
        expiring: true,
    },
    Registered {
        prefix: prefix::BENCH_FLOOR,
        cf: CF_AUX,
        key: "record number (u8), then request id (u128 BE) or the client's Idempotency-Key",
        record: "a request's body as sent (`bench_floor` only)",
        expiring: true,
    },
    Registered {
        prefix: prefix::OTP,
        cf: CF_AUX,
        key: "one-time code id (u128 BE)",
        record: "OtpRecord",
        expiring: true,
    },
    Registered {
        prefix: prefix::SMS,
        cf: CF_AUX,
        key: "message id (u128 BE)",
        record: "SmsRecord",
        expiring: true,
    },
    Registered {
        prefix: prefix::AUDIT,
        cf: CF_AUDIT,
        key: "entry id (u128 BE, time-ordered); stored in `audit` without the prefix",
        record: "AuditEntry",
        expiring: false,
    },
];

fn key(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let len = prefix.len() + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut k = Vec::with_capacity(len);
    k.extend_from_slice(prefix);
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

pub fn gl_dates_key() -> Vec<u8> {
    key(prefix::GL_DATES, &[])
}

pub fn day_end_key(date: engine::gl::BusinessDate) -> Vec<u8> {
    key(prefix::DAY_END, &[&date.0.to_be_bytes()])
}

/// The keys of every account's day of `date`'s snapshot start with this.
pub fn account_day_prefix(date: engine::gl::BusinessDate) -> Vec<u8> {
    key(prefix::ACCOUNT_DAY, &[&date.0.to_be_bytes()])
}

pub fn daily_report_key(date: engine::gl::BusinessDate, merchant: u128) -> Vec<u8> {
    key(
        prefix::DAILY_REPORT,
        &[&date.0.to_be_bytes(), &merchant.to_be_bytes()],
    )
}

pub fn account_day_key(date: engine::gl::BusinessDate, account: AccountId) -> Vec<u8> {
    key(
        prefix::ACCOUNT_DAY,
        &[&date.0.to_be_bytes(), &account.to_be_bytes()],
    )
}

pub fn account_meta_key(id: AccountId) -> Vec<u8> {
    key(prefix::ACCOUNT_META, &[&id.to_be_bytes()])
}

pub fn deposit_key(id: TransferId) -> Vec<u8> {
    key(prefix::DEPOSIT, &[&id.to_be_bytes()])
}

/// A batch transfer's record before session 20 (the shelf still reads them).
pub fn batch_transfer_key(id: TransferId) -> Vec<u8> {
    key(prefix::BATCH_TRANSFER, &[&id.to_be_bytes()])
}

/// A batch transfer's record as written in session 20, keyed by creation time (the shelf
/// still reads them; transfers now carry a [`Note`] instead).
pub fn batch_transfer_at_key(created_at_ns: u64, id: TransferId) -> Vec<u8> {
    key(
        prefix::BATCH_TRANSFER_AT,
        &[&created_at_ns.to_be_bytes(), &id.to_be_bytes()],
    )
}

/// The [`JournalNotes`] record whose first note is on the journal entry `first_seq`: the
/// keys ascend as the journal's do, so one date's records are one key range.
pub fn journal_notes_key(first_seq: u64) -> Vec<u8> {
    key(prefix::JOURNAL_NOTES, &[&first_seq.to_be_bytes()])
}

pub fn clearing_key(merchant: u128) -> Vec<u8> {
    key(prefix::CLEARING, &[&merchant.to_be_bytes()])
}

pub fn settlement_batch_key(date: engine::gl::BusinessDate, merchant: u128) -> Vec<u8> {
    key(
        prefix::SETTLEMENT_BATCH,
        &[&date.0.to_be_bytes(), &merchant.to_be_bytes()],
    )
}

/// The keys of every batch of `date` start with this.
pub fn settlement_batch_prefix(date: engine::gl::BusinessDate) -> Vec<u8> {
    key(prefix::SETTLEMENT_BATCH, &[&date.0.to_be_bytes()])
}

pub fn settlement_by_merchant_key(merchant: u128, date: engine::gl::BusinessDate) -> Vec<u8> {
    key(
        prefix::SETTLEMENT_BY_MERCHANT,
        &[&merchant.to_be_bytes(), &date.0.to_be_bytes()],
    )
}

pub fn settlement_by_merchant_prefix(merchant: u128) -> Vec<u8> {
    key(prefix::SETTLEMENT_BY_MERCHANT, &[&merchant.to_be_bytes()])
}

pub fn merchant_key(id: u128) -> Vec<u8> {
    key(prefix::MERCHANT, &[&id.to_be_bytes()])
}

pub fn agreement_key(merchant: u128, version: u32) -> Vec<u8> {
    key(
        prefix::AGREEMENT,
        &[&merchant.to_be_bytes(), &version.to_be_bytes()],
    )
}

/// Every version of `merchant`'s agreement, oldest first.
pub fn agreement_prefix(merchant: u128) -> Vec<u8> {
    key(prefix::AGREEMENT, &[&merchant.to_be_bytes()])
}

/// A secret key's SHA-256 → its merchant.
pub fn merchant_key_index(key_sha256: &[u8; 32]) -> Vec<u8> {
    key(prefix::MERCHANT_KEY_INDEX, &[key_sha256])
}

/// A merchant's pending-settlement account → the merchant (split receivers are found by
/// the `account_id` a split names).
pub fn merchant_by_account_key(account: AccountId) -> Vec<u8> {
    key(prefix::MERCHANT_BY_ACCOUNT, &[&account.0.to_be_bytes()])
}

pub fn customer_key(id: u128) -> Vec<u8> {
    key(prefix::CUSTOMER, &[&id.to_be_bytes()])
}

/// A customer's balance account → the customer (the payment path's KYC lookup).
pub fn customer_by_account_key(account: AccountId) -> Vec<u8> {
    key(prefix::CUSTOMER_BY_ACCOUNT, &[&account.0.to_be_bytes()])
}

pub fn customer_by_owner_key(owner: u128, customer: u128) -> Vec<u8> {
    key(
        prefix::CUSTOMER_BY_OWNER,
        &[&owner.to_be_bytes(), &customer.to_be_bytes()],
    )
}

/// Every index entry of `owner`'s customers, in creation order.
pub fn customer_by_owner_prefix(owner: u128) -> Vec<u8> {
    key(prefix::CUSTOMER_BY_OWNER, &[&owner.to_be_bytes()])
}

/// Customers with phone `phone_mac` (a keyed MAC, so no phone number is in a key) owned by
/// `owner`.
pub fn customer_by_phone_key(phone_mac: &[u8; 16], owner: u128, customer: u128) -> Vec<u8> {
    key(
        prefix::CUSTOMER_BY_PHONE,
        &[phone_mac, &owner.to_be_bytes(), &customer.to_be_bytes()],
    )
}

/// Every index entry of `owner`'s customers with phone `phone_mac`.
pub fn customer_by_phone_prefix(phone_mac: &[u8; 16], owner: u128) -> Vec<u8> {
    key(
        prefix::CUSTOMER_BY_PHONE,
        &[phone_mac, &owner.to_be_bytes()],
    )
}

/// A card customer `customer` saved (at the checkout).
pub fn customer_card_key(customer: u128, token: u128) -> Vec<u8> {
    key(
        prefix::CUSTOMER_CARD,
        &[&customer.to_be_bytes(), &token.to_be_bytes()],
    )
}

pub fn customer_card_prefix(customer: u128) -> Vec<u8> {
    key(prefix::CUSTOMER_CARD, &[&customer.to_be_bytes()])
}

/// Staff member `staff` of `merchant`.
pub fn staff_key(merchant: u128, staff: u128) -> Vec<u8> {
    key(
        prefix::STAFF,
        &[&merchant.to_be_bytes(), &staff.to_be_bytes()],
    )
}

/// Every staff member of `merchant`, in creation order.
pub fn staff_prefix(merchant: u128) -> Vec<u8> {
    key(prefix::STAFF, &[&merchant.to_be_bytes()])
}

/// `merchant`'s staff member with phone `phone_mac` (one per phone and merchant).
pub fn staff_by_phone_key(merchant: u128, phone_mac: &[u8; 16]) -> Vec<u8> {
    key(
        prefix::STAFF_BY_PHONE,
        &[&merchant.to_be_bytes(), phone_mac],
    )
}

/// That migration `name` is done.
pub fn migration_key(name: &str) -> Vec<u8> {
    key(prefix::MIGRATION, &[name.as_bytes()])
}

pub fn coupon_stock_key(id: u128) -> Vec<u8> {
    key(prefix::COUPON_STOCK, &[&id.to_be_bytes()])
}

pub fn coupon_key(id: u128) -> Vec<u8> {
    key(prefix::COUPON, &[&id.to_be_bytes()])
}

pub fn coupon_holder_key(account: AccountId, coupon: u128) -> Vec<u8> {
    key(
        prefix::COUPON_HOLDER,
        &[&account.0.to_be_bytes(), &coupon.to_be_bytes()],
    )
}

/// Every index entry of `account`'s coupons, oldest first.
pub fn coupon_holder_prefix(account: AccountId) -> Vec<u8> {
    key(prefix::COUPON_HOLDER, &[&account.0.to_be_bytes()])
}

pub fn coupon_count_key(stock: u128, account: AccountId) -> Vec<u8> {
    key(
        prefix::COUPON_COUNT,
        &[&stock.to_be_bytes(), &account.0.to_be_bytes()],
    )
}

pub fn order_key(id: u128) -> Vec<u8> {
    key(prefix::ORDER, &[&id.to_be_bytes()])
}

pub fn order_by_out_trade_no_key(merchant: u128, out_trade_no: &str) -> Vec<u8> {
    key(
        prefix::ORDER_BY_OUT_TRADE_NO,
        &[&merchant.to_be_bytes(), out_trade_no.as_bytes()],
    )
}

/// An open order's timer, in expiry order (the expiry pass reads the due ones only).
pub fn order_expiry_key(expires_at_ns: u64, order: u128) -> Vec<u8> {
    key(
        prefix::ORDER_EXPIRY,
        &[&expires_at_ns.to_be_bytes(), &order.to_be_bytes()],
    )
}

/// The void timer of a two-phase payment's authorization.
pub fn authorization_expiry_key(expires_at_ns: u64, payment: u128) -> Vec<u8> {
    key(
        prefix::AUTHORIZATION_EXPIRY,
        &[&expires_at_ns.to_be_bytes(), &payment.to_be_bytes()],
    )
}

pub fn credit_line_key(id: u128) -> Vec<u8> {
    key(prefix::CREDIT_LINE, &[&id.to_be_bytes()])
}

pub fn credit_line_by_account_key(account: AccountId) -> Vec<u8> {
    key(prefix::CREDIT_LINE_BY_ACCOUNT, &[&account.0.to_be_bytes()])
}

pub fn kyc_counters_key(customer: u128) -> Vec<u8> {
    key(prefix::KYC_COUNTERS, &[&customer.to_be_bytes()])
}

pub fn reserve_key(number: u32) -> Vec<u8> {
    key(prefix::RESERVE, &[&number.to_be_bytes()])
}

pub fn reserve_transfer_key(id: u128) -> Vec<u8> {
    key(prefix::RESERVE_TRANSFER, &[&id.to_be_bytes()])
}

/// A channel's settlement-to-reserve state (`engine::positions::ChannelClearing`).
pub fn channel_clearing_key(channel: u128) -> Vec<u8> {
    key(prefix::CHANNEL_CLEARING, &[&channel.to_be_bytes()])
}

/// A closed date's positions, frozen by its day-end.
pub fn positions_key(date: engine::gl::BusinessDate) -> Vec<u8> {
    key(prefix::POSITIONS, &[&date.0.to_be_bytes()])
}

/// Channel `channel`'s statement of `date`.
pub fn recon_statement_key(channel: u128, date: engine::gl::BusinessDate) -> Vec<u8> {
    key(
        prefix::RECON_STATEMENT,
        &[&channel.to_be_bytes(), &date.0.to_be_bytes()],
    )
}

/// A statement file's hash → the run that matched it.
pub fn recon_by_sha_key(sha256: &[u8; 32]) -> Vec<u8> {
    key(prefix::RECON_BY_SHA, &[sha256])
}

pub fn recon_run_key(id: u128) -> Vec<u8> {
    key(prefix::RECON_RUN, &[&id.to_be_bytes()])
}

/// Mismatch `n` (1, 2, …) of run `run`.
pub fn recon_mismatch_key(run: u128, n: u32) -> Vec<u8> {
    key(
        prefix::RECON_MISMATCH,
        &[&run.to_be_bytes(), &n.to_be_bytes()],
    )
}

/// The mismatches of run `run`.
pub fn recon_mismatch_prefix(run: u128) -> Vec<u8> {
    key(prefix::RECON_MISMATCH, &[&run.to_be_bytes()])
}

/// The marker of open mismatch `n` of run `run`.
pub fn recon_open_key(run: u128, n: u32) -> Vec<u8> {
    key(prefix::RECON_OPEN, &[&run.to_be_bytes(), &n.to_be_bytes()])
}

/// What open mismatches hold back of merchant `merchant`'s takings, every date.
pub fn recon_hold_prefix(merchant: u128) -> Vec<u8> {
    key(prefix::RECON_HOLD, &[&merchant.to_be_bytes()])
}

pub fn recon_channel_key(channel: u128) -> Vec<u8> {
    key(prefix::RECON_CHANNEL, &[&channel.to_be_bytes()])
}

/// What open mismatches hold back of merchant `merchant`'s takings of `date`.
pub fn recon_hold_key(merchant: u128, date: engine::gl::BusinessDate) -> Vec<u8> {
    key(
        prefix::RECON_HOLD,
        &[&merchant.to_be_bytes(), &date.0.to_be_bytes()],
    )
}

pub fn payment_key(id: u128) -> Vec<u8> {
    key(prefix::PAYMENT, &[&id.to_be_bytes()])
}

/// out_trade_no → payment id, unique per merchant.
pub fn out_trade_no_key(merchant: u128, out_trade_no: &str) -> Vec<u8> {
    key(
        prefix::OUT_TRADE_NO,
        &[&merchant.to_be_bytes(), out_trade_no.as_bytes()],
    )
}

pub fn card_key(token: u128) -> Vec<u8> {
    key(prefix::CARD, &[&token.to_be_bytes()])
}

pub fn refund_key(id: u128) -> Vec<u8> {
    key(prefix::REFUND, &[&id.to_be_bytes()])
}

/// out_refund_no → refund id, unique per payment. With `""`: the prefix of a payment's
/// refunds.
pub fn out_refund_no_key(payment: u128, out_refund_no: &str) -> Vec<u8> {
    key(
        prefix::OUT_REFUND_NO,
        &[&payment.to_be_bytes(), out_refund_no.as_bytes()],
    )
}

pub fn channel_key(id: u128) -> Vec<u8> {
    key(prefix::CHANNEL, &[&id.to_be_bytes()])
}

/// A channel's name → its id (names are unique).
pub fn channel_name_key(name: &str) -> Vec<u8> {
    key(prefix::CHANNEL_NAME, &[name.as_bytes()])
}

pub fn webhook_endpoint_key(merchant: u128) -> Vec<u8> {
    key(prefix::WEBHOOK_ENDPOINT, &[&merchant.to_be_bytes()])
}

/// The prefix of one merchant's events, in id (time) order.
pub fn webhook_events_prefix(merchant: u128) -> Vec<u8> {
    key(prefix::WEBHOOK_EVENT, &[&merchant.to_be_bytes()])
}

pub fn webhook_event_key(merchant: u128, id: u128) -> Vec<u8> {
    key(
        prefix::WEBHOOK_EVENT,
        &[&merchant.to_be_bytes(), &id.to_be_bytes()],
    )
}

/// The prefix of one merchant's pending delivery markers.
pub fn webhook_pending_prefix(merchant: u128) -> Vec<u8> {
    key(prefix::WEBHOOK_PENDING, &[&merchant.to_be_bytes()])
}

pub fn webhook_pending_key(merchant: u128, id: u128) -> Vec<u8> {
    key(
        prefix::WEBHOOK_PENDING,
        &[&merchant.to_be_bytes(), &id.to_be_bytes()],
    )
}

pub fn open_attempt_key(payment: u128) -> Vec<u8> {
    key(prefix::OPEN_ATTEMPT, &[&payment.to_be_bytes()])
}

pub fn open_refund_key(refund: u128) -> Vec<u8> {
    key(prefix::OPEN_REFUND, &[&refund.to_be_bytes()])
}

pub fn open_payout_key(date: engine::gl::BusinessDate, merchant: u128) -> Vec<u8> {
    key(
        prefix::OPEN_PAYOUT,
        &[&date.0.to_be_bytes(), &merchant.to_be_bytes()],
    )
}

/// An idempotency key as sent, scoped to its caller.
pub fn idempotency_key(scope: &[u8], idempotency_key: &[u8]) -> Vec<u8> {
    key(prefix::IDEMPOTENCY, &[scope, idempotency_key])
}

/// Record `n` of a request at the durable floor (`services::floor`), keyed by `suffix`: the
/// request's time-ordered id for the first, as a payment's own record is; for the others the
/// client's text (its `Idempotency-Key`), as a payment's index and idempotency keys are, or
/// the id's random bits.
pub fn bench_floor_key(n: u8, suffix: &[u8]) -> Vec<u8> {
    key(prefix::BENCH_FLOOR, &[&[n], suffix])
}

pub fn otp_key(id: u128) -> Vec<u8> {
    key(prefix::OTP, &[&id.to_be_bytes()])
}

pub fn sms_key(id: u128) -> Vec<u8> {
    key(prefix::SMS, &[&id.to_be_bytes()])
}

/// An audit entry: written in a commit unit under this key, stored in the `audit` column
/// family under the id alone.
pub fn audit_key(id: u128) -> Vec<u8> {
    key(AUDIT_ROUTE, &[&id.to_be_bytes()])
}

/// The u128 right after `prefix` in `key` (ids in keys of the form prefix + id).
pub fn id_after(key: &[u8], prefix: &[u8]) -> Option<u128> {
    let bytes = key.strip_prefix(prefix)?.get(..16)?;
    Some(u128::from_be_bytes(bytes.try_into().ok()?))
}

/// A field added to a record after its first layout: records written before it end where
/// it would start, and decode it as the default. Always the last field(s) of a record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode)]
pub struct Tail<T>(pub T);

impl<Ctx, T: Decode<Ctx> + Default> Decode<Ctx> for Tail<T> {
    fn decode<D: bincode::de::Decoder<Context = Ctx>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        match T::decode(decoder) {
            Ok(v) => Ok(Tail(v)),
            Err(bincode::error::DecodeError::UnexpectedEnd { .. }) => Ok(Tail(T::default())),
            Err(e) => Err(e),
        }
    }
}

impl<'de, Ctx, T: Decode<Ctx> + Default> bincode::BorrowDecode<'de, Ctx> for Tail<T> {
    fn borrow_decode<D: bincode::de::BorrowDecoder<'de, Context = Ctx>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        <Self as Decode<Ctx>>::decode(decoder)
    }
}

/// A record as stored under its key.
pub fn encode<T: Encode>(value: &T) -> Vec<u8> {
    codec::encode(Kind::Aux, value)
}

/// A stored value decoded; a value that does not decode is a corrupt record.
pub fn decode<T: Decode<()>>(key: &[u8], bytes: &[u8]) -> crate::Result<T> {
    codec::decode(Kind::Aux, bytes).map_err(|source| corrupt(key, source))
}

fn corrupt(key: &[u8], source: codec::CodecError) -> crate::StoreError {
    crate::StoreError::Corrupt {
        cf: CF_AUX,
        key: key.iter().map(|b| format!("{b:02x}")).collect(),
        source,
    }
}

/// A record under an expiring key: compaction drops it after `expires_at_ns`.
pub fn expiring<T: Encode>(key: Vec<u8>, expires_at_ns: u64, value: &T) -> (Vec<u8>, Vec<u8>) {
    (
        key,
        crate::schema::expiring_value(expires_at_ns, &encode(value)),
    )
}

/// Reads and decodes a record.
#[cfg(feature = "rocksdb")]
pub fn read<T: Decode<()>>(store: &crate::Store, key: &[u8]) -> crate::Result<Option<T>> {
    match store.aux(key)? {
        None => Ok(None),
        Some(bytes) => decode(key, &bytes).map(Some),
    }
}

/// Reads an expiring record; `None` when absent or expired at `now_ns` (compaction may not
/// have dropped it yet).
#[cfg(feature = "rocksdb")]
pub fn read_expiring<T: Decode<()>>(
    store: &crate::Store,
    key: &[u8],
    now_ns: u64,
) -> crate::Result<Option<T>> {
    let Some(value) = store.aux(key)? else {
        return Ok(None);
    };
    let Some((expires_at_ns, bytes)) = crate::schema::split_expiring(&value) else {
        return Err(corrupt(key, codec::CodecError::Truncated(value.len())));
    };
    if expires_at_ns < now_ns {
        return Ok(None);
    }
    decode(key, bytes).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::AUX_EXPIRING_PREFIX;

    #[test]
    fn no_prefix_starts_another() {
        for (i, a) in REGISTRY.iter().enumerate() {
            for b in &REGISTRY[i + 1..] {
                assert!(
                    !a.prefix.starts_with(b.prefix) && !b.prefix.starts_with(a.prefix),
                    "{} ({:?}) and {} ({:?}) collide",
                    a.record,
                    a.prefix,
                    b.record,
                    b.prefix
                );
            }
        }
    }

    #[test]
    fn expiring_records_and_only_they_start_with_the_expiring_byte() {
        for r in REGISTRY.iter().filter(|r| r.cf == CF_AUX) {
            assert_eq!(
                r.prefix.first() == Some(&AUX_EXPIRING_PREFIX),
                r.expiring,
                "{}",
                r.record
            );
        }
    }

    #[test]
    fn every_builder_uses_a_registered_prefix_and_every_prefix_has_a_builder() {
        let keys = [
            (account_meta_key(AccountId(1)), prefix::ACCOUNT_META),
            (gl_dates_key(), prefix::GL_DATES),
            (day_end_key(engine::gl::BusinessDate(1)), prefix::DAY_END),
            (
                daily_report_key(engine::gl::BusinessDate(1), 2),
                prefix::DAILY_REPORT,
            ),
            (
                account_day_key(engine::gl::BusinessDate(1), AccountId(2)),
                prefix::ACCOUNT_DAY,
            ),
            (deposit_key(TransferId(1)), prefix::DEPOSIT),
            (batch_transfer_key(TransferId(1)), prefix::BATCH_TRANSFER),
            (
                batch_transfer_at_key(1, TransferId(2)),
                prefix::BATCH_TRANSFER_AT,
            ),
            (journal_notes_key(1), prefix::JOURNAL_NOTES),
            (merchant_key(1), prefix::MERCHANT),
            (
                customer_by_phone_key(&[0; 16], 1, 2),
                prefix::CUSTOMER_BY_PHONE,
            ),
            (customer_card_key(1, 2), prefix::CUSTOMER_CARD),
            (migration_key("x"), prefix::MIGRATION),
            (staff_key(1, 2), prefix::STAFF),
            (staff_prefix(1), prefix::STAFF),
            (staff_by_phone_key(1, &[0; 16]), prefix::STAFF_BY_PHONE),
            (merchant_key_index(&[0; 32]), prefix::MERCHANT_KEY_INDEX),
            (agreement_key(1, 2), prefix::AGREEMENT),
            (agreement_prefix(1), prefix::AGREEMENT),
            (
                merchant_by_account_key(AccountId(1)),
                prefix::MERCHANT_BY_ACCOUNT,
            ),
            (customer_key(1), prefix::CUSTOMER),
            (
                customer_by_account_key(AccountId(1)),
                prefix::CUSTOMER_BY_ACCOUNT,
            ),
            (customer_by_owner_key(1, 2), prefix::CUSTOMER_BY_OWNER),
            (customer_by_owner_prefix(1), prefix::CUSTOMER_BY_OWNER),
            (kyc_counters_key(1), prefix::KYC_COUNTERS),
            (order_key(1), prefix::ORDER),
            (
                order_by_out_trade_no_key(1, "o"),
                prefix::ORDER_BY_OUT_TRADE_NO,
            ),
            (order_expiry_key(1, 2), prefix::ORDER_EXPIRY),
            (authorization_expiry_key(1, 2), prefix::AUTHORIZATION_EXPIRY),
            (credit_line_key(1), prefix::CREDIT_LINE),
            (
                credit_line_by_account_key(AccountId(1)),
                prefix::CREDIT_LINE_BY_ACCOUNT,
            ),
            (coupon_stock_key(1), prefix::COUPON_STOCK),
            (coupon_key(1), prefix::COUPON),
            (coupon_holder_key(AccountId(1), 2), prefix::COUPON_HOLDER),
            (coupon_holder_prefix(AccountId(1)), prefix::COUPON_HOLDER),
            (coupon_count_key(1, AccountId(2)), prefix::COUPON_COUNT),
            (reserve_key(1), prefix::RESERVE),
            (reserve_transfer_key(1), prefix::RESERVE_TRANSFER),
            (channel_clearing_key(1), prefix::CHANNEL_CLEARING),
            (
                positions_key(engine::gl::BusinessDate(1)),
                prefix::POSITIONS,
            ),
            (
                recon_statement_key(1, engine::gl::BusinessDate(2)),
                prefix::RECON_STATEMENT,
            ),
            (recon_by_sha_key(&[0; 32]), prefix::RECON_BY_SHA),
            (recon_run_key(1), prefix::RECON_RUN),
            (recon_mismatch_key(1, 2), prefix::RECON_MISMATCH),
            (recon_mismatch_prefix(1), prefix::RECON_MISMATCH),
            (recon_channel_key(1), prefix::RECON_CHANNEL),
            (recon_open_key(1, 2), prefix::RECON_OPEN),
            (recon_hold_prefix(1), prefix::RECON_HOLD),
            (
                recon_hold_key(1, engine::gl::BusinessDate(2)),
                prefix::RECON_HOLD,
            ),
            (clearing_key(1), prefix::CLEARING),
            (
                settlement_batch_key(engine::gl::BusinessDate(1), 2),
                prefix::SETTLEMENT_BATCH,
            ),
            (
                settlement_batch_prefix(engine::gl::BusinessDate(1)),
                prefix::SETTLEMENT_BATCH,
            ),
            (
                settlement_by_merchant_key(1, engine::gl::BusinessDate(2)),
                prefix::SETTLEMENT_BY_MERCHANT,
            ),
            (
                settlement_by_merchant_prefix(1),
                prefix::SETTLEMENT_BY_MERCHANT,
            ),
            (payment_key(1), prefix::PAYMENT),
            (out_trade_no_key(1, "o"), prefix::OUT_TRADE_NO),
            (card_key(1), prefix::CARD),
            (refund_key(1), prefix::REFUND),
            (out_refund_no_key(1, "r"), prefix::OUT_REFUND_NO),
            (channel_key(1), prefix::CHANNEL),
            (channel_name_key("a"), prefix::CHANNEL_NAME),
            (webhook_endpoint_key(1), prefix::WEBHOOK_ENDPOINT),
            (webhook_event_key(1, 2), prefix::WEBHOOK_EVENT),
            (webhook_events_prefix(1), prefix::WEBHOOK_EVENT),
            (webhook_pending_key(1, 2), prefix::WEBHOOK_PENDING),
            (webhook_pending_prefix(1), prefix::WEBHOOK_PENDING),
            (open_attempt_key(1), prefix::OPEN_ATTEMPT),
            (open_refund_key(1), prefix::OPEN_REFUND),
            (
                open_payout_key(engine::gl::BusinessDate(1), 2),
                prefix::OPEN_PAYOUT,
            ),
            (idempotency_key(b"m", b"k"), prefix::IDEMPOTENCY),
            (bench_floor_key(1, b"k"), prefix::BENCH_FLOOR),
            (otp_key(1), prefix::OTP),
            (sms_key(1), prefix::SMS),
            (audit_key(1), prefix::AUDIT),
        ];
        for (k, p) in &keys {
            assert!(k.starts_with(p));
            // The longest registered prefix of the key is its own.
            let owner = REGISTRY
                .iter()
                .filter(|r| k.starts_with(r.prefix))
                .max_by_key(|r| r.prefix.len())
                .expect("registered");
            assert_eq!(owner.prefix, *p);
        }
        for r in REGISTRY {
            assert!(
                keys.iter().any(|(_, p)| *p == r.prefix),
                "{} has no builder",
                r.record
            );
        }
        assert_eq!(id_after(&payment_key(77), prefix::PAYMENT), Some(77));
        assert_eq!(
            id_after(&webhook_pending_key(3, 4), prefix::WEBHOOK_PENDING),
            Some(3)
        );
    }
}

//! Merchants and their credentials.

use bincode::{Decode, Encode};
use engine::AccountId;

use super::Tail;

/// A merchant. Its secret key is never stored: only its SHA-256, under which
/// [`super::merchant_key_index`] finds the merchant.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Merchant {
    pub id: u128,
    pub name: String,
    pub fee_rate_ppm: u32,
    pub key_sha256: [u8; 32],
    /// The merchant's available balance (GL 2102): matured takings, paid out by settlement
    /// batches (and by the merchant's own batch transfers).
    pub account: AccountId,
    /// ISO numeric code of that account's currency: the currency it accepts payments in.
    pub currency: u16,
    pub created_at_ns: u64,
    /// Business category (risk rules are per category); `None` reads as "general".
    pub category: Tail<Option<String>>,
    /// Credentials beyond the first key: rotated keys, signing secrets, whether requests
    /// must be signed (issue #6). Empty for merchants written before.
    pub auth: Tail<MerchantAuth>,
    /// The merchant's pending-settlement account (GL 2101, T+N maturity; issue #15): where
    /// its payments land and its refunds are taken from, and so its v1 `account_id`. It may
    /// go below zero (refunds above what it holds are netted by settlement). `None` only
    /// for merchants written before, until the first start of a build with the chart
    /// creates it.
    pub pending_account: Tail<Option<AccountId>>,
    /// The fee's parts beyond the rate (issue #16), in minor units; none for merchants
    /// written before.
    pub fee_parts: Tail<FeeParts>,
    /// How it is settled (issue #16); T+1 without a payout account for merchants written
    /// before.
    pub settlement: Tail<super::SettlementTerms>,
    /// Onboarding through review (issue #18); `None`: active from its creation (and
    /// merchants written before).
    pub onboarding: Tail<Option<Onboarding>>,
    /// The agreement in force (issue #18): its version (each one kept under
    /// `super::agreement_key`) and the payment methods it enables. Version 0: a merchant
    /// written before, whose first version is its terms as they stand.
    pub agreement: Tail<Agreement>,
}

/// Payment methods an agreement enables, as bits.
pub mod methods {
    pub const BALANCE: u8 = 1;
    pub const BANK_CARD: u8 = 2;
    pub const CREDIT: u8 = 4;
    /// What a merchant without an explicit list takes: balance and card payments.
    pub const DEFAULT: u8 = BALANCE | BANK_CARD;
    /// Each method's bit and its name in the API.
    pub const NAMES: [(u8, &str); 3] = [
        (BALANCE, "balance"),
        (BANK_CARD, "bank_card"),
        (CREDIT, "credit"),
    ];
}

/// A merchant's agreement in force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Agreement {
    pub version: u32,
    /// [`methods`] bits; 0 (merchants written before): [`methods::DEFAULT`].
    pub methods: u8,
    pub effective_at_ns: u64,
}

impl Agreement {
    /// The methods it enables.
    pub fn methods(&self) -> u8 {
        if self.methods == 0 {
            methods::DEFAULT
        } else {
            self.methods
        }
    }

    /// Its version as payments record it: a merchant written before is on its first.
    pub fn version(&self) -> u32 {
        self.version.max(1)
    }
}

/// One version of a merchant's agreement, as it was signed: fees, settlement cycle and
/// payment methods, from when, and who changed it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct AgreementVersion {
    pub version: u32,
    pub fee_rate_ppm: u32,
    pub fee_parts: FeeParts,
    pub settlement_cycle_days: u16,
    pub methods: u8,
    pub effective_at_ns: u64,
    /// The actor that made it (the operator who created or changed the merchant).
    pub by: String,
    pub extra: Tail<()>,
}

/// Where a merchant's review stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum OnboardingStatus {
    PendingReview,
    Active,
    Rejected,
}

/// A merchant onboarded through review: the business as declared, and the decision.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Onboarding {
    pub status: OnboardingStatus,
    pub business_name: String,
    /// The business licence's unified social credit code.
    pub licence_number: String,
    pub legal_representative: String,
    /// The operator who decided, when, and why (a rejection's reason).
    pub decided_by: Option<String>,
    pub decided_at_ns: Option<u64>,
    pub reason: Option<String>,
}

impl Merchant {
    /// Whether it may take payments: active from creation, or activated after review.
    pub fn is_active(&self) -> bool {
        self.onboarding
            .0
            .as_ref()
            .is_none_or(|o| o.status == OnboardingStatus::Active)
    }
}

/// A fee's fixed part per payment and its optional minimum and maximum, in minor units
/// (`engine::money::FeeTerms` with the merchant's rate).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct FeeParts {
    pub fixed: i64,
    pub min: Option<i64>,
    pub max: Option<i64>,
}

impl Merchant {
    /// The account its payments land in and refunds are taken from (pending settlement,
    /// GL 2101): the v1 `account_id`.
    pub fn pending(&self) -> AccountId {
        self.pending_account.0.unwrap_or(self.account)
    }

    /// The merchant's fee terms.
    pub fn fee_terms(&self) -> engine::money::FeeTerms {
        let parts = self.fee_parts.0;
        engine::money::FeeTerms {
            rate_ppm: self.fee_rate_ppm,
            fixed: parts.fixed,
            min: parts.min,
            max: parts.max,
        }
    }
}

/// A merchant's credentials as they changed after sign-up.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct MerchantAuth {
    /// Every request must carry a valid `Rongpay-Signature`.
    pub require_signature: bool,
    /// Secret keys (SHA-256 only), oldest first, once the first has been rotated; empty:
    /// `Merchant::key_sha256` is the only key and never expires.
    pub keys: Vec<KeyEntry>,
    /// Signing secrets, sealed under the master key, oldest first.
    pub signing: Vec<SigningEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct KeyEntry {
    pub sha256: [u8; 32],
    pub created_at_ns: u64,
    /// When it stops working (set when a newer key replaces it, or when it is revoked).
    pub expires_at_ns: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SigningEntry {
    /// 1, 2, … per merchant.
    pub number: u32,
    /// AES-256-GCM under the master key (context: merchant id and number).
    pub sealed: Vec<u8>,
    pub created_at_ns: u64,
    pub expires_at_ns: Option<u64>,
}

impl MerchantAuth {
    /// Whether a key (by hash) works at `now_ns`; `first` is `Merchant::key_sha256`.
    pub fn key_works(&self, first: &[u8; 32], sha256: &[u8; 32], now_ns: u64) -> bool {
        if self.keys.is_empty() {
            return first == sha256;
        }
        self.keys
            .iter()
            .any(|k| &k.sha256 == sha256 && k.expires_at_ns.is_none_or(|at| at > now_ns))
    }
}

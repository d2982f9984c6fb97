//! API objects persisted in the store's `aux` column family, written in the same durable
//! write as the effects they describe. Framed and checksummed by `storage::codec`.

use bincode::{Decode, Encode};
use engine::{AccountId, TransferId};
use storage::codec::{self, Kind};
use storage::Store;

use crate::error::ApiError;

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

pub fn account_meta_key(id: AccountId) -> Vec<u8> {
    [b"am".as_slice(), &id.to_be_bytes()].concat()
}

pub fn deposit_key(id: TransferId) -> Vec<u8> {
    [b"dp".as_slice(), &id.to_be_bytes()].concat()
}

/// The id in `text` if it is `prefix` followed by exactly 32 lowercase hex digits (how
/// every id is shown: `pay_…`, `re_…`, `mch_…`); any other spelling is an unknown id.
pub fn parse_id(text: &str, prefix: &str) -> Option<u128> {
    let hex = text.strip_prefix(prefix)?;
    if hex.len() != 32 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u128::from_str_radix(hex, 16).ok()
}

/// A stored time (ns since the epoch) as answers show it: RFC 3339, milliseconds, UTC.
pub fn time_text(ns: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns))
        .to_string()
}

pub fn encode<T: Encode>(value: &T) -> Vec<u8> {
    codec::encode(Kind::Aux, value)
}

/// Reads and decodes a record; a record that does not decode is a storage fault (503), not a
/// client error.
pub fn read<T: Decode<()>>(store: &Store, key: &[u8]) -> Result<Option<T>, ApiError> {
    match store.aux(key)? {
        None => Ok(None),
        Some(bytes) => codec::decode(Kind::Aux, &bytes)
            .map(Some)
            .map_err(|e| ApiError::unavailable(format!("a stored record does not decode: {e}"))),
    }
}

/// A record under an expiring key (`schema::AUX_EXPIRING_PREFIX`): compaction drops it
/// after `expires_at_ns`.
pub fn expiring<T: Encode>(key: Vec<u8>, expires_at_ns: u64, value: &T) -> (Vec<u8>, Vec<u8>) {
    (
        key,
        storage::schema::expiring_value(expires_at_ns, &encode(value)),
    )
}

/// Reads an expiring record; `None` when absent or expired (compaction may not have dropped
/// it yet).
pub fn read_expiring<T: Decode<()>>(store: &Store, key: &[u8]) -> Result<Option<T>, ApiError> {
    let Some(value) = store.aux(key)? else {
        return Ok(None);
    };
    let (expires_at_ns, bytes) = storage::schema::split_expiring(&value)
        .ok_or_else(|| ApiError::unavailable("a stored expiring record is malformed"))?;
    if expires_at_ns < crate::state::now_ns() {
        return Ok(None);
    }
    codec::decode(Kind::Aux, bytes)
        .map(Some)
        .map_err(|e| ApiError::unavailable(format!("a stored record does not decode: {e}")))
}

/// A merchant. Its secret key is never stored: only its SHA-256, under which
/// [`merchant_key_index`] finds the merchant.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Merchant {
    pub id: u128,
    pub name: String,
    pub fee_rate_ppm: u32,
    pub key_sha256: [u8; 32],
    /// The merchant's own balance account, into which its payments settle net of fees.
    pub account: AccountId,
    /// ISO numeric code of that account's currency: the currency it accepts payments in.
    pub currency: u16,
    pub created_at_ns: u64,
    /// Business category (risk rules are per category); `None` reads as "general".
    pub category: Tail<Option<String>>,
    /// Credentials beyond the first key: rotated keys, signing secrets, whether requests
    /// must be signed (issue #6). Empty for merchants written before.
    pub auth: Tail<MerchantAuth>,
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

/// Payment outcome as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum PaymentStatus {
    Succeeded,
    Failed,
    /// Decided later: held for a risk review (nothing has moved yet).
    Processing,
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

pub fn merchant_key(id: u128) -> Vec<u8> {
    [b"mc".as_slice(), &id.to_be_bytes()].concat()
}

pub fn merchant_key_index(key_sha256: &[u8; 32]) -> Vec<u8> {
    [b"mk".as_slice(), key_sha256].concat()
}

pub fn payment_key(id: u128) -> Vec<u8> {
    [b"py".as_slice(), &id.to_be_bytes()].concat()
}

/// out_trade_no → payment id, unique per merchant.
pub fn out_trade_no_key(merchant: u128, out_trade_no: &str) -> Vec<u8> {
    [
        b"ot".as_slice(),
        &merchant.to_be_bytes(),
        out_trade_no.as_bytes(),
    ]
    .concat()
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

pub fn card_key(token: u128) -> Vec<u8> {
    [b"cd".as_slice(), &token.to_be_bytes()].concat()
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
}

pub fn refund_key(id: u128) -> Vec<u8> {
    [b"rf".as_slice(), &id.to_be_bytes()].concat()
}

/// out_refund_no → refund id, unique per payment.
pub fn out_refund_no_key(payment: u128, out_refund_no: &str) -> Vec<u8> {
    [
        b"or".as_slice(),
        &payment.to_be_bytes(),
        out_refund_no.as_bytes(),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;

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

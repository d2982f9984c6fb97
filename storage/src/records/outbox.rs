//! What the platform keeps about its conversations with the outside: webhook endpoints and
//! events, SMS messages and one-time codes, idempotency records, the audit log.

use bincode::{Decode, Encode};

/// A merchant's webhook endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Endpoint {
    pub url: String,
    /// The signing secret, sealed under the master key (context: merchant id).
    pub sealed_secret: Vec<u8>,
    pub created_at_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum EventStatus {
    Pending,
    Delivered,
    /// Every try failed; `POST /v1/events/{id}/resend` queues it again.
    Failed,
}

/// A webhook event as stored.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Event {
    pub id: u128,
    pub merchant: u128,
    /// `payment.succeeded`, `refund.failed`, …
    pub kind: String,
    /// The id of the payment (or refund) it is about.
    pub object_id: String,
    /// The JSON body delivered.
    pub payload: Vec<u8>,
    pub created_at_ns: u64,
    pub status: EventStatus,
    /// Tries made so far.
    pub attempts: u32,
    /// Not before this time (ns) is the next try made.
    pub next_at_ns: u64,
    pub last_error: Option<String>,
    pub delivered_at_ns: Option<u64>,
}

/// An SMS message as stored.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SmsRecord {
    pub id: u128,
    pub to: String,
    pub template: String,
    /// queued (on its way to the gateway), sent (the gateway took it), delivered, failed.
    pub status: String,
    pub gateway_id: Option<String>,
    pub error: Option<String>,
    pub created_at_ns: u64,
    pub receipt_at_ns: Option<u64>,
}

/// A one-time code: only its HMAC, never the code.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct OtpRecord {
    pub id: u128,
    pub merchant: u128,
    pub phone: String,
    pub purpose: String,
    /// HMAC of the id and the code: the code itself is never stored.
    pub code_mac: [u8; 32],
    pub expires_at_ns: u64,
    pub attempts: u32,
    pub attempts_max: u32,
    pub verified_at_ns: Option<u64>,
    pub sms: u128,
}

/// The first answer to an idempotent request.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct IdemRecord {
    /// SHA-256 of the method, path and body.
    pub fingerprint: [u8; 32],
    pub status: u16,
    /// The answer, in the form [`IdemRecord::form`] says.
    pub body: Vec<u8>,
    /// What `body` holds. `Answer` in records written before the field.
    pub form: super::Tail<IdemForm>,
}

/// What an idempotency record's `body` holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub enum IdemForm {
    /// The answer's bytes, as sent.
    #[default]
    Answer,
    /// The payment the answer showed, as its record is stored ([`super::Payment`], with its
    /// codec header): the answer is that payment's view, rendered again on a replay. A
    /// fifth of the answer's bytes, in the same unit as the payment it shows.
    Payment,
}

/// One operator action as stored.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct AuditEntry {
    pub id: u128,
    pub at_ns: u64,
    /// `admin:<first 8 hex digits of the token's SHA-256>` (tells tokens apart across a
    /// rotation without storing them).
    pub actor: String,
    pub source_ip: Option<String>,
    /// `account.create`, `merchant.rotate_secret_key`, `payment.review`, …
    pub action: String,
    /// The id of what it acted on.
    pub target: String,
    /// The object as JSON before and after (never a secret: views only).
    pub before: Option<String>,
    pub after: Option<String>,
}

//! The channel protocol: what payd's channel client sends a channel and what it answers,
//! over HTTP with JSON bodies (`channel-sim` plays the channel side).
//!
//! - `POST /charges` [`ChargeRequest`] → `200` [`ChargeAnswer`] (`succeeded` or `declined`),
//!   `503` technical error (nothing charged), or no answer (timeout: decided, learn it by
//!   status query or notification).
//! - `GET /charges/{request_id}` → the recorded [`ChargeAnswer`], `404` when unknown.
//! - Card authorizations (issue #19): a [`ChargeRequest`] with `capture: false` is answered
//!   `authorized` (held on the card, nothing charged yet) or `declined`. `POST
//!   /charges/{request_id}/capture` [`CaptureRequest`] → `200` the charge `succeeded` for the
//!   amount captured (at most the authorized one; a repeat with the same amount answers the
//!   same), `409` when it was voided or captured for another amount; `POST
//!   /charges/{request_id}/void` → `200` the charge `voided` (a repeat answers the same),
//!   `409` when it was captured. Both `404` for an unknown request.
//! - `POST /refunds` [`RefundRequest`] → `200` [`RefundAnswer`], `503`, or no answer.
//! - `GET /refunds/{request_id}` → the recorded [`RefundAnswer`], `404` when unknown.
//! - The channel POSTs a [`Notification`] to the charge's `notify_url`, signed with
//!   `Channel-Signature` ([`crate::signature::sign`] under the channel's notify secret).
//! - `POST /payouts` [`PayoutRequest`] → `200` [`PayoutAnswer`] (`succeeded`: paid to the
//!   bank account, or `declined`), `503` (nothing paid), or no answer (timeout: decided);
//!   `GET /payouts/{request_id}` → the recorded answer, `404` when unknown; a
//!   [`PayoutNotification`] to the payout's `notify_url`, signed the same way (issue #16).

use serde::{Deserialize, Serialize};

/// A charge request from payd.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChargeRequest {
    /// Ours, unique per charge attempt: a repeat returns the recorded result.
    pub request_id: String,
    pub amount_minor: i64,
    pub currency: String,
    /// What is charged (a card token, an account at the channel).
    pub instrument: String,
    /// Where to POST the asynchronous result.
    pub notify_url: Option<String>,
    /// `false`: authorize only (issue #19): hold the amount on the card until a capture or
    /// a void. Absent: charge now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<bool>,
}

/// `POST /charges/{request_id}/capture`: take `amount_minor` of an authorization.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaptureRequest {
    pub amount_minor: i64,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChargeStatus {
    Succeeded,
    Declined,
    /// Held on the card, not charged yet (`capture: false`).
    Authorized,
    /// An authorization released: nothing was charged.
    Voided,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChargeAnswer {
    pub request_id: String,
    pub status: ChargeStatus,
    /// The channel's own reference for the charge.
    pub channel_ref: String,
    #[serde(deserialize_with = "crate::json_int::int")]
    pub amount_minor: i64,
    pub currency: String,
    pub decline_reason: Option<String>,
    #[serde(deserialize_with = "crate::json_int::int")]
    pub refunded_minor: i64,
    /// What the channel keeps of the charge as its fee (issue #16), when it says: booked as
    /// the channel's fee instead of the rate payd was configured with for it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json_int::opt_int"
    )]
    pub fee_minor: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefundRequest {
    pub request_id: String,
    /// The `request_id` of the charge being refunded.
    pub charge_request_id: String,
    pub amount_minor: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefundAnswer {
    pub request_id: String,
    pub charge_request_id: String,
    pub status: ChargeStatus,
    pub amount_minor: i64,
    pub decline_reason: Option<String>,
}

/// The asynchronous result the channel POSTs to `notify_url`, with header
/// `Channel-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body" with the secret>`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notification {
    pub channel: String,
    pub charge: ChargeAnswer,
}

/// A payout request from payd (issue #16): money from the platform's reserve to a
/// merchant's bank account. Idempotent on `request_id` at the channel.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PayoutRequest {
    /// Ours: the settlement batch's id. A repeat returns the recorded result.
    pub request_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub bank: String,
    pub account_number: String,
    pub account_name: String,
    /// Where to POST the asynchronous result.
    pub notify_url: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutAnswer {
    pub request_id: String,
    /// `succeeded`: paid to the account; `declined`: refused (nothing paid).
    pub status: ChargeStatus,
    pub channel_ref: String,
    #[serde(deserialize_with = "crate::json_int::int")]
    pub amount_minor: i64,
    pub currency: String,
    pub decline_reason: Option<String>,
}

/// A payout's asynchronous result, POSTed to its `notify_url` and signed like a charge's.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutNotification {
    pub channel: String,
    pub payout: PayoutAnswer,
}

//! The SMS gateway protocol (a carrier aggregator's HTTP API; `sms-sim` plays it):
//!
//! - `POST {gateway}/v1/messages` with `Authorization: Bearer <key>` and [`Outgoing`] →
//!   `202` [`Accepted`]; `4xx` refused, `5xx` unavailable.
//! - The gateway POSTs a [`Receipt`] to the message's `callback_url`, signed
//!   `Sms-Signature` ([`crate::signature::sign`] under the same key).

use serde::{Deserialize, Serialize};

/// One message as the provider receives it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outgoing {
    pub to: String,
    pub text: String,
    /// Our id (`sms_…`): the receipt names it.
    pub reference: String,
    /// Where the gateway posts the delivery receipt.
    pub callback_url: String,
}

/// The gateway took the message.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Accepted {
    pub id: String,
    pub status: String,
}

/// A delivery receipt from the gateway.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Receipt {
    /// The gateway's message id.
    pub id: String,
    /// Ours (`sms_…`).
    pub reference: String,
    /// delivered or failed.
    pub status: String,
    pub error: Option<String>,
}

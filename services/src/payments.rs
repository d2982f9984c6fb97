//! Payments: their public representation (what answers and webhook events show) and the
//! records every change of a payment's state writes.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use engine::money::format_minor;
use engine::Currency;
use serde::Serialize;

use crate::merchants::merchant_id_text;
use crate::platform::Platform;
use crate::records::{self, Payment, PaymentStatus};

/// The risk assessment every payment gets before any money moves.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskView {
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100))]
    score: u8,
    /// approve, review or reject.
    decision: &'static str,
    /// Codes of the rules that added points (`velocity_payer_count`, `large_amount`, …).
    reasons: Vec<String>,
    /// (extension) The operator's decision on a reviewed payment: approve or reject.
    #[serde(skip_serializing_if = "Option::is_none")]
    review: Option<&'static str>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MethodView {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    card_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    brand: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last4: Option<String>,
}

/// (extension) How a card payment went through the channels.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoutingView {
    /// The channel of the current or last attempt.
    channel: Option<String>,
    /// Each attempt: the channel and what happened (charged, declined, channel_error,
    /// connection_refused, no_answer, status_sync).
    attempts: Vec<AttemptView>,
    /// Channels left out and why (disabled, breaker_open, daily_limit_reached, …).
    excluded: Vec<AttemptView>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttemptView {
    channel: String,
    outcome: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentView {
    id: String,
    merchant_id: String,
    out_trade_no: String,
    amount: String,
    currency: &'static str,
    status: &'static str,
    failure_code: Option<String>,
    fee: String,
    net_amount: String,
    payment_method: MethodView,
    description: Option<String>,
    metadata: BTreeMap<String, String>,
    refunded_amount: String,
    created_at: String,
    risk: Option<RiskView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    routing: Option<RoutingView>,
}

/// The webhook event type of a payment in `status`.
pub fn payment_event(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::Succeeded => "payment.succeeded",
        PaymentStatus::Failed => "payment.failed",
        PaymentStatus::Processing => "payment.processing",
    }
}

/// The webhook event records of payment `p` as it now stands (`body`: its JSON view).
pub fn events_for(state: &Platform, p: &Payment, body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    crate::webhooks::event_records(
        state,
        p.merchant,
        payment_event(p.status),
        &payment_id_text(p.id),
        body,
    )
}

/// A payment's record with the webhook event of its state: what every change of a
/// payment's state writes (in one unit).
pub fn payment_records(state: &Platform, p: &Payment) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut records = vec![(records::payment_key(p.id), records::encode(p))];
    if state.webhook_endpoints.contains_key(&p.merchant) {
        let body = serde_json::to_vec(&view(p)).expect("a payment view serializes");
        records.extend(events_for(state, p, &body));
    }
    records
}

pub fn payment_id_text(id: u128) -> String {
    format!("pay_{id:032x}")
}

pub fn parse_payment_id(text: &str) -> Option<u128> {
    records::parse_id(text, "pay_")
}

pub fn view(p: &Payment) -> PaymentView {
    let currency =
        Currency::from_numeric(p.currency).expect("stored payments carry an active currency");
    let created = UNIX_EPOCH + Duration::from_nanos(p.created_at_ns);
    PaymentView {
        id: payment_id_text(p.id),
        merchant_id: merchant_id_text(p.merchant),
        out_trade_no: p.out_trade_no.clone(),
        amount: format_minor(p.amount, currency),
        currency: currency.code(),
        status: match p.status {
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Processing => "processing",
        },
        failure_code: p.failure_code.clone(),
        fee: format_minor(p.fee, currency),
        net_amount: format_minor(p.amount - p.fee, currency),
        payment_method: match p.card.0.as_ref() {
            None => MethodView {
                kind: "balance",
                account_id: Some(p.payer.to_string()),
                card_token: None,
                brand: None,
                last4: None,
            },
            Some(c) => MethodView {
                kind: "bank_card",
                account_id: None,
                card_token: Some(crate::cards::card_token_text(c.token)),
                brand: Some(c.brand.clone()),
                last4: Some(c.last4.clone()),
            },
        },
        description: p.description.clone(),
        metadata: p.metadata.iter().cloned().collect(),
        refunded_amount: format_minor(p.refunded, currency),
        created_at: humantime::format_rfc3339_millis(created).to_string(),
        risk: p.risk.0.as_ref().map(|r| RiskView {
            score: r.score,
            decision: match r.decision {
                0 => "approve",
                1 => "review",
                _ => "reject",
            },
            reasons: r.reasons.iter().map(|(code, _)| code.clone()).collect(),
            review: r
                .reviewed
                .map(|(approved, _)| if approved { "approve" } else { "reject" }),
        }),
        routing: p.card.0.as_ref().map(|c| {
            let pairs = |v: &[(String, String)]| {
                v.iter()
                    .map(|(channel, outcome)| AttemptView {
                        channel: channel.clone(),
                        outcome: outcome.clone(),
                    })
                    .collect()
            };
            RoutingView {
                channel: c.channel.as_ref().map(|(_, name)| name.clone()),
                attempts: pairs(&c.attempts),
                excluded: pairs(&c.excluded),
            }
        }),
    }
}

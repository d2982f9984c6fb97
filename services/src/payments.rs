//! Payments: creation (validation, risk scoring, booking from a balance or charging through
//! the channels), reads, operator review; their public representation (what answers and
//! webhook events show) and the records every change of a payment's state writes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use engine::money::format_minor;
use engine::risk::{Decision, RiskInput};
use engine::{
    AccountId, Currency, PaymentParties, PlatformRole, Reject, Timestamp, Transfer, TransferId,
};
use serde::{Deserialize, Serialize};

use crate::accounts::{check_text, ensure_platform_accounts_once, parse_currency, parse_positive};
use crate::audit::Actor;
use crate::customers::Admission;
use crate::idempotency::Guard;
use crate::merchants::{merchant_id_text, Caller};
use crate::platform::{claim, now_ns, Platform};
use crate::records::{self, Payment, PaymentStatus, RiskRecord};
use crate::{Error, Result};

pub const OUT_TRADE_NO_LEN_MAX: usize = 64;
pub const METADATA_ENTRIES_MAX: usize = 20;
pub const METADATA_KEY_LEN_MAX: usize = 40;
pub const METADATA_VALUE_LEN_MAX: usize = 500;

/// A payment request.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    /// The merchant's order number, unique per merchant.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[!-~]{1,64}$"))]
    pub out_trade_no: String,
    #[cfg_attr(
        feature = "openapi",
        schema(example = "12.34", pattern = r"^[0-9]+(\.[0-9]+)?$", max_length = 40)
    )]
    pub amount: String,
    #[cfg_attr(feature = "openapi", schema(example = "CNY", pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
    pub payment_method: PaymentMethod,
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub description: Option<String>,
    /// At most 20 entries; keys 1–40 bytes, values at most 500.
    pub metadata: Option<BTreeMap<String, String>>,
    /// (extension) The paying customer's IP address as the merchant saw it, for risk rules.
    #[cfg_attr(feature = "openapi", schema(example = "203.0.113.7", max_length = 45))]
    pub payer_ip: Option<String>,
    /// (extension) The paying customer's device id as the merchant knows it, for risk rules.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub device_id: Option<String>,
    /// Profit sharing: at most 50 shares of the payment after its fee, each to another
    /// merchant's `account_id` (partners, sub-merchants), by amount or by ratio.
    #[cfg_attr(feature = "openapi", schema(max_items = 50))]
    pub splits: Option<Vec<SplitRequest>>,
    /// A coupon of the payer's (`cpn_…`, balance payments): the payer pays the amount less
    /// its discount. Unavailable (redeemed, paused, expired, budget spent, in use): the
    /// payment is created failed with `coupon_unavailable` and moves nothing.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^cpn_[0-9a-f]{32}$"))]
    pub coupon_id: Option<String>,
    /// `false`: a two-phase payment (issue #19; balance payments). The amount is held on the
    /// payer (`authorized`) until `POST /v1/payments/{id}/capture` takes all or part of it or
    /// `…/void` releases it; unless captured within `authorization_ttl_s` it is voided by
    /// itself. Default `true`: taken at once.
    pub capture: Option<bool>,
}

/// One share: exactly one of `amount` and `ratio`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SplitRequest {
    /// The receiving merchant's `account_id`.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^acct_[0-9a-f]{32}$"))]
    pub account_id: String,
    /// A fixed share.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "1.00", pattern = r"^[0-9]+(\.[0-9]+)?$", max_length = 40)
    )]
    pub amount: Option<String>,
    /// A ratio of the payment after its fee (more than 0, at most 1, 6 decimals at most);
    /// rounded down to the minor unit, the merchant keeping the rest.
    #[cfg_attr(feature = "openapi", schema(example = "0.30", max_length = 40))]
    pub ratio: Option<String>,
}

/// A share as computed.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SplitView {
    account_id: String,
    amount: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PaymentMethod {
    /// "balance" (an account here), "bank_card" (a card token, charged through a channel) or
    /// "credit" (a credit line, issue #18).
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^(balance|bank_card|credit)$"))]
    pub kind: String,
    /// The payer's account (required for "balance").
    #[cfg_attr(feature = "openapi", schema(pattern = r"^acct_[0-9a-f]{32}$"))]
    pub account_id: Option<String>,
    /// The card's token from `POST /v1/cards` (required for "bank_card").
    #[cfg_attr(feature = "openapi", schema(pattern = r"^tok_[0-9a-f]{32}$"))]
    pub card_token: Option<String>,
    /// The credit line drawn on (required for "credit").
    #[cfg_attr(feature = "openapi", schema(pattern = r"^crl_[0-9a-f]{32}$"))]
    pub credit_line_id: Option<String>,
}

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
    #[serde(skip_serializing_if = "Option::is_none")]
    credit_line_id: Option<String>,
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
    /// What the merchant keeps: amount − fee − Σ splits.
    net_amount: String,
    /// The shares, computed (empty without profit sharing).
    splits: Vec<SplitView>,
    payment_method: MethodView,
    description: Option<String>,
    metadata: BTreeMap<String, String>,
    refunded_amount: String,
    created_at: String,
    risk: Option<RiskView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    routing: Option<RoutingView>,
    /// (extension) The version of the merchant's agreement (fees, settlement cycle, payment
    /// methods) the payment was taken under; null for payments from before agreements.
    agreement_version: Option<u32>,
    /// The coupon it redeemed (null: none).
    coupon_id: Option<String>,
    /// What the coupon took off the amount ("0.00" without one).
    discount: String,
    /// What the payer paid: amount − discount.
    paid_amount: String,
    /// A two-phase payment's hold (`"capture": false`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization: Option<AuthorizationView>,
}

/// The webhook event type of a payment in `status`.
pub fn payment_event(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::Succeeded => "payment.succeeded",
        PaymentStatus::Failed => "payment.failed",
        PaymentStatus::Processing => "payment.processing",
        PaymentStatus::Authorized => "payment.authorized",
        PaymentStatus::Canceled => "payment.canceled",
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
        let body = view_json(p);
        records.extend(events_for(state, p, &body));
    }
    records
}

pub fn payment_id_text(id: u128) -> String {
    engine::ids::prefixed_hex("pay_", id)
}

pub fn parse_payment_id(text: &str) -> Option<u128> {
    records::parse_id(text, "pay_")
}

/// A payment's view as JSON, in a buffer sized for it: a payment's view is ≈ 570 bytes, and
/// `serde_json::to_vec`'s 128 grew three times to hold it (docs/BENCHMARKS.md, session 36).
pub fn view_json(p: &Payment) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    serde_json::to_writer(&mut out, &view(p)).expect("a payment view serializes");
    out
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
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Canceled => "canceled",
        },
        failure_code: p.failure_code.clone(),
        fee: format_minor(p.fee, currency),
        net_amount: format_minor(p.net_amount(), currency),
        splits: p
            .splits
            .0
            .iter()
            .map(|s| SplitView {
                account_id: s.account.to_string(),
                amount: format_minor(s.amount, currency),
            })
            .collect(),
        payment_method: match p.card.0.as_ref() {
            None => match p.credit_line.0 {
                None => MethodView {
                    kind: "balance",
                    account_id: Some(p.payer.to_string()),
                    card_token: None,
                    brand: None,
                    last4: None,
                    credit_line_id: None,
                },
                Some(line) => MethodView {
                    kind: "credit",
                    account_id: None,
                    card_token: None,
                    brand: None,
                    last4: None,
                    credit_line_id: Some(crate::credit::line_id_text(line)),
                },
            },
            Some(c) => MethodView {
                kind: "bank_card",
                account_id: None,
                card_token: Some(crate::cards::card_token_text(c.token)),
                brand: Some(c.brand.clone()),
                last4: Some(c.last4.clone()),
                credit_line_id: None,
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
        agreement_version: (p.agreement_version.0 > 0).then_some(p.agreement_version.0),
        coupon_id: p
            .coupon
            .0
            .as_ref()
            .map(|c| crate::coupons::coupon_id_text(c.coupon)),
        discount: format_minor(p.discount(), currency),
        paid_amount: format_minor(p.payer_amount(), currency),
        authorization: p.authorization.0.as_ref().map(|a| AuthorizationView {
            authorized_amount: format_minor(a.authorized, currency),
            expires_at: records::time_text(a.expires_at_ns),
            closed_at: a.closed_at_ns.map(records::time_text),
            void_reason: a.void_reason.clone(),
        }),
    }
}

/// A two-phase payment's hold, as answers show it.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthorizationView {
    /// What was held; `amount` is what was captured once it is.
    authorized_amount: String,
    /// When it is voided by itself unless captured.
    expires_at: String,
    /// When it was captured or voided.
    closed_at: Option<String>,
    /// Why it was voided: `voided` (the merchant) or `expired`.
    void_reason: Option<String>,
}

fn duplicate(payment_id: u128) -> Error {
    Error::Conflict {
        code: "duplicate_out_trade_no",
        message: "this merchant already has a payment with that out_trade_no".into(),
        param: Some("out_trade_no".into()),
        payment_id: Some(payment_id_text(payment_id)),
    }
}

fn check_out_trade_no(text: &str) -> Result<()> {
    crate::pan::refuse(text, "out_trade_no")?;
    if text.is_empty()
        || text.len() > OUT_TRADE_NO_LEN_MAX
        || !text.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::invalid(
            "invalid_parameter",
            format!("out_trade_no must be 1 to {OUT_TRADE_NO_LEN_MAX} visible ASCII characters, got {text:?}"),
        )
        .with_param("out_trade_no"));
    }
    Ok(())
}

fn check_metadata(m: &BTreeMap<String, String>) -> Result<()> {
    let bad = |msg: String| Err(Error::invalid("invalid_parameter", msg).with_param("metadata"));
    if m.len() > METADATA_ENTRIES_MAX {
        return bad(format!(
            "metadata has {} entries; the maximum is {METADATA_ENTRIES_MAX}",
            m.len()
        ));
    }
    for (k, v) in m {
        crate::pan::refuse(k, "metadata")?;
        crate::pan::refuse(v, "metadata")?;
        if k.is_empty() || k.len() > METADATA_KEY_LEN_MAX || v.len() > METADATA_VALUE_LEN_MAX {
            return bad(format!(
                "metadata keys are 1 to {METADATA_KEY_LEN_MAX} bytes and values at most {METADATA_VALUE_LEN_MAX}: {k:?}"
            ));
        }
    }
    Ok(())
}

/// The public failure code of a declined payment.
fn failure_code(reject: Reject) -> String {
    match reject {
        Reject::Overflow(_) => "limit_exceeded".to_string(),
        other => other.code().to_string(),
    }
}

/// A split's error, on the parameter it names.
fn invalid_splits(message: impl Into<String>, param: String) -> Error {
    Error::invalid("invalid_splits", message).with_param(param)
}

/// Resolves the splits `requested` for a payment of `amount` with fee `fee` to `merchant`:
/// each receiver another merchant's `account_id` in the payment's currency, none twice;
/// each share an amount or a ratio (`engine::splits`); Σ within the amount after the fee.
async fn resolve_splits(
    state: &Platform,
    store: &storage::Store,
    merchant: &records::Merchant,
    currency: Currency,
    amount: i64,
    fee: i64,
    requested: &[SplitRequest],
) -> Result<Vec<records::Split>> {
    use engine::splits::{Share, SPLITS_MAX};
    if requested.len() > SPLITS_MAX {
        return Err(invalid_splits(
            format!("at most {SPLITS_MAX} splits, got {}", requested.len()),
            "splits".into(),
        ));
    }
    let mut shares = Vec::with_capacity(requested.len());
    let mut receivers: Vec<(u128, AccountId)> = Vec::with_capacity(requested.len());
    for (i, r) in requested.iter().enumerate() {
        let param = |field: &str| format!("splits[{i}].{field}");
        // A well-formed id is 32 random hex digits, which can hold a Luhn-valid run: only
        // text that is not an id is checked for a card number (before it is echoed).
        let Some(account) = AccountId::parse(&r.account_id) else {
            crate::pan::refuse(&r.account_id, "splits")?;
            return Err(Error::not_found(format!("no account {:?}", r.account_id))
                .with_param(param("account_id")));
        };
        if account == merchant.pending() {
            return Err(invalid_splits(
                format!("split {i}: {account} is this merchant's own account; what is not split off stays with it"),
                param("account_id"),
            ));
        }
        if receivers.iter().any(|(_, a)| *a == account) {
            return Err(invalid_splits(
                format!("split {i}: {account} is named twice"),
                param("account_id"),
            ));
        }
        let Some(receiver) = crate::merchants::by_account(store, account)? else {
            if state.ledger()?.account(account).await?.is_none() {
                return Err(Error::not_found(format!("no account {account}"))
                    .with_param(param("account_id")));
            }
            return Err(invalid_splits(
                format!("split {i}: {account} is not a merchant's account_id; split receivers are merchants"),
                param("account_id"),
            ));
        };
        if receiver.currency != currency.numeric() {
            return Err(invalid_splits(
                format!("split {i}: the receiver does not settle in {currency}"),
                param("account_id"),
            ));
        }
        receivers.push((receiver.id, account));
        shares.push(match (&r.amount, &r.ratio) {
            (Some(text), None) => Share::Amount(parse_positive(text, currency, &param("amount"))?),
            (None, Some(text)) => Share::RatioPpm(
                engine::splits::parse_ratio(text, i)
                    .map_err(|e| invalid_splits(e.to_string(), param("ratio")))?,
            ),
            _ => {
                return Err(invalid_splits(
                    format!("split {i}: give exactly one of amount and ratio"),
                    format!("splits[{i}]"),
                ))
            }
        });
    }
    let amounts = engine::splits::shares(amount, fee, &shares)
        .map_err(|e| invalid_splits(e.to_string(), "splits".into()))?;
    Ok(receivers
        .into_iter()
        .zip(amounts)
        .map(|((merchant, account), amount)| records::Split {
            merchant,
            account,
            amount,
        })
        .collect())
}

/// A payment's shares as legs: (receiver's account, share).
pub fn split_legs(p: &Payment) -> Vec<(AccountId, i64)> {
    p.splits.0.iter().map(|s| (s.account, s.amount)).collect()
}

/// A balance payment's transfer: payer → merchant's pending account, fee income and the
/// receivers of its splits.
fn balance_transfer(p: &Payment, merchant: AccountId, currency: Currency) -> Transfer {
    let parties = PaymentParties {
        payer: p.payer,
        merchant,
        fee_account: AccountId::platform(PlatformRole::FeeIncome, currency.numeric()),
    };
    // A merchant-funded coupon: the payment is the amount less the discount. A
    // platform-funded one: the merchant gets the amount, the payer pays the amount less the
    // discount and the stock's budget the discount.
    let mut t = Transfer::payment(
        TransferId(p.id),
        parties,
        currency,
        p.amount - p.merchant_discount(),
        p.fee,
        Timestamp(0),
    )
    .with_splits(merchant, &split_legs(p));
    if let Some(c) = p.coupon.0.as_ref() {
        if let (Some(budget), true) = (c.budget, c.discount > 0) {
            t.postings[0].amount += c.discount;
            t.postings
                .push(engine::Posting::new(budget, currency, -c.discount));
        }
    }
    t
}

/// The payer's account as a payment from it needs it: within its payer rate limit and in
/// the payment's currency. Answers the payer and when its account was opened (risk).
fn paying_account(
    state: &Platform,
    payer: AccountId,
    account: actors::AccountFacts,
    currency: Currency,
) -> Result<(AccountId, Option<Timestamp>)> {
    state.rate.payer.check(&payer.0)?;
    if account.currency != currency {
        return Err(Error::invalid(
            "invalid_currency",
            format!(
                "the paying account is in {}, not {currency}",
                account.currency
            ),
        )
        .with_param("currency"));
    }
    Ok((payer, Some(account.created_at)))
}

/// Where the money comes from.
enum Source {
    /// An account here (its id as sent).
    Balance(String),
    /// A credit line (issue #18): its principal account pays; `Some` code: the payment
    /// fails so (the line is overdue).
    Credit(Box<records::CreditLine>, Option<&'static str>),
    /// A tokenized card, charged through a channel.
    Card(Box<records::Card>),
}

/// Removes an out_trade_no claim when the request finishes, however it finishes.
struct Claim<'a>(&'a Platform, Vec<u8>);

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.0.trade_claims.remove(&self.1);
    }
}

/// Creates a payment for `merchant` (id `id`, made by the caller so that a command carries
/// every id it creates): validated, scored, then booked from the payer's account or charged
/// through the channels, durably with the idempotency record of its answer (`idem`).
/// `noted` hears the payment's id once the request is valid. Returns the answer: the
/// payment's view as JSON (its webhook event carries the same bytes).
pub async fn create(
    state: &Arc<Platform>,
    merchant: &records::Merchant,
    id: u128,
    body: CreatePayment,
    idem: Option<&Guard<'_>>,
    noted: impl FnOnce(u128),
) -> Result<Vec<u8>> {
    let store = state.store()?;
    if !merchant.is_active() {
        return Err(Error::conflict(
            "merchant_inactive",
            format!(
                "the merchant is {}: only an active merchant takes payments",
                crate::merchants::status_name(merchant)
            ),
        ));
    }
    check_out_trade_no(&body.out_trade_no)?;
    let currency = parse_currency(&body.currency)?;
    let amount = parse_positive(&body.amount, currency, "amount")?;
    let method = match body.payment_method.kind.as_str() {
        "balance" => {
            let text = body.payment_method.account_id.clone().ok_or_else(|| {
                Error::invalid(
                    "parameter_missing",
                    "a balance payment needs payment_method.account_id",
                )
                .with_param("payment_method.account_id")
            })?;
            Source::Balance(text)
        }
        "bank_card" => {
            let text = body.payment_method.card_token.clone().ok_or_else(|| {
                Error::invalid(
                    "parameter_missing",
                    "a bank_card payment needs payment_method.card_token",
                )
                .with_param("payment_method.card_token")
            })?;
            let not_found = || {
                Error::not_found(format!("no card {text:?}"))
                    .with_param("payment_method.card_token")
            };
            let token = crate::cards::parse_card_token(&text).ok_or_else(not_found)?;
            let card = records::read::<records::Card>(store, &records::card_key(token))?
                .filter(|c| c.merchant == merchant.id)
                .ok_or_else(not_found)?;
            if engine::cards::expired(card.exp_month, card.exp_year, now_ns()) {
                return Err(Error::invalid("card_expired", "the card has expired")
                    .with_param("payment_method.card_token"));
            }
            Source::Card(Box::new(card))
        }
        "credit" => {
            let text = body.payment_method.credit_line_id.clone().ok_or_else(|| {
                Error::invalid(
                    "parameter_missing",
                    "a credit payment needs payment_method.credit_line_id",
                )
                .with_param("payment_method.credit_line_id")
            })?;
            let (line, refusal) = crate::credit::for_draw(state, &text)?;
            Source::Credit(Box::new(line), refusal)
        }
        other => {
            return Err(Error::invalid(
                "invalid_parameter",
                format!(
                "payment_method.type {other:?} is not supported; use \"balance\", \"bank_card\" or \"credit\""
            ),
            )
            .with_param("payment_method.type"))
        }
    };
    // The merchant's agreement must enable the method (issue #18).
    let bit = match &method {
        Source::Balance(_) => records::methods::BALANCE,
        Source::Card(_) => records::methods::BANK_CARD,
        Source::Credit(..) => records::methods::CREDIT,
    };
    if merchant.agreement.0.methods() & bit == 0 {
        return Err(Error::invalid(
            "payment_method_not_enabled",
            format!(
                "this merchant's agreement (version {}) does not enable {} payments",
                merchant.agreement.0.version(),
                body.payment_method.kind
            ),
        )
        .with_param("payment_method.type"));
    }
    check_text(&body.description, "description")?;
    let payer_ip = body
        .payer_ip
        .as_deref()
        .map(|ip| {
            ip.parse::<std::net::IpAddr>().map_err(|_| {
                Error::invalid(
                    "invalid_parameter",
                    format!("payer_ip {ip:?} is not an IP address"),
                )
                .with_param("payer_ip")
            })
        })
        .transpose()?;
    if body
        .device_id
        .as_ref()
        .is_some_and(|d| d.is_empty() || d.chars().count() > 64)
    {
        return Err(
            Error::invalid("invalid_parameter", "device_id must be 1 to 64 characters")
                .with_param("device_id"),
        );
    }
    let metadata = body.metadata.unwrap_or_default();
    check_metadata(&metadata)?;
    if let Some(d) = &body.device_id {
        crate::pan::refuse(d, "device_id")?;
    }
    let ledger = state.ledger()?;
    // A coupon (issue #18): checked now (the payer's, for this merchant, the minimum); its
    // discount follows from its rule, and a merchant-funded one lowers what the fee and the
    // shares are computed on. Whether the stock can still give it is decided at booking.
    // A two-phase payment (issue #19): a balance or a card, whole (no coupon, no shares:
    // both are decided on the amount taken, which only the capture knows).
    let two_phase = body.capture == Some(false);
    if two_phase {
        let refuse = |why: &str| {
            Err(Error::invalid("two_phase_not_supported", why.to_string()).with_param("capture"))
        };
        if let Source::Credit(..) = &method {
            return refuse("a credit line draw is taken at once");
        }
        if body.coupon_id.is_some() {
            return refuse("a two-phase payment takes no coupon");
        }
        if body.splits.is_some() {
            return refuse("a two-phase payment takes no splits");
        }
    }
    let coupon = match (&body.coupon_id, &method) {
        (None, _) => None,
        (Some(_), Source::Card(_) | Source::Credit(..)) => {
            return Err(
                Error::invalid("coupon_not_supported", "coupons apply to balance payments")
                    .with_param("coupon_id"),
            )
        }
        (Some(text), Source::Balance(payer_text)) => {
            let payer = AccountId::parse(payer_text).ok_or_else(|| {
                Error::not_found(format!("no account {payer_text:?}"))
                    .with_param("payment_method.account_id")
            })?;
            let (c, s) = crate::coupons::check(state, text, payer, merchant.id, currency, amount)?;
            let discount = engine::coupons::discount(s.rule, amount);
            Some((c, s, discount))
        }
    };
    let basis = match &coupon {
        Some((_, s, d)) if !s.platform_funded => amount - d,
        _ => amount,
    };
    let fee = merchant.fee_terms().fee(basis);
    let splits = match &body.splits {
        Some(requested) => {
            resolve_splits(state, store, merchant, currency, basis, fee, requested).await?
        }
        None => Vec::new(),
    };
    if merchant.currency != currency.numeric() {
        let settles = Currency::from_numeric(merchant.currency)
            .map(|c| c.code())
            .unwrap_or("?");
        return Err(Error::invalid(
            "invalid_currency",
            format!("this merchant settles in {settles}; {currency} payments are not supported"),
        )
        .with_param("currency"));
    }
    // A balance payment's payer account; a card payment has none (the channel is paid).
    let (payer, payer_created_at) = match &method {
        Source::Balance(payer_text) => {
            let not_found = || {
                Error::not_found(format!("no account {payer_text:?}"))
                    .with_param("payment_method.account_id")
            };
            let payer = AccountId::parse(payer_text).ok_or_else(not_found)?;
            let account = ledger.facts(payer)?.ok_or_else(not_found)?;
            paying_account(state, payer, account, currency)?
        }
        Source::Credit(line, _) => {
            let payer = line.principal_account;
            let account = ledger
                .facts(payer)?
                .ok_or_else(|| Error::storage("a credit line's principal account is missing"))?;
            paying_account(state, payer, account, currency)?
        }
        Source::Card(_) => (AccountId(0), None),
    };
    let card_facts = match &method {
        Source::Card(card) => Some(engine::risk::CardFacts {
            fingerprint: card.fingerprint,
            bin: card.bin,
            first_seen: Timestamp(card.created_at_ns),
        }),
        Source::Balance(_) | Source::Credit(..) => None,
    };

    // out_trade_no: claimed in memory against a concurrent twin, then checked in the store.
    let index_key = records::out_trade_no_key(merchant.id, &body.out_trade_no);
    noted(id);
    match state.trade_claims.entry(index_key.clone()) {
        dashmap::mapref::entry::Entry::Occupied(first) => return Err(duplicate(*first.get())),
        dashmap::mapref::entry::Entry::Vacant(slot) => {
            slot.insert(id);
        }
    }
    let _claim = Claim(state, index_key.clone());
    if let Some(first) = records::read::<u128>(store, &index_key)? {
        return Err(duplicate(first));
    }

    ensure_platform_accounts_once(state, currency).await?;
    // Scored before any money moves; the attempt counts toward velocity whatever follows.
    let created_at_ns = now_ns();
    let assessment = state
        .risk
        .lock()
        .map_err(|_| Error::storage("risk state poisoned"))?
        .assess(&RiskInput {
            at: Timestamp(created_at_ns),
            merchant_category: merchant.category.0.as_deref().unwrap_or("general"),
            amount_minor: amount,
            currency,
            payer: payer_created_at.map(|_| payer),
            payer_created_at,
            card: card_facts,
            ip: payer_ip,
            device: body.device_id.as_deref(),
        });
    crate::metrics::risk(assessment.decision, assessment.score);
    let mut payment = Payment {
        id,
        merchant: merchant.id,
        out_trade_no: body.out_trade_no,
        amount,
        currency: currency.numeric(),
        fee,
        payer,
        status: PaymentStatus::Succeeded,
        failure_code: None,
        description: body.description,
        metadata: metadata.into_iter().collect(),
        refunded: 0,
        created_at_ns,
        risk: records::Tail(Some(RiskRecord {
            score: assessment.score,
            decision: match assessment.decision {
                Decision::Approve => 0,
                Decision::Review => 1,
                Decision::Reject => 2,
            },
            reasons: assessment
                .reasons
                .iter()
                .map(|r| (r.code.clone(), r.points))
                .collect(),
            reviewed: None,
        })),
        card: records::Tail(match &method {
            Source::Card(card) => Some(records::CardPayment {
                token: card.token,
                brand: card.brand.clone(),
                last4: card.last4.clone(),
                ..Default::default()
            }),
            Source::Balance(_) | Source::Credit(..) => None,
        }),
        business_date: records::Tail(state.ledger()?.period().map(|p| p.open)),
        splits: records::Tail(splits),
        agreement_version: records::Tail(merchant.agreement.0.version()),
        coupon: records::Tail(coupon.as_ref().map(|(c, s, d)| records::CouponUse {
            coupon: c.id,
            stock: s.id,
            discount: *d,
            budget: s.account,
            returned: 0,
        })),
        credit_line: records::Tail(match &method {
            Source::Credit(line, _) => Some(line.id),
            _ => None,
        }),
        authorization: records::Tail(two_phase.then(|| {
            records::Authorization {
                authorized: amount,
                expires_at_ns: created_at_ns.saturating_add(
                    state
                        .settings
                        .authorization_ttl_s
                        .saturating_mul(1_000_000_000),
                ),
                closed_at_ns: None,
                void_reason: None,
            }
        })),
    };
    let transfer = if two_phase {
        payment.status = PaymentStatus::Authorized;
        crate::authorizations::hold_transfer(&payment, currency)
    } else {
        balance_transfer(&payment, merchant.pending(), currency)
    };
    // The answer is rendered before the write; the idempotency record, in the same durable
    // unit as the payment, carries the payment's record the answer renders (a replay renders
    // it again): ≈ 105 bytes where the answer's JSON is ≈ 570 (docs/BENCHMARKS.md).
    let records_for = |p: &Payment| {
        let body = view_json(p);
        let record = records::encode(p);
        let remembered = idem.map(|g| g.record_payment(&record));
        let mut records = vec![
            (records::payment_key(id), record),
            (index_key.clone(), records::encode(&id)),
        ];
        records.extend(remembered);
        records.extend(events_for(state, p, &body));
        (records, body)
    };
    if assessment.decision != Decision::Approve {
        // Rejected: failed now. Review: processing until an operator decides. Either way
        // nothing moves; the payment exists durably.
        if assessment.decision == Decision::Reject {
            payment.fail("risk_rejected");
        } else {
            payment.status = PaymentStatus::Processing;
        }
        let (records, body) = records_for(&payment);
        ledger.write_records(records).await?;
        state.payment_reached(&payment);
        return Ok(body);
    }
    if payment.card.0.is_some() {
        // Through the channels: the index is written with the first attempt's record, the
        // idempotency record with the answer.
        payment.status = PaymentStatus::Processing;
        // The last answer rendered for the records, kept to answer with when the payment
        // ends as it was rendered (the usual case) rather than rendered again.
        let rendered = std::cell::RefCell::new(None);
        let answer_of = |p: &Payment| {
            let (records, body) = records_for(p);
            *rendered.borrow_mut() = Some((p.clone(), body));
            records
        };
        let index = vec![(index_key.clone(), records::encode(&id))];
        // Boxed: the charge's state (the channel call's with it, ≈ 4 KiB) would otherwise be
        // part of every payment's future, balance payments' too, and each level that moves
        // the future (the handler, actix's boxing of it) copies all of it.
        let done = Box::pin(crate::card_payments::charge(
            state,
            payment,
            merchant.pending(),
            &answer_of,
            index,
        ))
        .await?;
        state.payment_reached(&done);
        let body = match rendered.take() {
            Some((p, body)) if p == done => body,
            _ => view_json(&done),
        };
        return Ok(body);
    }
    // An overdue credit line draws nothing (issue #18).
    if let Source::Credit(_, Some(code)) = &method {
        payment.fail(code);
        let (records, body) = records_for(&payment);
        ledger.write_records(records).await?;
        state.payment_reached(&payment);
        return Ok(body);
    }
    // The coupon, redeemed under its stock's turn (held until the payment is durable): the
    // stock and the coupon as this payment leaves them join its unit.
    let redemption = match &coupon {
        None => None,
        Some((c, s, d)) => match crate::coupons::redeem(state, c, s, id, amount).await? {
            Some(r) if r.used.discount == *d => Some(r),
            _ => {
                payment.fail("coupon_unavailable");
                let (records, body) = records_for(&payment);
                ledger.write_records(records).await?;
                state.payment_reached(&payment);
                return Ok(body);
            }
        },
    };
    // A customer's KYC limits (issue #18): over one, the payment fails and moves nothing;
    // within them, the customer's new totals are written with the payment, under the
    // customer's turn.
    let counted =
        match crate::customers::admit_payment(state, payer, payment.payer_amount()).await? {
            Admission::NotCustomer => None,
            Admission::Admitted { turn, record } => Some((turn, record)),
            Admission::Refused(_) => {
                payment.fail("kyc_limit_exceeded");
                let (records, body) = records_for(&payment);
                ledger.write_records(records).await?;
                state.payment_reached(&payment);
                return Ok(body);
            }
        };
    let (mut records, mut answer) = records_for(&payment);
    if two_phase {
        records.push(crate::authorizations::marker(&payment, true));
    }
    let _turn = counted.map(|(turn, record)| {
        records.push(record);
        turn
    });
    if let Some(r) = &redemption {
        records.extend(r.records.iter().cloned());
    }
    if let Err(reject) = ledger.transfer_with(transfer, records).await? {
        // Declined is not an HTTP error: the payment exists, failed, durably. A credit line
        // without room: `credit_limit_exceeded`.
        let code = match (&method, reject) {
            (Source::Credit(..), Reject::InsufficientFunds(_)) => {
                "credit_limit_exceeded".to_string()
            }
            (_, reject) => failure_code(reject),
        };
        payment.fail(&code);
        let (records, body) = records_for(&payment);
        ledger.write_records(records).await?;
        answer = body;
    }
    state.payment_reached(&payment);
    Ok(answer)
}

pub async fn load_visible(state: &Platform, caller: &Caller, id_text: &str) -> Result<Payment> {
    let not_found = || Error::not_found(format!("no payment {id_text:?}"));
    let id = parse_payment_id(id_text).ok_or_else(not_found)?;
    // A payment past the refund window may be shelved (`crate::shelf`).
    let payment = crate::shelf::payment(state.store()?, id)?.ok_or_else(not_found)?;
    if !caller.may_see(payment.merchant) {
        return Err(not_found());
    }
    Ok(payment)
}

/// The merchant's payment with `out_trade_no`, if any.
pub fn by_out_trade_no(
    state: &Platform,
    merchant: u128,
    out_trade_no: &str,
) -> Result<Option<Payment>> {
    check_out_trade_no(out_trade_no)?;
    let store = state.store()?;
    // Hot, else shelved (every record segment searched: a lookup of an old order).
    match crate::shelf::read::<u128>(
        store,
        &records::out_trade_no_key(merchant, out_trade_no),
        None,
    )? {
        Some(id) => crate::shelf::payment(store, id),
        None => Ok(None),
    }
}

/// Answers an operator's review decision, after recording it in the audit log.
async fn reviewed(state: &Platform, actor: &Actor, p: &Payment) -> Result<PaymentView> {
    state.payment_reached(p);
    let after = view(p);
    crate::audit::write(
        state,
        crate::audit::record(
            state,
            actor,
            "payment.review",
            &payment_id_text(p.id),
            Some(&serde_json::json!({ "status": "processing" })),
            Some(&after),
        ),
    )
    .await?;
    Ok(after)
}

fn not_in_review(id: u128) -> Error {
    Error::conflict(
        "payment_not_in_review",
        format!("payment {} is not held for review", payment_id_text(id)),
    )
}

/// An operator's decision (`decision`: "approve" or "reject") on payment `id_text`, held
/// for review: approved, it goes ahead now (booked, or charged through the channels);
/// rejected, it fails with `risk_rejected`. One decision at a time per payment; `noted`
/// hears when the payment is known. Returns the payment as decided.
pub async fn review(
    state: &Arc<Platform>,
    actor: &Actor,
    id_text: &str,
    decision: &str,
    noted: impl FnOnce(),
) -> Result<PaymentView> {
    let approve = match decision {
        "approve" => true,
        "reject" => false,
        other => {
            return Err(Error::invalid(
                "invalid_parameter",
                format!("decision {other:?}: use approve or reject"),
            )
            .with_param("decision"))
        }
    };
    let ledger = state.ledger()?;
    let mut payment = load_visible(state, &Caller::Admin, id_text).await?;
    noted();
    let id = payment.id;
    let _claim = claim(&state.review_claims, id).ok_or_else(|| {
        Error::conflict(
            "review_in_progress",
            "another decision on this payment is running",
        )
    })?;
    // Re-read under the claim: a decision that finished meanwhile is seen.
    payment = load_visible(state, &Caller::Admin, id_text).await?;
    if payment.status != PaymentStatus::Processing {
        return Err(not_in_review(id));
    }
    if let Some(r) = payment.risk.0.as_mut() {
        r.reviewed = Some((approve, now_ns()));
    }
    if !approve {
        payment.fail("risk_rejected");
        ledger
            .write_records(payment_records(state, &payment))
            .await?;
        return reviewed(state, actor, &payment).await;
    }
    if payment.card.0.is_some() {
        let merchant = records::read::<records::Merchant>(
            state.store()?,
            &records::merchant_key(payment.merchant),
        )?
        .ok_or_else(|| Error::storage("a stored payment's merchant is missing"))?;
        let answer_of = |p: &Payment| payment_records(state, p);
        let done =
            crate::card_payments::charge(state, payment, merchant.pending(), &answer_of, vec![])
                .await?;
        return reviewed(state, actor, &done).await;
    }
    let currency = Currency::from_numeric(payment.currency)
        .ok_or_else(|| Error::storage("a stored payment has an unknown currency"))?;
    let merchant = records::read::<records::Merchant>(
        state.store()?,
        &records::merchant_key(payment.merchant),
    )?
    .ok_or_else(|| Error::storage("a stored payment's merchant is missing"))?;
    // A two-phase payment approved is held now (its timer counts from its creation).
    let two_phase = payment.authorization.0.is_some();
    let transfer = if two_phase {
        crate::authorizations::hold_transfer(&payment, currency)
    } else {
        balance_transfer(&payment, merchant.pending(), currency)
    };
    // The coupon, redeemed as of the decision (issue #18).
    let mut records = Vec::new();
    let _redemption = match payment.coupon.0.clone() {
        None => None,
        Some(used) => {
            let store = state.store()?;
            let c = records::read::<records::Coupon>(store, &records::coupon_key(used.coupon))?;
            let s = records::read::<records::CouponStock>(
                store,
                &records::coupon_stock_key(used.stock),
            )?;
            let redeemed = match (c, s) {
                (Some(c), Some(s)) => {
                    crate::coupons::redeem(state, &c, &s, payment.id, payment.amount).await?
                }
                _ => None,
            };
            match redeemed {
                Some(r) if r.used.discount == used.discount => {
                    records.extend(r.records.iter().cloned());
                    Some(r)
                }
                _ => {
                    payment.fail("coupon_unavailable");
                    ledger
                        .write_records(payment_records(state, &payment))
                        .await?;
                    return reviewed(state, actor, &payment).await;
                }
            }
        }
    };
    // The payer's KYC limits as of the decision (issue #18).
    let _turn = match crate::customers::admit_payment(state, payment.payer, payment.payer_amount())
        .await?
    {
        Admission::NotCustomer => None,
        Admission::Admitted { turn, record } => {
            records.push(record);
            Some(turn)
        }
        Admission::Refused(_) => {
            payment.fail("kyc_limit_exceeded");
            ledger
                .write_records(payment_records(state, &payment))
                .await?;
            return reviewed(state, actor, &payment).await;
        }
    };
    payment.status = if two_phase {
        records.push(crate::authorizations::marker(&payment, true));
        PaymentStatus::Authorized
    } else {
        PaymentStatus::Succeeded
    };
    records.extend(payment_records(state, &payment));
    let outcome = ledger.transfer_with(transfer, records).await?;
    if let Err(reject) = outcome {
        payment.fail(&failure_code(reject));
        ledger
            .write_records(payment_records(state, &payment))
            .await?;
    }
    reviewed(state, actor, &payment).await
}

//! `/v1/payments` (merchant): balance payments, by id and by `out_trade_no`.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use engine::money::fee_minor;
use engine::{
    AccountId, Currency, PaymentParties, PlatformRole, Reject, Timestamp, Transfer, TransferId,
};
use serde::{Deserialize, Serialize};

use crate::auth::{self, Caller};
use crate::body;
use crate::error::{ApiError, ErrorType};
use crate::idempotency;
use crate::records::{self, Payment, PaymentStatus, RiskRecord};
use crate::state::{claim, new_id, now_ns, AppState};
use engine::risk::{Decision, RiskInput};
use services::accounts::{
    check_text, ensure_platform_accounts_once, parse_currency, parse_positive,
};
use services::payments::{
    events_for, parse_payment_id, payment_id_text, payment_records, view, PaymentView,
};

pub const OUT_TRADE_NO_LEN_MAX: usize = 64;
pub const METADATA_ENTRIES_MAX: usize = 20;
pub const METADATA_KEY_LEN_MAX: usize = 40;
pub const METADATA_VALUE_LEN_MAX: usize = 500;

/// A payment request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    /// The merchant's order number, unique per merchant.
    #[schema(pattern = r"^[!-~]{1,64}$")]
    out_trade_no: String,
    #[schema(example = "12.34", pattern = r"^[0-9]+(\.[0-9]+)?$", max_length = 40)]
    amount: String,
    #[schema(example = "CNY", pattern = r"^[A-Z]{3}$")]
    currency: String,
    payment_method: PaymentMethod,
    #[schema(max_length = 64)]
    description: Option<String>,
    /// At most 20 entries; keys 1–40 bytes, values at most 500.
    metadata: Option<BTreeMap<String, String>>,
    /// (extension) The paying customer's IP address as the merchant saw it, for risk rules.
    #[schema(example = "203.0.113.7", max_length = 45)]
    payer_ip: Option<String>,
    /// (extension) The paying customer's device id as the merchant knows it, for risk rules.
    #[schema(max_length = 64)]
    device_id: Option<String>,
}

/// An operator's decision on a payment held for review.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewDecision {
    /// "approve" (the payment goes ahead now) or "reject" (it fails with risk_rejected).
    #[schema(pattern = r"^(approve|reject)$")]
    decision: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethod {
    /// "balance" (an account here) or "bank_card" (a card token, charged through a channel).
    #[serde(rename = "type")]
    #[schema(pattern = r"^(balance|bank_card)$")]
    kind: String,
    /// The payer's account (required for "balance").
    #[schema(pattern = r"^acct_[0-9a-f]{32}$")]
    account_id: Option<String>,
    /// The card's token from `POST /v1/cards` (required for "bank_card").
    #[schema(pattern = r"^tok_[0-9a-f]{32}$")]
    card_token: Option<String>,
}

/// `GET /v1/payments?out_trade_no=…`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PaymentList {
    pub data: Vec<PaymentView>,
}

fn duplicate(payment_id: u128) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::CONFLICT,
        ErrorType::InvalidRequestError,
        "duplicate_out_trade_no",
        "this merchant already has a payment with that out_trade_no",
    )
    .with_param("out_trade_no");
    e.payment_id = Some(payment_id_text(payment_id));
    e
}

fn check_out_trade_no(text: &str) -> Result<(), ApiError> {
    crate::pan::refuse(text, "out_trade_no")?;
    if text.is_empty()
        || text.len() > OUT_TRADE_NO_LEN_MAX
        || !text.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::invalid(
            "invalid_parameter",
            format!("out_trade_no must be 1 to {OUT_TRADE_NO_LEN_MAX} visible ASCII characters, got {text:?}"),
        )
        .with_param("out_trade_no"));
    }
    Ok(())
}

fn check_metadata(m: &BTreeMap<String, String>) -> Result<(), ApiError> {
    let bad = |msg: String| Err(ApiError::invalid("invalid_parameter", msg).with_param("metadata"));
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

/// Where the money comes from.
enum Source {
    /// An account here (its id as sent).
    Balance(String),
    /// A tokenized card, charged through a channel.
    Card(Box<records::Card>),
}

/// Removes an out_trade_no claim when the request finishes, however it finishes.
struct Claim<'a>(&'a AppState, Vec<u8>);

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.0.trade_claims.remove(&self.1);
    }
}

#[utoipa::path(post, path = "/v1/payments", tag = "payments", request_body = CreatePayment, params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "payment created: succeeded, or failed with a failure_code", body = PaymentView),
        (status = 404, description = "unknown payer account", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let store = state.store()?;
    let merchant = auth::merchant(&req, &state)?;
    let (body, raw): (CreatePayment, _) =
        body::json(&req, payload, state.limits, &["amount"]).await?;
    let caller = Caller::Merchant(Box::new(merchant.clone()));
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    check_out_trade_no(&body.out_trade_no)?;
    let currency = parse_currency(&body.currency)?;
    let amount = parse_positive(&body.amount, currency, "amount")?;
    let method = match body.payment_method.kind.as_str() {
        "balance" => {
            let text = body.payment_method.account_id.clone().ok_or_else(|| {
                ApiError::invalid(
                    "parameter_missing",
                    "a balance payment needs payment_method.account_id",
                )
                .with_param("payment_method.account_id")
            })?;
            Source::Balance(text)
        }
        "bank_card" => {
            let text = body.payment_method.card_token.clone().ok_or_else(|| {
                ApiError::invalid(
                    "parameter_missing",
                    "a bank_card payment needs payment_method.card_token",
                )
                .with_param("payment_method.card_token")
            })?;
            let not_found = || {
                ApiError::not_found(format!("no card {text:?}"))
                    .with_param("payment_method.card_token")
            };
            let token = super::cards::parse_card_token(&text).ok_or_else(not_found)?;
            let card = records::read::<records::Card>(store, &records::card_key(token))?
                .filter(|c| c.merchant == merchant.id)
                .ok_or_else(not_found)?;
            if engine::cards::expired(card.exp_month, card.exp_year, now_ns()) {
                return Err(ApiError::invalid("card_expired", "the card has expired")
                    .with_param("payment_method.card_token"));
            }
            Source::Card(Box::new(card))
        }
        other => {
            return Err(ApiError::invalid(
                "invalid_parameter",
                format!(
                "payment_method.type {other:?} is not supported; use \"balance\" or \"bank_card\""
            ),
            )
            .with_param("payment_method.type"))
        }
    };
    check_text(&body.description, "description")?;
    let payer_ip = body
        .payer_ip
        .as_deref()
        .map(|ip| {
            ip.parse::<std::net::IpAddr>().map_err(|_| {
                ApiError::invalid(
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
        .is_some_and(|d| d.is_empty() || d.len() > 64)
    {
        return Err(
            ApiError::invalid("invalid_parameter", "device_id must be 1 to 64 bytes")
                .with_param("device_id"),
        );
    }
    let metadata = body.metadata.unwrap_or_default();
    check_metadata(&metadata)?;
    if let Some(d) = &body.device_id {
        crate::pan::refuse(d, "device_id")?;
    }
    let ledger = state.ledger()?;
    if merchant.currency != currency.numeric() {
        let settles = Currency::from_numeric(merchant.currency)
            .map(|c| c.code())
            .unwrap_or("?");
        return Err(ApiError::invalid(
            "invalid_currency",
            format!("this merchant settles in {settles}; {currency} payments are not supported"),
        )
        .with_param("currency"));
    }
    // A balance payment's payer account; a card payment has none (the channel is paid).
    let (payer, payer_created_at) = match &method {
        Source::Balance(payer_text) => {
            let not_found = || {
                ApiError::not_found(format!("no account {payer_text:?}"))
                    .with_param("payment_method.account_id")
            };
            let payer = AccountId::parse(payer_text).ok_or_else(not_found)?;
            state.rate.payer.check(&payer.0)?;
            let payer_account = ledger.account(payer).await?.ok_or_else(not_found)?;
            if payer_account.account.currency != currency {
                return Err(ApiError::invalid(
                    "invalid_currency",
                    format!(
                        "the payer's account is in {}, not {currency}",
                        payer_account.account.currency
                    ),
                )
                .with_param("currency"));
            }
            (payer, Some(payer_account.account.created_at))
        }
        Source::Card(_) => (AccountId(0), None),
    };
    let card_facts = match &method {
        Source::Card(card) => Some(engine::risk::CardFacts {
            fingerprint: card.fingerprint,
            bin: card.bin,
            first_seen: Timestamp(card.created_at_ns),
        }),
        Source::Balance(_) => None,
    };

    // out_trade_no: claimed in memory against a concurrent twin, then checked in the store.
    let index_key = records::out_trade_no_key(merchant.id, &body.out_trade_no);
    let id = new_id();
    crate::access::note_payment(&req, &payment_id_text(id));
    match state.trade_claims.entry(index_key.clone()) {
        dashmap::mapref::entry::Entry::Occupied(first) => return Err(duplicate(*first.get())),
        dashmap::mapref::entry::Entry::Vacant(slot) => {
            slot.insert(id);
        }
    }
    let _claim = Claim(&state, index_key.clone());
    if let Some(first) = records::read::<u128>(store, &index_key)? {
        return Err(duplicate(first));
    }

    ensure_platform_accounts_once(&state, currency).await?;
    // Scored before any money moves; the attempt counts toward velocity whatever follows.
    let created_at_ns = now_ns();
    let assessment = state
        .risk
        .lock()
        .map_err(|_| ApiError::unavailable("risk state poisoned"))?
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
    let fee = fee_minor(amount, merchant.fee_rate_ppm);
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
            Source::Balance(_) => None,
        }),
    };
    let parties = PaymentParties {
        payer,
        merchant: merchant.account,
        fee_account: AccountId::platform(PlatformRole::FeeIncome, currency.numeric()),
    };
    let transfer = Transfer::payment(TransferId(id), parties, currency, amount, fee, Timestamp(0));
    // The answer is rendered before the write, so the idempotency record carrying it is in
    // the same durable unit as the payment.
    let records_for = |p: &Payment| {
        let body = serde_json::to_vec(&view(p)).expect("a payment view serializes");
        let mut records = vec![
            (records::payment_key(id), records::encode(p)),
            (index_key.clone(), records::encode(&id)),
        ];
        records.extend(idem.as_ref().map(|g| g.record(StatusCode::CREATED, &body)));
        records.extend(events_for(&state, p, &body));
        (records, body)
    };
    if assessment.decision != Decision::Approve {
        // Rejected: failed now. Review: processing until an operator decides. Either way
        // nothing moves; the payment exists durably.
        if assessment.decision == Decision::Reject {
            payment.status = PaymentStatus::Failed;
            payment.failure_code = Some("risk_rejected".to_string());
            payment.fee = 0;
        } else {
            payment.status = PaymentStatus::Processing;
        }
        let (records, body) = records_for(&payment);
        ledger.write_records(records).await?;
        state.payment_reached(&payment);
        return Ok(idempotency::respond(StatusCode::CREATED, body));
    }
    if payment.card.0.is_some() {
        // Through the channels: the index is written with the first attempt's record, the
        // idempotency record with the answer.
        payment.status = PaymentStatus::Processing;
        let answer_of = |p: &Payment| records_for(p).0;
        let index = vec![(index_key.clone(), records::encode(&id))];
        let done = services::card_payments::charge(
            &state.platform,
            payment,
            merchant.account,
            &answer_of,
            index,
        )
        .await?;
        state.payment_reached(&done);
        let body = serde_json::to_vec(&view(&done)).expect("a payment view serializes");
        return Ok(idempotency::respond(StatusCode::CREATED, body));
    }
    let (records, mut answer) = records_for(&payment);
    if let Err(reject) = ledger.transfer_with(transfer, records).await? {
        // Declined is not an HTTP error: the payment exists, failed, durably.
        payment.status = PaymentStatus::Failed;
        payment.failure_code = Some(failure_code(reject));
        payment.fee = 0;
        let (records, body) = records_for(&payment);
        ledger.write_records(records).await?;
        answer = body;
    }
    state.payment_reached(&payment);
    Ok(idempotency::respond(StatusCode::CREATED, answer))
}

pub async fn load_visible(
    state: &AppState,
    caller: &Caller,
    id_text: &str,
) -> Result<Payment, ApiError> {
    let not_found = || ApiError::not_found(format!("no payment {id_text:?}"));
    let id = parse_payment_id(id_text).ok_or_else(not_found)?;
    let payment = records::read::<Payment>(state.store()?, &records::payment_key(id))?
        .ok_or_else(not_found)?;
    if !caller.may_see(payment.merchant) {
        return Err(not_found());
    }
    Ok(payment)
}

#[utoipa::path(get, path = "/v1/payments/{id}", tag = "payments",
    params(("id" = String, Path, description = "payment id (pay_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the payment", body = PaymentView),
        crate::openapi::ReadErrors
    ))]
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::caller(&req, &state)?;
    let payment = load_visible(&state, &caller, &path).await?;
    crate::access::note_payment(&req, &path);
    Ok(HttpResponse::Ok().json(view(&payment)))
}

#[utoipa::path(get, path = "/v1/payments", tag = "payments",
    params(("out_trade_no" = String, Query, description = "the merchant's order number")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the payment with that out_trade_no, if any", body = PaymentList),
        (status = 400, description = "invalid query", body = crate::openapi::ErrorResponse),
        (status = 401, description = "bad credentials", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready or storage unavailable", body = crate::openapi::ErrorResponse)
    ))]
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = state.store()?;
    let merchant = auth::merchant(&req, &state)?;
    let query =
        web::Query::<HashMap<String, String>>::from_query(req.query_string()).map_err(|e| {
            ApiError::invalid(
                "invalid_parameter",
                format!("the query string does not parse: {e}"),
            )
        })?;
    if let Some(unknown) = query.keys().find(|k| *k != "out_trade_no") {
        return Err(ApiError::invalid(
            "invalid_parameter",
            format!("unknown query parameter {unknown:?}"),
        )
        .with_param(unknown.clone()));
    }
    let out_trade_no = query.get("out_trade_no").ok_or_else(|| {
        ApiError::invalid("parameter_missing", "list payments by ?out_trade_no=…")
            .with_param("out_trade_no")
    })?;
    check_out_trade_no(out_trade_no)?;
    let mut data = Vec::new();
    if let Some(id) =
        records::read::<u128>(store, &records::out_trade_no_key(merchant.id, out_trade_no))?
    {
        if let Some(p) = records::read::<Payment>(store, &records::payment_key(id))? {
            data.push(view(&p));
        }
    }
    Ok(HttpResponse::Ok().json(PaymentList { data }))
}

/// Answers an operator's review decision, after recording it in the audit log.
async fn reviewed(
    state: &AppState,
    req: &HttpRequest,
    p: &Payment,
) -> Result<HttpResponse, ApiError> {
    state.payment_reached(p);
    let after = view(p);
    crate::audit::write(
        state,
        crate::audit::record(
            state,
            req,
            "payment.review",
            &payment_id_text(p.id),
            Some(&serde_json::json!({ "status": "processing" })),
            Some(&after),
        ),
    )
    .await?;
    Ok(HttpResponse::Ok().json(after))
}

fn not_in_review(id: u128) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        ErrorType::InvalidRequestError,
        "payment_not_in_review",
        format!("payment {} is not held for review", payment_id_text(id)),
    )
}

#[utoipa::path(post, path = "/v1/payments/{id}/review", tag = "payments", request_body = ReviewDecision,
    params(("id" = String, Path, description = "payment id (pay_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "decided: succeeded (or failed if the payer can no longer pay), or failed with risk_rejected", body = PaymentView),
        (status = 404, description = "unknown payment", body = crate::openapi::ErrorResponse),
        (status = 409, description = "not held for review, or another decision is running", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (extension, admin) Decides a payment the risk rules held for review.
pub async fn review(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::admin(&req, &state.admin_token)?;
    let (body, _): (ReviewDecision, _) = body::json(&req, payload, state.limits, &[]).await?;
    let approve = match body.decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => {
            return Err(ApiError::invalid(
                "invalid_parameter",
                format!("decision {other:?}: use approve or reject"),
            )
            .with_param("decision"))
        }
    };
    let ledger = state.ledger()?;
    let mut payment = load_visible(&state, &caller, &path).await?;
    crate::access::note_payment(&req, &path);
    let id = payment.id;
    let _claim = claim(&state.review_claims, id).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            ErrorType::InvalidRequestError,
            "review_in_progress",
            "another decision on this payment is running",
        )
    })?;
    // Re-read under the claim: a decision that finished meanwhile is seen.
    payment = load_visible(&state, &caller, &path).await?;
    if payment.status != PaymentStatus::Processing {
        return Err(not_in_review(id));
    }
    if let Some(r) = payment.risk.0.as_mut() {
        r.reviewed = Some((approve, now_ns()));
    }
    if !approve {
        payment.status = PaymentStatus::Failed;
        payment.failure_code = Some("risk_rejected".to_string());
        payment.fee = 0;
        ledger
            .write_records(payment_records(&state, &payment))
            .await?;
        return reviewed(&state, &req, &payment).await;
    }
    if payment.card.0.is_some() {
        let merchant = records::read::<records::Merchant>(
            state.store()?,
            &records::merchant_key(payment.merchant),
        )?
        .ok_or_else(|| ApiError::unavailable("a stored payment's merchant is missing"))?;
        let answer_of = |p: &Payment| payment_records(&state, p);
        let done = services::card_payments::charge(
            &state.platform,
            payment,
            merchant.account,
            &answer_of,
            vec![],
        )
        .await?;
        return reviewed(&state, &req, &done).await;
    }
    let currency = Currency::from_numeric(payment.currency)
        .ok_or_else(|| ApiError::unavailable("a stored payment has an unknown currency"))?;
    let merchant = records::read::<records::Merchant>(
        state.store()?,
        &records::merchant_key(payment.merchant),
    )?
    .ok_or_else(|| ApiError::unavailable("a stored payment's merchant is missing"))?;
    let parties = PaymentParties {
        payer: payment.payer,
        merchant: merchant.account,
        fee_account: AccountId::platform(PlatformRole::FeeIncome, currency.numeric()),
    };
    let transfer = Transfer::payment(
        TransferId(id),
        parties,
        currency,
        payment.amount,
        payment.fee,
        Timestamp(0),
    );
    payment.status = PaymentStatus::Succeeded;
    let outcome = ledger
        .transfer_with(transfer, payment_records(&state, &payment))
        .await?;
    if let Err(reject) = outcome {
        payment.status = PaymentStatus::Failed;
        payment.failure_code = Some(failure_code(reject));
        payment.fee = 0;
        ledger
            .write_records(payment_records(&state, &payment))
            .await?;
    }
    reviewed(&state, &req, &payment).await
}

//! `POST /v1/payments/{id}/refunds`: money back from the merchant (and the platform's fee,
//! pro rata) to the payer, never above the payment, once per `out_refund_no`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use engine::money::{format_minor, pro_rata_minor};
use engine::{AccountId, Currency, PlatformRole, Timestamp, Transfer, TransferId, TransferKind};
use serde::{Deserialize, Serialize};

use super::payments::load_visible;
use crate::auth;
use crate::body;
use crate::error::ApiError;
use crate::idempotency;
use crate::records::{self, Payment, PaymentStatus, Refund};
use crate::state::{claim, new_id, now_ns, AppState};
use services::accounts::{check_text, parse_positive};
use services::payments::payment_id_text;
use services::refunds::{
    conflict, parse_refund_id, read_refund_and_payment, refund_events, refund_postings,
    through_channel, view, ChannelRefund, RefundView,
};

/// A refund request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    /// Default: the whole unrefunded rest.
    #[schema(example = "5.00", pattern = r"^[0-9]+(\.[0-9]+)?$", max_length = 40)]
    amount: Option<String>,
    /// Unique per payment.
    #[schema(pattern = r"^[!-~]{1,64}$")]
    out_refund_no: String,
    #[schema(max_length = 64)]
    reason: Option<String>,
}

#[utoipa::path(post, path = "/v1/payments/{id}/refunds", tag = "payments", request_body = CreateRefund,
    params(("id" = String, Path, description = "payment id (pay_…)"), ("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "this out_refund_no was already used: that refund", body = RefundView),
        (status = 201, description = "refund created: succeeded, or failed with a failure_code", body = RefundView),
        (status = 404, description = "unknown or not yours", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let store = state.store()?;
    let caller = auth::caller(&req, &state)?;
    let (body, raw): (CreateRefund, _) =
        body::json(&req, payload, state.limits, &["amount"]).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let otn = &body.out_refund_no;
    crate::pan::refuse(otn, "out_refund_no")?;
    if otn.is_empty() || otn.len() > 64 || !otn.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            "invalid_parameter",
            format!("out_refund_no must be 1 to 64 visible ASCII characters, got {otn:?}"),
        )
        .with_param("out_refund_no"));
    }
    check_text(&body.reason, "reason")?;
    let payment = load_visible(&state, &caller, &path).await?;
    crate::access::note_payment(&req, &path);
    // One refund of a payment at a time: its refunded total is read, checked and rewritten.
    let _claim = claim(&state.refund_claims, payment.id).ok_or_else(|| {
        conflict(
            "refund_in_progress",
            "another refund of this payment is in progress; retry".to_string(),
        )
    })?;
    // Re-read under the claim: the refunded total may have moved since.
    let mut payment: Payment = records::read(store, &records::payment_key(payment.id))?
        .ok_or_else(|| ApiError::unavailable("the payment vanished"))?;
    let currency =
        Currency::from_numeric(payment.currency).expect("stored payments carry an active currency");

    let index_key = records::out_refund_no_key(payment.id, otn);
    if let Some(existing) = records::read::<u128>(store, &index_key)? {
        // The same out_refund_no is the same refund: answer it again, refund nothing.
        let refund: Refund = records::read(store, &records::refund_key(existing))?
            .ok_or_else(|| ApiError::unavailable("an indexed refund is missing"))?;
        return Ok(HttpResponse::Ok().json(view(&refund, currency)));
    }
    if payment.status != PaymentStatus::Succeeded {
        return Err(conflict(
            "payment_not_refundable",
            format!("payment {} did not succeed", payment_id_text(payment.id)),
        )
        .into());
    }
    let rest = payment.amount - payment.refunded;
    let amount = match &body.amount {
        Some(text) => parse_positive(text, currency, "amount")?,
        None => rest,
    };
    if amount > rest || rest == 0 {
        return Err(ApiError::invalid(
            "refund_exceeds_payment",
            format!(
                "{} is more than the unrefunded {}",
                format_minor(amount, currency),
                format_minor(rest, currency)
            ),
        )
        .with_param("amount"));
    }
    let fee_part = pro_rata_minor(payment.fee, payment.refunded + amount, payment.amount)
        - pro_rata_minor(payment.fee, payment.refunded, payment.amount);
    let merchant_part = amount - fee_part;
    let merchant: records::Merchant =
        records::read(store, &records::merchant_key(payment.merchant))?
            .ok_or_else(|| ApiError::unavailable("the payment's merchant is missing"))?;
    // Money goes back to whoever paid: the payer's account, or for a card payment the
    // card, through the channel that charged it (our position there pays for it).
    let channel = match payment.card.0.as_ref() {
        None => None,
        Some(card) => {
            let (channel_id, _) = card.channel.clone().ok_or_else(|| {
                conflict(
                    "payment_not_refundable",
                    "the payment has no channel".into(),
                )
            })?;
            let call = state
                .channels
                .get(&channel_id)
                .and_then(|c| {
                    c.value()
                        .lock()
                        .ok()
                        .map(|rt| (rt.record.number, rt.record.endpoint.clone()))
                })
                .ok_or_else(|| ApiError::unavailable("the payment's channel is not configured"))?;
            Some((call, card.request_id.clone().unwrap_or_default()))
        }
    };
    let refund_source = match &channel {
        None => payment.payer,
        Some(((number, _), _)) => AccountId::platform_at_channel(
            PlatformRole::ChannelReceivable,
            *number,
            currency.numeric(),
        ),
    };
    let postings = refund_postings(
        refund_source,
        merchant.account,
        currency,
        amount,
        merchant_part,
    );
    let id = new_id();
    let transfer = Transfer {
        id: TransferId(id),
        kind: TransferKind::Refund,
        postings,
        timestamp: Timestamp(0),
    };
    let mut refund = Refund {
        id,
        payment: payment.id,
        out_refund_no: otn.clone(),
        amount,
        fee_part,
        status: PaymentStatus::Succeeded,
        failure_code: None,
        reason: body.reason,
        created_at_ns: now_ns(),
    };
    let records_for = |r: &Refund, p: &Payment| {
        let answer = serde_json::to_vec(&view(r, currency)).expect("a refund view serializes");
        let mut records = vec![
            (records::refund_key(id), records::encode(r)),
            (index_key.clone(), records::encode(&id)),
            (records::payment_key(p.id), records::encode(p)),
        ];
        records.extend(
            idem.as_ref()
                .map(|g| g.record(StatusCode::CREATED, &answer)),
        );
        records.extend(refund_events(&state, p.merchant, r, &answer));
        (records, answer)
    };
    let before = payment.clone();
    payment.refunded += amount;
    let ledger = state.ledger()?;
    if let Some(((_, endpoint), charge_request_id)) = channel {
        let answer = through_channel(
            &state.platform,
            ChannelRefund {
                endpoint,
                charge_request_id,
                transfer,
                refund,
                payment,
                before,
            },
            &records_for,
        )
        .await?;
        return Ok(idempotency::respond(StatusCode::CREATED, answer));
    }
    let (records, mut answer) = records_for(&refund, &payment);
    if let Err(reject) = ledger.transfer_with(transfer, records).await? {
        // The merchant cannot cover it (or an account is frozen): a failed refund, durable,
        // and the payment's refunded total unchanged.
        refund.status = PaymentStatus::Failed;
        refund.failure_code = Some(reject.code().to_string());
        let (records, body) = records_for(&refund, &before);
        ledger.write_records(records).await?;
        answer = body;
    }
    state.refund_reached(&refund, payment.currency);
    Ok(idempotency::respond(StatusCode::CREATED, answer))
}

#[utoipa::path(get, path = "/v1/refunds/{id}", tag = "payments",
    params(("id" = String, Path, description = "refund id (re_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the refund", body = RefundView),
        crate::openapi::ReadErrors
    ))]
/// A refund (its merchant, or the operator): a card refund left `processing` shows here
/// what the channel finally said.
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::caller(&req, &state)?;
    let not_found = || ApiError::not_found(format!("no refund {:?}", path.as_str()));
    let id = parse_refund_id(&path).ok_or_else(not_found)?;
    let (refund, payment) = read_refund_and_payment(&state, id)?.ok_or_else(not_found)?;
    if !caller.may_see(payment.merchant) {
        return Err(not_found());
    }
    let currency =
        Currency::from_numeric(payment.currency).expect("stored payments carry an active currency");
    Ok(HttpResponse::Ok().json(view(&refund, currency)))
}

/// The most refunds one list answers.
const LIST_MAX: usize = 1_000;

#[derive(Serialize, utoipa::ToSchema)]
pub struct RefundList {
    data: Vec<RefundView>,
    /// More refunds than `LIST_MAX` (1,000) exist; only the first ones by `out_refund_no` are here.
    has_more: bool,
}

#[utoipa::path(get, path = "/v1/payments/{id}/refunds", tag = "payments",
    params(("id" = String, Path, description = "payment id (pay_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the payment's refunds, by out_refund_no", body = RefundList),
        crate::openapi::ReadErrors
    ))]
/// A payment's refunds, ordered by `out_refund_no` (at most 1,000).
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::caller(&req, &state)?;
    let payment = load_visible(&state, &caller, &path).await?;
    crate::access::note_payment(&req, &path);
    let store = state.store()?;
    let currency =
        Currency::from_numeric(payment.currency).expect("stored payments carry an active currency");
    let prefix = records::out_refund_no_key(payment.id, "");
    let mut ids = Vec::new();
    store
        .for_each_aux_with_prefix(&prefix, LIST_MAX + 1, |_, value| {
            if let Ok(id) = storage::codec::decode::<u128>(storage::codec::Kind::Aux, value) {
                ids.push(id);
            }
            Ok(())
        })
        .map_err(|e| ApiError::unavailable(format!("cannot read the refunds: {e}")))?;
    let has_more = ids.len() > LIST_MAX;
    ids.truncate(LIST_MAX);
    let mut data = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(r) = records::read::<Refund>(store, &records::refund_key(id))? {
            data.push(view(&r, currency));
        }
    }
    Ok(HttpResponse::Ok().json(RefundList { data, has_more }))
}

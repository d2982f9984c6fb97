//! `/v1/payments/{id}/refunds` and `/v1/refunds/{id}`: money back from the merchant (and
//! the platform's fee, pro rata) to the payer. The flow: `services::refunds`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
pub use services::refunds::CreateRefund;
use services::refunds::{Created, RefundView};

use crate::auth;
use crate::body;
use crate::error::ApiError;
use crate::idempotency;
use crate::state::AppState;

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
    state.serving()?;
    let caller = auth::caller(&req, &state)?;
    let (body, raw): (CreateRefund, _) =
        body::json(&req, payload, state.limits, &["amount"]).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let created =
        services::refunds::create(&state.platform, &caller, &path, body, idem.as_ref(), || {
            crate::access::note_payment(&req, &path)
        })
        .await?;
    Ok(match created {
        Created::New(answer) => idempotency::respond(StatusCode::CREATED, answer),
        Created::Existing(refund) => HttpResponse::Ok().json(refund),
    })
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
    Ok(HttpResponse::Ok().json(services::refunds::get(&state, &caller, &path)?))
}

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
    let (data, has_more) = services::refunds::list(&state, &caller, &path, || {
        crate::access::note_payment(&req, &path)
    })
    .await?;
    Ok(HttpResponse::Ok().json(RefundList { data, has_more }))
}

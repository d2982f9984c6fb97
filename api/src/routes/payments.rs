//! `/v1/payments`: create (merchant), read by id and by `out_trade_no`, and the operator's
//! review decision. The flows: `services::payments`.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use services::payments::{payment_id_text, view, PaymentView};
pub use services::payments::{CreatePayment, PaymentMethod};

use crate::auth;
use crate::body;
use crate::error::ApiError;
use crate::idempotency;
use crate::state::{new_id, AppState};

/// An operator's decision on a payment held for review.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewDecision {
    /// "approve" (the payment goes ahead now) or "reject" (it fails with risk_rejected).
    #[schema(pattern = r"^(approve|reject)$")]
    decision: String,
}

/// `GET /v1/payments?out_trade_no=…`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PaymentList {
    pub data: Vec<PaymentView>,
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
    state.serving()?;
    let caller = auth::caller(&req, &state)?;
    let merchant = auth::merchant_of(&caller)?;
    let (body, raw): (CreatePayment, _) =
        body::json(&req, payload, state.limits, &["amount"]).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let answer = services::payments::create(
        &state.platform,
        merchant,
        new_id(),
        body,
        idem.as_ref(),
        |id| crate::access::note_payment(&req, &payment_id_text(id)),
    )
    .await?;
    Ok(idempotency::respond(StatusCode::CREATED, answer))
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
    let payment = services::payments::load_visible(&state, &caller, &path).await?;
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
    state.serving()?;
    let merchant = auth::merchant(&req, &state)?;
    let query = super::query_params(&req, &["out_trade_no"])?;
    let out_trade_no = query.get("out_trade_no").ok_or_else(|| {
        ApiError::invalid("parameter_missing", "list payments by ?out_trade_no=…")
            .with_param("out_trade_no")
    })?;
    let found = services::payments::by_out_trade_no(&state, merchant.id, out_trade_no)?;
    let data = found.iter().map(view).collect();
    Ok(HttpResponse::Ok().json(PaymentList { data }))
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
    auth::admin(&req, &state.admin_token)?;
    let (body, _): (ReviewDecision, _) = body::json(&req, payload, state.limits, &[]).await?;
    let decided = services::payments::review(
        &state.platform,
        &crate::audit::actor(&req),
        &path,
        &body.decision,
        || crate::access::note_payment(&req, &path),
    )
    .await?;
    Ok(HttpResponse::Ok().json(decided))
}

/// Whether the request carries a body (a capture's is optional).
fn has_body(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() != "0")
        || req
            .headers()
            .contains_key(actix_web::http::header::TRANSFER_ENCODING)
}

#[utoipa::path(post, path = "/v1/payments/{id}/capture", tag = "payments",
    request_body(content = Option<services::authorizations::Capture>, description = "optional: the amount to take (default all)"),
    params(("id" = String, Path, description = "payment id (pay_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "captured: succeeded, `amount` the amount taken (the rest went back to the payer); a repeated capture of the same amount answers the same", body = PaymentView),
        (status = 404, description = "unknown payment, or not yours", body = crate::openapi::ErrorResponse),
        (status = 409, description = "not an authorization awaiting capture (payment_already_captured, payment_canceled, payment_not_authorized), or authorization_expired (voided now)", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (merchant, admin) Captures a two-phase payment: all of what was authorized, or part.
pub async fn capture(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::caller(&req, &state)?;
    let body = if has_body(&req) {
        body::json::<services::authorizations::Capture>(&req, payload, state.limits, &["amount"])
            .await?
            .0
    } else {
        services::authorizations::Capture::default()
    };
    crate::access::note_payment(&req, &path);
    let view = services::authorizations::capture(&state, &caller, &path, body).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(post, path = "/v1/payments/{id}/void", tag = "payments",
    params(("id" = String, Path, description = "payment id (pay_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "voided: canceled, everything held back to the payer; a repeated void answers the same", body = PaymentView),
        (status = 404, description = "unknown payment, or not yours", body = crate::openapi::ErrorResponse),
        (status = 409, description = "not an authorization (payment_already_captured, payment_not_authorized)", body = crate::openapi::ErrorResponse),
        crate::openapi::ReadErrors
    ))]
/// (merchant, admin) Voids a two-phase payment's authorization.
pub async fn void(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::caller(&req, &state)?;
    crate::access::note_payment(&req, &path);
    let view = services::authorizations::void(&state, &caller, &path).await?;
    Ok(HttpResponse::Ok().json(view))
}

//! `/v1/credit_lines` (admin): credit lines, their bills and repayments. Draws are payments
//! (`{"type": "credit", "credit_line_id"}`). The rules and flows: `services::credit`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use services::credit::{BillList, LineView, RepaymentView};
pub use services::credit::{CreateLine, Repay};

use crate::auth;
use crate::body;
use crate::error::ApiError;
use crate::idempotency;
use crate::state::AppState;

#[utoipa::path(post, path = "/v1/credit_lines", tag = "credit", request_body = CreateLine,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "the line, lent to an identity-verified customer (409 kyc_level_insufficient, credit_line_exists)", body = LineView),
        (status = 404, description = "unknown account", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (admin) Opens a credit line on a customer's account.
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::admin(&req, &state.admin_token)?;
    let (body, raw): (CreateLine, _) =
        body::json(&req, payload, state.limits, &["limit", "late_fee"]).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let answer =
        services::credit::create(&state, &crate::audit::actor(&req), body, idem.as_ref()).await?;
    Ok(idempotency::respond(StatusCode::CREATED, answer))
}

#[utoipa::path(get, path = "/v1/credit_lines/{id}", tag = "credit",
    params(("id" = String, Path, description = "credit line id (crl_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the line: drawn, available, billed, charges, status, days past due and bucket", body = LineView),
        crate::openapi::ReadErrors
    ))]
/// (admin) A credit line.
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth::admin(&req, &state.admin_token)?;
    let view: LineView = services::credit::get(&state, &path).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(get, path = "/v1/credit_lines/{id}/bills", tag = "credit",
    params(("id" = String, Path, description = "credit line id (crl_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "its bills, oldest first: total, minimum due, due date, interest, fees, what was paid", body = BillList),
        crate::openapi::ReadErrors
    ))]
/// (admin) A credit line's bills.
pub async fn bills(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    Ok(HttpResponse::Ok().json(services::credit::bills(&state, &path)?))
}

#[utoipa::path(post, path = "/v1/credit_lines/{id}/repayments", tag = "credit", request_body = Repay,
    params(("id" = String, Path, description = "credit line id (crl_…)"), ("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "repaid from the customer's balance: fees, then interest, then principal, oldest bill first (400 repayment_exceeds_balance, insufficient_funds)", body = RepaymentView),
        (status = 404, description = "unknown line", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (admin) Repays a credit line from its customer's balance account.
pub async fn repay(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::admin(&req, &state.admin_token)?;
    let (body, raw): (Repay, _) = body::json(&req, payload, state.limits, &["amount"]).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let answer = services::credit::repay(
        &state,
        &crate::audit::actor(&req),
        &path,
        body,
        idem.as_ref(),
    )
    .await?;
    Ok(idempotency::respond(StatusCode::CREATED, answer))
}

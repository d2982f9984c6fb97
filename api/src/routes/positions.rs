//! `/v1/positions…`: the platform's positions, reserve accounts and reserve transfers
//! (issue #16, admin). The flows: `services::positions`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
pub use services::positions::{
    ChannelPositionView, CoverageView, CreateReserve, CreateReserveTransfer, ExpectedView,
    InTransitView, MonitorView, OwedView, PositionsView, ReserveTransferList, ReserveTransferView,
    ReserveView, UpdateReserve,
};

use crate::auth;
use crate::body;
use crate::error::ApiError;
use crate::idempotency;
use crate::state::AppState;

#[utoipa::path(get, path = "/v1/positions", tag = "positions",
    params(
        ("date" = Option<String>, Query, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$", format = Date, description = "a closed business date (its day-end's frozen figures); default the open date (live)")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "reserve per clearing bank, receivable per channel by expected settlement date, in transit, owed, the coverage check and the monitors firing", body = PositionsView),
        (status = 400, description = "invalid date", body = crate::openapi::ErrorResponse),
        (status = 401, description = "not the operator", body = crate::openapi::ErrorResponse),
        (status = 404, description = "a date with no positions (not closed, or before positions existed)", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) The platform's positions: funds at its clearing banks and channels against what
/// it owes customers and merchants.
pub async fn get(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    let query = super::query_params(&req, &["date"])?;
    let view = services::positions::get(&state, query.get("date").map(String::as_str)).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReserveList {
    data: Vec<ReserveView>,
}

#[utoipa::path(get, path = "/v1/positions/reserves", tag = "positions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "every reserve account, `default` first", body = ReserveList),
        (status = 401, description = "not the operator", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) The reserve accounts at clearing banks.
pub async fn reserves(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    let data = services::positions::list_reserves(&state).await?;
    Ok(HttpResponse::Ok().json(ReserveList { data }))
}

#[utoipa::path(post, path = "/v1/positions/reserves", tag = "positions", request_body = CreateReserve,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "the reserve account, opened", body = ReserveView),
        (status = 409, description = "the name is taken, or 64 reserve accounts exist", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (admin) Opens a reserve account at a clearing bank.
pub async fn create_reserve(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::admin(&req, &state.admin_token)?;
    let (body, raw): (CreateReserve, _) =
        body::json(&req, payload, state.limits, &["low_water"]).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let answer = services::positions::create_reserve(
        &state,
        &crate::audit::actor(&req),
        body,
        idem.as_ref(),
    )
    .await?;
    Ok(idempotency::respond(StatusCode::CREATED, answer))
}

#[utoipa::path(patch, path = "/v1/positions/reserves/{name}", tag = "positions", request_body = UpdateReserve,
    params(("name" = String, Path, description = "the reserve account's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the reserve account as changed", body = ReserveView),
        (status = 404, description = "unknown reserve account", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (admin) Changes a reserve account's bank name or low-water mark.
pub async fn update_reserve(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    let (body, _): (UpdateReserve, _) =
        body::json(&req, payload, state.limits, &["low_water"]).await?;
    let view = services::positions::update_reserve(&state, &crate::audit::actor(&req), &path, body)
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(post, path = "/v1/positions/transfers", tag = "positions", request_body = CreateReserveTransfer,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "the transfer, pending: the money left the source and is in transit", body = ReserveTransferView),
        (status = 404, description = "unknown reserve account", body = crate::openapi::ErrorResponse),
        (status = 409, description = "the source holds less than the amount", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (admin) Moves money between two reserve accounts, two-phase: out of the source now,
/// into the destination when confirmed (or back when voided).
pub async fn create_transfer(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::admin(&req, &state.admin_token)?;
    let (body, raw): (CreateReserveTransfer, _) =
        body::json(&req, payload, state.limits, &["amount"]).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let answer = services::positions::create_transfer(
        &state,
        &crate::audit::actor(&req),
        body,
        idem.as_ref(),
    )
    .await?;
    Ok(idempotency::respond(StatusCode::CREATED, answer))
}

#[utoipa::path(get, path = "/v1/positions/transfers", tag = "positions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "reserve transfers, newest first (at most 1,000)", body = ReserveTransferList),
        (status = 401, description = "not the operator", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) Lists the reserve transfers.
pub async fn list_transfers(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    Ok(HttpResponse::Ok().json(services::positions::list_transfers(&state)?))
}

#[utoipa::path(get, path = "/v1/positions/transfers/{id}", tag = "positions",
    params(("id" = String, Path, pattern = r"^rtr_[0-9a-f]{32}$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the reserve transfer", body = ReserveTransferView),
        crate::openapi::ReadErrors
    ))]
/// (admin) One reserve transfer.
pub async fn get_transfer(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    Ok(HttpResponse::Ok().json(services::positions::get_transfer(&state, &path)?))
}

async fn decide(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: &str,
    confirm: bool,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    let view = services::positions::decide(&state, &crate::audit::actor(&req), id, confirm).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(post, path = "/v1/positions/transfers/{id}/confirm", tag = "positions",
    params(("id" = String, Path, pattern = r"^rtr_[0-9a-f]{32}$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "confirmed: the money is at the destination (again: the same answer)", body = ReserveTransferView),
        (status = 404, description = "unknown transfer", body = crate::openapi::ErrorResponse),
        (status = 409, description = "already voided", body = crate::openapi::ErrorResponse),
        (status = 401, description = "not the operator", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) Confirms a pending reserve transfer: the money arrived.
pub async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    decide(req, state, &path, true).await
}

#[utoipa::path(post, path = "/v1/positions/transfers/{id}/void", tag = "positions",
    params(("id" = String, Path, pattern = r"^rtr_[0-9a-f]{32}$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "voided: the money is back at the source (again: the same answer)", body = ReserveTransferView),
        (status = 404, description = "unknown transfer", body = crate::openapi::ErrorResponse),
        (status = 409, description = "already confirmed", body = crate::openapi::ErrorResponse),
        (status = 401, description = "not the operator", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) Voids a pending reserve transfer: the money never left the source's bank.
pub async fn void(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    decide(req, state, &path, false).await
}

//! `/v1/accounts`: create, read, deposit, status (admin; a merchant reads its own). The
//! rules and the flows: `services::accounts`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use services::accounts::{AccountView, DepositView};
pub use services::accounts::{CreateAccount, CreateDeposit, StatusName, UpdateAccount};

use crate::auth;
use crate::body;
use crate::error::ApiError;
use crate::idempotency;
use crate::state::AppState;

#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = CreateAccount, params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "account created", body = AccountView),
        crate::openapi::CreateErrors
    ))]
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::admin(&req, &state.admin_token)?;
    let (body, raw): (CreateAccount, _) =
        body::json(&req, payload, state.limits, &["credit_limit"]).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let answer =
        services::accounts::create(&state, &crate::audit::actor(&req), body, idem.as_ref()).await?;
    Ok(idempotency::respond(StatusCode::CREATED, answer))
}

#[utoipa::path(get, path = "/v1/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "account id (acct_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the account", body = AccountView),
        crate::openapi::ReadErrors
    ))]
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::caller(&req, &state)?;
    let account: AccountView = services::accounts::get(&state, &caller, &path).await?;
    Ok(HttpResponse::Ok().json(account))
}

#[utoipa::path(post, path = "/v1/accounts/{id}/deposits", tag = "accounts", request_body = CreateDeposit,
    params(("id" = String, Path, description = "account id (acct_…)"), ("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "deposited", body = DepositView),
        (status = 404, description = "unknown account", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
pub async fn deposit(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::admin(&req, &state.admin_token)?;
    let (body, raw): (CreateDeposit, _) =
        body::json(&req, payload, state.limits, &["amount"]).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let answer = services::accounts::deposit(
        &state,
        &crate::audit::actor(&req),
        &path,
        body,
        idem.as_ref(),
    )
    .await?;
    Ok(idempotency::respond(StatusCode::CREATED, answer))
}

#[utoipa::path(patch, path = "/v1/accounts/{id}", tag = "accounts", request_body = UpdateAccount,
    params(("id" = String, Path, description = "account id (acct_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the account with its new status", body = AccountView),
        (status = 404, description = "unknown account", body = crate::openapi::ErrorResponse),
        (status = 409, description = "closed, or not empty when closing", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
pub async fn update(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth::admin(&req, &state.admin_token)?;
    let (body, _): (UpdateAccount, _) = body::json(&req, payload, state.limits, &[]).await?;
    let account =
        services::accounts::update(&state, &crate::audit::actor(&req), &path, body).await?;
    Ok(HttpResponse::Ok().json(account))
}

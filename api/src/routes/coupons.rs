//! `/v1/coupon_stocks` and `/v1/coupons` (the operator, or a merchant for its own stocks):
//! stocks with a budget, coupons issued to accounts; `GET /v1/customers/{id}/coupons`. The
//! rules and flows: `services::coupons`; redemption is part of `POST /v1/payments`
//! (`coupon_id`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use services::coupons::{CouponList, CouponView, StockList, StockView};
pub use services::coupons::{CreateStock, IssueCoupon, UpdateStock};

use crate::auth;
use crate::body;
use crate::error::ApiError;
use crate::idempotency;
use crate::state::AppState;

const IDEM: &str = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409";

/// `limit` of a list query: 1 to 100, default 20.
fn limit_of(query: &std::collections::HashMap<String, String>) -> Result<usize, ApiError> {
    match query.get("limit") {
        None => Ok(20),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=services::coupons::LIST_MAX).contains(&n) => Ok(n),
            _ => Err(
                ApiError::invalid("invalid_parameter", "limit must be 1 to 100")
                    .with_param("limit"),
            ),
        },
    }
}

#[utoipa::path(post, path = "/v1/coupon_stocks", tag = "coupons", request_body = CreateStock,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = IDEM)),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "stock created (a platform-funded one's budget set aside)", body = StockView),
        (status = 404, description = "unknown merchant_id", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (admin or merchant) Creates a coupon stock.
pub async fn create_stock(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::caller(&req, &state)?;
    let (body, raw): (CreateStock, _) = body::json(
        &req,
        payload,
        state.limits,
        &["amount", "min_order", "budget"],
    )
    .await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let actor = super::customers::actor(&req, &caller);
    let answer =
        services::coupons::create_stock(&state, &caller, &actor, body, idem.as_ref()).await?;
    Ok(idempotency::respond(StatusCode::CREATED, answer))
}

#[utoipa::path(get, path = "/v1/coupon_stocks", tag = "coupons",
    params(
        ("starting_after" = Option<String>, Query, pattern = r"^cps_[0-9a-f]{32}$", description = "a stock id: the page after it"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "at most this many (default 20)")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "stocks, oldest first (a merchant: its own)", body = StockList),
        (status = 400, description = "a bad limit or starting_after", body = crate::openapi::ErrorResponse),
        (status = 401, description = "bad credentials", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin or merchant) Lists coupon stocks.
pub async fn list_stocks(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::caller(&req, &state)?;
    let query = super::query_params(&req, &["starting_after", "limit"])?;
    let list = services::coupons::list_stocks(
        &state,
        &caller,
        query.get("starting_after").map(String::as_str),
        limit_of(&query)?,
    )?;
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(get, path = "/v1/coupon_stocks/{id}", tag = "coupons",
    params(("id" = String, Path, description = "stock id (cps_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the stock: budget, spent, remaining, issued, redeemed", body = StockView),
        crate::openapi::ReadErrors
    ))]
/// (admin or merchant) A coupon stock.
pub async fn get_stock(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::caller(&req, &state)?;
    Ok(HttpResponse::Ok().json(services::coupons::get_stock(&state, &caller, &path)?))
}

#[utoipa::path(patch, path = "/v1/coupon_stocks/{id}", tag = "coupons", request_body = UpdateStock,
    params(("id" = String, Path, description = "stock id (cps_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the stock as it now is (stopped: its unspent budget returned)", body = StockView),
        (status = 400, description = "a bad status", body = crate::openapi::ErrorResponse),
        (status = 401, description = "bad credentials", body = crate::openapi::ErrorResponse),
        (status = 404, description = "unknown, or not yours", body = crate::openapi::ErrorResponse),
        (status = 409, description = "coupon_stock_stopped (final)", body = crate::openapi::ErrorResponse),
        (status = 413, description = "body too large", body = crate::openapi::ErrorResponse),
        (status = 415, description = "not JSON", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin or merchant) Pauses, resumes or stops a coupon stock (audited).
pub async fn update_stock(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::caller(&req, &state)?;
    let (body, _): (UpdateStock, _) = body::json(&req, payload, state.limits, &[]).await?;
    let actor = super::customers::actor(&req, &caller);
    let view = services::coupons::update_stock(&state, &caller, &actor, &path, body).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(post, path = "/v1/coupon_stocks/{id}/coupons", tag = "coupons", request_body = IssueCoupon,
    params(("id" = String, Path, description = "stock id (cps_…)"), ("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = IDEM)),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "a coupon issued, available", body = CouponView),
        (status = 404, description = "unknown stock or account", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (admin or merchant) Issues a coupon of a stock to an account (`409
/// coupon_limit_per_customer`, `coupon_stock_exhausted`, `coupon_stock_inactive`,
/// `coupon_stock_expired`).
pub async fn issue(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::caller(&req, &state)?;
    let (body, raw): (IssueCoupon, _) = body::json(&req, payload, state.limits, &[]).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let answer = services::coupons::issue(&state, &caller, &path, body, idem.as_ref()).await?;
    Ok(idempotency::respond(StatusCode::CREATED, answer))
}

#[utoipa::path(get, path = "/v1/coupons/{id}", tag = "coupons",
    params(("id" = String, Path, description = "coupon id (cpn_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the coupon: available, redeemed, expired or void", body = CouponView),
        crate::openapi::ReadErrors
    ))]
/// (admin or merchant) A coupon.
pub async fn get_coupon(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::caller(&req, &state)?;
    Ok(HttpResponse::Ok().json(services::coupons::get_coupon(&state, &caller, &path)?))
}

#[utoipa::path(get, path = "/v1/customers/{id}/coupons", tag = "coupons",
    params(
        ("id" = String, Path, description = "customer id (cus_…)"),
        ("starting_after" = Option<String>, Query, pattern = r"^cpn_[0-9a-f]{32}$", description = "a coupon id: the page after it"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "at most this many (default 20)")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the customer's coupons, oldest first", body = CouponList),
        (status = 400, description = "a bad limit or starting_after", body = crate::openapi::ErrorResponse),
        (status = 401, description = "bad credentials", body = crate::openapi::ErrorResponse),
        (status = 404, description = "unknown customer, or not yours", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin or merchant) A customer's coupons.
pub async fn of_customer(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::caller(&req, &state)?;
    let query = super::query_params(&req, &["starting_after", "limit"])?;
    let list = services::coupons::list_for_customer(
        &state,
        &caller,
        &path,
        query.get("starting_after").map(String::as_str),
        limit_of(&query)?,
    )?;
    Ok(HttpResponse::Ok().json(list))
}

//! `/v1/orders` (merchant; the operator reads): payment orders a customer pays later, their
//! payments and their close. The rules and flows: `services::orders`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use services::orders::OrderView;
pub use services::orders::{CreateOrder, PayOrder};

use crate::auth;
use crate::body;
use crate::error::ApiError;
use crate::idempotency;
use crate::state::AppState;

#[utoipa::path(post, path = "/v1/orders", tag = "orders", request_body = CreateOrder,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "the order, open until paid, closed or expired", body = OrderView),
        crate::openapi::CreateErrors
    ))]
/// (merchant) Creates a payment order.
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::caller(&req, &state)?;
    let merchant = auth::merchant_of(&caller)?;
    let (body, raw): (CreateOrder, _) =
        body::json(&req, payload, state.limits, &["amount"]).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let answer = services::orders::create(&state, merchant, body, idem.as_ref()).await?;
    Ok(idempotency::respond(StatusCode::CREATED, answer))
}

#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "order id (ord_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the order", body = OrderView),
        crate::openapi::ReadErrors
    ))]
/// (merchant, admin) An order.
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::caller(&req, &state)?;
    Ok(HttpResponse::Ok().json(services::orders::get(&state, &caller, &path)?))
}

#[utoipa::path(get, path = "/v1/orders/{id}/qr", tag = "orders",
    params(("id" = String, Path, description = "order id (ord_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the QR code of the order's checkout_url (SVG)", content_type = "image/svg+xml", body = String),
        crate::openapi::ReadErrors
    ))]
/// (merchant, admin) The QR code of an order's checkout page.
pub async fn qr(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::caller(&req, &state)?;
    let svg = services::orders::qr_svg(&state, &caller, &path)?;
    Ok(HttpResponse::Ok().content_type("image/svg+xml").body(svg))
}

#[utoipa::path(post, path = "/v1/orders/{id}/close", tag = "orders",
    params(("id" = String, Path, description = "order id (ord_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the order, closed (or as it was when already closed)", body = OrderView),
        (status = 401, description = "bad credentials", body = crate::openapi::ErrorResponse),
        (status = 404, description = "unknown, or not yours", body = crate::openapi::ErrorResponse),
        (status = 409, description = "order_already_paid, order_payment_in_progress", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (merchant) Closes an unpaid order.
pub async fn close(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::caller(&req, &state)?;
    auth::merchant_of(&caller)?;
    Ok(HttpResponse::Ok().json(services::orders::close(&state, &caller, &path).await?))
}

#[utoipa::path(post, path = "/v1/orders/{id}/payments", tag = "orders", request_body = PayOrder,
    params(("id" = String, Path, description = "order id (ord_…)")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "the payment of the order (succeeded: the order is paid; failed: it stays open)", body = services::payments::PaymentView),
        (status = 404, description = "unknown order, account, card or coupon", body = crate::openapi::ErrorResponse),
        (status = 409, description = "order_already_paid, order_closed, order_expired, order_payment_in_progress", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (merchant) Pays an order (the checkout does the same for the customer).
pub async fn pay(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let merchant = auth::merchant(&req, &state)?;
    let (body, _): (PayOrder, _) = body::json(&req, payload, state.limits, &[]).await?;
    let answer = services::orders::pay(&state.platform, &merchant, &path, body).await?;
    Ok(HttpResponse::Created()
        .content_type("application/json")
        .body(answer))
}

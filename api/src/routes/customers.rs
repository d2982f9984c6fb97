//! `/v1/customers` (the operator, or a merchant for its own): customers with a balance account
//! and a KYC level, their phone and identity verification. The rules and flows:
//! `services::customers`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
pub use services::customers::{CheckPhone, CreateCustomer, VerifyIdentity};
use services::customers::{CustomerList, CustomerView};
use services::notifications::otp::OtpView;
use services::Caller;

use crate::auth;
use crate::body;
use crate::error::ApiError;
use crate::idempotency;
use crate::state::AppState;

/// Who acts, for the audit log: the operator (as `crate::audit::actor` names it) or the
/// merchant whose key it is.
pub fn actor(req: &HttpRequest, caller: &Caller) -> services::audit::Actor {
    match caller {
        Caller::Admin => crate::audit::actor(req),
        Caller::Merchant(m) => services::audit::Actor {
            name: format!(
                "merchant:{}",
                crate::routes::merchants::merchant_id_text(m.id)
            ),
            source_ip: req.peer_addr().map(|a| a.ip().to_string()),
        },
    }
}

#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = CreateCustomer, params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "customer created at KYC level 0, with its balance account; the id number (if given) shown masked", body = CustomerView),
        crate::openapi::CreateErrors
    ))]
/// (admin or merchant) Creates a customer: a balance account and a KYC level.
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::caller(&req, &state)?;
    // The body may hold an id number: an error never quotes it.
    let (body, raw): (CreateCustomer, _) =
        body::json_sensitive(&req, payload, state.limits).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let answer =
        services::customers::create(&state, &caller, &actor(&req, &caller), body, idem.as_ref())
            .await?;
    Ok(idempotency::respond(StatusCode::CREATED, answer))
}

#[utoipa::path(get, path = "/v1/customers", tag = "customers",
    params(
        ("starting_after" = Option<String>, Query, pattern = r"^cus_[0-9a-f]{32}$", description = "a customer id: the page after it"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "at most this many (default 20)")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "customers, oldest first (a merchant: its own)", body = CustomerList),
        (status = 400, description = "a bad limit or starting_after", body = crate::openapi::ErrorResponse),
        (status = 401, description = "bad credentials", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin or merchant) Lists customers.
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.serving()?;
    let caller = auth::caller(&req, &state)?;
    let query = super::query_params(&req, &["starting_after", "limit"])?;
    let limit = match query.get("limit") {
        None => 20,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=services::customers::LIST_MAX).contains(&n) => n,
            _ => {
                return Err(
                    ApiError::invalid("invalid_parameter", "limit must be 1 to 100")
                        .with_param("limit"),
                )
            }
        },
    };
    let list = services::customers::list(
        &state,
        &caller,
        query.get("starting_after").map(String::as_str),
        limit,
    )
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "customer id (cus_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the customer: KYC level, its limits and what it paid today and this year", body = CustomerView),
        crate::openapi::ReadErrors
    ))]
/// (admin or merchant) A customer.
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::caller(&req, &state)?;
    let view: CustomerView = services::customers::get(&state, &caller, &path).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(post, path = "/v1/customers/{id}/phone_verification", tag = "customers",
    params(("id" = String, Path, description = "customer id (cus_…)")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "a one-time code sent to the customer's phone", body = OtpView),
        (status = 401, description = "bad credentials", body = crate::openapi::ErrorResponse),
        (status = 404, description = "unknown, or not yours", body = crate::openapi::ErrorResponse),
        (status = 409, description = "phone_already_verified", body = crate::openapi::ErrorResponse),
        (status = 429, description = "too many codes for this phone", body = crate::openapi::ErrorResponse),
        (status = 503, description = "no SMS gateway, or not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin or merchant) Sends the customer a one-time code to verify its phone.
pub async fn start_phone(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::caller(&req, &state)?;
    let code = services::customers::start_phone_verification(&state, &caller, &path).await?;
    Ok(HttpResponse::Created().json(code))
}

#[utoipa::path(post, path = "/v1/customers/{id}/phone_verification/check", tag = "customers", request_body = CheckPhone,
    params(("id" = String, Path, description = "customer id (cus_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the code is right: the phone is verified (KYC level 1 at least)", body = CustomerView),
        (status = 400, description = "a wrong or expired code (otp_incorrect, otp_expired), or malformed", body = crate::openapi::ErrorResponse),
        (status = 401, description = "bad credentials", body = crate::openapi::ErrorResponse),
        (status = 404, description = "unknown customer or code", body = crate::openapi::ErrorResponse),
        (status = 409, description = "phone_already_verified, otp_locked, otp_already_verified", body = crate::openapi::ErrorResponse),
        (status = 413, description = "body too large", body = crate::openapi::ErrorResponse),
        (status = 415, description = "not JSON", body = crate::openapi::ErrorResponse),
        (status = 503, description = "not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin or merchant) Checks the code the customer received.
pub async fn check_phone(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::caller(&req, &state)?;
    let (body, _): (CheckPhone, _) = body::json(&req, payload, state.limits, &[]).await?;
    let view =
        services::customers::check_phone_code(&state, &caller, &actor(&req, &caller), &path, body)
            .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(post, path = "/v1/customers/{id}/identity_verification", tag = "customers", request_body = VerifyIdentity,
    params(("id" = String, Path, description = "customer id (cus_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "matched at the identity service: KYC level 2", body = CustomerView),
        (status = 400, description = "invalid_id_number (length, characters, province, birth date, checksum), or no number", body = crate::openapi::ErrorResponse),
        (status = 401, description = "bad credentials", body = crate::openapi::ErrorResponse),
        (status = 404, description = "unknown, or not yours", body = crate::openapi::ErrorResponse),
        (status = 409, description = "phone_not_verified, identity_already_verified, identity_checks_exhausted", body = crate::openapi::ErrorResponse),
        (status = 413, description = "body too large", body = crate::openapi::ErrorResponse),
        (status = 415, description = "not JSON", body = crate::openapi::ErrorResponse),
        (status = 422, description = "identity_mismatch: the service does not match the name and number", body = crate::openapi::ErrorResponse),
        (status = 503, description = "identity_service_unavailable (nothing changed), or not ready", body = crate::openapi::ErrorResponse)
    ))]
/// (admin or merchant) Verifies the customer's identity: the resident id number checked
/// here, then matched with the customer's name at the identity service.
pub async fn verify_identity(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::caller(&req, &state)?;
    let (body, _): (VerifyIdentity, _) = body::json_sensitive(&req, payload, state.limits).await?;
    let view =
        services::customers::verify_identity(&state, &caller, &actor(&req, &caller), &path, body)
            .await?;
    Ok(HttpResponse::Ok().json(view))
}

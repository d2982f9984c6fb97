//! One-time codes by SMS (`POST /v1/otp`, `POST /v1/otp/verify`); the codes and their
//! rules: `services::notifications::otp`.

use actix_web::{web, HttpRequest, HttpResponse};
use services::notifications::otp::{view, OtpView};
pub use services::notifications::otp::{CreateOtp, VerifyOtp};

use crate::error::ApiError;
use crate::state::AppState;

#[utoipa::path(post, path = "/v1/otp", tag = "otp", request_body = CreateOtp,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "code sent by SMS", body = OtpView),
        (status = 429, description = "too many codes for this phone number", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (merchant) Sends a one-time code to a phone.
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let merchant = crate::auth::merchant(&req, &state)?;
    let (body, _): (CreateOtp, _) = crate::body::json(&req, payload, state.limits, &[]).await?;
    let record = services::notifications::otp::create(&state, merchant.id, body).await?;
    Ok(HttpResponse::Created().json(view(&record)))
}

#[utoipa::path(post, path = "/v1/otp/verify", tag = "otp", request_body = VerifyOtp,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the code is right: verified (once)", body = OtpView),
        (status = 404, description = "unknown or not yours", body = crate::openapi::ErrorResponse),
        (status = 429, description = "rate limited", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (merchant) Checks a one-time code.
pub async fn verify(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let merchant = crate::auth::merchant(&req, &state)?;
    let (body, _): (VerifyOtp, _) = crate::body::json(&req, payload, state.limits, &[]).await?;
    let record = services::notifications::otp::verify(&state, merchant.id, body).await?;
    Ok(HttpResponse::Ok().json(view(&record)))
}

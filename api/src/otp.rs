//! One-time codes by SMS (`POST /v1/otp`, `POST /v1/otp/verify`): six random digits sent to
//! a phone, stored only as an HMAC under a key derived from the master key, expiring after
//! `otp_ttl_s`, and locked after `otp_attempts_max` wrong tries. Every try is durable before
//! it is answered, so a restart does not reset the count, and tries on one code take turns.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ErrorType};
use crate::notify::{self, Template};
use crate::records;
use crate::state::{new_id, now_ns, AppState};

/// How long a used or expired code's record is kept after it expires (for support).
const KEEP_AFTER_EXPIRY_NS: u64 = 24 * 3600 * 1_000_000_000;

pub use storage::records::OtpRecord;

fn otp_id_text(id: u128) -> String {
    format!("otp_{id:032x}")
}

fn code_mac(state: &AppState, id: u128, code: &str) -> [u8; 32] {
    state
        .master
        .mac(&[b"otp".as_slice(), &id.to_be_bytes(), code.as_bytes()].concat())
}

/// `POST /v1/otp`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOtp {
    /// E.164: `+` and 8 to 15 digits.
    #[schema(example = "+8613800138000")]
    phone: String,
    /// What the code confirms (1–32 of `a-z 0-9 _`; default `verify`).
    #[schema(example = "login")]
    purpose: Option<String>,
}

/// `POST /v1/otp/verify`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyOtp {
    #[schema(example = "otp_0193a1b2c3d4e5f60718293a4b5c6d7e")]
    id: String,
    #[schema(example = "042917")]
    code: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OtpView {
    id: String,
    /// The number, masked.
    phone: String,
    purpose: String,
    /// pending, verified, expired or locked.
    status: &'static str,
    expires_at: String,
    attempts_left: u32,
    /// The SMS that carried it (`GET /v1/sms/{id}` shows its delivery).
    sms_id: String,
}

fn status(r: &OtpRecord, now: u64) -> &'static str {
    if r.verified_at_ns.is_some() {
        "verified"
    } else if r.attempts >= r.attempts_max {
        "locked"
    } else if now >= r.expires_at_ns {
        "expired"
    } else {
        "pending"
    }
}

fn view(r: &OtpRecord) -> OtpView {
    OtpView {
        id: otp_id_text(r.id),
        phone: notify::mask_phone(&r.phone),
        purpose: r.purpose.clone(),
        status: status(r, now_ns()),
        expires_at: records::time_text(r.expires_at_ns),
        attempts_left: r.attempts_max.saturating_sub(r.attempts),
        sms_id: notify::sms_id_text(r.sms),
    }
}

async fn write(state: &AppState, r: &OtpRecord) -> Result<(), ApiError> {
    let expires = r.expires_at_ns.saturating_add(KEEP_AFTER_EXPIRY_NS);
    state
        .ledger()?
        .write_records(vec![records::expiring(records::otp_key(r.id), expires, r)])
        .await?;
    Ok(())
}

fn read(state: &AppState, id: u128) -> Result<Option<OtpRecord>, ApiError> {
    records::read_expiring(state.store()?, &records::otp_key(id))
}

fn outcome(o: &'static str) {
    metrics::counter!(crate::metrics::OTP, "outcome" => o).increment(1);
}

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
    notify::check_phone(&body.phone, "phone")?;
    let purpose = body.purpose.unwrap_or_else(|| "verify".to_string());
    crate::body::check_word(&purpose, "purpose")?;
    let id = new_id();
    let code = format!("{:06}", rand::random::<u32>() % 1_000_000);
    let ttl_s = state.config.otp_ttl_s;
    let sms = notify::send(
        &state,
        &body.phone,
        &Template::Otp {
            code: code.clone(),
            minutes: ttl_s.div_ceil(60),
        },
    )
    .await?;
    let record = OtpRecord {
        id,
        merchant: merchant.id,
        phone: body.phone,
        purpose,
        code_mac: code_mac(&state, id, &code),
        expires_at_ns: now_ns().saturating_add(ttl_s.saturating_mul(1_000_000_000)),
        attempts: 0,
        attempts_max: state.config.otp_attempts_max,
        verified_at_ns: None,
        sms,
    };
    write(&state, &record).await?;
    outcome("issued");
    Ok(HttpResponse::Created().json(view(&record)))
}

fn refused(status: StatusCode, code: &'static str, message: String) -> ApiError {
    ApiError::new(status, ErrorType::InvalidRequestError, code, message)
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
    let not_found = || ApiError::not_found(format!("no code {:?}", body.id)).with_param("id");
    let id = records::parse_id(&body.id, "otp_").ok_or_else(not_found)?;
    // Tries on one code take turns: each is counted durably before the next is judged.
    let claim = state.otp_claims.entry(id).or_default().clone();
    let _turn = claim.lock().await;
    let result = judge(&state, merchant.id, id, &body.code, not_found).await;
    drop(_turn);
    state
        .otp_claims
        .remove_if(&id, |_, c| std::sync::Arc::strong_count(c) <= 2);
    result
}

async fn judge(
    state: &AppState,
    merchant: u128,
    id: u128,
    code: &str,
    not_found: impl Fn() -> ApiError,
) -> Result<HttpResponse, ApiError> {
    let mut record = read(state, id)?
        .filter(|r| r.merchant == merchant)
        .ok_or_else(|| {
            outcome("unknown");
            not_found()
        })?;
    let now = now_ns();
    match status(&record, now) {
        "verified" => {
            return Err(refused(
                StatusCode::CONFLICT,
                "otp_already_verified",
                "this code was already used".into(),
            ))
        }
        "locked" => {
            outcome("locked");
            return Err(refused(
                StatusCode::CONFLICT,
                "otp_locked",
                "too many wrong tries: ask for a new code".into(),
            ));
        }
        "expired" => {
            outcome("expired");
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "otp_expired",
                "the code has expired: ask for a new one".into(),
            ));
        }
        _ => {}
    }
    let right: bool = code_mac(state, id, code).ct_eq(&record.code_mac).into();
    if right {
        record.verified_at_ns = Some(now);
        write(state, &record).await?;
        outcome("verified");
        return Ok(HttpResponse::Ok().json(view(&record)));
    }
    record.attempts += 1;
    write(state, &record).await?;
    outcome("wrong_code");
    let left = record.attempts_max.saturating_sub(record.attempts);
    Err(refused(
        StatusCode::BAD_REQUEST,
        "otp_incorrect",
        format!("the code is not right; {left} tries left"),
    )
    .with_param("code"))
}

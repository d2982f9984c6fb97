//! `Idempotency-Key`: replay the first response to a repeated request, refuse a reused key
//! with a different request (422) or while the first is in flight (409).
//!
//! The header's rules and the request's fingerprint (method, path, body) are here; the claim,
//! the record written with the effect and its retention are `services::idempotency`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use services::idempotency::{Claim, Scope};
use sha2::Digest;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

pub const HEADER: &str = "Idempotency-Key";
pub const KEY_LEN_MAX: usize = 255;
pub use services::idempotency::{Guard, RETENTION};

pub enum Begin<'a> {
    /// Run the request; with a guard when it carried a key.
    Proceed(Option<Guard<'a>>),
    /// The same request was answered before: send this.
    Replay(HttpResponse),
}

/// A JSON answer with the given status and bytes.
pub fn respond(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body)
}

/// Checks the request's key, if any: replay, refuse, or claim it for this request.
pub fn begin<'a>(
    req: &HttpRequest,
    state: &'a AppState,
    caller: &Caller,
    raw_body: &[u8],
) -> Result<Begin<'a>, ApiError> {
    begin_answering(req, state, caller, raw_body, StatusCode::CREATED)
}

/// [`begin`] for a request whose completed answer has `status` (not 201).
pub fn begin_answering<'a>(
    req: &HttpRequest,
    state: &'a AppState,
    caller: &Caller,
    raw_body: &[u8],
    status: StatusCode,
) -> Result<Begin<'a>, ApiError> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(Begin::Proceed(None));
    };
    let key = value.as_bytes();
    if key.is_empty() || key.len() > KEY_LEN_MAX || !key.iter().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            "invalid_idempotency_key",
            format!("{HEADER} must be 1 to {KEY_LEN_MAX} visible ASCII characters"),
        )
        .with_param(HEADER));
    }
    // The key is stored as sent: never a card number.
    if crate::pan::contains(&String::from_utf8_lossy(key)) {
        return Err(ApiError::invalid(
            "invalid_idempotency_key",
            format!("{HEADER} looks like it holds a card number"),
        )
        .with_param(HEADER));
    }
    let mut h = sha2::Sha256::new();
    h.update(req.method().as_str().as_bytes());
    h.update(b" ");
    h.update(req.path().as_bytes());
    h.update(b"\n");
    h.update(raw_body);
    let fingerprint: [u8; 32] = h.finalize().into();
    let scope = match caller {
        Caller::Admin => Scope::Admin,
        Caller::Merchant(m) => Scope::Merchant(m.id),
    };
    match services::idempotency::claim(state, scope, key, fingerprint, status.as_u16())? {
        Claim::New(guard) => Ok(Begin::Proceed(Some(guard))),
        Claim::Replay { tag, body } => {
            let status = StatusCode::from_u16(tag)
                .map_err(|_| ApiError::unavailable("a stored status is invalid"))?;
            let mut response = respond(status, body);
            response.headers_mut().insert(
                "idempotent-replayed".parse().expect("valid header name"),
                "true".parse().expect("valid header value"),
            );
            Ok(Begin::Replay(response))
        }
    }
}

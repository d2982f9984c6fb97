//! `Idempotency-Key`: replay the first response to a repeated request, refuse a reused key
//! with a different request (422) or while the first is in flight (409).
//!
//! The record — request fingerprint, status, response body — is written in the same durable
//! unit as the effect it guards (handlers add [`Guard::record`] to their records), so no crash
//! can leave the effect without its key, or the key without its effect. Records are kept
//! [`RETENTION`] (≥ 24 h, across restarts) and then dropped by compaction: bounded storage.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use sha2::Digest;
use storage::codec::{self, Kind};
use storage::schema::{expiring_value, split_expiring};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorType};
use crate::state::{now_ns, AppState};

pub const HEADER: &str = "Idempotency-Key";
pub const KEY_LEN_MAX: usize = 255;
/// How long a key is remembered.
pub const RETENTION: Duration = Duration::from_secs(48 * 3600);

use storage::records::IdemRecord;

/// An idempotent request in progress: holds the in-flight claim until dropped.
pub struct Guard<'a> {
    state: &'a AppState,
    store_key: Vec<u8>,
    fingerprint: [u8; 32],
}

impl Guard<'_> {
    /// The record to write with the effect: this request's answer.
    pub fn record(&self, status: StatusCode, body: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let record = IdemRecord {
            fingerprint: self.fingerprint,
            status: status.as_u16(),
            body: body.to_vec(),
        };
        let expires = now_ns().saturating_add(RETENTION.as_nanos() as u64);
        (
            self.store_key.clone(),
            expiring_value(expires, &codec::encode(Kind::Aux, &record)),
        )
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.state.idempotency_claims.remove(&self.store_key);
    }
}

pub enum Begin<'a> {
    /// Run the request; with a guard when it carried a key.
    Proceed(Option<Guard<'a>>),
    /// The same request was answered before: send this.
    Replay(HttpResponse),
}

fn scope(caller: &Caller) -> [u8; 17] {
    let mut s = [0u8; 17];
    if let Caller::Merchant(m) = caller {
        s[0] = 1;
        s[1..].copy_from_slice(&m.id.to_be_bytes());
    }
    s
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
    let store_key = storage::records::idempotency_key(&scope(caller), key);
    let mut h = sha2::Sha256::new();
    h.update(req.method().as_str().as_bytes());
    h.update(b" ");
    h.update(req.path().as_bytes());
    h.update(b"\n");
    h.update(raw_body);
    let fingerprint: [u8; 32] = h.finalize().into();

    match state.idempotency_claims.entry(store_key.clone()) {
        dashmap::mapref::entry::Entry::Occupied(_) => {
            crate::metrics::idempotency("in_progress");
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                ErrorType::IdempotencyError,
                "idempotency_key_in_use",
                "a request with this idempotency key is still in progress; retry after it finishes",
            ));
        }
        dashmap::mapref::entry::Entry::Vacant(slot) => {
            slot.insert(());
        }
    }
    let guard = Guard {
        state,
        store_key,
        fingerprint,
    };
    let stored = state.store()?.aux(&guard.store_key)?;
    let Some(value) = stored else {
        crate::metrics::idempotency("new");
        return Ok(Begin::Proceed(Some(guard)));
    };
    let (expires_at, bytes) = split_expiring(&value)
        .ok_or_else(|| ApiError::unavailable("a stored idempotency record is malformed"))?;
    if expires_at < now_ns() {
        crate::metrics::idempotency("new");
        return Ok(Begin::Proceed(Some(guard)));
    }
    let record: IdemRecord = codec::decode(Kind::Aux, bytes).map_err(|e| {
        ApiError::unavailable(format!("a stored idempotency record does not decode: {e}"))
    })?;
    if record.fingerprint != guard.fingerprint {
        crate::metrics::idempotency("reused");
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::IdempotencyError,
            "idempotency_key_reused",
            "this idempotency key was used with a different request",
        ));
    }
    let status = StatusCode::from_u16(record.status)
        .map_err(|_| ApiError::unavailable("a stored status is invalid"))?;
    let mut response = respond(status, record.body);
    response.headers_mut().insert(
        "idempotent-replayed".parse().expect("valid header name"),
        "true".parse().expect("valid header value"),
    );
    crate::metrics::idempotency("replayed");
    Ok(Begin::Replay(response))
}

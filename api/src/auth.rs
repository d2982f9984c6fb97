//! Who is calling: the operator (admin token) or a merchant (secret key, and its request
//! signature where the merchant requires one).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest};
use subtle::ConstantTimeEq;

use crate::config::{check_token, Secret};
use crate::error::ApiError;
use crate::records;
use crate::signing;
use crate::state::{now_ns, AppState};

pub use services::Caller;

pub use services::merchants::key_sha256;

/// Authenticates the operator or a merchant (by its secret key).
pub fn caller(req: &HttpRequest, state: &AppState) -> Result<Caller, ApiError> {
    let token = bearer(req)?;
    if bool::from(
        token
            .as_bytes()
            .ct_eq(state.admin_token.expose().as_bytes()),
    ) {
        return Ok(Caller::Admin);
    }
    if operator(req).is_some() {
        return Ok(Caller::Admin);
    }
    // The signature middleware already looked this key up: its merchant is taken, not
    // copied (a caller asked for twice looks the key up again).
    let known = req.extensions_mut().remove::<KeyOwner>();
    let merchant = match known {
        Some(KeyOwner(m)) => Some(m),
        None => services::merchants::by_key(state, token)?.map(Box::new),
    };
    if let Some(m) = merchant {
        crate::access::note_merchant(req, &crate::routes::merchants::merchant_id_text(m.id));
        state.rate.merchant.check(&m.id)?;
        return Ok(Caller::Merchant(m));
    }
    Err(ApiError::unauthenticated("the bearer token is not valid"))
}

/// The merchant whose working key the request's bearer token is (set by
/// [`verify_signature`], so the handler does not look it up again).
struct KeyOwner(Box<records::Merchant>);

/// Checks `Rongpay-Signature` on requests of merchants that require it (or that send one
/// anyway), before any handler runs; see `crate::signing`. The body is read here (with the
/// usual size limit and deadline) and handed on to the handler unchanged.
pub async fn verify_signature(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let merchant = match req.app_data::<web::Data<AppState>>() {
        Some(state) => {
            let token = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            match token.map(|t| services::merchants::by_key(state, t)) {
                Some(Ok(Some(m))) => {
                    let m = Box::new(m);
                    if m.auth.0.require_signature || req.headers().contains_key(signing::HEADER) {
                        Some((state.clone(), m))
                    } else {
                        req.extensions_mut().insert(KeyOwner(m));
                        None
                    }
                }
                // Not a merchant (or the store is not ready): the handler answers.
                _ => None,
            }
        }
        None => None,
    };
    if let Some((state, merchant)) = merchant {
        if let Err(e) = check_signature(&state, &mut req, &merchant).await {
            let response = actix_web::ResponseError::error_response(&e);
            return Ok(req.into_response(response).map_into_right_body());
        }
        req.extensions_mut().insert(KeyOwner(merchant));
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

async fn check_signature(
    state: &AppState,
    req: &mut ServiceRequest,
    merchant: &records::Merchant,
) -> Result<(), ApiError> {
    let header = req
        .headers()
        .get(signing::HEADER)
        .ok_or_else(|| {
            signing::invalid("this merchant must sign its requests: send Rongpay-Signature")
        })?
        .to_str()
        .map_err(|_| signing::invalid("Rongpay-Signature is not visible ASCII"))?
        .to_string();
    let sig = signing::parse(&header)?;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let payload = req.parts_mut().1.take();
    let body = crate::body::read_body(payload, state.limits_for(req.path()), declared).await?;
    req.set_payload(actix_web::dev::Payload::from(body.clone()));
    let now = now_ns();
    let secrets = services::merchants::signing_secrets(state, merchant, now)?;
    let target = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or_else(|| req.path());
    signing::verify(
        &sig,
        now / 1_000_000_000,
        &secrets,
        req.method().as_str(),
        target,
        &body,
    )?;
    state
        .nonces
        .remember(merchant.id, sig.nonce, now / 1_000_000_000)
}

/// Authenticates a merchant; the operator is refused here (it acts through admin routes).
pub fn merchant(req: &HttpRequest, state: &AppState) -> Result<records::Merchant, ApiError> {
    match caller(req, state)? {
        Caller::Merchant(m) => Ok(*m),
        Caller::Admin => Err(not_a_merchant()),
    }
}

/// The merchant of a route that takes a merchant's key, borrowed from its [`caller`] (which
/// idempotency and visibility take too) rather than copied out of it.
pub fn merchant_of(caller: &Caller) -> Result<&records::Merchant, ApiError> {
    caller.merchant().ok_or_else(not_a_merchant)
}

fn not_a_merchant() -> ApiError {
    ApiError::unauthenticated("this route takes a merchant's secret key, not the admin token")
}

/// The bearer token of a request, or a 401 saying what is wrong with the header.
pub fn bearer(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthenticated(
            "missing Authorization header; send \"Authorization: Bearer <token>\"",
        )
    })?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthenticated("the Authorization header is not visible ASCII"))?;
    value
        .strip_prefix("Bearer ")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthenticated("the Authorization header must be \"Bearer <token>\"")
        })
}

/// Authenticates the request as the operator. Compared in constant time.
pub fn admin(req: &HttpRequest, admin_token: &Secret) -> Result<Caller, ApiError> {
    match bearer_is(req, admin_token) {
        Ok(()) => Ok(Caller::Admin),
        Err(e) => match operator(req) {
            Some(_) => Ok(Caller::Admin),
            None => Err(e),
        },
    }
}

/// The named operator (`operators`) whose token the request's bearer is, if any: compared
/// by SHA-256, in constant time per operator.
pub fn operator(req: &HttpRequest) -> Option<String> {
    let state = req.app_data::<actix_web::web::Data<AppState>>()?;
    if state.operators.is_empty() {
        return None;
    }
    let token = bearer(req).ok()?;
    let digest = key_sha256(token);
    let mut found = None;
    for (name, hash) in &state.operators {
        if bool::from(digest.as_slice().ct_eq(hash.as_slice())) {
            found = Some(name.clone());
        }
    }
    found
}

/// The request's bearer token is `expected` (compared in constant time), else 401.
pub fn bearer_is(req: &HttpRequest, expected: &Secret) -> Result<(), ApiError> {
    let token = bearer(req)?;
    if bool::from(token.as_bytes().ct_eq(expected.expose().as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::unauthenticated("the bearer token is not valid"))
    }
}

/// The operator token: configured, or read from `<data_dir>/admin_token`, or generated
/// there (mode 0600) on first start. The path is returned when it was generated.
pub fn resolve_admin_token(
    configured: Option<&Secret>,
    data_dir: &Path,
) -> std::io::Result<(Secret, Option<PathBuf>)> {
    resolve_secret(configured, data_dir, "admin_token", check_token, || {
        format!(
            "adm_{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        )
    })
}

/// A secret setting: configured, else read from `<data_dir>/<file>`, else generated into
/// that file (mode 0600, synced) on first start. The path is returned when it was generated.
pub fn resolve_secret(
    configured: Option<&Secret>,
    data_dir: &Path,
    file: &str,
    check: fn(&str) -> Result<(), String>,
    generate: fn() -> String,
) -> std::io::Result<(Secret, Option<PathBuf>)> {
    if let Some(secret) = configured {
        return Ok((secret.clone(), None));
    }
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let secret = text.trim().to_string();
            check(&secret)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
            Ok((Secret::new(secret), None))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = generate();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            f.write_all(secret.as_bytes())?;
            f.sync_all()?;
            Ok((Secret::new(secret), Some(path)))
        }
        Err(e) => Err(e),
    }
}

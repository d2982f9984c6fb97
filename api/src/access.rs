//! The access log and the request span: every request runs inside a `request` span carrying
//! its request id (and, once known, the merchant and the payment), so every event logged
//! while serving it — in the handler, the ledger's tasks, the account actors — can be found
//! by either id; and every answered request gets one `access` line: request id, client,
//! method, route pattern, status, error code, latency, merchant, payment.
//!
//! Paths and queries are not logged (they may carry anything a client typed); ids are
//! logged in their public form.

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::HttpMessage;

/// The request's id: the client's `X-Request-Id` when it is 1–64 of `A-Za-z0-9._-`, else
/// generated. Answered in the `Request-Id` header.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// What a handler learned about the request that the access line should say.
#[derive(Clone, Debug, Default)]
pub struct Noted {
    pub merchant: Option<String>,
    pub payment: Option<String>,
}

/// The error code of an error answer (set by `ApiError::error_response`).
#[derive(Clone, Copy, Debug)]
pub struct ErrorCode(pub &'static str);

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A process-unique id with a random prefix per process, so ids of two payd processes
/// (or one before and after a restart) do not collide. The dash keeps digit runs short: a
/// long one could look like a card number to a log scanner.
fn generated() -> String {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(rand::random::<u32>);
    format!(
        "req_{prefix:08x}-{:x}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(generated)
}

/// The span every request is served in; `merchant` and `payment_id` are filled in by
/// [`note_merchant`] and [`note_payment`].
pub fn span(request_id: &str) -> tracing::Span {
    tracing::info_span!(
        "request",
        request_id = %request_id,
        merchant = tracing::field::Empty,
        payment_id = tracing::field::Empty
    )
}

/// The request is a merchant's (called once it is authenticated).
pub fn note_merchant(req: &actix_web::HttpRequest, merchant: &str) {
    tracing::Span::current().record("merchant", merchant);
    req.extensions_mut()
        .get_or_insert_with(Noted::default)
        .merchant = Some(merchant.to_string());
}

/// The request is about this payment.
pub fn note_payment(req: &actix_web::HttpRequest, payment: &str) {
    tracing::Span::current().record("payment_id", payment);
    req.extensions_mut()
        .get_or_insert_with(Noted::default)
        .payment = Some(payment.to_string());
}

/// The access line of an answered request.
pub fn log<B>(res: &ServiceResponse<B>, route: Option<&str>, request_id: &str, latency_us: u64) {
    let req = res.request();
    let noted = req.extensions().get::<Noted>().cloned().unwrap_or_default();
    let error = res.response().extensions().get::<ErrorCode>().map(|c| c.0);
    let client = req.peer_addr().map(|a| a.ip().to_string());
    tracing::info!(
        target: "access",
        request_id,
        client = client.as_deref().unwrap_or("-"),
        method = req.method().as_str(),
        route = route.unwrap_or("unmatched"),
        status = res.status().as_u16(),
        error_code = error,
        latency_us,
        merchant = noted.merchant.as_deref(),
        payment_id = noted.payment.as_deref(),
        "request"
    );
}

//! Server-rendered pages for people (issue #19): the customer checkout and the merchant
//! console. Templates are maud
//! (compiled, escaped by default); the pages carry no script at all and one stylesheet
//! served by payd, under a Content-Security-Policy that allows nothing else, and refuse to
//! be framed.
//!
//! Forms post `application/x-www-form-urlencoded` bodies of at most [`FORM_BYTES_MAX`]. A
//! post must carry the page's token (see `services::checkout::csrf_token`), and one whose
//! `Origin` or `Sec-Fetch-Site` says it came from another site is refused before it is read.

pub mod checkout;
pub mod console;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use serde::de::DeserializeOwned;

use crate::body::{read_body, BodyLimits};
use crate::error::ApiError;

/// Largest form body.
pub const FORM_BYTES_MAX: usize = 8 * 1024;

/// What every page answers with, beside its body: nothing but our stylesheet and our own
/// forms, never in a frame, never cached, no referrer leaving the site.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn respond(status: StatusCode) -> HttpResponseBuilder {
    let mut b = HttpResponse::build(status);
    b.insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    b
}

/// An HTML page.
pub fn html(status: StatusCode, body: maud::Markup) -> HttpResponse {
    respond(status)
        .content_type("text/html; charset=utf-8")
        .body(body.into_string())
}

/// The value of cookie `name` in the request's `Cookie` headers. The pages' cookies hold
/// hex: no quoting or escaping to undo.
pub fn cookie_value<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value for a page's session: only under `path`, not readable by scripts,
/// not sent with other sites' posts, `Secure` when payd is reached over https.
pub fn session_cookie(
    public_url: &str,
    name: &str,
    path: &str,
    value: &str,
    max_age_s: u64,
) -> String {
    let secure = if public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path={path}; Max-Age={max_age_s}; HttpOnly; SameSite=Lax{secure}")
}

/// Refuses a post that says it came from another site (the form token is checked after
/// the body is read).
pub fn same_site(req: &HttpRequest) -> Result<(), ApiError> {
    let headers = req.headers();
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // A browser that says where the post came from (`Sec-Fetch-Site`) is believed; an
    // older one is judged by `Origin` (an opaque "null" one cannot be judged: the token
    // decides).
    let cross = site == "cross-site" || site == "same-site";
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let foreign_origin = site.is_empty()
        && headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|o| {
                let authority = o.split_once("://").map_or("", |(_, a)| a);
                o != "null" && authority != host
            });
    if cross || foreign_origin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            crate::error::ErrorType::AuthenticationError,
            "cross_site_request",
            "this form was not sent from this site",
        ));
    }
    Ok(())
}

/// Reads a form body into `T` (at most [`FORM_BYTES_MAX`] bytes, urlencoded). The error
/// never quotes the input (a form may hold a card number).
pub async fn form<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: actix_web::web::Payload,
    timeout: std::time::Duration,
) -> Result<T, ApiError> {
    let essence = crate::body::content_type_essence(req);
    if essence.as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            crate::error::ErrorType::InvalidRequestError,
            "unsupported_media_type",
            "a form must be application/x-www-form-urlencoded",
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let limits = BodyLimits {
        limit_bytes: FORM_BYTES_MAX,
        timeout,
    };
    let bytes = read_body(payload, limits, declared).await?;
    serde_urlencoded::from_bytes(&bytes)
        .map_err(|_| ApiError::invalid("invalid_form", "the form could not be read"))
}

//! The HTTP layer's own metrics: each answered request by route pattern, method and status.
//! Every metric's name, HELP text, buckets and the business recording helpers live in
//! `services::metrics`.

use std::borrow::Cow;
use std::time::Duration;

use metrics::counter;
pub use services::metrics::*;

/// Route patterns get a label of their own up to this many; beyond, "other".
pub const ROUTES_MAX: usize = 256;

/// The route pattern as a `&'static str`, interned once per pattern: a label that borrows
/// costs the request no allocation.
fn route_label(pattern: &str) -> &'static str {
    static ROUTES: std::sync::OnceLock<dashmap::DashMap<String, &'static str>> =
        std::sync::OnceLock::new();
    let routes = ROUTES.get_or_init(Default::default);
    if let Some(r) = routes.get(pattern) {
        return *r;
    }
    if routes.len() >= ROUTES_MAX {
        return "other";
    }
    *routes
        .entry(pattern.to_string())
        .or_insert_with(|| Box::leak(pattern.to_string().into_boxed_str()))
}

/// The label of a route pattern, method or status: borrowed when it is one we know.
fn method_label(m: &actix_web::http::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

fn status_label(code: u16) -> Cow<'static, str> {
    const KNOWN: [(u16, &str); 16] = [
        (200, "200"),
        (201, "201"),
        (204, "204"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (408, "408"),
        (409, "409"),
        (413, "413"),
        (422, "422"),
        (429, "429"),
        (431, "431"),
        (500, "500"),
        (503, "503"),
    ];
    match KNOWN.iter().find(|(c, _)| *c == code) {
        Some((_, text)) => Cow::Borrowed(text),
        None => Cow::Owned(code.to_string()),
    }
}

/// One answered request.
pub fn http_request(
    pattern: Option<&str>,
    method: &actix_web::http::Method,
    status: u16,
    elapsed: Duration,
) {
    let route = pattern.map_or("unmatched", route_label);
    let method = method_label(method);
    match status_label(status) {
        Cow::Borrowed(status) => count(
            HTTP_REQUESTS,
            &[("route", route), ("method", method), ("status", status)],
            1,
        ),
        Cow::Owned(status) => {
            counter!(HTTP_REQUESTS, "route" => route, "method" => method, "status" => status)
                .increment(1)
        }
    }
    observe(
        HTTP_SECONDS,
        &[("route", route), ("method", method)],
        elapsed.as_secs_f64(),
    );
}

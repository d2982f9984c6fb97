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
#[derive(Debug, Default)]
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
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(|| format!("req_{:08x}-", rand::random::<u32>()));
    with_counter(prefix, NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `prefix` then `n` in lower-case hex without leading zeros (what `{:x}` writes), in one
/// allocation: every request without its own id gets one (`format!`'s padding pass was
/// ≈ 1% of a balance payment's CPU with the payment's own ids, docs/BENCHMARKS.md).
fn with_counter(prefix: &str, n: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (64 - n.leading_zeros()).div_ceil(4).max(1);
    let mut id = String::with_capacity(prefix.len() + digits as usize);
    id.push_str(prefix);
    for i in (0..digits).rev() {
        id.push(char::from(HEX[((n >> (4 * i)) & 0xf) as usize]));
    }
    id
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

/// The span every request is served in; `payment_id` is recorded on it by
/// [`note_payment`] (one record: with the JSON formatter each re-renders the span's fields,
/// ~0.6 µs, so the merchant goes to the access line only).
pub fn span(request_id: &str) -> tracing::Span {
    tracing::info_span!(
        "request",
        request_id = %request_id,
        payment_id = tracing::field::Empty
    )
}

/// The request is a merchant's (called once it is authenticated).
pub fn note_merchant(req: &actix_web::HttpRequest, merchant: &str) {
    req.extensions_mut()
        .get_or_insert_with(Noted::default)
        .merchant = Some(merchant.to_string());
}

/// The request is about this payment: its span (so every line logged while serving it, in
/// the ledger's task and the account actors too) and its access line say so.
pub fn note_payment(req: &actix_web::HttpRequest, payment: &str) {
    tracing::Span::current().record("payment_id", payment);
    req.extensions_mut()
        .get_or_insert_with(Noted::default)
        .payment = Some(payment.to_string());
}

/// Where JSON lines go when payd logs JSON: access lines are then written here directly,
/// in the shape of tracing's JSON lines, for a fraction of the cost of going through the
/// formatter (which builds the line from a field visitor). Unset: through `tracing`.
static JSON_WRITER: std::sync::OnceLock<crate::logwriter::LogWriter> = std::sync::OnceLock::new();

/// payd logs JSON to `writer` (the same writer its subscriber uses, so lines stay whole and
/// in order).
pub fn write_json_to(writer: crate::logwriter::LogWriter) {
    let _ = JSON_WRITER.set(writer);
}

/// The fields of an access line.
pub struct Line<'a> {
    pub request_id: &'a str,
    pub client: Option<std::net::IpAddr>,
    pub method: &'a str,
    pub route: &'a str,
    pub status: u16,
    pub error_code: Option<&'a str>,
    pub latency_us: u64,
    pub merchant: Option<&'a str>,
    pub payment_id: Option<&'a str>,
}

fn json_str(out: &mut String, s: &str) {
    // Writing into a String cannot fail.
    let _ = crate::logfmt::escape(out, s);
}

impl Line<'_> {
    /// The line as tracing's JSON formatter writes an event (flattened), newline included.
    pub fn json(&self, at: std::time::SystemTime) -> String {
        use std::fmt::Write;
        // A merchant's payment's line is ≈ 325 bytes (its two ids 36 each): room for it, an
        // IPv6 client and an error code, so that no line is copied to grow.
        let mut out = String::with_capacity(512);
        let _ = write!(
            out,
            "{{\"timestamp\":\"{}\",\"level\":\"INFO\",\"message\":\"request\",\"request_id\":",
            humantime::format_rfc3339_micros(at)
        );
        json_str(&mut out, self.request_id);
        out.push_str(",\"client\":");
        match self.client {
            // An address's text is digits, dots, colons and hex letters: nothing to escape,
            // and no string of its own to render it into.
            Some(ip) => {
                let _ = write!(out, "\"{ip}\"");
            }
            None => out.push_str("\"-\""),
        }
        out.push_str(",\"method\":");
        json_str(&mut out, self.method);
        out.push_str(",\"route\":");
        json_str(&mut out, self.route);
        let _ = write!(out, ",\"status\":{}", self.status);
        if let Some(code) = self.error_code {
            out.push_str(",\"error_code\":");
            json_str(&mut out, code);
        }
        let _ = write!(out, ",\"latency_us\":{}", self.latency_us);
        if let Some(m) = self.merchant {
            out.push_str(",\"merchant\":");
            json_str(&mut out, m);
        }
        if let Some(p) = self.payment_id {
            out.push_str(",\"payment_id\":");
            json_str(&mut out, p);
        }
        out.push_str(",\"target\":\"access\"}\n");
        out
    }

    /// Writes the line: directly when payd logs JSON, else through `tracing`.
    pub fn write(&self) {
        if !tracing::enabled!(target: "access", tracing::Level::INFO) {
            return;
        }
        match JSON_WRITER.get() {
            Some(writer) => {
                use std::io::Write;
                let mut w = tracing_subscriber::fmt::MakeWriter::make_writer(writer);
                let _ = w.write_all(self.json(std::time::SystemTime::now()).as_bytes());
            }
            None => tracing::info!(
                target: "access",
                request_id = self.request_id,
                client = self.client.map_or_else(|| "-".to_string(), |ip| ip.to_string()),
                method = self.method,
                route = self.route,
                status = self.status,
                error_code = self.error_code,
                latency_us = self.latency_us,
                merchant = self.merchant,
                payment_id = self.payment_id,
                "request"
            ),
        }
    }
}

/// The access line of an answered request.
pub fn log<B>(res: &ServiceResponse<B>, route: Option<&str>, request_id: &str, latency_us: u64) {
    let req = res.request();
    let extensions = req.extensions();
    let noted = extensions.get::<Noted>();
    let error = res.response().extensions().get::<ErrorCode>().map(|c| c.0);
    Line {
        request_id,
        client: req.peer_addr().map(|a| a.ip()),
        method: req.method().as_str(),
        route: route.unwrap_or("unmatched"),
        status: res.status().as_u16(),
        error_code: error,
        latency_us,
        merchant: noted.and_then(|n| n.merchant.as_deref()),
        payment_id: noted.and_then(|n| n.payment.as_deref()),
    }
    .write();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_the_counter_in_hex_after_the_prefix() {
        for n in [
            0,
            1,
            9,
            10,
            15,
            16,
            255,
            256,
            0xabc_def,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            assert_eq!(
                with_counter("req_0000abcd-", n),
                format!("req_0000abcd-{n:x}")
            );
        }
        let (a, b) = (generated(), generated());
        assert!(
            a.starts_with("req_") && a.len() > "req_12345678-".len(),
            "{a}"
        );
        assert_eq!(a[..13], b[..13], "one prefix per process");
        assert_ne!(a, b);
    }

    #[test]
    fn the_direct_line_is_the_json_tracing_writes() {
        let line = Line {
            request_id: "req_1-2",
            client: Some(std::net::Ipv4Addr::LOCALHOST.into()),
            method: "POST",
            route: "/v1/payments",
            status: 201,
            error_code: None,
            latency_us: 621,
            merchant: Some("mch_1"),
            payment_id: Some("pay_\"x\\\n"),
        };
        let text = line
            .json(std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_795_665_000_123_456));
        assert!(text.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["timestamp"], "2026-11-26T03:50:00.123456Z");
        assert_eq!(
            (
                v["level"].as_str(),
                v["target"].as_str(),
                v["message"].as_str()
            ),
            (Some("INFO"), Some("access"), Some("request"))
        );
        assert_eq!(
            (v["status"].as_u64(), v["latency_us"].as_u64()),
            (Some(201), Some(621))
        );
        assert_eq!(v["payment_id"], "pay_\"x\\\n");
        assert!(v.get("error_code").is_none());
    }
}

//! Simulators of what payd talks to, for tests, benchmarks and development on one machine.
//! Tooling, not the server: the server crates never depend on this one (a test of the
//! dependency rules checks it). They speak the protocols defined by the services that use
//! them, so a change of protocol is made once.
//!
//! - [`channel`]: `channel-sim`, banks and third-party channels (`services::channels::wire`).
//! - [`identity`]: `identity-sim`, a name/number match service
//!   (`services::customers::identity`).
//! - [`sms`]: `sms-sim`, an SMS gateway (`services::notifications::wire`).

pub mod channel;

/// An HTTP client for a simulator's own calls back to payd (notifications, delivery
/// receipts): payd's own TLS configuration (`services::tls`), giving up after `timeout`.
pub fn http_client(timeout: std::time::Duration) -> reqwest::Client {
    let tls = services::tls::client_config(None).expect("the bundled roots");
    services::tls::reqwest_builder(tls)
        .timeout(timeout)
        .build()
        .expect("an HTTP client")
}

/// Whether `req` carries `Authorization: Bearer <key>` (compared in constant time): how the
/// simulated providers check payd's API key.
pub fn bearer_ok(req: &actix_web::HttpRequest, key: &str) -> bool {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|k| bool::from(subtle::ConstantTimeEq::ct_eq(k.as_bytes(), key.as_bytes())))
}
pub mod identity;
pub mod sms;

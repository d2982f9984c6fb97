//! Signed merchant requests (issue #6).
//!
//! A merchant may be set to require signatures (`PATCH /v1/merchants/{id}`
//! `{"require_signature": true}`); a request may also carry one unasked, and is then
//! checked the same way. The header:
//!
//! `Rongpay-Signature: t=<unix seconds>,n=<nonce>,v1=<hex HMAC-SHA256>`
//!
//! over the bytes `t "." n "." METHOD "." path-and-query "." body` with one of the
//! merchant's signing secrets. Refused with 401 and a precise code:
//! - `invalid_signature`: missing where required, malformed, or no active secret matches
//!   (compared in constant time);
//! - `signature_expired`: `t` more than [`SKEW_S`] from our clock, either way;
//! - `nonce_reused`: this merchant already sent this nonce within twice that window.
//!
//! Nonces are remembered only after the signature verified (so nobody but the merchant can
//! fill the memory), for 2 × [`SKEW_S`], at most [`NONCES_MAX`]: when full, new signed
//! requests are answered `503 overloaded` rather than forgetting a nonce early (which would
//! let a replay through).

use std::time::Duration;

use actix_web::http::StatusCode;
use hmac::{KeyInit, Mac};

use crate::error::{ApiError, ErrorType};
use crate::secret::Secret;

/// Largest accepted distance between the signature's time and ours, in seconds.
pub const SKEW_S: u64 = 300;

/// Nonces remembered at once (each for 2 × `SKEW_S`).
pub const NONCES_MAX: usize = 1_000_000;

/// Longest nonce, in bytes.
pub const NONCE_LEN_MAX: usize = 64;

pub const HEADER: &str = "rongpay-signature";

/// A parsed `Rongpay-Signature` header.
#[derive(Debug, PartialEq, Eq)]
pub struct Signature<'a> {
    pub t: u64,
    pub nonce: &'a str,
    /// Every `v1=` given (a client may sign with more than one secret while rotating).
    pub v1: Vec<[u8; 32]>,
}

fn unauthenticated(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorType::AuthenticationError,
        code,
        message,
    )
}

pub fn invalid(message: impl Into<String>) -> ApiError {
    unauthenticated("invalid_signature", message)
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// Parses the header; the error says what is wrong with it (never echoing a MAC).
pub fn parse(header: &str) -> Result<Signature<'_>, ApiError> {
    let (mut t, mut nonce, mut v1) = (None, None, Vec::new());
    for part in header.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or_else(|| {
            invalid("Rongpay-Signature must be t=<unix seconds>,n=<nonce>,v1=<hex>")
        })?;
        match k {
            "t" if t.is_none() => {
                t = Some(v.parse::<u64>().map_err(|_| {
                    invalid(format!("Rongpay-Signature t={v:?} is not unix seconds"))
                })?)
            }
            "n" if nonce.is_none() => {
                if v.is_empty()
                    || v.len() > NONCE_LEN_MAX
                    || !v.bytes().all(|b| b.is_ascii_graphic() && b != b',')
                {
                    return Err(invalid(format!(
                        "Rongpay-Signature n must be 1 to {NONCE_LEN_MAX} visible ASCII characters"
                    )));
                }
                nonce = Some(v);
            }
            "v1" if v1.len() < 4 => v1.push(
                hex32(v).ok_or_else(|| invalid("Rongpay-Signature v1 must be 64 hex digits"))?,
            ),
            _ => {
                return Err(invalid(format!(
                    "Rongpay-Signature has an unexpected or repeated part {k:?}"
                )))
            }
        }
    }
    match (t, nonce, v1.is_empty()) {
        (Some(t), Some(nonce), false) => Ok(Signature { t, nonce, v1 }),
        _ => Err(invalid(
            "Rongpay-Signature needs t=<unix seconds>, n=<nonce> and v1=<hex>",
        )),
    }
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn mac(secret: &[u8], t: u64, nonce: &str, method: &str, target: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(nonce.as_bytes());
    mac.update(b".");
    mac.update(method.as_bytes());
    mac.update(b".");
    mac.update(target.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value a client sends (also what tests and the load generator use).
pub fn sign(secret: &[u8], t: u64, nonce: &str, method: &str, target: &str, body: &[u8]) -> String {
    let tag = mac(secret, t, nonce, method, target, body)
        .finalize()
        .into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},n={nonce},v1={hex}")
}

/// Checks a parsed signature against the request and the merchant's active secrets:
/// time window, then the MACs (constant time). The nonce is the caller's to check and
/// remember (after this succeeds).
pub fn verify(
    sig: &Signature<'_>,
    now_s: u64,
    secrets: &[Secret<Vec<u8>>],
    method: &str,
    target: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    if sig.t.abs_diff(now_s) > SKEW_S {
        return Err(unauthenticated(
            "signature_expired",
            format!(
                "the signature's time t={} is more than {SKEW_S} s from the server's ({now_s})",
                sig.t
            ),
        ));
    }
    for secret in secrets {
        let expected = mac(secret.expose(), sig.t, sig.nonce, method, target, body);
        for given in &sig.v1 {
            if expected.clone().verify_slice(given).is_ok() {
                return Ok(());
            }
        }
    }
    Err(invalid(
        "the signature does not match the request with any of the merchant's signing secrets",
    ))
}

/// Nonces seen per merchant, each with when it may be forgotten (unix seconds).
#[derive(Default)]
pub struct Nonces {
    seen: dashmap::DashMap<(u128, Box<str>), u64, foldhash::fast::RandomState>,
}

impl Nonces {
    /// Remembers `nonce` of `merchant` until `now_s + 2 × SKEW_S`; an error if it was seen.
    pub fn remember(&self, merchant: u128, nonce: &str, now_s: u64) -> Result<(), ApiError> {
        if self.seen.len() >= NONCES_MAX {
            return Err(ApiError::overloaded("signed-request nonces"));
        }
        match self.seen.entry((merchant, nonce.into())) {
            dashmap::Entry::Occupied(seen) if *seen.get() > now_s => Err(unauthenticated(
                "nonce_reused",
                format!("the nonce {nonce:?} was already used; sign each request with a new one"),
            )),
            dashmap::Entry::Occupied(mut stale) => {
                stale.insert(now_s + 2 * SKEW_S);
                Ok(())
            }
            dashmap::Entry::Vacant(v) => {
                v.insert(now_s + 2 * SKEW_S);
                Ok(())
            }
        }
    }

    /// Forgets nonces past their time.
    pub fn sweep(&self, now_s: u64) {
        self.seen.retain(|_, until| *until > now_s);
        self.seen.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// How long a nonce is kept.
pub const NONCE_KEEP: Duration = Duration::from_secs(2 * SKEW_S);

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"ss_0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signed_request_verifies_and_any_change_breaks_it() {
        let header = sign(SECRET, 1_000, "n1", "POST", "/v1/payments", b"{}");
        let sig = parse(&header).unwrap();
        assert_eq!((sig.t, sig.nonce), (1_000, "n1"));
        let ok = |method, target, body: &[u8], secrets: &[Secret<Vec<u8>>], now| {
            verify(&sig, now, secrets, method, target, body).map_err(|e| e.code)
        };
        let secrets = vec![Secret::new(b"other".to_vec()), Secret::new(SECRET.to_vec())];
        assert_eq!(ok("POST", "/v1/payments", b"{}", &secrets, 1_000), Ok(()));
        assert_eq!(ok("POST", "/v1/payments", b"{}", &secrets, 1_300), Ok(()));
        assert_eq!(ok("POST", "/v1/payments", b"{}", &secrets, 700), Ok(()));
        for (method, target, body) in [
            ("GET", "/v1/payments", b"{}".as_slice()),
            ("POST", "/v1/payments?x=1", b"{}"),
            ("POST", "/v1/payments", b"{ }"),
        ] {
            assert_eq!(
                ok(method, target, body, &secrets, 1_000),
                Err("invalid_signature")
            );
        }
        assert_eq!(
            ok(
                "POST",
                "/v1/payments",
                b"{}",
                &[Secret::new(b"other".to_vec())],
                1_000
            ),
            Err("invalid_signature")
        );
        assert_eq!(
            ok("POST", "/v1/payments", b"{}", &secrets, 1_301),
            Err("signature_expired")
        );
        assert_eq!(
            ok("POST", "/v1/payments", b"{}", &secrets, 699),
            Err("signature_expired")
        );
    }

    #[test]
    fn malformed_headers_are_named() {
        for bad in [
            "",
            "t=1",
            "t=1,n=a",
            "t=x,n=a,v1=00",
            "t=1,n=,v1=0000000000000000000000000000000000000000000000000000000000000000",
            "t=1,t=2,n=a,v1=0000000000000000000000000000000000000000000000000000000000000000",
            "t=1,n=a,v1=zz00000000000000000000000000000000000000000000000000000000000000",
            "t=1,n=a,v9=0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert_eq!(
                parse(bad).map(|_| ()).unwrap_err().code,
                "invalid_signature",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_nonce_is_taken_once_per_merchant_within_the_window() {
        let n = Nonces::default();
        n.remember(1, "a", 1_000).unwrap();
        assert_eq!(n.remember(1, "a", 1_001).unwrap_err().code, "nonce_reused");
        n.remember(2, "a", 1_001).expect("another merchant's nonce");
        n.sweep(1_001 + 2 * SKEW_S);
        assert!(n.is_empty());
        n.remember(1, "a", 1_000 + 2 * SKEW_S + 1)
            .expect("forgotten after the window");
    }
}

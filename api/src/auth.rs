//! Who is calling: the operator (admin token) or, later, a merchant (secret key).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use actix_web::http::header;
use actix_web::HttpRequest;
use subtle::ConstantTimeEq;

use crate::config::{check_token, Secret};
use crate::error::ApiError;
use crate::records;
use crate::state::AppState;

/// The authenticated caller of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Merchant(Box<records::Merchant>),
}

impl Caller {
    /// Whether this caller may see a resource of `merchant`: the operator sees all, a
    /// merchant only its own (others' answer 404, so ids cannot be probed).
    pub fn may_see(&self, merchant: u128) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Merchant(m) => m.id == merchant,
        }
    }
}

/// SHA-256 of a secret key: what is stored and looked up, never the key itself. A key is
/// 256 random bits, so a fast hash is enough (argon2 is for low-entropy passwords).
pub fn key_sha256(key: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes()).into()
}

/// Merchants remembered by key hash, so that a request costs no store read to
/// authenticate. Merchant records never change once written, so entries cannot go stale; the
/// map is bounded (cleared when full: merchants are few and a miss costs two point reads).
pub const MERCHANT_CACHE_MAX: usize = 65_536;

/// Authenticates the operator or a merchant (by its secret key).
pub fn caller(req: &HttpRequest, state: &AppState) -> Result<Caller, ApiError> {
    let token = bearer(req)?;
    if bool::from(token.as_bytes().ct_eq(state.admin_token.0.as_bytes())) {
        return Ok(Caller::Admin);
    }
    if token.starts_with("sk_") {
        let hash = key_sha256(token);
        if let Some(m) = state.merchant_cache.get(&hash) {
            state.rate.merchant.check(&m.id)?;
            return Ok(Caller::Merchant(Box::new(m.clone())));
        }
        let store = state.store()?;
        if let Some(id) = records::read::<u128>(store, &records::merchant_key_index(&hash))? {
            if let Some(m) = records::read::<records::Merchant>(store, &records::merchant_key(id))?
            {
                if state.merchant_cache.len() >= MERCHANT_CACHE_MAX {
                    state.merchant_cache.clear();
                }
                state.merchant_cache.insert(hash, m.clone());
                state.rate.merchant.check(&m.id)?;
                return Ok(Caller::Merchant(Box::new(m)));
            }
        }
    }
    Err(ApiError::unauthenticated("the bearer token is not valid"))
}

/// Authenticates a merchant; the operator is refused here (it acts through admin routes).
pub fn merchant(req: &HttpRequest, state: &AppState) -> Result<records::Merchant, ApiError> {
    match caller(req, state)? {
        Caller::Merchant(m) => Ok(*m),
        Caller::Admin => Err(ApiError::unauthenticated(
            "this route takes a merchant's secret key, not the admin token",
        )),
    }
}

/// The bearer token of a request, or a 401 saying what is wrong with the header.
fn bearer(req: &HttpRequest) -> Result<&str, ApiError> {
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
    let token = bearer(req)?;
    if bool::from(token.as_bytes().ct_eq(admin_token.0.as_bytes())) {
        Ok(Caller::Admin)
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
            Ok((Secret(secret), None))
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
            Ok((Secret(secret), Some(path)))
        }
        Err(e) => Err(e),
    }
}

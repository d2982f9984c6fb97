//! `/v1/merchants` (admin): a merchant, its secret key (shown once), its balance account.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use engine::money::{format_fee_rate, parse_fee_rate};
use engine::{AccountId, Reject};
use serde::{Deserialize, Serialize};

use crate::auth;
use crate::body;
use crate::error::ApiError;
use crate::idempotency;
use crate::records::{self, Merchant};
use crate::state::{new_id, now_ns, AppState};

/// Signs up a merchant.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMerchant {
    #[schema(pattern = r"\S", max_length = 64)]
    name: String,
    /// Between 0 and 1, at most 6 decimal places (default: the platform's).
    #[schema(example = "0.006", pattern = r"^(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$")]
    fee_rate: Option<String>,
    /// (extension) Business category for the risk rules: 1–32 of `a-z 0-9 _` (default
    /// "general").
    #[schema(example = "gaming", pattern = r"^[a-z0-9_]{1,32}$")]
    category: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MerchantCreated {
    id: String,
    name: String,
    fee_rate: String,
    /// Shown in this response only; stored as a SHA-256 (null in an idempotent replay).
    secret_key: Option<String>,
    account_id: String,
    category: String,
}

pub use services::merchants::{merchant_id_text, parse_merchant_id};

#[utoipa::path(post, path = "/v1/merchants", tag = "merchants", request_body = CreateMerchant, params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "merchant created; secret_key shown once", body = MerchantCreated),
        crate::openapi::CreateErrors
    ))]
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::admin(&req, &state.admin_token)?;
    let (body, raw): (CreateMerchant, _) = body::json(&req, payload, state.limits, &[]).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    crate::pan::refuse(&body.name, "name")?;
    if let Some(c) = &body.category {
        crate::pan::refuse(c, "category")?;
    }
    if body.name.trim().is_empty() || body.name.len() > services::accounts::TEXT_FIELD_LEN_MAX {
        return Err(ApiError::invalid(
            "invalid_parameter",
            "name must be 1 to 256 bytes and not blank",
        )
        .with_param("name"));
    }
    let fee_rate_text = body
        .fee_rate
        .unwrap_or_else(|| state.config.default_fee_rate.clone());
    let fee_rate_ppm = parse_fee_rate(&fee_rate_text).map_err(|e| {
        ApiError::invalid("invalid_parameter", e.to_string()).with_param("fee_rate")
    })?;
    let category = body.category.unwrap_or_else(|| "general".to_string());
    services::accounts::check_word(&category, "category")?;
    let ledger = state.ledger()?;
    let currency = state.config.currency();
    let id = new_id();
    let secret_key = format!(
        "sk_{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    let key_sha256 = auth::key_sha256(&secret_key);
    let account = AccountId(new_id());
    let mut created = MerchantCreated {
        id: merchant_id_text(id),
        name: body.name.clone(),
        fee_rate: format_fee_rate(fee_rate_ppm),
        secret_key: None,
        account_id: account.to_string(),
        category: category.clone(),
    };
    // The secret is stored only as a hash, so the idempotency record replays the answer
    // without it (`"secret_key": null`).
    let replay = serde_json::to_vec(&created).expect("a merchant view serializes");
    created.secret_key = Some(secret_key);
    let merchant = Merchant {
        id,
        name: body.name,
        fee_rate_ppm,
        key_sha256,
        account,
        currency: currency.numeric(),
        created_at_ns: now_ns(),
        category: records::Tail(Some(category)),
        auth: records::Tail(Default::default()),
    };
    let after: Option<serde_json::Value> = serde_json::from_slice(&replay).ok();
    let mut records = vec![
        (records::merchant_key(id), records::encode(&merchant)),
        (
            records::merchant_key_index(&key_sha256),
            records::encode(&id),
        ),
        crate::audit::record(
            &state,
            &req,
            "merchant.create",
            &merchant_id_text(id),
            None::<&()>,
            after.as_ref(),
        ),
    ];
    records.extend(idem.as_ref().map(|g| g.record(&replay)));
    match ledger
        .create_account_with(account, currency, 0, records)
        .await?
    {
        Ok(_) => {}
        Err(Reject::AccountExists(_)) => return Err(ApiError::unavailable("id collision; retry")),
        Err(other) => return Err(ApiError::invalid(other.code(), other.to_string())),
    }
    Ok(HttpResponse::Created().json(created))
}

use crate::records::time_text;

/// A credential's dates (never the credential).
#[derive(Serialize, utoipa::ToSchema)]
pub struct CredentialView {
    /// Signing secrets: 1, 2, … (secret keys: null).
    number: Option<u32>,
    created_at: String,
    /// When it stops (stopped) working; null: until replaced.
    expires_at: Option<String>,
    active: bool,
}

/// A merchant as the operator sees it (no secrets).
#[derive(Serialize, utoipa::ToSchema)]
pub struct MerchantView {
    id: String,
    name: String,
    fee_rate: String,
    account_id: String,
    category: String,
    require_signature: bool,
    secret_keys: Vec<CredentialView>,
    signing_secrets: Vec<CredentialView>,
    created_at: String,
}

fn view(m: &Merchant, now: u64) -> MerchantView {
    let auth = &m.auth.0;
    let secret_keys = if auth.keys.is_empty() {
        vec![CredentialView {
            number: None,
            created_at: time_text(m.created_at_ns),
            expires_at: None,
            active: true,
        }]
    } else {
        auth.keys
            .iter()
            .map(|k| CredentialView {
                number: None,
                created_at: time_text(k.created_at_ns),
                expires_at: k.expires_at_ns.map(time_text),
                active: k.expires_at_ns.is_none_or(|at| at > now),
            })
            .collect()
    };
    MerchantView {
        id: merchant_id_text(m.id),
        name: m.name.clone(),
        fee_rate: format_fee_rate(m.fee_rate_ppm),
        account_id: m.account.to_string(),
        category: m.category.0.clone().unwrap_or_else(|| "general".into()),
        require_signature: auth.require_signature,
        secret_keys,
        signing_secrets: auth
            .signing
            .iter()
            .map(|s| CredentialView {
                number: Some(s.number),
                created_at: time_text(s.created_at_ns),
                expires_at: s.expires_at_ns.map(time_text),
                active: s.expires_at_ns.is_none_or(|at| at > now),
            })
            .collect(),
        created_at: time_text(m.created_at_ns),
    }
}

fn load(state: &AppState, id_text: &str) -> Result<Merchant, ApiError> {
    let not_found = || ApiError::not_found(format!("no merchant {id_text:?}"));
    let id = parse_merchant_id(id_text).ok_or_else(not_found)?;
    records::read::<Merchant>(state.store()?, &records::merchant_key(id))?.ok_or_else(not_found)
}

#[utoipa::path(get, path = "/v1/merchants/{id}", tag = "merchants",
    params(("id" = String, Path, description = "merchant id (mch_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the merchant, with its credentials' dates (never the credentials)", body = MerchantView),
        crate::openapi::ReadErrors
    ))]
/// (admin) A merchant, its settings and its credentials' dates.
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth::admin(&req, &state.admin_token)?;
    let m = load(&state, &path)?;
    Ok(HttpResponse::Ok().json(view(&m, now_ns())))
}

/// Changes a merchant's settings.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMerchant {
    /// Every request with this merchant's keys must carry a valid `Rongpay-Signature`.
    require_signature: Option<bool>,
}

#[utoipa::path(patch, path = "/v1/merchants/{id}", tag = "merchants", request_body = UpdateMerchant,
    params(("id" = String, Path, description = "merchant id (mch_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the merchant as changed", body = MerchantView),
        (status = 404, description = "unknown merchant", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (admin) Changes a merchant's settings (whether its requests must be signed).
pub async fn update(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth::admin(&req, &state.admin_token)?;
    let (body, _): (UpdateMerchant, _) = body::json(&req, payload, state.limits, &[]).await?;
    let _serial = state.merchant_admin.lock().await;
    let mut m = load(&state, &path)?;
    let before = view(&m, now_ns());
    if let Some(required) = body.require_signature {
        if required
            && !m
                .auth
                .0
                .signing
                .iter()
                .any(|s| s.expires_at_ns.is_none_or(|at| at > now_ns()))
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                crate::error::ErrorType::InvalidRequestError,
                "no_signing_secret",
                "create a signing secret first: POST /v1/merchants/{id}/signing_secrets",
            )
            .with_param("require_signature"));
        }
        m.auth.0.require_signature = required;
    }
    let after = view(&m, now_ns());
    let audit = crate::audit::record(
        &state,
        &req,
        "merchant.update",
        &merchant_id_text(m.id),
        Some(&before),
        Some(&after),
    );
    state
        .ledger()?
        .write_records(vec![
            (records::merchant_key(m.id), records::encode(&m)),
            audit,
        ])
        .await?;
    auth::merchant_changed(&state);
    Ok(HttpResponse::Ok().json(after))
}

/// Longest overlap during which a replaced credential keeps working: 30 days.
pub const OVERLAP_S_MAX: u64 = 30 * 24 * 3600;

/// Replaces a credential.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// How long the credentials in use keep working beside the new one, in seconds
    /// (default 86400; 0 revokes them now; at most 2592000).
    #[serde(default, deserialize_with = "services::json_int::opt_int")]
    overlap_seconds: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Rotated {
    /// The new secret key (`sk_…`) or signing secret (`ss_…`): shown in this response
    /// only (null in an idempotent replay).
    secret: Option<String>,
    /// Signing secrets: its number.
    number: Option<u32>,
    merchant: MerchantView,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Credential {
    SecretKey,
    SigningSecret,
}

async fn rotate(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
    kind: Credential,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::admin(&req, &state.admin_token)?;
    let (body, raw): (Rotate, _) = body::json(&req, payload, state.limits, &[]).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let overlap_s = body.overlap_seconds.unwrap_or(86_400);
    if overlap_s > OVERLAP_S_MAX {
        return Err(ApiError::invalid(
            "invalid_parameter",
            format!("overlap_seconds must be 0 to {OVERLAP_S_MAX}, got {overlap_s}"),
        )
        .with_param("overlap_seconds"));
    }
    let _serial = state.merchant_admin.lock().await;
    let mut m = load(&state, &path)?;
    let now = now_ns();
    let before = view(&m, now);
    let until = now.saturating_add(overlap_s.saturating_mul(1_000_000_000));
    let retire = |expires: &mut Option<u64>| {
        *expires = Some(expires.map_or(until, |at| at.min(until)));
    };
    let mut records = Vec::new();
    let (secret, number) = match kind {
        Credential::SecretKey => {
            let secret = format!(
                "sk_{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            );
            let sha256 = auth::key_sha256(&secret);
            let keys = &mut m.auth.0.keys;
            if keys.is_empty() {
                keys.push(records::KeyEntry {
                    sha256: m.key_sha256,
                    created_at_ns: m.created_at_ns,
                    expires_at_ns: None,
                });
            }
            for k in keys.iter_mut() {
                retire(&mut k.expires_at_ns);
            }
            keys.push(records::KeyEntry {
                sha256,
                created_at_ns: now,
                expires_at_ns: None,
            });
            // Keys long expired are dropped from the record (their index entries stay,
            // and find a merchant that no longer lists them: refused).
            keys.retain(|k| {
                k.expires_at_ns
                    .is_none_or(|at| at + OVERLAP_S_MAX * 1_000_000_000 > now)
            });
            m.key_sha256 = sha256;
            records.push((records::merchant_key_index(&sha256), records::encode(&m.id)));
            (secret, None)
        }
        Credential::SigningSecret => {
            let secret = format!(
                "ss_{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            );
            let signing = &mut m.auth.0.signing;
            for s in signing.iter_mut() {
                retire(&mut s.expires_at_ns);
            }
            let number = signing.last().map_or(1, |s| s.number + 1);
            signing.retain(|s| {
                s.expires_at_ns
                    .is_none_or(|at| at + OVERLAP_S_MAX * 1_000_000_000 > now)
            });
            signing.push(records::SigningEntry {
                number,
                sealed: state
                    .master
                    .seal(secret.as_bytes(), &auth::signing_context(m.id, number)),
                created_at_ns: now,
                expires_at_ns: None,
            });
            (secret, Some(number))
        }
    };
    let mut answer = Rotated {
        secret: None,
        number,
        merchant: view(&m, now),
    };
    let replay = serde_json::to_vec(&answer).expect("a rotation answer serializes");
    records.push((records::merchant_key(m.id), records::encode(&m)));
    records.push(crate::audit::record(
        &state,
        &req,
        match kind {
            Credential::SecretKey => "merchant.rotate_secret_key",
            Credential::SigningSecret => "merchant.rotate_signing_secret",
        },
        &merchant_id_text(m.id),
        Some(&before),
        Some(&answer.merchant),
    ));
    records.extend(idem.as_ref().map(|g| g.record(&replay)));
    state.ledger()?.write_records(records).await?;
    auth::merchant_changed(&state);
    answer.secret = Some(secret);
    Ok(HttpResponse::Created().json(answer))
}

#[utoipa::path(post, path = "/v1/merchants/{id}/secret_keys", tag = "merchants", request_body = Rotate,
    params(("id" = String, Path, description = "merchant id (mch_…)"), ("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "a new secret key (shown once); the others expire after the overlap", body = Rotated),
        (status = 404, description = "unknown merchant", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (admin) Rotates a merchant's secret key: a new one now, the ones in use until the
/// overlap ends (`overlap_seconds: 0` revokes them at once).
pub async fn rotate_secret_key(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    rotate(req, payload, state, path, Credential::SecretKey).await
}

#[utoipa::path(post, path = "/v1/merchants/{id}/signing_secrets", tag = "merchants", request_body = Rotate,
    params(("id" = String, Path, description = "merchant id (mch_…)"), ("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "a new signing secret (shown once); the others expire after the overlap", body = Rotated),
        (status = 404, description = "unknown merchant", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (admin) Creates or rotates a merchant's signing secret (sealed at rest under
/// `master_key`); the ones in use keep working until the overlap ends.
pub async fn rotate_signing_secret(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    rotate(req, payload, state, path, Credential::SigningSecret).await
}

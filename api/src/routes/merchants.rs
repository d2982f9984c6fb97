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

pub fn merchant_id_text(id: u128) -> String {
    format!("mch_{id:032x}")
}

#[utoipa::path(post, path = "/v1/merchants", tag = "merchants", request_body = CreateMerchant, params(("Idempotency-Key" = Option<String>, Header, description = "1-255 visible ASCII characters; replays the first answer")),
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
    if body.name.trim().is_empty() || body.name.len() > super::accounts::TEXT_FIELD_LEN_MAX {
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
    if category.is_empty()
        || category.len() > 32
        || !category
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(ApiError::invalid(
            "invalid_parameter",
            "category must be 1 to 32 of a-z, 0-9 and _",
        )
        .with_param("category"));
    }
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
    };
    let mut records = vec![
        (records::merchant_key(id), records::encode(&merchant)),
        (
            records::merchant_key_index(&key_sha256),
            records::encode(&id),
        ),
    ];
    records.extend(
        idem.as_ref()
            .map(|g| g.record(StatusCode::CREATED, &replay)),
    );
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

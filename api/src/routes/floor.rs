//! `POST /bench/floor` (`bench_floor`, off by default): the durable floor a payment is
//! measured against (`services::floor`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;
use crate::state::AppState;
use crate::{auth, body};

pub async fn write(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !state.config.bench_floor {
        return super::unknown_route(req).await;
    }
    state.serving()?;
    auth::admin(&req, &state.admin_token)?;
    let query = super::query_params(&req, &["records"])?;
    // Not a number reads as 0: the service refuses it as it does 9, naming the range.
    let records = query
        .get("records")
        .map_or(1, |n| n.parse::<u8>().unwrap_or(0));
    let raw = body::bytes(&req, payload, state.limits).await?;
    let client_key = req
        .headers()
        .get("idempotency-key")
        .map(|v| v.as_bytes())
        .filter(|k| !k.is_empty() && k.len() <= crate::idempotency::KEY_LEN_MAX);
    let id = services::floor::write(&state.platform, &raw, records, client_key).await?;
    Ok(HttpResponse::build(StatusCode::CREATED)
        .json(serde_json::json!({ "id": format!("flr_{id:032x}") })))
}

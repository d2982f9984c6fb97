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
    let records = match query.get("records") {
        None => 1,
        Some(n) => n.parse::<u8>().map_err(|_| {
            ApiError::invalid(
                "invalid_records",
                format!("records must be 1 to {}", services::floor::RECORDS_MAX),
            )
            .with_param("records")
        })?,
    };
    let raw = body::bytes(&req, payload, state.limits).await?;
    let client_key = req
        .headers()
        .get("idempotency-key")
        .map(|v| v.as_bytes())
        .filter(|k| !k.is_empty() && k.len() <= 255);
    let id = services::floor::write(&state.platform, &raw, records, client_key).await?;
    Ok(HttpResponse::build(StatusCode::CREATED)
        .json(serde_json::json!({ "id": format!("flr_{id:032x}") })))
}

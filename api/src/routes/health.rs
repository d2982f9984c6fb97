//! Liveness, readiness and metrics: no token needed.

use actix_web::{web, HttpResponse};

use crate::error::ApiError;
use crate::state::AppState;

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "the process runs", body = crate::openapi::Status)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "recovered; accepting payments", body = crate::openapi::Status),
        (status = 503, description = "recovering, or the store refuses writes", body = crate::openapi::ErrorResponse)
    ))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.is_ready() {
        return Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})));
    }
    match state.poison_reason() {
        Some(reason) => Err(ApiError::unavailable(format!(
            "the store refuses writes after a failure: {reason}"
        ))),
        None => Err(ApiError::not_ready()),
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
        (status = 404, description = "metrics are disabled (metrics_enabled = false)", body = crate::openapi::ErrorResponse)
    ))]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let Some(handle) = &state.metrics else {
        return Err(ApiError::not_found(
            "metrics are disabled on this server (metrics_enabled = false)",
        ));
    };
    crate::metrics::refresh(&state).await;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render()))
}

#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "this OpenAPI 3 document", content_type = "application/json", body = Object)))]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::openapi::document())
}

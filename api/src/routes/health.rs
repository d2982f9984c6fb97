//! Liveness, readiness and metrics: no token needed.

use actix_web::{web, HttpResponse};

use crate::error::ApiError;
use crate::state::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.is_ready() {
        return Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})));
    }
    match state.store.get().and_then(|s| s.poison_reason()) {
        Some(reason) => Err(ApiError::unavailable(format!(
            "the store refuses writes after a failure: {reason}"
        ))),
        None => Err(ApiError::not_ready()),
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    crate::metrics::refresh(&state);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

//! `POST /v1/risk/rules/reload` (admin): the risk rules file read again and put in force
//! (the rules and their file format: `services::risk`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;

/// What a reload answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RulesLoaded {
    review_at: u8,
    reject_at: u8,
    /// Number of rules of each kind now in force.
    rules: usize,
    blocklisted: usize,
}

#[utoipa::path(post, path = "/v1/risk/rules/reload", tag = "risk",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the rules file was read and is in force", body = RulesLoaded),
        (status = 400, description = "no rules file configured, or it does not parse (the old rules stay)", body = crate::openapi::ErrorResponse),
        (status = 401, description = "not the operator", body = crate::openapi::ErrorResponse)
    ))]
pub async fn reload(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    auth::admin(&req, &state.admin_token)?;
    let (path, l) = services::risk::reload(&state)?;
    let loaded = RulesLoaded {
        review_at: l.review_at,
        reject_at: l.reject_at,
        rules: l.rules,
        blocklisted: l.blocklisted,
    };
    services::audit::write(
        &state,
        services::audit::record(
            &state,
            &crate::audit::actor(&req),
            "risk.reload",
            &path.display().to_string(),
            None::<&()>,
            Some(&loaded),
        ),
    )
    .await?;
    Ok(HttpResponse::Ok().json(loaded))
}

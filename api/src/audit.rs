//! The audit log (issue #6): every operator action — who, what, when, the object before and
//! after — in the store's own `audit` column family, written in the same durable unit as
//! the action wherever the action is one unit (creations, deposits, merchant and channel
//! changes); right after it otherwise (account status, reviews, rules reloads). Never
//! rewritten, never expires. `GET /v1/audit` (operator) pages through it, oldest first.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::auth;
use crate::error::ApiError;
use crate::records;
use crate::state::AppState;

pub use services::audit::{Actor, Entry, PAGE_MAX};

/// Who is acting: the operator token's short fingerprint, and the peer address.
pub fn actor(req: &HttpRequest) -> Actor {
    let token = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if let Some(name) = auth::operator(req) {
        return Actor {
            name: format!("operator:{name}"),
            source_ip: req.peer_addr().map(|a| a.ip().to_string()),
        };
    }
    let hash = auth::key_sha256(token);
    Actor {
        name: format!(
            "admin:{}",
            hash[..4]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
        source_ip: req.peer_addr().map(|a| a.ip().to_string()),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EntryView {
    id: String,
    at: String,
    actor: String,
    source_ip: Option<String>,
    action: String,
    target: String,
    #[schema(value_type = Option<Object>)]
    before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    after: Option<serde_json::Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    data: Vec<EntryView>,
    /// More follow: ask again with `?after=<the last id>`.
    has_more: bool,
}

fn id_text(id: u128) -> String {
    format!("aud_{id:032x}")
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit",
    params(
        ("after" = Option<String>, Query, pattern = r"^aud_[0-9a-f]{32}$", description = "entries after this one (aud_…)"),
        ("action" = Option<String>, Query, description = "only this action (e.g. merchant.update)")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "operator actions, oldest first, 100 at a time", body = AuditPage),
        (status = 400, description = "invalid query", body = crate::openapi::ErrorResponse),
        crate::openapi::ReadErrors
    ))]
/// (admin) The audit log of operator actions.
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    auth::admin(&req, &state.admin_token)?;
    let query =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .map_err(|e| {
                ApiError::invalid(
                    "invalid_parameter",
                    format!("the query string does not parse: {e}"),
                )
            })?;
    if let Some(unknown) = query.keys().find(|k| *k != "after" && *k != "action") {
        return Err(ApiError::invalid(
            "invalid_parameter",
            format!("unknown query parameter {unknown:?}"),
        )
        .with_param(unknown.clone()));
    }
    let after = match query.get("after") {
        None => None,
        Some(text) => Some(records::parse_id(text, "aud_").ok_or_else(|| {
            ApiError::invalid(
                "invalid_parameter",
                format!("after={text:?} is not an audit entry id"),
            )
            .with_param("after")
        })?),
    };
    let (entries, has_more) =
        services::audit::page(&state, after, query.get("action").map(String::as_str))?;
    let data = entries
        .into_iter()
        .map(|e| EntryView {
            id: id_text(e.id),
            at: records::time_text(e.at_ns),
            actor: e.actor,
            source_ip: e.source_ip,
            action: e.action,
            target: e.target,
            before: e.before.and_then(|b| serde_json::from_str(&b).ok()),
            after: e.after.and_then(|a| serde_json::from_str(&a).ok()),
        })
        .collect();
    Ok(HttpResponse::Ok().json(AuditPage { data, has_more }))
}

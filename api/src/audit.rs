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
use crate::state::{now_ns, AppState};

/// Entries one page answers.
pub const PAGE_MAX: usize = 100;

pub use storage::records::AuditEntry as Entry;

fn actor(req: &HttpRequest) -> String {
    let token = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let hash = auth::key_sha256(token);
    format!(
        "admin:{}",
        hash[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// The record of one action, to write with it (or right after).
pub fn record(
    state: &AppState,
    req: &HttpRequest,
    action: &str,
    target: &str,
    before: Option<&impl Serialize>,
    after: Option<&impl Serialize>,
) -> (Vec<u8>, Vec<u8>) {
    let id = crate::webhooks::next_id(&state.last_event_ns);
    let json = |v: &dyn erased::Json| v.to_json();
    let entry = Entry {
        id,
        at_ns: now_ns(),
        actor: actor(req),
        source_ip: req.peer_addr().map(|a| a.ip().to_string()),
        action: action.to_string(),
        target: target.to_string(),
        before: before.map(|b| json(b)),
        after: after.map(|a| json(a)),
    };
    (records::audit_key(id), records::encode(&entry))
}

mod erased {
    /// Serializes to JSON text (object-safe).
    pub trait Json {
        fn to_json(&self) -> String;
    }

    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).unwrap_or_else(|_| "null".into())
        }
    }
}

/// Writes an action's record on its own (for actions that are not one unit).
pub async fn write(state: &AppState, entry: (Vec<u8>, Vec<u8>)) -> Result<(), ApiError> {
    state.ledger()?.write_records(vec![entry]).await?;
    Ok(())
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
    let from = match query.get("after") {
        None => Vec::new(),
        Some(text) => {
            let id = records::parse_id(text, "aud_").ok_or_else(|| {
                ApiError::invalid(
                    "invalid_parameter",
                    format!("after={text:?} is not an audit entry id"),
                )
                .with_param("after")
            })?;
            [id.to_be_bytes().as_slice(), &[0]].concat()
        }
    };
    let action = query.get("action");
    let store = state.store()?;
    let mut data = Vec::new();
    let mut has_more = false;
    // Filtered pages read at most 100,000 entries each.
    store.for_each_audit_from(&from, 100_000, |_, value| {
        if data.len() > PAGE_MAX {
            has_more = true;
            return Ok(());
        }
        if let Ok(e) = storage::codec::decode::<Entry>(storage::codec::Kind::Aux, value) {
            if action.is_none_or(|a| *a == e.action) {
                data.push(EntryView {
                    id: id_text(e.id),
                    at: records::time_text(e.at_ns),
                    actor: e.actor,
                    source_ip: e.source_ip,
                    action: e.action,
                    target: e.target,
                    before: e.before.and_then(|b| serde_json::from_str(&b).ok()),
                    after: e.after.and_then(|a| serde_json::from_str(&a).ok()),
                });
            }
        }
        Ok(())
    })?;
    if data.len() > PAGE_MAX {
        data.truncate(PAGE_MAX);
        has_more = true;
    }
    Ok(HttpResponse::Ok().json(AuditPage { data, has_more }))
}

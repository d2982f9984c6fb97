//! `/v1/webhook_endpoint` and `/v1/events` (merchant): the URL events are delivered to and
//! the events with their delivery state. The outbox and its delivery are
//! `services::webhooks`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use services::webhooks::{event_id_text, parse_event_id, Event, EventStatus};

use crate::auth;
use crate::body;
use crate::error::ApiError;
use crate::records::time_text;
use crate::state::AppState;

/// Registers (or replaces) the caller's webhook URL.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetEndpoint {
    /// `http://` or `https://`, a host name or IPv4 address, an optional port and path; at
    /// most 2048 characters (the pattern is `services::webhooks::URL_PATTERN`).
    #[schema(
        pattern = r"^https?://(((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])|([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?)(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[!-~]*)?$",
        max_length = 2048
    )]
    url: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    url: String,
    /// The signing secret (`whsec_…`): in the answer to PUT only.
    secret: Option<String>,
    created_at: String,
}

#[utoipa::path(put, path = "/v1/webhook_endpoint", tag = "webhooks", request_body = SetEndpoint,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the endpoint, with a new signing secret (shown once)", body = EndpointView),
        crate::openapi::CreateErrors
    ))]
/// (merchant) Sets the URL payment and refund events are delivered to, with a new signing
/// secret (the previous secret stops at once).
pub async fn put(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let merchant = auth::merchant(&req, &state)?;
    let (body, _): (SetEndpoint, _) = body::json(&req, payload, state.limits, &[]).await?;
    let (endpoint, secret) =
        services::webhooks::set_endpoint(&state, merchant.id, body.url).await?;
    let created_at = time_text(endpoint.created_at_ns);
    let url = endpoint.url;
    Ok(HttpResponse::Ok().json(EndpointView {
        url,
        secret: Some(secret),
        created_at,
    }))
}

#[utoipa::path(get, path = "/v1/webhook_endpoint", tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the endpoint (without its secret)", body = EndpointView),
        crate::openapi::ReadErrors
    ))]
/// (merchant) The caller's webhook endpoint.
pub async fn get(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let merchant = auth::merchant(&req, &state)?;
    let e = services::webhooks::endpoint(&state, merchant.id)?;
    Ok(HttpResponse::Ok().json(EndpointView {
        url: e.url,
        secret: None,
        created_at: time_text(e.created_at_ns),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventView {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    object_id: String,
    /// `pending`, `delivered` or `failed`.
    status: &'static str,
    attempts: u32,
    next_attempt_at: Option<String>,
    last_error: Option<String>,
    delivered_at: Option<String>,
    created_at: String,
}

fn event_view(e: &Event) -> EventView {
    EventView {
        id: event_id_text(e.id),
        kind: e.kind.clone(),
        object_id: e.object_id.clone(),
        status: match e.status {
            EventStatus::Pending => "pending",
            EventStatus::Delivered => "delivered",
            EventStatus::Failed => "failed",
        },
        attempts: e.attempts,
        next_attempt_at: (e.status == EventStatus::Pending && e.next_at_ns > 0)
            .then(|| time_text(e.next_at_ns)),
        last_error: e.last_error.clone(),
        delivered_at: e.delivered_at_ns.map(time_text),
        created_at: time_text(e.created_at_ns),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventList {
    data: Vec<EventView>,
    /// More events follow: ask again with `?after=<the last id>`.
    has_more: bool,
}

#[utoipa::path(get, path = "/v1/events", tag = "webhooks",
    params(("after" = Option<String>, Query, pattern = r"^evt_[0-9a-f]{32}$", description = "list events after this one (evt_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the caller's events, oldest first, 100 at a time", body = EventList),
        (status = 400, description = "invalid query", body = crate::openapi::ErrorResponse),
        crate::openapi::ReadErrors
    ))]
/// (merchant) Its events, oldest first, with their delivery state.
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let merchant = auth::merchant(&req, &state)?;
    let query =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .map_err(|e| {
                ApiError::invalid(
                    "invalid_parameter",
                    format!("the query string does not parse: {e}"),
                )
            })?;
    if let Some(unknown) = query.keys().find(|k| *k != "after") {
        return Err(ApiError::invalid(
            "invalid_parameter",
            format!("unknown query parameter {unknown:?}"),
        )
        .with_param(unknown.clone()));
    }
    let after = match query.get("after") {
        None => None,
        Some(text) => Some(parse_event_id(text).ok_or_else(|| {
            ApiError::invalid(
                "invalid_parameter",
                format!("after={text:?} is not an event id"),
            )
            .with_param("after")
        })?),
    };
    let (events, has_more) = services::webhooks::events(&state, merchant.id, after)?;
    let data = events.iter().map(event_view).collect();
    Ok(HttpResponse::Ok().json(EventList { data, has_more }))
}

#[utoipa::path(post, path = "/v1/events/{id}/resend", tag = "webhooks",
    params(("id" = String, Path, description = "event id (evt_…)")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "queued again (delivered next, behind the merchant's older pending events)", body = EventView),
        crate::openapi::ReadErrors
    ))]
/// (merchant) Queues an event again, whatever its state (e.g. failed after every try, or
/// delivered but lost by the receiver).
pub async fn resend(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let merchant = auth::merchant(&req, &state)?;
    let event = services::webhooks::resend(&state, merchant.id, &path).await?;
    Ok(HttpResponse::Accepted().json(event_view(&event)))
}

#[cfg(test)]
mod tests {
    /// The document's pattern for a webhook URL is the one the service checks.
    #[test]
    fn the_documented_url_pattern_is_the_checked_one() {
        let doc: serde_json::Value = serde_json::from_str(crate::openapi::document()).unwrap();
        assert_eq!(
            doc["components"]["schemas"]["SetEndpoint"]["properties"]["url"]["pattern"],
            services::webhooks::URL_PATTERN
        );
    }
}

//! The alert intake: Alertmanager's webhook (`POST /v1/ops/alerts`, bearer `alerts_token`)
//! delivers firing and resolved alerts; each goes out by SMS to every number of the on-call
//! list (`oncall_phones`), under the per-recipient alert rate limit. The last alerts are kept
//! in memory for `GET /v1/ops/alerts` and the ops page.
//!
//! Delivery is at least once: when the SMS gateway did not take a page, the intake answers
//! 503 and Alertmanager sends the notification again.

use std::collections::VecDeque;
use std::sync::Mutex;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::notify::Template;
use crate::state::{now_ns, AppState};

/// Alerts kept for the ops page.
pub const RECENT_MAX: usize = 100;
/// Alerts taken from one notification (Alertmanager's `max_alerts` should be at most this).
pub const PER_NOTIFICATION_MAX: usize = 100;

/// Alertmanager's webhook payload (version 4); fields we do not use are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    pub version: Option<String>,
    pub status: String,
    pub receiver: Option<String>,
    pub alerts: Vec<Alert>,
}

#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Alert {
    pub status: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    #[serde(default, rename = "startsAt")]
    pub starts_at: String,
}

/// An alert as received, for the ops page.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Received {
    pub received_at: String,
    pub status: String,
    pub name: String,
    pub severity: String,
    pub summary: String,
    /// SMS sent for it (one per on-call number that was not rate limited).
    pub sms_sent: usize,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AlertList {
    pub data: Vec<Received>,
}

#[derive(Default)]
pub struct Recent(Mutex<VecDeque<Received>>);

impl Recent {
    fn push(&self, r: Received) {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() == RECENT_MAX {
            q.pop_front();
        }
        q.push_back(r);
    }

    /// Newest first.
    pub fn list(&self) -> Vec<Received> {
        let q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        q.iter().rev().cloned().collect()
    }
}

#[utoipa::path(post, path = "/v1/ops/alerts", tag = "operations", request_body = Object,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "received; SMS sent to the on-call list (503 when a page could not be handed to the gateway: Alertmanager retries)"),
        (status = 429, description = "rate limited", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
/// (alerts token) Alertmanager's webhook.
pub async fn intake(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    crate::auth::bearer_is(&req, &state.alerts_token)?;
    let raw = crate::body::bytes(&req, payload, state.limits).await?;
    let n: Notification = crate::body::parse(&raw, &[])?;
    let mut sent = 0;
    let mut limited = 0;
    let mut failed = None;
    for alert in n.alerts.iter().take(PER_NOTIFICATION_MAX) {
        let status = if alert.status == "resolved" {
            "resolved"
        } else {
            "firing"
        };
        metrics::counter!(crate::metrics::ALERTS, "status" => status).increment(1);
        let label = |k: &str| alert.labels.get(k).cloned().unwrap_or_default();
        let (name, severity) = (label("alertname"), label("severity"));
        let summary = alert
            .annotations
            .get("summary")
            .cloned()
            .unwrap_or_default();
        let template = Template::Alert {
            status: status.to_string(),
            name: name.clone(),
            severity: severity.clone(),
            summary: summary.clone(),
        };
        tracing::warn!(alert = %name, status, severity = %severity, "alert received");
        let paged = services::notifications::page_oncall(&state, &template).await;
        let sent_here = paged.sent;
        limited += paged.rate_limited;
        if let Some(e) = paged.failed {
            failed = Some(ApiError::from(e));
        }
        sent += sent_here;
        state.recent_alerts.push(Received {
            received_at: crate::records::time_text(now_ns()),
            status: status.to_string(),
            name,
            severity,
            summary,
            sms_sent: sent_here,
        });
    }
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "alerts": n.alerts.len().min(PER_NOTIFICATION_MAX),
        "sms_sent": sent,
        "sms_rate_limited": limited,
    })))
}

#[utoipa::path(get, path = "/v1/ops/alerts", tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the last alerts received, newest first", body = AlertList),
        (status = 401, description = "not the operator", body = crate::openapi::ErrorResponse)
    ))]
/// (admin) The alerts received lately.
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    crate::auth::admin(&req, &state.admin_token)?;
    Ok(HttpResponse::Ok().json(AlertList {
        data: state.recent_alerts.list(),
    }))
}

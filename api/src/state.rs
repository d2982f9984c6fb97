//! What every request handler shares: the platform (every business flow's state, from
//! `services`) and the HTTP layer's own state (credentials, body limits, rate limits,
//! signed-request nonces, the authentication cache, the ops page's live counters).

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::body::BodyLimits;
use crate::config::{Config, Secret};

pub use services::platform::{claim, new_id, now_ns, ClaimSet, Claimed};

pub struct AppState {
    pub platform: Arc<services::Platform>,
    pub config: Config,
    pub admin_token: Secret,
    /// Named operators (`operators`): their name and the SHA-256 of their token.
    pub operators: Vec<(String, [u8; 32])>,
    /// Bearer token of the alert intake (Alertmanager's webhook).
    pub alerts_token: Secret,
    /// The last alerts received from Alertmanager (at most `alerts::RECENT_MAX`).
    pub recent_alerts: crate::alerts::Recent,
    /// The ops page's live counters.
    pub live: crate::ops::Live,
    pub limits: BodyLimits,
    /// The same for `POST /v1/transfers/batch`, whose bodies are larger.
    pub batch_limits: BodyLimits,
    /// `None` with `metrics_enabled = false`.
    pub metrics: Option<PrometheusHandle>,
    /// Nonces of signed requests seen recently (bounded: `signing::NONCES_MAX`).
    pub nonces: crate::signing::Nonces,
}

/// The path of the batch endpoint, whose bodies have their own limit.
pub const BATCH_PATH: &str = "/v1/transfers/batch";

impl AppState {
    /// The body limits of a request to `path`.
    pub fn limits_for(&self, path: &str) -> BodyLimits {
        if path == BATCH_PATH {
            self.batch_limits
        } else {
            self.limits
        }
    }
}

/// Handlers reach the platform's state through the app state.
impl std::ops::Deref for AppState {
    type Target = services::Platform;

    fn deref(&self) -> &services::Platform {
        &self.platform
    }
}

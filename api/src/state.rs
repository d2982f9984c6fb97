//! What every request handler shares.

use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use actors::Ledger;
use metrics_exporter_prometheus::PrometheusHandle;
use storage::Store;

use crate::body::BodyLimits;
use crate::config::{Config, Secret};
use crate::error::ApiError;

pub struct AppState {
    pub config: Config,
    pub admin_token: Secret,
    /// Bearer token of the alert intake (Alertmanager's webhook).
    pub alerts_token: Secret,
    /// The SMS platform.
    pub notifier: crate::notify::Notifier,
    /// Serializes delivery receipts (read, change, write of a message record).
    pub sms_receipts: tokio::sync::Mutex<()>,
    /// One-time codes with a try being judged: tries on one code take turns. Entries leave
    /// with their last waiter, so this holds at most the requests in flight.
    pub otp_claims:
        dashmap::DashMap<u128, Arc<tokio::sync::Mutex<()>>, foldhash::fast::RandomState>,
    /// The last alerts received from Alertmanager (at most `alerts::RECENT_MAX`).
    pub recent_alerts: crate::alerts::Recent,
    /// The ops page's live counters and today's totals.
    pub live: crate::ops::Live,
    pub today: crate::ops::Today,
    pub limits: BodyLimits,
    /// Set once recovery finished; until then money endpoints answer 503 `not_ready`.
    pub ledger: OnceLock<Ledger>,
    pub store: OnceLock<Arc<Store>>,
    /// `None` with `metrics_enabled = false`.
    pub metrics: Option<PrometheusHandle>,
    /// out_trade_no index keys of payments in flight → their payment id: a concurrent twin is
    /// refused as a duplicate before either is durable. Bounded by the ledger's admission.
    pub trade_claims: dashmap::DashMap<Vec<u8>, u128, foldhash::fast::RandomState>,
    /// Currencies (ISO numeric) whose platform accounts are known to exist. At most one entry
    /// per active ISO 4217 currency.
    pub platform_ready: dashmap::DashMap<u16, (), foldhash::fast::RandomState>,
    /// Authenticated merchants by key hash (see `auth::MERCHANT_CACHE_MAX`).
    pub merchant_cache:
        dashmap::DashMap<[u8; 32], crate::records::Merchant, foldhash::fast::RandomState>,
    /// Payments with a refund in flight: one at a time per payment.
    pub refund_claims: ClaimSet,
    /// Configured channels and their live state, by id (at most `channels::CHANNELS_MAX`).
    pub channels: dashmap::DashMap<
        u128,
        std::sync::Mutex<crate::routes::channels::ChannelRuntime>,
        foldhash::fast::RandomState,
    >,
    /// Card payments whose channel outcome is being applied (status sync or notification).
    pub resolving: ClaimSet,
    /// Serializes channel configuration changes.
    pub channel_admin: tokio::sync::Mutex<()>,
    /// HTTP client for channels (bounded pool; per-call timeout `channel_timeout_ms`).
    pub http: reqwest::Client,
    /// Seals card data at rest (key from `card_key`).
    pub vault: crate::vault::Vault,
    /// The risk scorer and its velocity memory. A mutex, not an actor: scoring is ~2 µs of
    /// pure work, less than a message hop between threads.
    pub risk: std::sync::Mutex<engine::risk::RiskEngine>,
    /// Payments under review with a decision in flight: one at a time per payment.
    pub review_claims: ClaimSet,
    /// Anti-abuse rate limits (per source IP, merchant key, payer account).
    pub rate: crate::ratelimit::Limits,
    /// Seals merchants' signing secrets at rest (key from `master_key`).
    pub master: crate::vault::Vault,
    /// Nonces of signed requests seen recently (bounded: `signing::NONCES_MAX`).
    pub nonces: crate::signing::Nonces,
    /// Serializes changes to merchant records (credentials, settings): read, change, write.
    pub merchant_admin: tokio::sync::Mutex<()>,
    /// Set once recovery finished entirely (configured channels added, webhook endpoints
    /// loaded, status syncs resumed): `/readyz` answers 200 from then on.
    pub recovered: std::sync::atomic::AtomicBool,
    /// Merchants' webhook endpoints (one per merchant at most).
    pub webhook_endpoints:
        dashmap::DashMap<u128, crate::webhooks::Endpoint, foldhash::fast::RandomState>,
    /// Merchants with a webhook delivery in flight (one at a time each).
    pub webhook_busy: dashmap::DashMap<u128, (), foldhash::fast::RandomState>,
    /// Wakes the webhook dispatcher when events were written.
    pub webhook_wake: tokio::sync::Notify,
    /// Last event id's time part (ids grow strictly within the process).
    pub last_event_ns: std::sync::atomic::AtomicU64,
    /// Bumped after each merchant record change (see `auth::merchant_changed`).
    pub merchant_generation: std::sync::atomic::AtomicU64,
    /// Idempotency keys of requests in flight (scoped store keys).
    pub idempotency_claims: dashmap::DashMap<Vec<u8>, (), foldhash::fast::RandomState>,
}

impl AppState {
    pub fn ledger(&self) -> Result<&Ledger, ApiError> {
        self.ledger.get().ok_or_else(ApiError::not_ready)
    }

    pub fn store(&self) -> Result<&Arc<Store>, ApiError> {
        self.store.get().ok_or_else(ApiError::not_ready)
    }

    /// Ready: recovered, and the store still takes writes.
    pub fn is_ready(&self) -> bool {
        self.recovered.load(std::sync::atomic::Ordering::SeqCst)
            && self.store.get().is_some_and(|s| s.is_healthy())
            && self.ledger.get().is_some()
    }
}

/// Ids being worked on, one request at a time per id (refunds of a payment, a review
/// decision, a channel outcome being applied).
pub type ClaimSet = dashmap::DashMap<u128, (), foldhash::fast::RandomState>;

/// Holds an id in its [`ClaimSet`] until dropped, however the request ends.
pub struct Claimed<'a>(&'a ClaimSet, u128);

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        self.0.remove(&self.1);
    }
}

/// Claims `id`; `None` while another request holds it.
pub fn claim(set: &ClaimSet, id: u128) -> Option<Claimed<'_>> {
    match set.entry(id) {
        dashmap::mapref::entry::Entry::Occupied(_) => None,
        dashmap::mapref::entry::Entry::Vacant(slot) => {
            slot.insert(());
            Some(Claimed(set, id))
        }
    }
}

/// A new id: milliseconds since the epoch in the top 48 bits, 80 random bits below. Time
/// order keeps RocksDB inserts near the end of the key space; the randomness makes ids
/// unguessable; nothing in it names this machine.
impl AppState {
    /// A payment reached its current status (durably): metrics and today's totals.
    pub fn payment_reached(&self, p: &crate::records::Payment) {
        crate::metrics::payment(p);
        self.today.payment(p);
    }

    /// A refund of a payment in `currency` reached its current status (durably).
    pub fn refund_reached(&self, r: &crate::records::Refund, currency: u16) {
        crate::metrics::refund(r, currency);
        self.today.refund(r, currency);
    }
}

pub fn new_id() -> u128 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    ((ms & 0xffff_ffff_ffff) << 80) | (rand::random::<u128>() >> 48)
}

pub fn now_ns() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

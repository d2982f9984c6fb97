//! Payment channels (banks and third parties): their configuration — endpoint, method,
//! currency, fee (rate + fixed), per-transaction and daily limits, priority, weight,
//! bulkhead, enabled — and each channel's live state (success rate and latency over the
//! window, circuit breaker, calls in flight, today's volume), and the results channels
//! notify.
//!
//! Configuration is durable (an `aux` record per channel, loaded at start); live state is
//! in memory (`engine::routing::ChannelHealth`) and starts fresh after a restart.
//!
//! - [`wire`]: the protocol payd's channel client speaks to a channel (and `channel-sim`
//!   plays).

pub mod http;
pub mod wire;

use std::sync::Mutex;

use engine::money::{format_fee_rate, format_minor, parse_amount, parse_fee_rate, MoneyError};
use engine::routing::{BreakerConfig, BreakerState, ChannelHealth, ChannelSpec};
use engine::{AccountId, Currency, PlatformRole, Timestamp};
use serde::{Deserialize, Serialize};

use crate::accounts::parse_currency;
use crate::platform::{new_id, now_ns, Platform};
use crate::records;
use crate::{Error, Result};

/// Channels a deployment may configure.
pub const CHANNELS_MAX: usize = 1_000;

pub use storage::records::ChannelRecord;

fn notify_context(id: u128) -> Vec<u8> {
    [b"channel-notify".as_slice(), &id.to_be_bytes()].concat()
}

/// The record as stored: the notify secret sealed, never in clear.
fn encode_sealed(state: &Platform, r: &ChannelRecord) -> Vec<u8> {
    let mut stored = r.clone();
    stored.notify_secret_sealed = records::Tail(
        r.notify_secret
            .as_ref()
            .map(|s| state.master.seal(s.as_bytes(), &notify_context(r.id))),
    );
    stored.notify_secret = None;
    records::encode(&stored)
}

/// A channel's configuration and live state (what its actor will own).
pub struct ChannelRuntime {
    record: ChannelRecord,
    /// The record as the router reads it, made once per configuration rather than once per
    /// payment routed (its name and lists are allocations).
    spec: ChannelSpec,
    pub health: ChannelHealth,
}

impl ChannelRuntime {
    pub fn new(record: ChannelRecord) -> Self {
        Self {
            spec: record.spec(),
            record,
            health: ChannelHealth::new(BreakerConfig::default()),
        }
    }

    pub fn record(&self) -> &ChannelRecord {
        &self.record
    }

    pub fn spec(&self) -> &ChannelSpec {
        &self.spec
    }

    /// The channel as the router ranks it: its spec, and its health to update.
    pub fn candidate(&mut self) -> engine::routing::Candidate<'_> {
        engine::routing::Candidate {
            spec: &self.spec,
            health: &mut self.health,
        }
    }

    /// The channel's new configuration; its live health carries on.
    pub fn set_record(&mut self, record: ChannelRecord) {
        self.spec = record.spec();
        self.record = record;
    }
}

pub fn channel_id_text(id: u128) -> String {
    engine::ids::prefixed_hex("chn_", id)
}

pub fn parse_channel_id(text: &str) -> Option<u128> {
    records::parse_id(text, "chn_")
}

/// The number of the reserve account named `name` (a channel's `settlement_reserve`).
fn reserve_number(state: &Platform, name: &str) -> Result<u32> {
    let all = crate::positions::reserves(state.store()?, state.settings.currency)?;
    Ok(crate::positions::named(&all, name, "settlement_reserve")?.number)
}

/// Every configured channel's record, by name.
pub fn records(state: &Platform) -> Vec<ChannelRecord> {
    let mut out: Vec<ChannelRecord> = state
        .channels
        .iter()
        .filter_map(|c| c.value().lock().ok().map(|rt| rt.record().clone()))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Loads every configured channel into `state.channels` (at start).
pub fn load_all(state: &Platform, store: &storage::Store) -> Result<usize, String> {
    let mut loaded = Vec::new();
    store
        .for_each_aux_with_prefix(records::prefix::CHANNEL, CHANNELS_MAX, |_, value| {
            let mut r: ChannelRecord = storage::codec::decode(storage::codec::Kind::Aux, value)
                .map_err(|e| storage::StoreError::Inconsistent(format!("a channel record: {e}")))?;
            if let Some(sealed) = r.notify_secret_sealed.0.take() {
                let open = state
                    .master
                    .open(&sealed, &notify_context(r.id))
                    .map_err(|e| {
                        storage::StoreError::Inconsistent(format!(
                            "a channel's notify secret does not open with master_key: {e}"
                        ))
                    })?;
                r.notify_secret = Some(String::from_utf8_lossy(&open).into_owned());
            }
            loaded.push(r);
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    let n = loaded.len();
    for r in loaded {
        state
            .channels
            .insert(r.id, Mutex::new(ChannelRuntime::new(r)));
    }
    Ok(n)
}

/// A payment method a channel serves (the document's name for the values of `methods`;
/// the body keeps them as text so that an unknown one is refused with this module's
/// message).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a description of the values, never built
pub enum ChannelMethod {
    #[schema(rename = "bank_card")]
    BankCard,
}

/// Creates a channel (request body, and an entry of the config file's `[[channels]]`).
#[derive(Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    /// Unique, 1–64 of `a-z 0-9 _ -`.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "bank_a", pattern = r"^[a-z0-9_-]{1,64}$")
    )]
    name: String,
    /// Base URL of the channel's API (`http://host:port`), at most 256 characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            example = "http://127.0.0.1:9101",
            pattern = r"^https?://\S+$",
            max_length = 256
        )
    )]
    endpoint: String,
    /// Payment methods served; so far `["bank_card"]`.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Vec<ChannelMethod>, min_items = 1)
    )]
    methods: Vec<String>,
    /// The one currency this channel takes (limits and fixed fee are in it).
    #[cfg_attr(feature = "openapi", schema(example = "CNY", pattern = r"^[A-Z]{3}$"))]
    currency: String,
    #[cfg_attr(feature = "openapi", schema(example = "0.003"))]
    fee_rate: String,
    #[cfg_attr(feature = "openapi", schema(example = "0.10"))]
    fee_fixed: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "0.01"))]
    min_amount: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "50000.00"))]
    max_amount: String,
    #[cfg_attr(feature = "openapi", schema(example = "1000000.00"))]
    daily_limit: String,
    /// Lower is preferred (default 100).
    #[serde(default, deserialize_with = "crate::json_int::opt_int")]
    #[cfg_attr(feature = "openapi", schema(format = Int64, maximum = 4_294_967_295_u64))]
    priority: Option<u32>,
    /// Share in a weighted split (default 1).
    #[serde(default, deserialize_with = "crate::json_int::opt_int")]
    #[cfg_attr(feature = "openapi", schema(maximum = 1_000_000))]
    weight: Option<u32>,
    /// Default true.
    enabled: Option<bool>,
    /// Calls in flight at once (default 64, at most 10,000).
    #[serde(default, deserialize_with = "crate::json_int::opt_int")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10_000))]
    inflight_max: Option<u32>,
    /// The key the channel signs its result notifications with (HMAC-SHA256); without it
    /// notifications are refused and results come by status sync only. Never shown again.
    notify_secret: Option<String>,
    /// Position below which the channel needs funding (the `ChannelPositionLow` alert);
    /// default 0.00: no alert.
    #[cfg_attr(feature = "openapi", schema(example = "5000.00"))]
    position_low_water: Option<String>,
    /// Business days after which the channel settles a date's takings to the reserve
    /// (0–30, default 1: T+1).
    #[serde(default, deserialize_with = "crate::json_int::opt_int")]
    #[cfg_attr(feature = "openapi", schema(maximum = 30))]
    settlement_lag_days: Option<u16>,
    /// The reserve account it settles to (default `default`).
    #[cfg_attr(feature = "openapi", schema(example = "default"))]
    settlement_reserve: Option<String>,
    /// The layout of its daily statement, fetched for reconciliation: `alipay` (the
    /// default) or `wechat`.
    #[cfg_attr(feature = "openapi", schema(example = "alipay"))]
    statement_format: Option<String>,
}

impl std::fmt::Debug for CreateChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CreateChannel({} at {})", self.name, self.endpoint)
    }
}

/// Changes a channel; absent fields keep their value.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateChannel {
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^https?://\S+$", max_length = 256)
    )]
    endpoint: Option<String>,
    fee_rate: Option<String>,
    fee_fixed: Option<String>,
    min_amount: Option<String>,
    max_amount: Option<String>,
    daily_limit: Option<String>,
    #[serde(default, deserialize_with = "crate::json_int::opt_int")]
    #[cfg_attr(feature = "openapi", schema(format = Int64, maximum = 4_294_967_295_u64))]
    priority: Option<u32>,
    #[serde(default, deserialize_with = "crate::json_int::opt_int")]
    #[cfg_attr(feature = "openapi", schema(maximum = 1_000_000))]
    weight: Option<u32>,
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "crate::json_int::opt_int")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10_000))]
    inflight_max: Option<u32>,
    notify_secret: Option<String>,
    position_low_water: Option<String>,
    #[serde(default, deserialize_with = "crate::json_int::opt_int")]
    #[cfg_attr(feature = "openapi", schema(maximum = 30))]
    settlement_lag_days: Option<u16>,
    settlement_reserve: Option<String>,
    statement_format: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelView {
    pub id: String,
    pub name: String,
    endpoint: String,
    methods: Vec<&'static str>,
    currency: &'static str,
    fee_rate: String,
    fee_fixed: String,
    min_amount: String,
    max_amount: String,
    daily_limit: String,
    priority: u32,
    weight: u32,
    enabled: bool,
    inflight_max: u32,
    /// Whether a notification secret is set (the secret itself is never shown).
    notifications: bool,
    /// Our position at the channel: what it owes us for the charges it made, net of its
    /// fees (the receivable account's balance, sign flipped).
    position: String,
    /// Position below which the channel needs funding (0.00: no alert).
    position_low_water: String,
    /// Business days after which a date's takings settle to the reserve.
    settlement_lag_days: u16,
    /// The reserve account it settles to (its ledger account: `GET /v1/positions/reserves`
    /// names them).
    settlement_reserve_account_id: String,
    /// The layout of its daily statement: `alipay` or `wechat`.
    statement_format: &'static str,
    /// Live state over the breaker's window.
    health: HealthView,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthView {
    /// closed, open or half_open.
    breaker: &'static str,
    /// Results in the window, of which failed (technical errors, refusals, timeouts).
    calls: u32,
    failures: u32,
    /// Decimal fraction of answered calls ("1.0000" with no calls yet).
    success_rate: String,
    mean_latency_ms: String,
    inflight: u32,
    /// Charged today (UTC) through this channel.
    volume_today: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelList {
    data: Vec<ChannelView>,
}

pub fn view(rt: &ChannelRuntime, at: Timestamp, position: i64) -> ChannelView {
    let r = rt.record();
    let currency = Currency::from_numeric(r.currency).expect("stored channels carry a currency");
    let (calls, failures, latency_us) = rt.health.stats(at);
    let ppm = rt.health.success_ppm(at);
    ChannelView {
        id: channel_id_text(r.id),
        name: r.name.clone(),
        endpoint: r.endpoint.clone(),
        methods: if r.bank_card {
            vec!["bank_card"]
        } else {
            vec![]
        },
        currency: currency.code(),
        fee_rate: format_fee_rate(r.fee_rate_ppm),
        fee_fixed: format_minor(r.fee_fixed_minor, currency),
        min_amount: format_minor(r.min_minor, currency),
        max_amount: format_minor(r.max_minor, currency),
        daily_limit: format_minor(r.daily_limit_minor, currency),
        priority: r.priority,
        weight: r.weight,
        enabled: r.enabled,
        inflight_max: r.inflight_max,
        notifications: r.notify_secret.is_some(),
        position: format_minor(position.checked_neg().unwrap_or(i64::MAX), currency),
        position_low_water: format_minor(r.position_low_water_minor.0, currency),
        settlement_lag_days: r.settlement.0.lag_days,
        settlement_reserve_account_id: crate::positions::reserve_account(
            r.settlement.0.reserve,
            currency,
        )
        .to_string(),
        statement_format: statement_format_name(r.statement_format.0),
        health: HealthView {
            breaker: match rt.health.breaker_at(at) {
                BreakerState::Closed => "closed",
                BreakerState::Open { .. } => "open",
                BreakerState::HalfOpen { .. } => "half_open",
            },
            calls,
            failures,
            success_rate: format!("{}.{:04}", ppm / 1_000_000, (ppm % 1_000_000) / 100),
            mean_latency_ms: format!("{}.{:03}", latency_us / 1_000, latency_us % 1_000),
            inflight: rt.health.inflight,
            volume_today: format_minor(rt.health.volume_today(at), currency),
        },
    }
}

fn bad(param: &str, message: impl Into<String>) -> Error {
    Error::invalid("invalid_parameter", message).with_param(param.to_string())
}

/// An amount of the channel's currency, zero allowed.
fn amount(text: &str, currency: Currency, param: &str) -> Result<i64> {
    match parse_amount(text, currency) {
        Err(MoneyError::NotPositive(_)) if !text.starts_with('-') => Ok(0),
        other => other.map_err(|e| {
            Error::invalid("invalid_amount", e.to_string()).with_param(param.to_string())
        }),
    }
}

/// Whitespace as the document's pattern (`\S`, ECMA-262) counts it.
fn ecma_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// `^https?://\S+$`, at most 256 characters: what the document says an endpoint is.
fn check_endpoint(url: &str) -> Result<()> {
    let ok = url.chars().count() <= 256
        && (url.starts_with("http://") || url.starts_with("https://"))
        && url
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.is_empty() && !rest.contains(ecma_space));
    if ok {
        Ok(())
    } else {
        Err(bad(
            "endpoint",
            "endpoint must be an http:// or https:// URL of at most 256 characters",
        ))
    }
}

/// Applies an update's fields to `r`, checking the result as a whole.
pub fn apply(r: &mut ChannelRecord, u: &UpdateChannel) -> Result<()> {
    let currency = Currency::from_numeric(r.currency).expect("stored channels carry a currency");
    if let Some(e) = &u.endpoint {
        check_endpoint(e)?;
        r.endpoint = e.clone();
    }
    if let Some(f) = &u.fee_rate {
        r.fee_rate_ppm = parse_fee_rate(f).map_err(|e| bad("fee_rate", e.to_string()))?;
    }
    if let Some(f) = &u.fee_fixed {
        r.fee_fixed_minor = amount(f, currency, "fee_fixed")?;
    }
    if let Some(m) = &u.min_amount {
        r.min_minor = amount(m, currency, "min_amount")?;
    }
    if let Some(m) = &u.max_amount {
        r.max_minor = amount(m, currency, "max_amount")?;
    }
    if let Some(d) = &u.daily_limit {
        r.daily_limit_minor = amount(d, currency, "daily_limit")?;
    }
    if let Some(p) = u.priority {
        r.priority = p;
    }
    if let Some(w) = u.weight {
        r.weight = w;
    }
    if let Some(e) = u.enabled {
        r.enabled = e;
    }
    if let Some(i) = u.inflight_max {
        r.inflight_max = i;
    }
    if let Some(days) = u.settlement_lag_days {
        if days > engine::positions::SETTLEMENT_LAG_DAYS_MAX {
            return Err(bad(
                "settlement_lag_days",
                "settlement_lag_days must be 0 to 30 business days",
            ));
        }
        r.settlement.0.lag_days = days;
    }
    if let Some(f) = &u.statement_format {
        r.statement_format = records::Tail(match engine::statement::Format::parse(f) {
            Some(engine::statement::Format::Alipay) => 0,
            Some(engine::statement::Format::Wechat) => 1,
            None => {
                return Err(bad(
                    "statement_format",
                    "statement_format must be alipay or wechat",
                ))
            }
        });
    }
    if let Some(l) = &u.position_low_water {
        r.position_low_water_minor = records::Tail(amount(l, currency, "position_low_water")?);
    }
    if let Some(secret) = &u.notify_secret {
        if !(16..=256).contains(&secret.len()) || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                "notify_secret",
                "notify_secret must be 16 to 256 visible ASCII characters",
            ));
        }
        r.notify_secret = Some(secret.clone());
    }
    if r.min_minor > r.max_minor {
        return Err(bad("min_amount", "min_amount is above max_amount"));
    }
    if !(1..=10_000).contains(&r.inflight_max) {
        return Err(bad("inflight_max", "inflight_max must be 1 to 10000"));
    }
    if r.weight > 1_000_000 {
        return Err(bad("weight", "weight must be at most 1000000"));
    }
    Ok(())
}

/// Validates and adds a channel: its record, its name index, its platform accounts, its
/// live state, in one durable unit with the records `extra` makes of its view (the
/// idempotency record of the answer, the audit entry). Returns its view.
pub async fn add(
    state: &Platform,
    body: CreateChannel,
    extra: impl FnOnce(&ChannelView) -> Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<ChannelView> {
    if body.name.is_empty()
        || body.name.len() > 64
        || !body
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(bad("name", "name must be 1 to 64 of a-z, 0-9, _ and -"));
    }
    crate::pan::refuse(&body.name, "name")?;
    crate::pan::refuse(&body.endpoint, "endpoint")?;
    check_endpoint(&body.endpoint)?;
    if body.methods.is_empty() || body.methods.iter().any(|m| m != "bank_card") {
        return Err(bad(
            "methods",
            "methods must be [\"bank_card\"] (the only channel method so far)",
        ));
    }
    let currency = parse_currency(&body.currency)?;
    let store = state.store()?;
    let ledger = state.ledger()?;
    // Channel changes are rare: one at a time keeps names unique and the stored order of
    // changes the same as the order they reach memory.
    let _serial = state.channel_admin.lock().await;
    if state.channels.len() >= CHANNELS_MAX {
        return Err(bad("name", format!("at most {CHANNELS_MAX} channels")));
    }
    let id = new_id();
    let number = state
        .channels
        .iter()
        .filter_map(|c| c.value().lock().ok().map(|rt| rt.record().number))
        .max()
        .unwrap_or(0)
        + 1;
    let mut record = ChannelRecord {
        id,
        number,
        name: body.name.clone(),
        endpoint: body.endpoint.clone(),
        currency: currency.numeric(),
        bank_card: true,
        fee_rate_ppm: 0,
        fee_fixed_minor: 0,
        min_minor: 1,
        max_minor: 0,
        daily_limit_minor: 0,
        priority: body.priority.unwrap_or(100),
        weight: body.weight.unwrap_or(1),
        enabled: body.enabled.unwrap_or(true),
        inflight_max: body.inflight_max.unwrap_or(64),
        created_at_ns: now_ns(),
        notify_secret: None,
        notify_secret_sealed: records::Tail(None),
        position_low_water_minor: records::Tail(0),
        settlement: records::Tail(Default::default()),
        statement_format: records::Tail(0),
    };
    apply(
        &mut record,
        &UpdateChannel {
            endpoint: None,
            fee_rate: Some(body.fee_rate),
            fee_fixed: body.fee_fixed,
            min_amount: body.min_amount,
            max_amount: Some(body.max_amount),
            daily_limit: Some(body.daily_limit),
            priority: None,
            weight: None,
            enabled: None,
            inflight_max: None,
            notify_secret: body.notify_secret,
            position_low_water: body.position_low_water,
            settlement_lag_days: body.settlement_lag_days,
            settlement_reserve: None,
            statement_format: body.statement_format.clone(),
        },
    )?;
    if let Some(name) = &body.settlement_reserve {
        record.settlement.0.reserve = reserve_number(state, name)?;
    }
    // Names are unique: claimed in memory against a concurrent twin, then checked durably.
    let name_key = records::channel_name_key(&record.name);
    let taken = || {
        Error::conflict(
            "duplicate_channel_name",
            format!("a channel named {:?} exists", body.name),
        )
        .with_param("name")
    };
    if records::read::<u128>(store, &name_key)?.is_some() {
        return Err(taken());
    }
    // Its position (receivable) and its fees (a cost) are platform accounts of any sign.
    // Reconciliation's suspense (issue #17) is kept per channel too.
    for role in [
        PlatformRole::ChannelReceivable,
        PlatformRole::ChannelFees,
        PlatformRole::SuspenseShort,
        PlatformRole::SuspenseLong,
    ] {
        let account = AccountId::platform_at_channel(role, number, currency.numeric());
        match ledger.create_account(account, currency, i64::MAX).await? {
            Ok(_) | Err(engine::Reject::AccountExists(_)) => {}
            Err(other) => return Err(Error::invalid(other.code(), other.to_string())),
        }
    }
    let runtime = ChannelRuntime::new(record.clone());
    let answer = view(&runtime, Timestamp(now_ns()), 0);
    let mut recs = vec![
        (records::channel_key(id), encode_sealed(state, &record)),
        (name_key, records::encode(&id)),
    ];
    recs.extend(extra(&answer));
    ledger.write_records(recs).await?;
    state.channels.insert(id, Mutex::new(runtime));
    Ok(answer)
}

/// The name of a stored statement layout.
pub fn statement_format_name(format: u8) -> &'static str {
    match format {
        1 => "wechat",
        _ => "alipay",
    }
}

/// The statement layout of a channel record.
pub fn statement_format(r: &ChannelRecord) -> engine::statement::Format {
    match r.statement_format.0 {
        1 => engine::statement::Format::Wechat,
        _ => engine::statement::Format::Alipay,
    }
}

/// A channel's configuration for the audit log (its notify secret left out).
pub fn record_json(r: &ChannelRecord) -> serde_json::Value {
    serde_json::json!({
        "name": r.name,
        "endpoint": r.endpoint,
        "enabled": r.enabled,
        "fee_rate_ppm": r.fee_rate_ppm,
        "fee_fixed_minor": r.fee_fixed_minor,
        "min_minor": r.min_minor,
        "max_minor": r.max_minor,
        "daily_limit_minor": r.daily_limit_minor,
        "priority": r.priority,
        "weight": r.weight,
        "inflight_max": r.inflight_max,
        "position_low_water_minor": r.position_low_water_minor.0,
        "settlement_lag_days": r.settlement.0.lag_days,
        "settlement_reserve": r.settlement.0.reserve,
        "statement_format": statement_format_name(r.statement_format.0),
    })
}

/// Adds the config file's channels that do not exist yet (by name); existing ones keep
/// what the admin API set.
pub async fn add_configured(state: &Platform) -> Result<usize, String> {
    let mut added = 0;
    for c in state.settings.channels.clone() {
        let exists = state.channels.iter().any(|e| {
            e.value()
                .lock()
                .map(|rt| rt.record().name == c.name)
                .unwrap_or(false)
        });
        if !exists {
            let name = c.name.clone();
            add(state, c, |_| Vec::new())
                .await
                .map_err(|e| format!("channel {name:?} from the config file: {e}"))?;
            added += 1;
        }
    }
    Ok(added)
}

/// Every channel's receivable balance (our position, sign flipped), by channel id.
async fn positions(
    state: &Platform,
    ledger: &actors::Ledger,
) -> Result<std::collections::HashMap<u128, i64>> {
    let accounts: Vec<(u128, AccountId)> = state
        .channels
        .iter()
        .filter_map(|c| {
            c.value().lock().ok().map(|rt| {
                let r = rt.record();
                (
                    r.id,
                    AccountId::platform_at_channel(
                        PlatformRole::ChannelReceivable,
                        r.number,
                        r.currency,
                    ),
                )
            })
        })
        .collect();
    let mut positions = std::collections::HashMap::new();
    for (id, account) in accounts {
        let balance = ledger
            .account(account)
            .await?
            .map(|a| a.account.balance)
            .unwrap_or(0);
        positions.insert(id, balance);
    }
    Ok(positions)
}

/// A channel's live state as the metrics and the ops page show it.
pub struct HealthSnapshot {
    pub name: String,
    /// ISO 4217 numeric code.
    pub currency: u16,
    /// 0 closed, 1 half open, 2 open.
    pub breaker: u8,
    pub success_ratio: f64,
    pub mean_latency_us: u64,
    pub calls: u32,
    pub inflight: u32,
    pub enabled: bool,
    /// Our position (what the channel owes us), minor units.
    pub position: i64,
    pub low_water: i64,
    pub volume_today: i64,
}

/// Every channel's live state, sorted by name; none before recovery finished.
pub async fn snapshots(state: &Platform) -> Vec<HealthSnapshot> {
    match state.ledger.get() {
        Some(ledger) => health_snapshot(state, ledger).await,
        None => Vec::new(),
    }
}

/// Every channel's live state, sorted by name (positions read through the ledger; a channel
/// whose position cannot be read shows 0).
pub async fn health_snapshot(state: &Platform, ledger: &actors::Ledger) -> Vec<HealthSnapshot> {
    let positions = positions(state, ledger).await.unwrap_or_default();
    let at = Timestamp(now_ns());
    let mut out: Vec<HealthSnapshot> = state
        .channels
        .iter()
        .filter_map(|c| {
            let position = positions.get(c.key()).copied().unwrap_or(0);
            c.value().lock().ok().map(|rt| {
                let r = rt.record();
                let (calls, _, latency_us) = rt.health.stats(at);
                HealthSnapshot {
                    name: r.name.clone(),
                    currency: r.currency,
                    breaker: match rt.health.breaker_at(at) {
                        BreakerState::Closed => 0,
                        BreakerState::HalfOpen { .. } => 1,
                        BreakerState::Open { .. } => 2,
                    },
                    success_ratio: f64::from(rt.health.success_ppm(at)) / 1_000_000.0,
                    mean_latency_us: latency_us,
                    calls,
                    inflight: rt.health.inflight,
                    enabled: r.enabled,
                    position: position.checked_neg().unwrap_or(i64::MAX),
                    low_water: r.position_low_water_minor.0,
                    volume_today: rt.health.volume_today(at),
                }
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Seconds a notification's timestamp may be off from our clock.
pub const NOTIFICATION_SKEW_SECS: u64 = 300;

/// `t=<unix seconds>,v1=<hex>` → (t, tag bytes).
fn parse_signature(header: &str) -> Option<(u64, Vec<u8>)> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=')? {
            ("t", value) => t = value.parse::<u64>().ok(),
            ("v1", value) if value.len() == 64 => {
                let bytes: Option<Vec<u8>> = (0..32)
                    .map(|i| u8::from_str_radix(&value[2 * i..2 * i + 2], 16).ok())
                    .collect();
                v1 = bytes;
            }
            _ => {}
        }
    }
    Some((t?, v1?))
}

/// Every channel with its live state and position, by name.
pub async fn list(state: &Platform) -> Result<Vec<ChannelView>> {
    let ledger = state.ledger()?;
    let at = Timestamp(now_ns());
    let positions = positions(state, ledger).await?;
    let mut data: Vec<ChannelView> = state
        .channels
        .iter()
        .filter_map(|c| {
            let position = positions.get(c.key()).copied().unwrap_or(0);
            c.value().lock().ok().map(|rt| view(&rt, at, position))
        })
        .collect();
    data.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(data)
}

/// Changes channel `id_text` (enable, disable, fees, limits, priority, weight, endpoint),
/// durably with its audit entry by `actor`. Returns the channel as changed.
pub async fn update(
    state: &Platform,
    actor: &crate::audit::Actor,
    id_text: &str,
    body: &UpdateChannel,
) -> Result<ChannelView> {
    let ledger = state.ledger()?;
    let _serial = state.channel_admin.lock().await;
    let not_found = || Error::not_found(format!("no channel {id_text:?}"));
    let id = parse_channel_id(id_text).ok_or_else(not_found)?;
    let mut record = {
        let entry = state.channels.get(&id).ok_or_else(not_found)?;
        let rt = entry
            .lock()
            .map_err(|_| Error::storage("channel state poisoned"))?;
        rt.record().clone()
    };
    let before = record.clone();
    apply(&mut record, body)?;
    if let Some(name) = &body.settlement_reserve {
        record.settlement.0.reserve = reserve_number(state, name)?;
    }
    let audit = crate::audit::record(
        state,
        actor,
        "channel.update",
        &channel_id_text(id),
        Some(&record_json(&before)),
        Some(&record_json(&record)),
    );
    ledger
        .write_records(vec![
            (records::channel_key(id), encode_sealed(state, &record)),
            audit,
        ])
        .await?;
    let receivable = AccountId::platform_at_channel(
        PlatformRole::ChannelReceivable,
        record.number,
        record.currency,
    );
    {
        let entry = state.channels.get(&id).ok_or_else(not_found)?;
        let mut rt = entry
            .lock()
            .map_err(|_| Error::storage("channel state poisoned"))?;
        rt.set_record(record);
    }
    // No lock is held across an await: the channel's state is read again after it.
    let position = ledger
        .account(receivable)
        .await?
        .map(|a| a.account.balance)
        .unwrap_or(0);
    let entry = state.channels.get(&id).ok_or_else(not_found)?;
    let rt = entry
        .lock()
        .map_err(|_| Error::storage("channel state poisoned"))?;
    Ok(view(&rt, Timestamp(now_ns()), position))
}

/// Checks a channel notification's `Channel-Signature` over `raw` (constant-time,
/// timestamp within ±[`NOTIFICATION_SKEW_SECS`]) with channel `id_text`'s notify secret.
fn verify_notification(
    state: &Platform,
    id_text: &str,
    signature: Option<&str>,
    raw: &[u8],
) -> Result<()> {
    use hmac::{KeyInit, Mac};
    let not_found = || Error::not_found(format!("no channel {id_text:?}"));
    let id = parse_channel_id(id_text).ok_or_else(not_found)?;
    let secret = {
        let entry = state.channels.get(&id).ok_or_else(not_found)?;
        let rt = entry
            .lock()
            .map_err(|_| Error::storage("channel state poisoned"))?;
        rt.record().notify_secret.clone()
    };
    let unauthenticated = |why: &str| Error::Unauthenticated {
        code: "invalid_signature",
        message: why.to_string(),
    };
    let secret = secret.ok_or_else(|| unauthenticated("this channel has no notify_secret"))?;
    let (t, tag) = signature
        .and_then(parse_signature)
        .ok_or_else(|| unauthenticated("Channel-Signature is missing or malformed"))?;
    let now = now_ns() / 1_000_000_000;
    if now.abs_diff(t) > NOTIFICATION_SKEW_SECS {
        return Err(unauthenticated(
            "the signature's timestamp is outside ±300 s",
        ));
    }
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| Error::storage("bad notify_secret"))?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(raw);
    mac.verify_slice(&tag)
        .map_err(|_| unauthenticated("the signature does not match"))
}

/// A payout channel's asynchronous result for a settlement payout, verified like a
/// charge's notification and applied at most once (`crate::payouts::resolve`). Returns
/// whether it resolved the payout (false: already resolved, or a replay).
pub async fn payout_notification(
    state: &Platform,
    id_text: &str,
    signature: Option<&str>,
    raw: &[u8],
    notification: wire::PayoutNotification,
) -> Result<bool> {
    verify_notification(state, id_text, signature, raw)?;
    crate::payouts::resolve(state, notification.payout, "notification").await
}

/// A channel's asynchronous result for a charge (`raw`: the body as sent, `notification`:
/// it parsed), verified by its `Channel-Signature` (constant-time, timestamp within
/// ±[`NOTIFICATION_SKEW_SECS`]), applied at most once. Returns whether it changed the
/// payment (false: already resolved, or a replay).
pub async fn notification(
    state: &Platform,
    id_text: &str,
    signature: Option<&str>,
    raw: &[u8],
    notification: wire::Notification,
) -> Result<bool> {
    verify_notification(state, id_text, signature, raw)?;
    // The request id names the payment: `pay_<hex>-<attempt>`.
    let payment_id = notification
        .charge
        .request_id
        .rsplit_once('-')
        .and_then(|(pay, _)| pay.strip_prefix("pay_"))
        .and_then(|hex| u128::from_str_radix(hex, 16).ok())
        .ok_or_else(|| Error::not_found("no payment for this request_id"))?;
    let request_id = notification.charge.request_id.clone();
    crate::card_payments::resolve(
        state,
        payment_id,
        &request_id,
        Some(notification.charge),
        "notification",
    )
    .await
}

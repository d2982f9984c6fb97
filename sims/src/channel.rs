//! The channel simulator (`channel-sim`, test and development tooling): plays any number of
//! banks / third-party channels on loopback, each on its own port, with the failure modes a
//! real channel has. It speaks payd's channel protocol, `services::channels::wire`.
//!
//! Per channel: a latency distribution (log-normal around `latency_ms`), technical errors
//! (`503`, money definitely not taken: safe to retry elsewhere), issuer declines (final),
//! timeouts (the charge or refund is decided and recorded, but no answer comes), down (the port refuses
//! connections), and an asynchronous result notification `notify_delay_ms` after each charge,
//! signed with the channel's secret. Charges and refunds are idempotent on our `request_id`
//! and kept as the channel's own record (its statement, for reconciliation).
//!
//! Control plane (on the simulator's main address):
//! - `PUT /_sim/channels/{name}` with any of `{"latency_ms", "error_rate", "decline_rate",
//!   "timeout_rate", "down", "notify_delay_ms", "fee_rate_ppm", "business_date",
//!   "merchant_account", "plant_next", "reveal"}`: creates the channel or changes it live
//!   (`business_date`: the channel's own date for what it records from now on; unset,
//!   today in UTC+8; `plant_next`: differences planted in its record of the next
//!   succeeded charges, for reconciliation tests);
//!   answers its state, including its `url`, and `inflight` / `peak_inflight` (charge
//!   requests being handled now, and the most at once).
//! - `GET /_sim/channels`: every channel; `GET /_sim/channels/{name}/records`: its charges
//!   and refunds in the order they were decided (a card authorization's charge when it is
//!   captured); `GET /_sim/channels/{name}/authorizations`: its card authorizations and what
//!   became of each (`changes`: captures and voids that took effect, at most one).
//!
//! Channel plane (on the channel's own `url`):
//! - `POST /charges` [`ChargeRequest`] → `200` [`ChargeAnswer`] (`succeeded` or `declined`),
//!   `503` technical error, or no answer (timeout).
//! - `GET /charges/{request_id}` → the recorded charge (status sync), `404` when unknown.
//! - `POST /refunds` [`RefundRequest`] → `200` [`RefundAnswer`], `503` technical error, or
//!   no answer (timeout: decided and recorded, like a charge).
//! - `GET /refunds/{request_id}` → the recorded refund (status sync), `404` when unknown.
//! - `POST /payouts` [`PayoutRequest`] → `200` [`PayoutAnswer`] (`succeeded`, or `declined`
//!   at `decline_rate`: "account_invalid"), `503` at `error_rate` (nothing paid), or no
//!   answer at `timeout_rate` (decided and recorded); a signed [`PayoutNotification`] to its
//!   `notify_url` after `notify_delay_ms`. Idempotent on `request_id`: a payout is paid at
//!   most once whatever payd retries (issue #16).
//! - `GET /payouts/{request_id}` → the recorded payout (status sync), `404` when unknown.
//! - `GET /statements?date=D&format=alipay|wechat[&charset=utf-8]` → its statement of date
//!   D (issue #17): every succeeded charge and refund recorded under that date (a refund
//!   with the part of the charge's fee it returns, half up on cumulative amounts), as an
//!   Alipay trade bill or a WeChat Pay bill (`engine::statement`), GBK unless asked, CRLF.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use engine::statement::{write, Charset, Format, Row, RowKind, Statement};
use rand::Rng;
use serde::{Deserialize, Serialize};
pub use services::channels::wire::{
    CaptureRequest, ChargeAnswer, ChargeRequest, ChargeStatus, Notification, PayoutAnswer,
    PayoutNotification, PayoutRequest, RefundAnswer, RefundRequest,
};
use services::signature::sign;

/// Charges and refunds a channel remembers; beyond it new ones are refused with 503.
pub const RECORDS_MAX: usize = 1_000_000;
/// How long a timed-out charge keeps its connection without answering.
pub const HANG_MS: u64 = 120_000;
/// Notification attempts per charge (1 s apart).
const NOTIFY_ATTEMPTS: u32 = 5;

/// Settings of one simulated channel (all optional in a `PUT`: unset fields keep their value).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettings {
    pub latency_ms: Option<f64>,
    pub error_rate: Option<f64>,
    pub decline_rate: Option<f64>,
    pub timeout_rate: Option<f64>,
    pub down: Option<bool>,
    pub notify_delay_ms: Option<u64>,
    /// The channel's fee in parts per million of each charge, rounded half up, reported in
    /// each charge's answer (`fee_minor`); unset: the answers report no fee.
    pub fee_rate_ppm: Option<u32>,
    /// The channel's own accounting date (`YYYY-MM-DD`) for what it records from now on:
    /// the date its statement lists a charge or refund under. Unset: today in UTC+8, as
    /// the channels keep their days.
    pub business_date: Option<String>,
    /// The merchant account its statements name (账号 / 商户号).
    pub merchant_account: Option<String>,
    /// Differences to plant (reconciliation tests, issue #17), one per succeeded charge
    /// from now on, in order: `unanswered` (charged and listed, but no answer comes and the
    /// status query answers 503 until `reveal`), `charged_on_error` (charged and listed,
    /// but answered 503 "nothing was charged"), `omit` (answered, never listed),
    /// `amount` (listed 1.00 more), `fee` (listed with 0.01 more fee), `duplicate`
    /// (listed twice), `next_day` (listed under the channel's next date).
    pub plant_next: Option<Vec<String>>,
    /// `true`: the status query answers the `unanswered` charges again.
    pub reveal: Option<bool>,
}

/// The differences `plant_next` takes.
pub const PLANTS: [&str; 7] = [
    "unanswered",
    "charged_on_error",
    "omit",
    "amount",
    "fee",
    "duplicate",
    "next_day",
];

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChannelConfig {
    /// Median answer time; the spread is log-normal (σ = 0.3).
    pub latency_ms: f64,
    pub error_rate: f64,
    pub decline_rate: f64,
    pub timeout_rate: f64,
    pub down: bool,
    pub notify_delay_ms: u64,
    pub fee_rate_ppm: Option<u32>,
    pub business_date: Option<String>,
    pub merchant_account: String,
    /// Differences still to plant, in order (`ChannelSettings::plant_next`).
    pub plants: std::collections::VecDeque<String>,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            latency_ms: 1.0,
            error_rate: 0.0,
            decline_rate: 0.0,
            timeout_rate: 0.0,
            down: false,
            notify_delay_ms: 100,
            fee_rate_ppm: None,
            business_date: None,
            merchant_account: "2088102170000156".to_string(),
            plants: Default::default(),
        }
    }
}

impl ChannelConfig {
    fn apply(&mut self, s: &ChannelSettings) -> Result<(), String> {
        let mut next = self.clone();
        if let Some(v) = s.latency_ms {
            next.latency_ms = v;
        }
        if let Some(v) = s.error_rate {
            next.error_rate = v;
        }
        if let Some(v) = s.decline_rate {
            next.decline_rate = v;
        }
        if let Some(v) = s.timeout_rate {
            next.timeout_rate = v;
        }
        if let Some(v) = s.down {
            next.down = v;
        }
        if let Some(v) = s.notify_delay_ms {
            next.notify_delay_ms = v;
        }
        if let Some(d) = &s.business_date {
            if jiff::civil::Date::strptime("%Y-%m-%d", d).is_err() {
                return Err("business_date must be YYYY-MM-DD".into());
            }
            next.business_date = Some(d.clone());
        }
        if let Some(a) = &s.merchant_account {
            if a.is_empty() || a.len() > 32 || !a.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err("merchant_account must be 1 to 32 letters and digits".into());
            }
            next.merchant_account = a.clone();
        }
        if let Some(plants) = &s.plant_next {
            if let Some(bad) = plants.iter().find(|p| !PLANTS.contains(&p.as_str())) {
                return Err(format!("unknown plant {bad:?}; one of {PLANTS:?}"));
            }
            if next.plants.len() + plants.len() > 1_000 {
                return Err("at most 1000 plants wait at once".into());
            }
            next.plants.extend(plants.iter().cloned());
        }
        if let Some(v) = s.fee_rate_ppm {
            if v > 1_000_000 {
                return Err("fee_rate_ppm must be within 0..=1000000".into());
            }
            next.fee_rate_ppm = Some(v);
        }
        if !(0.0..=60_000.0).contains(&next.latency_ms) {
            return Err("latency_ms must be within 0..=60000".into());
        }
        for (name, rate) in [
            ("error_rate", next.error_rate),
            ("decline_rate", next.decline_rate),
            ("timeout_rate", next.timeout_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be within 0..=1"));
            }
        }
        if next.error_rate + next.timeout_rate > 1.0 {
            return Err("error_rate + timeout_rate must not exceed 1".into());
        }
        if next.notify_delay_ms > 3_600_000 {
            return Err("notify_delay_ms must be within 0..=3600000".into());
        }
        *self = next;
        Ok(())
    }
}

/// One line of a channel's own record.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Charge(ChargeAnswer),
    Refund(RefundAnswer),
    Payout(PayoutAnswer),
}

#[derive(Default)]
struct Ledger {
    charges: HashMap<String, ChargeAnswer>,
    refunds: HashMap<String, RefundAnswer>,
    payouts: HashMap<String, PayoutAnswer>,
    records: Vec<Record>,
    /// What its statements list: each succeeded charge and refund under the channel's
    /// date when it happened.
    statement: Vec<(String, Row)>,
    /// Charges planted `unanswered`: the status query answers 503 until revealed.
    hidden: std::collections::HashSet<String>,
    /// Card authorizations (issue #19), in the order they were decided.
    authorizations: Vec<Authorization>,
}

/// One authorization and what became of it.
#[derive(Clone, Debug, Serialize)]
struct Authorization {
    request_id: String,
    authorized_minor: i64,
    declined: bool,
    captured_minor: Option<i64>,
    voided: bool,
    /// Captures and voids that took effect (a repeat does not count): at most one.
    changes: u32,
}

/// The channel's date after `date` (`YYYY-MM-DD`).
fn day_after(date: &str) -> String {
    jiff::civil::Date::strptime("%Y-%m-%d", date)
        .ok()
        .and_then(|d| d.tomorrow().ok())
        .map_or_else(|| date.to_string(), |d| d.strftime("%Y-%m-%d").to_string())
}

/// The wall clock in UTC+8 (China Standard Time), the channels' day.
fn utc8_now() -> jiff::civil::DateTime {
    jiff::tz::TimeZone::fixed(jiff::tz::Offset::constant(8)).to_datetime(jiff::Timestamp::now())
}

/// The channel's date now (UTC+8 unless set) and the time as its bills print it.
fn channel_now(config: &ChannelConfig) -> (String, String) {
    let now = utc8_now();
    let date = config
        .business_date
        .clone()
        .unwrap_or_else(|| now.strftime("%Y-%m-%d").to_string());
    // The time of day on the channel's own date: a statement's rows fall within its date.
    let time = format!("{date} {}", now.strftime("%H:%M:%S"));
    (date, time)
}

/// round_half_up(fee × part / amount), in integers.
fn fee_part(fee: i64, part: i64, amount: i64) -> i64 {
    let v =
        (2 * i128::from(fee) * i128::from(part) + i128::from(amount)) / (2 * i128::from(amount));
    i64::try_from(v).unwrap_or(0)
}

pub struct Channel {
    pub name: String,
    pub addr: SocketAddr,
    /// Served over TLS (the simulator's `--tls-cert`).
    tls: bool,
    secret: String,
    config: Mutex<ChannelConfig>,
    ledger: Mutex<Ledger>,
    server: Mutex<Option<ServerHandle>>,
    /// Charge requests being handled now, and the most ever at once (shows that payd's
    /// bulkhead holds).
    inflight: AtomicU32,
    peak_inflight: AtomicU32,
}

/// Counts a charge request in flight for as long as it lives.
struct InFlight<'a>(&'a Channel);

impl<'a> InFlight<'a> {
    fn new(channel: &'a Channel) -> InFlight<'a> {
        let now = channel.inflight.fetch_add(1, Ordering::SeqCst) + 1;
        channel.peak_inflight.fetch_max(now, Ordering::SeqCst);
        InFlight(channel)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Serialize)]
struct ChannelView {
    name: String,
    url: String,
    secret: String,
    #[serde(flatten)]
    config: ChannelConfig,
    charges: usize,
    refunds: usize,
    payouts: usize,
    inflight: u32,
    peak_inflight: u32,
}

impl Channel {
    fn view(&self) -> ChannelView {
        let ledger = self.ledger.lock().expect("sim ledger");
        ChannelView {
            name: self.name.clone(),
            url: self.url(),
            secret: self.secret.clone(),
            config: self.config.lock().expect("sim config").clone(),
            charges: ledger.charges.len(),
            refunds: ledger.refunds.len(),
            payouts: ledger.payouts.len(),
            inflight: self.inflight.load(Ordering::SeqCst),
            peak_inflight: self.peak_inflight.load(Ordering::SeqCst),
        }
    }

    /// `http://` or, when the simulator serves TLS, `https://` and the address.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Waits out one call's latency, to within tens of microseconds (`loadtest::delay`:
    /// tokio's millisecond timer answered a 1 ms channel in 2.5 ms).
    async fn wait(&self) {
        loadtest::delay::sleep(self.latency()).await;
    }

    fn latency(&self) -> Duration {
        let median = self.config.lock().expect("sim config").latency_ms;
        // Log-normal: exp(N(0, 0.3)) via Box-Muller.
        let mut rng = rand::rng();
        let (u1, u2): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        Duration::from_secs_f64((median * (0.3 * z).exp()).max(0.0) / 1000.0)
    }
}

pub struct Sim {
    channels: Mutex<HashMap<String, Arc<Channel>>>,
    http: reqwest::Client,
    /// When set, every channel speaks HTTPS with this certificate (the control plane stays
    /// plain HTTP).
    tls: Option<rustls::ServerConfig>,
}

impl Sim {
    pub fn new(tls: Option<rustls::ServerConfig>) -> Arc<Sim> {
        Arc::new(Sim {
            tls,
            channels: Mutex::default(),
            http: crate::http_client(Duration::from_secs(5)),
        })
    }

    fn get(&self, name: &str) -> Option<Arc<Channel>> {
        self.channels.lock().expect("sim").get(name).cloned()
    }

    /// Creates `name` (on a free loopback port) or changes its settings.
    pub fn put(
        self: &Arc<Self>,
        name: &str,
        settings: &ChannelSettings,
    ) -> Result<Arc<Channel>, String> {
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err("a channel name is 1-64 letters, digits, '_' or '-'".into());
        }
        let existing = self.get(name);
        let channel = match existing {
            Some(c) => c,
            None => {
                let mut config = ChannelConfig::default();
                config.apply(settings)?;
                // The listener the kernel picked the port for is the one that serves: a
                // dropped-and-rebound port can be taken in between by anyone who was handed it
                // free (seen in sims' tests: a parallel test's sim bound it, this channel's
                // rebind failed and the sim exited under the test's first request).
                let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
                let addr = listener.local_addr().map_err(|e| e.to_string())?;
                let secret: String = (0..32)
                    .map(|_| format!("{:x}", rand::rng().random_range(0..16u8)))
                    .collect();
                let channel = Arc::new(Channel {
                    name: name.to_string(),
                    addr,
                    tls: self.tls.is_some(),
                    secret,
                    config: Mutex::new(config),
                    ledger: Mutex::default(),
                    server: Mutex::new(None),
                    inflight: AtomicU32::new(0),
                    peak_inflight: AtomicU32::new(0),
                });
                self.channels
                    .lock()
                    .expect("sim")
                    .insert(name.to_string(), channel.clone());
                self.sync_listener(&channel, Some(listener))?;
                return Ok(channel);
            }
        };
        channel.config.lock().expect("sim config").apply(settings)?;
        if settings.reveal == Some(true) {
            channel.ledger.lock().expect("sim ledger").hidden.clear();
        }
        self.sync_listener(&channel, None)?;
        Ok(channel)
    }

    /// Listening when up, not listening (connections refused) when down; a new channel hands
    /// over the listener its port came from, a channel coming back up binds its port again.
    fn sync_listener(
        self: &Arc<Self>,
        channel: &Arc<Channel>,
        mut fresh: Option<TcpListener>,
    ) -> Result<(), String> {
        let down = channel.config.lock().expect("sim config").down;
        let mut server = channel.server.lock().expect("sim server");
        match (down, server.is_some()) {
            (true, true) => {
                if let Some(handle) = server.take() {
                    // Stop accepting at once; in-flight requests are dropped too.
                    actix_rt::spawn(async move { handle.stop(false).await });
                }
            }
            (false, false) => {
                let (sim, ch) = (self.clone(), channel.clone());
                let mut attempts = 0;
                let running = loop {
                    let (sim, ch) = (sim.clone(), ch.clone());
                    let built = HttpServer::new(move || {
                        App::new()
                            .app_data(web::Data::new((sim.clone(), ch.clone())))
                            .route("/charges", web::post().to(charge))
                            .route("/charges/{request_id}", web::get().to(charge_status))
                            .route("/charges/{request_id}/capture", web::post().to(capture))
                            .route("/charges/{request_id}/void", web::post().to(void))
                            .route("/refunds", web::post().to(refund))
                            .route("/refunds/{request_id}", web::get().to(refund_status))
                            .route("/payouts", web::post().to(payout))
                            .route("/payouts/{request_id}", web::get().to(payout_status))
                            .route("/statements", web::get().to(statement))
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(0);
                    let built = match (fresh.take(), &self.tls) {
                        (Some(l), Some(tls)) => built.listen_rustls_0_23(l, tls.clone()),
                        (Some(l), None) => built.listen(l),
                        (None, Some(tls)) => built.bind_rustls_0_23(channel.addr, tls.clone()),
                        (None, None) => built.bind(channel.addr),
                    };
                    match built {
                        Ok(b) => break b.run(),
                        // The port may linger briefly after going down.
                        Err(_) if attempts < 50 => {
                            attempts += 1;
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Err(e) => return Err(format!("cannot listen on {}: {e}", channel.addr)),
                    }
                };
                *server = Some(running.handle());
                actix_rt::spawn(running);
            }
            _ => {}
        }
        Ok(())
    }

    fn notify(self: &Arc<Self>, channel: &Arc<Channel>, url: String, charge: ChargeAnswer) {
        let body = serde_json::to_vec(&Notification {
            channel: channel.name.clone(),
            charge,
        })
        .expect("a notification serializes");
        self.post_signed(channel, url, body);
    }

    fn notify_payout(self: &Arc<Self>, channel: &Arc<Channel>, url: String, payout: PayoutAnswer) {
        let body = serde_json::to_vec(&PayoutNotification {
            channel: channel.name.clone(),
            payout,
        })
        .expect("a notification serializes");
        self.post_signed(channel, url, body);
    }

    /// POSTs `body` to `url` after the channel's `notify_delay_ms`, signed, retried.
    fn post_signed(self: &Arc<Self>, channel: &Arc<Channel>, url: String, body: Vec<u8>) {
        let (sim, channel) = (self.clone(), channel.clone());
        let delay = channel.config.lock().expect("sim config").notify_delay_ms;
        actix_rt::spawn(async move {
            actix_rt::time::sleep(Duration::from_millis(delay)).await;
            for attempt in 0..NOTIFY_ATTEMPTS {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let sent = sim
                    .http
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header(
                        "Channel-Signature",
                        sign(channel.secret.as_bytes(), t, &body),
                    )
                    .body(body.clone())
                    .send()
                    .await;
                if sent.is_ok_and(|r| r.status().is_success()) {
                    return;
                }
                actix_rt::time::sleep(Duration::from_secs(1 + attempt as u64)).await;
            }
        });
    }
}

type ChannelData = web::Data<(Arc<Sim>, Arc<Channel>)>;

fn unavailable(why: &str) -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "error", "error": why}))
}

async fn charge(data: ChannelData, body: web::Json<ChargeRequest>) -> HttpResponse {
    let (sim, channel) = (&data.0, &data.1);
    let _inflight = InFlight::new(channel);
    let req = body.into_inner();
    channel.wait().await;
    if req.amount_minor <= 0 || req.request_id.is_empty() || req.request_id.len() > 128 {
        return HttpResponse::BadRequest()
            .json(serde_json::json!({"status": "error", "error": "invalid request"}));
    }
    let config = channel.config.lock().expect("sim config").clone();
    let (answer, hang) = {
        let mut ledger = channel.ledger.lock().expect("sim ledger");
        if let Some(done) = ledger.charges.get(&req.request_id) {
            // Idempotent: the recorded result, however the first attempt ended.
            (done.clone(), false)
        } else {
            let mut rng = rand::rng();
            let roll: f64 = rng.random();
            if roll < config.error_rate {
                return unavailable("technical error: nothing was charged");
            }
            if ledger.records.len() >= RECORDS_MAX {
                return unavailable("the simulator's record is full");
            }
            let hang = roll < config.error_rate + config.timeout_rate;
            let declined = rng.random::<f64>() < config.decline_rate;
            // An authorization (issue #19) holds the amount: no charge, no record, no
            // statement line, no fee until its capture.
            let authorize = req.capture == Some(false);
            let answer = ChargeAnswer {
                request_id: req.request_id.clone(),
                status: if declined {
                    ChargeStatus::Declined
                } else if authorize {
                    ChargeStatus::Authorized
                } else {
                    ChargeStatus::Succeeded
                },
                channel_ref: format!("{}_{:016x}", channel.name, rng.random::<u64>()),
                amount_minor: req.amount_minor,
                currency: req.currency.clone(),
                decline_reason: declined.then(|| "do_not_honor".to_string()),
                refunded_minor: 0,
                // Half up, in integers: (amount × ppm + 500,000) / 1,000,000.
                fee_minor: config
                    .fee_rate_ppm
                    .filter(|_| !declined && !authorize)
                    .map(|ppm| fee_of(req.amount_minor, ppm)),
            };
            ledger
                .charges
                .insert(req.request_id.clone(), answer.clone());
            if authorize {
                ledger.authorizations.push(Authorization {
                    request_id: req.request_id.clone(),
                    authorized_minor: req.amount_minor,
                    declined,
                    captured_minor: None,
                    voided: false,
                    changes: 0,
                });
                return HttpResponse::Ok().json(answer);
            }
            ledger.records.push(Record::Charge(answer.clone()));
            let plant = if declined {
                None
            } else {
                channel
                    .config
                    .lock()
                    .expect("sim config")
                    .plants
                    .pop_front()
            };
            let mut hang = hang;
            if !declined {
                let (mut date, time) = channel_now(&config);
                let mut row = Row {
                    kind: RowKind::Charge,
                    channel_reference: answer.channel_ref.clone(),
                    out_trade_no: req.request_id.clone(),
                    out_refund_no: None,
                    amount: req.amount_minor,
                    fee: answer.fee_minor.unwrap_or(0),
                    time,
                    subject: "payment".to_string(),
                };
                match plant.as_deref() {
                    Some("omit") => {}
                    Some(p) => {
                        match p {
                            "amount" => row.amount += 100,
                            "fee" => row.fee += 1,
                            "duplicate" => ledger.statement.push((date.clone(), row.clone())),
                            "next_day" => {
                                date = day_after(&date);
                                row.time = format!("{date}{}", row.time.get(10..).unwrap_or(""));
                            }
                            "unanswered" => {
                                ledger.hidden.insert(req.request_id.clone());
                                hang = true;
                            }
                            _ => {}
                        }
                        ledger.statement.push((date, row));
                    }
                    None => ledger.statement.push((date, row)),
                }
            }
            if plant.as_deref() == Some("charged_on_error") {
                return unavailable("technical error: nothing was charged");
            }
            if let Some(url) = req.notify_url.as_ref().filter(|_| plant.is_none()) {
                sim.notify(channel, url.clone(), answer.clone());
            }
            (answer, hang)
        }
    };
    if hang {
        actix_rt::time::sleep(Duration::from_millis(HANG_MS)).await;
        return unavailable("timed out");
    }
    HttpResponse::Ok().json(answer)
}

/// The channel's fee on `amount` at `ppm`, half up, in integers.
fn fee_of(amount: i64, ppm: u32) -> i64 {
    let fee = (i128::from(amount) * i128::from(ppm) + 500_000) / 1_000_000;
    i64::try_from(fee).unwrap_or(i64::MAX)
}

fn conflict(status: &str) -> HttpResponse {
    HttpResponse::Conflict().json(serde_json::json!({"status": status}))
}

/// `POST /charges/{request_id}/capture`: an authorization becomes a charge of the amount
/// captured (recorded, on the statement, with its fee), once.
async fn capture(
    data: ChannelData,
    path: web::Path<String>,
    body: web::Json<CaptureRequest>,
) -> HttpResponse {
    let channel = &data.1;
    channel.wait().await;
    let config = channel.config.lock().expect("sim config").clone();
    if rand::rng().random::<f64>() < config.error_rate {
        return unavailable("technical error: nothing was captured");
    }
    let amount = body.amount_minor;
    let mut ledger = channel.ledger.lock().expect("sim ledger");
    let Some(charge) = ledger.charges.get(path.as_str()).cloned() else {
        return HttpResponse::NotFound().json(serde_json::json!({"status": "not_found"}));
    };
    let Some(i) = ledger
        .authorizations
        .iter()
        .position(|a| a.request_id == *path)
    else {
        return conflict("not_an_authorization");
    };
    match charge.status {
        ChargeStatus::Succeeded if charge.amount_minor == amount => {
            return HttpResponse::Ok().json(charge)
        }
        ChargeStatus::Authorized if (1..=charge.amount_minor).contains(&amount) => {}
        ChargeStatus::Authorized => return conflict("amount_exceeds_authorization"),
        ChargeStatus::Voided => return conflict("voided"),
        _ => return conflict("not_capturable"),
    }
    let answer = ChargeAnswer {
        status: ChargeStatus::Succeeded,
        amount_minor: amount,
        fee_minor: config.fee_rate_ppm.map(|ppm| fee_of(amount, ppm)),
        ..charge
    };
    ledger.charges.insert(path.to_string(), answer.clone());
    ledger.records.push(Record::Charge(answer.clone()));
    let (date, time) = channel_now(&config);
    ledger.statement.push((
        date,
        Row {
            kind: RowKind::Charge,
            channel_reference: answer.channel_ref.clone(),
            out_trade_no: path.to_string(),
            out_refund_no: None,
            amount,
            fee: answer.fee_minor.unwrap_or(0),
            time,
            subject: "payment".to_string(),
        },
    ));
    let a = &mut ledger.authorizations[i];
    a.captured_minor = Some(amount);
    a.changes += 1;
    HttpResponse::Ok().json(answer)
}

/// `POST /charges/{request_id}/void`: an authorization released, once.
async fn void(data: ChannelData, path: web::Path<String>) -> HttpResponse {
    let channel = &data.1;
    channel.wait().await;
    let config = channel.config.lock().expect("sim config").clone();
    if rand::rng().random::<f64>() < config.error_rate {
        return unavailable("technical error: nothing was voided");
    }
    let mut ledger = channel.ledger.lock().expect("sim ledger");
    let Some(charge) = ledger.charges.get(path.as_str()).cloned() else {
        return HttpResponse::NotFound().json(serde_json::json!({"status": "not_found"}));
    };
    let Some(i) = ledger
        .authorizations
        .iter()
        .position(|a| a.request_id == *path)
    else {
        return conflict("not_an_authorization");
    };
    match charge.status {
        ChargeStatus::Voided => return HttpResponse::Ok().json(charge),
        ChargeStatus::Authorized => {}
        _ => return conflict("captured"),
    }
    let answer = ChargeAnswer {
        status: ChargeStatus::Voided,
        ..charge
    };
    ledger.charges.insert(path.to_string(), answer.clone());
    let a = &mut ledger.authorizations[i];
    a.voided = true;
    a.changes += 1;
    HttpResponse::Ok().json(answer)
}

/// `GET /_sim/channels/{name}/authorizations`: every authorization and what became of it
/// (`changes`: how many captures or voids took effect; at most one).
async fn authorizations(sim: web::Data<Arc<Sim>>, path: web::Path<String>) -> HttpResponse {
    match sim.get(&path) {
        Some(ch) => {
            let ledger = ch.ledger.lock().expect("sim ledger");
            HttpResponse::Ok().json(serde_json::json!({ "data": ledger.authorizations }))
        }
        None => HttpResponse::NotFound().json(serde_json::json!({"status": "not_found"})),
    }
}

async fn charge_status(data: ChannelData, path: web::Path<String>) -> HttpResponse {
    let channel = &data.1;
    channel.wait().await;
    let ledger = channel.ledger.lock().expect("sim ledger");
    if ledger.hidden.contains(path.as_str()) {
        return unavailable("technical error: try again later");
    }
    match ledger.charges.get(path.as_str()) {
        Some(c) => HttpResponse::Ok().json(c),
        None => HttpResponse::NotFound().json(serde_json::json!({"status": "not_found"})),
    }
}

async fn refund_status(data: ChannelData, path: web::Path<String>) -> HttpResponse {
    let channel = &data.1;
    channel.wait().await;
    let ledger = channel.ledger.lock().expect("sim ledger");
    match ledger.refunds.get(path.as_str()) {
        Some(r) => HttpResponse::Ok().json(r),
        None => HttpResponse::NotFound().json(serde_json::json!({"status": "not_found"})),
    }
}

async fn refund(data: ChannelData, body: web::Json<RefundRequest>) -> HttpResponse {
    let channel = &data.1;
    let req = body.into_inner();
    channel.wait().await;
    let rates = {
        let config = channel.config.lock().expect("sim config");
        (config.error_rate, config.timeout_rate, config.decline_rate)
    };
    let answer = match record_refund(channel, req, rates) {
        Ok(answer) => answer,
        Err(refused) => return refused,
    };
    match answer {
        (answer, false) => HttpResponse::Ok().json(answer),
        // Timed out: refunded (or declined) and recorded, but no answer comes back.
        (_, true) => {
            actix_rt::time::sleep(Duration::from_millis(HANG_MS)).await;
            unavailable("timed out")
        }
    }
}

/// Decides and records a refund (idempotent on its request id) with the channel's
/// (error, timeout, decline) rates; `true`: hang up on the caller instead of answering.
#[allow(clippy::result_large_err)]
fn record_refund(
    channel: &Channel,
    req: RefundRequest,
    (error_rate, timeout_rate, decline_rate): (f64, f64, f64),
) -> Result<(RefundAnswer, bool), HttpResponse> {
    let mut ledger = channel.ledger.lock().expect("sim ledger");
    if let Some(done) = ledger.refunds.get(&req.request_id) {
        return Ok((done.clone(), false));
    }
    let roll = rand::rng().random::<f64>();
    if roll < error_rate {
        return Err(unavailable("technical error: nothing was refunded"));
    }
    let hang = roll < error_rate + timeout_rate;
    if ledger.records.len() >= RECORDS_MAX {
        return Err(unavailable("the simulator's record is full"));
    }
    let decline = |reason: &str| RefundAnswer {
        request_id: req.request_id.clone(),
        charge_request_id: req.charge_request_id.clone(),
        status: ChargeStatus::Declined,
        amount_minor: req.amount_minor,
        decline_reason: Some(reason.to_string()),
    };
    let mut refund_row = None;
    let answer = match ledger.charges.get_mut(&req.charge_request_id) {
        None => decline("unknown_charge"),
        Some(c) if c.status != ChargeStatus::Succeeded => decline("charge_not_succeeded"),
        Some(c)
            if req.amount_minor <= 0 || req.amount_minor > c.amount_minor - c.refunded_minor =>
        {
            decline("exceeds_charge")
        }
        Some(_) if rand::rng().random::<f64>() < decline_rate => decline("do_not_honor"),
        Some(c) => {
            let before = c.refunded_minor;
            c.refunded_minor += req.amount_minor;
            // On its statement under the channel's date now, with the fee part it returns.
            let fee = c.fee_minor.unwrap_or(0);
            refund_row = Some(Row {
                kind: RowKind::Refund,
                channel_reference: c.channel_ref.clone(),
                out_trade_no: req.charge_request_id.clone(),
                out_refund_no: Some(req.request_id.clone()),
                amount: req.amount_minor,
                fee: fee_part(fee, c.refunded_minor, c.amount_minor)
                    - fee_part(fee, before, c.amount_minor),
                time: String::new(),
                subject: "refund".to_string(),
            });
            RefundAnswer {
                request_id: req.request_id.clone(),
                charge_request_id: req.charge_request_id.clone(),
                status: ChargeStatus::Succeeded,
                amount_minor: req.amount_minor,
                decline_reason: None,
            }
        }
    };
    ledger
        .refunds
        .insert(req.request_id.clone(), answer.clone());
    ledger.records.push(Record::Refund(answer.clone()));
    if let Some(mut row) = refund_row {
        let (date, time) = channel_now(&channel.config.lock().expect("sim config"));
        row.time = time;
        ledger.statement.push((date, row));
    }
    Ok((answer, hang))
}

async fn payout(data: ChannelData, body: web::Json<PayoutRequest>) -> HttpResponse {
    let (sim, channel) = (&data.0, &data.1);
    let req = body.into_inner();
    channel.wait().await;
    if req.amount_minor <= 0
        || req.request_id.is_empty()
        || req.request_id.len() > 128
        || req.account_number.is_empty()
    {
        return HttpResponse::BadRequest()
            .json(serde_json::json!({"status": "error", "error": "invalid request"}));
    }
    let config = channel.config.lock().expect("sim config").clone();
    let (answer, hang) = {
        let mut ledger = channel.ledger.lock().expect("sim ledger");
        if let Some(done) = ledger.payouts.get(&req.request_id) {
            // Idempotent: the recorded payout, however the first request ended.
            (done.clone(), false)
        } else {
            let mut rng = rand::rng();
            let roll: f64 = rng.random();
            if roll < config.error_rate {
                return unavailable("technical error: nothing was paid");
            }
            if ledger.records.len() >= RECORDS_MAX {
                return unavailable("the simulator's record is full");
            }
            let hang = roll < config.error_rate + config.timeout_rate;
            let declined = rng.random::<f64>() < config.decline_rate;
            let answer = PayoutAnswer {
                request_id: req.request_id.clone(),
                status: if declined {
                    ChargeStatus::Declined
                } else {
                    ChargeStatus::Succeeded
                },
                channel_ref: format!("{}_po_{:016x}", channel.name, rng.random::<u64>()),
                amount_minor: req.amount_minor,
                currency: req.currency.clone(),
                decline_reason: declined.then(|| "account_invalid".to_string()),
            };
            ledger
                .payouts
                .insert(req.request_id.clone(), answer.clone());
            ledger.records.push(Record::Payout(answer.clone()));
            if let Some(url) = &req.notify_url {
                sim.notify_payout(channel, url.clone(), answer.clone());
            }
            (answer, hang)
        }
    };
    if hang {
        actix_rt::time::sleep(Duration::from_millis(HANG_MS)).await;
        return unavailable("timed out");
    }
    HttpResponse::Ok().json(answer)
}

#[derive(Deserialize)]
struct StatementQuery {
    date: String,
    format: String,
    charset: Option<String>,
}

/// `GET /statements?date=D&format=alipay|wechat[&charset=utf-8]`: the channel's record of
/// date D (its succeeded charges and refunds) in that channel's published layout, GBK
/// unless asked otherwise, CRLF line ends.
async fn statement(data: ChannelData, q: web::Query<StatementQuery>) -> HttpResponse {
    let channel = &data.1;
    let Ok(date) = jiff::civil::Date::strptime("%Y-%m-%d", &q.date) else {
        return HttpResponse::BadRequest()
            .json(serde_json::json!({"error": "date must be YYYY-MM-DD"}));
    };
    let Some(format) = Format::parse(&q.format) else {
        return HttpResponse::BadRequest()
            .json(serde_json::json!({"error": "format must be alipay or wechat"}));
    };
    let charset = match q.charset.as_deref() {
        None | Some("gbk") => Charset::Gbk,
        Some("utf-8") => Charset::Utf8,
        Some(_) => {
            return HttpResponse::BadRequest()
                .json(serde_json::json!({"error": "charset must be gbk or utf-8"}))
        }
    };
    let account = channel
        .config
        .lock()
        .expect("sim config")
        .merchant_account
        .clone();
    let rows = channel
        .ledger
        .lock()
        .expect("sim ledger")
        .statement
        .iter()
        .filter(|(d, _)| *d == q.date)
        .map(|(_, r)| r.clone())
        .collect();
    let s = Statement {
        format,
        account,
        date: q.date.clone(),
        rows,
    };
    let next = date.tomorrow().map(|d| d.to_string()).unwrap_or_default();
    let exported = utc8_now().strftime("%Y年%m月%d日 %H:%M:%S").to_string();
    HttpResponse::Ok()
        .content_type(match charset {
            Charset::Gbk => "text/csv; charset=GBK",
            Charset::Utf8 => "text/csv; charset=utf-8",
        })
        .body(write(&s, &next, &exported, charset))
}

async fn payout_status(data: ChannelData, path: web::Path<String>) -> HttpResponse {
    let channel = &data.1;
    channel.wait().await;
    let ledger = channel.ledger.lock().expect("sim ledger");
    match ledger.payouts.get(path.as_str()) {
        Some(p) => HttpResponse::Ok().json(p),
        None => HttpResponse::NotFound().json(serde_json::json!({"status": "not_found"})),
    }
}

async fn put_channel(
    sim: web::Data<Arc<Sim>>,
    path: web::Path<String>,
    body: web::Json<ChannelSettings>,
) -> HttpResponse {
    match sim.put(&path, &body) {
        Ok(channel) => HttpResponse::Ok().json(channel.view()),
        Err(e) => HttpResponse::BadRequest().json(serde_json::json!({"error": e})),
    }
}

async fn list_channels(sim: web::Data<Arc<Sim>>) -> HttpResponse {
    let mut all: Vec<_> = sim
        .channels
        .lock()
        .expect("sim")
        .values()
        .map(|c| c.view())
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    HttpResponse::Ok().json(serde_json::json!({ "data": all }))
}

async fn records(sim: web::Data<Arc<Sim>>, path: web::Path<String>) -> HttpResponse {
    match sim.get(&path) {
        Some(c) => {
            let ledger = c.ledger.lock().expect("sim ledger");
            HttpResponse::Ok().json(serde_json::json!({ "data": ledger.records }))
        }
        None => HttpResponse::NotFound().json(serde_json::json!({"error": "no such channel"})),
    }
}

/// The channels' TLS configuration (rustls, ring, TLS 1.3/1.2) from `--tls-cert` (a PEM
/// chain, leaf first) and `--tls-key`, as payd's listener reads its own.
pub fn server_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<rustls::ServerConfig> {
    services::tls::server_config(cert, key)
        .map_err(|e| anyhow::anyhow!("--tls-cert / --tls-key: {e}"))
}

/// Runs the simulator's control plane on `listen` with `initial` channels; returns when the
/// process is told to stop (SIGINT/SIGTERM).
pub fn run(
    listen: &str,
    initial: Vec<(String, ChannelSettings)>,
    tls: Option<rustls::ServerConfig>,
) -> anyhow::Result<()> {
    actix_rt::System::new().block_on(async move {
        // The control port first: each channel takes a free port from the kernel, which
        // could otherwise hand it `listen`'s port when the caller has just found that free
        // the same way (seen in sims' tests: a channel on the control port, the control's
        // bind failing, the sim exiting under the test's first request).
        let control = std::net::TcpListener::bind(listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        let sim = Sim::new(tls);
        for (name, settings) in &initial {
            let c = sim.put(name, settings).map_err(anyhow::Error::msg)?;
            println!("channel-sim: channel {name} on {}", c.url());
        }
        let data = web::Data::new(sim);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::JsonConfig::default().limit(16 << 10))
                .route("/_sim/channels", web::get().to(list_channels))
                .route("/_sim/channels/{name}", web::put().to(put_channel))
                .route("/_sim/channels/{name}/records", web::get().to(records))
                .route(
                    "/_sim/channels/{name}/authorizations",
                    web::get().to(authorizations),
                )
        })
        .workers(1)
        .listen(control)?
        .run();
        println!("channel-sim: control on http://{listen}");
        server.await?;
        anyhow::Ok(())
    })
}

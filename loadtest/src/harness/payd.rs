//! payd over HTTP: setup through the public API (merchants, funded payers), the operations
//! of each scenario, and the end-of-run checks (every acknowledged payment present exactly
//! as answered, every balance what the acknowledged answers imply, money conserved).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rand::Rng;
use serde::Deserialize;

use super::report::Checks;
use super::{for_each_concurrently, Outcome, Target};

/// Results filled in by concurrent workers, one slot per item.
type Slots<T> = Rc<RefCell<Vec<Option<T>>>>;

/// The platform's CNY fee-income account (see `AccountId::platform`).
pub const FEE_ACCOUNT_CNY: &str = "acct_ffffffff00000000000000000002009c";
/// Recent requests kept for idempotent retries, and payments kept for refunds.
const RETRY_POOL_MAX: usize = 1_024;
const REFUND_POOL_MAX: usize = 4_096;
/// Acknowledged payments remembered for the checks (bounds memory: ~100 B each).
pub const ACKED_MAX: usize = 20_000_000;

/// One keep-alive HTTP/1.1 connection.
pub struct Http {
    sender: http1::SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

pub struct Answer {
    pub status: u16,
    pub replayed: bool,
    pub body: Bytes,
}

impl Http {
    pub async fn connect(addr: &str) -> anyhow::Result<Http> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        Ok(Http {
            sender,
            host: HeaderValue::from_str(addr)?,
        })
    }

    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        auth: Option<&HeaderValue>,
        key: Option<&str>,
        body: Option<Bytes>,
    ) -> anyhow::Result<Answer> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone());
        if let Some(a) = auth {
            req = req.header(AUTHORIZATION, a.clone());
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(body.unwrap_or_default()))?;
        self.sender.ready().await?;
        let res = self.sender.send_request(req).await?;
        let status = res.status().as_u16();
        let replayed = res.headers().contains_key("idempotent-replayed");
        let body = res.into_body().collect().await?.to_bytes();
        Ok(Answer {
            status,
            replayed,
            body,
        })
    }
}

/// Sends on `conn`, connecting first when it has none; drops it on a transport error.
async fn send(
    addr: &str,
    conn: &mut Option<Http>,
    method: Method,
    path: &str,
    auth: Option<&HeaderValue>,
    key: Option<&str>,
    body: Option<Bytes>,
) -> anyhow::Result<Answer> {
    if conn.is_none() {
        match Http::connect(addr).await {
            Ok(c) => *conn = Some(c),
            Err(e) => {
                // A server that is down refuses at once: back off instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                return Err(e);
            }
        }
    }
    let result = conn
        .as_mut()
        .expect("connected")
        .send(method, path, auth, key, body)
        .await;
    if result.is_err() {
        *conn = None;
    }
    result
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// `GET /healthz`: the server's trivial ceiling.
    Healthz,
    /// `POST /bench/floor` (operator; payd with `bench_floor` on) with a balance payment's
    /// body and an `Idempotency-Key`: the body made durable through payd's group-commit
    /// writer and nothing else, the floor a payment is measured against.
    Floor,
    /// Payers uniform over all accounts, merchants uniform over all merchants.
    Uniform,
    /// Payers uniform, every payment to one merchant.
    Hot,
    /// Bank-card payments (one card per merchant) routed by payd to the channels of a
    /// running channel-sim (`PaydConfig::sim`), merchants uniform.
    Card,
    /// `POST /v1/transfers/batch` (operator) of `PaydConfig::batch_size` transfers between
    /// payers drawn uniformly: the batch endpoint's transfers/s.
    Batch,
}

/// Shares of operations other than plain payments, in percent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mix {
    pub refund: u32,
    pub retry: u32,
    pub decline: u32,
}

impl Mix {
    /// `refund=5,retry=5,decline=5`.
    pub fn parse(text: &str) -> Result<Mix, String> {
        let mut mix = Mix::default();
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("mix {part:?}: expected name=percent"))?;
            let v: u32 = v
                .trim()
                .parse()
                .map_err(|_| format!("mix {part:?}: bad percent"))?;
            match k.trim() {
                "refund" => mix.refund = v,
                "retry" => mix.retry = v,
                "decline" => mix.decline = v,
                other => return Err(format!("unknown mix entry {other:?}")),
            }
        }
        if mix.refund + mix.retry + mix.decline > 100 {
            return Err("the mix adds up to more than 100%".into());
        }
        Ok(mix)
    }
}

#[derive(Clone, Debug)]
pub struct PaydConfig {
    pub addr: String,
    pub admin_token: String,
    pub scenario: Scenario,
    pub mix: Mix,
    pub accounts: usize,
    pub merchants: usize,
    /// Send an `Idempotency-Key` with every payment (what a careful merchant does).
    pub idempotency_keys: bool,
    pub setup_connections: usize,
    /// channel-sim's control address (host:port), for the card scenario: its channels are
    /// configured in payd at setup.
    pub sim: Option<String>,
    /// Transfers per request of the batch scenario (1..=8,190).
    pub batch_size: usize,
    /// Records each request of the floor scenario asks payd to write (1..=8).
    pub floor_records: u8,
}

struct Payer {
    id: String,
    deposited: i64,
    /// Acknowledged succeeded payments from it.
    paid: Cell<i64>,
}

struct Merchant {
    auth: HeaderValue,
    account: String,
    balance_before: i64,
    /// Its card token (card scenario).
    card: Option<String>,
}

struct Acked {
    id: String,
    merchant: u32,
    /// Index into `payers`, or `None` for a poor (declining) account.
    payer: Option<u32>,
    amount: i64,
    succeeded: bool,
    /// Answered `processing` (a channel gave no answer in time): its outcome is read back.
    pending: bool,
    refunded: i64,
    /// Refunds whose answer never came: they may or may not have happened.
    refund_unknown: i64,
}

/// A payment whose answer never came (transport error, or a 5xx that may have been durable):
/// resolved after the run by `out_trade_no`.
/// One transfer of a batch: payer indexes (from, to) and the amount in cents.
type Move = (usize, usize, i64);

struct Unknown {
    merchant: u32,
    payer: Option<u32>,
    amount: i64,
    out_trade_no: String,
}

pub struct RetrySlot {
    merchant: u32,
    key: String,
    body: Bytes,
    first: Bytes,
}

pub enum Op {
    Health,
    /// A request of the `floor` scenario.
    Floor(u64),
    /// One batch request (batch scenario).
    Batch(u64),
    Pay {
        merchant: u32,
        payer: Option<u32>,
        amount: i64,
        n: u64,
    },
    Refund {
        acked: usize,
        amount: i64,
        n: u64,
    },
    Retry(Rc<RetrySlot>),
}

pub struct Payd {
    config: PaydConfig,
    run: u32,
    payers: Vec<Payer>,
    poor: Vec<String>,
    merchants: Vec<Merchant>,
    fee_before: i64,
    acked: RefCell<Vec<Acked>>,
    refundable: RefCell<VecDeque<usize>>,
    retries: RefCell<VecDeque<Rc<RetrySlot>>>,
    unknown: RefCell<Vec<Unknown>>,
    /// Batches whose answer never came (batch scenario): body and moves, sent again at the
    /// check, where each transfer's id makes it `exists` or `created`, never twice.
    unknown_batches: RefCell<Vec<(Bytes, Vec<Move>)>>,
    dropped_acks: Cell<u64>,
    admin: HeaderValue,
    /// The floor scenario's path, with its `records` parameter.
    floor_path: String,
}

#[derive(Deserialize)]
struct PaymentAnswer<'a> {
    id: &'a str,
    status: &'a str,
    amount: &'a str,
    failure_code: Option<&'a str>,
    refunded_amount: &'a str,
}

/// The batch endpoint's answer, as much of it as the harness folds: one result a transfer.
/// Parsed typed and borrowed (not into `serde_json::Value`s): at 8,190 results a request
/// the harness's own parsing was most of its CPU, which, when payd shares the machine's
/// cores with it, is taken from payd.
#[derive(Deserialize)]
struct BatchAnswer<'a> {
    #[serde(borrow)]
    results: Vec<BatchResult<'a>>,
}

#[derive(Deserialize)]
struct BatchResult<'a> {
    #[serde(borrow)]
    status: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    code: Option<std::borrow::Cow<'a, str>>,
}

fn batch_results(body: &[u8]) -> Option<Vec<BatchResult<'_>>> {
    serde_json::from_slice::<BatchAnswer>(body)
        .ok()
        .map(|a| a.results)
}

/// Appends `v` cents as `12.34` (signs allowed), without allocating or the formatter (the
/// batch scenario writes one per transfer: the harness's CPU shares the cores with payd's in
/// the both-cores measure).
fn push_cents(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    let v = v.unsigned_abs();
    push_decimal(out, v / 100);
    out.push('.');
    let cents = (v % 100) as u8;
    out.push(char::from(b'0' + cents / 10));
    out.push(char::from(b'0' + cents % 10));
}

/// Appends `v` in decimal.
fn push_decimal(out: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).expect("ASCII digits"));
}

#[derive(Deserialize)]
struct ErrorAnswer<'a> {
    #[serde(borrow)]
    error: ErrorDetail<'a>,
}

#[derive(Deserialize)]
struct ErrorDetail<'a> {
    code: &'a str,
}

/// `"12.34"` → 1234 (CNY: always two decimals in answers), signs allowed.
pub fn cents(text: &str) -> anyhow::Result<i64> {
    let (int, frac) = text
        .split_once('.')
        .ok_or_else(|| anyhow!("amount {text:?} has no decimals"))?;
    if frac.len() != 2 {
        bail!("amount {text:?} is not at scale 2");
    }
    let neg = int.starts_with('-');
    let whole: i64 = int.trim_start_matches('-').parse()?;
    let f: i64 = frac.parse()?;
    let v = whole
        .checked_mul(100)
        .and_then(|v| v.checked_add(f))
        .ok_or_else(|| anyhow!("amount {text:?} overflows"))?;
    Ok(if neg { -v } else { v })
}

pub fn format_cents(v: i64) -> String {
    let mut s = String::with_capacity(8);
    push_cents(&mut s, v);
    s
}

fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorAnswer>(body)
        .map(|e| e.error.code.to_string())
        .unwrap_or_else(|_| "unparsable".to_string())
}

fn bearer(token: &str) -> anyhow::Result<HeaderValue> {
    Ok(HeaderValue::from_str(&format!("Bearer {token}"))?)
}

/// An admin POST that must answer 201; returns the JSON.
async fn create(
    addr: &str,
    conn: &mut Option<Http>,
    admin: &HeaderValue,
    path: &str,
    body: String,
) -> anyhow::Result<serde_json::Value> {
    let a = send(
        addr,
        conn,
        Method::POST,
        path,
        Some(admin),
        None,
        Some(body.into()),
    )
    .await?;
    if a.status != 201 {
        bail!(
            "POST {path}: {} {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        );
    }
    Ok(serde_json::from_slice(&a.body)?)
}

async fn balance_of(
    addr: &str,
    conn: &mut Option<Http>,
    admin: &HeaderValue,
    account: &str,
) -> anyhow::Result<i64> {
    let a = send(
        addr,
        conn,
        Method::GET,
        &format!("/v1/accounts/{account}"),
        Some(admin),
        None,
        None,
    )
    .await?;
    if a.status != 200 {
        bail!("GET account {account}: {}", a.status);
    }
    let v: serde_json::Value = serde_json::from_slice(&a.body)?;
    cents(v["balance"].as_str().unwrap_or(""))
}

/// Payers start with this much: no payment of the run declines for funds by accident.
const PAYER_FUNDS: i64 = 10_000_000_000;

impl Payd {
    /// Creates the merchants and funded payers through the public API.
    pub async fn setup(config: PaydConfig) -> anyhow::Result<Payd> {
        let admin = bearer(&config.admin_token)?;
        let run: u32 = rand::rng().random();
        let mut conn = None;
        let addr = config.addr.clone();
        let health = send(&addr, &mut conn, Method::GET, "/readyz", None, None, None).await?;
        if health.status != 200 {
            bail!("{addr} is not ready ({})", health.status);
        }
        let (n_merchants, n_payers, n_poor) = match config.scenario {
            Scenario::Healthz | Scenario::Floor => (0, 0, 0),
            Scenario::Hot => (1, config.accounts, 64),
            Scenario::Uniform => (config.merchants.max(1), config.accounts, 64),
            Scenario::Card => (config.merchants.max(1), 0, 0),
            Scenario::Batch => (0, config.accounts.max(2), 0),
        };
        if config.scenario == Scenario::Card {
            let sim = config
                .sim
                .clone()
                .ok_or_else(|| anyhow!("the card scenario needs channel-sim's address (--sim)"))?;
            let mut sim_conn = None;
            let a = send(
                &sim,
                &mut sim_conn,
                Method::GET,
                "/_sim/channels",
                None,
                None,
                None,
            )
            .await?;
            let v: serde_json::Value = serde_json::from_slice(&a.body)?;
            let channels = v["data"].as_array().cloned().unwrap_or_default();
            if channels.is_empty() {
                bail!("channel-sim at {sim} has no channels");
            }
            for c in channels {
                let name = c["name"].as_str().unwrap_or("");
                let url = c["url"].as_str().unwrap_or("");
                create(
                    &addr,
                    &mut conn,
                    &admin,
                    "/v1/channels",
                    format!(
                        r#"{{"name":"lt{run:08x}-{name}","endpoint":"{url}","methods":["bank_card"],"currency":"CNY","fee_rate":"0.002","max_amount":"50000.00","daily_limit":"10000000000.00","inflight_max":1000}}"#
                    ),
                )
                .await?;
            }
        }
        let fee_before = if n_merchants > 0 {
            balance_of(&addr, &mut conn, &admin, FEE_ACCOUNT_CNY).await?
        } else {
            0
        };
        let mut merchants = Vec::with_capacity(n_merchants);
        for m in 0..n_merchants {
            let v = create(
                &addr,
                &mut conn,
                &admin,
                "/v1/merchants",
                format!(r#"{{"name":"loadtest {run:08x} #{m}","fee_rate":"0.006"}}"#),
            )
            .await?;
            let auth = bearer(v["secret_key"].as_str().unwrap_or(""))?;
            let card = if config.scenario == Scenario::Card {
                let a = send(
                    &addr,
                    &mut conn,
                    Method::POST,
                    "/v1/cards",
                    Some(&auth),
                    None,
                    Some(Bytes::from_static(
                        br#"{"card_number":"4111111111111111","exp_month":12,"exp_year":2030,"holder":"Load Test"}"#,
                    )),
                )
                .await?;
                let v: serde_json::Value = serde_json::from_slice(&a.body)?;
                Some(v["card_token"].as_str().unwrap_or("").to_string())
            } else {
                None
            };
            merchants.push(Merchant {
                auth,
                account: v["account_id"].as_str().unwrap_or("").to_string(),
                balance_before: 0,
                card,
            });
        }
        let accounts: Slots<(String, bool)> = Rc::new(RefCell::new(vec![None; n_payers + n_poor]));
        let failure: Rc<RefCell<Option<anyhow::Error>>> = Rc::default();
        {
            let (accounts, failure, addr, admin) = (
                accounts.clone(),
                failure.clone(),
                addr.clone(),
                admin.clone(),
            );
            for_each_concurrently(
                n_payers + n_poor,
                config.setup_connections,
                move |i, mut conn: Option<Http>| {
                    let (accounts, failure, addr, admin) = (
                        accounts.clone(),
                        failure.clone(),
                        addr.clone(),
                        admin.clone(),
                    );
                    async move {
                        let poor = i >= n_payers;
                        let made = async {
                            let v = create(
                                &addr,
                                &mut conn,
                                &admin,
                                "/v1/accounts",
                                format!(r#"{{"currency":"CNY","owner":"loadtest {run:08x}"}}"#),
                            )
                            .await?;
                            let id = v["id"].as_str().unwrap_or("").to_string();
                            if !poor {
                                create(
                                    &addr,
                                    &mut conn,
                                    &admin,
                                    &format!("/v1/accounts/{id}/deposits"),
                                    format!(r#"{{"amount":"{}"}}"#, format_cents(PAYER_FUNDS)),
                                )
                                .await?;
                            }
                            anyhow::Ok(id)
                        }
                        .await;
                        match made {
                            Ok(id) => accounts.borrow_mut()[i] = Some((id, poor)),
                            Err(e) => {
                                failure.borrow_mut().get_or_insert(e);
                            }
                        }
                        conn
                    }
                },
            )
            .await;
        }
        if let Some(e) = failure.take() {
            return Err(e.context("setting up accounts"));
        }
        let mut payers = Vec::with_capacity(n_payers);
        let mut poor = Vec::with_capacity(n_poor);
        for (id, is_poor) in accounts.take().into_iter().flatten() {
            if is_poor {
                poor.push(id);
            } else {
                payers.push(Payer {
                    id,
                    deposited: PAYER_FUNDS,
                    paid: Cell::new(0),
                });
            }
        }
        Ok(Payd {
            run,
            payers,
            poor,
            merchants,
            fee_before,
            acked: RefCell::default(),
            refundable: RefCell::default(),
            retries: RefCell::default(),
            unknown: RefCell::default(),
            unknown_batches: RefCell::default(),
            dropped_acks: Cell::new(0),
            admin,
            floor_path: match config.floor_records {
                1 => "/bench/floor".to_string(),
                n => format!("/bench/floor?records={n}"),
            },
            config,
        })
    }

    /// For `loadtest/wrk/payments.lua`: `M <Authorization value>` per merchant and
    /// `P <account id>` per funded payer.
    pub fn wrk_setup(&self) -> String {
        let mut out = String::new();
        for m in &self.merchants {
            out.push_str(&format!("M {}\n", m.auth.to_str().unwrap_or("")));
        }
        for p in &self.payers {
            out.push_str(&format!("P {}\n", p.id));
        }
        out
    }

    fn out_trade_no(&self, n: u64) -> String {
        client_text("lt", self.run, n)
    }

    fn payment_body(&self, payer: &str, amount: i64, n: u64) -> Bytes {
        format!(
            r#"{{"out_trade_no":"{}","amount":"{}","currency":"CNY","payment_method":{{"type":"balance","account_id":"{payer}"}}}}"#,
            self.out_trade_no(n),
            format_cents(amount)
        )
        .into()
    }

    fn remember(&self, acked: Acked) -> Option<usize> {
        let mut all = self.acked.borrow_mut();
        if all.len() >= ACKED_MAX {
            self.dropped_acks.set(self.dropped_acks.get() + 1);
            return None;
        }
        all.push(acked);
        Some(all.len() - 1)
    }

    async fn pay(
        &self,
        conn: &mut Option<Http>,
        merchant: u32,
        payer: Option<u32>,
        amount: i64,
        n: u64,
    ) -> Outcome {
        let body = match &self.merchants[merchant as usize].card {
            Some(token) => format!(
                r#"{{"out_trade_no":"{}","amount":"{}","currency":"CNY","payment_method":{{"type":"bank_card","card_token":"{token}"}}}}"#,
                self.out_trade_no(n),
                format_cents(amount)
            )
            .into(),
            None => {
                let payer_id = match payer {
                    Some(p) => &self.payers[p as usize].id,
                    None => &self.poor[n as usize % self.poor.len()],
                };
                self.payment_body(payer_id, amount, n)
            }
        };
        let key = self
            .config
            .idempotency_keys
            .then(|| client_text("k", self.run, n));
        let m = &self.merchants[merchant as usize];
        let answer = send(
            &self.config.addr,
            conn,
            Method::POST,
            "/v1/payments",
            Some(&m.auth),
            key.as_deref(),
            Some(body.clone()),
        )
        .await;
        let unknown = |label: &'static str| {
            self.unknown.borrow_mut().push(Unknown {
                merchant,
                payer,
                amount,
                out_trade_no: self.out_trade_no(n),
            });
            Outcome::err(label)
        };
        let a = match answer {
            Ok(a) => a,
            Err(_) => return unknown("io_error"),
        };
        if a.status != 201 {
            let code = error_code(&a.body);
            // A 5xx says "not acknowledged", not "not done": look it up after the run.
            if a.status >= 500 {
                self.unknown.borrow_mut().push(Unknown {
                    merchant,
                    payer,
                    amount,
                    out_trade_no: self.out_trade_no(n),
                });
            }
            return Outcome::err(format!("{}:{code}", a.status));
        }
        let Ok(p) = serde_json::from_slice::<PaymentAnswer>(&a.body) else {
            return unknown("unparsable_201");
        };
        let succeeded = p.status == "succeeded";
        let pending = p.status == "processing";
        if succeeded {
            if let Some(i) = payer {
                let paid = &self.payers[i as usize].paid;
                paid.set(paid.get() + amount);
            }
        }
        let index = self.remember(Acked {
            id: p.id.to_string(),
            merchant,
            payer,
            amount,
            succeeded,
            pending,
            refunded: 0,
            refund_unknown: 0,
        });
        if let (true, Some(i)) = (succeeded, index) {
            let mut pool = self.refundable.borrow_mut();
            if pool.len() < REFUND_POOL_MAX {
                pool.push_back(i);
            }
        }
        if let Some(key) = key {
            if self.config.mix.retry > 0 {
                let mut pool = self.retries.borrow_mut();
                if pool.len() >= RETRY_POOL_MAX {
                    pool.pop_front();
                }
                pool.push_back(Rc::new(RetrySlot {
                    merchant,
                    key,
                    body,
                    first: a.body.clone(),
                }));
            }
        }
        if succeeded {
            Outcome::ok("succeeded")
        } else if pending {
            Outcome::ok("processing")
        } else {
            Outcome::ok(format!("declined:{}", p.failure_code.unwrap_or("none")))
        }
    }

    /// One batch of transfers between payers. Each `created` one is folded into both payers'
    /// expected balances (`paid`), so the end-of-run balance checks cover the batch too.
    /// Ids are the run's and the request's number: a batch never repeats one.
    async fn batch(&self, conn: &mut Option<Http>, n: u64) -> Outcome {
        let size = self.config.batch_size.clamp(1, 8_190);
        let mut rng = rand::rng();
        let count = self.payers.len();
        let mut moves = Vec::with_capacity(size);
        // ≈ 200 bytes a transfer: sized so that the body is never copied to grow.
        let mut body = String::with_capacity(size * 256 + 16);
        body.push_str(r#"{"transfers":["#);
        let id_prefix = client_text("lt", self.run, n);
        for k in 0..size {
            let from = rng.random_range(0..count);
            let to = (from + rng.random_range(1..count)) % count;
            let amount = rng.random_range(1..=99i64);
            moves.push((from, to, amount));
            if k > 0 {
                body.push(',');
            }
            // Pushed piece by piece: `write!` through the formatter was a third of the
            // harness's CPU in this scenario.
            body.push_str(r#"{"id":""#);
            body.push_str(&id_prefix);
            body.push('_');
            push_decimal(&mut body, k as u64);
            body.push_str(r#"","debit_account_id":""#);
            body.push_str(&self.payers[from].id);
            body.push_str(r#"","credit_account_id":""#);
            body.push_str(&self.payers[to].id);
            body.push_str(r#"","amount":""#);
            push_cents(&mut body, amount);
            body.push_str(r#"","currency":"CNY"}"#);
        }
        body.push_str("]}");
        let body = Bytes::from(body);
        let answer = match send(
            &self.config.addr,
            conn,
            Method::POST,
            "/v1/transfers/batch",
            Some(&self.admin),
            None,
            Some(body.clone()),
        )
        .await
        {
            Ok(a) => a,
            Err(_) => {
                // Applied, partly applied or not at all: the check sends it again.
                self.unknown_batches.borrow_mut().push((body, moves));
                return Outcome::err("io_error");
            }
        };
        if answer.status != 200 {
            return Outcome::err(format!("{}:{}", answer.status, error_code(&answer.body)));
        }
        let Some(results) = batch_results(&answer.body) else {
            return Outcome::err("bad_answer");
        };
        if results.len() != size {
            return Outcome::err("bad_answer");
        }
        self.fold_batch(&results, &moves)
    }

    /// Folds a batch's answer into the payers' expected balances: each transfer `created`
    /// (or, for a batch sent again, `exists`) moved its amount. Returns the run's outcome.
    fn fold_batch(&self, results: &[BatchResult], moves: &[(usize, usize, i64)]) -> Outcome {
        let mut failed = None;
        for (r, &(from, to, amount)) in results.iter().zip(moves) {
            if r.status == "created" || r.status == "exists" {
                let paid = &self.payers[from].paid;
                paid.set(paid.get() + amount);
                let got = &self.payers[to].paid;
                got.set(got.get() - amount);
            } else {
                failed.get_or_insert_with(|| {
                    format!("batch:{}:{}", r.status, r.code.as_deref().unwrap_or(""))
                });
            }
        }
        match failed {
            // Ok: the batch was answered; some transfer was refused (counted apart).
            Some(label) => Outcome::ok(label),
            None => Outcome::ok("batch"),
        }
    }

    async fn refund(&self, conn: &mut Option<Http>, index: usize, amount: i64, n: u64) -> Outcome {
        let (id, merchant) = {
            let acked = self.acked.borrow();
            (acked[index].id.clone(), acked[index].merchant)
        };
        let body = format!(
            r#"{{"amount":"{}","out_refund_no":"{}"}}"#,
            format_cents(amount),
            client_text("r", self.run, n)
        );
        let answer = send(
            &self.config.addr,
            conn,
            Method::POST,
            &format!("/v1/payments/{id}/refunds"),
            Some(&self.merchants[merchant as usize].auth),
            None,
            Some(body.into()),
        )
        .await;
        let mut acked = self.acked.borrow_mut();
        let a = &mut acked[index];
        match answer {
            Ok(answer) if answer.status == 201 => {
                a.refunded += amount;
                if a.refunded + a.refund_unknown < a.amount {
                    self.refundable.borrow_mut().push_back(index);
                }
                Outcome::ok("refunded")
            }
            Ok(answer) if answer.status < 500 => {
                self.refundable.borrow_mut().push_back(index);
                Outcome::err(format!("{}:{}", answer.status, error_code(&answer.body)))
            }
            Ok(answer) => {
                a.refund_unknown += amount;
                Outcome::err(format!("{}:{}", answer.status, error_code(&answer.body)))
            }
            Err(_) => {
                a.refund_unknown += amount;
                Outcome::err("io_error")
            }
        }
    }

    async fn retry(&self, conn: &mut Option<Http>, slot: &RetrySlot) -> Outcome {
        let answer = send(
            &self.config.addr,
            conn,
            Method::POST,
            "/v1/payments",
            Some(&self.merchants[slot.merchant as usize].auth),
            Some(&slot.key),
            Some(slot.body.clone()),
        )
        .await;
        match answer {
            Ok(a) if a.status == 201 && a.replayed && a.body == slot.first => {
                Outcome::ok("replayed")
            }
            Ok(a) if a.status == 201 => Outcome::err("replay_mismatch"),
            Ok(a) => Outcome::err(format!("{}:{}", a.status, error_code(&a.body))),
            Err(_) => Outcome::err("io_error"),
        }
    }

    /// After the run: every acknowledged payment must be there exactly as answered, every
    /// payer's balance must be what the acknowledged answers imply, and the merchants plus
    /// the platform's fee account must have gained exactly what the payers lost.
    pub async fn check(self: Rc<Self>, workers: usize) -> anyhow::Result<Checks> {
        let mut checks = Checks::default();
        let note = |checks: &mut Checks, text: String| {
            if checks.notes.len() < 20 {
                checks.notes.push(text);
            }
        };
        // 0. Batches whose answer never came: send each again until answered (the server
        //    may be restarting). Every transfer of it is then applied exactly once.
        for (body, moves) in self.unknown_batches.take() {
            checks.unknown_outcomes += moves.len() as u64;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            let mut conn = None;
            loop {
                let answer = send(
                    &self.config.addr,
                    &mut conn,
                    Method::POST,
                    "/v1/transfers/batch",
                    Some(&self.admin),
                    None,
                    Some(body.clone()),
                )
                .await;
                let answer = answer.ok().filter(|a| a.status == 200);
                let results = answer.as_ref().and_then(|a| batch_results(&a.body));
                match results {
                    Some(results) if results.len() == moves.len() => {
                        // (`unknown_found` counts payments: their acknowledgements below.)
                        self.fold_batch(&results, &moves);
                        break;
                    }
                    _ if std::time::Instant::now() < deadline => {
                        conn = None;
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    _ => {
                        checks.missing += moves.len() as u64;
                        note(&mut checks, "a batch could not be sent again".to_string());
                        break;
                    }
                }
            }
        }
        // 1. Answers that never came: the merchant's way to know is the out_trade_no.
        let unknown = self.unknown.take();
        checks.unknown_outcomes += unknown.len() as u64;
        let found: Slots<(String, bool)> = Rc::new(RefCell::new(vec![None; unknown.len()]));
        let unknown = Rc::new(unknown);
        {
            let (me, found, unknown) = (self.clone(), found.clone(), unknown.clone());
            for_each_concurrently(unknown.len(), workers, move |i, mut conn: Option<Http>| {
                let (me, found, unknown) = (me.clone(), found.clone(), unknown.clone());
                async move {
                    let u = &unknown[i];
                    let path = format!("/v1/payments?out_trade_no={}", u.out_trade_no);
                    let auth = &me.merchants[u.merchant as usize].auth;
                    if let Ok(a) = send(
                        &me.config.addr,
                        &mut conn,
                        Method::GET,
                        &path,
                        Some(auth),
                        None,
                        None,
                    )
                    .await
                    {
                        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&a.body) {
                            if let Some(p) = v["data"].as_array().and_then(|d| d.first()) {
                                found.borrow_mut()[i] = Some((
                                    p["id"].as_str().unwrap_or("").to_string(),
                                    p["status"] == "succeeded",
                                ));
                            }
                        }
                    }
                    conn
                }
            })
            .await;
        }
        for (u, f) in unknown.iter().zip(found.take()) {
            if let Some((id, succeeded)) = f {
                checks.unknown_found += 1;
                if let (true, Some(p)) = (succeeded, u.payer) {
                    let paid = &self.payers[p as usize].paid;
                    paid.set(paid.get() + u.amount);
                }
                self.remember(Acked {
                    id,
                    merchant: u.merchant,
                    payer: u.payer,
                    amount: u.amount,
                    succeeded,
                    pending: false,
                    refunded: 0,
                    refund_unknown: 0,
                });
            }
        }
        // 2. Payments answered processing settle first (status sync, notifications), so
        //    that balances are read after them; up to a minute.
        let pending: Vec<(String, u32)> = self
            .acked
            .borrow()
            .iter()
            .filter(|a| a.pending)
            .map(|a| (a.id.clone(), a.merchant))
            .collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut conn = None;
        for (id, merchant) in &pending {
            let auth = &self.merchants[*merchant as usize].auth;
            while std::time::Instant::now() < deadline {
                let path = format!("/v1/payments/{id}");
                let settled = match send(
                    &self.config.addr,
                    &mut conn,
                    Method::GET,
                    &path,
                    Some(auth),
                    None,
                    None,
                )
                .await
                {
                    Ok(a) => serde_json::from_slice::<PaymentAnswer>(&a.body)
                        .map(|p| p.status != "processing")
                        .unwrap_or(false),
                    Err(_) => false,
                };
                if settled {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        // 3. Every acknowledged payment, read back by id.
        let acked = Rc::new(self.acked.take());
        checks.acknowledged = acked.len() as u64 - checks.unknown_found;
        #[derive(Clone, Default)]
        struct Seen {
            present: bool,
            /// Succeeded as read back (what counts for a payment answered processing).
            succeeded: bool,
            refunded: i64,
            problem: Option<String>,
        }
        let seen: Rc<RefCell<Vec<Seen>>> =
            Rc::new(RefCell::new(vec![Seen::default(); acked.len()]));
        {
            let (me, seen, acked) = (self.clone(), seen.clone(), acked.clone());
            for_each_concurrently(acked.len(), workers, move |i, mut conn: Option<Http>| {
                let (me, seen, acked) = (me.clone(), seen.clone(), acked.clone());
                async move {
                    let a = &acked[i];
                    let auth = &me.merchants[a.merchant as usize].auth;
                    let path = format!("/v1/payments/{}", a.id);
                    let mut s = Seen::default();
                    match send(
                        &me.config.addr,
                        &mut conn,
                        Method::GET,
                        &path,
                        Some(auth),
                        None,
                        None,
                    )
                    .await
                    {
                        Ok(answer) if answer.status == 200 => {
                            s.present = true;
                            match serde_json::from_slice::<PaymentAnswer>(&answer.body) {
                                Ok(p) => {
                                    s.refunded = cents(p.refunded_amount).unwrap_or(-1);
                                    s.succeeded = p.status == "succeeded";
                                    // A payment answered processing may end either way.
                                    let status_ok =
                                        a.pending || (p.status == "succeeded") == a.succeeded;
                                    let amount_ok = cents(p.amount).ok() == Some(a.amount);
                                    let refund_ok = (a.refunded..=a.refunded + a.refund_unknown)
                                        .contains(&s.refunded);
                                    if !(status_ok && amount_ok && refund_ok && p.id == a.id) {
                                        s.problem = Some(format!(
                                            "{}: answered {} {} refunded {}, now {} {} refunded {}",
                                            a.id,
                                            if a.succeeded { "succeeded" } else { "failed" },
                                            format_cents(a.amount),
                                            format_cents(a.refunded),
                                            p.status,
                                            p.amount,
                                            p.refunded_amount
                                        ));
                                    }
                                }
                                Err(e) => s.problem = Some(format!("{}: unparsable ({e})", a.id)),
                            }
                        }
                        Ok(answer) => {
                            s.problem = Some(format!("{}: GET answered {}", a.id, answer.status))
                        }
                        Err(e) => s.problem = Some(format!("{}: GET failed ({e})", a.id)),
                    }
                    seen.borrow_mut()[i] = s;
                    conn
                }
            })
            .await;
        }
        let seen = seen.take();
        let mut refunded_by_payer = vec![0i64; self.payers.len()];
        let mut gained = 0i64;
        for (a, s) in acked.iter().zip(&seen) {
            if a.pending {
                checks.pending += 1;
                if s.succeeded {
                    // Resolved later (status sync, notification, review): it counts now.
                    gained += a.amount - s.refunded.max(0);
                    if let Some(p) = a.payer {
                        refunded_by_payer[p as usize] += s.refunded.max(0) - a.amount;
                    }
                }
            }
            if s.present {
                checks.verified += 1;
            } else {
                checks.missing += 1;
            }
            if let Some(problem) = &s.problem {
                if s.present {
                    checks.mismatched += 1;
                }
                note(&mut checks, problem.clone());
            }
            if a.succeeded {
                gained += a.amount - s.refunded.max(0);
                if let Some(p) = a.payer {
                    refunded_by_payer[p as usize] += s.refunded.max(0);
                }
            }
        }
        // 4. Balances: payers, poor accounts, merchants and the fee account.
        let mut expected: Vec<(String, Option<i64>)> = self
            .payers
            .iter()
            .zip(&refunded_by_payer)
            .map(|(p, r)| (p.id.clone(), Some(p.deposited - p.paid.get() + r)))
            .chain(self.poor.iter().map(|id| (id.clone(), Some(0))))
            .collect();
        let merchants_from = expected.len();
        expected.extend(self.merchants.iter().map(|m| (m.account.clone(), None)));
        if !self.merchants.is_empty() {
            expected.push((FEE_ACCOUNT_CNY.to_string(), None));
        }
        let expected = Rc::new(expected);
        let actual: Rc<RefCell<Vec<Option<i64>>>> =
            Rc::new(RefCell::new(vec![None; expected.len()]));
        {
            let (me, expected, actual) = (self.clone(), expected.clone(), actual.clone());
            for_each_concurrently(expected.len(), workers, move |i, mut conn: Option<Http>| {
                let (me, expected, actual) = (me.clone(), expected.clone(), actual.clone());
                async move {
                    actual.borrow_mut()[i] =
                        balance_of(&me.config.addr, &mut conn, &me.admin, &expected[i].0)
                            .await
                            .ok();
                    conn
                }
            })
            .await;
        }
        let actual = actual.take();
        for ((id, want), got) in expected.iter().zip(&actual) {
            checks.accounts_checked += 1;
            match (want, got) {
                (_, None) => {
                    checks.balance_mismatches += 1;
                    note(&mut checks, format!("{id}: balance could not be read"));
                }
                (Some(w), Some(g)) if w != g => {
                    checks.balance_mismatches += 1;
                    note(
                        &mut checks,
                        format!(
                            "{id}: balance {} but the answers imply {}",
                            format_cents(*g),
                            format_cents(*w)
                        ),
                    );
                }
                _ => {}
            }
        }
        let merchant_gain: i64 = self
            .merchants
            .iter()
            .enumerate()
            .map(|(k, m)| actual[merchants_from + k].unwrap_or(0) - m.balance_before)
            .sum();
        let fee_gain = match actual.last() {
            Some(Some(fee)) if !self.merchants.is_empty() => fee - self.fee_before,
            _ => 0,
        };
        checks.conserved = merchant_gain + fee_gain == gained;
        if !checks.conserved {
            note(
                &mut checks,
                format!(
                    "merchants gained {} and fees {}, but payers paid {} net of refunds",
                    format_cents(merchant_gain),
                    format_cents(fee_gain),
                    format_cents(gained)
                ),
            );
        }
        checks.dropped_from_checks = self.dropped_acks.get();
        checks.passed = checks.missing == 0
            && checks.mismatched == 0
            && checks.balance_mismatches == 0
            && checks.conserved;
        Ok(checks)
    }
}

impl Target for Payd {
    type Conn = Http;
    type Op = Op;

    async fn connect(&self) -> anyhow::Result<Http> {
        Http::connect(&self.config.addr).await
    }

    fn next_op(&self, i: u64) -> Op {
        if self.config.scenario == Scenario::Healthz {
            return Op::Health;
        }
        if self.config.scenario == Scenario::Floor {
            return Op::Floor(i);
        }
        if self.config.scenario == Scenario::Batch {
            return Op::Batch(i);
        }
        let mut rng = rand::rng();
        let mix = self.config.mix;
        let roll = rng.random_range(0..100);
        let amount = rng.random_range(100..=9_999);
        let merchant = match self.config.scenario {
            Scenario::Uniform | Scenario::Card => rng.random_range(0..self.merchants.len() as u32),
            _ => 0,
        };
        if roll < mix.refund {
            if let Some(index) = self.refundable.borrow_mut().pop_front() {
                let a = &self.acked.borrow()[index];
                let left = a.amount - a.refunded - a.refund_unknown;
                let amount = rng.random_range(1..=left.clamp(1, 500));
                return Op::Refund {
                    acked: index,
                    amount,
                    n: i,
                };
            }
        } else if roll < mix.refund + mix.retry {
            let pool = self.retries.borrow();
            if !pool.is_empty() {
                return Op::Retry(pool[rng.random_range(0..pool.len())].clone());
            }
        } else if roll < mix.refund + mix.retry + mix.decline {
            return Op::Pay {
                merchant,
                payer: None,
                amount,
                n: i,
            };
        }
        Op::Pay {
            merchant,
            payer: (!self.payers.is_empty()).then(|| rng.random_range(0..self.payers.len() as u32)),
            amount,
            n: i,
        }
    }

    async fn exec(&self, conn: &mut Option<Http>, op: Op) -> Outcome {
        match op {
            Op::Health => {
                match send(
                    &self.config.addr,
                    conn,
                    Method::GET,
                    "/healthz",
                    None,
                    None,
                    None,
                )
                .await
                {
                    Ok(a) if a.status == 200 => Outcome::ok("200"),
                    Ok(a) => Outcome::err(a.status.to_string()),
                    Err(_) => Outcome::err("io_error"),
                }
            }
            Op::Pay {
                merchant,
                payer,
                amount,
                n,
            } => self.pay(conn, merchant, payer, amount, n).await,
            Op::Refund { acked, amount, n } => self.refund(conn, acked, amount, n).await,
            Op::Retry(slot) => self.retry(conn, &slot).await,
            Op::Batch(n) => self.batch(conn, n).await,
            Op::Floor(n) => {
                let body = self.payment_body(FLOOR_PAYER, rand::rng().random_range(100..=9_999), n);
                let key = client_text("k", self.run, n);
                match send(
                    &self.config.addr,
                    conn,
                    Method::POST,
                    &self.floor_path,
                    Some(&self.admin),
                    Some(&key),
                    Some(body),
                )
                .await
                {
                    Ok(a) if a.status == 201 => Outcome::ok("201"),
                    Ok(a) => Outcome::err(a.status.to_string()),
                    Err(_) => Outcome::err("io_error"),
                }
            }
        }
    }
}

/// The payer a `floor` request's body names: an account id of the length a payment's has
/// (the floor reads nothing from the body).
const FLOOR_PAYER: &str = "acct_0123456789abcdef0123456789abcdef";

/// A client-chosen text of request `n` of run `run` (an `out_trade_no`, an
/// `Idempotency-Key`, a refund's or a batch transfer's id): `<prefix><run as 8 hex
/// digits>_<n>`. The `_` matters: payd refuses any text holding a card number, and takes
/// digits joined by `-` or a space as one number, so `k12345678-1234567` would be a
/// 15-digit PAN whenever its Luhn check passed (one run in ten).
fn client_text(prefix: &str, run: u32, n: u64) -> String {
    format!("{prefix}{run:08x}_{n}")
}

#[cfg(test)]
mod number_text_tests {
    #[test]
    fn cents_and_decimals_read_as_the_formatter_writes_them() {
        for v in [
            0i64,
            1,
            9,
            10,
            99,
            100,
            101,
            1_234,
            -1,
            -99,
            -100,
            -12_345,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = String::new();
            super::push_cents(&mut out, v);
            let sign = if v < 0 { "-" } else { "" };
            let a = v.unsigned_abs();
            assert_eq!(out, format!("{sign}{}.{:02}", a / 100, a % 100));
        }
        for v in [0u64, 7, 10, 8_189, u64::MAX] {
            let mut out = String::from("x");
            super::push_decimal(&mut out, v);
            assert_eq!(out, format!("x{v}"));
        }
    }
}

#[cfg(test)]
mod client_text_tests {
    use super::client_text;

    #[test]
    fn no_client_text_looks_like_a_card_number() {
        // Runs whose hex is all digits, and those of a refused bench run (0x…-joined keys).
        for run in [0x1234_5678u32, 0x4111_1111, 0x5555_5555, 0x2000_0000] {
            for n in (0..200_000u64).chain([9_999_999, 123_456_789_012]) {
                for prefix in ["lt", "k", "r"] {
                    let text = client_text(prefix, run, n);
                    assert!(!engine::cards::contains(&text), "{text}");
                    let batch_id = format!("{text}_{}", n % 8_190);
                    assert!(!engine::cards::contains(&batch_id), "{batch_id}");
                }
            }
        }
        // The old form was refused: the check above is not vacuous.
        assert!((10_000..10_100u64).any(|n| engine::cards::contains(&format!("k41111111-{n}"))));
    }
}

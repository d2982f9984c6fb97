//! The platform: everything the business flows share (the store, the ledger, the channels
//! and their live state, the vaults, the risk scorer, the webhook outbox's state, the SMS
//! platform, the claims that serialize work on one object), its recovery at start, and the
//! background work started from it. One per process; the HTTP layer holds it in an `Arc`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actors::Ledger;
use engine::Currency;
use storage::{Store, StoreOptions};

use crate::secret::Secret;
use crate::{Error, Result};

/// What the business flows are configured with (the server's configuration, less its
/// HTTP settings). Built by the HTTP layer from its validated configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub data_dir: PathBuf,
    /// Currency of merchants' own balance accounts (and of the platform's first accounts).
    pub currency: Currency,
    /// Fee rate of merchants created without one (validated text, e.g. "0.006").
    pub default_fee_rate: String,
    /// Ledger commands admitted at once.
    pub inflight_max: usize,
    /// How long to wait for a data dir another process still holds.
    pub store_lock_wait: Duration,
    /// The nice value given to RocksDB's flush and compaction threads once the store is
    /// open (0: left as started). `StoreOptions::background_nice`.
    pub rocksdb_background_nice: i32,
    /// `StoreOptions::flush_idle_nice`.
    pub rocksdb_flush_idle_nice: i32,
    /// `StoreOptions::dedup_filter_bytes_max`.
    pub dedup_filter_bytes_max: usize,
    /// `StoreOptions::key_filter_bytes_max`.
    pub key_filter_bytes_max: usize,
    /// `StoreOptions::dedup_held_ids_max`.
    pub dedup_held_ids_max: usize,
    /// `StoreOptions::dedup_seal_ids`.
    pub dedup_seal_ids: usize,
    /// `StoreOptions::balance_seal_accounts`.
    pub balance_seal_accounts: usize,
    /// `StoreOptions::commit_delay`.
    pub commit_delay: storage::CommitDelay,
    /// TOML risk rules, reloadable; `None`: every payment scores 0.
    pub risk_rules_file: Option<PathBuf>,
    pub channel_timeout: Duration,
    pub routing_policy: engine::routing::Policy,
    /// A PEM bundle of CA certificates trusted for outbound HTTPS besides Mozilla's roots
    /// (`outbound_tls_ca_file`; [`crate::tls`]).
    pub outbound_tls_ca_file: Option<PathBuf>,
    /// Base URL channels and the SMS gateway reach payd at.
    pub public_url: String,
    pub status_sync: Duration,
    /// Channels to create at start when none of that name exists.
    pub channels: Vec<crate::channels::CreateChannel>,
    pub webhook_retry: Vec<Duration>,
    pub webhook_timeout: Duration,
    pub webhook_poll: Duration,
    pub oncall_phones: Vec<String>,
    pub sms_gateway_url: Option<String>,
    pub sms_gateway_key: Option<Secret>,
    pub sms_timeout: Duration,
    pub sms_otp_per_hour: u32,
    pub sms_otp_burst: u32,
    pub sms_alert_per_hour: u32,
    pub sms_alert_burst: u32,
    pub otp_ttl_s: u64,
    pub otp_attempts_max: u32,
    /// How long a two-phase payment's authorization holds (`authorization_ttl_s`).
    pub authorization_ttl_s: u64,
    /// The zone whose wall-clock date the first business date is (`timezone`).
    pub timezone: jiff::tz::TimeZone,
    /// When the day-end runs by itself (`day_end_at`, local time in `timezone`); `None`: off.
    pub day_end_at: Option<jiff::civil::Time>,
    /// Closed dates older than this many days are archived by the day-end; 0: never.
    pub archive_after_days: u32,
    /// Business days after its date a payment can be refunded; its records are shelved
    /// once past this and `archive_after_days` (day-end step `archive`).
    pub refund_window_days: u32,
    /// The channel (by name) settlement payouts go through (`crate::payouts`); `None`:
    /// payouts wait.
    pub payout_channel: Option<String>,
    /// Business days an item waits for a channel's statement to list it before it is
    /// `missing_at_channel` (issue #17).
    pub recon_wait_days: u16,
    /// Fee differences up to this (minor units) are written off by themselves.
    pub recon_fee_tolerance: i64,
    /// How long one statement fetch may take.
    pub recon_fetch_timeout: Duration,
    /// How often statements not fetched yet are asked for again.
    pub recon_fetch_retry: Duration,
    /// A statement still missing this long after the day-end first asked for it is late
    /// (the `ReconStatementMissing` alert).
    pub recon_statement_due: Duration,
    /// Each KYC level's payment limits (0 unverified, 1 phone, 2 identity; issue #18).
    pub kyc_limits: [engine::kyc::Limits; 3],
    /// The identity service customers' names and id numbers are matched at; `None`:
    /// identity verification answers `503 identity_service_unavailable`.
    pub identity_url: Option<String>,
    pub identity_key: Option<Secret>,
    pub identity_timeout: Duration,
}

type Fast = foldhash::fast::RandomState;

/// Async turns by id: one holder at a time per id, the others wait in order
/// ([`take_turn`]). An entry leaves with its last holder.
pub type TurnMap = dashmap::DashMap<u128, Arc<tokio::sync::Mutex<()>>, Fast>;

/// One holder's turn on an id of a [`TurnMap`], until dropped.
pub struct Turn<'a> {
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    map: &'a TurnMap,
    id: u128,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.guard.take();
        // Leaves with its last holder (the map's own reference is the one left).
        self.map
            .remove_if(&self.id, |_, m| Arc::strong_count(m) == 1);
    }
}

/// Waits for `id`'s turn in `map`.
pub async fn take_turn(map: &TurnMap, id: u128) -> Turn<'_> {
    let mutex = map.entry(id).or_default().clone();
    let guard = mutex.lock_owned().await;
    Turn {
        guard: Some(guard),
        map,
        id,
    }
}

/// Ids being worked on, one request at a time per id (refunds of a payment, a review
/// decision, a channel outcome being applied).
pub type ClaimSet = dashmap::DashMap<u128, (), Fast>;

pub struct Platform {
    pub settings: Settings,
    /// Set once recovery finished; until then money commands answer `NotReady`.
    pub ledger: OnceLock<Ledger>,
    pub store: OnceLock<Arc<Store>>,
    /// Set once recovery finished entirely (configured channels added, webhook endpoints
    /// loaded, status syncs resumed).
    pub recovered: AtomicBool,
    /// out_trade_no index keys of payments in flight → their payment id: a concurrent twin is
    /// refused as a duplicate before either is durable. Bounded by the ledger's admission.
    pub trade_claims: dashmap::DashMap<Vec<u8>, u128, Fast>,
    /// Currencies (ISO numeric) whose platform accounts are known to exist. At most one entry
    /// per active ISO 4217 currency.
    pub platform_ready: dashmap::DashMap<u16, (), Fast>,
    /// Payments with a refund in flight: one at a time per payment.
    pub refund_claims: ClaimSet,
    /// Configured channels and their live state, by id (at most `channels::CHANNELS_MAX`).
    pub channels: dashmap::DashMap<u128, std::sync::Mutex<crate::channels::ChannelRuntime>, Fast>,
    /// Card payments whose channel outcome is being applied (status sync or notification).
    pub resolving: ClaimSet,
    /// Serializes channel configuration changes.
    pub channel_admin: tokio::sync::Mutex<()>,
    /// HTTP client for webhooks, the SMS gateway and identity checks (bounded pool; per-call
    /// timeouts).
    pub http: reqwest::Client,
    /// HTTP client for the channels' calls (charges, refunds, payouts, statements).
    pub channel_http: crate::channels::http::ChannelHttp,
    /// Seals card data at rest (key from `card_key`).
    pub vault: crate::vault::Vault,
    /// Seals merchants' signing secrets, webhook and channel secrets at rest (`master_key`).
    pub master: crate::vault::Vault,
    /// The risk scorer and its velocity memory. A mutex, not an actor: scoring is ~2 µs of
    /// pure work, less than a message hop between threads.
    pub risk: std::sync::Mutex<engine::risk::RiskEngine>,
    /// Payments under review with a decision in flight: one at a time per payment.
    pub review_claims: ClaimSet,
    /// Merchants whose settlement state is being changed (a day-end step, a payout's
    /// outcome), one change at a time per merchant.
    pub settle_claims: ClaimSet,
    /// Serializes changes to merchant records (credentials, settings): read, change, write.
    pub merchant_admin: tokio::sync::Mutex<()>,
    /// Serializes day-end starts: one switch at a time.
    pub day_end_admin: tokio::sync::Mutex<()>,
    /// One change of reserve accounts and reserve transfers at a time (a transfer checks
    /// its source's balance, then moves it).
    pub positions_admin: tokio::sync::Mutex<()>,
    /// Serializes reconciliation runs (each channel's go in date order).
    pub recon_admin: tokio::sync::Mutex<()>,
    /// Bumped after each merchant record change (see `merchants::changed`).
    pub merchant_generation: AtomicU64,
    /// Merchants by key hash, so that a request costs no store read to authenticate
    /// (bounded: `merchants::MERCHANT_CACHE_MAX`).
    pub merchant_cache: dashmap::DashMap<[u8; 32], storage::records::Merchant, Fast>,
    /// Merchants' webhook endpoints (one per merchant at most).
    pub webhook_endpoints: dashmap::DashMap<u128, crate::webhooks::Endpoint, Fast>,
    /// Merchants with a webhook delivery in flight (one at a time each).
    pub webhook_busy: dashmap::DashMap<u128, (), Fast>,
    /// Wakes the webhook dispatcher when events were written.
    pub webhook_wake: tokio::sync::Notify,
    /// Last event id's time part (ids grow strictly within the process).
    pub last_event_ns: AtomicU64,
    /// Idempotency keys of requests in flight (scoped store keys).
    pub idempotency_claims: dashmap::DashMap<Vec<u8>, (), Fast>,
    /// The SMS platform.
    pub notifier: crate::notifications::Notifier,
    /// Serializes delivery receipts (read, change, write of a message record).
    pub sms_receipts: tokio::sync::Mutex<()>,
    /// One-time codes with a try being judged: tries on one code take turns. Entries leave
    /// with their last waiter, so this holds at most the requests in flight.
    pub otp_claims: dashmap::DashMap<u128, Arc<tokio::sync::Mutex<()>>, Fast>,
    /// Customers with a KYC-limited payment, deposit or verification in flight: one at a
    /// time per customer (`customers::turn`), so that the limits' counters are exact.
    /// Entries leave with their last waiter.
    pub customer_turns: TurnMap,
    /// Coupon stocks being changed (an issue, a redemption, a refund's return, a stop): one
    /// at a time per stock, so that its counts and budget are exact.
    pub stock_turns: TurnMap,
    /// Orders being paid, closed or expired (one change at a time per order), and merchants
    /// creating an order (one `out_trade_no` index claim at a time per merchant).
    pub order_turns: TurnMap,
    /// Credit lines being repaid or closed by a day-end: one at a time per line.
    pub credit_turns: TurnMap,
    /// Two-phase payments being captured, voided or expired: one change at a time each.
    pub authorization_turns: TurnMap,
    /// Coupons in a payment: one payment at a time per coupon.
    pub coupon_claims: ClaimSet,
    /// Today's totals per currency (the ops page).
    pub today: crate::stats::Today,
    /// Anti-abuse rate limits: per source IP and merchant key (checked by the HTTP layer),
    /// per payer account (checked by payments).
    pub rate: crate::ratelimit::Limits,
}

impl Platform {
    /// The platform before recovery: `card_key` and `master_key` already resolved.
    pub fn new(
        settings: Settings,
        vault: crate::vault::Vault,
        master: crate::vault::Vault,
        rate: crate::ratelimit::Limits,
    ) -> Result<Platform> {
        let rules = match &settings.risk_rules_file {
            Some(path) => crate::risk::load(path, settings.currency).map_err(|e| {
                Error::invalid("invalid_risk_rules", format!("risk_rules_file: {e}"))
            })?,
            None => engine::risk::RiskRules::default(),
        };
        let tls = crate::tls::client_config(settings.outbound_tls_ca_file.as_deref())
            .map_err(|e| Error::invalid("invalid_tls_roots", e))?;
        let http = crate::tls::reqwest_builder(tls.clone())
            .pool_max_idle_per_host(64)
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| Error::Storage(format!("HTTP client: {e}")))?;
        Ok(Platform {
            channel_http: crate::channels::http::ChannelHttp::new(64, Duration::from_secs(2), tls),
            notifier: crate::notifications::Notifier::new(&settings, http.clone()),
            sms_receipts: Default::default(),
            otp_claims: Default::default(),
            customer_turns: Default::default(),
            stock_turns: Default::default(),
            coupon_claims: Default::default(),
            credit_turns: Default::default(),
            order_turns: Default::default(),
            authorization_turns: Default::default(),
            today: Default::default(),
            ledger: OnceLock::new(),
            store: OnceLock::new(),
            recovered: Default::default(),
            trade_claims: Default::default(),
            platform_ready: Default::default(),
            refund_claims: Default::default(),
            channels: Default::default(),
            resolving: Default::default(),
            channel_admin: Default::default(),
            http,
            vault,
            master,
            risk: std::sync::Mutex::new(engine::risk::RiskEngine::new(rules)),
            review_claims: Default::default(),
            settle_claims: Default::default(),
            merchant_admin: Default::default(),
            day_end_admin: Default::default(),
            positions_admin: Default::default(),
            recon_admin: Default::default(),
            merchant_generation: Default::default(),
            merchant_cache: Default::default(),
            webhook_endpoints: Default::default(),
            webhook_busy: Default::default(),
            webhook_wake: Default::default(),
            last_event_ns: Default::default(),
            idempotency_claims: Default::default(),
            rate,
            settings,
        })
    }

    pub fn ledger(&self) -> Result<&Ledger> {
        self.ledger.get().ok_or(Error::NotReady)
    }

    /// The ledger's open period: its open business date and the last closed one.
    pub fn period(&self) -> Result<engine::gl::OpenPeriod> {
        self.ledger()?
            .period()
            .ok_or_else(|| Error::Storage("the ledger has no business date yet".into()))
    }

    pub fn store(&self) -> Result<&Arc<Store>> {
        self.store.get().ok_or(Error::NotReady)
    }

    /// `NotReady` until the store is open (the first thing a request checks, before its
    /// credentials: a recovering server answers every request alike).
    pub fn serving(&self) -> Result<()> {
        self.store().map(|_| ())
    }

    /// Why the store refuses writes, if a write failed (it then stays read-only until a
    /// restart recovers it).
    pub fn poison_reason(&self) -> Option<String> {
        self.store.get().and_then(|s| s.poison_reason())
    }

    /// Ready: recovered, and the store still takes writes.
    pub fn is_ready(&self) -> bool {
        self.recovered.load(Ordering::SeqCst)
            && self.store.get().is_some_and(|s| s.is_healthy())
            && self.ledger.get().is_some()
    }

    /// A payment reached its current status (durably): metrics and today's totals.
    pub fn payment_reached(&self, p: &storage::records::Payment) {
        crate::metrics::payment(p);
        self.today.payment(p);
    }

    /// A refund of a payment in `currency` reached its current status (durably).
    pub fn refund_reached(&self, r: &storage::records::Refund, currency: u16) {
        crate::metrics::refund(r, currency);
        self.today.refund(r, currency);
    }

    /// Starts the work that runs for the life of the process: recovery (which resumes
    /// status syncs when done), the webhook dispatcher, and the SMS limiters' sweep.
    /// Recovery problems end the process through `fatal` (serving without a store would only
    /// ever answer not ready).
    pub fn start(self: &Arc<Self>, fatal: fn(&str) -> !) {
        self.start_with_ledger_on(fatal, None);
    }

    /// [`Platform::start`], with the ledger's actors on the arbiter `home` yields (an HTTP
    /// worker's, sent once it runs) rather than on the calling one. A payment's commands and
    /// answers then pass between tasks of one thread: no thread is woken for the ledger
    /// (docs/ARCHITECTURE.md, "Decisions").
    pub fn start_with_ledger_on(
        self: &Arc<Self>,
        fatal: fn(&str) -> !,
        home: Option<tokio::sync::oneshot::Receiver<actix_rt::ArbiterHandle>>,
    ) {
        let recovering = Arc::clone(self);
        actix_rt::spawn(async move { recovering.recover(fatal, home).await });
        crate::webhooks::spawn_dispatcher(Arc::clone(self));
    }

    /// Opens the store off the async threads, then starts the ledger, loads and resumes what
    /// was in flight, and marks the platform recovered.
    async fn recover(
        self: Arc<Self>,
        fatal: fn(&str) -> !,
        home: Option<tokio::sync::oneshot::Receiver<actix_rt::ArbiterHandle>>,
    ) {
        let dir = self.settings.data_dir.clone();
        let wait = self.settings.store_lock_wait;
        let started = std::time::Instant::now();
        let mut said_waiting = false;
        let (store, recovery) = loop {
            let dir = dir.clone();
            let options = StoreOptions {
                background_nice: self.settings.rocksdb_background_nice,
                flush_idle_nice: self.settings.rocksdb_flush_idle_nice,
                dedup_filter_bytes_max: self.settings.dedup_filter_bytes_max,
                key_filter_bytes_max: self.settings.key_filter_bytes_max,
                dedup_held_ids_max: self.settings.dedup_held_ids_max,
                dedup_seal_ids: self.settings.dedup_seal_ids,
                balance_seal_accounts: self.settings.balance_seal_accounts,
                commit_delay: self.settings.commit_delay,
                ..StoreOptions::default()
            };
            match tokio::task::spawn_blocking(move || Store::open(&dir, options)).await {
                Ok(Ok(pair)) => break pair,
                // A predecessor still holds the store (a restart overlapping its shutdown):
                // keep answering not ready and try again until it lets go or time is up.
                Ok(Err(storage::StoreError::Locked(why))) if started.elapsed() < wait => {
                    if !said_waiting {
                        println!(
                            "payd: the data dir is held by another process; waiting up to {} ms ({why})",
                            wait.as_millis()
                        );
                        said_waiting = true;
                    }
                    actix_rt::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(Err(e)) => fatal(&format!(
                    "cannot recover the store in {}: {e}",
                    self.settings.data_dir.display()
                )),
                Err(e) => fatal(&format!("store recovery thread failed: {e}")),
            }
        };
        let store = Arc::new(store);
        match crate::channels::load_all(&self, &store) {
            Ok(n) if n > 0 => println!("payd: {n} channels configured"),
            Ok(_) => {}
            Err(e) => fatal(&format!("cannot load the channels: {e}")),
        }
        let config = actors::LedgerConfig {
            inflight_max: self.settings.inflight_max,
            ..actors::LedgerConfig::default()
        };
        let ledger = match home {
            None => actors::Ledger::start(Arc::clone(&store), config),
            Some(home) => {
                let Ok(arbiter) = home.await else {
                    fatal("no HTTP worker started to host the ledger");
                };
                let (started, ledger) = tokio::sync::oneshot::channel();
                let on = Arc::clone(&store);
                // A stopped arbiter drops the task, and with it `started`.
                arbiter.spawn(async move {
                    let _ = started.send(actors::Ledger::start(on, config));
                });
                let Ok(ledger) = ledger.await else {
                    fatal("the HTTP worker that was to host the ledger stopped");
                };
                ledger
            }
        };
        if let Err(e) =
            crate::accounts::ensure_platform_accounts(&ledger, self.settings.currency).await
        {
            fatal(&format!("cannot create the platform accounts: {e}"));
        }
        match crate::gl::ensure_dates(&ledger, &store, &self.settings.timezone).await {
            Ok(dates) => println!("payd: business date {}", dates.business_date),
            Err(e) => fatal(&format!("cannot set the business date: {e}")),
        }
        match crate::gl::migrate_merchants(&ledger, &store).await {
            Ok(n) if n > 0 => println!("payd: {n} merchants given their GL accounts"),
            Ok(_) => {}
            Err(e) => fatal(&format!("cannot give merchants their GL accounts: {e}")),
        }
        match self.today.seed(&store) {
            Ok(n) if n > 0 => {
                println!("payd: today's totals from {n} payments and refunds of today")
            }
            Ok(_) => {}
            Err(e) => fatal(&format!("cannot read today's payments: {e}")),
        }
        let resume_from = Arc::clone(&store);
        let _ = self.store.set(store);
        let _ = self.ledger.set(ledger);
        match crate::channels::add_configured(&self).await {
            Ok(n) if n > 0 => println!("payd: {n} channels added from the config file"),
            Ok(_) => {}
            Err(e) => fatal(&e),
        }
        // Card payments whose channel never answered: ask again (needs the ledger set).
        match crate::card_payments::resume(&self, &resume_from) {
            Ok(n) if n > 0 => println!("payd: resumed status sync of {n} card payments"),
            Ok(_) => {}
            Err(e) => fatal(&format!("cannot resume card payments: {e}")),
        }
        match crate::webhooks::load(&self, &resume_from) {
            Ok(n) if n > 0 => println!("payd: {n} webhook endpoints"),
            Ok(_) => {}
            Err(e) => fatal(&format!("cannot load the webhook endpoints: {e}")),
        }
        match crate::refunds::resume(&self, &resume_from) {
            Ok(n) if n > 0 => println!("payd: resumed status sync of {n} card refunds"),
            Ok(_) => {}
            Err(e) => fatal(&format!("cannot resume card refunds: {e}")),
        }
        match crate::customers::migrate_phone_index(&self).await {
            Ok(n) if n > 0 => println!("payd: {n} customers indexed by phone"),
            Ok(_) => {}
            Err(e) => fatal(&format!("cannot index customers by phone: {e}")),
        }
        // Reconciliation runs a crash interrupted complete before any day-end resumes.
        match crate::recon::resume(&self).await {
            Ok(n) if n > 0 => println!("payd: completed {n} interrupted reconciliation run(s)"),
            Ok(_) => {}
            Err(e) => fatal(&format!("cannot complete the reconciliation runs: {e}")),
        }
        match crate::day_end::resume(&self, &resume_from) {
            Ok(n) if n > 0 => println!("payd: resumed {n} unfinished day-end(s)"),
            Ok(_) => {}
            Err(e) => fatal(&format!("cannot resume the day-end: {e}")),
        }
        // Settlement payouts: sent, asked about and resolved in the background.
        crate::payouts::spawn(Arc::clone(&self));
        // Channel statements the day-end could not fetch yet.
        crate::recon::spawn_retries(Arc::clone(&self));
        // Orders past their expiry, from the store's timers.
        crate::orders::spawn_expiry(Arc::clone(&self));
        // Authorizations past their ttl, from the store's timers.
        crate::authorizations::spawn_expiry(Arc::clone(&self));
        if let Some(at) = self.settings.day_end_at {
            crate::day_end::schedule(Arc::clone(&self), at);
            println!(
                "payd: the day-end runs by itself at {at} ({})",
                self.settings
                    .timezone
                    .iana_name()
                    .unwrap_or("the configured zone")
            );
        }
        self.recovered.store(true, Ordering::SeqCst);
        println!(
            "payd: recovered journal through seq {} ({} accounts, trial balance zero) in {} ms; ready",
            recovery.last_seq,
            recovery.accounts,
            recovery.elapsed.as_millis()
        );
    }

    /// Waits for the ledger commands in flight, then stops the store's writer (after the
    /// HTTP server finished its requests). Returns the last sequence number written.
    pub async fn shutdown(&self) -> Option<u64> {
        if let Some(ledger) = self.ledger.get() {
            while ledger.inflight() > 0 {
                actix_rt::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let store = self.store.get()?;
        store.shutdown();
        Some(store.last_seq())
    }
}

/// The default bound on the writer's filter of durable transfer ids, in bytes.
pub use storage::store::DEDUP_FILTER_BYTES_MAX;
/// The default bound on the store's filter of client-keyed aux keys, in bytes.
pub use storage::store::KEY_FILTER_BYTES_MAX;
pub use storage::store::{BALANCE_SEAL_ACCOUNTS, DEDUP_HELD_IDS_MAX, DEDUP_SEAL_IDS};
pub use storage::CommitDelay;

/// Ledger commands admitted at once by default.
pub const INFLIGHT_COMMANDS_MAX: usize = actors::ledger::INFLIGHT_COMMANDS_MAX;

/// What `payd verify` found in a data dir: every journal entry replayed and matched.
#[derive(Clone, Debug)]
pub struct Verified {
    pub verification: storage::Verification,
    /// Each closed day's snapshot rebuilt from the journal, with its hash matched (full).
    pub days: Vec<crate::day_end::Rebuilt>,
    /// The closed date whose snapshot the check started from (not full).
    pub from_snapshot: Option<engine::gl::BusinessDate>,
    /// How long opening (recovering) the store took, and the replay after it.
    pub open: Duration,
    pub replay: Duration,
}

/// Why `payd verify` failed: the store did not open, or its journal did not replay.
#[derive(Debug)]
pub enum VerifyError {
    Open(storage::StoreError),
    Replay(storage::StoreError),
    /// A closed day's snapshot, rebuilt from the journal, has another hash than stored.
    Day(String),
}

/// Opens the store in `data_dir` (recovering it) and checks it (`payd verify`): from the last
/// closed day's snapshot plus the journal after it, with every archive segment's checksums
/// (the default when such a snapshot exists); or, `full`, by replaying the whole history
/// from the archive and the journal against the balances, the dedup index, the GL book and
/// every closed day's snapshot hash.
pub fn verify(
    data_dir: &std::path::Path,
    full: bool,
) -> std::result::Result<Verified, VerifyError> {
    let (store, recovery) =
        Store::open(data_dir, StoreOptions::default()).map_err(VerifyError::Open)?;
    let started = std::time::Instant::now();
    let base = if full {
        None
    } else {
        crate::day_end::last_snapshot(&store).map_err(|e| VerifyError::Day(e.to_string()))?
    };
    let (verification, days, from) = match base {
        Some((date, seq, accounts)) => {
            store.check_archive().map_err(VerifyError::Replay)?;
            let v = store
                .verify_since(
                    seq,
                    accounts
                        .iter()
                        .map(|a| (a.account, a.currency, a.gl, a.closing)),
                )
                .map_err(VerifyError::Replay)?;
            (v, Vec::new(), Some(date))
        }
        None => {
            let v = store.verify().map_err(VerifyError::Replay)?;
            let days = crate::day_end::rebuild_hashes(&store)
                .map_err(|e| VerifyError::Day(e.to_string()))?;
            if let Some(bad) = days.iter().find(|d| !d.matches) {
                return Err(VerifyError::Day(format!(
                    "the snapshot of {} rebuilt from the journal has another hash than its day-end recorded",
                    bad.date
                )));
            }
            (v, days, None)
        }
    };
    Ok(Verified {
        verification,
        days,
        from_snapshot: from,
        open: recovery.elapsed,
        replay: started.elapsed(),
    })
}

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
pub fn new_id() -> u128 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    engine::ids::time_ordered_id(ms, rand::random::<u128>())
}

/// A transfer id derived from what it does (`parts`: a tag, then the ids and dates it acts
/// on): a retried step is the same transfer, applied once by the ledger.
pub fn derived_id(parts: &[&[u8]]) -> u128 {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    u128::from_be_bytes(h.finalize()[..16].try_into().expect("16 bytes"))
}

pub fn now_ns() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

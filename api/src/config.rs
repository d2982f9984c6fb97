//! Server configuration: defaults, then a TOML file, then `RONGPAY_*` environment variables,
//! then command-line flags (flags win). [`Config::validate`] refuses a bad configuration with
//! a clear message before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use engine::money::{parse_fee_rate, FEE_RATE_PPM_MAX};
use engine::Currency;
use serde::Deserialize;

/// Smallest and largest request body limit accepted in a configuration, in bytes.
pub const BODY_LIMIT_BYTES_MIN: usize = 1_024;
pub const BODY_LIMIT_BYTES_MAX: usize = 16 << 20;

pub use crate::secret::Secret;

/// The settings' names, as in the file and after `RONGPAY_` in the environment.
pub const SETTINGS: [&str; 73] = [
    "data_dir",
    "listen",
    "admin_token",
    "body_limit_bytes",
    "batch_body_limit_bytes",
    "body_timeout_ms",
    "head_timeout_ms",
    "head_limit_bytes",
    "workers",
    "ledger_sched_batch",
    "ledger_home",
    "rocksdb_background_nice",
    "rocksdb_flush_idle_nice",
    "dedup_filter_mb",
    "key_filter_mb",
    "dedup_held_ids",
    "dedup_seal_ids",
    "balance_seal_accounts",
    "commit_delay_us",
    "connections_max",
    "default_currency",
    "default_fee_rate",
    "inflight_max",
    "store_lock_wait_ms",
    "risk_rules_file",
    "card_key",
    "master_key",
    "tls_cert_file",
    "webhook_retry_ms",
    "webhook_timeout_ms",
    "webhook_poll_ms",
    "tls_key_file",
    "outbound_tls_ca_file",
    "channel_timeout_ms",
    "routing_policy",
    "public_url",
    "status_sync_ms",
    "rate_ip_per_s",
    "rate_ip_burst",
    "rate_merchant_per_s",
    "rate_merchant_burst",
    "rate_payer_per_s",
    "rate_payer_burst",
    "metrics_enabled",
    "bench_floor",
    "alerts_token",
    "sms_gateway_url",
    "sms_gateway_key",
    "sms_timeout_ms",
    "sms_otp_per_hour",
    "sms_otp_burst",
    "sms_alert_per_hour",
    "sms_alert_burst",
    "otp_ttl_s",
    "otp_attempts_max",
    "authorization_ttl_s",
    "timezone",
    "day_end_at",
    "archive_after_days",
    "refund_window_days",
    "payout_channel",
    "recon_wait_days",
    "recon_fee_tolerance",
    "recon_fetch_timeout_ms",
    "recon_fetch_retry_ms",
    "recon_statement_due_s",
    "operators",
    "kyc_limits_0",
    "kyc_limits_1",
    "kyc_limits_2",
    "identity_url",
    "identity_key",
    "identity_timeout_ms",
];

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory of the embedded store (created when missing).
    pub data_dir: PathBuf,
    /// Address the HTTP API listens on.
    pub listen: String,
    /// The operator's bearer token. Unset: generated on first start and kept in the data dir.
    pub admin_token: Option<Secret>,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Largest body of `POST /v1/transfers/batch` (8,190 transfers), in bytes.
    pub batch_body_limit_bytes: usize,
    /// How long a client may take to send its whole body, in milliseconds.
    pub body_timeout_ms: u64,
    /// How long a client may take to send the request head, in milliseconds.
    pub head_timeout_ms: u64,
    /// Largest request head accepted (request line and headers), in bytes: larger gets
    /// `431 header_too_large`. The HTTP parser's own hard cap (128 KiB, 96 headers) holds
    /// beyond it.
    pub head_limit_bytes: usize,
    /// HTTP worker threads (each an actix arbiter).
    pub workers: usize,
    /// Run the ledger's thread (payd's main thread, which keeps the ledger unless
    /// `ledger_home` puts it on a worker) at `SCHED_BATCH` (Linux; default true): its
    /// wakeups do not preempt an HTTP worker sharing its core, so it takes the commands of
    /// many requests in one round instead of one command per context switch. The workers
    /// and the group-commit writer stay at the normal policy. docs/ARCHITECTURE.md.
    pub ledger_sched_batch: bool,
    /// Where the ledger's actors (its coordinator and shards) run: `own_thread` (payd's main
    /// thread), `worker` (the first HTTP worker's thread: a payment's commands and answers
    /// then pass between tasks of one thread, and no thread is woken for the ledger), or
    /// `auto` (default): `worker` when payd may use one CPU only, where a thread of its own
    /// could never run beside the worker anyway. docs/ARCHITECTURE.md.
    pub ledger_home: String,
    /// Nice value of RocksDB's flush and compaction threads (0 to 19; default 5; 0 leaves
    /// them as started): a flush of a large memtable on the serving core then takes a smaller
    /// share of it while it runs, and the tail of payments' latency with it.
    pub rocksdb_background_nice: i32,
    /// Nice value of RocksDB's flush threads while no flush presses (0 to 19; default 19; 0
    /// or not above `rocksdb_background_nice` turns it off): they go to
    /// `rocksdb_background_nice` when a pending flush risks a write stop. Only where payd may
    /// lower a nice value again (root, `CAP_SYS_NICE`, systemd's `LimitNICE=`).
    pub rocksdb_flush_idle_nice: i32,
    /// MiB the group-commit writer's in-memory filter of durable transfer ids may grow to
    /// (0 to 4096; default 128, 64M ids; under 2 turns it off): new ids are ruled out in
    /// memory instead of being looked up in RocksDB. docs/ARCHITECTURE.md.
    pub dedup_filter_mb: usize,
    /// MiB the store's in-memory filter of idempotency keys, out_trade_no indexes and
    /// customer links may grow to (0 to 4096; default 64, 32M keys; under 2 turns it off):
    /// a payment's lookups of keys not stored are answered in memory instead of by
    /// RocksDB. docs/ARCHITECTURE.md.
    pub key_filter_mb: usize,
    /// Transfer ids the group-commit writer holds in memory, durable in the journal, until
    /// a thread ingests them into the dedup index as table files (0 to 16,777,216; default
    /// 1,048,576, 24 bytes each; 0 writes every id's key in its group's synced write).
    /// docs/ARCHITECTURE.md, "What is durable when".
    pub dedup_held_ids: usize,
    /// Held ids are ingested as one table file once this many are held (1 to 16,777,216;
    /// default 262,144), or five seconds after the last ingestion.
    pub dedup_seal_ids: usize,
    /// Balance deltas of at least 4,096 accounts are checkpointed as one table file ingested
    /// into the accounts family once they hold this many accounts (0 to 16,777,216; default
    /// 262,144; 0: never, every checkpoint goes to the memtable), or a second after the
    /// last checkpoint.
    pub balance_seal_accounts: usize,
    /// The longest a group-commit write waits for the payments its core's other threads are
    /// preparing (0 to 10,000 µs; default 1,000; 0 never waits). It waits only while they
    /// run: a quiet server writes at once. docs/ARCHITECTURE.md, "Group commit".
    pub commit_delay_us: u64,
    /// Connections served at once; more wait in the kernel's backlog.
    pub connections_max: usize,
    /// Currency of merchants' own balance accounts.
    pub default_currency: String,
    /// Fee rate applied to merchants created without one.
    pub default_fee_rate: String,
    /// Ledger commands admitted at once; beyond it requests are answered `503 overloaded`.
    pub inflight_max: usize,
    /// How long to wait for the data dir while another process holds it (a predecessor
    /// still shutting down), answering `503 not_ready` meanwhile. 0: refuse to start at once.
    pub store_lock_wait_ms: u64,
    /// TOML risk rules (see `api::risk`); unset: every payment scores 0 and is approved.
    /// Reloaded by `POST /v1/risk/rules/reload`.
    pub risk_rules_file: Option<PathBuf>,
    /// AES-256 key (64 hex digits) sealing card data at rest. Unset: generated on first
    /// start into `<data_dir>/card_key` (mode 0600); production sets it from a secret store.
    pub card_key: Option<Secret>,
    /// Waits between webhook delivery tries, in milliseconds, comma-separated: one more try
    /// after each (default Alipay-like: 8 tries over about 25 h).
    pub webhook_retry_ms: String,
    /// How long a webhook receiver may take to answer.
    pub webhook_timeout_ms: u64,
    /// How often the webhook outbox is looked at when nothing wakes the dispatcher.
    pub webhook_poll_ms: u64,
    /// PEM certificate chain (leaf first) and private key: with both, the listener speaks
    /// TLS 1.3/1.2 only (rustls); with neither, plain HTTP.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA certificates trusted for payd's outbound HTTPS (webhooks, channels, SMS gateway,
    /// identity provider) besides the bundled Mozilla roots: a bank's private CA, a test's own.
    pub outbound_tls_ca_file: Option<PathBuf>,
    /// AES-256 key (64 hex digits) sealing merchants' signing secrets at rest. Unset:
    /// generated on first start into `<data_dir>/master_key` (mode 0600).
    pub master_key: Option<Secret>,
    /// How long a channel may take to answer a charge before it counts as "no answer" (the
    /// payment then stays processing and is resolved by asking the same channel).
    pub channel_timeout_ms: u64,
    /// How the router ranks channels: cost, success_rate, latency, priority, weighted_split.
    pub routing_policy: String,
    /// Base URL channels reach payd at, for their result notifications (default
    /// `http://<listen>`).
    pub public_url: Option<String>,
    /// How often a card payment with no answer from its channel is asked about.
    pub status_sync_ms: u64,
    /// Requests per second from one source IP (every route but `/healthz`, `/readyz` and
    /// `/metrics`), and the burst allowed at once. 0: no limit.
    pub rate_ip_per_s: u32,
    pub rate_ip_burst: u32,
    /// Requests per second with one merchant key, and its burst. 0: no limit.
    pub rate_merchant_per_s: u32,
    pub rate_merchant_burst: u32,
    /// Balance payments per second from one payer account, and its burst. 0: no limit.
    pub rate_payer_per_s: u32,
    pub rate_payer_burst: u32,
    /// Channels to create at start when none of that name exists (`[[channels]]` in the
    /// file, the fields of `POST /v1/channels`); the admin API changes them after.
    pub channels: Vec<services::channels::CreateChannel>,
    /// Record Prometheus metrics and serve them at `/metrics` (default true). Off: every
    /// recording call is a no-op and `/metrics` answers 404 (how their cost is measured).
    pub metrics_enabled: bool,
    /// Serve `POST /bench/floor` to the operator (default false): each request's body made
    /// durable through the payments' group-commit writer and nothing else, the floor a
    /// payment is measured against (`loadtest/ab.sh floor`). For load tests on a throwaway
    /// data dir; off, the path is unknown (404).
    pub bench_floor: bool,
    /// Bearer token of the alert intake (`POST /v1/ops/alerts`, Alertmanager's webhook).
    /// Unset: generated on first start into `<data_dir>/alerts_token` (mode 0600).
    pub alerts_token: Option<Secret>,
    /// Who is paged by SMS for every alert (E.164 numbers).
    pub oncall_phones: Vec<String>,
    /// The SMS gateway (`http://host:port`) and its API key (also the key its delivery
    /// receipts are signed with). Unset: no SMS (one-time codes answer 503 sms_unavailable).
    pub sms_gateway_url: Option<String>,
    pub sms_gateway_key: Option<Secret>,
    /// How long the gateway may take to take a message.
    pub sms_timeout_ms: u64,
    /// One-time code SMS per phone number per hour, and the burst allowed at once.
    pub sms_otp_per_hour: u32,
    pub sms_otp_burst: u32,
    /// Alert SMS per on-call number per hour, and the burst.
    pub sms_alert_per_hour: u32,
    pub sms_alert_burst: u32,
    /// How long a one-time code is valid, and how many wrong tries lock it.
    pub otp_ttl_s: u64,
    pub otp_attempts_max: u32,
    /// How long a two-phase payment's authorization holds before it is voided by itself.
    pub authorization_ttl_s: u64,
    /// IANA time zone of the business date: the first start's date is the wall-clock date
    /// there (never the machine's own zone).
    pub timezone: String,
    /// When the day-end runs by itself, `HH:MM` local time in `timezone`: the open date `D`
    /// closes at the first such time after noon of `D` (`23:00` closes `D` that evening,
    /// `00:30` just after midnight). Unset: only `POST /v1/gl/day_end` closes a date.
    pub day_end_at: Option<String>,
    /// Closed business dates older than this many days have their journal moved to archive
    /// segments by the day-end (the hot store stops growing with history); 0: never.
    pub archive_after_days: u32,
    /// A payment can be refunded for this many business days after its date; after that,
    /// once also past `archive_after_days`, its records leave the hot store for the day's
    /// record segment (`refund_window_expired` for a later refund).
    pub refund_window_days: u32,
    /// The channel (by name) settlement payouts are sent through; unset: batches keep their
    /// payouts pending (in transit in the ledger) until one is configured.
    pub payout_channel: Option<String>,
    /// Business days an item waits for a channel's statement to list it before it is
    /// reported `missing_at_channel` (1–30).
    pub recon_wait_days: u16,
    /// Fee differences a statement shows up to this amount (in `default_currency`) are
    /// written off by themselves; larger ones wait for an operator.
    pub recon_fee_tolerance: String,
    /// How long one statement fetch from a channel may take.
    pub recon_fetch_timeout_ms: u64,
    /// How often a statement the day-end could not fetch is asked for again.
    pub recon_fetch_retry_ms: u64,
    /// A statement still missing this long after the day-end first asked for it raises
    /// the `ReconStatementMissing` alert.
    pub recon_statement_due_s: u64,
    /// Named operators besides the admin token, as `name=<SHA-256 of the token, hex>`
    /// separated by commas: each is an operator credential of its own, named in the audit
    /// log (`operator:<name>`), so that actions needing two people (a reconciliation
    /// resolution that moves money) can tell them apart. Only hashes are configured.
    pub operators: String,
    /// Payment limits of unverified customers (KYC level 0), in `default_currency`:
    /// `per_payment=…,per_day=…,per_year=…,balance_cap=…`; a name left out is no limit.
    pub kyc_limits_0: String,
    /// Limits of customers with a verified phone (level 1).
    pub kyc_limits_1: String,
    /// Limits of customers with a verified identity (level 2).
    pub kyc_limits_2: String,
    /// The identity service's base URL (`identity-sim` in development); unset: identity
    /// verification answers `503 identity_service_unavailable`.
    pub identity_url: Option<String>,
    /// The bearer key the identity service expects.
    pub identity_key: Option<Secret>,
    /// How long one identity check may take.
    pub identity_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            listen: "127.0.0.1:8080".to_string(),
            admin_token: None,
            body_limit_bytes: 64 << 10,
            batch_body_limit_bytes: 4 << 20,
            body_timeout_ms: 10_000,
            head_timeout_ms: 5_000,
            workers: 1,
            ledger_sched_batch: true,
            ledger_home: "auto".to_string(),
            rocksdb_background_nice: 5,
            rocksdb_flush_idle_nice: 19,
            dedup_filter_mb: services::platform::DEDUP_FILTER_BYTES_MAX >> 20,
            key_filter_mb: services::platform::KEY_FILTER_BYTES_MAX >> 20,
            dedup_held_ids: services::platform::DEDUP_HELD_IDS_MAX,
            dedup_seal_ids: services::platform::DEDUP_SEAL_IDS,
            balance_seal_accounts: services::platform::BALANCE_SEAL_ACCOUNTS,
            commit_delay_us: services::platform::CommitDelay::DEFAULT.max.as_micros() as u64,
            connections_max: 16_384,
            head_limit_bytes: 16 << 10,
            default_currency: "CNY".to_string(),
            default_fee_rate: "0.006".to_string(),
            inflight_max: services::platform::INFLIGHT_COMMANDS_MAX,
            store_lock_wait_ms: 60_000,
            risk_rules_file: None,
            card_key: None,
            master_key: None,
            tls_cert_file: None,
            webhook_retry_ms: "240000,600000,600000,3600000,7200000,21600000,54000000".into(),
            webhook_timeout_ms: 5_000,
            webhook_poll_ms: 200,
            tls_key_file: None,
            outbound_tls_ca_file: None,
            channel_timeout_ms: 5_000,
            routing_policy: "cost".to_string(),
            public_url: None,
            status_sync_ms: 500,
            rate_ip_per_s: 50_000,
            rate_ip_burst: 100_000,
            rate_merchant_per_s: 20_000,
            rate_merchant_burst: 40_000,
            rate_payer_per_s: 100,
            rate_payer_burst: 200,
            channels: Vec::new(),
            metrics_enabled: true,
            bench_floor: false,
            alerts_token: None,
            oncall_phones: Vec::new(),
            sms_gateway_url: None,
            sms_gateway_key: None,
            sms_timeout_ms: 3_000,
            sms_otp_per_hour: 5,
            sms_otp_burst: 3,
            sms_alert_per_hour: 30,
            sms_alert_burst: 10,
            otp_ttl_s: 300,
            otp_attempts_max: 5,
            authorization_ttl_s: 7 * 24 * 3600,
            timezone: "Asia/Shanghai".to_string(),
            day_end_at: None,
            archive_after_days: 30,
            refund_window_days: 365,
            payout_channel: None,
            recon_wait_days: 3,
            recon_fee_tolerance: "0.05".to_string(),
            recon_fetch_timeout_ms: 30_000,
            recon_fetch_retry_ms: 60_000,
            recon_statement_due_s: 6 * 3600,
            operators: String::new(),
            kyc_limits_0: "per_payment=200.00,per_day=500.00,per_year=1000.00,balance_cap=1000.00"
                .to_string(),
            kyc_limits_1:
                "per_payment=1000.00,per_day=2000.00,per_year=10000.00,balance_cap=5000.00"
                    .to_string(),
            kyc_limits_2: "per_payment=50000.00,per_day=100000.00,per_year=200000.00".to_string(),
            identity_url: None,
            identity_key: None,
            identity_timeout_ms: 3_000,
        }
    }
}

impl Config {
    /// The rate limits, as configured.
    pub fn rate_limits(&self) -> crate::ratelimit::Limits {
        use crate::ratelimit::Rate;
        crate::ratelimit::Limits::new(
            Rate {
                per_second: self.rate_ip_per_s,
                burst: self.rate_ip_burst,
            },
            Rate {
                per_second: self.rate_merchant_per_s,
                burst: self.rate_merchant_burst,
            },
            Rate {
                per_second: self.rate_payer_per_s,
                burst: self.rate_payer_burst,
            },
        )
    }

    /// Whether the ledger runs on the first HTTP worker's thread (`ledger_home`): `auto`
    /// asks how many CPUs this process may use (its affinity and its cgroup's quota).
    pub fn ledger_on_worker(&self) -> bool {
        match self.ledger_home.as_str() {
            "worker" => true,
            "own_thread" => false,
            _ => std::thread::available_parallelism().is_ok_and(|n| n.get() == 1),
        }
    }

    /// Loads defaults, then `file` (if given), then `RONGPAY_*` variables
    /// (`RONGPAY_BODY_LIMIT_BYTES=…`).
    pub fn load(file: Option<&std::path::Path>) -> Result<Config, String> {
        let mut builder = config::Config::builder();
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml));
        }
        // Only variables naming a setting: RONGPAY_LOG and friends are not settings, and a
        // typo in the file must still be refused by `deny_unknown_fields`.
        let vars: config::Map<String, String> = std::env::vars()
            .filter(|(k, _)| {
                k.strip_prefix("RONGPAY_")
                    .is_some_and(|key| SETTINGS.contains(&key.to_ascii_lowercase().as_str()))
            })
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("RONGPAY")
                .source(Some(vars))
                .try_parsing(true)
                .ignore_empty(true),
        );
        let loaded = builder
            .build()
            .map_err(|e| format!("reading configuration: {e}"))?;
        loaded
            .try_deserialize()
            .map_err(|e| format!("invalid configuration: {e}"))
    }

    /// Checks every setting; the message names the setting and quotes the bad value.
    pub fn validate(&self) -> Result<(), String> {
        self.listen.parse::<SocketAddr>().map_err(|_| {
            format!(
                "listen: {:?} is not an address like 127.0.0.1:8080",
                self.listen
            )
        })?;
        if !(BODY_LIMIT_BYTES_MIN..=BODY_LIMIT_BYTES_MAX).contains(&self.body_limit_bytes) {
            return Err(format!(
                "body_limit_bytes: {} is outside {BODY_LIMIT_BYTES_MIN}..={BODY_LIMIT_BYTES_MAX}",
                self.body_limit_bytes
            ));
        }
        if !(BODY_LIMIT_BYTES_MIN..=BODY_LIMIT_BYTES_MAX).contains(&self.batch_body_limit_bytes) {
            return Err(format!(
                "batch_body_limit_bytes: {} is outside {BODY_LIMIT_BYTES_MIN}..={BODY_LIMIT_BYTES_MAX}",
                self.batch_body_limit_bytes
            ));
        }
        for (name, ms) in [
            ("body_timeout_ms", self.body_timeout_ms),
            ("head_timeout_ms", self.head_timeout_ms),
        ] {
            if !(100..=300_000).contains(&ms) {
                return Err(format!("{name}: {ms} is outside 100..=300000"));
            }
        }
        if !(1_024..=131_072).contains(&self.head_limit_bytes) {
            return Err(format!(
                "head_limit_bytes: {} is outside 1024..=131072",
                self.head_limit_bytes
            ));
        }
        if !(1..=36_500).contains(&self.refund_window_days) {
            return Err(format!(
                "refund_window_days: {} is outside 1..=36500",
                self.refund_window_days
            ));
        }
        parse_operators(&self.operators)?;
        if !(1..=30).contains(&self.recon_wait_days) {
            return Err(format!(
                "recon_wait_days: {} is outside 1..=30",
                self.recon_wait_days
            ));
        }
        let currency = self.currency_checked()?;
        match engine::money::parse_amount(&self.recon_fee_tolerance, currency) {
            Ok(v) if v >= 0 => {}
            _ => {
                return Err(format!(
                    "recon_fee_tolerance: {:?} is not an amount ≥ 0 in {}",
                    self.recon_fee_tolerance, self.default_currency
                ))
            }
        }
        for (name, ms) in [
            ("recon_fetch_timeout_ms", self.recon_fetch_timeout_ms),
            ("recon_fetch_retry_ms", self.recon_fetch_retry_ms),
        ] {
            if !(100..=86_400_000).contains(&ms) {
                return Err(format!("{name}: {ms} is outside 100..=86400000"));
            }
        }
        if self.recon_statement_due_s > 30 * 86_400 {
            return Err(format!(
                "recon_statement_due_s: {} is outside 0..=2592000",
                self.recon_statement_due_s
            ));
        }
        if !(0..=19).contains(&self.rocksdb_background_nice) {
            return Err(format!(
                "rocksdb_background_nice: {} is outside 0..=19",
                self.rocksdb_background_nice
            ));
        }
        if !(0..=19).contains(&self.rocksdb_flush_idle_nice) {
            return Err(format!(
                "rocksdb_flush_idle_nice: {} is outside 0..=19",
                self.rocksdb_flush_idle_nice
            ));
        }
        if self.dedup_filter_mb > 4096 {
            return Err(format!(
                "dedup_filter_mb: {} is outside 0..=4096",
                self.dedup_filter_mb
            ));
        }
        if self.key_filter_mb > 4096 {
            return Err(format!(
                "key_filter_mb: {} is outside 0..=4096",
                self.key_filter_mb
            ));
        }
        if self.dedup_held_ids > 1 << 24 {
            return Err(format!(
                "dedup_held_ids: {} is outside 0..=16777216",
                self.dedup_held_ids
            ));
        }
        if self.balance_seal_accounts > 1 << 24 {
            return Err(format!(
                "balance_seal_accounts: {} is outside 0..=16777216",
                self.balance_seal_accounts
            ));
        }
        if self.commit_delay_us > 10_000 {
            return Err(format!(
                "commit_delay_us: {} is outside 0..=10000",
                self.commit_delay_us
            ));
        }
        if !(1..=1 << 24).contains(&self.dedup_seal_ids) {
            return Err(format!(
                "dedup_seal_ids: {} is outside 1..=16777216",
                self.dedup_seal_ids
            ));
        }
        if !["auto", "worker", "own_thread"].contains(&self.ledger_home.as_str()) {
            return Err(format!(
                "ledger_home: {:?} is not auto, worker or own_thread",
                self.ledger_home
            ));
        }
        if !(1..=64).contains(&self.workers) {
            return Err(format!("workers: {} is outside 1..=64", self.workers));
        }
        if !(1..=1_000_000).contains(&self.connections_max) {
            return Err(format!(
                "connections_max: {} is outside 1..=1000000",
                self.connections_max
            ));
        }
        if !(1..=1_000_000).contains(&self.inflight_max) {
            return Err(format!(
                "inflight_max: {} is outside 1..=1000000",
                self.inflight_max
            ));
        }
        if self.store_lock_wait_ms > 3_600_000 {
            return Err(format!(
                "store_lock_wait_ms: {} is outside 0..=3600000",
                self.store_lock_wait_ms
            ));
        }
        Currency::from_code(&self.default_currency).map_err(|_| {
            format!(
                "default_currency: {:?} is not an active ISO 4217 code",
                self.default_currency
            )
        })?;
        let ppm = parse_fee_rate(&self.default_fee_rate).map_err(|_| {
            format!(
                "default_fee_rate: {:?} is not a decimal between 0 and 1",
                self.default_fee_rate
            )
        })?;
        assert!(ppm <= FEE_RATE_PPM_MAX);
        if let Some(path) = &self.risk_rules_file {
            services::risk::load(path, self.currency_checked()?)
                .map_err(|e| format!("risk_rules_file: {e}"))?;
        }
        if !(50..=120_000).contains(&self.channel_timeout_ms) {
            return Err(format!(
                "channel_timeout_ms: {} is outside 50..=120000",
                self.channel_timeout_ms
            ));
        }
        if !(10..=600_000).contains(&self.status_sync_ms) {
            return Err(format!(
                "status_sync_ms: {} is outside 10..=600000",
                self.status_sync_ms
            ));
        }
        for (name, per_s, burst) in [
            ("rate_ip", self.rate_ip_per_s, self.rate_ip_burst),
            (
                "rate_merchant",
                self.rate_merchant_per_s,
                self.rate_merchant_burst,
            ),
            ("rate_payer", self.rate_payer_per_s, self.rate_payer_burst),
        ] {
            if per_s > 0 && burst == 0 {
                return Err(format!(
                    "{name}_burst: 0 with {name}_per_s {per_s}; a limit needs a burst of at least 1"
                ));
            }
        }
        if parse_policy(&self.routing_policy).is_none() {
            return Err(format!(
                "routing_policy: {:?} is not cost, success_rate, latency, priority or weighted_split",
                self.routing_policy
            ));
        }
        parse_retry(&self.webhook_retry_ms)?;
        if !(100..=60_000).contains(&self.webhook_timeout_ms) {
            return Err(format!(
                "webhook_timeout_ms: {} is outside 100..=60000",
                self.webhook_timeout_ms
            ));
        }
        if !(10..=60_000).contains(&self.webhook_poll_ms) {
            return Err(format!(
                "webhook_poll_ms: {} is outside 10..=60000",
                self.webhook_poll_ms
            ));
        }
        match (&self.tls_cert_file, &self.tls_key_file) {
            (None, None) => {}
            (Some(cert), Some(key)) => {
                services::tls::server_config(cert, key)?;
            }
            _ => {
                return Err(
                    "tls_cert_file and tls_key_file go together: set both or neither".into(),
                )
            }
        }
        if let Some(path) = &self.outbound_tls_ca_file {
            services::tls::client_config(Some(path))?;
        }
        if let Some(key) = &self.master_key {
            crate::vault::check_key(key.expose()).map_err(|e| format!("master_key: {e}"))?;
        }
        if let Some(key) = &self.card_key {
            crate::vault::check_key(key.expose()).map_err(|e| format!("card_key: {e}"))?;
        }
        if let Some(token) = &self.admin_token {
            check_token(token.expose()).map_err(|e| format!("admin_token: {e}"))?;
        }
        if let Some(token) = &self.alerts_token {
            check_token(token.expose()).map_err(|e| format!("alerts_token: {e}"))?;
        }
        if self.oncall_phones.len() > 100 {
            return Err("oncall_phones: at most 100 numbers".into());
        }
        for phone in &self.oncall_phones {
            crate::notify::check_phone(phone, "oncall_phones")
                .map_err(|e| format!("oncall_phones: {phone:?}: {}", e))?;
        }
        match (&self.sms_gateway_url, &self.sms_gateway_key) {
            (None, None) => {}
            (Some(url), Some(key)) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!("sms_gateway_url: {url:?} is not an http(s) URL"));
                }
                check_token(key.expose()).map_err(|e| format!("sms_gateway_key: {e}"))?;
            }
            _ => {
                return Err(
                    "sms_gateway_url and sms_gateway_key go together: set both or neither".into(),
                )
            }
        }
        self.kyc_limits()?;
        if let Some(url) = &self.identity_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("identity_url: {url:?} is not an http(s) URL"));
            }
        }
        if let Some(key) = &self.identity_key {
            check_token(key.expose()).map_err(|e| format!("identity_key: {e}"))?;
        }
        if !(100..=60_000).contains(&self.identity_timeout_ms) {
            return Err(format!(
                "identity_timeout_ms: {} is outside 100..=60000",
                self.identity_timeout_ms
            ));
        }
        if !(100..=60_000).contains(&self.sms_timeout_ms) {
            return Err(format!(
                "sms_timeout_ms: {} is outside 100..=60000",
                self.sms_timeout_ms
            ));
        }
        if !(1..=3_600).contains(&self.otp_ttl_s) {
            return Err(format!("otp_ttl_s: {} is outside 1..=3600", self.otp_ttl_s));
        }
        if !(1..=20).contains(&self.otp_attempts_max) {
            return Err(format!(
                "otp_attempts_max: {} is outside 1..=20",
                self.otp_attempts_max
            ));
        }
        if !(1..=30 * 24 * 3600).contains(&self.authorization_ttl_s) {
            return Err(format!(
                "authorization_ttl_s: {} is outside 1..=2592000 (30 days)",
                self.authorization_ttl_s
            ));
        }
        services::gl::time_zone(&self.timezone).map_err(|e| format!("timezone: {e}"))?;
        if let Some(at) = &self.day_end_at {
            services::day_end::parse_day_end_at(at).map_err(|e| format!("day_end_at: {e}"))?;
        }
        Ok(())
    }

    /// What the business flows are configured with (call after [`Config::validate`]).
    pub fn settings(&self) -> services::Settings {
        services::Settings {
            data_dir: self.data_dir.clone(),
            currency: self.currency(),
            default_fee_rate: self.default_fee_rate.clone(),
            inflight_max: self.inflight_max,
            store_lock_wait: Duration::from_millis(self.store_lock_wait_ms),
            rocksdb_background_nice: self.rocksdb_background_nice,
            rocksdb_flush_idle_nice: self.rocksdb_flush_idle_nice,
            dedup_filter_bytes_max: self.dedup_filter_mb << 20,
            key_filter_bytes_max: self.key_filter_mb << 20,
            dedup_held_ids_max: self.dedup_held_ids,
            dedup_seal_ids: self.dedup_seal_ids,
            balance_seal_accounts: self.balance_seal_accounts,
            commit_delay: services::platform::CommitDelay {
                max: Duration::from_micros(self.commit_delay_us),
            },
            risk_rules_file: self.risk_rules_file.clone(),
            channel_timeout: self.channel_timeout(),
            routing_policy: self.policy(),
            public_url: self.public_url(),
            outbound_tls_ca_file: self.outbound_tls_ca_file.clone(),
            status_sync: Duration::from_millis(self.status_sync_ms),
            channels: self.channels.clone(),
            webhook_retry: self.webhook_retry(),
            webhook_timeout: Duration::from_millis(self.webhook_timeout_ms),
            webhook_poll: Duration::from_millis(self.webhook_poll_ms),
            oncall_phones: self.oncall_phones.clone(),
            sms_gateway_url: self.sms_gateway_url.clone(),
            sms_gateway_key: self.sms_gateway_key.clone(),
            sms_timeout: Duration::from_millis(self.sms_timeout_ms),
            sms_otp_per_hour: self.sms_otp_per_hour,
            sms_otp_burst: self.sms_otp_burst,
            sms_alert_per_hour: self.sms_alert_per_hour,
            sms_alert_burst: self.sms_alert_burst,
            otp_ttl_s: self.otp_ttl_s,
            otp_attempts_max: self.otp_attempts_max,
            authorization_ttl_s: self.authorization_ttl_s,
            timezone: services::gl::time_zone(&self.timezone)
                .expect("validated by Config::validate"),
            archive_after_days: self.archive_after_days,
            refund_window_days: self.refund_window_days,
            payout_channel: self.payout_channel.clone(),
            recon_wait_days: self.recon_wait_days,
            recon_fee_tolerance: self
                .currency_checked()
                .ok()
                .and_then(|c| engine::money::parse_amount(&self.recon_fee_tolerance, c).ok())
                .unwrap_or(0),
            recon_fetch_timeout: Duration::from_millis(self.recon_fetch_timeout_ms),
            recon_fetch_retry: Duration::from_millis(self.recon_fetch_retry_ms),
            recon_statement_due: Duration::from_secs(self.recon_statement_due_s),
            kyc_limits: self.kyc_limits().expect("validated by Config::validate"),
            identity_url: self.identity_url.clone(),
            identity_key: self.identity_key.clone(),
            identity_timeout: Duration::from_millis(self.identity_timeout_ms),
            day_end_at: self.day_end_at.as_deref().map(|at| {
                services::day_end::parse_day_end_at(at).expect("validated by Config::validate")
            }),
        }
    }

    /// The KYC levels' limits, parsed.
    pub fn kyc_limits(&self) -> Result<[engine::kyc::Limits; 3], String> {
        let currency = self.currency_checked()?;
        let parse = |name: &str, text: &str| {
            engine::kyc::Limits::parse(text, currency).map_err(|e| format!("{name}: {e}"))
        };
        Ok([
            parse("kyc_limits_0", &self.kyc_limits_0)?,
            parse("kyc_limits_1", &self.kyc_limits_1)?,
            parse("kyc_limits_2", &self.kyc_limits_2)?,
        ])
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    pub fn head_timeout(&self) -> Duration {
        Duration::from_millis(self.head_timeout_ms)
    }

    fn currency_checked(&self) -> Result<Currency, String> {
        Currency::from_code(&self.default_currency)
            .map_err(|_| format!("default_currency: {:?}", self.default_currency))
    }

    /// The webhook retry schedule (validated at start).
    pub fn webhook_retry(&self) -> Vec<Duration> {
        parse_retry(&self.webhook_retry_ms).unwrap_or_default()
    }

    /// `https` when the listener speaks TLS.
    pub fn scheme(&self) -> &'static str {
        if self.tls_cert_file.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Base URL for notifications, without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("{}://{}", self.scheme(), self.listen))
            .trim_end_matches('/')
            .to_string()
    }

    pub fn channel_timeout(&self) -> Duration {
        Duration::from_millis(self.channel_timeout_ms)
    }

    pub fn policy(&self) -> engine::routing::Policy {
        parse_policy(&self.routing_policy).expect("validated")
    }

    pub fn currency(&self) -> Currency {
        Currency::from_code(&self.default_currency).expect("validated")
    }
}

/// `operators`: "name=sha256hex,…", at most 64, names 1–32 of a-z, 0-9, _ and unique.
pub fn parse_operators(text: &str) -> Result<Vec<(String, [u8; 32])>, String> {
    let mut out: Vec<(String, [u8; 32])> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, hash) = item
            .split_once('=')
            .ok_or_else(|| format!("operators: {item:?} is not name=<sha256 hex>"))?;
        if name.is_empty()
            || name.len() > 32
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(format!(
                "operators: {name:?} is not a name of 1 to 32 of a-z, 0-9 and _"
            ));
        }
        if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(format!(
                "operators: {name}'s hash is not 64 lower-case hex digits"
            ));
        }
        let mut digest = [0u8; 32];
        for (i, d) in digest.iter_mut().enumerate() {
            *d = u8::from_str_radix(&hash[2 * i..2 * i + 2], 16).expect("checked hex");
        }
        if out.iter().any(|(n, h)| n == name || *h == digest) {
            return Err(format!(
                "operators: {name} is named twice or shares a token"
            ));
        }
        out.push((name.to_string(), digest));
    }
    if out.len() > 64 {
        return Err("operators: at most 64".into());
    }
    Ok(out)
}

/// "ms,ms,…": 1 to 32 waits of 1 ms to 2 days each.
fn parse_retry(text: &str) -> Result<Vec<Duration>, String> {
    let waits: Vec<Duration> = text
        .split(',')
        .map(|w| {
            w.trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| (1..=172_800_000).contains(ms))
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    format!("webhook_retry_ms: {w:?} is not a wait of 1 to 172800000 ms")
                })
        })
        .collect::<Result<_, _>>()?;
    if waits.len() > 32 {
        return Err(format!(
            "webhook_retry_ms: {} waits, at most 32",
            waits.len()
        ));
    }
    Ok(waits)
}

fn parse_policy(text: &str) -> Option<engine::routing::Policy> {
    use engine::routing::Policy;
    Some(match text {
        "cost" => Policy::Cost,
        "success_rate" => Policy::SuccessRate,
        "latency" => Policy::Latency,
        "priority" => Policy::Priority,
        "weighted_split" => Policy::WeightedSplit,
        _ => return None,
    })
}

/// A bearer token must be 16–255 visible ASCII characters.
pub fn check_token(token: &str) -> Result<(), String> {
    if !(16..=255).contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be 16 to 255 visible ASCII characters".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = |f: fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.listen = "localhost".into()).starts_with("listen:"));
        assert!(bad(|c| c.body_limit_bytes = 10).starts_with("body_limit_bytes:"));
        assert!(bad(|c| c.workers = 0).starts_with("workers:"));
        assert!(bad(|c| c.ledger_home = "main".into()).starts_with("ledger_home:"));
        assert!(bad(|c| c.rocksdb_background_nice = 20).starts_with("rocksdb_background_nice:"));
        assert!(bad(|c| c.dedup_filter_mb = 4097).starts_with("dedup_filter_mb:"));
        assert!(bad(|c| c.key_filter_mb = 4097).starts_with("key_filter_mb:"));
        assert!(bad(|c| c.dedup_held_ids = (1 << 24) + 1).starts_with("dedup_held_ids:"));
        assert!(bad(|c| c.dedup_seal_ids = 0).starts_with("dedup_seal_ids:"));
        assert!(
            bad(|c| c.balance_seal_accounts = (1 << 24) + 1).starts_with("balance_seal_accounts:")
        );
        assert!(bad(|c| c.commit_delay_us = 10_001).starts_with("commit_delay_us:"));
        assert!(bad(|c| c.rocksdb_background_nice = -1).starts_with("rocksdb_background_nice:"));
        assert!(bad(|c| c.rocksdb_flush_idle_nice = 20).starts_with("rocksdb_flush_idle_nice:"));
        assert!(bad(|c| c.inflight_max = 0).starts_with("inflight_max:"));
        assert!(bad(|c| c.store_lock_wait_ms = u64::MAX).starts_with("store_lock_wait_ms:"));
        assert!(bad(|c| c.default_currency = "XXX".into()).starts_with("default_currency:"));
        assert!(bad(|c| c.default_fee_rate = "1.5".into()).starts_with("default_fee_rate:"));
        assert!(
            bad(|c| c.admin_token = Some(Secret::new("short".into()))).starts_with("admin_token:")
        );
        assert_eq!(
            format!("{:?}", Secret::new("hunter2hunter2hunter2".to_string())),
            "Secret(****)"
        );
    }
}

//! Prometheus metrics through the `metrics` facade: every name, its HELP text and unit, the
//! histogram buckets, the recording helpers the request path calls, and the gauges read from
//! the engine at scrape time.
//!
//! Conventions (<https://prometheus.io/docs/practices/naming/>): prefix `rongpay_`, base units
//! in the name (`_seconds`, `_bytes`; money as `_minor_units` of its currency, exact as
//! integers), counters end in `_total`. Labels take values from small closed sets (routes as
//! their patterns, statuses, codes, channel names — a deployment has at most
//! [`crate::channels::CHANNELS_MAX`]); never a payment, account or merchant id.
//!
//! With `metrics_enabled = false` no recorder is installed: every recording call is a no-op
//! (how the cost of metrics is measured) and `/metrics` answers 404.

use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use storage::records::{Payment, PaymentStatus};

use crate::platform::Platform;

// HTTP.
pub const HTTP_REQUESTS: &str = "rongpay_http_requests_total";
pub const HTTP_SECONDS: &str = "rongpay_http_request_duration_seconds";
pub const RATE_LIMITED: &str = "rongpay_rate_limited_total";
// Payments and refunds.
pub const PAYMENTS: &str = "rongpay_payments_total";
pub const PAYMENT_AMOUNT: &str = "rongpay_payment_amount_minor_units_total";
pub const REFUNDS: &str = "rongpay_refunds_total";
pub const REFUND_AMOUNT: &str = "rongpay_refund_amount_minor_units_total";
pub const IDEMPOTENCY: &str = "rongpay_idempotency_requests_total";
// Risk.
pub const RISK_DECISIONS: &str = "rongpay_risk_decisions_total";
pub const RISK_SCORE: &str = "rongpay_risk_score";
// Router and channels.
pub const ROUTER_CHOICES: &str = "rongpay_router_choices_total";
pub const ROUTER_FAILOVERS: &str = "rongpay_router_failovers_total";
pub const CHANNEL_CALLS: &str = "rongpay_channel_calls_total";
pub const CHANNEL_SECONDS: &str = "rongpay_channel_call_duration_seconds";
pub const CHANNEL_BREAKER: &str = "rongpay_channel_breaker_state";
pub const CHANNEL_SUCCESS: &str = "rongpay_channel_success_ratio";
pub const CHANNEL_INFLIGHT: &str = "rongpay_channel_inflight_calls";
pub const CHANNEL_ENABLED: &str = "rongpay_channel_enabled";
pub const CHANNEL_POSITION: &str = "rongpay_channel_position_minor_units";
pub const CHANNEL_LOW_WATER: &str = "rongpay_channel_position_low_water_minor_units";
// Positions and reserve (issue #16).
pub const RESERVE_BALANCE: &str = "rongpay_reserve_balance_minor_units";
pub const RESERVE_LOW_WATER: &str = "rongpay_reserve_low_water_minor_units";
pub const COVERAGE_FUNDS: &str = "rongpay_coverage_funds_minor_units";
pub const COVERAGE_OWED: &str = "rongpay_coverage_owed_minor_units";
pub const DAY_END_COVERAGE_SHORTFALL: &str = "rongpay_day_end_coverage_shortfall_minor_units";
// Store (write-ahead journal).
pub const WAL_QUEUE: &str = "rongpay_wal_queue_depth";
pub const WAL_POISONED: &str = "rongpay_wal_poisoned";
pub const WAL_LAST_SEQ: &str = "rongpay_wal_last_seq";
// Actors.
pub const MAILBOX_DEPTH: &str = "rongpay_actor_mailbox_depth";
pub const ACCOUNTS_ACTIVE: &str = "rongpay_accounts_active";
pub const LEDGER_INFLIGHT: &str = "rongpay_ledger_inflight_commands";
// Webhooks.
pub const WEBHOOKS: &str = "rongpay_webhook_deliveries_total";
pub const WEBHOOK_BACKLOG: &str = "rongpay_webhook_backlog";
/// Log lines dropped because the log writer's buffer was full (api::logwriter).
pub const LOG_LINES_DROPPED: &str = "rongpay_log_lines_dropped_total";
// Process.
pub const READY: &str = "rongpay_ready";
pub const BUILD_INFO: &str = "rongpay_build_info";
// Notifications (SMS) and alerts.
pub const SMS: &str = "rongpay_sms_messages_total";
pub const SMS_RECEIPTS: &str = "rongpay_sms_receipts_total";
pub const OTP: &str = "rongpay_otp_total";
pub const ALERTS: &str = "rongpay_alerts_received_total";
/// 1 while the last day-end failed (a check failed, or a step could not run), else 0.
pub const DAY_END_FAILED: &str = "rongpay_day_end_failed";
/// When the last day-end finished with every check passed (Unix seconds).
pub const DAY_END_LAST_SUCCESS: &str = "rongpay_day_end_last_success_timestamp_seconds";

// Reconciliation (issue #17).
pub const RECON_RUNS: &str = "rongpay_recon_runs_total";
pub const RECON_MISMATCHES: &str = "rongpay_recon_mismatches_total";
/// Channel statements still missing `recon_statement_due_s` after the day-end asked.
pub const RECON_STATEMENTS_LATE: &str = "rongpay_recon_statements_late";
pub const RECON_RESOLUTIONS: &str = "rongpay_recon_resolutions_total";
pub const RECON_OPEN: &str = "rongpay_recon_open_mismatches";
/// Age of the oldest open (or proposed) mismatch, 0 when none: the aging alert's input.
pub const RECON_OLDEST_OPEN: &str = "rongpay_recon_oldest_open_mismatch_age_seconds";
// Customers and KYC (issue #18).
pub const IDENTITY_CHECKS: &str = "rongpay_identity_checks_total";
pub const IDENTITY_SECONDS: &str = "rongpay_identity_check_duration_seconds";
pub const KYC_REFUSALS: &str = "rongpay_kyc_limit_refusals_total";
pub const COUPON_REDEMPTIONS: &str = "rongpay_coupon_redemptions_total";
/// Credit lines overdue after the last day-end, and the principal they owe.
pub const CREDIT_OVERDUE_LINES: &str = "rongpay_credit_lines_overdue";
pub const CREDIT_INTEREST: &str = "rongpay_credit_interest_minor_units_total";

/// Latency buckets (seconds) for requests and channel calls: 250 µs to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Group write latency (fdatasync dominates): 50 µs to 2.5 s.
const SYNC_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5,
];
/// A group's wait for more units before its write: 1 µs (a yield that found nothing else to
/// run) to 10 ms (past `commit_delay_us`'s bound).
const DELAY_BUCKETS: &[f64] = &[
    0.000001, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01,
];
const UNITS_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];
const BYTES_BUCKETS: &[f64] = &[
    256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
];
const KEYS_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0,
];
const SCORE_BUCKETS: &[f64] = &[
    0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0,
];

/// How often histogram samples are folded into their buckets when nobody scrapes: what keeps
/// the recorder's sample queues bounded.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the process-wide recorder and describes every metric (HELP lines need it).
pub fn install() -> Result<PrometheusHandle, String> {
    let buckets = |b: PrometheusBuilder, name: &str, values: &[f64]| {
        b.set_buckets_for_metric(Matcher::Full(name.to_string()), values)
            .map_err(|e| format!("histogram buckets of {name}: {e}"))
    };
    let mut b = PrometheusBuilder::new();
    for name in [HTTP_SECONDS, CHANNEL_SECONDS, IDENTITY_SECONDS] {
        b = buckets(b, name, SECONDS_BUCKETS)?;
    }
    b = buckets(b, storage::writer::WAL_SYNC_SECONDS, SYNC_BUCKETS)?;
    b = buckets(b, storage::writer::WAL_COMMIT_DELAY_SECONDS, DELAY_BUCKETS)?;
    b = buckets(b, storage::writer::WAL_BATCH_UNITS, UNITS_BUCKETS)?;
    b = buckets(b, storage::writer::WAL_BATCH_BYTES, BYTES_BUCKETS)?;
    b = buckets(b, storage::writer::WAL_BATCH_KEYS, KEYS_BUCKETS)?;
    b = buckets(b, RISK_SCORE, SCORE_BUCKETS)?;
    let recorder = b.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|e| format!("installing the metrics recorder: {e}"))?;
    describe();
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    zeroes();
    Ok(handle)
}

/// Counters whose label sets are known are exported at 0 from the start: a series that
/// appears only with its first event makes `rate()` and alerts blind to that event.
fn zeroes() {
    gauge!(DAY_END_FAILED).set(0.0);
    counter!(actors::shard::PASSIVATIONS).increment(0);
    counter!(LOG_LINES_DROPPED).increment(0);
    for template in ["otp", "alert"] {
        for outcome in ["sent", "rate_limited", "failed"] {
            counter!(SMS, "template" => template, "outcome" => outcome).increment(0);
        }
    }
    for (name, label, values) in [
        (SMS_RECEIPTS, "status", &["delivered", "failed"][..]),
        (
            OTP,
            "outcome",
            &[
                "issued",
                "verified",
                "wrong_code",
                "expired",
                "locked",
                "unknown",
            ][..],
        ),
        (ALERTS, "status", &["firing", "resolved"][..]),
        (
            storage::writer::WAL_DEDUP_IDS,
            "answered_by",
            &["filter", "index"][..],
        ),
        (WEBHOOKS, "outcome", &["delivered", "retry", "failed"][..]),
        (
            RATE_LIMITED,
            "limit",
            &["ip", "merchant", "payer", "sms_otp", "sms_alert"][..],
        ),
        (
            IDEMPOTENCY,
            "outcome",
            &["new", "replayed", "reused", "in_progress"][..],
        ),
        (
            RISK_DECISIONS,
            "decision",
            &["approve", "review", "reject"][..],
        ),
        (
            REFUNDS,
            "status",
            &["processing", "succeeded", "failed"][..],
        ),
        (
            IDENTITY_CHECKS,
            "outcome",
            &["match", "mismatch", "no_record", "unavailable"][..],
        ),
        (
            COUPON_REDEMPTIONS,
            "outcome",
            &["redeemed", "unavailable"][..],
        ),
        (
            KYC_REFUSALS,
            "limit",
            &["per_payment", "per_day", "per_year", "balance_cap"][..],
        ),
    ] {
        for value in values {
            counter!(name, label => *value).increment(0);
        }
    }
}

fn describe() {
    describe_gauge!(
        DAY_END_FAILED,
        "1 while the last day-end failed (a check failed or a step could not run), else 0."
    );
    describe_gauge!(
        DAY_END_LAST_SUCCESS,
        Unit::Seconds,
        "When the last day-end finished with every check passed (Unix time)."
    );
    describe_counter!(
        HTTP_REQUESTS,
        Unit::Count,
        "HTTP requests answered, by route pattern, method and status code."
    );
    describe_histogram!(
        HTTP_SECONDS,
        Unit::Seconds,
        "Time from a request's head to its answer, by route pattern and method."
    );
    describe_counter!(
        RATE_LIMITED,
        Unit::Count,
        "Requests refused 429 rate_limited, by limit: ip, merchant or payer."
    );
    describe_counter!(
        PAYMENTS,
        Unit::Count,
        "Payments entering a status (processing, succeeded, failed), by method, failure code (none when not failed) and channel (none for balance payments). A card payment that waited for its channel counts once as processing and once in its final status."
    );
    describe_counter!(
        PAYMENT_AMOUNT,
        "Amount of succeeded payments in minor units of their currency (fen for CNY), by currency and method."
    );
    describe_counter!(
        REFUNDS,
        Unit::Count,
        "Refunds entering a status (processing, succeeded, failed)."
    );
    describe_counter!(
        REFUND_AMOUNT,
        "Amount of succeeded refunds in minor units of their currency, by currency."
    );
    describe_counter!(
        IDEMPOTENCY,
        Unit::Count,
        "Requests carrying an Idempotency-Key, by outcome: new, replayed, reused (a different request: 422), in_progress (409)."
    );
    describe_counter!(
        RISK_DECISIONS,
        Unit::Count,
        "Risk decisions on payments: approve, review or reject."
    );
    describe_histogram!(RISK_SCORE, "Risk score of each payment scored (0 to 100).");
    describe_counter!(
        ROUTER_CHOICES,
        Unit::Count,
        "Card payments by the channel the router ranked first."
    );
    describe_counter!(
        ROUTER_FAILOVERS,
        Unit::Count,
        "Card payments moved on from a channel to the next, by the channel left and why (its failure code, or what admission refused)."
    );
    describe_counter!(
        CHANNEL_CALLS,
        Unit::Count,
        "Charge calls to channels, by channel and outcome: charged, declined, channel_error, connection_refused, no_answer."
    );
    describe_histogram!(
        CHANNEL_SECONDS,
        Unit::Seconds,
        "Time a channel took to answer a charge call (or to fail it), by channel."
    );
    describe_gauge!(
        CHANNEL_BREAKER,
        "Circuit breaker of each channel: 0 closed, 1 half open, 2 open."
    );
    describe_gauge!(
        CHANNEL_SUCCESS,
        "Share of a channel's calls over the breaker window that the channel answered (1 with no calls)."
    );
    describe_gauge!(
        CHANNEL_INFLIGHT,
        Unit::Count,
        "Calls in flight to each channel."
    );
    describe_gauge!(
        CHANNEL_ENABLED,
        "1 when the channel takes payments, 0 when an operator disabled it."
    );
    describe_gauge!(
        CHANNEL_POSITION,
        "Our position at each channel in minor units of its currency: what it owes us for the charges it made, net of its fees."
    );
    describe_gauge!(
        CHANNEL_LOW_WATER,
        "The position below which a channel needs funding (its position_low_water; 0 when unset)."
    );
    describe_gauge!(
        RESERVE_BALANCE,
        "What each reserve account at a clearing bank holds, in minor units (GL 1001)."
    );
    describe_gauge!(
        RESERVE_LOW_WATER,
        "The balance below which a reserve account needs funding (its low_water; 0 when unset)."
    );
    describe_gauge!(
        COVERAGE_FUNDS,
        "Funds now: reserve + in transit between reserve accounts + receivable from channels, in minor units."
    );
    describe_gauge!(
        COVERAGE_OWED,
        "Owed now to customers and merchants (balances, pending, available, splits, payouts and refunds in transit, coupon budgets), in minor units."
    );
    describe_gauge!(
        DAY_END_COVERAGE_SHORTFALL,
        "What the last day-end's coverage check found missing (owed − funds on the closed date's figures; 0 when covered)."
    );
    describe_histogram!(
        storage::writer::WAL_SYNC_SECONDS,
        Unit::Seconds,
        "Time of one synced group write of the journal, fdatasync included."
    );
    describe_histogram!(
        storage::writer::WAL_COMMIT_DELAY_SECONDS,
        Unit::Seconds,
        "Time a group write waited before its write for the units its core's other threads were preparing (commit_delay_us; for each group that waited: a group waits when the one before it held two units or more)."
    );
    describe_histogram!(
        storage::writer::WAL_BATCH_UNITS,
        Unit::Count,
        "Commit units (payments, transfers, records) made durable by one synced group write."
    );
    describe_histogram!(
        storage::writer::WAL_BATCH_BYTES,
        Unit::Bytes,
        "Bytes written by one synced group write."
    );
    describe_histogram!(
        storage::writer::WAL_BATCH_KEYS,
        Unit::Count,
        "RocksDB records (puts and merge operands) written by one synced group write."
    );
    describe_counter!(
        storage::writer::WAL_CHECKPOINTS,
        Unit::Count,
        "Balance checkpoints written after group writes (unflushed balance deltas into the accounts family)."
    );
    describe_counter!(
        storage::writer::WAL_CHECKPOINT_KEYS,
        Unit::Count,
        "RocksDB records (merge operands, GL book, mark) written by balance checkpoints."
    );
    describe_counter!(
        storage::writer::WAL_DEDUP_IDS,
        Unit::Count,
        "Transfer ids checked for duplicates before a group write, by what answered: filter (ruled out in memory) or index (looked up in RocksDB's dedup index)."
    );
    describe_gauge!(
        storage::writer::WAL_DEDUP_FILTER_BYTES,
        Unit::Bytes,
        "Bytes of the group-commit writer's filter of durable transfer ids (0 while it is built after a start, or when off or given up)."
    );
    describe_gauge!(
        storage::store::KEY_FILTER_BYTES,
        Unit::Bytes,
        "Bytes of the store's filter of idempotency keys, out_trade_no indexes and customer links, which answers lookups of keys not stored without RocksDB (0 while it is built after a start, or when off, given up or saturated)."
    );
    describe_gauge!(
        storage::writer::WAL_DEDUP_HELD_IDS,
        Unit::Count,
        "Transfer ids durable in the journal and held in memory by the writer, not yet ingested into the dedup index (bounded; past the bound groups write their ids inline)."
    );
    describe_counter!(
        storage::writer::WAL_DEDUP_INGESTED_IDS,
        Unit::Count,
        "Transfer ids ingested into the dedup index as table files from the writer's held runs."
    );
    describe_counter!(
        storage::writer::WAL_WRITE_STALLS,
        Unit::Count,
        "Group writes that met a RocksDB write stall (memtable flushes or L0 compactions behind the writes) and waited for it to clear."
    );
    describe_gauge!(
        storage::store::STORE_ONLINE_DISCARD,
        "1 while the data dir's file system is mounted with online discard (journal syncs wait behind the discards of deleted files: mount it without discard, trim on a timer), else 0."
    );
    describe_gauge!(
        WAL_QUEUE,
        Unit::Count,
        "Commit units waiting for the journal writer."
    );
    describe_gauge!(
        WAL_POISONED,
        "1 once a failed write or sync made the store refuse all writes (restart needed), else 0."
    );
    describe_gauge!(
        WAL_LAST_SEQ,
        "Sequence number of the last durable journal entry."
    );
    describe_gauge!(
        MAILBOX_DEPTH,
        Unit::Count,
        "Messages waiting in (or being handled from) the account actors' mailboxes, summed."
    );
    describe_gauge!(ACCOUNTS_ACTIVE, Unit::Count, "Account actors in memory.");
    describe_counter!(
        actors::shard::PASSIVATIONS,
        Unit::Count,
        "Account actors passivated (dropped from memory after being idle)."
    );
    describe_gauge!(
        LEDGER_INFLIGHT,
        Unit::Count,
        "Ledger commands in flight (admission refuses 503 overloaded beyond inflight_max)."
    );
    describe_counter!(
        WEBHOOKS,
        Unit::Count,
        "Webhook delivery tries, by outcome: delivered, retry (scheduled again), failed (last try)."
    );
    describe_counter!(
        LOG_LINES_DROPPED,
        Unit::Count,
        "Log lines dropped because the log writer's 16 MiB buffer was full (a slow stderr)."
    );
    describe_gauge!(
        WEBHOOK_BACKLOG,
        Unit::Count,
        "Webhook events waiting for delivery (counted up to 100000)."
    );
    describe_gauge!(
        READY,
        "1 once recovery finished and the store takes writes, else 0."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the version label says which payd runs."
    );
    describe_counter!(
        SMS,
        Unit::Count,
        "SMS messages, by template and outcome: sent (accepted by the gateway), rate_limited, failed."
    );
    describe_counter!(
        SMS_RECEIPTS,
        Unit::Count,
        "SMS delivery receipts from the gateway, by status: delivered, failed."
    );
    describe_counter!(
        IDENTITY_CHECKS,
        Unit::Count,
        "Identity checks at the identity service, by outcome: match, mismatch, no_record, unavailable."
    );
    describe_histogram!(
        IDENTITY_SECONDS,
        Unit::Seconds,
        "Time of one identity check at the identity service (answered or not)."
    );
    describe_counter!(
        COUPON_REDEMPTIONS,
        Unit::Count,
        "Coupon redemptions in payments, by outcome: redeemed, unavailable (the payment failed coupon_unavailable)."
    );
    describe_gauge!(
        CREDIT_OVERDUE_LINES,
        "Credit lines with a bill past its due date unpaid, as of the last day-end's credit step."
    );
    describe_counter!(
        CREDIT_INTEREST,
        "Interest charged on overdue credit lines by day-ends (minor units, by currency)."
    );
    describe_counter!(
        KYC_REFUSALS,
        Unit::Count,
        "Payments and deposits refused by a KYC limit of the customer's level, by limit: per_payment, per_day, per_year, balance_cap."
    );
    describe_counter!(
        OTP,
        Unit::Count,
        "One-time codes, by outcome: issued, verified, wrong_code, expired, locked (too many tries), unknown."
    );
    describe_counter!(
        ALERTS,
        Unit::Count,
        "Alerts received from Alertmanager, by status: firing, resolved."
    );
    describe_counter!(
        RECON_RUNS,
        Unit::Count,
        "Reconciliation runs completed, by channel."
    );
    describe_counter!(
        RECON_MISMATCHES,
        Unit::Count,
        "Mismatches found by reconciliation runs (booked to suspense), by channel."
    );
    describe_counter!(
        RECON_RESOLUTIONS,
        Unit::Count,
        "Reconciliation mismatch resolutions, by how: proposed, approved, automatic."
    );
    describe_gauge!(
        RECON_OPEN,
        Unit::Count,
        "Reconciliation mismatches open or proposed (their suspense still booked)."
    );
    describe_gauge!(
        RECON_OLDEST_OPEN,
        Unit::Seconds,
        "Age of the oldest open reconciliation mismatch (0 when none)."
    );
    describe_gauge!(
        RECON_STATEMENTS_LATE,
        Unit::Count,
        "Channel statements still missing recon_statement_due_s after the day-end first asked for them."
    );
}

/// A reconciliation run completed.
pub fn recon_run(r: &storage::records::ReconRun) {
    counter!(RECON_RUNS, "channel" => r.channel_name.clone()).increment(1);
    counter!(RECON_MISMATCHES, "channel" => r.channel_name.clone())
        .increment(u64::from(r.mismatches));
}

/// A resolution step: `proposed`, `approved` (booked after a second operator), `automatic`.
pub fn recon_resolution(how: &'static str) {
    counter!(RECON_RESOLUTIONS, "how" => how).increment(1);
}

/// Open mismatches and the oldest's age.
pub fn recon_open(count: u64, oldest_age_ns: u64) {
    gauge!(RECON_OPEN).set(count as f64);
    gauge!(RECON_OLDEST_OPEN).set(oldest_age_ns as f64 / 1e9);
}

/// Statements missing past their due time.
pub fn recon_statements_late(n: u64) {
    gauge!(RECON_STATEMENTS_LATE).set(n as f64);
}

/// Handles of the metrics with static labels, per thread, keyed by the addresses of the name
/// and label values (all `&'static str`: literals, or interned route patterns). A registry
/// lookup builds a key (allocating its label list) and hashes every string; this is a
/// small-map lookup on five words, then an atomic. Bounded: the keys are the static label
/// combinations of this file and at most [`ROUTES_MAX`] route patterns.
type StaticKey = (usize, [usize; 4]);
type Handles<T> = std::collections::HashMap<StaticKey, T, foldhash::fast::FixedState>;

thread_local! {
    static COUNTERS: std::cell::RefCell<Handles<metrics::Counter>> = Default::default();
    static HISTOGRAMS: std::cell::RefCell<Handles<metrics::Histogram>> = Default::default();
    static DYN_COUNTERS: std::cell::RefCell<Dyn<metrics::Counter>> = Default::default();
    static DYN_HISTOGRAMS: std::cell::RefCell<Dyn<metrics::Histogram>> = Default::default();
}

/// Handles of the metrics with labels whose values are not static (a channel's name, a
/// failure code), per thread: keyed as [`Handles`] by the static part, then by the dynamic
/// values joined (looked up through a reused buffer, so a hit allocates nothing). At most
/// [`DYN_HANDLES_MAX`] combinations per static key are kept; past that a call goes to the
/// registry as it would without this cache.
struct Dyn<T> {
    handles: Handles<std::collections::HashMap<String, T, foldhash::fast::FixedState>>,
    scratch: String,
}

impl<T> Default for Dyn<T> {
    fn default() -> Self {
        Dyn {
            handles: Default::default(),
            scratch: String::new(),
        }
    }
}

const DYN_HANDLES_MAX: usize = 1_024;

impl<T: Clone> Dyn<T> {
    fn get(
        &mut self,
        key: StaticKey,
        dynamic: &[(&'static str, &str)],
        make: impl FnOnce() -> T,
    ) -> T {
        self.scratch.clear();
        for (_, v) in dynamic {
            self.scratch.push_str(v);
            self.scratch.push('\u{1f}');
        }
        let inner = self.handles.entry(key).or_default();
        if let Some(h) = inner.get(self.scratch.as_str()) {
            return h.clone();
        }
        let h = make();
        if inner.len() < DYN_HANDLES_MAX {
            inner.insert(self.scratch.clone(), h.clone());
        }
        h
    }
}

fn all_labels(
    labels: &[(&'static str, &'static str)],
    dynamic: &[(&'static str, &str)],
) -> Vec<metrics::Label> {
    let mut all = owned_labels(labels);
    all.extend(
        dynamic
            .iter()
            .map(|(k, v)| metrics::Label::new(*k, v.to_string())),
    );
    all
}

/// Adds `n` to the counter `name` with static `labels` and `dynamic` ones (at most 4 of
/// each; the same label names at every call for one `name`).
pub fn count_dyn(
    name: &'static str,
    labels: &[(&'static str, &'static str)],
    dynamic: &[(&'static str, &str)],
    n: u64,
) {
    DYN_COUNTERS.with(|c| {
        c.borrow_mut()
            .get(static_key(name, labels), dynamic, || {
                counter!(name, all_labels(labels, dynamic))
            })
            .increment(n)
    });
}

/// Records `v` in the histogram `name` with static `labels` and `dynamic` ones.
pub fn observe_dyn(
    name: &'static str,
    labels: &[(&'static str, &'static str)],
    dynamic: &[(&'static str, &str)],
    v: f64,
) {
    DYN_HISTOGRAMS.with(|h| {
        h.borrow_mut()
            .get(static_key(name, labels), dynamic, || {
                metrics::histogram!(name, all_labels(labels, dynamic))
            })
            .record(v)
    });
}

fn static_key(name: &'static str, labels: &[(&'static str, &'static str)]) -> StaticKey {
    let mut values = [0; 4];
    for (slot, (_, v)) in values.iter_mut().zip(labels) {
        *slot = v.as_ptr() as usize ^ (v.len() << 48);
    }
    (name.as_ptr() as usize, values)
}

fn owned_labels(labels: &[(&'static str, &'static str)]) -> Vec<metrics::Label> {
    labels
        .iter()
        .map(|(k, v)| metrics::Label::new(*k, *v))
        .collect()
}

/// Adds `n` to the counter `name` with static `labels` (at most 4).
pub fn count(name: &'static str, labels: &[(&'static str, &'static str)], n: u64) {
    COUNTERS.with(|c| {
        c.borrow_mut()
            .entry(static_key(name, labels))
            .or_insert_with(|| counter!(name, owned_labels(labels)))
            .increment(n)
    });
}

/// Records `v` in the histogram `name` with static `labels` (at most 4).
pub fn observe(name: &'static str, labels: &[(&'static str, &'static str)], v: f64) {
    HISTOGRAMS.with(|h| {
        h.borrow_mut()
            .entry(static_key(name, labels))
            .or_insert_with(|| metrics::histogram!(name, owned_labels(labels)))
            .record(v)
    });
}

fn status_text(s: PaymentStatus) -> &'static str {
    match s {
        PaymentStatus::Processing => "processing",
        PaymentStatus::Succeeded => "succeeded",
        PaymentStatus::Failed => "failed",
        PaymentStatus::Authorized => "authorized",
        PaymentStatus::Canceled => "canceled",
    }
}

/// A payment entered its current status (call once per change, after it is durable).
pub fn payment(p: &Payment) {
    let card = p.card.0.as_ref();
    let method = if card.is_some() {
        "bank_card"
    } else {
        "balance"
    };
    let channel = card.and_then(|c| c.channel.as_ref()).map(|(_, name)| name);
    let failure = match (&p.failure_code, p.status) {
        (Some(code), PaymentStatus::Failed) => Some(code),
        _ => None,
    };
    let status = status_text(p.status);
    match (failure, channel) {
        (None, None) => count(
            PAYMENTS,
            &[
                ("method", method),
                ("status", status),
                ("failure_code", "none"),
                ("channel", "none"),
            ],
            1,
        ),
        (failure, channel) => count_dyn(
            PAYMENTS,
            &[("method", method), ("status", status)],
            &[
                ("failure_code", failure.map_or("none", String::as_str)),
                ("channel", channel.map_or("none", String::as_str)),
            ],
            1,
        ),
    }
    if p.status == PaymentStatus::Succeeded {
        count(
            PAYMENT_AMOUNT,
            &[("currency", currency_code(p.currency)), ("method", method)],
            u64::try_from(p.amount).unwrap_or(0),
        );
    }
}

/// A refund entered its current status (after it is durable); its amount counts when it
/// succeeded. `currency`: its payment's.
pub fn refund(r: &storage::records::Refund, currency: u16) {
    counter!(REFUNDS, "status" => status_text(r.status)).increment(1);
    if r.status == PaymentStatus::Succeeded {
        counter!(REFUND_AMOUNT, "currency" => currency_code(currency))
            .increment(u64::try_from(r.amount).unwrap_or(0));
    }
}

/// The ISO 4217 code of a numeric currency ("unknown" for one we do not know).
pub fn currency_code(numeric: u16) -> &'static str {
    engine::Currency::from_numeric(numeric)
        .map(|c| c.code())
        .unwrap_or("unknown")
}

pub fn risk(decision: engine::risk::Decision, score: u8) {
    let decision = match decision {
        engine::risk::Decision::Approve => "approve",
        engine::risk::Decision::Review => "review",
        engine::risk::Decision::Reject => "reject",
    };
    count(RISK_DECISIONS, &[("decision", decision)], 1);
    observe(RISK_SCORE, &[], f64::from(score));
}

/// A charge call to `channel` ended with `outcome` after `elapsed`.
pub fn channel_call(channel: &str, outcome: &'static str, elapsed: Duration) {
    count_dyn(
        CHANNEL_CALLS,
        &[],
        &[("channel", channel), ("outcome", outcome)],
        1,
    );
    observe_dyn(
        CHANNEL_SECONDS,
        &[],
        &[("channel", channel)],
        elapsed.as_secs_f64(),
    );
}

pub fn router_choice(channel: &str) {
    count_dyn(ROUTER_CHOICES, &[], &[("channel", channel)], 1);
}

pub fn router_failover(channel: &str, reason: &str) {
    count_dyn(
        ROUTER_FAILOVERS,
        &[],
        &[("channel", channel), ("reason", reason)],
        1,
    );
}

pub fn idempotency(outcome: &'static str) {
    count(IDEMPOTENCY, &[("outcome", outcome)], 1);
}

pub fn rate_limited(limit: &'static str) {
    counter!(RATE_LIMITED, "limit" => limit).increment(1);
}

/// Updates the gauges that are read from the engine rather than counted as things happen.
pub async fn refresh(state: &Platform) {
    gauge!(READY).set(if state.is_ready() { 1.0 } else { 0.0 });
    gauge!(MAILBOX_DEPTH).set(actors::shard::mailbox_depth() as f64);
    if let Some(store) = state.store.get() {
        gauge!(WAL_LAST_SEQ).set(store.last_seq() as f64);
        gauge!(WAL_QUEUE).set(store.queue_len() as f64);
        gauge!(WAL_POISONED).set(if store.poison_reason().is_some() {
            1.0
        } else {
            0.0
        });
        gauge!(WEBHOOK_BACKLOG).set(crate::webhooks::backlog(state) as f64);
    }
    if let Some(ledger) = state.ledger.get() {
        gauge!(LEDGER_INFLIGHT).set(ledger.inflight() as f64);
        gauge!(ACCOUNTS_ACTIVE).set(ledger.active_accounts() as f64);
        for c in crate::channels::health_snapshot(state, ledger).await {
            let name = c.name;
            gauge!(CHANNEL_BREAKER, "channel" => name.clone()).set(f64::from(c.breaker));
            gauge!(CHANNEL_SUCCESS, "channel" => name.clone()).set(c.success_ratio);
            gauge!(CHANNEL_INFLIGHT, "channel" => name.clone()).set(f64::from(c.inflight));
            gauge!(CHANNEL_ENABLED, "channel" => name.clone()).set(if c.enabled {
                1.0
            } else {
                0.0
            });
            let currency = currency_code(c.currency);
            gauge!(CHANNEL_POSITION, "channel" => name.clone(), "currency" => currency)
                .set(c.position as f64);
            gauge!(CHANNEL_LOW_WATER, "channel" => name, "currency" => currency)
                .set(c.low_water as f64);
        }
        if let Ok((reserves, coverage, currency)) = crate::positions::live_monitors(state).await {
            let code = currency.code();
            for (name, funds, low_water) in reserves {
                gauge!(RESERVE_BALANCE, "reserve" => name.clone(), "currency" => code)
                    .set(funds as f64);
                gauge!(RESERVE_LOW_WATER, "reserve" => name, "currency" => code)
                    .set(low_water as f64);
            }
            gauge!(COVERAGE_FUNDS, "currency" => code).set(coverage.funds as f64);
            gauge!(COVERAGE_OWED, "currency" => code).set(coverage.owed as f64);
        }
    }
}

/// The coverage check of the last day-end: what was missing (0: covered).
pub fn day_end_coverage(currency: engine::Currency, shortfall: i64) {
    gauge!(DAY_END_COVERAGE_SHORTFALL, "currency" => currency.code()).set(shortfall as f64);
}

/// The outcome of the last day-end: failed, or done at `finished_at_ns`.
pub fn day_end_outcome(failed: bool, finished_at_ns: u64) {
    gauge!(DAY_END_FAILED).set(if failed { 1.0 } else { 0.0 });
    if !failed {
        gauge!(DAY_END_LAST_SUCCESS).set(finished_at_ns as f64 / 1e9);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_handles_are_made_once_per_value_and_bounded() {
        let mut cache = Dyn::<u32>::default();
        let key = static_key(CHANNEL_CALLS, &[]);
        let mut made = 0;
        let mut get = |cache: &mut Dyn<u32>, channel: &str, outcome: &str| {
            cache.get(key, &[("channel", channel), ("outcome", outcome)], || {
                made += 1;
                made
            })
        };
        assert_eq!(get(&mut cache, "a", "charged"), 1);
        assert_eq!(get(&mut cache, "b", "charged"), 2);
        assert_eq!(get(&mut cache, "a", "charged"), 1);
        // The values are joined with a separator: ("ab", "c") is not ("a", "bc").
        assert_eq!(get(&mut cache, "ab", "c"), 3);
        assert_eq!(get(&mut cache, "a", "bc"), 4);
        for n in 0..2 * DYN_HANDLES_MAX {
            get(&mut cache, &format!("ch{n}"), "charged");
        }
        assert_eq!(cache.handles[&key].len(), DYN_HANDLES_MAX);
        // Past the bound a handle is still made, each time, and not kept.
        let before = get(&mut cache, "new", "charged");
        assert_ne!(get(&mut cache, "new", "charged"), before);
        assert_eq!(get(&mut cache, "a", "charged"), 1);
    }
}

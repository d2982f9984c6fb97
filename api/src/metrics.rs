//! Prometheus metrics: the recorder, their descriptions, and gauges read at scrape time.

use std::sync::atomic::Ordering;

use metrics::{describe_counter, describe_gauge, gauge, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

pub const HTTP_REQUESTS: &str = "rongpay_http_requests_total";
pub const WEBHOOKS: &str = "rongpay_webhook_deliveries_total";

/// Installs the process-wide recorder and describes every metric (HELP lines need it).
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|e| anyhow::anyhow!("installing the metrics recorder: {e}"))?;
    describe_counter!(
        HTTP_REQUESTS,
        Unit::Count,
        "HTTP requests answered, by status code class."
    );
    describe_counter!(
        WEBHOOKS,
        Unit::Count,
        "Webhook delivery tries, by outcome: delivered, retry (scheduled again), failed (last try)."
    );
    describe_gauge!(
        "rongpay_webhook_backlog",
        Unit::Count,
        "Webhook events waiting for delivery (counted up to 100000)."
    );
    describe_gauge!(
        "rongpay_ready",
        "1 once recovery finished and the store takes writes, else 0."
    );
    describe_gauge!(
        "rongpay_store_last_seq",
        "Sequence number of the last durable journal entry."
    );
    describe_gauge!(
        "rongpay_store_group_writes",
        Unit::Count,
        "Synced group writes since start."
    );
    describe_gauge!(
        "rongpay_store_units_written",
        Unit::Count,
        "Commit units made durable since start."
    );
    describe_gauge!(
        "rongpay_store_commit_queue",
        Unit::Count,
        "Commit units waiting for the writer."
    );
    describe_gauge!(
        "rongpay_ledger_inflight",
        Unit::Count,
        "Ledger commands in flight."
    );
    describe_gauge!(
        "rongpay_ledger_active_accounts",
        Unit::Count,
        "Account actors in memory."
    );
    Ok(handle)
}

/// Updates the gauges that are read from the engine rather than counted as things happen.
pub fn refresh(state: &AppState) {
    gauge!("rongpay_ready").set(if state.is_ready() { 1.0 } else { 0.0 });
    if let Some(store) = state.store.get() {
        let stats = store.stats();
        gauge!("rongpay_store_last_seq").set(store.last_seq() as f64);
        gauge!("rongpay_store_group_writes").set(stats.group_writes.load(Ordering::Relaxed) as f64);
        gauge!("rongpay_store_units_written").set(stats.units.load(Ordering::Relaxed) as f64);
        gauge!("rongpay_store_commit_queue").set(store.queue_len() as f64);
    }
    if state.store.get().is_some() {
        gauge!("rongpay_webhook_backlog").set(crate::webhooks::backlog(state) as f64);
    }
    if let Some(ledger) = state.ledger.get() {
        gauge!("rongpay_ledger_inflight").set(ledger.inflight() as f64);
        gauge!("rongpay_ledger_active_accounts").set(ledger.active_accounts() as f64);
    }
}

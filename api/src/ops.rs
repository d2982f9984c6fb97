//! The built-in ops page (`GET /ops`): server-rendered HTML with today's totals, the
//! channels' health and positions, and live throughput and latency kept current by a small
//! script served by payd itself (`/ops/ops.js`, no CDN, no third-party code), which polls
//! `/ops/data.json` every 2 s and computes rates from the counters' deltas.
//!
//! Like `/metrics`, these pages show operational numbers without a token: bind payd's port
//! to an internal network (or put the ops routes behind the operators' proxy).
//!
//! Today's totals (UTC day) count payments and refunds as they reach their final status; at
//! start they are seeded from the payments and refunds created today (read from the store).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::records;
use crate::state::{now_ns, AppState};

/// Latency bucket bounds (µs) of the live histogram; one more bucket above the last.
const LATENCY_BOUNDS_US: [u64; 14] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 10_000_000,
];

/// Counters of every answered request, read by the page's script (cumulative: the script
/// takes deltas).
#[derive(Default)]
pub struct Live {
    requests: AtomicU64,
    latency: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
}

impl Live {
    pub fn request(&self, latency_us: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let i = LATENCY_BOUNDS_US.partition_point(|&b| b < latency_us);
        self.latency[i].fetch_add(1, Ordering::Relaxed);
    }
}

pub use services::stats::{CurrencyTotals, Today};

fn money(minor: i64, currency: u16) -> String {
    match engine::Currency::from_numeric(currency) {
        Some(c) => engine::money::format_minor(minor, c),
        None => minor.to_string(),
    }
}

#[derive(Serialize)]
struct ChannelRow {
    name: String,
    breaker: &'static str,
    success_rate: String,
    mean_latency_ms: String,
    calls: u32,
    inflight: u32,
    enabled: bool,
    position: String,
    low_water: String,
    below_low_water: bool,
    volume_today: String,
}

#[derive(Serialize)]
struct TodayRow {
    currency: &'static str,
    payments_succeeded: u64,
    amount_succeeded: String,
    payments_failed: u64,
    refunds_succeeded: u64,
    amount_refunded: String,
}

#[derive(Serialize)]
struct Data {
    ready: bool,
    at: String,
    requests: u64,
    /// Cumulative counts per latency bucket; `latency_bounds_us[i]` bounds bucket `i`.
    latency_counts: Vec<u64>,
    latency_bounds_us: &'static [u64],
    today: Vec<TodayRow>,
    channels: Vec<ChannelRow>,
    alerts: Vec<crate::alerts::Received>,
    /// The open business date, and the last day-end with its steps (none before the first).
    business_date: Option<String>,
    day_end: Option<services::day_end::DayEndView>,
    /// The open date's positions: reserve accounts, the coverage check, monitors firing.
    positions: Option<services::positions::PositionsView>,
    /// Each channel's last reconciliation run and its open mismatches.
    reconciliation: Vec<services::recon::RunSummary>,
    /// Open payment orders and authorizations awaiting capture (issue #19).
    orders_open: Option<services::orders::Outstanding>,
    authorizations_outstanding: Option<services::orders::Outstanding>,
}

/// Most open orders or authorizations read for the page (the soonest to expire).
const OUTSTANDING_READ_MAX: usize = 10_000;

/// One line of the page's outstanding table.
fn outstanding_row(id: &str, what: &str, o: Option<&services::orders::Outstanding>) -> String {
    let (count, amounts, next) = match o {
        None => ("–".to_string(), "–".to_string(), "–".to_string()),
        Some(o) => (
            format!("{}{}", o.count, if o.capped { "+" } else { "" }),
            if o.amounts.is_empty() {
                "0".to_string()
            } else {
                o.amounts
                    .iter()
                    .map(|(c, a)| format!("{c} {a}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            o.next_expiry.clone().unwrap_or_else(|| "–".to_string()),
        ),
    };
    format!(
        r#"<tr data-outstanding="{id}"><td>{what}</td><td class="n" data-field="count">{count}</td><td data-field="amounts">{}</td><td data-field="next_expiry">{}</td></tr>"#,
        esc(&amounts),
        esc(&next)
    )
}

async fn data(state: &AppState) -> Data {
    let channels = services::channels::snapshots(state).await;
    let channels = channels
        .into_iter()
        .map(|c| {
            let currency = c.currency;
            ChannelRow {
                breaker: ["closed", "half_open", "open"][usize::from(c.breaker.min(2))],
                success_rate: format!("{:.4}", c.success_ratio),
                mean_latency_ms: format!("{:.3}", c.mean_latency_us as f64 / 1000.0),
                calls: c.calls,
                inflight: c.inflight,
                enabled: c.enabled,
                position: money(c.position, currency),
                low_water: money(c.low_water, currency),
                below_low_water: c.low_water > 0 && c.position < c.low_water,
                volume_today: money(c.volume_today, currency),
                name: c.name,
            }
        })
        .collect();
    let (_, totals) = state.today.snapshot();
    Data {
        ready: state.is_ready(),
        at: records::time_text(now_ns()),
        requests: state.live.requests.load(Ordering::Relaxed),
        latency_counts: state
            .live
            .latency
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect(),
        latency_bounds_us: &LATENCY_BOUNDS_US,
        today: totals
            .into_iter()
            .map(|(currency, t)| TodayRow {
                currency: crate::metrics::currency_code(currency),
                payments_succeeded: t.payments_succeeded,
                amount_succeeded: money(t.amount_succeeded, currency),
                payments_failed: t.payments_failed,
                refunds_succeeded: t.refunds_succeeded,
                amount_refunded: money(t.amount_refunded, currency),
            })
            .collect(),
        channels,
        alerts: state.recent_alerts.list().into_iter().take(10).collect(),
        business_date: state
            .ledger()
            .ok()
            .and_then(|l| l.period())
            .map(|p| p.open.to_string()),
        day_end: services::day_end::last_view(state).ok().flatten(),
        positions: services::positions::get(state, None).await.ok(),
        reconciliation: services::recon::summary(state).unwrap_or_default(),
        orders_open: services::orders::outstanding(state, OUTSTANDING_READ_MAX).ok(),
        authorizations_outstanding: services::authorizations::outstanding(
            state,
            OUTSTANDING_READ_MAX,
        )
        .ok(),
    }
}

/// `GET /ops/data.json`: what the page shows, for its script.
pub async fn data_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(data(&state).await)
}

/// `GET /ops/ops.js`: the page's script (ours, served from the binary).
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("cache-control", "no-cache"))
        .body(include_str!("ops.js"))
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /ops`: the page, rendered with the numbers as of now.
pub async fn page(state: web::Data<AppState>) -> HttpResponse {
    let d = data(&state).await;
    let mut today = String::new();
    if d.today.is_empty() {
        today.push_str(r#"<tr class="empty"><td colspan="6">no payments yet today</td></tr>"#);
    }
    for t in &d.today {
        let _ = write!(
            today,
            r#"<tr data-currency="{c}"><td>{c}</td><td class="n" data-field="payments_succeeded">{}</td><td class="n" data-field="amount_succeeded">{}</td><td class="n" data-field="payments_failed">{}</td><td class="n" data-field="refunds_succeeded">{}</td><td class="n" data-field="amount_refunded">{}</td></tr>"#,
            t.payments_succeeded,
            t.amount_succeeded,
            t.payments_failed,
            t.refunds_succeeded,
            t.amount_refunded,
            c = t.currency
        );
    }
    let mut channels = String::new();
    if d.channels.is_empty() {
        channels.push_str(r#"<tr class="empty"><td colspan="9">no channels configured</td></tr>"#);
    }
    for c in &d.channels {
        let _ = write!(
            channels,
            r#"<tr data-channel="{name}" class="{cls}"><td>{name}</td><td data-field="breaker">{}</td><td class="n" data-field="success_rate">{}</td><td class="n" data-field="mean_latency_ms">{}</td><td class="n" data-field="calls">{}</td><td class="n" data-field="inflight">{}</td><td class="n" data-field="position">{}</td><td class="n" data-field="low_water">{}</td><td class="n" data-field="volume_today">{}</td></tr>"#,
            c.breaker,
            c.success_rate,
            c.mean_latency_ms,
            c.calls,
            c.inflight,
            c.position,
            c.low_water,
            c.volume_today,
            name = esc(&c.name),
            cls = if c.breaker != "closed" || c.below_low_water || !c.enabled {
                "bad"
            } else {
                "ok"
            },
        );
    }
    let mut recon = String::new();
    for r in &d.reconciliation {
        let _ = write!(
            recon,
            r#"<tr data-channel="{name}" class="{cls}"><td>{name}</td><td data-field="date">{}</td><td data-field="status">{}</td><td class="n" data-field="rows">{}</td><td class="n" data-field="matched">{}</td><td class="n" data-field="mismatches">{}</td><td class="n" data-field="open">{}</td><td class="n" data-field="long">{}</td><td class="n" data-field="short">{}</td></tr>"#,
            esc(&r.date),
            r.status,
            r.rows,
            r.matched,
            r.mismatches,
            r.open,
            esc(&r.long),
            esc(&r.short),
            name = esc(&r.channel),
            cls = if r.open > 0 || r.status != "done" {
                "bad"
            } else {
                "ok"
            },
        );
    }
    if recon.is_empty() {
        recon.push_str(
            r#"<tr class="empty"><td colspan="9">no statements reconciled yet</td></tr>"#,
        );
    }
    let mut reserves = String::new();
    let (coverage, coverage_class, monitors) = match &d.positions {
        None => {
            reserves.push_str(r#"<tr class="empty"><td colspan="4">not ready</td></tr>"#);
            ("–".to_string(), "ok", String::new())
        }
        Some(p) => {
            for r in &p.reserves {
                let _ = write!(
                    reserves,
                    r#"<tr data-reserve="{name}" class="{cls}"><td>{name}</td><td data-field="bank">{}</td><td class="n" data-field="balance">{}</td><td class="n" data-field="low_water">{}</td></tr>"#,
                    esc(&r.bank),
                    r.balance,
                    r.low_water,
                    name = esc(&r.name),
                    cls = if r.below_low_water { "bad" } else { "ok" },
                );
            }
            let c = &p.coverage;
            let mut monitors = String::new();
            for a in &p.alerts {
                let _ = write!(
                    monitors,
                    "<li><b>{}</b> {}: {}</li>",
                    esc(&a.monitor),
                    esc(&a.subject),
                    esc(&a.message)
                );
            }
            (
                format!(
                    "funds {} / owed {}: {} {}",
                    c.funds,
                    c.owed,
                    if c.covered { "surplus" } else { "SHORTFALL" },
                    if c.covered { &c.surplus } else { &c.shortfall }
                ),
                if c.covered { "ok" } else { "bad" },
                monitors,
            )
        }
    };
    let monitors = if monitors.is_empty() {
        "<li>none firing</li>".to_string()
    } else {
        monitors
    };
    let mut alerts = String::new();
    for a in &d.alerts {
        let _ = write!(
            alerts,
            "<li>{} <b>{}</b> {} ({}): {}</li>",
            esc(&a.received_at),
            esc(&a.status),
            esc(&a.name),
            esc(&a.severity),
            esc(&a.summary)
        );
    }
    if alerts.is_empty() {
        alerts.push_str("<li>none received</li>");
    }
    let mut day_end = String::new();
    let day_end_head = match &d.day_end {
        None => {
            day_end.push_str(r#"<tr class="empty"><td colspan="3">no day-end yet</td></tr>"#);
            "none yet".to_string()
        }
        Some(e) => {
            for s in &e.steps {
                let _ = write!(
                    day_end,
                    r#"<tr data-step="{name}" class="{cls}"><td>{name}</td><td data-field="status">{}</td><td data-field="detail">{}</td></tr>"#,
                    s.status,
                    esc(&s.detail),
                    name = esc(&s.name),
                    cls = if s.status == "failed" { "bad" } else { "ok" },
                );
            }
            format!(
                "{} {}{}",
                e.date,
                e.status,
                e.snapshot_sha256
                    .as_deref()
                    .map(|h| format!(", sha256 {}…", &h[..16.min(h.len())]))
                    .unwrap_or_default()
            )
        }
    };
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rongpay ops</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }}
h1 {{ font-size: 1.3em; }} h2 {{ font-size: 1.05em; margin-top: 1.5em; }}
table {{ border-collapse: collapse; }} td, th {{ padding: .25em .7em; border-bottom: 1px solid #ddd; text-align: left; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.bad td, span.bad {{ background: #fde8e8; }} .tiles {{ display: flex; gap: 1em; flex-wrap: wrap; }}
.tile {{ border: 1px solid #ddd; border-radius: 6px; padding: .6em 1em; min-width: 9em; }}
.tile b {{ display: block; font-size: 1.6em; font-variant-numeric: tabular-nums; }}
#status.ready {{ color: #137333; }} #status.not-ready {{ color: #b3261e; }}
</style></head>
<body data-live="0">
<h1>rongpay ops <small id="status" class="{ready_class}">{ready_text}</small></h1>
<p>As of <span id="at">{at}</span> (UTC); live numbers over the last <span id="window">–</span> s.</p>
<div class="tiles">
<div class="tile">requests/s<b id="throughput">–</b></div>
<div class="tile">p50 latency (ms)<b id="p50">–</b></div>
<div class="tile">p99 latency (ms)<b id="p99">–</b></div>
<div class="tile">requests since start<b id="requests">{requests}</b></div>
</div>
<h2>Today (UTC)</h2>
<table id="today"><thead><tr><th>currency</th><th>succeeded</th><th>amount</th><th>failed</th><th>refunds</th><th>refunded</th></tr></thead>
<tbody>{today}</tbody></table>
<h2>Channels</h2>
<table id="channels"><thead><tr><th>channel</th><th>breaker</th><th>success rate</th><th>mean latency (ms)</th><th>calls (window)</th><th>in flight</th><th>position</th><th>low water</th><th>volume today</th></tr></thead>
<tbody>{channels}</tbody></table>
<h2>Positions</h2>
<p>Coverage: <span id="coverage" class="{coverage_class}">{coverage}</span></p>
<table id="reserves"><thead><tr><th>reserve</th><th>bank</th><th>balance</th><th>low water</th></tr></thead>
<tbody>{reserves}</tbody></table>
<ul id="monitors">{monitors}</ul>
<h2>Reconciliation</h2>
<table id="reconciliation"><thead><tr><th>channel</th><th>statement of</th><th>run</th><th>rows</th><th>matched</th><th>mismatches</th><th>open</th><th>suspense long</th><th>suspense short</th></tr></thead>
<tbody>{recon}</tbody></table>
<h2>Orders and authorizations</h2>
<table id="outstanding"><thead><tr><th></th><th>count</th><th>amount</th><th>next expiry</th></tr></thead>
<tbody>{outstanding}</tbody></table>
<h2>Day-end</h2>
<p>Business date <b id="business_date">{business_date}</b>; last day-end: <span id="day_end" class="{day_end_class}">{day_end_head}</span>.</p>
<table id="day_end_steps"><thead><tr><th>step</th><th>status</th><th>detail</th></tr></thead>
<tbody>{day_end}</tbody></table>
<h2>Recent alerts</h2>
<ul id="alerts">{alerts}</ul>
<script src="/ops/ops.js"></script>
</body></html>
"#,
        outstanding = outstanding_row("orders", "open orders", d.orders_open.as_ref())
            + &outstanding_row(
                "authorizations",
                "authorizations awaiting capture",
                d.authorizations_outstanding.as_ref()
            ),
        ready_class = if d.ready { "ready" } else { "not-ready" },
        ready_text = if d.ready { "ready" } else { "not ready" },
        at = d.at,
        requests = d.requests,
        business_date = d.business_date.as_deref().unwrap_or("–"),
        day_end_class = match d.day_end.as_ref().map(|e| e.status) {
            Some("failed") => "bad",
            _ => "ok",
        },
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .insert_header((
            "content-security-policy",
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'",
        ))
        .body(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lands_in_its_bucket() {
        let live = Live::default();
        for us in [100, 250, 251, 20_000_000] {
            live.request(us);
        }
        let counts: Vec<u64> = live
            .latency
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        assert_eq!((counts[0], counts[1], counts[14]), (2, 1, 1));
        assert_eq!(live.requests.load(Ordering::Relaxed), 4);
    }
}

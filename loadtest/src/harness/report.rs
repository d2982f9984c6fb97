//! Run reports: JSON (for tools and for `loadtest table`), Markdown, and SVG plots of
//! throughput and latency over time and of the latency distribution.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use hdrhistogram::Histogram;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::Stats;

/// End-of-run checks: did the target keep everything it acknowledged?
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Checks {
    /// Payments answered 201 (succeeded or declined) during the run.
    pub acknowledged: u64,
    /// Of those (and of the unknown ones found), read back exactly as answered.
    pub verified: u64,
    /// Acknowledged but not found: a lost payment.
    pub missing: u64,
    /// Found but different from the answer (amount, status, refunds).
    pub mismatched: u64,
    /// Requests whose answer never came (transport error, 5xx).
    pub unknown_outcomes: u64,
    /// Of those, found afterwards (done, just not acknowledged).
    pub unknown_found: u64,
    pub accounts_checked: u64,
    pub balance_mismatches: u64,
    /// Merchants plus fees gained exactly what payers lost (net of refunds).
    pub conserved: bool,
    /// Acknowledged payments beyond the harness's memory bound, not checked.
    pub dropped_from_checks: u64,
    /// Answered `processing`; their outcome as read back is what the checks count.
    #[serde(default)]
    pub pending: u64,
    pub passed: bool,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        Latency {
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            mean_us: h.mean(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Point {
    pub t: u64,
    pub ok: u64,
    pub errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub label: String,
    pub target: String,
    pub scenario: String,
    pub mix: String,
    pub pacing: String,
    pub connections: usize,
    pub measured_secs: f64,
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    /// 2xx answers per second over the measured window.
    pub throughput: f64,
    pub latency: Latency,
    pub outcomes: BTreeMap<String, u64>,
    pub timeline: Vec<Point>,
    /// (percentile, µs) pairs for the distribution plot.
    pub distribution: Vec<(f64, u64)>,
    pub checks: Option<Checks>,
    pub unix_time: u64,
    pub machine: String,
}

pub struct Describe {
    pub label: String,
    pub target: String,
    pub scenario: String,
    pub mix: String,
    pub pacing: String,
    pub connections: usize,
}

pub fn build(d: Describe, stats: &Stats, checks: Option<Checks>) -> Report {
    let secs = stats.measured.as_secs_f64().max(1e-9);
    let timeline = stats
        .timeline
        .iter()
        .enumerate()
        .map(|(t, s)| Point {
            t: t as u64,
            ok: s.ok,
            errors: s.errors,
            p50_us: s.latency.value_at_quantile(0.5),
            p99_us: s.latency.value_at_quantile(0.99),
        })
        .collect();
    let mut distribution = Vec::new();
    if !stats.latency.is_empty() {
        // 0 %, then 1, 2, 3… nines, in steps of a tenth of a nine.
        for step in 0..=50 {
            let nines = step as f64 / 10.0;
            let q = 1.0 - 10f64.powf(-nines);
            distribution.push((q * 100.0, stats.latency.value_at_quantile(q)));
        }
    }
    Report {
        label: d.label,
        target: d.target,
        scenario: d.scenario,
        mix: d.mix,
        pacing: d.pacing,
        connections: d.connections,
        measured_secs: secs,
        sent: stats.sent,
        ok: stats.ok,
        errors: stats.errors,
        throughput: stats.ok as f64 / secs,
        latency: Latency::of(&stats.latency),
        outcomes: stats.outcomes.clone(),
        timeline,
        distribution,
        checks,
        unix_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        machine: machine(),
    }
}

/// Cores, CPU model and kernel of this machine.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    // All the machine's cores, not this process's affinity (the harness runs pinned).
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores, {model}, Linux {}", kernel.trim())
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

pub const TABLE_HEAD: &str = "| run | target | pacing | conns | ok/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | checks |\n|---|---|---|---|---|---|---|---|---|---|---|---|";

impl Report {
    pub fn row(&self) -> String {
        let checks = match &self.checks {
            None => "n/a".to_string(),
            Some(c) if c.passed => format!("passed ({} verified)", c.verified),
            Some(c) => format!(
                "**FAILED**: {} missing, {} mismatched, {} balances wrong, conserved {}",
                c.missing, c.mismatched, c.balance_mismatches, c.conserved
            ),
        };
        format!(
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
            self.label,
            self.target,
            self.pacing,
            self.connections,
            self.throughput,
            ms(self.latency.p50_us),
            ms(self.latency.p90_us),
            ms(self.latency.p99_us),
            ms(self.latency.p999_us),
            ms(self.latency.max_us),
            self.errors,
            checks
        )
    }

    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# {}\n\n{} {} ({}), {}, {} connections, {:.1} s measured on {}\n\n{TABLE_HEAD}\n{}\n\n| outcome | count |\n|---|---|\n",
            self.label,
            self.target,
            self.scenario,
            if self.mix.is_empty() { "payments only" } else { &self.mix },
            self.pacing,
            self.connections,
            self.measured_secs,
            self.machine,
            self.row()
        );
        for (k, v) in &self.outcomes {
            out.push_str(&format!("| {k} | {v} |\n"));
        }
        if let Some(c) = &self.checks {
            out.push_str(&format!(
                "\nChecks: {} acknowledged, {} verified, {} missing, {} mismatched, {} unknown outcomes ({} found done), {} accounts checked, {} balance mismatches, money conserved: {}.\n",
                c.acknowledged, c.verified, c.missing, c.mismatched, c.unknown_outcomes, c.unknown_found, c.accounts_checked, c.balance_mismatches, c.conserved
            ));
            for n in &c.notes {
                out.push_str(&format!("- {n}\n"));
            }
        }
        out
    }

    /// `<stem>.json`, `<stem>.md`, `<stem>-timeline.svg`, `<stem>-latency.svg` in `dir`.
    pub fn write(&self, dir: &Path, stem: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join(format!("{stem}.json")),
            serde_json::to_vec_pretty(self)?,
        )?;
        std::fs::write(dir.join(format!("{stem}.md")), self.markdown())?;
        self.plot_timeline(&dir.join(format!("{stem}-timeline.svg")))
            .context("timeline plot")?;
        self.plot_distribution(&dir.join(format!("{stem}-latency.svg")))
            .context("latency plot")?;
        Ok(())
    }

    fn plot_timeline(&self, path: &Path) -> anyhow::Result<()> {
        let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (top, bottom) = root.split_vertically(280);
        let t_max = (self.timeline.len() as f64).max(1.0);
        let ok_max = self.timeline.iter().map(|p| p.ok).max().unwrap_or(1).max(1) as f64;
        let mut chart = ChartBuilder::on(&top)
            .caption(
                format!("{}: answers per second", self.label),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..t_max, 0f64..ok_max * 1.1)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("2xx / s")
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(
                self.timeline.iter().map(|p| (p.t as f64, p.ok as f64)),
                &BLUE,
            ))
            .map_err(plot_err)?;
        let lat_max = self
            .timeline
            .iter()
            .map(|p| p.p99_us)
            .max()
            .unwrap_or(1)
            .max(1) as f64
            / 1000.0;
        let mut chart = ChartBuilder::on(&bottom)
            .caption("latency per second (p50, p99)", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..t_max, 0f64..lat_max * 1.1)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("ms")
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(
                self.timeline
                    .iter()
                    .map(|p| (p.t as f64, p.p50_us as f64 / 1000.0)),
                &GREEN,
            ))
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(
                self.timeline
                    .iter()
                    .map(|p| (p.t as f64, p.p99_us as f64 / 1000.0)),
                &RED,
            ))
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
        Ok(())
    }

    fn plot_distribution(&self, path: &Path) -> anyhow::Result<()> {
        let root = SVGBackend::new(path, (900, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let nines = |pct: f64| -(1.0 - pct / 100.0).max(1e-6).log10();
        let y_max = self
            .distribution
            .iter()
            .map(|d| d.1)
            .max()
            .unwrap_or(1)
            .max(1) as f64
            / 1000.0;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "{}: latency by percentile (x: nines, 1 = p90, 2 = p99, 3 = p99.9)",
                    self.label
                ),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..5f64, 0f64..y_max * 1.1)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("nines")
            .y_desc("ms")
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(
                self.distribution
                    .iter()
                    .map(|&(pct, us)| (nines(pct), us as f64 / 1000.0)),
                &BLUE,
            ))
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
        Ok(())
    }
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("{e:?}")
}

/// The comparison table of several runs, with each run's throughput as a multiple of each
/// baseline's (by label).
pub fn table(reports: &[Report], baselines: &[String]) -> String {
    let mut out = format!("{TABLE_HEAD}\n");
    for r in reports {
        out.push_str(&r.row());
        out.push('\n');
    }
    for b in baselines {
        let Some(base) = reports.iter().find(|r| &r.label == b) else {
            out.push_str(&format!("\n(no run labelled {b:?})\n"));
            continue;
        };
        out.push_str(&format!(
            "\n| vs {b} ({:.0}/s, p99 {} ms) | throughput ratio | p99 ratio |\n|---|---|---|\n",
            base.throughput,
            ms(base.latency.p99_us)
        ));
        for r in reports.iter().filter(|r| &r.label != b) {
            out.push_str(&format!(
                "| {} | {:.2}× | {:.2}× |\n",
                r.label,
                r.throughput / base.throughput.max(1e-9),
                r.latency.p99_us as f64 / base.latency.p99_us.max(1) as f64
            ));
        }
    }
    out
}

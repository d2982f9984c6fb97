//! `loadtest`: the load-test harness. `loadtest run` drives payd (or the PostgreSQL
//! baseline) and writes JSON, Markdown and SVG reports; `loadtest table` puts several runs
//! side by side with ratios to the baselines. See docs/BENCHMARKS.md.

use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use loadtest::harness::payd::{Mix, Payd, PaydConfig, Scenario};
use loadtest::harness::pg::{Pg, PgConfig};
use loadtest::harness::report::{self, Describe, Report};
use loadtest::harness::{self, Pacing, RunConfig, Schedule};

#[derive(Parser)]
#[command(
    version,
    about = "Load tests for rongpay's payd, and the PostgreSQL baseline"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Set up, run the load, check that nothing acknowledged was lost, write the reports.
    Run(Box<RunArgs>),
    /// One Markdown table of several runs' JSON reports, with ratios to the baselines.
    Table {
        /// Labels of runs to compare the others against (repeatable).
        #[arg(long)]
        baseline: Vec<String>,
        files: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum TargetKind {
    Payd,
    Postgres,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScenarioArg {
    Healthz,
    /// `POST /bench/floor` (payd with `bench_floor` on): a payment's body made durable and
    /// nothing else, the floor a payment is measured against.
    Floor,
    Uniform,
    Hot,
    Card,
    Batch,
}

#[derive(clap::Args)]
struct RunArgs {
    #[arg(long, value_enum, default_value = "payd")]
    target: TargetKind,
    /// payd's address: `host:port` or `http://host:port` (loopback or any reachable host).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// The operator token, used for setup and checks.
    #[arg(
        long,
        env = "RONGPAY_ADMIN_TOKEN",
        hide_env_values = true,
        default_value = ""
    )]
    admin_token: String,
    /// PostgreSQL connection string (target postgres).
    #[arg(
        long,
        default_value = "host=127.0.0.1 port=55432 user=postgres dbname=postgres"
    )]
    pg: String,
    #[arg(long, value_enum, default_value = "uniform")]
    scenario: ScenarioArg,
    /// channel-sim's control address (host:port), for `--scenario card`.
    #[arg(long)]
    sim: Option<String>,
    /// Other operations mixed into the payments, in percent: `refund=5,retry=5,decline=5`.
    #[arg(long, default_value = "")]
    mix: String,
    /// Transfers per request of `--scenario batch` (1..=8,190).
    #[arg(long, default_value_t = 8_190, value_parser = clap::value_parser!(u32).range(1..=8_190))]
    batch_size: u32,
    /// Records each request of `--scenario floor` asks payd to write (1..=8): the first keyed
    /// by a time-ordered id, the others by the request's Idempotency-Key, as a payment's own
    /// record and its index and idempotency records are.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=8))]
    floor_records: u8,
    /// Funded payer accounts.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    accounts: u32,
    /// Merchants (uniform scenario; the hot one has one).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    merchants: u32,
    /// Concurrent keep-alive connections.
    #[arg(long, short, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// Open loop on a schedule (`constant:RATE`, `ramp:FROM-TO`, `steps:RATExSECS,…`);
    /// without it, closed loop.
    #[arg(long)]
    rate: Option<String>,
    /// Length of the run, warmup included (closed loop; open loop: the schedule's).
    #[arg(long, short, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Answers to requests sent in this first stretch are not counted.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Stop after this many requests whatever the time.
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    max_requests: u64,
    /// Do not send an Idempotency-Key with each payment.
    #[arg(long)]
    no_idempotency_keys: bool,
    /// Skip the end-of-run checks.
    #[arg(long)]
    no_check: bool,
    /// Name of the run in reports.
    #[arg(long)]
    label: Option<String>,
    /// Directory for `<label>.json`, `.md`, `-timeline.svg`, `-latency.svg`.
    #[arg(long, default_value = "loadtest-out")]
    out: PathBuf,
    /// Write the merchant's auth header and the payer ids (for wrk's lua script) here.
    #[arg(long)]
    wrk_setup: Option<PathBuf>,
    /// Set up (and write --wrk-setup) but send no load.
    #[arg(long)]
    setup_only: bool,
    /// No progress line.
    #[arg(long, short)]
    quiet: bool,
    /// Close the business date (`POST /v1/gl/day_end`) this long into the run, follow it
    /// (`GET /v1/gl/day_end/{date}`) until every step is done, and report payments'
    /// latency before, during and after it (payd only).
    #[arg(long, value_parser = humantime::parse_duration)]
    day_end_at: Option<Duration>,
}

/// What a day-end driven during a run took.
struct DayEndRun {
    date: String,
    switched: Duration,
    finished: Duration,
}

/// Waits `at`, closes the open date and follows its day-end to the end; moves `phase` from
/// 0 (before) to 1 (during) to 2 (after).
async fn drive_day_end(
    addr: String,
    token: String,
    at: Duration,
    phase: Rc<std::cell::Cell<u8>>,
) -> anyhow::Result<DayEndRun> {
    use loadtest::harness::payd::Http;
    tokio::time::sleep(at).await;
    let auth = hyper::header::HeaderValue::from_str(&format!("Bearer {token}"))?;
    let mut http = Http::connect(&addr).await?;
    phase.set(1);
    let started = std::time::Instant::now();
    let a = http
        .send(
            hyper::Method::POST,
            "/v1/gl/day_end",
            Some(&auth),
            None,
            Some(bytes::Bytes::from_static(b"{}")),
        )
        .await?;
    let switched = started.elapsed();
    if a.status != 202 {
        bail!(
            "POST /v1/gl/day_end answered {}: {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&a.body)?;
    let date = v["date"]
        .as_str()
        .context("the day-end answer has no date")?
        .to_string();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let a = http
            .send(
                hyper::Method::GET,
                &format!("/v1/gl/day_end/{date}"),
                Some(&auth),
                None,
                None,
            )
            .await?;
        let v: serde_json::Value = serde_json::from_slice(&a.body)?;
        match v["status"].as_str() {
            Some("done") => break,
            Some("failed") => bail!("the day-end of {date} failed: {v}"),
            _ => {}
        }
    }
    phase.set(2);
    Ok(DayEndRun {
        date,
        switched,
        finished: started.elapsed(),
    })
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Table { baseline, files } => {
            let reports = files
                .iter()
                .map(|f| {
                    let bytes =
                        std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
                    serde_json::from_slice::<Report>(&bytes)
                        .with_context(|| format!("parsing {}", f.display()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            print!("{}", report::table(&reports, &baseline));
            Ok(())
        }
        Cmd::Run(args) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let passed = tokio::task::LocalSet::new().block_on(&rt, run(*args))?;
            if !passed {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn run(mut args: RunArgs) -> anyhow::Result<bool> {
    if let Some(rest) = args.addr.strip_prefix("http://") {
        args.addr = rest.trim_end_matches('/').to_string();
    } else if args.addr.starts_with("https://") {
        bail!("https targets are not supported yet (payd's TLS is issue #6)");
    }
    let scenario = match args.scenario {
        ScenarioArg::Healthz => Scenario::Healthz,
        ScenarioArg::Floor => Scenario::Floor,
        ScenarioArg::Uniform => Scenario::Uniform,
        ScenarioArg::Hot => Scenario::Hot,
        ScenarioArg::Card => Scenario::Card,
        ScenarioArg::Batch => Scenario::Batch,
    };
    let mix = Mix::parse(&args.mix).map_err(anyhow::Error::msg)?;
    let pacing = match &args.rate {
        None => Pacing::Closed,
        Some(text) => {
            Pacing::Open(Schedule::parse(text, args.duration).map_err(anyhow::Error::msg)?)
        }
    };
    if args.warmup >= args.duration && args.rate.is_none() {
        bail!("--warmup must be shorter than --duration");
    }
    let target_name = match args.target {
        TargetKind::Payd => "payd",
        TargetKind::Postgres => "postgres",
    };
    let scenario_name = format!("{:?}", scenario).to_lowercase();
    let label = args
        .label
        .clone()
        .unwrap_or_else(|| format!("{target_name}-{scenario_name}"));
    let config = RunConfig {
        connections: args.connections as usize,
        pacing: pacing.clone(),
        duration: args.duration,
        warmup: args.warmup,
        max_requests: args.max_requests,
        progress: !args.quiet,
        phase: args.day_end_at.map(|_| Rc::new(std::cell::Cell::new(0))),
    };
    let describe = Describe {
        label: label.clone(),
        target: target_name.into(),
        scenario: scenario_name,
        mix: args.mix.clone(),
        pacing: match &args.rate {
            None => "closed".into(),
            Some(r) => format!("open {r}"),
        },
        connections: args.connections as usize,
    };
    eprintln!("loadtest: setting up {label} ({} accounts)", args.accounts);
    let (stats, checks) = match args.target {
        TargetKind::Payd => {
            if args.admin_token.is_empty() && scenario != Scenario::Healthz {
                bail!("payd needs --admin-token or RONGPAY_ADMIN_TOKEN for setup");
            }
            let target = Rc::new(
                Payd::setup(PaydConfig {
                    addr: args.addr.clone(),
                    admin_token: args.admin_token.clone(),
                    scenario,
                    mix,
                    accounts: args.accounts as usize,
                    merchants: args.merchants as usize,
                    idempotency_keys: !args.no_idempotency_keys,
                    setup_connections: 16,
                    sim: args.sim.clone(),
                    batch_size: args.batch_size as usize,
                    floor_records: args.floor_records,
                })
                .await?,
            );
            if let Some(path) = &args.wrk_setup {
                std::fs::write(path, target.wrk_setup())?;
            }
            if args.setup_only {
                return Ok(true);
            }
            eprintln!("loadtest: running {label}");
            let day_end = match (args.day_end_at, &config.phase) {
                (Some(at), Some(phase)) => Some(tokio::task::spawn_local(drive_day_end(
                    args.addr.clone(),
                    args.admin_token.clone(),
                    at,
                    phase.clone(),
                ))),
                _ => None,
            };
            let stats = harness::run(target.clone(), &config).await;
            if let Some(handle) = day_end {
                let run = handle.await??;
                let phases = stats.phases.as_ref().expect("a phased run");
                let ms = |h: &hdrhistogram::Histogram<u64>, q: f64| {
                    h.value_at_quantile(q) as f64 / 1000.0
                };
                for (name, h) in ["before", "during", "after"].iter().zip(phases) {
                    println!(
                        "day-end: payments sent {name:<6} the day-end: {:>8} answered, p50 {:>7.2} ms, p99 {:>7.2} ms, max {:>8.2} ms",
                        h.len(),
                        ms(h, 0.5),
                        ms(h, 0.99),
                        h.max() as f64 / 1000.0
                    );
                }
                println!(
                    "day-end of {}: switch answered in {:.1} ms, every step done in {:.2} s; p99 during / before = {:.2}",
                    run.date,
                    run.switched.as_secs_f64() * 1000.0,
                    run.finished.as_secs_f64(),
                    ms(&phases[1], 0.99) / ms(&phases[0], 0.99).max(1e-9)
                );
            }
            let checks = if args.no_check || matches!(scenario, Scenario::Healthz | Scenario::Floor)
            {
                None
            } else {
                eprintln!("loadtest: checking every acknowledged payment");
                Some(target.check(args.connections.min(32) as usize).await?)
            };
            (stats, checks)
        }
        TargetKind::Postgres => {
            if matches!(scenario, Scenario::Healthz | Scenario::Floor)
                || mix.refund > 0
                || mix.retry > 0
            {
                bail!("the PostgreSQL baseline runs payments (uniform or hot, with declines) only");
            }
            let target = Rc::new(
                Pg::setup(PgConfig {
                    conn: args.pg.clone(),
                    scenario,
                    mix,
                    accounts: args.accounts as usize,
                    merchants: args.merchants as usize,
                })
                .await?,
            );
            if args.setup_only {
                return Ok(true);
            }
            eprintln!("loadtest: running {label}");
            let stats = harness::run(target.clone(), &config).await;
            let checks = if args.no_check {
                None
            } else {
                Some(target.check().await?)
            };
            (stats, checks)
        }
    };
    let report = report::build(describe, &stats, checks);
    let stem: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    report.write(&args.out, &stem)?;
    println!("{}\n{}", report::TABLE_HEAD, report.row());
    if scenario == Scenario::Batch {
        let full = stats.outcomes.get("batch").copied().unwrap_or(0);
        let per_request = u64::from(args.batch_size);
        println!(
            "batch: {} requests of {} transfers answered all created in the measured {:.1} s = {:.0} transfers/s; {} requests with a refused transfer",
            full,
            per_request,
            stats.measured.as_secs_f64(),
            (full * per_request) as f64 / stats.measured.as_secs_f64().max(1e-9),
            stats.ok.saturating_sub(full)
        );
    }
    let passed = report.checks.as_ref().is_none_or(|c| c.passed);
    if let Some(c) = &report.checks {
        println!(
            "checks: {} acknowledged, {} verified, {} missing, {} mismatched, {} unknown ({} found done), {} accounts, {} balance mismatches, conserved {}",
            c.acknowledged, c.verified, c.missing, c.mismatched, c.unknown_outcomes, c.unknown_found, c.accounts_checked, c.balance_mismatches, c.conserved
        );
        if !c.passed {
            eprintln!("loadtest: CHECKS FAILED — the target lost or changed acknowledged work:");
            for n in &c.notes {
                eprintln!("  {n}");
            }
        }
    }
    println!(
        "reports: {}/{stem}.{{json,md}}, {stem}-timeline.svg, {stem}-latency.svg",
        args.out.display()
    );
    Ok(passed)
}

//! `payd bench …`: benchmark commands that print a Markdown report.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use loadtest::engine::{EngineBenchConfig, Pattern};

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Durable transfers/s and commit latency through the real actors and RocksDB, with the
    /// raw synced-WriteBatch ceiling at the same batch shape measured in the same run.
    Engine {
        /// Accounts created and made resident before measuring.
        #[arg(long, default_value_t = 1_000_000)]
        accounts: u64,
        /// Accounts kept in memory at most (the default: all of them). Fewer makes the
        /// shards a bounded cache: the rest are loaded from the store when used.
        #[arg(long)]
        resident: Option<u64>,
        /// Concurrent submitters, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1,64,1024")]
        submitters: Vec<usize>,
        /// Measured seconds per scenario (after an equal-length... see --warmup).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Unmeasured warm-up seconds before each scenario.
        #[arg(long, default_value_t = 2)]
        warmup: u64,
        /// Empty directory for the benchmark's stores (a fresh temp dir when omitted).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Transfer ids the writer holds in memory for ingestion into the dedup index (the
        /// store's default when omitted); 0 writes every dedup key in its group's synced
        /// write, as stores before layout 5 did (docs/ARCHITECTURE.md).
        #[arg(long)]
        dedup_held_ids: Option<usize>,
        /// Accounts whose balance deltas are sealed into one ingested table file (the
        /// store's default when omitted); 0 writes every checkpoint to the accounts
        /// memtable, as stores before layout 6 did (docs/ARCHITECTURE.md).
        #[arg(long)]
        balance_seal_accounts: Option<usize>,
    },
    /// A day-end's cost (issue #15): `accounts` accounts and `entries` journal entries (two-leg
    /// transfers between random accounts) on one business date, then the real day-end of
    /// payd's services (switch, snapshot of every account, GL figures, checks, hash), timed
    /// step by step.
    DayEnd {
        #[arg(long, default_value_t = 1_000_000)]
        accounts: u64,
        #[arg(long, default_value_t = 10_000_000)]
        entries: u64,
        /// Business days, each with `entries` entries and closed by a day-end (from the
        /// second on, every account opens at the previous day's snapshot).
        #[arg(long, default_value_t = 2)]
        days: u32,
        /// Empty directory for the data dir (a fresh temp dir when omitted).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Reconciliation's cost (issue #17): `rows` card payments of one channel on a closed
    /// date and the channel's Alipay statement of them (`plants` rows with the amount
    /// changed), reconciled by an upload through payd's services, timed end to end.
    Recon {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long, default_value_t = 100)]
        plants: u64,
        /// Empty directory for the data dir (a fresh temp dir when omitted).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

pub fn run(cmd: BenchCmd) -> anyhow::Result<()> {
    match cmd {
        BenchCmd::DayEnd {
            accounts,
            entries,
            days,
            dir,
        } => day_end(accounts, entries, days, dir),
        BenchCmd::Recon { rows, plants, dir } => recon(rows, plants, dir),
        BenchCmd::Engine {
            accounts,
            resident,
            submitters,
            seconds,
            warmup,
            dir,
            dedup_held_ids,
            balance_seal_accounts,
        } => {
            let tmp;
            let dir = match dir {
                Some(d) => d,
                None => {
                    tmp = tempfile::Builder::new()
                        .prefix("payd-bench-")
                        .tempdir_in(".")?;
                    tmp.path().to_path_buf()
                }
            };
            let config = EngineBenchConfig {
                dir,
                accounts,
                resident: resident.unwrap_or(accounts),
                submitters,
                duration: Duration::from_secs(seconds),
                warmup: Duration::from_secs(warmup),
                dedup_held_ids_max: dedup_held_ids
                    .unwrap_or(services::platform::DEDUP_HELD_IDS_MAX),
                balance_seal_accounts: balance_seal_accounts
                    .unwrap_or(services::platform::BALANCE_SEAL_ACCOUNTS),
            };
            let report = loadtest::engine::run(&config).map_err(anyhow::Error::msg)?;
            println!("## payd bench engine\n");
            let mib = |b: Option<u64>| {
                b.map(|b| (b >> 20).to_string())
                    .unwrap_or_else(|| "?".into())
            };
            let per_account = match (report.rss_before_warm_bytes, report.rss_after_warm_bytes) {
                (Some(before), Some(after)) if report.active_accounts > 0 => {
                    (after.saturating_sub(before) / report.active_accounts as u64).to_string()
                }
                _ => "?".into(),
            };
            println!(
                "{} accounts: created in {:.1} s, made resident in {:.1} s; {} active; process RSS {} MiB before activation, {} MiB with all resident ({} bytes per resident account)\n",
                report.accounts,
                report.populate.as_secs_f64(),
                report.warm.as_secs_f64(),
                report.active_accounts,
                mib(report.rss_before_warm_bytes),
                mib(report.rss_after_warm_bytes),
                per_account
            );
            println!(
                "After the scenarios: {} accounts in memory (bound {}), process RSS {} MiB\n",
                report.active_after_run,
                config.resident.min(config.accounts),
                mib(report.rss_after_run_bytes),
            );
            println!("| pattern | submitters | transfers/s | p50 ms | p99 ms | p999 ms | transfers/sync | bytes/transfer | keys/transfer | CPU µs/transfer | writer busy | ms/group write without checkpoint | checkpoint groups | ms/checkpoint group write | stall ms | raw ceiling records/s (same batch) | engine / raw | overloaded |");
            println!(
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for (s, raw) in &report.scenarios {
                let ms = |q: f64| s.latency_us.value_at_quantile(q) as f64 / 1000.0;
                println!(
                    "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {:.2} | {} | {:.0}% | {:.2} | {} | {:.2} | {} | {:.0} | {:.2} | {} |",
                    match s.pattern {
                        Pattern::Uniform => "uniform",
                        Pattern::HotAccount => "hot account",
                    },
                    s.submitters,
                    s.per_second(),
                    ms(0.5),
                    ms(0.99),
                    ms(0.999),
                    s.units_per_group(),
                    s.bytes_per_unit,
                    s.keys_per_unit,
                    s.cpu_us_per_transfer()
                        .map(|c| format!("{c:.1}"))
                        .unwrap_or_else(|| "?".into()),
                    100.0 * s.writer_busy(),
                    (s.write_time.as_secs_f64() - s.checkpoint_time.as_secs_f64()) * 1e3
                        / s.group_writes.saturating_sub(s.checkpoints).max(1) as f64,
                    s.checkpoints,
                    s.checkpoint_time.as_secs_f64() * 1e3 / s.checkpoints.max(1) as f64,
                    s.stalls,
                    raw.per_second(),
                    s.per_second() / raw.per_second(),
                    s.overloaded
                );
            }
            Ok(())
        }
    }
}

fn fatal(message: &str) -> ! {
    eprintln!("payd bench: {message}");
    std::process::exit(2)
}

/// A platform on `dir` (a fresh temp dir named `prefix…` in the working directory when
/// `None`, removed with the guard), not started, with a new key.
fn bench_platform(
    dir: Option<PathBuf>,
    prefix: &str,
) -> anyhow::Result<(
    Option<tempfile::TempDir>,
    std::sync::Arc<services::Platform>,
)> {
    let (tmp, dir) = match dir {
        Some(d) => (None, d),
        None => {
            let tmp = tempfile::Builder::new().prefix(prefix).tempdir_in(".")?;
            let dir = tmp.path().to_path_buf();
            (Some(tmp), dir)
        }
    };
    let config = api::config::Config {
        data_dir: dir,
        ..Default::default()
    };
    let key = services::vault::generate_key();
    let vault = services::vault::Vault::new(&key).map_err(anyhow::Error::msg)?;
    let master = services::vault::Vault::new(&key).map_err(anyhow::Error::msg)?;
    let platform = services::Platform::new(config.settings(), vault, master, config.rate_limits())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((tmp, std::sync::Arc::new(platform)))
}

/// `payd bench day-end`.
fn day_end(accounts: u64, entries: u64, days: u32, dir: Option<PathBuf>) -> anyhow::Result<()> {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::sync::Arc;
    use std::time::Instant;

    use engine::{Currency, Timestamp, Transfer, TransferId, TransferKind};

    let (_tmp, platform) = bench_platform(dir, "payd-bench-day-end-")?;
    actix_rt::System::new().block_on(async move {
        platform.start(fatal);
        while !platform.is_ready() {
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        let ledger = platform.ledger().map_err(|e| anyhow::anyhow!("{e}"))?.clone();
        let store = Arc::clone(platform.store().map_err(|e| anyhow::anyhow!("{e}"))?);
        let started = Instant::now();
        let s = Arc::clone(&store);
        tokio::task::spawn_blocking(move || loadtest::engine::populate(&s, accounts))
            .await?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let populated = started.elapsed();
        // Two-leg transfers between pseudo-random accounts, 8,190 per batch, 2 batches in
        // flight: the engine's batch path, as POST /v1/transfers/batch drives it.
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut step = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut next = 0u64;
        println!("## payd bench day-end\n");
        println!(
            "{accounts} accounts created in {:.1} s.\n",
            populated.as_secs_f64()
        );
        for day in 1..=days {
        let started = Instant::now();
        let end = next + entries;
        let mut inflight = Vec::new();
        while next < end || !inflight.is_empty() {
            while next < end && inflight.len() < 2 {
                let n = (end - next).min(8_190);
                let batch: Vec<_> = (0..n)
                    .map(|k| {
                        let from = loadtest::engine::account(step() % accounts);
                        let mut to = loadtest::engine::account(step() % accounts);
                        if to == from {
                            to = loadtest::engine::account((step() % accounts + 1) % accounts);
                        }
                        let t = Transfer::between(
                            TransferId(u128::from(next + k + 1) << 64),
                            TransferKind::Transfer,
                            from,
                            to,
                            Currency::CNY,
                            1 + (step() % 10_000) as i64,
                            Timestamp(0),
                        );
                        (t, Vec::new())
                    })
                    .collect();
                next += n;
                let l = ledger.clone();
                inflight.push(actix_rt::spawn(async move { l.transfer_many(batch).await }));
            }
            let done = inflight.remove(0);
            let outcomes = done
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Some(bad) = outcomes.iter().find(|o| !matches!(o, Ok(Ok(_)))) {
                anyhow::bail!("a transfer was not applied: {bad:?}");
            }
        }
        let loaded = started.elapsed();
        let date = ledger.period().map(|p| p.open.to_string()).unwrap_or_default();
        let mib = |b: Option<u64>| b.map_or("?".to_string(), |b| (b >> 20).to_string());
        let rss_before = mib(loadtest::proc_stats::rss_bytes());
        // Payments without a day-end: 32 closed-loop submitters for 10 s.
        let calm = probe(&platform, accounts, PROBE_SUBMITTERS, Duration::from_secs(10), None).await;
        // The process's peak RSS while the day-end runs, sampled every 100 ms.
        let sampling = Rc::new(Cell::new(true));
        let peak = Rc::new(Cell::new(0u64));
        let sampler = {
            let (sampling, peak) = (Rc::clone(&sampling), Rc::clone(&peak));
            actix_rt::spawn(async move {
                while sampling.get() {
                    peak.set(peak.get().max(loadtest::proc_stats::rss_bytes().unwrap_or(0)));
                    actix_rt::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        let started = Instant::now();
        services::day_end::start(&platform, Default::default(), None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let switched = started.elapsed();
        // The same payments while the day-end's steps run, until it stops running.
        let running = {
            let (p, d) = (Arc::clone(&platform), date.clone());
            probe(
                &platform,
                accounts,
                PROBE_SUBMITTERS,
                Duration::from_secs(600),
                Some(Box::new(move || {
                    services::day_end::get(&p, &d).map_or(true, |v| v.status != "running")
                })),
            )
            .await
        };
        sampling.set(false);
        let _ = sampler.await;
        let view = services::day_end::get(&platform, &date).map_err(|e| anyhow::anyhow!("{e}"))?;
        let total = started.elapsed();
        println!(
            "### Day {day}\n\n{entries} transfers applied in {:.1} s ({:.0}/s); process RSS {rss_before} MiB before the day-end, peak {} MiB during it\n",
            loaded.as_secs_f64(),
            entries as f64 / loaded.as_secs_f64(),
            mib(Some(peak.get()))
        );
        println!(
            "Day-end of {date}: status **{}**, the switch answered in {:.1} ms, all steps done in {:.1} s; {} accounts, {} postings; sha256 {}\n",
            view.status,
            switched.as_secs_f64() * 1e3,
            total.as_secs_f64(),
            view.accounts,
            view.postings,
            view.snapshot_sha256.as_deref().unwrap_or("-")
        );
        println!(
            "Payments (two-leg transfers through the ledger, {PROBE_SUBMITTERS} closed-loop submitters): without a day-end {} in {:.1} s, p50 {:.2} ms, p99 {:.2} ms; during the day-end {} in {:.1} s, p50 {:.2} ms, p99 {:.2} ms (p99 ratio {:.2})\n",
            calm.count,
            calm.seconds,
            calm.p50_ms,
            calm.p99_ms,
            running.count,
            running.seconds,
            running.p50_ms,
            running.p99_ms,
            running.p99_ms / calm.p99_ms
        );
        println!("| step | status | detail |\n|---|---|---|");
        for s in &view.steps {
            println!("| {} | {} | {} |", s.name, s.status, s.detail);
        }
        println!();
        }
        Ok(())
    })
}

/// Closed-loop submitters measuring payments' latency during the day-end bench.
const PROBE_SUBMITTERS: usize = 32;

struct Probe {
    count: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// `n` closed-loop submitters of two-leg transfers between random accounts, for `limit` or
/// until `done` says so (checked every 100 ms).
async fn probe(
    platform: &services::Platform,
    accounts: u64,
    n: usize,
    limit: Duration,
    done: Option<Box<dyn Fn() -> bool>>,
) -> Probe {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::time::Instant;

    use engine::{Currency, Timestamp, Transfer, TransferId, TransferKind};

    let ledger = platform.ledger().expect("the platform is ready");
    let hist = Rc::new(RefCell::new(loadtest::engine::latency_histogram()));
    let stop = Rc::new(Cell::new(false));
    let next = Rc::new(Cell::new(0u64));
    let started = Instant::now();
    let workers: Vec<_> = (0..n)
        .map(|w| {
            let (ledger, hist, stop, next) = (
                ledger.clone(),
                Rc::clone(&hist),
                Rc::clone(&stop),
                Rc::clone(&next),
            );
            actix_rt::spawn(async move {
                let mut rng = 0x2545_F491_4F6C_DD1Du64 ^ (w as u64 + 1);
                while !stop.get() {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let k = next.get();
                    next.set(k + 1);
                    let from = loadtest::engine::account(rng % accounts);
                    let to =
                        loadtest::engine::account((rng / accounts + 1 + rng % accounts) % accounts);
                    if from == to {
                        continue;
                    }
                    let t = Transfer::between(
                        TransferId((1u128 << 127) | (u128::from(rng) << 32) | u128::from(k)),
                        TransferKind::Transfer,
                        from,
                        to,
                        Currency::CNY,
                        1,
                        Timestamp(0),
                    );
                    let t0 = Instant::now();
                    if let Ok(Ok(_)) = ledger.transfer(t).await {
                        let _ = hist
                            .borrow_mut()
                            .record(t0.elapsed().as_micros().max(1) as u64);
                    }
                }
            })
        })
        .collect();
    loop {
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        if started.elapsed() >= limit || done.as_ref().is_some_and(|d| d()) {
            break;
        }
    }
    stop.set(true);
    for w in workers {
        let _ = w.await;
    }
    let h = hist.borrow();
    Probe {
        count: h.len(),
        seconds: started.elapsed().as_secs_f64(),
        p50_ms: h.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
    }
}

/// `payd bench recon`: one channel's statement of `rows` rows reconciled against as many
/// card payments, timed end to end through payd's services.
fn recon(rows: u64, plants: u64, dir: Option<PathBuf>) -> anyhow::Result<()> {
    use std::time::Instant;

    use engine::statement::{Charset, Format, Row, RowKind, Statement};
    use services::records::{self, CardPayment, Payment, PaymentStatus, Tail};

    let (_tmp, platform) = bench_platform(dir, "payd-bench-recon-")?;
    actix_rt::System::new().block_on(async move {
        platform.start(fatal);
        while !platform.is_ready() {
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        let err = |e: services::Error| anyhow::anyhow!("{e}");
        let ledger = platform.ledger().map_err(err)?.clone();
        // A disabled channel: its statement comes by upload, the day-end asks nobody.
        let create: services::channels::CreateChannel = serde_json::from_value(serde_json::json!({
            "name": "bank", "endpoint": "http://127.0.0.1:9", "methods": ["bank_card"],
            "currency": "CNY", "fee_rate": "0.002", "max_amount": "50000.00",
            "daily_limit": "100000000.00", "enabled": false
        }))?;
        let ch = services::channels::add(&platform, create, |_| Vec::new())
            .await
            .map_err(err)?;
        let channel = services::channels::records(&platform)
            .into_iter()
            .find(|c| c.name == "bank")
            .ok_or_else(|| anyhow::anyhow!("the channel {} is missing", ch.id))?;
        let date = ledger.period().map(|p| p.open).ok_or_else(|| anyhow::anyhow!("no date"))?;
        // `rows` succeeded card payments of the date, written as records (the ledger's
        // side of a payment does not take part in matching).
        let started = Instant::now();
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut step = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut statement_rows = Vec::with_capacity(rows as usize);
        let mut batch = Vec::with_capacity(8_192);
        for n in 0..rows {
            let id = services::platform::new_id();
            let amount = 1 + (step() % 1_000_000) as i64;
            let fee = (amount * 2_000 + 500_000) / 1_000_000;
            let request_id = format!("{}-1", services::payments::payment_id_text(id));
            let p = Payment {
                id,
                merchant: 1 + u128::from(n % 1_000),
                out_trade_no: format!("o-{n}"),
                amount,
                currency: 156,
                fee: (amount * 6_000 + 500_000) / 1_000_000,
                payer: engine::AccountId(0),
                status: PaymentStatus::Succeeded,
                failure_code: None,
                description: None,
                metadata: Vec::new(),
                refunded: 0,
                created_at_ns: services::platform::now_ns(),
                risk: Tail(None),
                card: Tail(Some(CardPayment {
                    token: 0,
                    brand: "visa".into(),
                    last4: "1111".into(),
                    channel: Some((channel.id, channel.name.clone())),
                    request_id: Some(request_id.clone()),
                    channel_fee: fee,
                    attempts: Vec::new(),
                    excluded: Vec::new(),
                })),
                business_date: Tail(Some(date)),
                splits: Tail(Vec::new()),
                agreement_version: Tail(1),
                coupon: Tail(None),
                credit_line: Tail(None),
                authorization: Tail(None),
            };
            // Planted: every (rows / plants)-th row's amount is 1.00 more at the channel.
            let planted = plants > 0 && n % (rows / plants).max(1) == 0;
            statement_rows.push(Row {
                kind: RowKind::Charge,
                channel_reference: format!("bank_{:016x}", step()),
                out_trade_no: request_id,
                out_refund_no: None,
                amount: amount + if planted { 100 } else { 0 },
                fee,
                time: format!("{date} 12:00:00"),
                subject: "payment".into(),
            });
            batch.push((records::payment_key(id), records::encode(&p)));
            if batch.len() == 8_192 {
                ledger.write_records(std::mem::take(&mut batch)).await?;
            }
        }
        ledger.write_records(batch).await?;
        let seeded = started.elapsed();
        // The date closed (its day-end), then the statement written as Alipay writes it.
        services::day_end::start(&platform, Default::default(), None)
            .await
            .map_err(err)?;
        let d = date.to_string();
        while services::day_end::get(&platform, &d).map_or(true, |v| v.status == "running") {
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
        let file = engine::statement::write(
            &Statement {
                format: Format::Alipay,
                account: "2088102170000156".into(),
                date: d.clone(),
                rows: statement_rows,
            },
            &date.next().map(|n| n.to_string()).unwrap_or_default(),
            &format!("{d} 09:00:00"),
            Charset::Gbk,
        );
        let bytes = file.len();
        let rss_before = loadtest::proc_stats::rss_bytes().unwrap_or(0) >> 20;
        let actor = services::audit::Actor {
            name: "bench".into(),
            source_ip: None,
        };
        let started = Instant::now();
        let ran = services::recon::upload(&platform, &actor, "bank", &d, "alipay", &file)
            .await
            .map_err(err)?;
        let took = started.elapsed();
        let rss_after = loadtest::proc_stats::rss_bytes().unwrap_or(0) >> 20;
        let view = serde_json::to_value(&ran.run)?;
        println!("## payd bench recon\n");
        println!(
            "{rows} card payments of {d} seeded in {:.1} s; the channel's statement of them: {} MiB (Alipay trade bill, GBK, CRLF), {plants} rows with the amount changed.\n",
            seeded.as_secs_f64(),
            bytes >> 20
        );
        println!(
            "Whole run (`services::recon::upload`: SHA-256, strict parse, the file kept, {rows} items scanned from the store, matched, suspense booked, mismatches and pool written): **{:.1} s**; status {}, {} rows, matched {}, mismatches {}, suspense long {}; process RSS {rss_before} MiB before, {rss_after} MiB after.\n",
            took.as_secs_f64(),
            view["status"],
            view["rows"],
            view["matched"]["count"],
            view["mismatch_count"],
            view["suspense"]["long"],
        );
        Ok(())
    })
}

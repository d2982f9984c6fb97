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
    },
}

pub fn run(cmd: BenchCmd) -> anyhow::Result<()> {
    match cmd {
        BenchCmd::Engine {
            accounts,
            resident,
            submitters,
            seconds,
            warmup,
            dir,
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
            println!("| pattern | submitters | transfers/s | p50 ms | p99 ms | p999 ms | transfers/sync | bytes/transfer | keys/transfer | CPU µs/transfer | writer busy | ms/group write | stalls | raw ceiling records/s (same batch) | engine / raw | overloaded |");
            println!(
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for (s, raw) in &report.scenarios {
                let ms = |q: f64| s.latency_us.value_at_quantile(q) as f64 / 1000.0;
                println!(
                    "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {:.2} | {} | {:.0}% | {:.2} | {} | {:.0} | {:.2} | {} |",
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
                    s.write_time.as_secs_f64() * 1e3 / s.group_writes.max(1) as f64,
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

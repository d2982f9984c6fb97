//! `payd`: the rongpay server and its operator commands. Glue only: the work is in the
//! libraries.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod bench;

#[derive(Parser)]
#[command(name = "payd", version, about = "rongpay payment transaction engine")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the HTTP API: recover the store, then run until SIGTERM or SIGINT.
    Serve {
        /// Directory of the embedded RocksDB store (created when missing).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        /// TOML configuration file; `RONGPAY_*` variables override it, flags override both.
        #[arg(long, env = "RONGPAY_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Replay the whole journal and check it against every balance; exit 1 on a mismatch.
    Verify {
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Replay the whole history (the archive segments and the journal) and rebuild every
        /// closed day's snapshot hash, instead of starting from the last closed day's
        /// snapshot.
        #[arg(long)]
        full: bool,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCmd,
    },
}

/// mimalloc instead of glibc's malloc: a payment allocates and frees many small buffers
/// (JSON, records, actor messages) across threads, and glibc's free lists and consolidation
/// took ~12% of payd's CPU under load (see docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // Logs go to stderr through a bounded buffer and a writer thread that writes what
    // gathered every 10 ms (api::logwriter): a slow terminal or disk drops lines (counted)
    // rather than stalling payments, and the thread does not wake for every line.
    let (writer, _flush_at_exit) = api::logwriter::spawn(std::io::stderr())?;
    let filter = EnvFilter::try_from_env("RONGPAY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // JSON, one object per line (docs/ops/LOGS.md), unless RONGPAY_LOG_FORMAT=text.
    if std::env::var("RONGPAY_LOG_FORMAT").is_ok_and(|f| f == "text") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .init();
    } else {
        api::access::write_json_to(writer.clone());
        // tracing's JSON lines, formatted for less (api::logfmt).
        tracing_subscriber::fmt()
            .fmt_fields(api::logfmt::SpanFields)
            .event_format(api::logfmt::JsonLines::default())
            .with_env_filter(filter)
            .with_writer(writer)
            .init();
    }
    match Cli::parse().command {
        Cmd::Serve {
            data_dir,
            listen,
            config,
        } => {
            let mut config =
                api::config::Config::load(config.as_deref()).map_err(anyhow::Error::msg)?;
            if let Some(dir) = data_dir {
                config.data_dir = dir;
            }
            if let Some(listen) = listen {
                config.listen = listen;
            }
            api::server::serve(config)
        }
        Cmd::Verify { data_dir, full } => verify(data_dir, full),
        Cmd::Bench { what } => bench::run(what),
    }
}

fn verify(data_dir: PathBuf, full: bool) -> anyhow::Result<()> {
    let verified = services::platform::verify(&data_dir, full).map_err(|e| match e {
        services::platform::VerifyError::Open(e) => {
            anyhow::Error::new(e).context(format!("opening store in {}", data_dir.display()))
        }
        services::platform::VerifyError::Replay(e) => {
            anyhow::Error::new(e).context("verification failed")
        }
        services::platform::VerifyError::Day(e) => {
            anyhow::anyhow!(e).context("verification of the closed days failed")
        }
    })?;
    let v = verified.verification;
    if let Some(date) = verified.from_snapshot {
        println!(
            "payd verify: from the snapshot of {date}: {} journal entries after it, {} transfers, {} accounts replayed and matched in {} ms (open {} ms); archive checksums good; trial balance {:?}",
            v.entries,
            v.transfers,
            v.accounts,
            verified.replay.as_millis(),
            verified.open.as_millis(),
            v.trial_balance
        );
        return Ok(());
    }
    println!(
        "payd verify: {} journal entries, {} transfers, {} accounts replayed and matched in {} ms (open {} ms); trial balance {:?}",
        v.entries,
        v.transfers,
        v.accounts,
        verified.replay.as_millis(),
        verified.open.as_millis(),
        v.trial_balance
    );
    if !verified.days.is_empty() {
        println!(
            "payd verify: {} closed day(s) rebuilt from the journal, every snapshot hash matched ({} accounts on the last)",
            verified.days.len(),
            verified.days.last().map_or(0, |d| d.accounts)
        );
    }
    Ok(())
}

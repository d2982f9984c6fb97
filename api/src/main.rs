//! `payd`: the rongpay server and its operator commands. Glue only: the work is in the
//! libraries.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
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
    /// Open (or create) the store, recover, and run the engine until SIGTERM or SIGINT.
    Serve {
        /// Directory of the embedded RocksDB store (created when missing).
        #[arg(long, default_value = "./data", env = "RONGPAY_DATA_DIR")]
        data_dir: PathBuf,
        /// Address the HTTP API will listen on (the API itself is issue #3's work).
        #[arg(long, default_value = "127.0.0.1:8080", env = "RONGPAY_LISTEN")]
        listen: String,
    },
    /// Replay the whole journal and check it against every balance; exit 1 on a mismatch.
    Verify {
        #[arg(long, default_value = "./data", env = "RONGPAY_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCmd,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("RONGPAY_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Cmd::Serve { data_dir, listen } => serve(data_dir, listen),
        Cmd::Verify { data_dir } => verify(data_dir),
        Cmd::Bench { what } => bench::run(what),
    }
}

fn serve(data_dir: PathBuf, listen: String) -> anyhow::Result<()> {
    let (store, recovery) = storage::Store::open(&data_dir, storage::StoreOptions::default())
        .with_context(|| format!("opening store in {}", data_dir.display()))?;
    println!(
        "payd: store {} recovered in {} ms: journal through seq {}, {} accounts, trial balance {:?}",
        data_dir.display(),
        recovery.elapsed.as_millis(),
        recovery.last_seq,
        recovery.accounts,
        recovery.trial_balance
    );
    let store = Arc::new(store);
    actix_rt::System::new().block_on(async {
        let ledger = actors::Ledger::start(Arc::clone(&store), actors::LedgerConfig::default());
        println!("payd: engine running (HTTP API on {listen} arrives with the API work); SIGTERM or SIGINT stops it");
        let mut term = actix_rt::signal::unix::signal(actix_rt::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            _ = actix_rt::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        // Let admitted commands finish before the writer stops.
        while ledger.inflight() > 0 {
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        anyhow::Ok(())
    })?;
    store.shutdown();
    println!("payd: stopped cleanly at seq {}", store.last_seq());
    Ok(())
}

fn verify(data_dir: PathBuf) -> anyhow::Result<()> {
    let (store, recovery) = storage::Store::open(&data_dir, storage::StoreOptions::default())
        .with_context(|| format!("opening store in {}", data_dir.display()))?;
    let started = std::time::Instant::now();
    let v = store.verify().context("verification failed")?;
    println!(
        "payd verify: {} journal entries, {} transfers, {} accounts replayed and matched in {} ms (open {} ms); trial balance {:?}",
        v.entries,
        v.transfers,
        v.accounts,
        started.elapsed().as_millis(),
        recovery.elapsed.as_millis(),
        v.trial_balance
    );
    Ok(())
}

//! The engine benchmark: real actors, real RocksDB, synced group commit.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::{Ledger, LedgerConfig, LedgerError};
use engine::{Account, AccountId, Currency, Effect, Timestamp, Transfer, TransferId, TransferKind};
use hdrhistogram::Histogram;
use rand::Rng;
use storage::{CommitUnit, Store, StoreOptions};

/// How far each benchmark account may overdraw: no transfer is refused for funds, since a
/// refusal is cheaper than a commit and would flatter the numbers.
const BENCH_CREDIT_LIMIT: i64 = 1_000_000_000_000;
const CREATE_PER_UNIT: usize = 8_192;

#[derive(Clone, Debug)]
pub struct EngineBenchConfig {
    pub dir: PathBuf,
    pub accounts: u64,
    /// Accounts kept in memory at most (the shards' cache); the rest are loaded from the
    /// store when used, evicting the least recently used. At least `accounts`: all resident.
    pub resident: u64,
    pub submitters: Vec<usize>,
    pub duration: Duration,
    pub warmup: Duration,
    /// `StoreOptions::dedup_held_ids_max` (0: every dedup key in its group's write).
    pub dedup_held_ids_max: usize,
    /// `StoreOptions::balance_seal_accounts` (0: every checkpoint to the memtable).
    pub balance_seal_accounts: usize,
}

/// Where the credits go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Payer and payee drawn uniformly from all accounts.
    Uniform,
    /// Payer uniform, every transfer credits account 0 (one hot merchant).
    HotAccount,
}

#[derive(Clone, Debug)]
pub struct ScenarioResult {
    pub pattern: Pattern,
    pub submitters: usize,
    pub transfers: u64,
    pub elapsed: Duration,
    pub latency_us: Histogram<u64>,
    pub group_writes: u64,
    /// Time the writer spent in group writes (encode, WriteBatch, fdatasync), summed.
    pub write_time: Duration,
    /// Of the group writes, those that carried a balance checkpoint, and their summed time.
    pub checkpoints: u64,
    pub checkpoint_time: Duration,
    /// Milliseconds the group writes waited out RocksDB write stalls (one per 1 ms retry;
    /// `rongpay_wal_write_stalls_total` counts the groups).
    pub stalls: u64,
    /// CPU time of the whole process (every thread, RocksDB's included) during the scenario.
    pub cpu: Option<Duration>,
    pub overloaded: u64,
    pub rejected: u64,
    /// Bytes the store wrote per transfer (journal, dedup, two account deltas).
    pub bytes_per_unit: u64,
    /// RocksDB records (puts and merge operands) the store wrote per transfer.
    pub keys_per_unit: f64,
}

impl ScenarioResult {
    pub fn per_second(&self) -> f64 {
        self.transfers as f64 / self.elapsed.as_secs_f64()
    }
    /// CPU microseconds of the process per transfer: moves less with the machine's noise
    /// than a rate does.
    pub fn cpu_us_per_transfer(&self) -> Option<f64> {
        self.cpu
            .map(|c| c.as_secs_f64() * 1e6 / self.transfers.max(1) as f64)
    }
    /// Share of the wall time the writer spent inside group writes.
    pub fn writer_busy(&self) -> f64 {
        self.write_time.as_secs_f64() / self.elapsed.as_secs_f64()
    }
    pub fn units_per_group(&self) -> f64 {
        self.transfers as f64 / self.group_writes.max(1) as f64
    }
}

#[derive(Clone, Debug)]
pub struct RawResult {
    pub batch_records: usize,
    pub record_bytes: usize,
    pub records: u64,
    pub elapsed: Duration,
    pub batch_latency_us: Histogram<u64>,
}

impl RawResult {
    pub fn per_second(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Microseconds from 1 µs to 60 s at 3 significant digits. Fixed bounds: `saturating_record`
/// clamps to them (an auto-resizing histogram would clamp to its tiny initial range).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

pub fn account(i: u64) -> AccountId {
    AccountId(0x1000_0000 + u128::from(i))
}

/// Creates `n` accounts straight through the store, 8,192 per commit unit.
pub fn populate(store: &Store, n: u64) -> Result<(), storage::StoreError> {
    let mut i = 0;
    while i < n {
        let end = (i + CREATE_PER_UNIT as u64).min(n);
        let effects = (i..end)
            .map(|k| {
                Effect::AccountCreated(Account::new(
                    account(k),
                    Currency::CNY,
                    BENCH_CREDIT_LIMIT,
                    Timestamp(0),
                ))
            })
            .collect();
        store.commit_blocking(CommitUnit {
            effects,
            ..CommitUnit::default()
        })?;
        i = end;
    }
    Ok(())
}

/// Runs one scenario for `duration` on the current actix system.
pub async fn run_scenario(
    ledger: &Ledger,
    accounts: u64,
    pattern: Pattern,
    submitters: usize,
    duration: Duration,
) -> ScenarioResult {
    let stats = ledger.store().stats();
    let groups_before = stats.group_writes.load(Ordering::Relaxed);
    let nanos_before = stats.write_nanos.load(Ordering::Relaxed);
    let stalls_before = stats.stalls.load(Ordering::Relaxed);
    let checkpoints_before = stats.checkpoints.load(Ordering::Relaxed);
    let checkpoint_nanos_before = stats.checkpoint_nanos.load(Ordering::Relaxed);
    let cpu_before = crate::proc_stats::cpu_time();
    let bytes_before = stats.bytes.load(Ordering::Relaxed);
    let keys_before = stats.keys.load(Ordering::Relaxed);
    let units_before = stats.units.load(Ordering::Relaxed);
    let totals = Rc::new(RefCell::new((latency_histogram(), 0u64, 0u64, 0u64)));
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..submitters)
        .map(|_| {
            let ledger = ledger.clone();
            let totals = Rc::clone(&totals);
            actix_rt::spawn(async move {
                // One histogram for all submitters (they share this thread): a histogram per
                // submitter is ~400 KiB, so 1,024 of them cost ~400 MiB of RSS and a cache
                // miss per recorded latency, taken from the engine being measured.
                let (mut done, mut overloaded, mut rejected) = (0u64, 0u64, 0u64);
                while Instant::now() < deadline {
                    let (id, from, to, amount) = {
                        let mut rng = rand::rng();
                        let from = rng.random_range(0..accounts);
                        let to = match pattern {
                            Pattern::Uniform => (from + rng.random_range(1..accounts)) % accounts,
                            Pattern::HotAccount if from == 0 => 1,
                            Pattern::HotAccount => 0,
                        };
                        // Time-ordered, as payd's own ids are (`services::platform::new_id`).
                        let id = engine::ids::time_ordered_id(unix_ms(), rng.random::<u128>());
                        (id, from, to, rng.random_range(1..100_000))
                    };
                    let t = Transfer::between(
                        TransferId(id),
                        TransferKind::Transfer,
                        account(from),
                        account(to),
                        Currency::CNY,
                        amount,
                        Timestamp(0),
                    );
                    let t0 = Instant::now();
                    match ledger.transfer(t).await {
                        Ok(Ok(_)) => {
                            let us = t0.elapsed().as_micros() as u64;
                            totals.borrow_mut().0.saturating_record(us.max(1));
                            done += 1;
                        }
                        Ok(Err(_)) => rejected += 1,
                        Err(LedgerError::Overloaded(_)) => {
                            overloaded += 1;
                            actix_rt::time::sleep(Duration::from_micros(200)).await;
                        }
                        Err(e) => panic!("benchmark transfer failed: {e}"),
                    }
                }
                let mut t = totals.borrow_mut();
                t.1 += done;
                t.2 += overloaded;
                t.3 += rejected;
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("submitter task");
    }
    let elapsed = started.elapsed();
    let (latency_us, transfers, overloaded, rejected) = totals.borrow().clone();
    let units = stats.units.load(Ordering::Relaxed) - units_before;
    ScenarioResult {
        pattern,
        submitters,
        transfers,
        elapsed,
        latency_us,
        group_writes: stats.group_writes.load(Ordering::Relaxed) - groups_before,
        write_time: Duration::from_nanos(stats.write_nanos.load(Ordering::Relaxed) - nanos_before),
        checkpoints: stats.checkpoints.load(Ordering::Relaxed) - checkpoints_before,
        checkpoint_time: Duration::from_nanos(
            stats.checkpoint_nanos.load(Ordering::Relaxed) - checkpoint_nanos_before,
        ),
        stalls: stats.stalls.load(Ordering::Relaxed) - stalls_before,
        cpu: cpu_before
            .zip(crate::proc_stats::cpu_time())
            .map(|(a, b)| b.saturating_sub(a)),
        overloaded,
        rejected,
        bytes_per_unit: (stats.bytes.load(Ordering::Relaxed) - bytes_before) / units.max(1),
        keys_per_unit: (stats.keys.load(Ordering::Relaxed) - keys_before) as f64
            / units.max(1) as f64,
    }
}

/// The raw ceiling: synced RocksDB `WriteBatch`es of `batch_records` puts of `record_bytes`
/// each, from one thread, for `duration`. What the disk and RocksDB allow with no engine.
pub fn raw_ceiling(
    dir: &Path,
    batch_records: usize,
    record_bytes: usize,
    duration: Duration,
) -> RawResult {
    let mut o = rocksdb::Options::default();
    o.create_if_missing(true);
    o.set_write_buffer_size(64 << 20);
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    let db = rocksdb::DB::open(&o, dir).expect("open raw rocksdb");
    let mut w = rocksdb::WriteOptions::default();
    w.set_sync(true);
    let mut rng = rand::rng();
    let value: Vec<u8> = (0..record_bytes).map(|_| rng.random()).collect();
    let mut hist = latency_histogram();
    let mut records = 0u64;
    let mut key = 0u64;
    let started = Instant::now();
    while started.elapsed() < duration {
        let mut batch = rocksdb::WriteBatch::default();
        for _ in 0..batch_records {
            key += 1;
            batch.put(key.to_be_bytes(), &value);
        }
        let t0 = Instant::now();
        db.write_opt(batch, &w).expect("raw synced write");
        hist.saturating_record((t0.elapsed().as_micros() as u64).max(1));
        records += batch_records as u64;
    }
    RawResult {
        batch_records,
        record_bytes,
        records,
        elapsed: started.elapsed(),
        batch_latency_us: hist,
    }
}

/// Everything `payd bench engine` reports.
#[derive(Clone, Debug)]
pub struct EngineReport {
    pub accounts: u64,
    pub populate: Duration,
    pub warm: Duration,
    /// Resident memory with the store open and populated, before any account is activated.
    pub rss_before_warm_bytes: Option<u64>,
    /// Resident memory with every account active (actors, registry, RocksDB caches).
    pub rss_after_warm_bytes: Option<u64>,
    pub active_accounts: usize,
    /// Resident memory after every scenario ran (the cache churned when bounded).
    pub rss_after_run_bytes: Option<u64>,
    /// Accounts in memory after every scenario ran.
    pub active_after_run: usize,
    pub scenarios: Vec<(ScenarioResult, RawResult)>,
}

/// Populates a fresh store in `config.dir`, activates every account, then runs each
/// (pattern, submitters) scenario followed by its raw ceiling at the same batch shape.
pub fn run(config: &EngineBenchConfig) -> Result<EngineReport, String> {
    let store_dir = config.dir.join("store");
    if store_dir.exists() {
        return Err(format!(
            "{} exists: give the benchmark an empty directory",
            store_dir.display()
        ));
    }
    let options = StoreOptions {
        dedup_held_ids_max: config.dedup_held_ids_max,
        balance_seal_accounts: config.balance_seal_accounts,
        ..StoreOptions::default()
    };
    let (store, _) = Store::open(&store_dir, options).map_err(|e| e.to_string())?;
    let store = Arc::new(store);
    let t0 = Instant::now();
    populate(&store, config.accounts).map_err(|e| e.to_string())?;
    let populate_time = t0.elapsed();
    let config = config.clone();
    actix_rt::System::new().block_on(async move {
        let ledger = Ledger::start(
            Arc::clone(&store),
            LedgerConfig {
                active_accounts_max: config.resident.min(config.accounts) as usize + 16,
                ..LedgerConfig::default()
            },
        );
        let rss_before = crate::proc_stats::rss_bytes();
        let t0 = Instant::now();
        let mut i = 0;
        let warm_to = config.resident.min(config.accounts);
        while i < warm_to {
            let end = (i + 65_536).min(warm_to);
            ledger
                .activate_many((i..end).map(account).collect())
                .await
                .map_err(|e| e.to_string())?;
            i = end;
        }
        let warm = t0.elapsed();
        let rss = crate::proc_stats::rss_bytes();
        let active = ledger.active_accounts();
        let mut scenarios = Vec::new();
        for pattern in [Pattern::Uniform, Pattern::HotAccount] {
            for &n in &config.submitters {
                run_scenario(&ledger, config.accounts, pattern, n, config.warmup).await;
                let result =
                    run_scenario(&ledger, config.accounts, pattern, n, config.duration).await;
                let raw_dir = config.dir.join(format!("raw-{pattern:?}-{n}"));
                let batch = result.units_per_group().round().max(1.0) as usize;
                let raw = raw_ceiling(
                    &raw_dir,
                    batch,
                    result.bytes_per_unit as usize,
                    config.duration,
                );
                let _ = std::fs::remove_dir_all(&raw_dir);
                scenarios.push((result, raw));
            }
        }
        Ok(EngineReport {
            accounts: config.accounts,
            populate: populate_time,
            warm,
            rss_before_warm_bytes: rss_before,
            rss_after_warm_bytes: rss,
            active_accounts: active,
            rss_after_run_bytes: crate::proc_stats::rss_bytes(),
            active_after_run: ledger.active_accounts(),
            scenarios,
        })
    })
}

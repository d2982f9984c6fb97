//! The day-end (日切) of a business date (issue #15; `../shared/FUNDS.md`, "Business date
//! and day-end"). The rules (checks, hash) are `engine::gl::day_end`; this module runs them.
//!
//! `POST /v1/gl/day_end` closes the open date `D` with one journal entry (the ledger's
//! switch, ordered with the transfers: every transfer before it is dated `D`, every one
//! after it `D+1`), written with this day-end's record. Payments go on at once on `D+1`;
//! the steps for `D` then run in the background, each recorded before and after it runs:
//!
//! 1. `switch`: the switch's journal position (durable when the POST answers).
//! 2. `wait_in_flight`: every entry dated `D` precedes the switch and is durable (the
//!    writer writes in order, so the switch's acknowledgement covers them; the step checks
//!    the journal agrees).
//! 3. `snapshot_accounts`: every account's day — opening (the previous day's closing),
//!    debit and credit turnover and postings from the date's journal range, closing as of
//!    the switch (read at a RocksDB snapshot, never blocking the writer) — written under
//!    the date.
//! 4. `snapshot_gl`: the GL's figures of `D` (opening, turnover, closing per GL account),
//!    frozen in the record.
//! 5. `checks`: closing = opening + turnover for every account; each opens at its last
//!    close; every control account equals its sub-ledger; every trial balance balances.
//! 6. `hash`: SHA-256 of the snapshot chained to the previous day's.
//! 7. `report`: the date's daily reports (the platform's and each merchant's), frozen
//!    (`services::reports`).
//! 8. `archive`: every closed date older than `archive_after_days` whose day-end is done
//!    moves its journal records to an archive segment (`storage::archive`), and its account
//!    snapshot goes (the journal, archived, rebuilds it: `payd verify`).
//!
//! Every step recomputes from what cannot change any more (the journal up to the switch,
//! the previous day's snapshot), so a rerun — after a crash, or asked for — gives the same
//! records and the same hash. A failed check never stops payments: the day-end is marked
//! failed, `rongpay_day_end_failed` is 1 (an alert rule fires) and the ops page shows it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use engine::gl::{check_day, snapshot_hash, AccountDay, BusinessDate, CheckFailure};
use engine::{AccountId, Effect};
use serde::{Deserialize, Serialize};
use storage::records::{self, DayEnd, DayEndStatus, DayEndStep};

use crate::error::{Error, Result};
use crate::idempotency::Guard;
use crate::platform::{now_ns, Platform};
use crate::records::hex;

/// The steps of a day-end, in order (`reconciliation` before `settlement_maturity`, so that
/// what a statement disputes is held back; coupon expiry and credit before `positions`, whose
/// coverage check counts coupon budgets and merchants' credit takings).
pub const STEPS: [&str; 15] = [
    "switch",
    "wait_in_flight",
    "snapshot_accounts",
    "snapshot_gl",
    "checks",
    "hash",
    "report",
    "reconciliation",
    "settlement_maturity",
    "settlement_batches",
    "channel_settlement",
    "coupon_expiry",
    "credit",
    "positions",
    "archive",
];

/// Account days written per commit unit: small units keep each group write short, so the
/// payments sharing it do not wait on a day-end.
pub const SNAPSHOT_RECORDS_PER_UNIT: usize = 512;

/// Failures a failed check step names in its detail (the rest are counted).
const FAILURES_SHOWN: usize = 5;

/// `POST /v1/gl/day_end`'s body.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StartDayEnd {
    /// The date to close: the open business date (the default), or a date already closed,
    /// whose day-end is then answered (and resumed if it failed).
    #[cfg_attr(feature = "openapi", schema(example = "2026-12-01", format = "date"))]
    pub date: Option<String>,
}

/// One step as answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayEndStepView {
    #[cfg_attr(feature = "openapi", schema(example = "snapshot_accounts"))]
    pub name: String,
    /// `pending`, `running`, `done` or `failed`.
    #[cfg_attr(feature = "openapi", schema(example = "done"))]
    pub status: &'static str,
    #[cfg_attr(
        feature = "openapi",
        schema(example = "1000000 accounts, 10000000 postings")
    )]
    pub detail: String,
}

/// A day-end as `POST /v1/gl/day_end` and `GET /v1/gl/day_end/{date}` answer it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayEndView {
    #[cfg_attr(feature = "openapi", schema(example = "2026-12-01", format = "date"))]
    pub date: String,
    /// `running`, `done` or `failed`.
    #[cfg_attr(feature = "openapi", schema(example = "done"))]
    pub status: &'static str,
    pub steps: Vec<DayEndStepView>,
    /// Hex SHA-256 of the snapshot chained to the previous day's; null until computed.
    pub snapshot_sha256: Option<String>,
    /// Accounts in the snapshot, and the date's postings.
    pub accounts: u64,
    pub postings: u64,
    /// The journal positions of the date: `from_seq` to the switch at `switch_seq` (null in
    /// the answer of the POST: known once the switch is written).
    pub from_seq: u64,
    pub switch_seq: Option<u64>,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Once archived: the segment holding the date's journal records.
    pub archived: Option<ArchivedView>,
    /// Once its final business records were shelved (`crate::shelf`): their segment.
    pub shelved: Option<ShelvedView>,
}

/// A date's record segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShelvedView {
    /// In the data dir's `archive/records/` directory.
    #[cfg_attr(feature = "openapi", schema(example = "2026-12-01.shelf"))]
    pub file: String,
    /// Records moved (payments, refunds, their index keys, events, reports…).
    pub records: u64,
    /// Dedup keys of the date's transfers dropped.
    pub transfers: u64,
    pub bytes: u64,
    /// Hex SHA-256 of the segment's content (checked by `payd verify`).
    pub sha256: String,
}

/// A date's archive segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ArchivedView {
    /// In the data dir's `archive/` directory.
    #[cfg_attr(feature = "openapi", schema(example = "2026-12-01.seg"))]
    pub file: String,
    pub records: u64,
    pub bytes: u64,
    /// Hex SHA-256 of the segment's content (checked by `payd verify`).
    pub sha256: String,
}

fn view(d: &DayEnd) -> DayEndView {
    DayEndView {
        date: d.date.to_string(),
        status: d.status.name(),
        steps: d
            .steps
            .iter()
            .map(|s| DayEndStepView {
                name: s.name.clone(),
                status: s.status.name(),
                detail: s.detail.clone(),
            })
            .collect(),
        snapshot_sha256: d.snapshot_sha256.map(|h| hex(&h)),
        accounts: d.accounts,
        postings: d.postings,
        from_seq: d.from_seq,
        switch_seq: (d.switch_seq != 0).then_some(d.switch_seq),
        started_at: crate::records::time_text(d.started_at_ns),
        finished_at: d.finished_at_ns.map(crate::records::time_text),
        archived: d.archived.as_ref().map(|a| ArchivedView {
            file: a.file.clone(),
            records: a.records,
            bytes: a.bytes,
            sha256: hex(&a.sha256),
        }),
        shelved: d.shelved.0.as_ref().map(|a| ShelvedView {
            file: a.file.clone(),
            records: a.records,
            transfers: a.transfers,
            bytes: a.bytes,
            sha256: hex(&a.sha256),
        }),
    }
}

/// CPU priority of the day-end's worker threads: `nice` 10 (CFS gives a nice-10 thread
/// about a tenth of a nice-0 thread's share of a busy core).
const WORKER_NICE: i32 = 10;

/// Runs a day-end step's long work (scans of the journal and the accounts, segments) on a
/// thread of its own at a lower CPU priority than the serving threads: on a busy machine
/// payments go first and the day-end takes longer, instead of payments waiting behind it.
/// The thread ends with the work (a tokio blocking thread, reniced, would stay reniced for
/// whatever it ran next, and an unprivileged process cannot raise it back).
fn background<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> tokio::sync::oneshot::Receiver<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("day-end".into())
        .spawn(move || {
            lower_priority();
            let _ = tx.send(work());
        });
    if let Err(e) = spawned {
        // The sender is dropped with the closure: the receiver answers an error.
        tracing::error!(error = %e, "cannot start a day-end thread");
    }
    rx
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: gettid and setpriority take and return plain integers; on Linux
    // PRIO_PROCESS with a thread id renices that thread only.
    let done = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, WORKER_NICE)
    };
    if done != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "cannot lower the day-end thread's priority"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// Runs a synchronous step (reads of a million account days, a hash over them) on a
/// [`background`] thread instead of the async thread the day-end runs on, which is an HTTP
/// worker's when a request started it: its connections must not wait for the step.
async fn off_thread(
    store: &Arc<storage::Store>,
    d: &mut DayEnd,
    step: fn(&storage::Store, &mut DayEnd) -> std::result::Result<String, StepError>,
) -> std::result::Result<String, StepError> {
    let s = Arc::clone(store);
    let mut record = d.clone();
    let (outcome, record) = background(move || {
        let outcome = step(&s, &mut record);
        (outcome, record)
    })
    .await
    .map_err(|e| Error::Storage(format!("the day-end thread failed: {e}")))?;
    *d = record;
    outcome
}

/// Runs `work` on a [`background`] thread and waits for it (a step's reads of every
/// merchant, off the async threads).
pub(crate) async fn in_background<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    background(work)
        .await
        .map_err(|e| Error::Storage(format!("the day-end thread failed: {e}")))?
}

/// `date`'s day-end record: hot, or in the date's record segment once shelved (its
/// `shelved` figures then read from the segment's trailer).
pub fn load(store: &storage::Store, date: BusinessDate) -> Result<Option<DayEnd>> {
    let key = records::day_end_key(date);
    if let Some(d) = records::read::<DayEnd>(store, &key)? {
        return Ok(Some(d));
    }
    let storage_error = |e: storage::StoreError| Error::Storage(e.to_string());
    let Some(bytes) = store.shelved_at(date, &key).map_err(storage_error)? else {
        return Ok(None);
    };
    let mut d: DayEnd = records::decode(&key, &bytes)?;
    if let (Some(s), Some(info)) = (
        d.shelved.0.as_mut(),
        store.shelf_info(date).map_err(storage_error)?,
    ) {
        s.records = info.records;
        s.bytes = info.bytes;
        s.sha256 = info.sha256;
    }
    Ok(Some(d))
}

/// The day-end of `date_text`; 404 when that date has none.
pub fn get(state: &Platform, date_text: &str) -> Result<DayEndView> {
    let date = BusinessDate::parse(date_text)
        .ok_or_else(|| Error::not_found(format!("no day-end for {date_text:?}")))?;
    load(state.store()?, date)?
        .map(|d| view(&d))
        .ok_or_else(|| Error::not_found(format!("no day-end for {date}")))
}

/// Closes the open business date (or answers the day-end of a date already closed, rerunning
/// it if it failed). Answers whether a day-end is still to run (202) or done (200), and the
/// body.
pub async fn start(
    state: &Arc<Platform>,
    body: StartDayEnd,
    idem: Option<&Guard<'_>>,
) -> Result<(bool, Vec<u8>)> {
    let ledger = state.ledger()?;
    let store = state.store()?;
    let _one = state.day_end_admin.lock().await;
    let period = state.period()?;
    let date = match body.date.as_deref() {
        None => period.open,
        Some(text) => BusinessDate::parse(text).ok_or_else(|| {
            Error::invalid(
                "invalid_parameter",
                format!("date must be YYYY-MM-DD, got {text:?}"),
            )
            .with_param("date")
        })?,
    };
    if date != period.open {
        // A date already closed: its day-end as it stands, rerun if it failed.
        let Some(existing) = load(store, date)? else {
            return Err(Error::conflict(
                "not_open_date",
                format!("{date} is not the open business date {}", period.open),
            )
            .with_param("date"));
        };
        if existing.status == DayEndStatus::Failed {
            spawn(Arc::clone(state), date);
        }
        let running = existing.status != DayEndStatus::Done;
        let answer = serde_json::to_vec(&view(&existing)).expect("a day-end view serializes");
        if let Some(g) = idem {
            ledger.write_records(vec![g.record(&answer)]).await?;
        }
        return Ok((running, answer));
    }
    // One day-end at a time: the next day's checks start from this one's snapshot.
    if let Some(previous) = period.closed_through {
        if let Some(p) = load(store, previous)? {
            if p.status == DayEndStatus::Running {
                return Err(Error::conflict(
                    "day_end_running",
                    format!("the day-end of {previous} is still running"),
                ));
            }
        }
    }
    let from_seq = match period.closed_through {
        Some(previous) => load(store, previous)?.map_or(1, |p| p.switch_seq + 1),
        None => 1,
    };
    let mut record = DayEnd {
        date,
        status: DayEndStatus::Running,
        from_seq,
        switch_seq: 0,
        steps: STEPS
            .iter()
            .map(|name| DayEndStep {
                name: (*name).to_string(),
                status: DayEndStatus::Pending,
                detail: String::new(),
            })
            .collect(),
        accounts: 0,
        postings: 0,
        gl: Vec::new(),
        snapshot_sha256: None,
        started_at_ns: now_ns(),
        finished_at_ns: None,
        archived: None,
        shelved: records::Tail(None),
    };
    let key = records::day_end_key(date);
    // The answer is the record as the switch writes it (the switch done, its position not
    // known before the write: `switch_seq` null), and its idempotency record goes in the
    // same unit: a retry after a crash at any point answers this, never closing another
    // date.
    record.steps[0].status = DayEndStatus::Done;
    record.steps[0].detail = format!(
        "entries from {from_seq} on are dated {date} up to the switch, later ones {}",
        date.next().map_or("-".into(), |d| d.to_string())
    );
    let answer = serde_json::to_vec(&view(&record)).expect("a day-end view serializes");
    let mut recs = vec![(key.clone(), records::encode(&record))];
    recs.extend(idem.map(|g| g.record(&answer)));
    let seq = ledger
        .switch_date(date, recs)
        .await?
        .map_err(crate::accounts::rejected)?;
    stall_if_asked("switch").await;
    record.switch_seq = seq;
    record.steps[0].detail = format!(
        "journal entry {seq}: entries {from_seq}..{} are dated {date}, later ones {}",
        seq - 1,
        date.next().map_or("-".into(), |d| d.to_string())
    );
    ledger
        .write_records(vec![(key, records::encode(&record))])
        .await?;
    tracing::info!(date = %date, switch_seq = seq, "day-end started: the business date switched");
    spawn(Arc::clone(state), date);
    Ok((true, answer))
}

/// Runs (or resumes) the steps of `date`'s day-end in the background.
pub fn spawn(state: Arc<Platform>, date: BusinessDate) {
    let span = tracing::info_span!("day_end", date = %date);
    actix_rt::spawn(tracing::Instrument::instrument(
        async move {
            if let Err(e) = run(&state, date).await {
                tracing::error!(error = %e, "day-end stopped; it resumes on the next start or POST");
            }
        },
        span,
    ));
}

/// Day-ends a restart found unfinished: resumed in the background. Answers how many.
pub fn resume(state: &Arc<Platform>, store: &storage::Store) -> std::result::Result<usize, String> {
    let mut running = Vec::new();
    store
        .for_each_aux_with_prefix(records::prefix::DAY_END, usize::MAX, |k, v| {
            let d: DayEnd = records::decode(k, v)?;
            if d.status == DayEndStatus::Running {
                running.push(d.date);
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    for date in &running {
        spawn(Arc::clone(state), *date);
    }
    if let Some(d) = last(store).map_err(|e| e.to_string())? {
        if d.status != DayEndStatus::Running {
            crate::metrics::day_end_outcome(
                d.status == DayEndStatus::Failed,
                d.finished_at_ns.unwrap_or(0),
            );
        }
    }
    Ok(running.len())
}

/// The last day-end recorded (the latest date), if any.
pub fn last(store: &storage::Store) -> Result<Option<DayEnd>> {
    let mut last = None;
    store.for_each_aux_with_prefix(records::prefix::DAY_END, usize::MAX, |k, v| {
        last = Some(records::decode::<DayEnd>(k, v)?);
        Ok(())
    })?;
    Ok(last)
}

/// The last day-end as answered (for the ops page).
pub fn last_view(state: &Platform) -> Result<Option<DayEndView>> {
    Ok(last(state.store()?)?.map(|d| view(&d)))
}

/// Why a step did not finish: its checks failed (recorded, the next steps still run), or it
/// could not run (recorded; the day-end stops and resumes later).
enum StepError {
    Failed(String),
    Stopped(Error),
}

impl From<Error> for StepError {
    fn from(e: Error) -> StepError {
        StepError::Stopped(e)
    }
}

impl From<actors::LedgerError> for StepError {
    fn from(e: actors::LedgerError) -> StepError {
        StepError::Stopped(e.into())
    }
}

impl From<storage::StoreError> for StepError {
    fn from(e: storage::StoreError) -> StepError {
        StepError::Stopped(e.into())
    }
}

async fn save(state: &Platform, d: &DayEnd) -> Result<()> {
    state
        .ledger()?
        .write_records(vec![(records::day_end_key(d.date), records::encode(d))])
        .await?;
    Ok(())
}

async fn run(state: &Arc<Platform>, date: BusinessDate) -> Result<()> {
    let store = Arc::clone(state.store()?);
    let mut d = load(&store, date)?
        .ok_or_else(|| Error::Storage(format!("the day-end record of {date} is missing")))?;
    if d.status == DayEndStatus::Failed {
        d.status = DayEndStatus::Running;
        d.finished_at_ns = None;
    }
    if d.switch_seq == 0 {
        // The switch is durable (this record was written with it) but a crash came before
        // its position was recorded: find it.
        let s = Arc::clone(&store);
        let (from, date) = (d.from_seq, d.date);
        d.switch_seq = background(move || find_switch(&s, from, date))
            .await
            .map_err(|e| Error::Storage(format!("the search thread failed: {e}")))??;
        d.steps[0].detail = format!("journal entry {} (found after a restart)", d.switch_seq);
        save(state, &d).await?;
    }
    // Steps run in order; a check that fails is recorded and the rest still run.
    for i in 0..d.steps.len() {
        if d.steps[i].status == DayEndStatus::Done {
            continue;
        }
        let name = d.steps[i].name.clone();
        d.steps[i].status = DayEndStatus::Running;
        d.steps[i].detail.clear();
        save(state, &d).await?;
        stall_if_asked(&name).await;
        let started = std::time::Instant::now();
        let outcome = match name.as_str() {
            "wait_in_flight" => off_thread(&store, &mut d, |s, d| wait_in_flight(s, d)).await,
            "snapshot_accounts" => snapshot_accounts(state, &store, &mut d).await,
            "snapshot_gl" => off_thread(&store, &mut d, snapshot_gl).await,
            "checks" => off_thread(&store, &mut d, |s, d| checks(s, d)).await,
            "hash" => off_thread(&store, &mut d, hash).await,
            "report" => report(state, &store, &d).await,
            "settlement_maturity" => crate::settlement::maturity_step(state, &store, d.date)
                .await
                .map_err(StepError::Stopped),
            "settlement_batches" => crate::settlement::batches_step(state, &store, d.date)
                .await
                .map_err(StepError::Stopped),
            "channel_settlement" => {
                crate::positions::channel_settlement_step(state, &store, d.date)
                    .await
                    .map_err(StepError::Stopped)
            }
            // Coupon stocks past their validity stop, their unspent budget returned (before
            // the coverage check, which counts coupon budgets as owed).
            "coupon_expiry" => crate::coupons::expiry_step(state)
                .await
                .map_err(StepError::Stopped),
            // Credit lines: interest and late fees of the date, bills on their billing date.
            "credit" => crate::credit::day_end_step(state, d.date)
                .await
                .map_err(StepError::Stopped),
            // The coverage check: the date's positions are frozen either way; a shortfall
            // fails the step (and so the day-end), and the rest still runs.
            "positions" => match crate::positions::positions_step(state, &store, d.date).await {
                Ok((detail, true)) => Ok(detail),
                Ok((detail, false)) => Err(StepError::Failed(detail)),
                Err(e) => Err(StepError::Stopped(e)),
            },
            // The statements of the date before (ready the day after their date), matched
            // before maturity so that what they dispute is held back from settlement; one
            // still missing is retried in the background, and the day-end goes on.
            "reconciliation" => crate::recon::day_end_step(state, d.date)
                .await
                .map_err(StepError::Stopped),
            "archive" => archive(state, &store, &d).await,
            other => Err(StepError::Failed(format!("unknown step {other}"))),
        };
        let step = &mut d.steps[i];
        match outcome {
            Ok(detail) => {
                step.status = DayEndStatus::Done;
                step.detail = format!("{detail} ({:.1} s)", started.elapsed().as_secs_f64());
                tracing::info!(step = %name, ms = started.elapsed().as_millis() as u64, detail = %step.detail, "day-end step done");
            }
            Err(StepError::Failed(detail)) => {
                step.status = DayEndStatus::Failed;
                step.detail = detail;
                tracing::error!(step = %name, detail = %step.detail, "day-end check failed");
            }
            Err(StepError::Stopped(e)) => {
                step.status = DayEndStatus::Failed;
                step.detail = format!("could not run: {e}");
                d.status = DayEndStatus::Failed;
                d.finished_at_ns = Some(now_ns());
                save(state, &d).await?;
                crate::metrics::day_end_outcome(true, now_ns());
                return Err(e);
            }
        }
        save(state, &d).await?;
    }
    let failed = d.steps.iter().any(|s| s.status == DayEndStatus::Failed);
    d.status = if failed {
        DayEndStatus::Failed
    } else {
        DayEndStatus::Done
    };
    let finished = now_ns();
    d.finished_at_ns = Some(finished);
    save(state, &d).await?;
    crate::metrics::day_end_outcome(failed, finished);
    tracing::info!(status = d.status.name(), hash = ?d.snapshot_sha256.map(|h| hex(&h)), "day-end finished");
    Ok(())
}

/// The position of the switch that closed `date`, searched from `from`.
fn find_switch(store: &storage::Store, from: u64, date: BusinessDate) -> Result<u64> {
    let mut seq = from;
    loop {
        let chunk = store.entries(seq, 4_096)?;
        let Some(last) = chunk.last().map(|e| e.seq) else {
            return Err(Error::Storage(format!(
                "the journal holds no switch closing {date} after entry {from}"
            )));
        };
        for e in &chunk {
            let closes = e
                .effects
                .iter()
                .any(|x| matches!(x, Effect::DateSwitched { from, .. } if *from == date));
            if closes {
                return Ok(e.seq);
            }
        }
        seq = last + 1;
    }
}

/// Fault injection for the crash tests (`RONGPAY_TEST_DAY_END_STALL=<step>`): once the
/// step is recorded as running (for `switch`: once the switch is durable), wait forever, so
/// a test can kill -9 payd inside it. Never set in production.
pub(crate) async fn stall_if_asked(step: &str) {
    if std::env::var("RONGPAY_TEST_DAY_END_STALL").is_ok_and(|s| s == step) {
        tracing::warn!(
            step,
            "day-end stalled on purpose (RONGPAY_TEST_DAY_END_STALL)"
        );
        std::future::pending::<()>().await;
    }
}

/// The switch is where the journal says, and every entry dated `D` comes before it.
fn wait_in_flight(store: &storage::Store, d: &DayEnd) -> std::result::Result<String, StepError> {
    let switch = store.entries(d.switch_seq, 1)?;
    let is_switch = switch.first().is_some_and(|e| {
        e.seq == d.switch_seq
            && e.effects
                .iter()
                .any(|x| matches!(x, Effect::DateSwitched { from, .. } if *from == d.date))
    });
    if !is_switch {
        return Err(StepError::Failed(format!(
            "journal entry {} is not the switch closing {}",
            d.switch_seq, d.date
        )));
    }
    // Entries after the switch: none dated D or earlier (a bounded look: the coordinator
    // dates in order, so the first ones would show it).
    for e in store.entries(d.switch_seq + 1, 4_096)? {
        for x in &e.effects {
            if let Effect::Posted(t) = x {
                if t.accounting_date.is_some_and(|a| a <= d.date) {
                    return Err(StepError::Failed(format!(
                        "entry {} after the switch is dated {}",
                        e.seq,
                        t.accounting_date.map_or("-".into(), |a| a.to_string())
                    )));
                }
            }
        }
    }
    Ok(format!(
        "entries {}..{} durable before the switch",
        d.from_seq,
        d.switch_seq.saturating_sub(1)
    ))
}

/// The previous day's account days (in id order), if it had a day-end.
fn previous_days(store: &storage::Store, date: BusinessDate) -> Result<Option<Vec<AccountDay>>> {
    let Some(previous) = date.minus_days(1) else {
        return Ok(None);
    };
    if load(store, previous)?.is_none() {
        return Ok(None);
    }
    Ok(Some(account_days(store, previous)?))
}

/// The account days of `date`'s snapshot, in id order.
pub fn account_days(store: &storage::Store, date: BusinessDate) -> Result<Vec<AccountDay>> {
    let prefix = records::account_day_prefix(date);
    let mut out = Vec::new();
    store.for_each_aux_with_prefix(&prefix, usize::MAX, |k, v| {
        out.push(records::decode::<AccountDay>(k, v)?);
        Ok(())
    })?;
    Ok(out)
}

/// How often a long step reports its progress.
pub const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// How far the snapshot's computation got: journal entries read, accounts read.
#[derive(Default)]
struct Progress {
    entries: AtomicU64,
    accounts: AtomicU64,
}

impl Progress {
    fn describe(&self, entries: u64) -> String {
        format!(
            "read {} of {entries} journal entries, {} accounts",
            self.entries.load(Ordering::Relaxed).min(entries),
            self.accounts.load(Ordering::Relaxed)
        )
    }
}

/// Every account's day, computed off the async threads, then written in small units.
async fn snapshot_accounts(
    state: &Platform,
    store: &Arc<storage::Store>,
    d: &mut DayEnd,
) -> std::result::Result<String, StepError> {
    let (from, to, date) = (d.from_seq, d.switch_seq, d.date);
    let s = Arc::clone(store);
    let progress = Arc::new(Progress::default());
    let p = Arc::clone(&progress);
    let mut work = background(move || {
        let previous = previous_days(&s, date)?.unwrap_or_default();
        compute_days(&s, from, to, &previous, &p)
    });
    // Progress, every few seconds, in the record (GET /v1/gl/day_end/{date}) and the log.
    let step = d
        .steps
        .iter()
        .position(|s| s.name == "snapshot_accounts")
        .expect("a day-end has this step");
    let entries = to.saturating_sub(from);
    let computed = loop {
        match actix_rt::time::timeout(PROGRESS_EVERY, &mut work).await {
            Ok(done) => break done,
            Err(_) => {
                let detail = progress.describe(entries);
                tracing::info!(step = "snapshot_accounts", progress = %detail, "day-end progress");
                d.steps[step].detail = detail;
                save(state, d).await?;
            }
        }
    };
    let (days, postings) =
        computed.map_err(|e| Error::Storage(format!("the snapshot thread failed: {e}")))??;
    let ledger = state.ledger()?;
    let mut written = 0;
    for chunk in days.chunks(SNAPSHOT_RECORDS_PER_UNIT) {
        let recs = chunk
            .iter()
            .map(|a| {
                (
                    records::account_day_key(date, a.account),
                    records::encode(a),
                )
            })
            .collect();
        ledger.write_records(recs).await?;
        written += chunk.len();
        if written % (SNAPSHOT_RECORDS_PER_UNIT * 256) == 0 {
            d.steps[step].detail = format!("wrote {written} of {} account days", days.len());
            tracing::info!(step = "snapshot_accounts", progress = %d.steps[step].detail, "day-end progress");
            save(state, d).await?;
        }
    }
    d.accounts = days.len() as u64;
    d.postings = postings;
    Ok(format!("{} accounts, {postings} postings", days.len()))
}

/// Every account's day over the journal positions `from..to` (the switch at `to`): its
/// turnover from those entries, its closing as of `to`, its opening the `previous` day's
/// closing (zero for an account that did not exist, or on the first day).
fn compute_days(
    store: &storage::Store,
    from: u64,
    to: u64,
    previous: &[AccountDay],
    progress: &Progress,
) -> Result<(Vec<AccountDay>, u64)> {
    // The date's turnover per account, from its journal range.
    let mut turnover: HashMap<AccountId, (i128, i128, u64)> = HashMap::new();
    let mut postings = 0u64;
    let mut seq = from;
    while seq < to {
        let chunk = store.entries(seq, 4_096)?;
        let Some(last) = chunk.last().map(|e| e.seq) else {
            break;
        };
        for e in chunk.iter().filter(|e| e.seq < to) {
            for x in &e.effects {
                if let Effect::Posted(t) = x {
                    for p in &t.postings {
                        let slot = turnover.entry(p.account).or_default();
                        if p.amount < 0 {
                            slot.0 -= i128::from(p.amount);
                        } else {
                            slot.1 += i128::from(p.amount);
                        }
                        slot.2 += 1;
                        postings += 1;
                    }
                }
            }
        }
        seq = last + 1;
        progress
            .entries
            .store(seq.saturating_sub(from), Ordering::Relaxed);
    }
    let mut prev = previous.iter().peekable();
    let mut days = Vec::new();
    store.for_each_account_at(to, |a| {
        // The previous day's closing (accounts in id order on both sides).
        while prev.next_if(|p| p.account < a.id).is_some() {}
        let opening = prev.next_if(|p| p.account == a.id).map_or(0, |p| p.closing);
        let (debit, credit, count) = turnover.get(&a.id).copied().unwrap_or_default();
        progress.accounts.fetch_add(1, Ordering::Relaxed);
        days.push(AccountDay {
            account: a.id,
            gl: a.gl,
            currency: a.currency,
            opening,
            debit,
            credit,
            closing: a.balance,
            postings: count,
        });
        Ok(())
    })?;
    Ok((days, postings))
}

/// The GL's figures of the date, frozen in the record.
fn snapshot_gl(store: &storage::Store, d: &mut DayEnd) -> std::result::Result<String, StepError> {
    d.gl = crate::gl::day_rows(store, d.date)?;
    Ok(format!(
        "{} GL accounts with a balance or turnover",
        d.gl.len()
    ))
}

fn checks(store: &storage::Store, d: &DayEnd) -> std::result::Result<String, StepError> {
    let accounts = account_days(store, d.date)?;
    let previous = previous_days(store, d.date)?;
    let opening =
        d.gl.iter()
            .map(|r| ((r.currency, r.gl), r.opening))
            .collect();
    let cut = store.gl_since(d.date)?;
    let turnover = cut
        .days
        .into_iter()
        .find(|(date, _)| *date == d.date)
        .map(|(_, t)| t)
        .unwrap_or_default();
    let check = check_day(&accounts, previous.as_deref(), &opening, &turnover);
    let balanced = check.trial_balances.iter().filter(|t| t.balanced).count();
    if check.passed() {
        return Ok(format!(
            "{} accounts: closing = opening + turnover{}; control accounts = sub-ledgers; {balanced} trial balance(s) balanced",
            accounts.len(),
            if previous.is_some() { "; each opens at its last close" } else { "" }
        ));
    }
    let shown: Vec<String> = check
        .failures
        .iter()
        .take(FAILURES_SHOWN)
        .map(describe)
        .collect();
    Err(StepError::Failed(format!(
        "{} check(s) failed: {}",
        check.failures.len(),
        shown.join("; ")
    )))
}

fn describe(f: &CheckFailure) -> String {
    match f {
        CheckFailure::ClosingMismatch {
            account,
            expected,
            closing,
        } => format!("{account} closes at {closing}, opening + turnover is {expected}"),
        CheckFailure::OpeningMismatch {
            account,
            previous_closing,
            opening,
        } => format!("{account} opens at {opening}, closed at {previous_closing}"),
        CheckFailure::MissingAccount { account } => format!("{account} is missing"),
        CheckFailure::Unordered { account } => format!("{account} out of order"),
        CheckFailure::ControlMismatch {
            gl,
            currency,
            sub_ledger,
            control,
        } => format!(
            "GL {} {currency}: control {control}, sub-ledger {sub_ledger}",
            gl.code()
        ),
        CheckFailure::Unbalanced { currency } => format!("{currency} trial balance unbalanced"),
        CheckFailure::Overflow => "a sum overflows".to_string(),
    }
}

fn hash(store: &storage::Store, d: &mut DayEnd) -> std::result::Result<String, StepError> {
    let previous = match d.date.minus_days(1) {
        Some(p) => load(store, p)?.and_then(|p| p.snapshot_sha256),
        None => None,
    };
    let accounts = account_days(store, d.date)?;
    let h = snapshot_hash(&previous.unwrap_or([0; 32]), d.date, &accounts);
    d.snapshot_sha256 = Some(h);
    Ok(format!(
        "sha256 {} over {} accounts, chained to {}",
        hex(&h),
        accounts.len(),
        previous.map_or("nothing (the first day-end)".into(), |p| hex(&p))
    ))
}

/// What `payd verify` found of the day-ends: each closed day's snapshot rebuilt from the
/// journal alone, day after day from the first, and its hash compared with the stored one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rebuilt {
    pub date: BusinessDate,
    pub accounts: usize,
    pub matches: bool,
}

/// Rebuilds every finished day-end's snapshot from the journal (each day opening at the
/// rebuilt previous day's closing) and compares its chained hash with the stored one.
pub fn rebuild_hashes(store: &storage::Store) -> Result<Vec<Rebuilt>> {
    // The shelved dates' records first (they are the oldest), then the hot ones.
    let mut ends = Vec::new();
    for date in store.shelved_dates() {
        if let Some(d) = load(store, date)? {
            ends.push(d);
        }
    }
    store.for_each_aux_with_prefix(records::prefix::DAY_END, usize::MAX, |k, v| {
        ends.push(records::decode::<DayEnd>(k, v)?);
        Ok(())
    })?;
    ends.sort_by_key(|d| d.date);
    ends.dedup_by_key(|d| d.date);
    let mut out = Vec::new();
    let mut previous: Vec<AccountDay> = Vec::new();
    let mut previous_hash = [0u8; 32];
    for d in ends {
        let Some(stored) = d.snapshot_sha256 else {
            break;
        };
        let (days, _) = compute_days(
            store,
            d.from_seq,
            d.switch_seq,
            &previous,
            &Progress::default(),
        )?;
        let h = snapshot_hash(&previous_hash, d.date, &days);
        out.push(Rebuilt {
            date: d.date,
            accounts: days.len(),
            matches: h == stored,
        });
        previous = days;
        previous_hash = stored;
    }
    Ok(out)
}

/// `day_end_at` as a local time: `HH:MM`, 24-hour.
pub fn parse_day_end_at(text: &str) -> std::result::Result<jiff::civil::Time, String> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b[r.clone()]
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| text[r].parse::<i8>().ok())
            .flatten()
    };
    let parsed = (b.len() == 5 && b[2] == b':')
        .then(|| Some((digits(0..2)?, digits(3..5)?)))
        .flatten();
    match parsed {
        Some((h, m)) if (0..24).contains(&h) && (0..60).contains(&m) => {
            jiff::civil::Time::new(h, m, 0, 0).map_err(|e| e.to_string())
        }
        _ => Err(format!("{text:?} is not a time HH:MM (00:00 to 23:59)")),
    }
}

/// When the day-end of `date` is due at `at` in `zone`: the first `at` after noon of `date`.
pub fn due(
    date: BusinessDate,
    at: jiff::civil::Time,
    zone: &jiff::tz::TimeZone,
) -> std::result::Result<jiff::Timestamp, String> {
    let day: jiff::civil::Date = date
        .to_string()
        .parse()
        .map_err(|e: jiff::Error| e.to_string())?;
    let day = if at.hour() >= 12 {
        day
    } else {
        day.tomorrow().map_err(|e| e.to_string())?
    };
    zone.to_timestamp(day.to_datetime(at))
        .map_err(|e| e.to_string())
}

/// How often the scheduler looks at the clock.
pub const SCHEDULE_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs the day-end by itself once the open date's `day_end_at` has passed (checked every
/// [`SCHEDULE_POLL`]): the same flow as `POST /v1/gl/day_end`, so a date closes once however
/// many times this fires (the open date moves with the switch).
pub fn schedule(state: Arc<Platform>, at: jiff::civil::Time) {
    actix_rt::spawn(async move {
        let mut tick = actix_rt::time::interval(SCHEDULE_POLL);
        loop {
            tick.tick().await;
            let Some(period) = state.ledger().ok().and_then(|l| l.period()) else {
                continue;
            };
            let when = match due(period.open, at, &state.settings.timezone) {
                Ok(when) => when,
                Err(e) => {
                    tracing::error!(error = %e, "cannot place the day-end in time");
                    continue;
                }
            };
            if jiff::Timestamp::now() < when {
                continue;
            }
            match start(&state, StartDayEnd::default(), None).await {
                Ok(_) => {
                    tracing::info!(date = %period.open, "day-end started by the schedule (day_end_at)")
                }
                // The previous day-end still runs: try again at the next tick.
                Err(e) => tracing::warn!(error = %e, "scheduled day-end not started"),
            }
        }
    });
}

/// The date's daily reports, frozen.
async fn report(
    state: &Platform,
    store: &Arc<storage::Store>,
    d: &DayEnd,
) -> std::result::Result<String, StepError> {
    let (s, date, currency) = (Arc::clone(store), d.date, state.settings.currency);
    let (recs, summary) = background(move || crate::reports::freeze(&s, date, currency))
        .await
        .map_err(|e| Error::Storage(format!("the report thread failed: {e}")))??;
    let ledger = state.ledger()?;
    for chunk in recs.chunks(SNAPSHOT_RECORDS_PER_UNIT) {
        ledger.write_records(chunk.to_vec()).await?;
    }
    Ok(summary)
}

/// Archives every closed date older than `archive_after_days` (0: never) whose day-end is
/// done, oldest first.
async fn archive(
    state: &Platform,
    store: &Arc<storage::Store>,
    d: &DayEnd,
) -> std::result::Result<String, StepError> {
    let keep = state.settings.archive_after_days;
    if keep == 0 {
        return Ok("archiving is off (archive_after_days = 0)".into());
    }
    let Some(cutoff) = d.date.minus_days(keep) else {
        return Ok("nothing old enough".into());
    };
    let mut due = Vec::new();
    store.for_each_aux_with_prefix(records::prefix::DAY_END, usize::MAX, |k, v| {
        let e: DayEnd = records::decode(k, v)?;
        if e.date <= cutoff && e.archived.is_none() && e.status == DayEndStatus::Done {
            due.push(e);
        }
        Ok(())
    })?;
    let mut done = Vec::new();
    for mut e in due {
        let s = Arc::clone(store);
        let (date, range, hash) = (
            e.date,
            (e.from_seq, e.switch_seq),
            e.snapshot_sha256.unwrap_or([0; 32]),
        );
        let info = background(move || -> Result<_> {
            let info = s.archive_day(date, range, hash)?;
            // The account snapshot of an archived date: rebuilt from the archive when asked.
            s.delete_aux_prefix(&records::account_day_prefix(date))?;
            Ok(info)
        })
        .await
        .map_err(|e| Error::Storage(format!("the archive thread failed: {e}")))??;
        e.archived = Some(records::ArchivedSegment {
            file: storage::archive::file_name(date),
            records: info.records,
            bytes: info.bytes,
            sha256: info.sha256,
            first_key: info.header.first_key,
            end_key: info.header.end_key,
        });
        save(state, &e).await?;
        tracing::info!(date = %date, records = info.records, bytes = info.bytes, "day archived");
        done.push(format!(
            "{date} ({} records, {} bytes)",
            info.records, info.bytes
        ));
    }
    // The final business records of dates past the refund window too (`crate::shelf`).
    let mut shelved = Vec::new();
    if let Some(horizon) = crate::shelf::horizon(d.date, keep, state.settings.refund_window_days) {
        let mut due = Vec::new();
        store.for_each_aux_with_prefix(records::prefix::DAY_END, usize::MAX, |k, v| {
            let e: DayEnd = records::decode(k, v)?;
            if e.date <= horizon && e.shelved.0.is_none() && e.status == DayEndStatus::Done {
                due.push(e);
            }
            Ok(())
        })?;
        for e in due {
            let s = Arc::clone(store);
            let day = e.clone();
            // The date's day-end record goes into the segment too (with what its shelving
            // did): the hot store keeps no record per closed date once it is shelved.
            let done_shelf = background(move || crate::shelf::shelve_day(&s, &day))
                .await
                .map_err(|e| Error::Storage(format!("the shelving thread failed: {e}")))??;
            let info = &done_shelf.info;
            tracing::info!(date = %e.date, records = info.records, transfers = done_shelf.transfers, bytes = info.bytes, "day's records shelved");
            shelved.push(format!(
                "{} ({} records, {} dedup keys, {} bytes)",
                e.date, info.records, done_shelf.transfers, info.bytes
            ));
        }
    }
    let mut out = if done.is_empty() {
        format!("nothing to archive on or before {cutoff}")
    } else {
        format!("archived {}", done.join(", "))
    };
    if !shelved.is_empty() {
        out.push_str(&format!("; records shelved of {}", shelved.join(", ")));
    }
    Ok(out)
}

/// The newest finished day-end whose account snapshot is still kept: its date, its switch's
/// position and its accounts (`payd verify` starts there).
pub fn last_snapshot(
    store: &storage::Store,
) -> Result<Option<(BusinessDate, u64, Vec<AccountDay>)>> {
    let mut newest = None;
    store.for_each_aux_with_prefix(records::prefix::DAY_END, usize::MAX, |k, v| {
        let d: DayEnd = records::decode(k, v)?;
        let snapshotted = d
            .steps
            .iter()
            .any(|s| s.name == "snapshot_accounts" && s.status == DayEndStatus::Done);
        if d.archived.is_none() && snapshotted && d.switch_seq != 0 {
            newest = Some((d.date, d.switch_seq));
        }
        Ok(())
    })?;
    let Some((date, seq)) = newest else {
        return Ok(None);
    };
    Ok(Some((date, seq, account_days(store, date)?)))
}

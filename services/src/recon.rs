//! Reconciliation (对账, `../shared/FUNDS.md` "Reconciliation", issue #17): each channel's
//! statement of a business date matched against what the platform booked with it.
//!
//! A run, for channel C and date D, in one order per channel (D after D − 1):
//! 1. the statement is parsed strictly (`engine::statement`); a file that does not parse
//!    or whose totals disagree is refused with its line and changes nothing;
//! 2. the file is kept (lz4, with its SHA-256) with the run marked `running`, durably;
//! 3. the platform's items with C of date D (card charges and refunds: our request ids,
//!    amounts, the channel's fees) and C's pool (items earlier statements did not list)
//!    are matched against the rows (`engine::recon::reconcile`);
//! 4. in one journal entry: each mismatch's suspense (long GL 2901, short GL 1901, against
//!    our position at C, GL 1101), the mismatches, the holds they put on the merchants'
//!    settlement, the new pool and the run marked `done`.
//!
//! A crash between 2 and 4 leaves a `running` run: the restart runs 3–4 again from the kept
//! file and the untouched pool, so it completes once with the same result. The same file
//! again (same SHA-256) answers the same run and changes nothing.

use std::collections::HashMap;
use std::sync::Arc;

use crate::records::hex;
use engine::gl::BusinessDate;
use engine::money::format_minor;
use engine::recon::{reconcile, Item, ItemStatus, Mismatch, MismatchType};
use engine::statement::{Format, RowKind, Statement};
use engine::{AccountId, Currency, PlatformRole, Posting, Reject, Transfer, TransferKind};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::audit::Actor;
use crate::platform::{new_id, now_ns, Platform};
use crate::records::{
    self, MismatchStatus, Payment, PaymentStatus, PoolItem, ReconChannel, ReconMismatch, ReconRun,
    Refund, RunStatus, StatementFile,
};
use crate::{Error, Result};

/// Largest statement file accepted (bytes): 1M rows of either layout fit well inside.
pub const STATEMENT_BYTES_MAX: usize = 256 << 20;
/// Mismatches a run's view lists (the rest: `GET /v1/reconciliation/mismatches?run=`).
pub const RUN_VIEW_MISMATCHES_MAX: usize = 1_000;
/// Runs and mismatches a list answers at most.
pub const LIST_MAX: usize = 1_000;
/// Fetch attempts per statement within one try (1 s, then 2 s apart).
const FETCH_ATTEMPTS: u32 = 3;

/// `rec_…` text of a run id.
pub fn run_id_text(id: u128) -> String {
    engine::ids::prefixed_hex("rec_", id)
}

/// `rcm_…` text of mismatch `n` of run `run`.
pub fn mismatch_id_text(run: u128, n: u32) -> String {
    format!("rcm_{run:032x}{n:08x}")
}

fn parse_mismatch_id(text: &str) -> Option<(u128, u32)> {
    let hex = text.strip_prefix("rcm_")?;
    if hex.len() != 40 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    Some((
        u128::from_str_radix(&hex[..32], 16).ok()?,
        u32::from_str_radix(&hex[32..], 16).ok()?,
    ))
}

fn format_code(f: Format) -> u8 {
    match f {
        Format::Alipay => 0,
        Format::Wechat => 1,
    }
}

fn format_of(code: u8) -> Format {
    if code == 1 {
        Format::Wechat
    } else {
        Format::Alipay
    }
}

const KINDS: [MismatchType; 6] = [
    MismatchType::MissingOnPlatform,
    MismatchType::MissingAtChannel,
    MismatchType::AmountMismatch,
    MismatchType::StatusMismatch,
    MismatchType::FeeMismatch,
    MismatchType::Duplicate,
];

fn kind_code(k: MismatchType) -> u8 {
    KINDS.iter().position(|x| *x == k).unwrap_or(0) as u8
}

fn kind_of(code: u8) -> MismatchType {
    KINDS
        .get(usize::from(code))
        .copied()
        .unwrap_or(MismatchType::MissingOnPlatform)
}

fn status_code(s: ItemStatus) -> u8 {
    match s {
        ItemStatus::Succeeded => 0,
        ItemStatus::Processing => 1,
        ItemStatus::Failed => 2,
    }
}

fn status_name(code: u8) -> &'static str {
    match code {
        0 => "succeeded",
        1 => "processing",
        _ => "failed",
    }
}

fn item_status(s: PaymentStatus) -> ItemStatus {
    match s {
        PaymentStatus::Succeeded => ItemStatus::Succeeded,
        // Two-phase payments are balance payments, never a channel's items; mapped for
        // completeness: held is not yet charged, voided never was.
        PaymentStatus::Processing | PaymentStatus::Authorized => ItemStatus::Processing,
        PaymentStatus::Failed | PaymentStatus::Canceled => ItemStatus::Failed,
    }
}

// ---------------------------------------------------------------------------------------
// Views.

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MatchedView {
    count: u64,
    /// Σ of the matched items' amounts (refunds count positive).
    amount: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SuspenseView {
    /// Booked to suspense (long, GL 2901): the channel holds more than we booked.
    long: String,
    /// Booked to suspense (short, GL 1901): the channel holds less than we booked.
    short: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResolutionView {
    action: String,
    note: String,
    proposed_by: String,
    proposed_at: String,
    approved_by: Option<String>,
    resolved_at: Option<String>,
    /// The suspense it clears.
    amount: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MismatchView {
    /// `rcm_…`.
    id: String,
    run_id: String,
    channel: String,
    /// The statement's date.
    date: String,
    /// `missing_on_platform`, `missing_at_channel`, `amount_mismatch`, `status_mismatch`,
    /// `fee_mismatch` or `duplicate`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// `charge` or `refund`.
    item: &'static str,
    /// Our charge request id at the channel.
    out_trade_no: String,
    /// Our refund request id (refunds).
    out_refund_no: Option<String>,
    channel_reference: Option<String>,
    payment_id: Option<String>,
    refund_id: Option<String>,
    platform_amount: Option<String>,
    channel_amount: Option<String>,
    platform_fee: Option<String>,
    channel_fee: Option<String>,
    /// `succeeded`, `processing`, `failed`; null when the platform has no item.
    platform_status: Option<&'static str>,
    /// `succeeded` when the statement lists it; null when it does not.
    channel_status: Option<&'static str>,
    /// Booked to suspense at once: positive long (the channel holds more), negative short.
    suspense: String,
    /// Held back from the merchant's settlement until resolved.
    held: String,
    /// `open`, `proposed` (waiting for a second operator) or `resolved`.
    status: &'static str,
    resolution: Option<ResolutionView>,
    created_at: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunView {
    /// `rec_…`.
    id: String,
    channel: String,
    date: String,
    /// `running` (booked once it completes, also after a restart) or `done`.
    status: &'static str,
    statement_sha256: String,
    /// `fetched` by the day-end, or `uploaded by …`.
    source: String,
    /// Detail rows on the statement.
    rows: u64,
    matched: MatchedView,
    mismatch_count: u32,
    suspense: SuspenseView,
    /// Items waiting for a later statement after this run.
    pooled: u64,
    created_at: String,
    finished_at: Option<String>,
    /// The run's mismatches (the first 1,000; the listing pages through the rest).
    mismatches: Vec<MismatchView>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunList {
    data: Vec<RunView>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MismatchList {
    data: Vec<MismatchView>,
    has_more: bool,
}

fn money(v: i64, currency: Currency) -> String {
    format_minor(i128::from(v), currency)
}

fn mismatch_view(m: &ReconMismatch, channel: &str, currency: Currency) -> MismatchView {
    let opt = |v: Option<i64>| v.map(|v| money(v, currency));
    MismatchView {
        id: mismatch_id_text(m.run, m.n),
        run_id: run_id_text(m.run),
        channel: channel.to_string(),
        date: m.date.to_string(),
        kind: kind_of(m.kind).code(),
        item: if m.row_kind == 1 { "refund" } else { "charge" },
        out_trade_no: m.out_trade_no.clone(),
        out_refund_no: m.out_refund_no.clone(),
        channel_reference: m.channel_reference.clone(),
        payment_id: m.payment.map(crate::payments::payment_id_text),
        refund_id: m.refund.map(|r| engine::ids::prefixed_hex("re_", r)),
        platform_amount: opt(m.platform_amount),
        channel_amount: opt(m.channel_amount),
        platform_fee: opt(m.platform_fee),
        channel_fee: opt(m.channel_fee),
        platform_status: m.platform_status.map(status_name),
        channel_status: m.channel_amount.map(|_| "succeeded"),
        suspense: money(m.suspense, currency),
        held: money(m.held, currency),
        status: match m.status {
            MismatchStatus::Open => "open",
            MismatchStatus::Proposed => "proposed",
            MismatchStatus::Resolved => "resolved",
        },
        resolution: m.resolution.as_ref().map(|r| ResolutionView {
            action: r.action.clone(),
            note: r.note.clone(),
            proposed_by: r.proposed_by.clone(),
            proposed_at: records::time_text(r.proposed_at_ns),
            approved_by: r.approved_by.clone(),
            resolved_at: r.resolved_at_ns.map(records::time_text),
            amount: money(r.amount, currency),
        }),
        created_at: records::time_text(m.created_at_ns),
    }
}

fn mismatches_of(store: &storage::Store, run: u128, max: usize) -> Result<Vec<ReconMismatch>> {
    let prefix = records::recon_mismatch_prefix(run);
    let mut out = Vec::new();
    store.for_each_aux_with_prefix(&prefix, max, |k, v| {
        out.push(records::decode::<ReconMismatch>(k, v)?);
        Ok(())
    })?;
    Ok(out)
}

fn run_view(store: &storage::Store, r: &ReconRun, currency: Currency) -> Result<RunView> {
    let mismatches = mismatches_of(store, r.id, RUN_VIEW_MISMATCHES_MAX)?
        .iter()
        .map(|m| mismatch_view(m, &r.channel_name, currency))
        .collect();
    Ok(RunView {
        id: run_id_text(r.id),
        channel: r.channel_name.clone(),
        date: r.date.to_string(),
        status: match r.status {
            RunStatus::Running => "running",
            RunStatus::Done => "done",
        },
        statement_sha256: hex(&r.sha256),
        source: r.source.clone(),
        rows: r.rows,
        matched: MatchedView {
            count: r.matched_count,
            amount: money(r.matched_amount, currency),
        },
        mismatch_count: r.mismatches,
        suspense: SuspenseView {
            long: money(r.long, currency),
            short: money(r.short, currency),
        },
        pooled: r.pooled,
        created_at: records::time_text(r.created_at_ns),
        finished_at: r.finished_at_ns.map(records::time_text),
        mismatches,
    })
}

// ---------------------------------------------------------------------------------------
// Reads.

pub fn get_run(state: &Platform, id_text: &str) -> Result<RunView> {
    let store = state.store()?;
    let not_found = || Error::not_found(format!("no reconciliation run {id_text:?}"));
    let id = records::parse_id(id_text, "rec_").ok_or_else(not_found)?;
    let run: ReconRun = records::read(store, &records::recon_run_key(id))?.ok_or_else(not_found)?;
    run_view(store, &run, state.settings.currency)
}

/// Runs, newest first, optionally of one channel (by name) or one date.
pub fn list_runs(state: &Platform, channel: Option<&str>, date: Option<&str>) -> Result<RunList> {
    let store = state.store()?;
    let date = date.map(|d| crate::gl::parse_date(d, "date")).transpose()?;
    let mut runs = Vec::new();
    store.for_each_aux_with_prefix(records::prefix::RECON_RUN, usize::MAX, |k, v| {
        let r: ReconRun = records::decode(k, v)?;
        if channel.is_none_or(|c| c == r.channel_name) && date.is_none_or(|d| d == r.date) {
            runs.push(r);
        }
        Ok(())
    })?;
    runs.reverse();
    runs.truncate(LIST_MAX);
    let currency = state.settings.currency;
    let data = runs
        .iter()
        .map(|r| {
            let mut v = run_view(store, r, currency)?;
            v.mismatches.clear();
            Ok(v)
        })
        .collect::<Result<_>>()?;
    Ok(RunList { data })
}

/// Mismatches, oldest first: of one run, or every run's with a status (`open`, `proposed`,
/// `resolved`), after `starting_after` (a mismatch id), at most `limit`.
pub fn list_mismatches(
    state: &Platform,
    run: Option<&str>,
    status: Option<&str>,
    starting_after: Option<&str>,
    limit: usize,
) -> Result<MismatchList> {
    let store = state.store()?;
    let status = match status {
        None => None,
        Some("open") => Some(MismatchStatus::Open),
        Some("proposed") => Some(MismatchStatus::Proposed),
        Some("resolved") => Some(MismatchStatus::Resolved),
        Some(_) => {
            return Err(Error::invalid(
                "invalid_parameter",
                "status must be open, proposed or resolved",
            )
            .with_param("status"))
        }
    };
    let limit = limit.clamp(1, LIST_MAX);
    let prefix = match run {
        Some(text) => {
            let id = records::parse_id(text, "rec_").ok_or_else(|| {
                Error::not_found(format!("no reconciliation run {text:?}")).with_param("run")
            })?;
            records::recon_mismatch_prefix(id)
        }
        None => records::prefix::RECON_MISMATCH.to_vec(),
    };
    let from = match starting_after {
        Some(text) => {
            let (run, n) = parse_mismatch_id(text).ok_or_else(|| {
                Error::invalid("invalid_parameter", "starting_after is not a mismatch id")
                    .with_param("starting_after")
            })?;
            let mut k = records::recon_mismatch_key(run, n);
            k.push(0);
            k
        }
        None => prefix.clone(),
    };
    let mut names: HashMap<u128, String> = HashMap::new();
    let mut data = Vec::new();
    let mut has_more = false;
    let currency = state.settings.currency;
    store.for_each_aux_with_prefix_from(&prefix, &from, usize::MAX, |k, v| {
        if has_more {
            return Ok(());
        }
        let m: ReconMismatch = records::decode(k, v)?;
        if status.is_some_and(|s| s != m.status) {
            return Ok(());
        }
        if data.len() == limit {
            has_more = true;
            return Ok(());
        }
        let name = names
            .entry(m.channel)
            .or_insert_with(|| channel_name(state, m.channel));
        data.push(mismatch_view(&m, name, currency));
        Ok(())
    })?;
    Ok(MismatchList { data, has_more })
}

fn channel_name(state: &Platform, id: u128) -> String {
    state
        .channels
        .get(&id)
        .and_then(|c| c.value().lock().ok().map(|rt| rt.record().name.clone()))
        .unwrap_or_else(|| crate::channels::channel_id_text(id))
}

/// The report of a run as CSV: one line per mismatch.
pub fn run_csv(state: &Platform, id_text: &str) -> Result<String> {
    let store = state.store()?;
    let not_found = || Error::not_found(format!("no reconciliation run {id_text:?}"));
    let id = records::parse_id(id_text, "rec_").ok_or_else(not_found)?;
    let run: ReconRun = records::read(store, &records::recon_run_key(id))?.ok_or_else(not_found)?;
    let currency = state.settings.currency;
    let mut out = String::from(
        "run_id,channel,date,mismatch_id,type,item,out_trade_no,out_refund_no,channel_reference,\
         platform_amount,channel_amount,platform_fee,channel_fee,platform_status,channel_status,\
         suspense,status,resolution\r\n",
    );
    let field = |t: &str| crate::reports::csv_field(t);
    for m in mismatches_of(store, id, usize::MAX)? {
        let v = mismatch_view(&m, &run.channel_name, currency);
        let cells = [
            v.run_id,
            v.channel,
            v.date,
            v.id,
            v.kind.to_string(),
            v.item.to_string(),
            v.out_trade_no,
            v.out_refund_no.unwrap_or_default(),
            v.channel_reference.unwrap_or_default(),
            v.platform_amount.unwrap_or_default(),
            v.channel_amount.unwrap_or_default(),
            v.platform_fee.unwrap_or_default(),
            v.channel_fee.unwrap_or_default(),
            v.platform_status.unwrap_or_default().to_string(),
            v.channel_status.unwrap_or_default().to_string(),
            v.suspense,
            v.status.to_string(),
            v.resolution.map(|r| r.action).unwrap_or_default(),
        ];
        let line: Vec<String> = cells.iter().map(|c| field(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// A run.

/// What a run answers: the run, and whether this call made it (false: the same file was
/// reconciled before).
pub struct Ran {
    pub created: bool,
    pub run: RunView,
}

fn invalid_statement(e: engine::statement::StatementError) -> Error {
    Error::Unprocessable {
        code: "statement_invalid",
        message: format!("the statement was refused at line {}: {}", e.line, e.reason),
    }
}

fn find_channel(state: &Platform, name: &str) -> Result<records::ChannelRecord> {
    crate::channels::records(state)
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| Error::not_found(format!("no channel {name:?}")).with_param("channel"))
}

/// `POST /v1/reconciliation/statements`: an operator's upload of channel `channel`'s
/// statement of `date` in `format`.
pub async fn upload(
    state: &Arc<Platform>,
    actor: &Actor,
    channel: &str,
    date: &str,
    format: &str,
    bytes: &[u8],
) -> Result<Ran> {
    let ch = find_channel(state, channel)?;
    let date = crate::gl::parse_date(date, "date")?;
    let format = Format::parse(format).ok_or_else(|| {
        Error::invalid("invalid_parameter", "format must be alipay or wechat").with_param("format")
    })?;
    run_file(
        state,
        &ch,
        date,
        format,
        bytes.to_vec(),
        format!("uploaded by {}", actor.name),
    )
    .await
}

/// Reconciles `bytes` as channel `ch`'s statement of `date`.
async fn run_file(
    state: &Arc<Platform>,
    ch: &records::ChannelRecord,
    date: BusinessDate,
    format: Format,
    bytes: Vec<u8>,
    source: String,
) -> Result<Ran> {
    if bytes.len() > STATEMENT_BYTES_MAX {
        return Err(Error::invalid(
            "invalid_parameter",
            format!("a statement file is at most {STATEMENT_BYTES_MAX} bytes"),
        ));
    }
    let sha: [u8; 32] = sha2::Sha256::digest(&bytes).into();
    // Shared with the parsing thread rather than copied (a statement is up to 256 MiB).
    let bytes = Arc::new(bytes);
    let store = Arc::clone(state.store()?);
    let currency = state.settings.currency;
    // The same file again: the same run, nothing changed.
    if let Some(id) = records::read::<u128>(&store, &records::recon_by_sha_key(&sha))? {
        if let Some(run) = records::read::<ReconRun>(&store, &records::recon_run_key(id))? {
            return Ok(Ran {
                created: false,
                run: run_view(&store, &run, currency)?,
            });
        }
    }
    // Strict parse before anything is kept.
    let parsed = {
        let b = Arc::clone(&bytes);
        crate::day_end::in_background(move || Ok(engine::statement::parse(&b, format))).await?
    }
    .map_err(invalid_statement)?;
    if parsed.date != date.to_string() {
        return Err(Error::Unprocessable {
            code: "statement_invalid",
            message: format!(
                "the statement is of {}, not of {date}",
                if parsed.date.is_empty() {
                    "no date"
                } else {
                    &parsed.date
                }
            ),
        });
    }
    let one = state.recon_admin.lock().await;
    if let Some(id) = records::read::<u128>(&store, &records::recon_by_sha_key(&sha))? {
        if let Some(run) = records::read::<ReconRun>(&store, &records::recon_run_key(id))? {
            return Ok(Ran {
                created: false,
                run: run_view(&store, &run, currency)?,
            });
        }
    }
    let open = state.period()?.open;
    if date >= open {
        return Err(Error::conflict(
            "date_not_closed",
            format!("{date} is not closed yet (the open business date is {open})"),
        )
        .with_param("date"));
    }
    let rc: ReconChannel =
        records::read(&store, &records::recon_channel_key(ch.id))?.unwrap_or_default();
    if let Some(through) = rc.through {
        if date <= through {
            return Err(Error::conflict(
                "statement_conflict",
                format!(
                    "channel {} is reconciled through {through} with other statements",
                    ch.name
                ),
            )
            .with_param("date"));
        }
        if through.next() != Some(date) {
            return Err(Error::conflict(
                "reconciliation_out_of_order",
                format!(
                    "channel {} is reconciled through {through}: its statement of {} comes first",
                    ch.name,
                    through.next().map(|d| d.to_string()).unwrap_or_default()
                ),
            )
            .with_param("date"));
        }
    }
    let run = ReconRun {
        id: new_id(),
        channel: ch.id,
        channel_name: ch.name.clone(),
        date,
        sha256: sha,
        status: RunStatus::Running,
        rows: parsed.rows.len() as u64,
        matched_count: 0,
        matched_amount: 0,
        mismatches: 0,
        long: 0,
        short: 0,
        pooled: 0,
        created_at_ns: now_ns(),
        finished_at_ns: None,
        source,
        extra: records::Tail(()),
    };
    let file = StatementFile {
        channel: ch.id,
        date,
        format: format_code(format),
        sha256: sha,
        raw_len: bytes.len() as u32,
        // Statements name customers' payments: kept sealed under the master key, like
        // every other business secret at rest.
        compressed: state.master.seal(&lz4_flex::block::compress(&bytes), &sha),
        received_at_ns: run.created_at_ns,
        source: run.source.clone(),
        extra: records::Tail(()),
    };
    // Durable before any matching: the file, the run `running`, and its hash.
    state
        .ledger()?
        .write_records(vec![
            (
                records::recon_statement_key(ch.id, date),
                records::encode(&file),
            ),
            (records::recon_by_sha_key(&sha), records::encode(&run.id)),
            (records::recon_run_key(run.id), records::encode(&run)),
        ])
        .await?;
    crate::day_end::stall_if_asked("reconciliation_run").await;
    let run = complete(state, run, parsed).await?;
    drop(one);
    // What the automatic rules settle, settled now (the run's record is final either way).
    if let Err(e) = auto_resolve(state).await {
        tracing::warn!(%e, "the automatic resolution after a run did not finish; it runs again later");
    }
    Ok(Ran {
        created: true,
        run: run_view(&store, &run, currency)?,
    })
}

/// One item with where it came from.
struct Found {
    item: Item,
    pool: PoolItem,
    merchant: u128,
    net: i64,
}

fn charge_item(p: &Payment, date: BusinessDate) -> Option<Item> {
    let card = p.card.0.as_ref()?;
    Some(Item {
        kind: RowKind::Charge,
        request_id: card.request_id.clone()?,
        channel_reference: None,
        amount: p.amount,
        fee: if p.status == PaymentStatus::Succeeded {
            card.channel_fee
        } else {
            0
        },
        status: item_status(p.status),
        date,
    })
}

fn refund_item(r: &Refund, date: BusinessDate) -> Item {
    Item {
        kind: RowKind::Refund,
        request_id: format!("re_{:032x}", r.id),
        channel_reference: None,
        amount: r.amount,
        fee: r.channel_fee_part.0,
        status: item_status(r.status),
        date,
    }
}

fn on_channel(p: &Payment, channel: u128) -> bool {
    p.card
        .0
        .as_ref()
        .is_some_and(|c| c.channel.as_ref().is_some_and(|(id, _)| *id == channel))
}

/// Called with each stored record (key, value) of a scan.
type RecordFn<'a> = dyn FnMut(&[u8], &[u8]) -> Result<()> + 'a;

/// The platform's items with `channel` of `date`, and the pool's, as they stand now.
fn items(
    store: &storage::Store,
    channel: u128,
    date: BusinessDate,
    pool: &[PoolItem],
) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    let mut payments: HashMap<u128, Option<Payment>> = HashMap::new();
    let mut load = |store: &storage::Store, id: u128| -> Result<Option<Payment>> {
        if let Some(p) = payments.get(&id) {
            return Ok(p.clone());
        }
        let p = records::read::<Payment>(store, &records::payment_key(id))?;
        payments.insert(id, p.clone());
        Ok(p)
    };
    for it in pool {
        let Some(p) = load(store, it.payment)? else {
            continue;
        };
        match it.refund {
            None => {
                if let Some(item) = charge_item(&p, it.date) {
                    out.push(Found {
                        item,
                        pool: it.clone(),
                        merchant: p.merchant,
                        net: p.net_amount(),
                    });
                }
            }
            Some(r) => {
                if let Some(r) = records::read::<Refund>(store, &records::refund_key(r))? {
                    out.push(Found {
                        item: refund_item(&r, it.date),
                        pool: it.clone(),
                        merchant: p.merchant,
                        net: 0,
                    });
                }
            }
        }
    }
    let (start, end) = crate::reports::span(store, date)?;
    let until = crate::reports::id_from(end);
    let scan = |prefix: &[u8], f: &mut RecordFn<'_>| -> Result<()> {
        let from = [prefix, &crate::reports::id_from(start).to_be_bytes()].concat();
        let mut stop = false;
        let mut failed = None;
        store.for_each_aux_with_prefix_from(prefix, &from, usize::MAX, |k, v| {
            if stop {
                return Ok(());
            }
            if end != u64::MAX && records::id_after(k, prefix).unwrap_or(0) >= until {
                stop = true;
                return Ok(());
            }
            if let Err(e) = f(k, v) {
                failed = Some(e);
                stop = true;
            }
            Ok(())
        })?;
        failed.map_or(Ok(()), Err)
    };
    scan(records::prefix::PAYMENT, &mut |k, v| {
        let p: Payment = records::decode(k, v)?;
        if p.business_date.0 == Some(date) && on_channel(&p, channel) {
            if let Some(item) = charge_item(&p, date) {
                out.push(Found {
                    item,
                    pool: PoolItem {
                        payment: p.id,
                        refund: None,
                        date,
                    },
                    merchant: p.merchant,
                    net: p.net_amount(),
                });
            }
        }
        Ok(())
    })?;
    scan(records::prefix::REFUND, &mut |k, v| {
        let r: Refund = records::decode(k, v)?;
        if r.business_date.0 != Some(date) {
            return Ok(());
        }
        let Some(p) = load(store, r.payment)? else {
            return Ok(());
        };
        if on_channel(&p, channel) {
            out.push(Found {
                item: refund_item(&r, date),
                pool: PoolItem {
                    payment: p.id,
                    refund: Some(r.id),
                    date,
                },
                merchant: p.merchant,
                net: 0,
            });
        }
        Ok(())
    })?;
    Ok(out)
}

/// What a run books: the run done, its mismatches, the new pool, the holds.
struct Outcome {
    run: ReconRun,
    records: Vec<(Vec<u8>, Vec<u8>)>,
    /// Σ long, Σ short.
    long: i64,
    short: i64,
}

fn compute(
    store: &storage::Store,
    mut run: ReconRun,
    statement: &Statement,
    wait_days: u16,
) -> Result<Outcome> {
    let rc: ReconChannel =
        records::read(store, &records::recon_channel_key(run.channel))?.unwrap_or_default();
    let found = items(store, run.channel, run.date, &rc.pool)?;
    let mut origin: HashMap<(RowKind, String), (PoolItem, u128, i64)> =
        HashMap::with_capacity(found.len());
    let mut list = Vec::with_capacity(found.len());
    for f in found {
        origin.insert(
            (f.item.kind, f.item.request_id.clone()),
            (f.pool, f.merchant, f.net),
        );
        list.push(f.item);
    }
    let out = reconcile(&statement.rows, list, run.date, wait_days);
    let now = now_ns();
    let mut records = Vec::with_capacity(out.mismatches.len() + 4);
    let mut holds: HashMap<(u128, BusinessDate), i64> = HashMap::new();
    let (long, short) = engine::recon::suspense_totals(&out.mismatches);
    for (i, m) in out.mismatches.iter().enumerate() {
        let n = u32::try_from(i + 1).map_err(|_| Error::storage("too many mismatches"))?;
        let rec = mismatch_record(&run, n, m, &origin, now);
        if rec.held > 0 {
            if let (Some(merchant), Some(d)) = (rec.merchant, rec.item_date) {
                *holds.entry((merchant, d)).or_default() += rec.held;
            }
        }
        records.push((
            records::recon_mismatch_key(run.id, n),
            records::encode(&rec),
        ));
        records.push(open_marker(run.id, n, now));
    }
    for ((merchant, d), held) in holds {
        let key = records::recon_hold_key(merchant, d);
        let before: i64 = records::read(store, &key)?.unwrap_or(0);
        records.push((key, records::encode(&(before + held))));
    }
    let pool: Vec<PoolItem> = out
        .pool
        .iter()
        .filter_map(|it| {
            origin
                .get(&(it.kind, it.request_id.clone()))
                .map(|o| o.0.clone())
        })
        .collect();
    let to_i64 = |v: i128| i64::try_from(v).map_err(|_| Error::storage("suspense overflows"));
    run.status = RunStatus::Done;
    run.matched_count = out.matched.len() as u64;
    run.matched_amount = to_i64(out.matched.iter().map(|(i, _)| i128::from(i.amount)).sum())?;
    run.mismatches = out.mismatches.len() as u32;
    run.long = to_i64(long)?;
    run.short = to_i64(short)?;
    run.pooled = pool.len() as u64;
    run.finished_at_ns = Some(now);
    records.push((
        records::recon_channel_key(run.channel),
        records::encode(&ReconChannel {
            through: Some(run.date),
            pool,
            missing: rc
                .missing
                .into_iter()
                .filter(|(d, _)| *d != run.date)
                .collect(),
            extra: records::Tail(()),
        }),
    ));
    records.push((records::recon_run_key(run.id), records::encode(&run)));
    Ok(Outcome {
        long: run.long,
        short: run.short,
        run,
        records,
    })
}

fn mismatch_record(
    run: &ReconRun,
    n: u32,
    m: &Mismatch,
    origin: &HashMap<(RowKind, String), (PoolItem, u128, i64)>,
    now: u64,
) -> ReconMismatch {
    let from = m
        .item
        .as_ref()
        .and_then(|it| origin.get(&(it.kind, it.request_id.clone())));
    let kind = m
        .item
        .as_ref()
        .map(|i| i.kind)
        .or(m.row.as_ref().map(|r| r.kind))
        .unwrap_or(RowKind::Charge);
    // The merchant's takings of the item's date wait while the platform's booked success
    // is in doubt (the charge's net; refunds take from the merchant and hold nothing).
    let held = match (&m.item, m.kind) {
        (
            Some(it),
            MismatchType::MissingAtChannel
            | MismatchType::AmountMismatch
            | MismatchType::FeeMismatch,
        ) if it.kind == RowKind::Charge && it.status == ItemStatus::Succeeded => {
            from.map_or(0, |o| o.2.max(0))
        }
        _ => 0,
    };
    let out_trade_no = match (&m.row, &m.item, from) {
        (Some(r), _, _) => r.out_trade_no.clone(),
        (None, Some(it), _) if it.kind == RowKind::Charge => it.request_id.clone(),
        _ => String::new(),
    };
    ReconMismatch {
        run: run.id,
        n,
        channel: run.channel,
        date: run.date,
        kind: kind_code(m.kind),
        row_kind: u8::from(kind == RowKind::Refund),
        out_trade_no,
        out_refund_no: match kind {
            RowKind::Refund => m
                .row
                .as_ref()
                .and_then(|r| r.out_refund_no.clone())
                .or_else(|| m.item.as_ref().map(|i| i.request_id.clone())),
            RowKind::Charge => None,
        },
        channel_reference: m
            .row
            .as_ref()
            .map(|r| r.channel_reference.clone())
            .filter(|r| !r.is_empty()),
        platform_amount: m.item.as_ref().map(|i| i.amount),
        platform_fee: m.item.as_ref().map(|i| i.fee),
        platform_status: m.item.as_ref().map(|i| status_code(i.status)),
        channel_amount: m.row.as_ref().map(|r| r.amount),
        channel_fee: m.row.as_ref().map(|r| r.fee),
        payment: from.map(|o| o.0.payment),
        refund: from.and_then(|o| o.0.refund),
        merchant: from.map(|o| o.1),
        item_date: from.map(|o| o.0.date),
        held,
        suspense: i64::try_from(m.suspense()).unwrap_or(0),
        status: MismatchStatus::Open,
        resolution: None,
        created_at_ns: now,
        extra: records::Tail(()),
    }
}

/// The suspense accounts of channel number `number`, created when missing (channels made
/// before reconciliation existed).
async fn suspense_accounts(
    state: &Platform,
    number: u32,
    currency: Currency,
) -> Result<(AccountId, AccountId)> {
    let ledger = state.ledger()?;
    let mut out = Vec::with_capacity(2);
    for role in [PlatformRole::SuspenseLong, PlatformRole::SuspenseShort] {
        let id = AccountId::platform_at_channel(role, number, currency.numeric());
        match ledger.create_account(id, currency, i64::MAX).await? {
            Ok(_) | Err(Reject::AccountExists(_)) => {}
            Err(other) => return Err(Error::storage(format!("suspense account {id}: {other}"))),
        }
        out.push(id);
    }
    Ok((out[0], out[1]))
}

/// Matches and books a `running` run, in one journal entry.
async fn complete(state: &Arc<Platform>, run: ReconRun, statement: Statement) -> Result<ReconRun> {
    let store = Arc::clone(state.store()?);
    let currency = state.settings.currency;
    let number = crate::channels::records(state)
        .into_iter()
        .find(|c| c.id == run.channel)
        .map(|c| c.number)
        .ok_or_else(|| Error::storage("a reconciliation run's channel is missing"))?;
    let (long_account, short_account) = suspense_accounts(state, number, currency).await?;
    let receivable =
        AccountId::platform_at_channel(PlatformRole::ChannelReceivable, number, currency.numeric());
    let wait = state.settings.recon_wait_days;
    let ledger = state.ledger()?;
    for _ in 0..8 {
        let (s, r, st) = (Arc::clone(&store), run.clone(), statement.clone());
        let outcome = crate::day_end::in_background(move || compute(&s, r, &st, wait)).await?;
        let done = outcome.run.clone();
        if outcome.long == 0 && outcome.short == 0 {
            ledger.write_records(outcome.records).await?;
            crate::metrics::recon_run(&done);
            return Ok(done);
        }
        // Long: the channel owes us more (receivable debited), held in 2901 until
        // resolved; short: it owes us less (receivable credited), carried in 1901.
        let mut postings = Vec::with_capacity(3);
        let net = i64::try_from(i128::from(outcome.short) - i128::from(outcome.long))
            .map_err(|_| Error::storage("suspense overflows"))?;
        if net != 0 {
            postings.push(Posting::new(receivable, currency, net));
        }
        if outcome.long != 0 {
            postings.push(Posting::new(long_account, currency, outcome.long));
        }
        if outcome.short != 0 {
            postings.push(Posting::new(short_account, currency, -outcome.short));
        }
        let mut t = Transfer::new(
            crate::settlement::transfer_id("reconciliation", done.id, done.date),
            TransferKind::Reconciliation,
            postings,
            engine::Timestamp(0),
        );
        t.accounting_date = Some(state.period()?.open);
        match ledger.transfer_with(t, outcome.records).await? {
            Ok(_) => {
                crate::metrics::recon_run(&done);
                return Ok(done);
            }
            // The date switched between reading it and booking: book on the new one.
            Err(Reject::PeriodClosed | Reject::InvalidAccountingDate) => continue,
            Err(other) => {
                return Err(Error::storage(format!(
                    "booking reconciliation run {}: {other}",
                    run_id_text(done.id)
                )))
            }
        }
    }
    Err(Error::storage(
        "booking a reconciliation run: the date kept switching",
    ))
}

/// Finishes runs a crash left `running`, from their kept files (at start, after recovery).
pub async fn resume(state: &Arc<Platform>) -> Result<usize> {
    let store = Arc::clone(state.store()?);
    let mut running = Vec::new();
    store.for_each_aux_with_prefix(records::prefix::RECON_RUN, usize::MAX, |k, v| {
        let r: ReconRun = records::decode(k, v)?;
        if r.status == RunStatus::Running {
            running.push(r);
        }
        Ok(())
    })?;
    let n = running.len();
    for run in running {
        let _one = state.recon_admin.lock().await;
        let file: StatementFile =
            records::read(&store, &records::recon_statement_key(run.channel, run.date))?
                .ok_or_else(|| Error::storage("a running reconciliation lost its statement"))?;
        let compressed = state
            .master
            .open(&file.compressed, &file.sha256)
            .map_err(|e| Error::storage(format!("a kept statement does not open: {e}")))?;
        let raw = lz4_flex::block::decompress(&compressed, file.raw_len as usize)
            .map_err(|e| Error::storage(format!("a kept statement does not decompress: {e}")))?;
        let statement = engine::statement::parse(&raw, format_of(file.format))
            .map_err(|e| Error::storage(format!("a kept statement no longer parses: {e}")))?;
        let done = complete(state, run, statement).await?;
        tracing::info!(run = %run_id_text(done.id), channel = %done.channel_name, date = %done.date, "reconciliation run completed after a restart");
    }
    Ok(n)
}

// ---------------------------------------------------------------------------------------
// Fetching.

/// Asks channel `ch` for its statement of `date`: the file, or why not.
async fn fetch(
    state: &Platform,
    ch: &records::ChannelRecord,
    date: BusinessDate,
) -> std::result::Result<Vec<u8>, String> {
    let format = match crate::channels::statement_format(ch) {
        Format::Alipay => "alipay",
        Format::Wechat => "wechat",
    };
    let url = format!(
        "{}/statements?date={date}&format={format}",
        ch.endpoint.trim_end_matches('/')
    );
    let mut why = String::new();
    for attempt in 0..FETCH_ATTEMPTS {
        if attempt > 0 {
            actix_rt::time::sleep(std::time::Duration::from_secs(u64::from(attempt))).await;
        }
        let resp = state
            .channel_http
            .get_large(
                &url,
                state.settings.recon_fetch_timeout,
                STATEMENT_BYTES_MAX,
            )
            .await;
        match resp {
            Ok(r) if r.answered() => return Ok(r.body.to_vec()),
            // Not ready yet (or not at all): asking again soon will not change it.
            Ok(r) if r.unknown() => {
                return Err("the channel has no statement of that date yet".into())
            }
            Err(crate::channels::http::CallError::TooLarge(_)) => {
                return Err("the statement is larger than accepted".into())
            }
            Ok(r) => why = format!("the channel answered {}", r.status()),
            Err(e) => why = format!("unreachable: {e}"),
        }
    }
    Err(why)
}

/// Fetches and reconciles `ch`'s statement of `date`; a statement that cannot be had now
/// is recorded as missing (and retried). Answers a line for the day-end's detail.
async fn fetch_and_run(
    state: &Arc<Platform>,
    ch: &records::ChannelRecord,
    date: BusinessDate,
) -> Result<String> {
    let store = Arc::clone(state.store()?);
    let rc: ReconChannel =
        records::read(&store, &records::recon_channel_key(ch.id))?.unwrap_or_default();
    if rc.through.is_some_and(|t| t >= date) {
        return Ok(format!("{}: reconciled", ch.name));
    }
    // Dates still missing come first: runs go in date order.
    if let Some((first, _)) = rc.missing.iter().find(|(d, _)| *d < date) {
        mark_missing(state, ch.id, date).await?;
        return Ok(format!(
            "{}: waiting for its statement of {first} first",
            ch.name
        ));
    }
    match fetch(state, ch, date).await {
        Ok(bytes) => {
            let format = crate::channels::statement_format(ch);
            match run_file(state, ch, date, format, bytes, "fetched".into()).await {
                Ok(ran) => Ok(format!(
                    "{}: {} rows, {} matched, {} mismatches",
                    ch.name, ran.run.rows, ran.run.matched.count, ran.run.mismatch_count
                )),
                Err(Error::Unprocessable { message, .. }) => {
                    mark_missing(state, ch.id, date).await?;
                    tracing::error!(channel = %ch.name, %date, %message, "the channel's statement was refused");
                    Ok(format!("{}: statement refused ({message})", ch.name))
                }
                Err(e) => Err(e),
            }
        }
        Err(why) => {
            mark_missing(state, ch.id, date).await?;
            tracing::warn!(channel = %ch.name, %date, %why, "no statement yet; retrying later");
            Ok(format!("{}: statement missing ({why})", ch.name))
        }
    }
}

async fn mark_missing(state: &Platform, channel: u128, date: BusinessDate) -> Result<()> {
    let _one = state.recon_admin.lock().await;
    let store = state.store()?;
    let key = records::recon_channel_key(channel);
    let mut rc: ReconChannel = records::read(store, &key)?.unwrap_or_default();
    if rc.missing.iter().any(|(d, _)| *d == date) {
        return Ok(());
    }
    rc.missing.push((date, now_ns()));
    rc.missing.sort();
    state
        .ledger()?
        .write_records(vec![(key, records::encode(&rc))])
        .await?;
    Ok(())
}

/// The day-end step `reconciliation` of `date`: each enabled channel's statement of the
/// date before (a statement is ready the day after its date).
pub async fn day_end_step(state: &Arc<Platform>, date: BusinessDate) -> Result<String> {
    let Some(of) = date.minus_days(1) else {
        return Ok("no earlier date".into());
    };
    let channels: Vec<records::ChannelRecord> = crate::channels::records(state)
        .into_iter()
        .filter(|c| c.enabled && c.currency == state.settings.currency.numeric())
        .collect();
    if channels.is_empty() {
        return Ok("no enabled channel".into());
    }
    let mut lines = Vec::with_capacity(channels.len());
    for ch in &channels {
        lines.push(fetch_and_run(state, ch, of).await?);
    }
    Ok(format!("statements of {of}: {}", lines.join("; ")))
}

/// Retries the statements still missing, in date order per channel (a background task,
/// every `recon_fetch_retry`), and publishes how many are late.
pub fn spawn_retries(state: Arc<Platform>) {
    actix_rt::spawn(async move {
        loop {
            if let Err(e) = retry_missing(&state).await {
                tracing::warn!(%e, "retrying missing statements");
            }
            if let Err(e) = auto_resolve(&state).await {
                tracing::warn!(%e, "resolving mismatches automatically");
            }
            actix_rt::time::sleep(state.settings.recon_fetch_retry).await;
        }
    });
}

async fn retry_missing(state: &Arc<Platform>) -> Result<()> {
    let store = Arc::clone(state.store()?);
    let now = now_ns();
    let due = state.settings.recon_statement_due.as_nanos() as u64;
    let mut late = 0u64;
    for ch in crate::channels::records(state) {
        let rc: ReconChannel =
            records::read(&store, &records::recon_channel_key(ch.id))?.unwrap_or_default();
        for (date, first) in rc.missing.clone() {
            if !ch.enabled {
                break;
            }
            match fetch(state, &ch, date).await {
                Ok(bytes) => {
                    let format = crate::channels::statement_format(&ch);
                    match run_file(state, &ch, date, format, bytes, "fetched".into()).await {
                        Ok(_) => continue,
                        Err(e) => {
                            tracing::warn!(channel = %ch.name, %date, %e, "a fetched statement was not reconciled");
                        }
                    }
                }
                Err(why) => tracing::debug!(channel = %ch.name, %date, %why, "still no statement"),
            }
            tracing::debug!(channel = %ch.name, %date, since_ns = now.saturating_sub(first), "statement still missing");
            // Later dates wait for this one.
            break;
        }
        let rc: ReconChannel =
            records::read(&store, &records::recon_channel_key(ch.id))?.unwrap_or_default();
        late += rc
            .missing
            .iter()
            .filter(|(_, first)| now.saturating_sub(*first) >= due)
            .count() as u64;
    }
    crate::metrics::recon_statements_late(late);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Resolution.

/// How long an open mismatch's marker is kept at most (it is closed long before).
const OPEN_KEEP_NS: u64 = 10 * 365 * 24 * 3600 * 1_000_000_000;
/// Open mismatches one automatic pass looks at.
const AUTO_PASS_MAX: usize = 10_000;

/// The marker of an open mismatch (`xrm`: its creation time), written with it.
fn open_marker(run: u128, n: u32, created_at_ns: u64) -> (Vec<u8>, Vec<u8>) {
    (
        records::recon_open_key(run, n),
        storage::schema::expiring_value(
            created_at_ns.saturating_add(OPEN_KEEP_NS),
            &created_at_ns.to_be_bytes(),
        ),
    )
}

/// The marker of a resolved mismatch: expired now, dropped by compaction.
fn closed_marker(run: u128, n: u32) -> (Vec<u8>, Vec<u8>) {
    (
        records::recon_open_key(run, n),
        storage::schema::expiring_value(now_ns(), &[0]),
    )
}

/// The open (or proposed) mismatches, oldest run first: (run, n, created_at_ns).
fn open_mismatches(store: &storage::Store, max: usize) -> Result<Vec<(u128, u32, u64)>> {
    let prefix = records::prefix::RECON_OPEN;
    let now = now_ns();
    let mut out = Vec::new();
    store.for_each_aux_with_prefix(prefix, usize::MAX, |k, v| {
        let raw = &k[prefix.len()..];
        let created = storage::schema::split_expiring(v)
            .filter(|(expires, payload)| *expires > now && payload.len() == 8)
            .map(|(_, payload)| u64::from_be_bytes(payload.try_into().expect("8 bytes")));
        if let (Some(created), 20, true) = (created, raw.len(), out.len() < max) {
            let run = u128::from_be_bytes(raw[..16].try_into().expect("16 bytes"));
            let n = u32::from_be_bytes(raw[16..].try_into().expect("4 bytes"));
            out.push((run, n, created));
        }
        Ok(())
    })?;
    Ok(out)
}

/// What open mismatches hold back of merchant `merchant`'s takings, by date (settlement
/// maturity leaves it queued until they are resolved).
pub fn holds(store: &storage::Store, merchant: u128) -> Result<HashMap<BusinessDate, i64>> {
    let prefix = records::recon_hold_prefix(merchant);
    let mut out = HashMap::new();
    store.for_each_aux_with_prefix(&prefix, usize::MAX, |k, v| {
        let raw = &k[prefix.len()..];
        let held: i64 = records::decode(k, v)?;
        if raw.len() == 4 && held > 0 {
            out.insert(
                BusinessDate(i32::from_be_bytes(raw.try_into().expect("4 bytes"))),
                held,
            );
        }
        Ok(())
    })?;
    Ok(out)
}

/// `POST /v1/reconciliation/mismatches/{id}/resolve`'s body.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResolveMismatch {
    /// `write_off`: the difference is written off (GL 5003); `reverse`: the difference is
    /// gone — the channel corrected its record (refunded a duplicate charge, settled the
    /// missing amount) or ours was corrected — and the suspense goes back against our
    /// position at the channel.
    #[cfg_attr(feature = "openapi", schema(pattern = "^(write_off|reverse)$"))]
    action: String,
    /// Why, for the audit log: 1 to 500 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 500))]
    note: String,
}

fn load_mismatch(store: &storage::Store, id_text: &str) -> Result<ReconMismatch> {
    let not_found = || Error::not_found(format!("no reconciliation mismatch {id_text:?}"));
    let (run, n) = parse_mismatch_id(id_text).ok_or_else(not_found)?;
    records::read(store, &records::recon_mismatch_key(run, n))?.ok_or_else(not_found)
}

fn channel_number(state: &Platform, channel: u128) -> Result<u32> {
    crate::channels::records(state)
        .into_iter()
        .find(|c| c.id == channel)
        .map(|c| c.number)
        .ok_or_else(|| Error::storage("a mismatch's channel is missing"))
}

/// The postings that clear `m`'s suspense by `action`: long (2901, a credit balance) is
/// debited, short (1901, a debit balance) credited, against write-offs (5003) or our
/// position at the channel (1101).
fn clearing_postings(
    m: &ReconMismatch,
    action: &str,
    number: u32,
    currency: Currency,
) -> Vec<Posting> {
    let s = m.suspense;
    if s == 0 {
        return Vec::new();
    }
    let other = if action == "write_off" {
        AccountId::platform(PlatformRole::ReconWriteOffs, currency.numeric())
    } else {
        AccountId::platform_at_channel(PlatformRole::ChannelReceivable, number, currency.numeric())
    };
    if s > 0 {
        let long =
            AccountId::platform_at_channel(PlatformRole::SuspenseLong, number, currency.numeric());
        vec![
            Posting::new(long, currency, -s),
            Posting::new(other, currency, s),
        ]
    } else {
        let short =
            AccountId::platform_at_channel(PlatformRole::SuspenseShort, number, currency.numeric());
        vec![
            Posting::new(other, currency, s),
            Posting::new(short, currency, -s),
        ]
    }
}

/// Books the resolution of `m` (already carrying it, status `Resolved`): its clearing entry,
/// the mismatch, its closed marker, its hold released and `extra` (the audit entry), in one
/// journal entry.
async fn book_resolution(
    state: &Platform,
    m: &ReconMismatch,
    extra: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<()> {
    let store = state.store()?;
    let currency = state.settings.currency;
    let action = m
        .resolution
        .as_ref()
        .map(|r| r.action.as_str())
        .unwrap_or("reverse");
    let number = channel_number(state, m.channel)?;
    let mut recs = vec![
        (records::recon_mismatch_key(m.run, m.n), records::encode(m)),
        closed_marker(m.run, m.n),
    ];
    if let (Some(merchant), Some(d), true) = (m.merchant, m.item_date, m.held > 0) {
        let key = records::recon_hold_key(merchant, d);
        let before: i64 = records::read(store, &key)?.unwrap_or(0);
        recs.push((key, records::encode(&(before - m.held).max(0))));
    }
    recs.extend(extra);
    let postings = clearing_postings(m, action, number, currency);
    let ledger = state.ledger()?;
    if postings.is_empty() {
        ledger.write_records(recs).await?;
        return Ok(());
    }
    suspense_accounts(state, number, currency).await?;
    for _ in 0..8 {
        let mut t = Transfer::new(
            crate::settlement::transfer_id(
                &format!("reconciliation resolve {}", m.n),
                m.run,
                m.date,
            ),
            TransferKind::Reconciliation,
            postings.clone(),
            engine::Timestamp(0),
        );
        t.accounting_date = Some(state.period()?.open);
        match ledger.transfer_with(t, recs.clone()).await? {
            Ok(_) => return Ok(()),
            Err(Reject::PeriodClosed | Reject::InvalidAccountingDate) => continue,
            Err(other) => {
                return Err(Error::storage(format!(
                    "booking the resolution of {}: {other}",
                    mismatch_id_text(m.run, m.n)
                )))
            }
        }
    }
    Err(Error::storage(
        "booking a resolution: the date kept switching",
    ))
}

fn check_resolution(body: &ResolveMismatch) -> Result<()> {
    if !["write_off", "reverse"].contains(&body.action.as_str()) {
        return Err(
            Error::invalid("invalid_parameter", "action must be write_off or reverse")
                .with_param("action"),
        );
    }
    let chars = body.note.trim().chars().count();
    if chars == 0 || body.note.chars().count() > 500 || body.note.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_parameter",
            "note must be 1 to 500 characters, none of them control characters",
        )
        .with_param("note"));
    }
    Ok(())
}

fn view_of(state: &Platform, m: &ReconMismatch) -> MismatchView {
    mismatch_view(m, &channel_name(state, m.channel), state.settings.currency)
}

/// `POST …/resolve` by operator `actor`: a resolution that moves money (any mismatch with
/// suspense) is proposed and waits for a second operator; one that moves nothing is done.
pub async fn resolve(
    state: &Platform,
    actor: &Actor,
    id_text: &str,
    body: ResolveMismatch,
) -> Result<MismatchView> {
    check_resolution(&body)?;
    let _one = state.recon_admin.lock().await;
    let store = state.store()?;
    let mut m = load_mismatch(store, id_text)?;
    match m.status {
        MismatchStatus::Open => {}
        MismatchStatus::Proposed => {
            return Err(Error::conflict(
                "resolution_proposed",
                "a resolution is proposed already: approve or reject it first",
            ))
        }
        MismatchStatus::Resolved => {
            return Err(Error::conflict(
                "mismatch_resolved",
                "the mismatch is resolved",
            ))
        }
    }
    let before = view_of(state, &m);
    let now = now_ns();
    m.resolution = Some(records::Resolution {
        action: body.action.clone(),
        note: body.note.trim().to_string(),
        proposed_by: actor.name.clone(),
        proposed_at_ns: now,
        approved_by: None,
        resolved_at_ns: None,
        amount: m.suspense,
    });
    if m.suspense == 0 {
        m.status = MismatchStatus::Resolved;
        if let Some(r) = m.resolution.as_mut() {
            r.resolved_at_ns = Some(now);
        }
        let after = view_of(state, &m);
        let audit = crate::audit::record(
            state,
            actor,
            "recon_mismatch.resolve",
            &after.id,
            Some(&before),
            Some(&after),
        );
        book_resolution(state, &m, vec![audit]).await?;
        return Ok(after);
    }
    m.status = MismatchStatus::Proposed;
    let after = save_audited(state, actor, "recon_mismatch.propose", &m, &before).await?;
    crate::metrics::recon_resolution("proposed");
    Ok(after)
}

/// Writes mismatch `m` as changed by `actor` (a step that moves no money), with its audit
/// entry (`action`, `before` and the view after) in the same durable write.
async fn save_audited(
    state: &Platform,
    actor: &Actor,
    action: &str,
    m: &ReconMismatch,
    before: &MismatchView,
) -> Result<MismatchView> {
    let after = view_of(state, m);
    let audit = crate::audit::record(state, actor, action, &after.id, Some(before), Some(&after));
    state
        .ledger()?
        .write_records(vec![
            (records::recon_mismatch_key(m.run, m.n), records::encode(m)),
            audit,
        ])
        .await?;
    Ok(after)
}

/// `POST …/approve` by a second operator: books the proposed resolution.
pub async fn approve(state: &Platform, actor: &Actor, id_text: &str) -> Result<MismatchView> {
    let _one = state.recon_admin.lock().await;
    let store = state.store()?;
    let mut m = load_mismatch(store, id_text)?;
    if m.status != MismatchStatus::Proposed {
        return Err(Error::conflict(
            "no_resolution_proposed",
            "the mismatch has no proposed resolution to approve",
        ));
    }
    let proposer = m
        .resolution
        .as_ref()
        .map(|r| r.proposed_by.clone())
        .unwrap_or_default();
    if proposer == actor.name {
        return Err(Error::conflict(
            "approver_is_proposer",
            "a resolution that moves money needs a second operator: the proposer cannot approve it",
        ));
    }
    let before = view_of(state, &m);
    m.status = MismatchStatus::Resolved;
    if let Some(r) = m.resolution.as_mut() {
        r.approved_by = Some(actor.name.clone());
        r.resolved_at_ns = Some(now_ns());
    }
    let after = view_of(state, &m);
    let audit = crate::audit::record(
        state,
        actor,
        "recon_mismatch.approve",
        &after.id,
        Some(&before),
        Some(&after),
    );
    book_resolution(state, &m, vec![audit]).await?;
    crate::metrics::recon_resolution("approved");
    Ok(after)
}

/// `POST …/reject`: withdraws a proposed resolution (any operator, the proposer too).
pub async fn reject(state: &Platform, actor: &Actor, id_text: &str) -> Result<MismatchView> {
    let _one = state.recon_admin.lock().await;
    let store = state.store()?;
    let mut m = load_mismatch(store, id_text)?;
    if m.status != MismatchStatus::Proposed {
        return Err(Error::conflict(
            "no_resolution_proposed",
            "the mismatch has no proposed resolution to reject",
        ));
    }
    let before = view_of(state, &m);
    m.status = MismatchStatus::Open;
    m.resolution = None;
    save_audited(state, actor, "recon_mismatch.reject", &m, &before).await
}

/// The automatic rules, over every open mismatch (after each run, and every
/// `recon_fetch_retry`): a fee difference within `recon_fee_tolerance` is written off; a
/// status mismatch whose payment status sync has settled (asking the channel once more if
/// it is still processing) is reversed once the payment is booked. Answers how many it
/// resolved, and publishes the open count and the oldest's age.
pub async fn auto_resolve(state: &Platform) -> Result<usize> {
    let store = Arc::clone(state.store()?);
    let open = open_mismatches(&store, AUTO_PASS_MAX)?;
    let tolerance = state.settings.recon_fee_tolerance;
    let mut resolved = 0;
    for (run, n, _) in &open {
        let Some(m) =
            records::read::<ReconMismatch>(&store, &records::recon_mismatch_key(*run, *n))?
        else {
            continue;
        };
        if m.status != MismatchStatus::Open {
            continue;
        }
        let (action, note) = match kind_of(m.kind) {
            MismatchType::FeeMismatch
                if m.suspense.unsigned_abs() <= tolerance.unsigned_abs() && tolerance > 0 =>
            {
                (
                    "write_off",
                    format!(
                        "the fee difference is within the tolerance of {}",
                        money(tolerance, state.settings.currency)
                    ),
                )
            }
            MismatchType::StatusMismatch if m.row_kind == 0 => {
                let Some(pid) = m.payment else { continue };
                if !booked_by_status_sync(state, pid, &m.out_trade_no).await? {
                    continue;
                }
                (
                    "reverse",
                    "status sync booked the payment the channel listed".to_string(),
                )
            }
            _ => continue,
        };
        let _one = state.recon_admin.lock().await;
        // Read again under the lock: an operator may have acted meanwhile.
        let Some(mut m) =
            records::read::<ReconMismatch>(&store, &records::recon_mismatch_key(*run, *n))?
        else {
            continue;
        };
        if m.status != MismatchStatus::Open {
            continue;
        }
        let now = now_ns();
        m.status = MismatchStatus::Resolved;
        m.resolution = Some(records::Resolution {
            action: action.to_string(),
            note,
            proposed_by: "system".to_string(),
            proposed_at_ns: now,
            approved_by: None,
            resolved_at_ns: Some(now),
            amount: m.suspense,
        });
        let system = Actor {
            name: "system".to_string(),
            source_ip: None,
        };
        let after = view_of(state, &m);
        let audit = crate::audit::record(
            state,
            &system,
            "recon_mismatch.auto_resolve",
            &after.id,
            None::<&()>,
            Some(&after),
        );
        book_resolution(state, &m, vec![audit]).await?;
        crate::metrics::recon_resolution("automatic");
        resolved += 1;
    }
    let left = open_mismatches(&store, usize::MAX)?;
    let oldest = left.iter().map(|(_, _, c)| *c).min();
    crate::metrics::recon_open(
        left.len() as u64,
        oldest.map_or(0, |c| now_ns().saturating_sub(c)),
    );
    Ok(resolved)
}

/// Whether payment `id` is now booked as a success: status sync is asked once more (the
/// channel's status query) while it is still processing.
async fn booked_by_status_sync(state: &Platform, id: u128, request_id: &str) -> Result<bool> {
    let store = state.store()?;
    let Some(p) = records::read::<Payment>(store, &records::payment_key(id))? else {
        return Ok(false);
    };
    match p.status {
        PaymentStatus::Succeeded => return Ok(true),
        PaymentStatus::Failed | PaymentStatus::Canceled | PaymentStatus::Authorized => {
            return Ok(false)
        }
        PaymentStatus::Processing => {}
    }
    let Some((channel, _)) = p.card.0.as_ref().and_then(|c| c.channel.clone()) else {
        return Ok(false);
    };
    let Some(endpoint) = state
        .channels
        .get(&channel)
        .and_then(|c| c.value().lock().ok().map(|rt| rt.record().endpoint.clone()))
    else {
        return Ok(false);
    };
    // Only the channel's record settles it: a statement listed the charge, so a "never got
    // it" answer is the channel contradicting itself and is left to an operator.
    let Some(Some(answer)) = crate::card_payments::query_charge(state, &endpoint, request_id).await
    else {
        return Ok(false);
    };
    crate::card_payments::resolve(state, id, request_id, Some(answer), "reconciliation").await?;
    Ok(records::read::<Payment>(store, &records::payment_key(id))?
        .is_some_and(|p| p.status == PaymentStatus::Succeeded))
}

/// A channel's last reconciliation run, for the ops page.
#[derive(Serialize)]
pub struct RunSummary {
    /// `rec_…`.
    pub id: String,
    pub channel: String,
    pub date: String,
    pub status: &'static str,
    pub rows: u64,
    pub matched: u64,
    pub mismatches: u32,
    /// Its mismatches still open or proposed.
    pub open: u64,
    pub long: String,
    pub short: String,
}

/// Each channel's last run (by statement date), channels by name.
pub fn summary(state: &Platform) -> Result<Vec<RunSummary>> {
    let store = state.store()?;
    let mut last: std::collections::BTreeMap<String, ReconRun> = Default::default();
    store.for_each_aux_with_prefix(records::prefix::RECON_RUN, usize::MAX, |k, v| {
        let r: ReconRun = records::decode(k, v)?;
        if last.get(&r.channel_name).is_none_or(|l| l.date <= r.date) {
            last.insert(r.channel_name.clone(), r);
        }
        Ok(())
    })?;
    let mut open: HashMap<u128, u64> = HashMap::new();
    for (run, _, _) in open_mismatches(store, usize::MAX)? {
        *open.entry(run).or_default() += 1;
    }
    let currency = state.settings.currency;
    Ok(last
        .into_values()
        .map(|r| RunSummary {
            id: run_id_text(r.id),
            channel: r.channel_name.clone(),
            date: r.date.to_string(),
            status: match r.status {
                RunStatus::Running => "running",
                RunStatus::Done => "done",
            },
            rows: r.rows,
            matched: r.matched_count,
            mismatches: r.mismatches,
            open: open.get(&r.id).copied().unwrap_or(0),
            long: money(r.long, currency),
            short: money(r.short, currency),
        })
        .collect())
}

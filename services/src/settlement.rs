//! Merchant settlement (清算 / 结算, `../shared/FUNDS.md` "Merchant settlement", issue #16):
//! the day-end steps `settlement_maturity` (pending → available, T+N business days) and
//! `settlement_batches` (netting, one batch per merchant and date, its payout moved to in
//! transit), and the settlements' reads. The rules are `engine::settlement`'s.
//!
//! Every merchant's step is one durable unit: the transfer (its id derived from the
//! merchant, the date and the step, so a rerun cannot apply it twice), the merchant's
//! clearing state and its batch record, written together. A rerun after a crash finds the
//! state already past the date and skips it.

use std::sync::Arc;

use crate::records::{self, BatchStatus, Merchant, SettlementBatch, SettlementItem};
use engine::gl::BusinessDate;
use engine::money::format_minor;
use engine::settlement::{Clearing, Legs, PendingDay};
use engine::{
    AccountId, Currency, PlatformRole, Posting, Reject, Transfer, TransferId, TransferKind,
};
use futures_util::StreamExt;
use serde::Serialize;

use crate::merchants::{merchant_id_text, Caller};
use crate::platform::{now_ns, Platform};
use crate::{Error, Result};

/// Merchants settled at once: their transfers share the writer's group commits.
pub const CONCURRENCY: usize = 128;

/// Tries of one merchant's transfer when the balance it was computed from moved (a
/// merchant's own batch transfer out of available raced it) or the date switched.
const RETRIES: usize = 8;

/// The id of a settlement transfer: SHA-256 of the step, the merchant and the date — the
/// same on every rerun, so the ledger's dedup applies it at most once.
pub fn transfer_id(step: &str, merchant: u128, date: BusinessDate) -> TransferId {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"rongpay settlement ");
    h.update(step.as_bytes());
    h.update(merchant.to_be_bytes());
    h.update(date.0.to_be_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    TransferId(u128::from_be_bytes(b))
}

/// `stl_` + the date (8 hex digits) + the merchant (32): a batch's public id.
pub fn batch_id_text(date: BusinessDate, merchant: u128) -> String {
    format!("stl_{:08x}{merchant:032x}", date.0 as u32)
}

/// The date and merchant of a batch id, if it is one.
pub fn parse_batch_id(text: &str) -> Option<(BusinessDate, u128)> {
    let hex = text.strip_prefix("stl_")?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let date = u32::from_str_radix(&hex[..8], 16).ok()?;
    let merchant = u128::from_str_radix(&hex[8..], 16).ok()?;
    Some((BusinessDate(i32::try_from(date).ok()?), merchant))
}

fn platform_account(role: PlatformRole, currency: u16) -> AccountId {
    AccountId::platform(role, currency)
}

/// The postings of `legs` on a merchant's accounts (zero legs left out).
fn postings(m: &Merchant, currency: Currency, legs: &Legs) -> Vec<Posting> {
    let c = currency.numeric();
    [
        (m.pending(), legs.pending),
        (m.account, legs.available),
        (
            platform_account(PlatformRole::MerchantNegative, c),
            legs.negative,
        ),
        (
            platform_account(PlatformRole::PayoutsInTransit, c),
            legs.transit,
        ),
    ]
    .into_iter()
    .filter(|(_, a)| *a != 0)
    .map(|(account, amount)| Posting::new(account, currency, amount))
    .collect()
}

/// Runs `work` for every plan, [`CONCURRENCY`] at a time (their durable writes share
/// group commits); the first error, if any, once all have run.
async fn each_merchant<P, F>(plans: Vec<P>, work: impl Fn(P) -> F) -> Result<()>
where
    F: std::future::Future<Output = Result<()>>,
{
    let results: Vec<Result<()>> = futures_util::stream::iter(plans)
        .map(work)
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

/// The records of batch `b`: itself and its entry in the merchant's index.
fn batch_records(b: &SettlementBatch) -> [(Vec<u8>, Vec<u8>); 2] {
    [
        (
            records::settlement_batch_key(b.date, b.merchant),
            records::encode(b),
        ),
        (
            records::settlement_by_merchant_key(b.merchant, b.date),
            records::encode(&()),
        ),
    ]
}

/// A date's payments and refunds for a merchant, from its frozen daily report: gross,
/// refunds, fees, and splits (shares split off less shares received as a receiver); zero
/// when the date had none.
fn report_figures(
    store: &storage::Store,
    date: BusinessDate,
    merchant: u128,
    currency: Currency,
) -> Result<(i64, i64, i64, i64)> {
    let key = records::daily_report_key(date, merchant);
    let Some(bytes) = records::read::<Vec<u8>>(store, &key)? else {
        return Ok((0, 0, 0, 0));
    };
    let r: crate::reports::DailyReport = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Storage(format!("a frozen report does not parse: {e}")))?;
    // Signed: a date's fees and splits are negative when its refunds returned more of them
    // than its payments took (refunds of earlier dates' payments). Zero reads as 0.
    let amount = |text: &str| match text.strip_prefix('-') {
        Some(abs) => -engine::money::parse_amount(abs, currency).unwrap_or(0),
        None => engine::money::parse_amount(text, currency).unwrap_or(0),
    };
    let succeeded = |lines: &[crate::reports::Line]| {
        lines
            .iter()
            .find(|l| l.key == "succeeded")
            .map_or(0, |l| amount(&l.amount))
    };
    Ok((
        succeeded(&r.payments),
        succeeded(&r.refunds),
        amount(&r.fees),
        amount(&r.splits) - amount(&r.splits_received),
    ))
}

/// One merchant's maturity, computed off the async threads.
struct MaturityPlan {
    merchant: Merchant,
    clearing: Clearing,
    matured: i64,
    items: Vec<SettlementItem>,
}

/// Plans `date`'s maturity for every merchant: each closed date since the merchant's state
/// last moved is taken in from its pending account's day (the day-end's snapshot), and
/// what is due under its cycle matures. Merchants already past `date` are left out.
fn plan_maturity(
    store: &storage::Store,
    date: BusinessDate,
    currency: Currency,
) -> Result<Vec<MaturityPlan>> {
    let mut plans = Vec::new();
    for m in crate::merchants::all(store)? {
        if m.currency != currency.numeric() {
            continue;
        }
        let mut c: Clearing =
            records::read(store, &records::clearing_key(m.id))?.unwrap_or_default();
        if c.through.is_some_and(|t| t >= date) {
            continue;
        }
        let first = match c.through {
            Some(t) => t.next().unwrap_or(date),
            None => date,
        };
        let mut x = first;
        while x <= date {
            let key = records::account_day_key(x, m.pending());
            let day = match records::read::<engine::gl::day_end::AccountDay>(store, &key)? {
                Some(d) => d,
                None if crate::day_end::load(store, x)?.is_some_and(|d| d.accounts > 0) => {
                    // The snapshot exists and the account is not in it: it did not exist.
                    engine::gl::day_end::AccountDay {
                        account: m.pending(),
                        gl: engine::gl::GlAccount::MerchantPending,
                        currency,
                        opening: 0,
                        debit: 0,
                        credit: 0,
                        closing: 0,
                        postings: 0,
                    }
                }
                None => {
                    return Err(Error::Storage(format!(
                        "the snapshot of {x} is missing: its day-end did not reach it"
                    )))
                }
            };
            c.take_in(PendingDay {
                date: x,
                opening: day.opening,
                debit: day.debit,
                credit: day.credit,
            })
            .map_err(|e| Error::Storage(format!("merchant {:032x}: {e}", m.id)))?;
            x = match x.next() {
                Some(n) => n,
                None => break,
            };
        }
        let cycle = m.settlement.0.cycle_days;
        // What reconciliation's open mismatches hold back (issue #17) stays queued.
        let held = crate::recon::holds(store, m.id)?;
        let (matured, due) = c
            .mature(date, cycle, |d| held.get(&d).copied().unwrap_or(0))
            .map_err(|e| Error::Storage(format!("merchant {:032x}: {e}", m.id)))?;
        let mut items = Vec::with_capacity(due.len());
        for (d, net) in due {
            let (gross, refunds, fees, splits) = report_figures(store, d, m.id, currency)?;
            items.push(SettlementItem {
                date: d,
                net,
                gross,
                refunds,
                fees,
                splits,
            });
        }
        plans.push(MaturityPlan {
            merchant: m,
            clearing: c,
            matured,
            items,
        });
    }
    Ok(plans)
}

/// Why one merchant's settlement did not go through.
fn failed(m: &Merchant, what: &str, reject: Reject) -> Error {
    Error::Storage(format!(
        "{what} of merchant {}: {reject}",
        merchant_id_text(m.id)
    ))
}

/// Posts the legs `plan` answers for `m`, dated on the open date, with the records it
/// answers in the same durable unit. `plan` is asked again at each try, with the merchant's
/// available balance and the open date then.
async fn post(
    state: &Platform,
    m: &Merchant,
    currency: Currency,
    id: TransferId,
    what: &str,
    mut plan: impl FnMut(i64, BusinessDate, &Clearing) -> Result<(Legs, Vec<(Vec<u8>, Vec<u8>)>)>,
) -> Result<()> {
    let ledger = state.ledger()?;
    // One change of the merchant's settlement state at a time: a payout resolving now
    // changes its paid-out and in-transit figures, which `plan` takes from `fresh`.
    let _claim = crate::payouts::claim_merchant(state, m.id).await;
    let fresh: Clearing =
        records::read(state.store()?, &records::clearing_key(m.id))?.unwrap_or_default();
    for _ in 0..RETRIES {
        let available = ledger
            .account(m.account)
            .await?
            .map(|a| a.account.balance)
            .ok_or_else(|| {
                Error::Storage(format!(
                    "merchant {}'s available account is missing",
                    merchant_id_text(m.id)
                ))
            })?;
        let open = state.period()?.open;
        let (legs, recs) = plan(available, open, &fresh)?;
        if legs.is_empty() && recs.is_empty() {
            return Ok(());
        }
        if legs.is_empty() {
            ledger.write_records(recs).await?;
            return Ok(());
        }
        let mut t = Transfer::new(
            id,
            TransferKind::Settlement,
            postings(m, currency, &legs),
            engine::Timestamp(0),
        );
        t.accounting_date = Some(open);
        match ledger.transfer_with(t, recs).await? {
            Ok(_) => return Ok(()),
            // The balance moved under us, or the date switched: compute again.
            Err(
                Reject::InsufficientFunds(_) | Reject::PeriodClosed | Reject::InvalidAccountingDate,
            ) => continue,
            Err(other) => return Err(failed(m, what, other)),
        }
    }
    Err(Error::Storage(format!(
        "{what} of merchant {}: the balances kept moving ({RETRIES} tries)",
        merchant_id_text(m.id)
    )))
}

/// Figures of a step, for its detail line.
#[derive(Default)]
struct Tally {
    merchants: u64,
    amount: i128,
    carried: i128,
    payouts: u64,
    paid: i128,
}

/// The day-end step `settlement_maturity` of `date`.
pub async fn maturity_step(
    state: &Platform,
    store: &Arc<storage::Store>,
    date: BusinessDate,
) -> Result<String> {
    let currency = state.settings.currency;
    crate::accounts::ensure_platform_accounts_once(state, currency).await?;
    let s = Arc::clone(store);
    let plans = crate::day_end::in_background(move || plan_maturity(&s, date, currency)).await?;
    let tally = std::sync::Mutex::new(Tally::default());
    each_merchant(plans, |plan| {
        let tally = &tally;
        async move {
            let MaturityPlan {
                merchant: m,
                clearing,
                matured,
                items,
            } = plan;
            let id = transfer_id("maturity", m.id, date);
            let mut carried = 0;
            post(
                state,
                &m,
                currency,
                id,
                "the maturity",
                |available, open, fresh| {
                    let r = engine::settlement::maturity(matured, available, clearing.owed)
                        .map_err(|e| Error::Storage(e.to_string()))?;
                    carried = r.owed - clearing.owed;
                    let legs = &r.legs;
                    let mut c = clearing.clone();
                    c.paid_out = fresh.paid_out;
                    c.in_transit = fresh.in_transit;
                    c.owed += legs.negative.checked_neg().unwrap_or(0);
                    if legs.pending != 0 {
                        c.posted.push((open, legs.pending));
                    }
                    let mut recs = vec![(records::clearing_key(m.id), records::encode(&c))];
                    if matured != 0 || !items.is_empty() {
                        // A draft the batch step nets.
                        let mut b = SettlementBatch::new(m.id, date, currency.numeric(), now_ns());
                        b.items = items.clone();
                        b.matured = matured;
                        recs.extend(batch_records(&b));
                    }
                    Ok((r.legs, recs))
                },
            )
            .await?;
            if matured != 0 {
                let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                t.merchants += 1;
                t.amount += i128::from(matured);
                t.carried += i128::from(carried);
            }
            Ok(())
        }
    })
    .await?;
    let t = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(format!(
        "{} merchant(s): {} matured, {} carried as owed",
        t.merchants,
        format_minor(t.amount, currency),
        format_minor(t.carried, currency)
    ))
}

/// One merchant's batch, computed off the async threads.
struct BatchPlan {
    merchant: Merchant,
    clearing: Clearing,
    draft: Option<SettlementBatch>,
}

fn plan_batches(
    store: &storage::Store,
    date: BusinessDate,
    currency: Currency,
) -> Result<Vec<BatchPlan>> {
    let mut plans = Vec::new();
    for m in crate::merchants::all(store)? {
        if m.currency != currency.numeric() {
            continue;
        }
        let clearing: Clearing =
            records::read(store, &records::clearing_key(m.id))?.unwrap_or_default();
        let draft: Option<SettlementBatch> =
            records::read(store, &records::settlement_batch_key(date, m.id))?;
        if draft.as_ref().is_some_and(|b| b.netted) {
            continue;
        }
        plans.push(BatchPlan {
            merchant: m,
            clearing,
            draft,
        });
    }
    Ok(plans)
}

/// The day-end step `settlement_batches` of `date`: nets every merchant (what it owes is
/// offset from available first), and moves what is to be paid out to payouts in transit,
/// one batch per merchant. A merchant with nothing matured, nothing owed and less than its
/// minimum payout available gets no batch.
pub async fn batches_step(
    state: &Platform,
    store: &Arc<storage::Store>,
    date: BusinessDate,
) -> Result<String> {
    let currency = state.settings.currency;
    crate::accounts::ensure_platform_accounts_once(state, currency).await?;
    let s = Arc::clone(store);
    let plans = crate::day_end::in_background(move || plan_batches(&s, date, currency)).await?;
    let tally = std::sync::Mutex::new(Tally::default());
    each_merchant(plans, |plan| {
        let tally = &tally;
        async move {
            let BatchPlan {
                merchant: m,
                clearing,
                draft,
            } = plan;
            let terms = m.settlement.0.clone();
            // No bank account to pay to: nothing leaves available.
            let min_payout = if terms.payout_account.is_some() {
                terms.min_payout
            } else {
                i64::MAX
            };
            let id = transfer_id("batch", m.id, date);
            let mut netted = None;
            post(
                state,
                &m,
                currency,
                id,
                "the settlement batch",
                |available, _, fresh| {
                    let n = engine::settlement::batch(available, clearing.owed, min_payout)
                        .map_err(|e| Error::Storage(e.to_string()))?;
                    netted = Some(n);
                    if draft.is_none() && n.legs.is_empty() {
                        // Nothing matured and nothing moves: no batch.
                        return Ok((n.legs, Vec::new()));
                    }
                    let mut c = clearing.clone();
                    c.owed = n.owed;
                    c.paid_out = fresh.paid_out;
                    c.in_transit = fresh.in_transit + n.payout;
                    let now = now_ns();
                    let mut b = draft.clone().unwrap_or_else(|| {
                        SettlementBatch::new(m.id, date, currency.numeric(), now)
                    });
                    b.owed_before = clearing.owed;
                    b.offset = n.offset;
                    b.payout = n.payout;
                    b.kept = n.kept;
                    b.owed_after = n.owed;
                    b.netted = true;
                    b.updated_at_ns = now;
                    // Pending: a payout to send, or money kept below `min_payout`.
                    b.status = if n.payout == 0 && n.owed > 0 {
                        BatchStatus::Carried
                    } else if n.payout > 0 || n.kept > 0 {
                        BatchStatus::Pending
                    } else {
                        BatchStatus::Paid
                    };
                    let mut recs = vec![(records::clearing_key(m.id), records::encode(&c))];
                    recs.extend(batch_records(&b));
                    if n.payout > 0 {
                        // To send: `crate::payouts` picks it up.
                        recs.push(crate::payouts::open_marker(date, m.id));
                    }
                    Ok((n.legs, recs))
                },
            )
            .await?;
            if let Some(n) = netted.filter(|n| !n.legs.is_empty() || draft.is_some()) {
                let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                t.merchants += 1;
                t.carried += i128::from(n.owed);
                if n.payout > 0 {
                    t.payouts += 1;
                    t.paid += i128::from(n.payout);
                }
            }
            Ok(())
        }
    })
    .await?;
    let t = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(format!(
        "{} batch(es), {} payout(s) of {} in transit, {} owed carried",
        t.merchants,
        t.payouts,
        format_minor(t.paid, currency),
        format_minor(t.carried, currency)
    ))
}

/// A merchant's settlement balances (`GET /v1/merchants/{id}`'s `balances`).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Balances {
    /// Takings not yet matured (T+N); below zero when refunds exceeded them.
    pub pending: String,
    /// Matured, to be paid out by the next settlement batch.
    pub available: String,
    /// Σ payouts the payout channel confirmed.
    pub paid_out: String,
    /// (extension) Payouts sent and not yet confirmed.
    pub in_transit: String,
    /// (extension) A shortfall carried: offset from later income before anything is paid.
    pub owed: String,
}

/// `m`'s balances now.
pub async fn balances(state: &Platform, m: &Merchant) -> Result<Balances> {
    let currency = Currency::from_numeric(m.currency).unwrap_or(state.settings.currency);
    let ledger = state.ledger()?;
    let balance = |a: Option<engine::LiveAccount>| a.map_or(0, |a| a.account.balance);
    let pending = balance(ledger.account(m.pending()).await?);
    let available = balance(ledger.account(m.account).await?);
    let c: Clearing =
        records::read(state.store()?, &records::clearing_key(m.id))?.unwrap_or_default();
    let f = |v: i64| format_minor(v, currency);
    Ok(Balances {
        pending: f(pending),
        available: f(available),
        paid_out: f(c.paid_out),
        in_transit: f(c.in_transit),
        owed: f(c.owed),
    })
}

/// A matured date of a batch.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemView {
    /// The business date the takings were booked on.
    #[cfg_attr(feature = "openapi", schema(format = "date"))]
    pub date: String,
    pub gross: String,
    pub refunds: String,
    pub fees: String,
    /// Shares split off less shares received as a split receiver (negative for a receiver).
    pub splits: String,
    /// What the ledger moved beyond the date's payments and refunds (channel answers booked
    /// on a later date, corrections): net − (gross − refunds − fees − splits).
    pub adjustments: String,
    /// What matured from this date.
    pub net: String,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutView {
    pub channel: Option<String>,
    /// pending, paying, paid, failed (null: nothing to pay).
    pub status: Option<&'static str>,
    pub reference: Option<String>,
    pub amount: String,
    pub failure: Option<String>,
}

/// A settlement batch (`GET /v1/settlements`).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettlementView {
    pub id: String,
    pub merchant_id: String,
    /// The business date whose day-end made it.
    #[cfg_attr(feature = "openapi", schema(format = "date"))]
    pub date: String,
    pub currency: &'static str,
    pub gross: String,
    pub refunds: String,
    pub fees: String,
    /// Shares split off less shares received as a split receiver (negative for a receiver).
    pub splits: String,
    pub adjustments: String,
    /// What matured into available: gross − refunds − fees − splits + adjustments.
    pub net: String,
    /// (extension) Owed by the merchant before the batch, offset from available, and after.
    pub owed_before: String,
    pub offset: String,
    pub carried: String,
    /// (extension) Left available (below `min_payout`, or no payout account).
    pub kept: String,
    /// pending, paying, paid, failed or carried.
    pub status: &'static str,
    pub payout: PayoutView,
    pub created_at: String,
    /// The matured dates (`GET /v1/settlements/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<ItemView>>,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettlementList {
    pub data: Vec<SettlementView>,
    pub has_more: bool,
}

fn item_view(i: &SettlementItem, currency: Currency) -> ItemView {
    let f = |v: i64| format_minor(v, currency);
    let explained =
        i128::from(i.gross) - i128::from(i.refunds) - i128::from(i.fees) - i128::from(i.splits);
    ItemView {
        date: i.date.to_string(),
        gross: f(i.gross),
        refunds: f(i.refunds),
        fees: f(i.fees),
        splits: f(i.splits),
        adjustments: format_minor(i128::from(i.net) - explained, currency),
        net: f(i.net),
    }
}

pub fn view(b: &SettlementBatch, with_items: bool) -> SettlementView {
    let currency = Currency::from_numeric(b.currency).unwrap_or(Currency::CNY);
    let f = |v: i128| format_minor(v, currency);
    let sum =
        |g: fn(&SettlementItem) -> i64| b.items.iter().map(|i| i128::from(g(i))).sum::<i128>();
    let (gross, refunds, fees, splits) = (
        sum(|i| i.gross),
        sum(|i| i.refunds),
        sum(|i| i.fees),
        sum(|i| i.splits),
    );
    let net = i128::from(b.matured);
    let payout_status = match b.status {
        _ if b.payout == 0 => None,
        BatchStatus::Carried => None,
        s => Some(s.name()),
    };
    SettlementView {
        id: batch_id_text(b.date, b.merchant),
        merchant_id: merchant_id_text(b.merchant),
        date: b.date.to_string(),
        currency: currency.code(),
        gross: f(gross),
        refunds: f(refunds),
        fees: f(fees),
        splits: f(splits),
        adjustments: f(net - (gross - refunds - fees - splits)),
        net: f(net),
        owed_before: f(i128::from(b.owed_before)),
        offset: f(i128::from(b.offset)),
        carried: f(i128::from(b.owed_after)),
        kept: f(i128::from(b.kept)),
        status: b.status.name(),
        payout: PayoutView {
            channel: b.payout_channel.clone(),
            status: payout_status,
            reference: b.payout_reference.clone(),
            amount: f(i128::from(b.payout)),
            failure: b.failure.clone(),
        },
        created_at: records::time_text(b.created_at_ns),
        items: with_items.then(|| b.items.iter().map(|i| item_view(i, currency)).collect()),
    }
}

/// Batches listed per request at most.
pub const LIST_MAX: usize = 1_000;

/// `GET /v1/settlements?merchant_id=&date=`: a merchant sees its own only. Lists what is
/// hot: the batches of dates past the refund window are shelved (read one by id).
pub fn list(
    state: &Platform,
    caller: &Caller,
    merchant_text: Option<&str>,
    date_text: Option<&str>,
) -> Result<SettlementList> {
    let store = state.store()?;
    let merchant = match (caller, merchant_text) {
        (Caller::Merchant(m), None) => Some(m.id),
        (_, Some(text)) => {
            let id = crate::merchants::parse_merchant_id(text).ok_or_else(|| {
                Error::invalid("invalid_parameter", format!("no merchant {text:?}"))
                    .with_param("merchant_id")
            })?;
            if !caller.may_see(id) {
                // Another merchant's: nothing to show (the HTTP layer answers 403 first).
                return Ok(SettlementList {
                    data: Vec::new(),
                    has_more: false,
                });
            }
            Some(id)
        }
        (Caller::Admin, None) => None,
    };
    let date = date_text
        .map(|t| {
            BusinessDate::parse(t).ok_or_else(|| {
                Error::invalid(
                    "invalid_parameter",
                    format!("date must be YYYY-MM-DD, got {t:?}"),
                )
                .with_param("date")
            })
        })
        .transpose()?;
    let mut out = Vec::new();
    let mut push = |b: SettlementBatch| out.push(b);
    match (merchant, date) {
        (Some(m), Some(d)) => {
            if let Some(b) =
                records::read::<SettlementBatch>(store, &records::settlement_batch_key(d, m))?
            {
                push(b);
            }
        }
        (Some(m), None) => {
            let prefix = records::settlement_by_merchant_prefix(m);
            let mut dates = Vec::new();
            store.for_each_aux_with_prefix(&prefix, LIST_MAX + 1, |k, _| {
                let raw = &k[prefix.len()..];
                if let Ok(b) = <[u8; 4]>::try_from(raw) {
                    dates.push(BusinessDate(i32::from_be_bytes(b)));
                }
                Ok(())
            })?;
            for d in dates {
                if let Some(b) =
                    records::read::<SettlementBatch>(store, &records::settlement_batch_key(d, m))?
                {
                    push(b);
                }
            }
        }
        (None, Some(d)) => {
            store.for_each_aux_with_prefix(
                &records::settlement_batch_prefix(d),
                LIST_MAX + 1,
                |k, v| {
                    push(records::decode(k, v)?);
                    Ok(())
                },
            )?;
        }
        (None, None) => {
            store.for_each_aux_with_prefix(
                records::prefix::SETTLEMENT_BATCH,
                LIST_MAX + 1,
                |k, v| {
                    push(records::decode(k, v)?);
                    Ok(())
                },
            )?;
        }
    }
    let has_more = out.len() > LIST_MAX;
    out.truncate(LIST_MAX);
    Ok(SettlementList {
        data: out.iter().map(|b| view(b, false)).collect(),
        has_more,
    })
}

/// The batch `id_text`, if `caller` may see it.
pub fn load(state: &Platform, caller: &Caller, id_text: &str) -> Result<SettlementBatch> {
    let not_found = || Error::not_found(format!("no settlement {id_text:?}"));
    let (date, merchant) = parse_batch_id(id_text).ok_or_else(not_found)?;
    if !caller.may_see(merchant) {
        return Err(not_found());
    }
    let store = state.store()?;
    // A date past the refund window is shelved with its batches (`crate::shelf`).
    crate::shelf::read_dated(store, date, &records::settlement_batch_key(date, merchant))?
        .ok_or_else(not_found)
}

/// `GET /v1/settlements/{id}`: the batch with its items.
pub fn get(state: &Platform, caller: &Caller, id_text: &str) -> Result<SettlementView> {
    Ok(view(&load(state, caller, id_text)?, true))
}

/// The batch's statement as CSV: one row per matured date, then the batch's totals and its
/// payout.
pub fn statement_csv(state: &Platform, caller: &Caller, id_text: &str) -> Result<String> {
    let b = load(state, caller, id_text)?;
    let v = view(&b, true);
    let mut out = String::from(
        "settlement_id,merchant_id,row,date,gross,refunds,fees,splits,adjustments,net\n",
    );
    for i in v.items.as_deref().unwrap_or_default() {
        out.push_str(&format!(
            "{},{},item,{},{},{},{},{},{},{}\n",
            v.id, v.merchant_id, i.date, i.gross, i.refunds, i.fees, i.splits, i.adjustments, i.net
        ));
    }
    out.push_str(&format!(
        "{},{},total,{},{},{},{},{},{},{}\n",
        v.id, v.merchant_id, v.date, v.gross, v.refunds, v.fees, v.splits, v.adjustments, v.net
    ));
    out.push_str(&format!(
        "{},{},owed_offset,{},,,,,,{}\n{},{},payout,{},,,,,,{}\n{},{},carried,{},,,,,,{}\n{},{},kept,{},,,,,,{}\n",
        v.id, v.merchant_id, v.date, v.offset,
        v.id, v.merchant_id, v.date, v.payout.amount,
        v.id, v.merchant_id, v.date, v.carried,
        v.id, v.merchant_id, v.date, v.kept,
    ));
    Ok(out)
}

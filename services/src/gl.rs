//! The general ledger's flows (issue #15; `../shared/FUNDS.md`, "Business date and day-end",
//! "General ledger"). The rules are `engine::gl`; this module keeps the business date.
//!
//! The business date is not the wall clock: the first start sets it to the wall-clock date
//! in the configured time zone (`timezone`, `Asia/Shanghai` unless set; never the machine's
//! own zone), and from then on only a day-end moves it. It is one durable record
//! ([`storage::records::GlDates`]).

use std::time::SystemTime;

use std::collections::BTreeMap;

use engine::gl::{BusinessDate, GlAccount, OpenPeriod, Turnover};
use engine::money::format_minor;
use engine::{AccountId, Currency, Effect, Transfer, TransferKind};
use serde::{Deserialize, Serialize};
use storage::records::{self, GlDates, GlDayRow};

use crate::error::{Error, Result};
use crate::platform::Platform;

/// The time zone called `name` in payd's own copy of the tz database.
pub fn time_zone(name: &str) -> std::result::Result<jiff::tz::TimeZone, String> {
    jiff::tz::db()
        .get(name)
        .map_err(|_| format!("unknown time zone {name:?} (an IANA name such as Asia/Shanghai)"))
}

/// The calendar date at `now` in `zone`; an error only for a clock outside 1970..=9999.
pub fn date_in(
    zone: &jiff::tz::TimeZone,
    now: SystemTime,
) -> std::result::Result<BusinessDate, String> {
    let at = jiff::Timestamp::try_from(now)
        .map_err(|e| format!("the clock reads outside jiff's range: {e}"))?;
    let date = zone.to_datetime(at).date();
    let (year, month, day) = (
        i32::from(date.year()),
        u32::try_from(date.month()).unwrap_or(0),
        u32::try_from(date.day()).unwrap_or(0),
    );
    BusinessDate::from_ymd(year, month, day)
        .ok_or_else(|| format!("the clock reads {date}, outside 1970..=9999"))
}

/// The ledger's dates; written at the first start (from the wall clock in `zone`), durable
/// before payd is ready, so every later start reads the same.
pub async fn ensure_dates(
    ledger: &actors::Ledger,
    store: &storage::Store,
    zone: &jiff::tz::TimeZone,
) -> std::result::Result<GlDates, String> {
    let key = records::gl_dates_key();
    let dates = match records::read::<GlDates>(store, &key).map_err(|e| e.to_string())? {
        Some(dates) => dates,
        None => {
            let dates = GlDates {
                business_date: date_in(zone, SystemTime::now())?,
                closed_through: None,
            };
            ledger
                .write_records(vec![(key, records::encode(&dates))])
                .await
                .map_err(|e| e.to_string())?;
            dates
        }
    };
    // Every transfer from now on is dated in this period.
    ledger.open_period(OpenPeriod {
        open: dates.business_date,
        closed_through: dates.closed_through,
    });
    Ok(dates)
}

/// Gives merchants written before the chart of accounts their place in it, once: the
/// balance account moves to merchants' available balances (GL 2102, by a `GlAssigned`
/// entry, its balance with it), and a pending-settlement account (GL 2101, allowed below
/// zero: payments land there from now on, and it is the v1 `account_id`) is created with
/// the merchant's record naming it in the same write (also replacing an empty one made
/// before settlement, which could not go below zero). Answers how many merchants changed.
/// Idempotent: a crash halfway is finished by the next start.
pub async fn migrate_merchants(
    ledger: &actors::Ledger,
    store: &storage::Store,
) -> std::result::Result<usize, String> {
    let merchants = crate::merchants::all(store).map_err(|e| e.to_string())?;
    let mut changed = 0;
    for mut m in merchants {
        let mut touched = false;
        let account = store
            .account(m.account)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("merchant {:032x} has no account {}", m.id, m.account))?;
        if account.gl != GlAccount::MerchantAvailable {
            ledger
                .assign_gl(m.account, GlAccount::MerchantAvailable)
                .await
                .map_err(|e| e.to_string())?
                .map_err(|r| format!("moving {} to GL 2102: {r}", m.account))?;
            touched = true;
        }
        // Its pending account (where payments land) must exist and may go below zero; one
        // made before settlement (credit limit 0, never credited) is replaced by a new one.
        let usable = match m.pending_account.0 {
            None => false,
            Some(p) => {
                let a = store
                    .account(p)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("merchant {:032x} has no account {p}", m.id))?;
                if a.credit_limit < crate::merchants::PENDING_OVERDRAFT && a.balance != 0 {
                    return Err(format!(
                        "merchant {:032x}'s pending account {p} holds money but cannot go below zero",
                        m.id
                    ));
                }
                a.credit_limit >= crate::merchants::PENDING_OVERDRAFT
            }
        };
        if !usable {
            let pending = AccountId(crate::platform::new_id());
            m.pending_account = records::Tail(Some(pending));
            let record = (records::merchant_key(m.id), records::encode(&m));
            ledger
                .create_account_in(
                    pending,
                    account.currency,
                    GlAccount::MerchantPending,
                    crate::merchants::PENDING_OVERDRAFT,
                    vec![record, crate::merchants::by_account_record(&m)],
                )
                .await
                .map_err(|e| e.to_string())?
                .map_err(|r| format!("creating merchant {:032x}'s pending account: {r}", m.id))?;
            touched = true;
        } else if records::read::<u128>(store, &records::merchant_by_account_key(m.pending()))
            .map_err(|e| e.to_string())?
            .is_none()
        {
            // Merchants made before profit sharing: the index that finds a split's receiver.
            ledger
                .write_records(vec![crate::merchants::by_account_record(&m)])
                .await
                .map_err(|e| e.to_string())?;
            touched = true;
        }
        changed += usize::from(touched);
    }
    Ok(changed)
}

/// The business date and the last closed one, as `GET /v1/gl/business_date` answers them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatesView {
    /// The open business date, `YYYY-MM-DD`.
    #[cfg_attr(feature = "openapi", schema(example = "2026-12-01", format = "date"))]
    pub business_date: String,
    /// The last closed business date; null before the first day-end.
    #[cfg_attr(feature = "openapi", schema(example = "2026-11-30", format = "date"))]
    pub closed_through: Option<String>,
}

/// The business date now.
pub fn dates(state: &Platform) -> Result<DatesView> {
    let store = state.store()?;
    let dates = records::read::<GlDates>(store, &records::gl_dates_key())?
        .ok_or_else(|| Error::Storage("the business date record is missing".into()))?;
    Ok(DatesView {
        business_date: dates.business_date.to_string(),
        closed_through: dates.closed_through.map(|d| d.to_string()),
    })
}

/// One GL account's balance, as `GET /v1/gl/accounts` answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GlAccountView {
    /// The chart's code (docs/GL.md).
    #[cfg_attr(feature = "openapi", schema(example = "2001"))]
    pub code: String,
    #[cfg_attr(feature = "openapi", schema(example = "customer balances"))]
    pub name: &'static str,
    /// `asset`, `liability`, `equity`, `income` or `expense`.
    #[cfg_attr(feature = "openapi", schema(example = "liability"))]
    pub r#type: &'static str,
    #[cfg_attr(feature = "openapi", schema(example = "CNY"))]
    pub currency: &'static str,
    /// The sum of its ledger accounts, signed on the account's normal side (debit for
    /// assets and expenses, credit for the rest): positive when it holds what it is for.
    #[cfg_attr(feature = "openapi", schema(example = "1024.50"))]
    pub balance: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GlAccountList {
    pub data: Vec<GlAccountView>,
}

/// The currencies the GL shows: the platform's, and any other with a balance.
fn currencies(state: &Platform, balances: &[(Currency, GlAccount, i128)]) -> Vec<Currency> {
    let mut out = vec![state.settings.currency];
    for (c, _, _) in balances {
        if !out.contains(c) {
            out.push(*c);
        }
    }
    out
}

/// Every GL account of the chart in every currency the GL shows, with its balance now.
/// O(GL accounts): the balances are kept with the writes.
pub fn accounts(state: &Platform) -> Result<GlAccountList> {
    let book = state.store()?.gl_book();
    let balances: Vec<_> = book.balances().collect();
    let mut data = Vec::new();
    for currency in currencies(state, &balances) {
        for gl in GlAccount::ALL {
            data.push(GlAccountView {
                code: gl.code().to_string(),
                name: gl.name(),
                r#type: gl.gl_type().name(),
                currency: currency.code(),
                balance: format_minor(gl.on_normal_side(book.balance(currency, gl)), currency),
            });
        }
    }
    Ok(GlAccountList { data })
}

/// One row of a trial balance; `opening` and `closing` debit-positive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrialBalanceRowView {
    #[cfg_attr(feature = "openapi", schema(example = "1001"))]
    pub code: String,
    #[cfg_attr(feature = "openapi", schema(example = "reserve"))]
    pub name: &'static str,
    #[cfg_attr(feature = "openapi", schema(example = "10000.00"))]
    pub opening: String,
    #[cfg_attr(feature = "openapi", schema(example = "250.00"))]
    pub debit: String,
    #[cfg_attr(feature = "openapi", schema(example = "0.00"))]
    pub credit: String,
    #[cfg_attr(feature = "openapi", schema(example = "10250.00"))]
    pub closing: String,
}

/// `GET /v1/gl/trial_balance`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrialBalanceView {
    #[cfg_attr(feature = "openapi", schema(example = "2026-12-01", format = "date"))]
    pub date: String,
    #[cfg_attr(feature = "openapi", schema(example = "CNY"))]
    pub currency: &'static str,
    /// Every GL account with an opening balance or turnover on the date, in code order.
    pub rows: Vec<TrialBalanceRowView>,
    pub total_debit: String,
    pub total_credit: String,
    /// Debits equal credits, and the openings and closings each sum to zero.
    pub balanced: bool,
    /// The date is closed: its figures are final.
    pub closed: bool,
}

/// The GL's figures of `date`, debit-positive, for every currency and GL account with an
/// opening balance or turnover on it, in (currency, code) order: each GL account's balance
/// now, minus the turnover of the dates after `date`, is its closing; minus the date's own,
/// its opening. O(GL accounts × dates since).
pub fn day_rows(store: &storage::Store, date: BusinessDate) -> Result<Vec<GlDayRow>> {
    let cut = store.gl_since(date)?;
    let overflow = || Error::Storage("a GL sum overflows i128".into());
    // Credit-positive closing of `date`.
    let mut closing: BTreeMap<(Currency, GlAccount), i128> = cut
        .balances
        .iter()
        .map(|(c, g, b)| ((*c, *g), *b))
        .collect();
    let empty = Turnover::default();
    let mut today = &empty;
    for (d, day) in &cut.days {
        if *d == date {
            today = day;
            continue;
        }
        for (c, gl, m) in day.movements() {
            let slot = closing.entry((c, gl)).or_default();
            *slot = slot
                .checked_sub(m.credit)
                .and_then(|v| v.checked_add(m.debit))
                .ok_or_else(overflow)?;
        }
    }
    for (c, gl, _) in today.movements() {
        closing.entry((c, gl)).or_default();
    }
    let mut rows = Vec::new();
    for ((currency, gl), credit_positive) in closing {
        let m = today.movement(gl, currency);
        let closing = credit_positive.checked_neg().ok_or_else(overflow)?;
        let opening = closing
            .checked_sub(m.debit)
            .and_then(|v| v.checked_add(m.credit))
            .ok_or_else(overflow)?;
        if opening == 0 && m.postings == 0 {
            continue;
        }
        rows.push(GlDayRow {
            currency,
            gl,
            opening,
            debit: m.debit,
            credit: m.credit,
            closing,
        });
    }
    Ok(rows)
}

/// The period readers see: the ledger's, or the stored record's before the ledger started.
fn period(state: &Platform) -> Result<OpenPeriod> {
    if let Some(p) = state.ledger().ok().and_then(|l| l.period()) {
        return Ok(p);
    }
    let dates = records::read::<GlDates>(state.store()?, &records::gl_dates_key())?
        .ok_or_else(|| Error::Storage("the business date record is missing".into()))?;
    Ok(OpenPeriod {
        open: dates.business_date,
        closed_through: dates.closed_through,
    })
}

/// A `YYYY-MM-DD` query parameter, or `400 invalid_parameter` naming it.
pub(crate) fn parse_date(text: &str, param: &'static str) -> Result<BusinessDate> {
    BusinessDate::parse(text).ok_or_else(|| {
        Error::invalid(
            "invalid_parameter",
            format!("{param} must be a date YYYY-MM-DD, got {text:?}"),
        )
        .with_param(param)
    })
}

/// The trial balance of `date` (the open date unless given; a later date has no turnover
/// yet) in `currency` (the platform's unless given). O(GL accounts × dates since): each GL account's balance now, minus the
/// turnover of the dates after `date`, is its closing; minus the date's own, its opening.
/// A closed date's figures never change (nothing is booked on it any more).
pub fn trial_balance(
    state: &Platform,
    date: Option<&str>,
    currency: Option<&str>,
) -> Result<TrialBalanceView> {
    let period = period(state)?;
    let date = match date {
        Some(text) => parse_date(text, "date")?,
        None => period.open,
    };
    // A date after the open one has nothing booked yet: it opens and closes at today's
    // balances.
    let currency = match currency {
        Some(text) => Currency::from_code(text).map_err(|e| {
            Error::invalid("invalid_currency", e.to_string()).with_param("currency")
        })?,
        None => state.settings.currency,
    };
    let store = state.store()?;
    // A closed date's figures as its day-end froze them; otherwise from the running book.
    let frozen = crate::day_end::load(store, date)?
        .filter(|d| {
            d.steps
                .iter()
                .any(|s| s.name == "snapshot_gl" && s.status == records::DayEndStatus::Done)
        })
        .map(|d| d.gl);
    let rows = match frozen {
        Some(rows) => rows,
        None => day_rows(store, date)?,
    };
    let overflow = || Error::Storage("a GL sum overflows i128".into());
    let rows: Vec<GlDayRow> = rows
        .into_iter()
        .filter(|r| r.currency == currency)
        .collect();
    let (mut total_debit, mut total_credit, mut opening_sum, mut closing_sum) =
        (0i128, 0i128, 0i128, 0i128);
    for r in &rows {
        total_debit = total_debit.checked_add(r.debit).ok_or_else(overflow)?;
        total_credit = total_credit.checked_add(r.credit).ok_or_else(overflow)?;
        opening_sum = opening_sum.checked_add(r.opening).ok_or_else(overflow)?;
        closing_sum = closing_sum.checked_add(r.closing).ok_or_else(overflow)?;
    }
    let tb = engine::gl::TrialBalance {
        currency,
        rows: rows
            .iter()
            .map(|r| engine::gl::TrialBalanceRow {
                gl: r.gl,
                opening: r.opening,
                debit: r.debit,
                credit: r.credit,
                closing: r.closing,
            })
            .collect(),
        total_debit,
        total_credit,
        balanced: total_debit == total_credit && opening_sum == 0 && closing_sum == 0,
    };
    let money = |v: i128| format_minor(v, currency);
    Ok(TrialBalanceView {
        date: date.to_string(),
        currency: currency.code(),
        rows: tb
            .rows
            .iter()
            .map(|r| TrialBalanceRowView {
                code: r.gl.code().to_string(),
                name: r.gl.name(),
                opening: money(r.opening),
                debit: money(r.debit),
                credit: money(r.credit),
                closing: money(r.closing),
            })
            .collect(),
        total_debit: money(tb.total_debit),
        total_credit: money(tb.total_credit),
        balanced: tb.balanced,
        closed: period.closed_through.is_some_and(|c| date <= c),
    })
}

/// One leg of a journal entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JournalLegView {
    #[cfg_attr(
        feature = "openapi",
        schema(example = "acct_0190f0e1c2d3a4b5c6d7e8f901234567")
    )]
    pub account_id: String,
    /// The GL account the leg is booked to; null for entries written before the chart.
    #[cfg_attr(feature = "openapi", schema(example = "2001"))]
    pub gl_code: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "32.50"))]
    pub debit: String,
    #[cfg_attr(feature = "openapi", schema(example = "0.00"))]
    pub credit: String,
}

/// One journal entry (a balanced set of legs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JournalEntryView {
    /// The transfer's id.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "tr_0190f0e1c2d3a4b5c6d7e8f901234567")
    )]
    pub id: String,
    /// Its position in the journal; `after` pages by it. Null in the answer of
    /// `POST /v1/gl/entries` (known once written: the listing shows it).
    pub seq: Option<u64>,
    /// Null for entries written before the chart.
    #[cfg_attr(feature = "openapi", schema(example = "2026-12-01", format = "date"))]
    pub accounting_date: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "2026-12-01", format = "date"))]
    pub value_date: Option<String>,
    /// `payment`, `refund`, `deposit`, `transfer` or `adjustment`.
    #[cfg_attr(feature = "openapi", schema(example = "payment"))]
    pub kind: &'static str,
    /// The payment (`pay_…`) or refund (`re_…`) the entry books, for those kinds.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "pay_0190f0e1c2d3a4b5c6d7e8f901234567")
    )]
    pub reference: Option<String>,
    pub legs: Vec<JournalLegView>,
}

/// `GET /v1/gl/entries`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JournalEntryList {
    pub data: Vec<JournalEntryView>,
    pub has_more: bool,
    /// Where the next page starts (`after=`): the last entry read, which may be past the
    /// last one listed when the filters skipped entries.
    pub next_after: Option<u64>,
}

/// The filters of `GET /v1/gl/entries`.
#[derive(Clone, Debug, Default)]
pub struct EntryQuery<'a> {
    pub date: Option<&'a str>,
    pub gl_code: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub after: Option<u64>,
    pub limit: Option<usize>,
}

/// Entries per page unless asked, and at most.
pub const ENTRIES_PAGE: usize = 50;
pub const ENTRIES_PAGE_MAX: usize = 500;
/// Journal entries one request reads at most (the filters may skip most of them): bounds
/// a request's work; `has_more` and `next_after` say where to go on.
pub const ENTRIES_SCAN_MAX: usize = 20_000;

fn entry_view(seq: Option<u64>, t: &Transfer) -> JournalEntryView {
    let (kind, reference) = match t.kind {
        TransferKind::Payment => ("payment", Some(crate::payments::payment_id_text(t.id.0))),
        TransferKind::Refund => ("refund", Some(format!("re_{:032x}", t.id.0))),
        TransferKind::Deposit => ("deposit", None),
        TransferKind::Transfer => ("transfer", None),
        TransferKind::Adjustment => ("adjustment", None),
        TransferKind::Settlement => ("settlement", None),
        TransferKind::Treasury => ("treasury", None),
        TransferKind::Reconciliation => ("reconciliation", None),
        TransferKind::Coupon => ("coupon", None),
        TransferKind::Credit => ("credit", None),
        TransferKind::Authorization => ("authorization", None),
    };
    JournalEntryView {
        id: t.id.to_string(),
        seq,
        accounting_date: t.accounting_date.map(|d| d.to_string()),
        value_date: t.value_date.map(|d| d.to_string()),
        kind,
        reference,
        legs: t
            .postings
            .iter()
            .map(|p| JournalLegView {
                account_id: p.account.to_string(),
                gl_code: p.gl.map(|g| g.code().to_string()),
                debit: format_minor(
                    if p.amount < 0 {
                        -i128::from(p.amount)
                    } else {
                        0
                    },
                    p.currency,
                ),
                credit: format_minor(p.amount.max(0), p.currency),
            })
            .collect(),
    }
}

/// The first journal position that may hold an entry dated `date`: entries are dated in
/// journal order (the coordinator stamps the open date, and only a switch moves it), so a
/// binary search over positions, reading a few entries at each, finds it in O(log n).
fn first_seq_dated(store: &storage::Store, date: BusinessDate) -> Result<u64> {
    let date_at = |seq: u64| -> Result<Option<BusinessDate>> {
        // The first dated entry at or after `seq` (a few undated ones may sit between).
        for e in store.entries(seq, 64)? {
            for effect in &e.effects {
                match effect {
                    Effect::Posted(t) if t.accounting_date.is_some() => {
                        return Ok(t.accounting_date)
                    }
                    Effect::DateSwitched { to, .. } => return Ok(Some(*to)),
                    _ => {}
                }
            }
        }
        Ok(None)
    };
    let (mut lo, mut hi) = (1u64, store.last_seq() + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match date_at(mid)? {
            Some(d) if d < date => lo = mid + 1,
            _ => hi = mid,
        }
    }
    // A few positions back: undated entries just before it cost nothing to skip.
    Ok(lo.saturating_sub(64).max(1))
}

/// The journal, filtered and paged in journal order.
pub fn entries(state: &Platform, q: EntryQuery<'_>) -> Result<JournalEntryList> {
    let store = state.store()?;
    let date = q.date.map(|t| parse_date(t, "date")).transpose()?;
    // A well-formed code the chart does not have matches nothing (an empty page).
    let gl = match q.gl_code {
        None => None,
        Some(text) => {
            let code = (text.len() == 4)
                .then(|| text.parse::<u16>().ok())
                .flatten()
                .ok_or_else(|| {
                    Error::invalid(
                        "invalid_parameter",
                        format!("gl_code must be four digits, got {text:?}"),
                    )
                    .with_param("gl_code")
                })?;
            Some(GlAccount::from_code(code))
        }
    };
    let account = match q.account_id {
        None => None,
        Some(text) => Some(AccountId::parse(text).ok_or_else(|| {
            Error::invalid("invalid_parameter", format!("no account id {text:?}"))
                .with_param("account_id")
        })?),
    };
    let limit = q.limit.unwrap_or(ENTRIES_PAGE);
    if !(1..=ENTRIES_PAGE_MAX).contains(&limit) {
        return Err(Error::invalid(
            "invalid_parameter",
            format!("limit must be 1..={ENTRIES_PAGE_MAX}"),
        )
        .with_param("limit"));
    }
    let mut from = match (q.after, date) {
        (Some(after), _) => after.saturating_add(1),
        (None, Some(d)) => first_seq_dated(store, d)?,
        (None, None) => 1,
    };
    let mut data = Vec::new();
    let mut scanned = 0usize;
    let mut last_read = None;
    let mut past_date = false;
    'scan: while scanned < ENTRIES_SCAN_MAX && !past_date {
        let chunk = store.entries(from, 1_024.min(ENTRIES_SCAN_MAX - scanned))?;
        if chunk.is_empty() {
            break;
        }
        for e in chunk {
            scanned += 1;
            from = e.seq + 1;
            for effect in &e.effects {
                let Effect::Posted(t) = effect else { continue };
                if let (Some(want), Some(d)) = (date, t.accounting_date) {
                    if d > want {
                        past_date = true;
                        break 'scan;
                    }
                    if d < want {
                        continue;
                    }
                }
                if date.is_some() && t.accounting_date.is_none() {
                    continue;
                }
                if gl.is_some_and(|g| g.is_none() || !t.postings.iter().any(|p| p.gl == g)) {
                    continue;
                }
                if account.is_some_and(|a| !t.postings.iter().any(|p| p.account == a)) {
                    continue;
                }
                data.push(entry_view(Some(e.seq), t));
            }
            last_read = Some(e.seq);
            if data.len() >= limit {
                break 'scan;
            }
        }
    }
    let has_more = !past_date && last_read.is_some_and(|s| s < store.last_seq());
    Ok(JournalEntryList {
        data,
        has_more,
        next_after: if has_more { last_read } else { None },
    })
}

/// One leg of a manual entry: exactly one of `debit` and `credit`.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateLeg {
    #[cfg_attr(
        feature = "openapi",
        schema(example = "acct_0190f0e1c2d3a4b5c6d7e8f901234567")
    )]
    pub account_id: String,
    #[cfg_attr(feature = "openapi", schema(example = "10.00"))]
    pub debit: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "10.00"))]
    pub credit: Option<String>,
}

/// `POST /v1/gl/entries`: a manual entry (a correction) by finance staff.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateEntry {
    #[cfg_attr(feature = "openapi", schema(example = "CNY", pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
    /// 2 to 8 legs on distinct accounts of `currency`; debits equal credits.
    pub legs: Vec<CreateLeg>,
    /// The open business date (the default). A closed date is refused (`period_closed`):
    /// a closed day is corrected by an entry in the open one.
    #[cfg_attr(feature = "openapi", schema(example = "2026-12-02", format = "date"))]
    pub accounting_date: Option<String>,
    /// When what it corrects happened (default: the accounting date); not after it.
    #[cfg_attr(feature = "openapi", schema(example = "2026-12-01", format = "date"))]
    pub value_date: Option<String>,
    /// Why (kept in the audit log).
    #[cfg_attr(
        feature = "openapi",
        schema(example = "reverse the duplicate deposit of 2026-12-01")
    )]
    pub memo: String,
}

/// Longest memo of a manual entry, in bytes.
pub const MEMO_LEN_MAX: usize = 500;

/// Books a manual entry, durably with its audit entry; answers the entry as
/// `GET /v1/gl/entries` shows it.
pub async fn create_entry(
    state: &Platform,
    actor: &crate::audit::Actor,
    body: CreateEntry,
    idem: Option<&crate::idempotency::Guard<'_>>,
) -> Result<Vec<u8>> {
    let currency = crate::accounts::parse_currency(&body.currency)?;
    if body.memo.trim().is_empty() || body.memo.len() > MEMO_LEN_MAX {
        return Err(Error::invalid(
            "invalid_parameter",
            format!("memo must say why, in 1 to {MEMO_LEN_MAX} bytes"),
        )
        .with_param("memo"));
    }
    crate::accounts::check_text(&Some(body.memo.clone()), "memo")?;
    let mut postings = Vec::with_capacity(body.legs.len());
    for (i, leg) in body.legs.iter().enumerate() {
        let account = AccountId::parse(&leg.account_id).ok_or_else(|| {
            Error::invalid(
                "invalid_parameter",
                format!("no account id {:?}", leg.account_id),
            )
            .with_param(format!("legs[{i}].account_id"))
        })?;
        let amount = match (&leg.debit, &leg.credit) {
            (Some(d), None) => {
                -crate::accounts::parse_positive(d, currency, &format!("legs[{i}].debit"))?
            }
            (None, Some(c)) => {
                crate::accounts::parse_positive(c, currency, &format!("legs[{i}].credit"))?
            }
            _ => {
                return Err(Error::invalid(
                    "invalid_parameter",
                    "each leg has exactly one of debit and credit",
                )
                .with_param(format!("legs[{i}]")))
            }
        };
        postings.push(engine::Posting::new(account, currency, amount));
    }
    let date =
        |text: &Option<String>, param| text.as_deref().map(|t| parse_date(t, param)).transpose();
    let mut transfer = Transfer::new(
        engine::TransferId(crate::platform::new_id()),
        TransferKind::Adjustment,
        postings,
        engine::Timestamp(0),
    );
    transfer.accounting_date = date(&body.accounting_date, "accounting_date")?;
    transfer.value_date = date(&body.value_date, "value_date")?;
    if let Err(reject) = transfer.validate() {
        return Err(crate::accounts::rejected(reject).with_param("legs"));
    }
    let ledger = state.ledger()?;
    // The answer is known once the ledger dates the entry: render it after, and write the
    // idempotency record and the audit entry with it (the ledger's dates are the open
    // period's unless named, and a named one must be the open date).
    let period = state.period()?;
    let (accounting, value) = period
        .stamp(transfer.accounting_date, transfer.value_date)
        .map_err(|r| {
            let param = if r == engine::Reject::InvalidValueDate {
                "value_date"
            } else {
                "accounting_date"
            };
            crate::accounts::rejected(r).with_param(param)
        })?;
    let mut shown = transfer.clone();
    shown.accounting_date = Some(accounting);
    shown.value_date = Some(value);
    let audit_after = serde_json::json!({
        "id": transfer.id.to_string(),
        "currency": currency.code(),
        "accounting_date": accounting.to_string(),
        "value_date": value.to_string(),
        "memo": body.memo,
        "legs": shown.postings.iter().map(|p| serde_json::json!({
            "account_id": p.account.to_string(),
            "amount": engine::money::format_minor(p.amount, currency),
        })).collect::<Vec<_>>(),
    });
    let mut records = vec![crate::audit::record(
        state,
        actor,
        "gl.entry",
        &transfer.id.to_string(),
        None::<&()>,
        Some(&audit_after),
    )];
    // The position is not known before the write, and the answer (replayed byte for byte
    // under its idempotency key) is written with it: it carries the dates and the legs.
    let answer = serde_json::to_vec(&entry_view(None, &shown)).expect("an entry view serializes");
    records.extend(idem.map(|g| g.record(&answer)));
    transfer.accounting_date = Some(accounting);
    transfer.value_date = Some(value);
    ledger
        .transfer_with(transfer, records)
        .await?
        .map_err(crate::accounts::rejected)?;
    Ok(answer)
}

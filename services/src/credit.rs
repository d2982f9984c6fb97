//! Credit lines (信用支付, issue #18, `../shared/FUNDS.md` "Credit lines"): a line lent to an
//! identity-verified customer, drawn by payments (`{"type": "credit"}`), billed at the
//! day-end of its billing day, repaid from the customer's balance (fees, then interest, then
//! principal, oldest bill first), charged daily interest and a late fee when overdue (the
//! day-end's `credit` step), and closed to new draws while overdue. The rules:
//! `engine::credit`.
//!
//! Money. Each line has two ledger accounts in GL 1301 credit receivable: principal (its
//! limit is the line's, so the ledger itself refuses a draw beyond it, under any
//! concurrency) and charges (interest and fees). A draw is a payment whose payer is the
//! principal account: 1301 → the merchant's pending and fee income. Interest is 1301
//! (charges) → 4002 interest income; a late fee 1301 (charges) → 4001 fee income; a
//! repayment 2001 (the customer) → 1301. The reserve never lends: what merchants are owed
//! for credit draws is covered by the lender's money put into the reserve (treasury, as
//! with coupon budgets; the coverage check shows any shortfall).

use engine::credit::{bucket, Applied, Terms};
use engine::gl::{BusinessDate, GlAccount};
use engine::money::{format_fee_rate, format_minor, parse_fee_rate};
use engine::{
    AccountId, Currency, PlatformRole, Posting, Reject, Timestamp, Transfer, TransferId,
    TransferKind,
};
use serde::{Deserialize, Serialize};

use crate::accounts::{ensure_platform_accounts_once, parse_non_negative, parse_positive};
use crate::audit::Actor;
use crate::idempotency::Guard;
use crate::platform::{new_id, now_ns, take_turn, Platform};
use crate::records::{self, CreditLine, Customer};
use crate::{Error, Result};

/// Most days of grace between a bill and its due date.
pub const GRACE_DAYS_MAX: u16 = 60;
/// Largest daily interest rate: 1 % a day.
pub const DAILY_RATE_PPM_MAX: u32 = 10_000;

pub fn line_id_text(id: u128) -> String {
    engine::ids::prefixed_hex("crl_", id)
}

/// `POST /v1/credit_lines`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateLine {
    /// The customer's balance account (an identity-verified customer: KYC level 2).
    #[cfg_attr(feature = "openapi", schema(pattern = r"^acct_[0-9a-f]{32}$"))]
    pub account_id: String,
    /// Most principal outstanding.
    #[cfg_attr(feature = "openapi", schema(example = "1000.00"))]
    pub limit: String,
    /// Day of the month whose day-end issues the bill (1–31; a shorter month bills on its
    /// last day).
    #[serde(deserialize_with = "crate::json_int::int")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 31, example = 10))]
    pub billing_day: u8,
    /// Business days from a bill to its due date (0–60).
    #[serde(deserialize_with = "crate::json_int::int")]
    #[cfg_attr(feature = "openapi", schema(maximum = 60, example = 20))]
    pub grace_days: u16,
    /// Interest per day on overdue principal, a decimal (at most 0.01, 6 decimals).
    #[cfg_attr(feature = "openapi", schema(example = "0.0005"))]
    pub daily_interest_rate: String,
    /// Charged once on a bill whose minimum due was not paid by its due date (default 0).
    #[cfg_attr(feature = "openapi", schema(example = "25.00"))]
    pub late_fee: Option<String>,
    /// Share of a bill's principal due at least by its due date (default 0.1).
    #[cfg_attr(feature = "openapi", schema(example = "0.1"))]
    pub min_due_rate: Option<String>,
}

/// `POST /v1/credit_lines/{id}/repayments`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Repay {
    /// Taken from the customer's balance account.
    #[cfg_attr(feature = "openapi", schema(example = "100.00"))]
    pub amount: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineView {
    id: String,
    customer_id: String,
    account_id: String,
    currency: &'static str,
    limit: String,
    /// Principal outstanding (billed and not).
    drawn: String,
    /// limit − drawn (0 while overdue: draws are refused).
    available: String,
    billed: String,
    unbilled: String,
    /// Interest and fees owed.
    charges: String,
    /// Everything owed: drawn + charges.
    balance: String,
    /// current or overdue.
    status: &'static str,
    /// As of the last closed business date.
    days_past_due: i32,
    /// current, 1-30, 31-60, 61-90, 90+.
    bucket: &'static str,
    billing_day: u8,
    grace_days: u16,
    daily_interest_rate: String,
    min_due_rate: String,
    late_fee: String,
    principal_account_id: String,
    charges_account_id: String,
    created_at: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BillView {
    number: u32,
    /// The business date whose day-end issued it.
    date: String,
    due_date: String,
    principal: String,
    min_due: String,
    interest: String,
    fees: String,
    /// What repayments paid of it.
    paid: BillPaid,
    /// Still owed.
    outstanding: String,
    /// open, paid or overdue.
    status: &'static str,
    days_past_due: i32,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BillPaid {
    principal: String,
    interest: String,
    fees: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BillList {
    /// Oldest first.
    data: Vec<BillView>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RepaymentView {
    id: String,
    credit_line_id: String,
    amount: String,
    /// How it was applied.
    applied: AppliedView,
    credit_line: LineView,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppliedView {
    fees: String,
    interest: String,
    principal: String,
    unbilled: String,
}

fn currency_of(l: &CreditLine) -> Currency {
    Currency::from_numeric(l.currency).expect("stored lines carry an active currency")
}

/// Principal outstanding, as the ledger says.
async fn drawn(state: &Platform, l: &CreditLine) -> Result<i64> {
    let a = state
        .ledger()?
        .account(l.principal_account)
        .await?
        .ok_or_else(|| Error::storage("a credit line's principal account is missing"))?;
    Ok(-a.account.balance)
}

fn line_view(l: &CreditLine, drawn: i64) -> LineView {
    let c = currency_of(l);
    let m = |v: i64| format_minor(v, c);
    let last = l.state.closed_through;
    let days = last.map_or(0, |d| l.state.days_past_due(d));
    let billed = l.state.billed_principal();
    let charges = l.state.charges();
    LineView {
        id: line_id_text(l.id),
        customer_id: crate::customers::customer_id_text(l.customer),
        account_id: l.account.to_string(),
        currency: c.code(),
        limit: m(l.terms.limit),
        drawn: m(drawn),
        available: m(if l.state.overdue() {
            0
        } else {
            (l.terms.limit - drawn).max(0)
        }),
        billed: m(billed),
        unbilled: m((drawn - billed).max(0)),
        charges: m(charges),
        balance: m(drawn + charges),
        status: if l.state.overdue() {
            "overdue"
        } else {
            "current"
        },
        days_past_due: days,
        bucket: bucket(days),
        billing_day: l.terms.billing_day,
        grace_days: l.terms.grace_days,
        daily_interest_rate: format_fee_rate(l.terms.daily_rate_ppm),
        min_due_rate: format_fee_rate(l.terms.min_due_ppm),
        late_fee: m(l.terms.late_fee),
        principal_account_id: l.principal_account.to_string(),
        charges_account_id: l.charges_account.to_string(),
        created_at: records::time_text(l.created_at_ns),
    }
}

fn invalid(param: &str, message: impl Into<String>) -> Error {
    Error::invalid("invalid_parameter", message).with_param(param)
}

/// Opens a credit line on an identity-verified customer's account (operator `actor`).
pub async fn create(
    state: &Platform,
    actor: &Actor,
    body: CreateLine,
    idem: Option<&Guard<'_>>,
) -> Result<Vec<u8>> {
    let not_found =
        || Error::not_found(format!("no account {:?}", body.account_id)).with_param("account_id");
    let account = AccountId::parse(&body.account_id).ok_or_else(not_found)?;
    let customer: Customer = crate::customers::of_account(state, account)?.ok_or_else(|| {
        Error::invalid(
            "invalid_parameter",
            "a credit line is lent to a customer: account_id must be a customer's balance account",
        )
        .with_param("account_id")
    })?;
    let live = state
        .ledger()?
        .account(account)
        .await?
        .ok_or_else(not_found)?;
    let currency = live.account.currency;
    let limit = parse_positive(&body.limit, currency, "limit")?;
    if !(1..=31).contains(&body.billing_day) {
        return Err(invalid("billing_day", "billing_day must be 1 to 31"));
    }
    if body.grace_days > GRACE_DAYS_MAX {
        return Err(invalid(
            "grace_days",
            format!("grace_days must be 0 to {GRACE_DAYS_MAX}"),
        ));
    }
    let daily_rate_ppm = parse_fee_rate(&body.daily_interest_rate)
        .ok()
        .filter(|r| *r <= DAILY_RATE_PPM_MAX)
        .ok_or_else(|| {
            invalid(
                "daily_interest_rate",
                "daily_interest_rate must be 0 to 0.01 with at most 6 decimals",
            )
        })?;
    let min_due_ppm = match &body.min_due_rate {
        Some(t) => parse_fee_rate(t).ok().filter(|r| *r > 0).ok_or_else(|| {
            invalid(
                "min_due_rate",
                "min_due_rate must be more than 0, at most 1",
            )
        })?,
        None => 100_000,
    };
    let late_fee = match &body.late_fee {
        Some(t) => parse_non_negative(t, currency, "late_fee")?,
        None => 0,
    };
    if customer.kyc_level < 2 {
        return Err(Error::conflict(
            "kyc_level_insufficient",
            "credit is lent to identity-verified customers only (KYC level 2)",
        )
        .with_param("account_id"));
    }
    let store = state.store()?;
    if records::read::<u128>(store, &records::credit_line_by_account_key(account))?.is_some() {
        return Err(Error::conflict(
            "credit_line_exists",
            "this account already has a credit line",
        )
        .with_param("account_id"));
    }
    let ledger = state.ledger()?;
    ensure_platform_accounts_once(state, currency).await?;
    let id = new_id();
    let principal = AccountId(new_id());
    let charges = AccountId(new_id());
    // The principal account may go `limit` below zero (what the customer owes): the ledger
    // refuses a draw beyond it. Created first and empty: a crash before the line leaves an
    // account nothing refers to.
    match ledger
        .create_account_in(
            principal,
            currency,
            GlAccount::CreditReceivable,
            limit,
            Vec::new(),
        )
        .await?
    {
        Ok(_) => {}
        Err(Reject::AccountExists(_)) => return Err(Error::storage("id collision; retry")),
        Err(other) => return Err(crate::accounts::rejected(other)),
    }
    let line = CreditLine {
        id,
        customer: customer.id,
        account,
        principal_account: principal,
        charges_account: charges,
        currency: currency.numeric(),
        terms: Terms {
            limit,
            billing_day: body.billing_day,
            grace_days: body.grace_days,
            daily_rate_ppm,
            min_due_ppm,
            late_fee,
        },
        state: engine::credit::State::default(),
        created_at_ns: now_ns(),
        created_by: actor.name.clone(),
        extra: records::Tail(()),
    };
    let answer = serde_json::to_vec(&line_view(&line, 0)).expect("a line view serializes");
    let after: Option<serde_json::Value> = serde_json::from_slice(&answer).ok();
    let mut records = vec![
        (records::credit_line_key(id), records::encode(&line)),
        (
            records::credit_line_by_account_key(account),
            records::encode(&id),
        ),
        crate::audit::record(
            state,
            actor,
            "credit_line.create",
            &line_id_text(id),
            None::<&()>,
            after.as_ref(),
        ),
    ];
    records.extend(idem.map(|g| g.record(&answer)));
    match ledger
        .create_account_in(
            charges,
            currency,
            GlAccount::CreditReceivable,
            i64::MAX,
            records,
        )
        .await?
    {
        Ok(_) => Ok(answer),
        Err(Reject::AccountExists(_)) => Err(Error::storage("id collision; retry")),
        Err(other) => Err(crate::accounts::rejected(other)),
    }
}

/// Line `id_text` (any caller may name it only as the operator; a merchant draws on it by
/// payment only).
pub fn load(state: &Platform, id_text: &str) -> Result<CreditLine> {
    let not_found = || Error::not_found(format!("no credit line {id_text:?}"));
    let id = records::parse_id(id_text, "crl_").ok_or_else(not_found)?;
    records::read(state.store()?, &records::credit_line_key(id))?.ok_or_else(not_found)
}

pub async fn get(state: &Platform, id_text: &str) -> Result<LineView> {
    let l = load(state, id_text)?;
    let d = drawn(state, &l).await?;
    Ok(line_view(&l, d))
}

pub fn bills(state: &Platform, id_text: &str) -> Result<BillList> {
    let l = load(state, id_text)?;
    let c = currency_of(&l);
    let m = |v: i64| format_minor(v, c);
    let last = l.state.closed_through.unwrap_or(BusinessDate(0));
    Ok(BillList {
        data: l
            .state
            .bills
            .iter()
            .map(|b| {
                let days = b.days_past_due(last);
                BillView {
                    number: b.number,
                    date: b.date.to_string(),
                    due_date: b.due.to_string(),
                    principal: m(b.principal),
                    min_due: m(b.min_due),
                    interest: m(b.interest),
                    fees: m(b.fees),
                    paid: BillPaid {
                        principal: m(b.paid_principal),
                        interest: m(b.paid_interest),
                        fees: m(b.paid_fees),
                    },
                    outstanding: m(b.unpaid()),
                    status: if b.unpaid() == 0 {
                        "paid"
                    } else if days > 0 {
                        "overdue"
                    } else {
                        "open"
                    },
                    days_past_due: days,
                }
            })
            .collect(),
    })
}

/// The line a payment draws on (its principal account pays), and why the payment fails
/// when it must (`credit_line_overdue`: new draws are refused until the overdue bills are
/// paid).
pub fn for_draw(state: &Platform, id_text: &str) -> Result<(CreditLine, Option<&'static str>)> {
    let l = load(state, id_text).map_err(|e| e.with_param("payment_method.credit_line_id"))?;
    let refusal = l.state.overdue().then_some("credit_line_overdue");
    Ok((l, refusal))
}

/// Repays line `id_text` from its customer's balance account: fees, then interest, then
/// principal, oldest bill first, in one durable unit with the line's new state.
pub async fn repay(
    state: &Platform,
    actor: &Actor,
    id_text: &str,
    body: Repay,
    idem: Option<&Guard<'_>>,
) -> Result<Vec<u8>> {
    let l = load(state, id_text)?;
    let currency = currency_of(&l);
    let amount = parse_positive(&body.amount, currency, "amount")?;
    let _turn = take_turn(&state.credit_turns, l.id).await;
    let mut l = load(state, id_text)?;
    let d = drawn(state, &l).await?;
    let applied: Applied = engine::credit::repay(&mut l.state, amount, d).map_err(|owed| {
        Error::invalid(
            "repayment_exceeds_balance",
            format!("the line owes {}", format_minor(owed, currency)),
        )
        .with_param("amount")
    })?;
    let id = new_id();
    let charges = applied.fees + applied.interest;
    let principal = applied.principal + applied.unbilled;
    let mut postings = vec![Posting::new(l.account, currency, -amount)];
    if charges > 0 {
        postings.push(Posting::new(l.charges_account, currency, charges));
    }
    if principal > 0 {
        postings.push(Posting::new(l.principal_account, currency, principal));
    }
    let m = |v: i64| format_minor(v, currency);
    let answer = serde_json::to_vec(&RepaymentView {
        id: engine::ids::prefixed_hex("crp_", id),
        credit_line_id: line_id_text(l.id),
        amount: m(amount),
        applied: AppliedView {
            fees: m(applied.fees),
            interest: m(applied.interest),
            principal: m(applied.principal),
            unbilled: m(applied.unbilled),
        },
        credit_line: line_view(&l, d - principal),
    })
    .expect("a repayment view serializes");
    let after: Option<serde_json::Value> = serde_json::from_slice(&answer).ok();
    let mut records = vec![
        (records::credit_line_key(l.id), records::encode(&l)),
        crate::audit::record(
            state,
            actor,
            "credit_line.repay",
            &line_id_text(l.id),
            None::<&()>,
            after.as_ref(),
        ),
    ];
    records.extend(idem.map(|g| g.record(&answer)));
    let transfer = Transfer::new(TransferId(id), TransferKind::Credit, postings, Timestamp(0));
    state
        .ledger()?
        .transfer_with(transfer, records)
        .await?
        .map_err(crate::accounts::rejected)?;
    Ok(answer)
}

/// The day-end's `credit` step for closed date `date`: each line's interest and late fees,
/// and its bill on its billing date, each line in one durable unit with its new state (the
/// transfer's id derived from the line and the date: a rerun cannot apply it twice, and a
/// line already closed through `date` is left alone). Returns the step's detail.
pub async fn day_end_step(state: &Platform, date: BusinessDate) -> Result<String> {
    let mut ids = Vec::new();
    state
        .store()?
        .for_each_aux_with_prefix(records::prefix::CREDIT_LINE, usize::MAX, |k, _| {
            ids.extend(records::id_after(k, records::prefix::CREDIT_LINE));
            Ok(())
        })?;
    let (mut bills, mut interest, mut fees, mut overdue) = (0, 0i64, 0i64, 0);
    for id in &ids {
        let _turn = take_turn(&state.credit_turns, *id).await;
        let mut l: CreditLine = records::read(state.store()?, &records::credit_line_key(*id))?
            .ok_or_else(|| Error::storage("a credit line vanished"))?;
        if l.state.closed_through.is_some_and(|c| c >= date) {
            continue;
        }
        let d = drawn(state, &l).await?;
        let fx = engine::credit::close_day(&l.terms, &mut l.state, date, d);
        let currency = currency_of(&l);
        let mut postings = Vec::new();
        if fx.interest > 0 {
            postings.push(Posting::new(
                AccountId::platform(PlatformRole::InterestIncome, currency.numeric()),
                currency,
                fx.interest,
            ));
        }
        if fx.fees > 0 {
            postings.push(Posting::new(
                AccountId::platform(PlatformRole::FeeIncome, currency.numeric()),
                currency,
                fx.fees,
            ));
        }
        if fx.interest + fx.fees > 0 {
            postings.push(Posting::new(
                l.charges_account,
                currency,
                -(fx.interest + fx.fees),
            ));
        }
        let record = vec![(records::credit_line_key(l.id), records::encode(&l))];
        let ledger = state.ledger()?;
        if postings.is_empty() {
            ledger.write_records(record).await?;
        } else {
            ensure_platform_accounts_once(state, currency).await?;
            let t = Transfer::new(
                TransferId(crate::platform::derived_id(&[
                    b"credit-day-end",
                    &l.id.to_be_bytes(),
                    &date.0.to_be_bytes(),
                ])),
                TransferKind::Credit,
                postings,
                Timestamp(0),
            );
            ledger
                .transfer_with(t, record)
                .await?
                .map_err(crate::accounts::rejected)?;
        }
        if fx.interest > 0 {
            metrics::counter!(crate::metrics::CREDIT_INTEREST, "currency" => currency.code())
                .increment(u64::try_from(fx.interest).unwrap_or(0));
        }
        bills += usize::from(fx.billed.is_some());
        interest += fx.interest;
        fees += fx.fees;
        overdue += usize::from(l.state.overdue());
    }
    metrics::gauge!(crate::metrics::CREDIT_OVERDUE_LINES).set(overdue as f64);
    Ok(format!(
        "{} lines: {bills} bills issued, {overdue} overdue, {interest} minor units of interest and {fees} of late fees charged",
        ids.len()
    ))
}

//! Coupons (营销, issue #18, `../shared/FUNDS.md` "Coupons"): stocks (campaigns with a
//! budget), coupons issued to accounts, their redemption inside a balance payment, their
//! return by refunds, and stocks stopped by hand or by expiry (the day-end's
//! `coupon_expiry`).
//!
//! Money. A platform-funded stock sets its budget aside when created: platform discounts
//! (GL 5002, the expense) to the stock's budget account (GL 2301, what we owe merchants for
//! coupons still to be redeemed). A redemption draws the discount from the budget account to
//! the merchant, with the payer's part, in the payment's one transfer: the merchant receives
//! the full amount. Stopping (or expiry) returns what is left to 5002. A merchant-funded
//! stock sets nothing aside: its budget caps the discounts; the payer pays and the merchant
//! receives the amount less the discount (the fee is on that).
//!
//! Exactness. Every change of a stock (an issue, a redemption, a refund's return, a stop)
//! takes the stock's turn and writes the stock's record in the same durable unit as what
//! it counts, so N concurrent redemptions against a budget that covers K redeem exactly K.
//! A coupon is claimed in memory for the length of its payment, so it is never redeemed
//! twice; a platform-funded budget account cannot go below zero in the ledger either.

use engine::coupons::Discount;
use engine::gl::GlAccount;
use engine::money::format_minor;
use engine::{
    AccountId, Currency, PlatformRole, Reject, Timestamp, Transfer, TransferId, TransferKind,
};
use serde::{Deserialize, Serialize};

use crate::accounts::{ensure_platform_accounts_once, parse_currency, parse_positive};
use crate::audit::Actor;
use crate::idempotency::Guard;
use crate::merchants::{merchant_id_text, Caller};
use crate::platform::{new_id, now_ns, take_turn, Platform, Turn};
use crate::records::{self, Coupon, CouponStatus, CouponStock, CouponUse, StockStatus};
use crate::{Error, Result};

pub const LIST_MAX: usize = 100;
const NAME_CHARS_MAX: usize = 64;
/// Most coupons one stock may issue, and one account may hold of one stock.
pub const MAX_COUPONS: u32 = 10_000_000;

pub fn stock_id_text(id: u128) -> String {
    engine::ids::prefixed_hex("cps_", id)
}

pub fn coupon_id_text(id: u128) -> String {
    engine::ids::prefixed_hex("cpn_", id)
}

/// `POST /v1/coupon_stocks`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateStock {
    #[cfg_attr(
        feature = "openapi",
        schema(example = "双十二满100减15", min_length = 1, max_length = 64)
    )]
    pub name: String,
    /// `fixed` (`amount` off) or `percent` (`percent_off` off).
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^(fixed|percent)$"))]
    pub kind: String,
    /// The amount off (fixed): a decimal amount.
    #[cfg_attr(feature = "openapi", schema(example = "15.00"))]
    pub amount: Option<String>,
    /// The share off (percent): more than 0, at most 100, 2 decimals at most (`"12.5"`).
    #[cfg_attr(feature = "openapi", schema(example = "10"))]
    pub percent_off: Option<String>,
    /// Least order amount a coupon applies to (default 0).
    #[cfg_attr(feature = "openapi", schema(example = "100.00"))]
    pub min_order: Option<String>,
    /// The money the stock may give away in all.
    #[cfg_attr(feature = "openapi", schema(example = "1500.00"))]
    pub budget: String,
    /// How many coupons it may issue.
    #[serde(deserialize_with = "crate::json_int::int")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10_000_000))]
    pub max_coupons: u32,
    /// How many one account may hold (default 1).
    #[serde(default, deserialize_with = "crate::json_int::opt_int")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10_000_000))]
    pub max_per_customer: Option<u32>,
    /// RFC 3339 (default: now).
    #[cfg_attr(feature = "openapi", schema(example = "2026-12-01T00:00:00Z"))]
    pub valid_from: Option<String>,
    /// RFC 3339, after `valid_from`.
    #[cfg_attr(feature = "openapi", schema(example = "2026-12-31T16:00:00Z"))]
    pub valid_until: String,
    /// `platform` (the merchant receives the full amount; operators only) or `merchant`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^(platform|merchant)$"))]
    pub funded_by: String,
    /// (operators) The one merchant whose payments it applies to; a merchant's own stock
    /// is its own. Required for a merchant-funded stock of an operator.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^mch_[0-9a-f]{32}$"))]
    pub merchant_id: Option<String>,
    /// Default: the server's `default_currency`.
    #[cfg_attr(feature = "openapi", schema(example = "CNY", pattern = r"^[A-Z]{3}$"))]
    pub currency: Option<String>,
}

/// `PATCH /v1/coupon_stocks/{id}`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateStock {
    /// `active`, `paused` or `stopped` (final: the unspent budget is returned).
    #[cfg_attr(feature = "openapi", schema(pattern = "^(active|paused|stopped)$"))]
    pub status: String,
}

/// `POST /v1/coupon_stocks/{id}/coupons`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IssueCoupon {
    /// The account that may pay with it (a customer's `account_id`).
    #[cfg_attr(feature = "openapi", schema(pattern = r"^acct_[0-9a-f]{32}$"))]
    pub account_id: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StockView {
    id: String,
    /// The merchant it applies to (`null`: any).
    merchant_id: Option<String>,
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    amount: Option<String>,
    percent_off: Option<String>,
    min_order: String,
    budget: String,
    /// Discounts given (less what refunds returned).
    spent: String,
    /// budget − spent (0 once stopped).
    remaining: String,
    /// Returned to the platform when it stopped.
    returned: String,
    currency: &'static str,
    max_coupons: u32,
    max_per_customer: u32,
    issued: u32,
    redeemed: u32,
    valid_from: String,
    valid_until: String,
    funded_by: &'static str,
    /// The budget's ledger account (platform-funded).
    budget_account_id: Option<String>,
    /// active, paused or stopped.
    status: &'static str,
    created_at: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StockList {
    data: Vec<StockView>,
    has_more: bool,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CouponView {
    id: String,
    stock_id: String,
    account_id: String,
    /// available, redeemed, expired (unredeemed past its validity) or void (its stock
    /// stopped or paused).
    status: &'static str,
    /// The payment that redeemed it.
    payment_id: Option<String>,
    valid_from: String,
    valid_until: String,
    issued_at: String,
    redeemed_at: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CouponList {
    data: Vec<CouponView>,
    has_more: bool,
}

fn currency_of(s: &CouponStock) -> Currency {
    Currency::from_numeric(s.currency).expect("stored stocks carry an active currency")
}

fn status_name(s: StockStatus) -> &'static str {
    match s {
        StockStatus::Active => "active",
        StockStatus::Paused => "paused",
        StockStatus::Stopped => "stopped",
    }
}

fn percent_text(bp: u32) -> String {
    let (whole, frac) = (bp / 100, bp % 100);
    match frac {
        0 => whole.to_string(),
        f if f % 10 == 0 => format!("{whole}.{}", f / 10),
        f => format!("{whole}.{f:02}"),
    }
}

pub fn stock_view(s: &CouponStock) -> StockView {
    let c = currency_of(s);
    let m = |v: i64| format_minor(v, c);
    let remaining = if s.status == StockStatus::Stopped {
        0
    } else {
        s.budget - s.spent
    };
    StockView {
        id: stock_id_text(s.id),
        merchant_id: (s.merchant != 0).then(|| merchant_id_text(s.merchant)),
        name: s.name.clone(),
        kind: match s.rule {
            Discount::Fixed(_) => "fixed",
            Discount::Percent(_) => "percent",
        },
        amount: match s.rule {
            Discount::Fixed(v) => Some(m(v)),
            Discount::Percent(_) => None,
        },
        percent_off: match s.rule {
            Discount::Percent(bp) => Some(percent_text(bp)),
            Discount::Fixed(_) => None,
        },
        min_order: m(s.min_order),
        budget: m(s.budget),
        spent: m(s.spent),
        remaining: m(remaining),
        returned: m(s.returned),
        currency: c.code(),
        max_coupons: s.max_coupons,
        max_per_customer: s.max_per_customer,
        issued: s.issued,
        redeemed: s.redeemed,
        valid_from: records::time_text(s.valid_from_ns),
        valid_until: records::time_text(s.valid_until_ns),
        funded_by: if s.platform_funded {
            "platform"
        } else {
            "merchant"
        },
        budget_account_id: s.account.map(|a| a.to_string()),
        status: status_name(s.status),
        created_at: records::time_text(s.created_at_ns),
    }
}

fn coupon_view(c: &Coupon, s: &CouponStock, now: u64) -> CouponView {
    CouponView {
        id: coupon_id_text(c.id),
        stock_id: stock_id_text(c.stock),
        account_id: c.account.to_string(),
        status: match c.status {
            CouponStatus::Redeemed => "redeemed",
            CouponStatus::Available if s.status != StockStatus::Active => "void",
            CouponStatus::Available if now >= s.valid_until_ns => "expired",
            CouponStatus::Available => "available",
        },
        payment_id: c.payment.map(crate::payments::payment_id_text),
        valid_from: records::time_text(s.valid_from_ns),
        valid_until: records::time_text(s.valid_until_ns),
        issued_at: records::time_text(c.issued_at_ns),
        redeemed_at: c.redeemed_at_ns.map(records::time_text),
    }
}

fn parse_time(text: &str, param: &str) -> Result<u64> {
    let t: jiff::Timestamp = text.parse().map_err(|_| {
        Error::invalid(
            "invalid_parameter",
            format!("{param} must be an RFC 3339 time such as 2026-12-31T16:00:00Z"),
        )
        .with_param(param)
    })?;
    u64::try_from(t.as_nanosecond()).map_err(|_| {
        Error::invalid("invalid_parameter", format!("{param} is before 1970")).with_param(param)
    })
}

fn invalid(param: &str, message: impl Into<String>) -> Error {
    Error::invalid("invalid_parameter", message).with_param(param)
}

/// The platform's discounts expense account in `currency` (GL 5002).
pub fn discounts_account(currency: Currency) -> AccountId {
    AccountId::platform(PlatformRole::PlatformDiscounts, currency.numeric())
}

/// Creates a stock for `caller`: a platform-funded one sets its budget aside (5002 → its
/// budget account, GL 2301) in the same durable unit as the stock's record, its audit entry
/// and the idempotency record of its answer. Returns the answer.
pub async fn create_stock(
    state: &Platform,
    caller: &Caller,
    actor: &Actor,
    body: CreateStock,
    idem: Option<&Guard<'_>>,
) -> Result<Vec<u8>> {
    let name = body.name.trim();
    if name.is_empty() || body.name.chars().count() > NAME_CHARS_MAX {
        return Err(invalid(
            "name",
            format!("name must be 1 to {NAME_CHARS_MAX} characters, not blank"),
        ));
    }
    crate::pan::refuse(&body.name, "name")?;
    let currency = match &body.currency {
        Some(text) => parse_currency(text)?,
        None => state.settings.currency,
    };
    let rule = match (body.kind.as_str(), &body.amount, &body.percent_off) {
        ("fixed", Some(a), None) => Discount::Fixed(parse_positive(a, currency, "amount")?),
        ("percent", None, Some(p)) => Discount::Percent(
            engine::coupons::parse_percent(p)
                .map_err(|e| invalid("percent_off", format!("percent_off: {e}")))?,
        ),
        ("fixed", _, _) => {
            return Err(invalid(
                "amount",
                "a fixed coupon takes amount (and no percent_off)",
            ))
        }
        ("percent", _, _) => {
            return Err(invalid(
                "percent_off",
                "a percent coupon takes percent_off (and no amount)",
            ))
        }
        (other, _, _) => {
            return Err(invalid(
                "type",
                format!("type {other:?}: use fixed or percent"),
            ))
        }
    };
    let min_order = match &body.min_order {
        Some(t) => crate::accounts::parse_non_negative(t, currency, "min_order")?,
        None => 0,
    };
    let budget = parse_positive(&body.budget, currency, "budget")?;
    if !(1..=MAX_COUPONS).contains(&body.max_coupons) {
        return Err(invalid(
            "max_coupons",
            format!("max_coupons must be 1 to {MAX_COUPONS}"),
        ));
    }
    let max_per_customer = body.max_per_customer.unwrap_or(1);
    if !(1..=MAX_COUPONS).contains(&max_per_customer) {
        return Err(invalid(
            "max_per_customer",
            format!("max_per_customer must be 1 to {MAX_COUPONS}"),
        ));
    }
    let now = now_ns();
    let valid_from = match &body.valid_from {
        Some(t) => parse_time(t, "valid_from")?,
        None => now,
    };
    let valid_until = parse_time(&body.valid_until, "valid_until")?;
    if valid_until <= valid_from || valid_until <= now {
        return Err(invalid(
            "valid_until",
            "valid_until must be after valid_from and in the future",
        ));
    }
    let platform_funded = match body.funded_by.as_str() {
        "platform" => true,
        "merchant" => false,
        other => {
            return Err(invalid(
                "funded_by",
                format!("funded_by {other:?}: use platform or merchant"),
            ))
        }
    };
    let merchant = match caller {
        Caller::Merchant(m) => {
            if platform_funded {
                return Err(invalid(
                    "funded_by",
                    "a merchant's own stock is funded by the merchant",
                ));
            }
            if body.merchant_id.is_some() {
                return Err(invalid("merchant_id", "a merchant's stock is its own"));
            }
            if m.currency != currency.numeric() {
                return Err(
                    invalid("currency", "the stock must be in the merchant's currency")
                        .with_param("currency"),
                );
            }
            m.id
        }
        Caller::Admin => match &body.merchant_id {
            Some(text) => {
                crate::merchants::load(state, text)
                    .map_err(|_| {
                        Error::not_found(format!("no merchant {text:?}")).with_param("merchant_id")
                    })?
                    .id
            }
            None if platform_funded => 0,
            None => {
                return Err(Error::invalid(
                    "parameter_missing",
                    "a merchant-funded stock names its merchant_id",
                )
                .with_param("merchant_id"))
            }
        },
    };
    let ledger = state.ledger()?;
    ensure_platform_accounts_once(state, currency).await?;
    let id = new_id();
    let account = if platform_funded {
        let account = AccountId(new_id());
        // Created first and empty: a crash before the stock exists leaves an account
        // nothing refers to, never a stock without its budget.
        match ledger
            .create_account_in(account, currency, GlAccount::CouponBudgets, 0, Vec::new())
            .await?
        {
            Ok(_) => {}
            Err(Reject::AccountExists(_)) => return Err(Error::storage("id collision; retry")),
            Err(other) => return Err(crate::accounts::rejected(other)),
        }
        Some(account)
    } else {
        None
    };
    let stock = CouponStock {
        id,
        merchant,
        name: body.name,
        rule,
        min_order,
        budget,
        max_coupons: body.max_coupons,
        max_per_customer,
        valid_from_ns: valid_from,
        valid_until_ns: valid_until,
        platform_funded,
        currency: currency.numeric(),
        account,
        status: StockStatus::Active,
        issued: 0,
        redeemed: 0,
        spent: 0,
        returned: 0,
        created_at_ns: now,
        created_by: actor.name.clone(),
        extra: records::Tail(()),
    };
    let answer = serde_json::to_vec(&stock_view(&stock)).expect("a stock view serializes");
    let after: Option<serde_json::Value> = serde_json::from_slice(&answer).ok();
    let mut records = vec![
        (records::coupon_stock_key(id), records::encode(&stock)),
        crate::audit::record(
            state,
            actor,
            "coupon_stock.create",
            &stock_id_text(id),
            None::<&()>,
            after.as_ref(),
        ),
    ];
    records.extend(idem.map(|g| g.record(&answer)));
    match account {
        Some(account) => {
            let transfer = Transfer::between(
                TransferId(id),
                TransferKind::Coupon,
                discounts_account(currency),
                account,
                currency,
                budget,
                Timestamp(0),
            );
            ledger
                .transfer_with(transfer, records)
                .await?
                .map_err(crate::accounts::rejected)?;
        }
        None => {
            ledger.write_records(records).await?;
        }
    }
    Ok(answer)
}

/// Stock `id_text` as `caller` may see it (a merchant: the stocks for its payments).
pub fn load_stock(state: &Platform, caller: &Caller, id_text: &str) -> Result<CouponStock> {
    let not_found = || Error::not_found(format!("no coupon stock {id_text:?}"));
    let id = records::parse_id(id_text, "cps_").ok_or_else(not_found)?;
    let s: CouponStock =
        records::read(state.store()?, &records::coupon_stock_key(id))?.ok_or_else(not_found)?;
    match caller {
        Caller::Merchant(m) if s.merchant != m.id => Err(not_found()),
        _ => Ok(s),
    }
}

pub fn get_stock(state: &Platform, caller: &Caller, id_text: &str) -> Result<StockView> {
    Ok(stock_view(&load_stock(state, caller, id_text)?))
}

/// Stocks, oldest first, after `starting_after`, at most `limit` (a merchant: its own).
pub fn list_stocks(
    state: &Platform,
    caller: &Caller,
    starting_after: Option<&str>,
    limit: usize,
) -> Result<StockList> {
    let limit = limit.clamp(1, LIST_MAX);
    let prefix = records::prefix::COUPON_STOCK.to_vec();
    let from = match starting_after {
        Some(text) => {
            let id = records::parse_id(text, "cps_").ok_or_else(|| {
                invalid("starting_after", "starting_after is not a coupon stock id")
            })?;
            let mut k = records::coupon_stock_key(id);
            k.push(0);
            k
        }
        None => prefix.clone(),
    };
    let (mut data, mut has_more) = (Vec::new(), false);
    state
        .store()?
        .for_each_aux_with_prefix_from(&prefix, &from, usize::MAX, |k, v| {
            if has_more {
                return Ok(());
            }
            let s: CouponStock = records::decode(k, v)?;
            if let Caller::Merchant(m) = caller {
                if s.merchant != m.id {
                    return Ok(());
                }
            }
            if data.len() == limit {
                has_more = true;
            } else {
                data.push(stock_view(&s));
            }
            Ok(())
        })?;
    Ok(StockList { data, has_more })
}

/// Writes `after` (a change of stock `before`) with `more`, and its audit entry.
async fn save_stock(
    state: &Platform,
    actor: &Actor,
    action: &str,
    before: &CouponStock,
    after: &CouponStock,
    transfer: Option<Transfer>,
) -> Result<StockView> {
    let view = stock_view(after);
    let records = vec![
        (records::coupon_stock_key(after.id), records::encode(after)),
        crate::audit::record(
            state,
            actor,
            action,
            &stock_id_text(after.id),
            Some(&stock_view(before)),
            Some(&view),
        ),
    ];
    let ledger = state.ledger()?;
    match transfer {
        Some(t) => {
            ledger
                .transfer_with(t, records)
                .await?
                .map_err(crate::accounts::rejected)?;
        }
        None => {
            ledger.write_records(records).await?;
        }
    }
    Ok(view)
}

/// Stops `s` (taken under its turn): its unspent budget back to platform discounts, in one
/// durable unit with the stock's record. Returns the stock as stopped.
async fn stop(state: &Platform, actor: &Actor, action: &str, s: &CouponStock) -> Result<StockView> {
    let mut after = s.clone();
    after.status = StockStatus::Stopped;
    let currency = currency_of(s);
    let mut transfer = None;
    if let Some(account) = s.account {
        let left = state
            .ledger()?
            .account(account)
            .await?
            .map_or(0, |a| a.account.balance);
        if left > 0 {
            after.returned = left;
            // Derived from the stock: a retried stop is the same transfer, applied once.
            let id = crate::platform::derived_id(&[b"coupon-stop", &s.id.to_be_bytes()]);
            transfer = Some(Transfer::between(
                TransferId(id),
                TransferKind::Coupon,
                account,
                discounts_account(currency),
                currency,
                left,
                Timestamp(0),
            ));
        }
    }
    save_stock(state, actor, action, s, &after, transfer).await
}

/// Pauses, resumes or stops stock `id_text`.
pub async fn update_stock(
    state: &Platform,
    caller: &Caller,
    actor: &Actor,
    id_text: &str,
    body: UpdateStock,
) -> Result<StockView> {
    let target = match body.status.as_str() {
        "active" => StockStatus::Active,
        "paused" => StockStatus::Paused,
        "stopped" => StockStatus::Stopped,
        other => {
            return Err(invalid(
                "status",
                format!("status {other:?}: use active, paused or stopped"),
            ))
        }
    };
    let s = load_stock(state, caller, id_text)?;
    let _turn = take_turn(&state.stock_turns, s.id).await;
    let s = load_stock(state, caller, id_text)?;
    if s.status == StockStatus::Stopped {
        return Err(Error::conflict(
            "coupon_stock_stopped",
            "the stock is stopped: final",
        ));
    }
    if s.status == target {
        return Ok(stock_view(&s));
    }
    match target {
        StockStatus::Stopped => stop(state, actor, "coupon_stock.stop", &s).await,
        _ => {
            let mut after = s.clone();
            after.status = target;
            save_stock(state, actor, "coupon_stock.update", &s, &after, None).await
        }
    }
}

/// The day-end's `coupon_expiry`: stops every stock past its validity, returning its unspent
/// budget. Returns the step's detail.
pub async fn expiry_step(state: &Platform) -> Result<String> {
    let now = now_ns();
    let mut due = Vec::new();
    state.store()?.for_each_aux_with_prefix(
        records::prefix::COUPON_STOCK,
        usize::MAX,
        |k, v| {
            let s: CouponStock = records::decode(k, v)?;
            if s.status != StockStatus::Stopped && s.valid_until_ns <= now {
                due.push(s.id);
            }
            Ok(())
        },
    )?;
    let system = Actor {
        name: "system".into(),
        source_ip: None,
    };
    let mut returned = 0i64;
    for id in &due {
        let _turn = take_turn(&state.stock_turns, *id).await;
        let s: CouponStock = records::read(state.store()?, &records::coupon_stock_key(*id))?
            .ok_or_else(|| Error::storage("a coupon stock vanished"))?;
        if s.status == StockStatus::Stopped {
            continue;
        }
        stop(state, &system, "coupon_stock.expire", &s).await?;
        let s: CouponStock = records::read(state.store()?, &records::coupon_stock_key(*id))?
            .ok_or_else(|| Error::storage("a coupon stock vanished"))?;
        returned = returned.saturating_add(s.returned);
    }
    Ok(format!(
        "{} stocks expired, {returned} minor units of budget returned",
        due.len()
    ))
}

/// Issues a coupon of stock `id_text` to `body.account_id`. Returns the answer.
pub async fn issue(
    state: &Platform,
    caller: &Caller,
    id_text: &str,
    body: IssueCoupon,
    idem: Option<&Guard<'_>>,
) -> Result<Vec<u8>> {
    let s = load_stock(state, caller, id_text)?;
    let not_found =
        || Error::not_found(format!("no account {:?}", body.account_id)).with_param("account_id");
    let account = AccountId::parse(&body.account_id).ok_or_else(not_found)?;
    if account.is_platform() {
        return Err(not_found());
    }
    let live = state
        .ledger()?
        .account(account)
        .await?
        .ok_or_else(not_found)?;
    if live.account.currency.numeric() != s.currency {
        return Err(Error::invalid(
            "invalid_currency",
            "the account is not in the stock's currency",
        )
        .with_param("account_id"));
    }
    let _turn = take_turn(&state.stock_turns, s.id).await;
    let mut s = load_stock(state, caller, id_text)?;
    let now = now_ns();
    match s.status {
        StockStatus::Active => {}
        other => {
            return Err(Error::conflict(
                "coupon_stock_inactive",
                format!("the stock is {}", status_name(other)),
            ))
        }
    }
    if now >= s.valid_until_ns {
        return Err(Error::conflict(
            "coupon_stock_expired",
            "the stock's validity is over",
        ));
    }
    if s.issued >= s.max_coupons {
        return Err(Error::conflict(
            "coupon_stock_exhausted",
            format!("the stock issued its {} coupons", s.max_coupons),
        ));
    }
    if s.spent >= s.budget {
        return Err(Error::conflict(
            "coupon_stock_exhausted",
            "the stock's budget is spent",
        ));
    }
    let count_key = records::coupon_count_key(s.id, account);
    let held: u32 = records::read(state.store()?, &count_key)?.unwrap_or(0);
    if held >= s.max_per_customer {
        return Err(Error::conflict(
            "coupon_limit_per_customer",
            format!("the account holds {held} of this stock's coupons, its most"),
        )
        .with_param("account_id"));
    }
    s.issued += 1;
    let coupon = Coupon {
        id: new_id(),
        stock: s.id,
        account,
        status: CouponStatus::Available,
        payment: None,
        issued_at_ns: now,
        redeemed_at_ns: None,
        extra: records::Tail(()),
    };
    let answer =
        serde_json::to_vec(&coupon_view(&coupon, &s, now)).expect("a coupon view serializes");
    let mut records = vec![
        (records::coupon_key(coupon.id), records::encode(&coupon)),
        (
            records::coupon_holder_key(account, coupon.id),
            records::encode(&()),
        ),
        (count_key, records::encode(&(held + 1))),
        (records::coupon_stock_key(s.id), records::encode(&s)),
    ];
    records.extend(idem.map(|g| g.record(&answer)));
    state.ledger()?.write_records(records).await?;
    Ok(answer)
}

/// Coupon `id_text` as `caller` may see it.
pub fn get_coupon(state: &Platform, caller: &Caller, id_text: &str) -> Result<CouponView> {
    let not_found = || Error::not_found(format!("no coupon {id_text:?}"));
    let id = records::parse_id(id_text, "cpn_").ok_or_else(not_found)?;
    let store = state.store()?;
    let c: Coupon = records::read(store, &records::coupon_key(id))?.ok_or_else(not_found)?;
    let s: CouponStock = records::read(store, &records::coupon_stock_key(c.stock))?
        .ok_or_else(|| Error::storage("a coupon's stock is missing"))?;
    if let Caller::Merchant(m) = caller {
        if s.merchant != m.id {
            return Err(not_found());
        }
    }
    Ok(coupon_view(&c, &s, now_ns()))
}

/// The coupons of customer `id_text` (as `caller` may see it), oldest first.
pub fn list_for_customer(
    state: &Platform,
    caller: &Caller,
    id_text: &str,
    starting_after: Option<&str>,
    limit: usize,
) -> Result<CouponList> {
    let account = crate::customers::account_of(state, caller, id_text)?;
    list_for_account(state, account, starting_after, limit)
}

/// The coupons of `account`, oldest first (after `starting_after`, at most `limit`).
pub fn list_for_account(
    state: &Platform,
    account: AccountId,
    starting_after: Option<&str>,
    limit: usize,
) -> Result<CouponList> {
    let store = state.store()?;
    let limit = limit.clamp(1, LIST_MAX);
    let prefix = records::coupon_holder_prefix(account);
    let from = match starting_after {
        Some(text) => {
            let id = records::parse_id(text, "cpn_")
                .ok_or_else(|| invalid("starting_after", "starting_after is not a coupon id"))?;
            let mut k = records::coupon_holder_key(account, id);
            k.push(0);
            k
        }
        None => prefix.clone(),
    };
    let mut ids = Vec::new();
    let mut has_more = false;
    store.for_each_aux_with_prefix_from(&prefix, &from, limit + 1, |k, _| {
        if ids.len() == limit {
            has_more = true;
        } else if let Some(tail) = k.get(k.len() - 16..) {
            ids.push(u128::from_be_bytes(tail.try_into().expect("16 bytes")));
        }
        Ok(())
    })?;
    let now = now_ns();
    let mut data = Vec::with_capacity(ids.len());
    for id in ids {
        let c: Coupon = records::read(store, &records::coupon_key(id))?
            .ok_or_else(|| Error::storage("an indexed coupon is missing"))?;
        let s: CouponStock = records::read(store, &records::coupon_stock_key(c.stock))?
            .ok_or_else(|| Error::storage("a coupon's stock is missing"))?;
        data.push(coupon_view(&c, &s, now));
    }
    Ok(CouponList { data, has_more })
}

/// A coupon checked for a payment before anything is claimed: the coupon is the payer's,
/// its stock applies to the merchant and the currency, and the order reaches its minimum.
/// Errors are the caller's mistakes (404, 400); a coupon in any other state makes the
/// payment fail `coupon_unavailable` later ([`Redemption`]).
pub fn check(
    state: &Platform,
    text: &str,
    payer: AccountId,
    merchant: u128,
    currency: Currency,
    amount: i64,
) -> Result<(Coupon, CouponStock)> {
    let not_found = || Error::not_found(format!("no coupon {text:?}")).with_param("coupon_id");
    let id = records::parse_id(text, "cpn_").ok_or_else(not_found)?;
    let store = state.store()?;
    let c: Coupon = records::read(store, &records::coupon_key(id))?.ok_or_else(not_found)?;
    if c.account != payer {
        return Err(not_found());
    }
    let s: CouponStock = records::read(store, &records::coupon_stock_key(c.stock))?
        .ok_or_else(|| Error::storage("a coupon's stock is missing"))?;
    if s.merchant != 0 && s.merchant != merchant {
        return Err(Error::invalid(
            "coupon_not_applicable",
            "this coupon is for another merchant's payments",
        )
        .with_param("coupon_id"));
    }
    if s.currency != currency.numeric() {
        return Err(Error::invalid(
            "coupon_not_applicable",
            "this coupon is in another currency",
        )
        .with_param("coupon_id"));
    }
    if amount < s.min_order {
        return Err(Error::invalid(
            "coupon_min_order_not_met",
            format!(
                "this coupon applies to orders of {} or more",
                format_minor(s.min_order, currency)
            ),
        )
        .with_param("amount"));
    }
    Ok((c, s))
}

/// A coupon being redeemed: its stock's turn and its claim, held until the payment's unit
/// is durable.
pub struct Redemption<'a> {
    _turn: Turn<'a>,
    _claim: crate::platform::Claimed<'a>,
    /// What it takes off, and from where.
    pub used: CouponUse,
    /// Whether the platform funds it (the merchant receives the full amount).
    pub platform_funded: bool,
    /// The coupon and the stock as the payment leaves them: written in its unit.
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Redeems coupon `c` of stock `s` for a payment `payment` of `amount`: `Ok(None)` when it
/// is unavailable (in use by a concurrent payment, already redeemed, paused or stopped,
/// outside its validity, or the budget does not cover it): the payment fails
/// `coupon_unavailable` and moves nothing.
pub async fn redeem<'a>(
    state: &'a Platform,
    c: &Coupon,
    s: &CouponStock,
    payment: u128,
    amount: i64,
) -> Result<Option<Redemption<'a>>> {
    let unavailable = || {
        metrics::counter!(crate::metrics::COUPON_REDEMPTIONS, "outcome" => "unavailable")
            .increment(1);
        Ok(None)
    };
    let Some(claim) = crate::platform::claim(&state.coupon_claims, c.id) else {
        return unavailable();
    };
    let turn = take_turn(&state.stock_turns, s.id).await;
    let store = state.store()?;
    let mut c: Coupon = records::read(store, &records::coupon_key(c.id))?
        .ok_or_else(|| Error::storage("a coupon vanished"))?;
    let mut s: CouponStock = records::read(store, &records::coupon_stock_key(s.id))?
        .ok_or_else(|| Error::storage("a coupon stock vanished"))?;
    if c.status != CouponStatus::Available || s.status != StockStatus::Active {
        return unavailable();
    }
    let now = now_ns();
    let stock = engine::coupons::Stock {
        rule: s.rule,
        min_order: s.min_order,
        budget: s.budget,
        spent: s.spent,
        valid_from_ns: s.valid_from_ns,
        valid_until_ns: s.valid_until_ns,
    };
    // Below the minimum was refused before the claim; validity and budget end here.
    let Ok(discount) = engine::coupons::redeem(&stock, amount, now) else {
        return unavailable();
    };
    metrics::counter!(crate::metrics::COUPON_REDEMPTIONS, "outcome" => "redeemed").increment(1);
    c.status = CouponStatus::Redeemed;
    c.payment = Some(payment);
    c.redeemed_at_ns = Some(now);
    s.redeemed += 1;
    s.spent += discount;
    Ok(Some(Redemption {
        _turn: turn,
        _claim: claim,
        used: CouponUse {
            coupon: c.id,
            stock: s.id,
            discount,
            budget: s.account,
            returned: 0,
        },
        platform_funded: s.platform_funded,
        records: vec![
            (records::coupon_key(c.id), records::encode(&c)),
            (records::coupon_stock_key(s.id), records::encode(&s)),
        ],
    }))
}

/// What a refund of a coupon payment does to its coupon and stock, under the stock's turn:
/// `to_budget` (of the discount, pro rata) goes back to the stock; a refund that completes
/// the payment gives the coupon back while its stock is active and valid.
pub struct RefundReturn<'a> {
    _turn: Turn<'a>,
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
    /// Where a platform-funded discount's part goes back to: the stock's budget account,
    /// or platform discounts (GL 5002) once the stock stopped (its budget was returned).
    pub budget_target: Option<AccountId>,
}

pub async fn refund_return<'a>(
    state: &'a Platform,
    used: &CouponUse,
    to_budget: i64,
    completes: bool,
) -> Result<RefundReturn<'a>> {
    let turn = take_turn(&state.stock_turns, used.stock).await;
    let store = state.store()?;
    let mut s: CouponStock = records::read(store, &records::coupon_stock_key(used.stock))?
        .ok_or_else(|| Error::storage("a coupon stock vanished"))?;
    let mut records = Vec::new();
    s.spent -= to_budget;
    if completes {
        let mut c: Coupon = records::read(store, &records::coupon_key(used.coupon))?
            .ok_or_else(|| Error::storage("a coupon vanished"))?;
        if s.status == StockStatus::Active && now_ns() < s.valid_until_ns {
            c.status = CouponStatus::Available;
            c.payment = None;
            c.redeemed_at_ns = None;
            s.redeemed = s.redeemed.saturating_sub(1);
            records.push((records::coupon_key(c.id), records::encode(&c)));
        }
    }
    records.push((records::coupon_stock_key(s.id), records::encode(&s)));
    let budget_target = s.account.map(|a| {
        if s.status == StockStatus::Stopped {
            discounts_account(currency_of(&s))
        } else {
            a
        }
    });
    Ok(RefundReturn {
        _turn: turn,
        records,
        budget_target,
    })
}

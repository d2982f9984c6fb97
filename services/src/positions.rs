//! Positions and reserve (头寸 / 备付金, `../shared/FUNDS.md` "Positions and reserve",
//! issue #16): the platform's reserve accounts at its clearing banks, what each channel owes
//! it and when it settles, what is in transit, what is owed to customers and merchants, and
//! the coverage check (`engine::positions`).
//!
//! - **Reserve accounts**: one ledger account per clearing bank, all in GL 1001. Number 0,
//!   `default`, is the platform's customer-funds account that deposits and payouts have
//!   always used; more are opened by `POST /v1/positions/reserves`.
//! - **Channel settlement**: the day-end step `channel_settlement` moves each channel's
//!   net takings of a date (charges net of its fee, less refunds) from its receivable (1101)
//!   to its reserve account once the channel's `settlement_lag_days` have passed.
//! - **Reserve transfers**: `POST /v1/positions/transfers` moves money between reserve
//!   accounts in two phases: out of the source into funds in transit (1002), then confirmed
//!   (into the destination) or voided (back).
//! - **Coverage**: the day-end step `positions` freezes the date's positions and fails when
//!   funds are below what is owed; the live figures are Prometheus gauges with alert rules.

use std::sync::Arc;

use engine::gl::{BusinessDate, GlAccount};
use engine::money::format_minor;
use engine::positions::{below_low_water, ChannelClearing, Coverage, ReceivableDay, TransferPhase};
use engine::{
    AccountId, Currency, PlatformRole, Posting, Reject, Transfer, TransferId, TransferKind,
};
use serde::{Deserialize, Serialize};

use crate::audit::Actor;
use crate::idempotency::Guard;
use crate::platform::{new_id, now_ns, Platform};
use crate::records::{self, ReserveRecord, ReserveTransfer};
use crate::{Error, Result};

/// Reserve accounts at most (they are metrics labels and ops-page rows).
pub const RESERVES_MAX: usize = 64;

/// The name of reserve account 0, the platform's customer-funds account.
pub const DEFAULT_RESERVE: &str = "default";

/// Reserve transfers listed per request at most.
pub const TRANSFERS_LIST_MAX: usize = 1_000;

/// Reserve account `number`'s ledger account (0: the customer-funds account).
pub fn reserve_account(number: u32, currency: Currency) -> AccountId {
    AccountId::platform_at_channel(PlatformRole::CustomerFunds, number, currency.numeric())
}

/// The platform's funds-in-transit account (GL 1002).
pub fn transit_account(currency: Currency) -> AccountId {
    AccountId::platform(PlatformRole::FundsInTransit, currency.numeric())
}

/// A channel's receivable account (GL 1101).
fn receivable_account(number: u32, currency: Currency) -> AccountId {
    AccountId::platform_at_channel(PlatformRole::ChannelReceivable, number, currency.numeric())
}

/// Every reserve account, by number: `default` (number 0) first, stored or not.
pub fn reserves(store: &storage::Store, currency: Currency) -> Result<Vec<ReserveRecord>> {
    let mut out: Vec<ReserveRecord> = Vec::new();
    store
        .for_each_aux_with_prefix(records::prefix::RESERVE, RESERVES_MAX + 1, |k, v| {
            out.push(records::decode(k, v)?);
            Ok(())
        })
        .map_err(|e| Error::storage(format!("cannot read the reserve accounts: {e}")))?;
    if out.first().is_none_or(|r| r.number != 0) {
        out.insert(
            0,
            ReserveRecord {
                number: 0,
                name: DEFAULT_RESERVE.to_string(),
                bank: String::new(),
                currency: currency.numeric(),
                low_water: 0,
                created_at_ns: 0,
                extra: records::Tail(()),
            },
        );
    }
    Ok(out)
}

/// The reserve account named `name` among `all`, or a 404 naming the parameter `param`.
pub fn named<'a>(all: &'a [ReserveRecord], name: &str, param: &str) -> Result<&'a ReserveRecord> {
    all.iter().find(|r| r.name == name).ok_or_else(|| {
        Error::not_found(format!("no reserve account {name:?}")).with_param(param.to_string())
    })
}

/// A reserve account as answers show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReserveView {
    #[cfg_attr(feature = "openapi", schema(example = "cmb"))]
    pub name: String,
    /// The clearing bank it is held at.
    #[cfg_attr(feature = "openapi", schema(example = "China Merchants Bank"))]
    pub bank: String,
    pub account_id: String,
    /// What it holds (debit-positive: money at the bank).
    #[cfg_attr(feature = "openapi", schema(example = "125000.00"))]
    pub balance: String,
    /// Below this the position alert fires (0: no mark).
    pub low_water: String,
    pub below_low_water: bool,
}

fn reserve_view(r: &ReserveRecord, funds: i128, currency: Currency) -> ReserveView {
    ReserveView {
        name: r.name.clone(),
        bank: r.bank.clone(),
        account_id: reserve_account(r.number, currency).to_string(),
        balance: format_minor(funds, currency),
        low_water: format_minor(r.low_water, currency),
        below_low_water: below_low_water(funds, r.low_water),
    }
}

/// `POST /v1/positions/reserves`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateReserve {
    /// 1–32 of a-z, 0-9 and _; unique.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[a-z0-9_]{1,32}$"))]
    pub name: String,
    /// The clearing bank (at most 128 characters).
    #[cfg_attr(feature = "openapi", schema(max_length = 128))]
    pub bank: String,
    /// Default 0.00: no alert.
    #[cfg_attr(feature = "openapi", schema(example = "5000.00"))]
    pub low_water: Option<String>,
}

/// `PATCH /v1/positions/reserves/{name}`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateReserve {
    #[cfg_attr(feature = "openapi", schema(max_length = 128))]
    pub bank: Option<String>,
    pub low_water: Option<String>,
}

fn check_bank(bank: &str) -> Result<()> {
    if bank.trim().is_empty() || bank.chars().count() > 128 || bank.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_parameter",
            "bank must be 1 to 128 printable characters",
        )
        .with_param("bank"));
    }
    Ok(())
}

/// Opens a reserve account at a clearing bank (operator `actor`): a new ledger account in
/// GL 1001, durably with its record and audit entry.
pub async fn create_reserve(
    state: &Platform,
    actor: &Actor,
    body: CreateReserve,
    idem: Option<&Guard<'_>>,
) -> Result<Vec<u8>> {
    crate::accounts::check_word(&body.name, "name")?;
    check_bank(&body.bank)?;
    let currency = state.settings.currency;
    let low_water = match &body.low_water {
        Some(t) => crate::accounts::parse_non_negative(t, currency, "low_water")?,
        None => 0,
    };
    let ledger = state.ledger()?;
    let store = state.store()?;
    let _one = state.positions_admin.lock().await;
    let existing = reserves(store, currency)?;
    if existing.iter().any(|r| r.name == body.name) {
        return Err(Error::conflict(
            "reserve_exists",
            format!("a reserve account is already named {:?}", body.name),
        )
        .with_param("name"));
    }
    if existing.len() >= RESERVES_MAX {
        return Err(Error::conflict(
            "too_many_reserves",
            format!("at most {RESERVES_MAX} reserve accounts"),
        ));
    }
    let number = existing.iter().map(|r| r.number).max().unwrap_or(0) + 1;
    let record = ReserveRecord {
        number,
        name: body.name,
        bank: body.bank,
        currency: currency.numeric(),
        low_water,
        created_at_ns: now_ns(),
        extra: records::Tail(()),
    };
    let view = reserve_view(&record, 0, currency);
    let answer = serde_json::to_vec(&view).expect("a reserve view serializes");
    let mut recs = vec![
        (records::reserve_key(number), records::encode(&record)),
        crate::audit::record(
            state,
            actor,
            "reserve.create",
            &record.name,
            None::<&()>,
            Some(&view),
        ),
    ];
    recs.extend(idem.map(|g| g.record(&answer)));
    // Money at a bank: a debit balance of any size.
    match ledger
        .create_account_in(
            reserve_account(number, currency),
            currency,
            GlAccount::Reserve,
            i64::MAX,
            recs,
        )
        .await?
    {
        Ok(_) => Ok(answer),
        Err(other) => Err(Error::storage(format!(
            "opening reserve account {number}: {other}"
        ))),
    }
}

/// Changes a reserve account's bank name or low-water mark (operator `actor`).
pub async fn update_reserve(
    state: &Platform,
    actor: &Actor,
    name: &str,
    body: UpdateReserve,
) -> Result<ReserveView> {
    let currency = state.settings.currency;
    let store = state.store()?;
    let _one = state.positions_admin.lock().await;
    let mut r = named(&reserves(store, currency)?, name, "name")?.clone();
    let funds = reserve_funds(state, r.number, currency).await?;
    let before = reserve_view(&r, funds, currency);
    if let Some(bank) = body.bank {
        check_bank(&bank)?;
        r.bank = bank;
    }
    if let Some(t) = &body.low_water {
        r.low_water = crate::accounts::parse_non_negative(t, currency, "low_water")?;
    }
    let after = reserve_view(&r, funds, currency);
    state
        .ledger()?
        .write_records(vec![
            (records::reserve_key(r.number), records::encode(&r)),
            crate::audit::record(
                state,
                actor,
                "reserve.update",
                &r.name,
                Some(&before),
                Some(&after),
            ),
        ])
        .await?;
    Ok(after)
}

/// What reserve account `number` holds now (debit-positive).
async fn reserve_funds(state: &Platform, number: u32, currency: Currency) -> Result<i128> {
    let a = state
        .ledger()?
        .account(reserve_account(number, currency))
        .await?;
    Ok(a.map_or(0, |a| -i128::from(a.account.balance)))
}

/// Every reserve account as it stands now.
pub async fn list_reserves(state: &Platform) -> Result<Vec<ReserveView>> {
    let currency = state.settings.currency;
    let mut out = Vec::new();
    for r in reserves(state.store()?, currency)? {
        let funds = reserve_funds(state, r.number, currency).await?;
        out.push(reserve_view(&r, funds, currency));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Reserve transfers.

/// `POST /v1/positions/transfers`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateReserveTransfer {
    /// The reserve account the money leaves.
    #[cfg_attr(feature = "openapi", schema(example = "default"))]
    pub from: String,
    /// The reserve account it goes to.
    #[cfg_attr(feature = "openapi", schema(example = "cmb"))]
    pub to: String,
    #[cfg_attr(
        feature = "openapi",
        schema(
            example = "50000.00",
            pattern = r"^[0-9]+(\.[0-9]+)?$",
            max_length = 40
        )
    )]
    pub amount: String,
    /// The bank's reference or a note (at most 256 characters).
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub reference: Option<String>,
}

/// A reserve transfer as answers show it.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReserveTransferView {
    #[cfg_attr(
        feature = "openapi",
        schema(example = "rtr_0190f0a1b2c3d4e5f60718293a4b5c6d")
    )]
    pub id: String,
    pub from: String,
    pub to: String,
    pub amount: String,
    pub currency: &'static str,
    /// pending (in transit), confirmed or voided.
    pub status: &'static str,
    pub reference: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReserveTransferList {
    pub data: Vec<ReserveTransferView>,
    pub has_more: bool,
}

pub fn transfer_id_text(id: u128) -> String {
    engine::ids::prefixed_hex("rtr_", id)
}

fn transfer_view(t: &ReserveTransfer, names: &[ReserveRecord]) -> ReserveTransferView {
    let currency = Currency::from_numeric(t.currency).unwrap_or(Currency::CNY);
    let name = |n: u32| {
        names
            .iter()
            .find(|r| r.number == n)
            .map_or_else(|| format!("#{n}"), |r| r.name.clone())
    };
    ReserveTransferView {
        id: transfer_id_text(t.id),
        from: name(t.from),
        to: name(t.to),
        amount: format_minor(t.amount, currency),
        currency: currency.code(),
        status: t.phase.name(),
        reference: t.reference.clone(),
        created_at: records::time_text(t.created_at_ns),
        created_by: t.created_by.clone(),
        decided_at: t.decided_at_ns.map(records::time_text),
        decided_by: t.decided_by.clone(),
    }
}

/// The ledger transfer of one phase of reserve transfer `t` (`to`: its phase after).
fn phase_transfer(t: &ReserveTransfer, to: TransferPhase, currency: Currency) -> Result<Transfer> {
    let (source, transit, destination) =
        engine::positions::reserve_transfer_legs(t.phase, to, t.amount)
            .map_err(|e| Error::conflict("reserve_transfer_decided", e.to_string()))?;
    let legs = [
        (reserve_account(t.from, currency), source),
        (transit_account(currency), transit),
        (reserve_account(t.to, currency), destination),
    ];
    let postings = legs
        .into_iter()
        .filter(|(_, a)| *a != 0)
        .map(|(account, amount)| Posting::new(account, currency, amount))
        .collect();
    let id = match to {
        TransferPhase::Pending => TransferId(t.id),
        decided => crate::settlement::transfer_id(decided.name(), t.id, BusinessDate(0)),
    };
    Ok(Transfer::new(
        id,
        TransferKind::Treasury,
        postings,
        engine::Timestamp(0),
    ))
}

/// Starts a transfer between two reserve accounts (operator `actor`): the money leaves the
/// source for funds in transit now, durably with its record and audit entry; it arrives
/// when confirmed. The source must hold the amount.
pub async fn create_transfer(
    state: &Platform,
    actor: &Actor,
    body: CreateReserveTransfer,
    idem: Option<&Guard<'_>>,
) -> Result<Vec<u8>> {
    let currency = state.settings.currency;
    let amount = crate::accounts::parse_positive(&body.amount, currency, "amount")?;
    crate::accounts::check_text(&body.reference, "reference")?;
    let store = state.store()?;
    let ledger = state.ledger()?;
    crate::accounts::ensure_platform_accounts_once(state, currency).await?;
    let names = reserves(store, currency)?;
    let from = named(&names, &body.from, "from")?.clone();
    let to = named(&names, &body.to, "to")?.clone();
    if from.number == to.number {
        return Err(Error::invalid(
            "invalid_parameter",
            "from and to are the same reserve account",
        )
        .with_param("to"));
    }
    // One reserve transfer at a time: the source's balance is checked, then moved.
    let _one = state.positions_admin.lock().await;
    let held = reserve_funds(state, from.number, currency).await?;
    if held < i128::from(amount) {
        return Err(Error::conflict(
            "insufficient_reserve",
            format!(
                "reserve account {:?} holds {}, less than {}",
                from.name,
                format_minor(held, currency),
                format_minor(amount, currency)
            ),
        )
        .with_param("amount"));
    }
    let t = ReserveTransfer {
        id: new_id(),
        from: from.number,
        to: to.number,
        currency: currency.numeric(),
        amount,
        phase: TransferPhase::Pending,
        reference: body.reference,
        created_at_ns: now_ns(),
        created_by: actor.name.clone(),
        decided_at_ns: None,
        decided_by: None,
        extra: records::Tail(()),
    };
    let transfer = phase_transfer(&t, TransferPhase::Pending, currency)?;
    let view = transfer_view(&t, &names);
    let answer = serde_json::to_vec(&view).expect("a reserve transfer view serializes");
    let mut recs = vec![
        (records::reserve_transfer_key(t.id), records::encode(&t)),
        crate::audit::record(
            state,
            actor,
            "reserve_transfer.create",
            &view.id,
            None::<&()>,
            Some(&view),
        ),
    ];
    recs.extend(idem.map(|g| g.record(&answer)));
    match ledger.transfer_with(transfer, recs).await? {
        Ok(_) => Ok(answer),
        Err(reject) => Err(rejected(reject)),
    }
}

fn rejected(reject: Reject) -> Error {
    Error::conflict(
        reject.code(),
        format!("the ledger refused the transfer: {reject}"),
    )
}

fn load_transfer(store: &storage::Store, id_text: &str) -> Result<ReserveTransfer> {
    let not_found = || Error::not_found(format!("no reserve transfer {id_text:?}"));
    let id = records::parse_id(id_text, "rtr_").ok_or_else(not_found)?;
    records::read(store, &records::reserve_transfer_key(id))?.ok_or_else(not_found)
}

/// Confirms (the money arrived at the destination) or voids (it never left the source's
/// bank: back to the source) a pending reserve transfer (operator `actor`). Asking for the
/// decision it already has answers it again; the other decision is `409`.
pub async fn decide(
    state: &Platform,
    actor: &Actor,
    id_text: &str,
    confirm: bool,
) -> Result<ReserveTransferView> {
    let currency = state.settings.currency;
    let store = state.store()?;
    let _one = state.positions_admin.lock().await;
    let mut t = load_transfer(store, id_text)?;
    let names = reserves(store, currency)?;
    let to = if confirm {
        TransferPhase::Confirmed
    } else {
        TransferPhase::Voided
    };
    if t.phase == to {
        return Ok(transfer_view(&t, &names));
    }
    let transfer = phase_transfer(
        &t,
        to,
        Currency::from_numeric(t.currency).unwrap_or(currency),
    )?;
    let before = transfer_view(&t, &names);
    t.phase = to;
    t.decided_at_ns = Some(now_ns());
    t.decided_by = Some(actor.name.clone());
    let after = transfer_view(&t, &names);
    let action = if confirm {
        "reserve_transfer.confirm"
    } else {
        "reserve_transfer.void"
    };
    let recs = vec![
        (records::reserve_transfer_key(t.id), records::encode(&t)),
        crate::audit::record(state, actor, action, &after.id, Some(&before), Some(&after)),
    ];
    match state.ledger()?.transfer_with(transfer, recs).await? {
        Ok(_) => Ok(after),
        Err(reject) => Err(rejected(reject)),
    }
}

pub fn get_transfer(state: &Platform, id_text: &str) -> Result<ReserveTransferView> {
    let store = state.store()?;
    let t = load_transfer(store, id_text)?;
    Ok(transfer_view(
        &t,
        &reserves(store, state.settings.currency)?,
    ))
}

/// Reserve transfers, newest first (at most [`TRANSFERS_LIST_MAX`]).
pub fn list_transfers(state: &Platform) -> Result<ReserveTransferList> {
    let store = state.store()?;
    let names = reserves(store, state.settings.currency)?;
    // The newest at most: a ring of the last ones read (ids are time-ordered), so memory
    // stays bounded however many there are.
    let mut last: std::collections::VecDeque<(Vec<u8>, Vec<u8>)> = Default::default();
    let mut has_more = false;
    store
        .for_each_aux_with_prefix(records::prefix::RESERVE_TRANSFER, usize::MAX, |k, v| {
            if last.len() == TRANSFERS_LIST_MAX {
                last.pop_front();
                has_more = true;
            }
            last.push_back((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .map_err(|e| Error::storage(format!("cannot read the reserve transfers: {e}")))?;
    let mut all = Vec::with_capacity(last.len());
    for (k, v) in last.iter().rev() {
        all.push(records::decode::<ReserveTransfer>(k, v)?);
    }
    Ok(ReserveTransferList {
        data: all.iter().map(|t| transfer_view(t, &names)).collect(),
        has_more,
    })
}

// ---------------------------------------------------------------------------------------
// Channel settlement to the reserve (day-end step `channel_settlement`).

/// One account's day from `date`'s snapshot; a zero day when the snapshot exists without it
/// (the account had not moved yet, or did not exist).
fn account_day(
    store: &storage::Store,
    date: BusinessDate,
    account: AccountId,
) -> Result<Option<engine::gl::day_end::AccountDay>> {
    if let Some(d) = records::read::<engine::gl::day_end::AccountDay>(
        store,
        &records::account_day_key(date, account),
    )? {
        return Ok(Some(d));
    }
    if crate::day_end::load(store, date)?.is_some_and(|d| d.accounts > 0) {
        return Ok(None);
    }
    Err(Error::Storage(format!(
        "the snapshot of {date} is missing: its day-end did not reach it"
    )))
}

/// The day-end step `channel_settlement` of `date`: each channel's dates whose lag has
/// passed are settled from its receivable to its reserve account. Each channel is one
/// durable unit (its transfer and its clearing state); a rerun skips channels done.
pub async fn channel_settlement_step(
    state: &Platform,
    store: &Arc<storage::Store>,
    date: BusinessDate,
) -> Result<String> {
    let currency = state.settings.currency;
    crate::accounts::ensure_platform_accounts_once(state, currency).await?;
    let ledger = state.ledger()?;
    let channels: Vec<records::ChannelRecord> = crate::channels::records(state)
        .into_iter()
        .filter(|c| c.currency == currency.numeric())
        .collect();
    let (mut settled_channels, mut total) = (0u64, 0i128);
    for ch in &channels {
        let key = records::channel_clearing_key(ch.id);
        let mut c: ChannelClearing = records::read(store, &key)?.unwrap_or_default();
        if c.0.through.is_some_and(|t| t >= date) {
            continue;
        }
        let receivable = receivable_account(ch.number, currency);
        let mut x = match c.0.through {
            Some(t) => t.next().unwrap_or(date),
            None => date,
        };
        while x <= date {
            let day = account_day(store, x, receivable)?;
            c.take_in(ReceivableDay {
                date: x,
                opening: day.map_or(0, |d| d.opening),
                debit: day.map_or(0, |d| d.debit),
                credit: day.map_or(0, |d| d.credit),
            })
            .map_err(|e| Error::Storage(format!("channel {}: {e}", ch.name)))?;
            x = match x.next() {
                Some(n) => n,
                None => break,
            };
        }
        let terms = ch.settlement.0;
        let (amount, _) = c
            .settle(date, terms.lag_days)
            .map_err(|e| Error::Storage(format!("channel {}: {e}", ch.name)))?;
        if amount == 0 {
            ledger
                .write_records(vec![(key, records::encode(&c))])
                .await?;
            continue;
        }
        let id = crate::settlement::transfer_id("channel_settlement", ch.id, date);
        let mut done = false;
        for _ in 0..8 {
            let open = state.period()?.open;
            let mut state_after = c.clone();
            state_after.posted(open, amount);
            let mut t = Transfer::new(
                id,
                TransferKind::Treasury,
                vec![
                    Posting::new(reserve_account(terms.reserve, currency), currency, -amount),
                    Posting::new(receivable, currency, amount),
                ],
                engine::Timestamp(0),
            );
            t.accounting_date = Some(open);
            match ledger
                .transfer_with(t, vec![(key.clone(), records::encode(&state_after))])
                .await?
            {
                Ok(_) => {
                    done = true;
                    break;
                }
                Err(Reject::PeriodClosed | Reject::InvalidAccountingDate) => continue,
                Err(other) => {
                    return Err(Error::Storage(format!(
                        "settling channel {} to the reserve: {other}",
                        ch.name
                    )))
                }
            }
        }
        if !done {
            return Err(Error::Storage(format!(
                "settling channel {}: the date kept switching",
                ch.name
            )));
        }
        settled_channels += 1;
        total += i128::from(amount);
    }
    Ok(format!(
        "{} channel(s), {settled_channels} settled {} to the reserve",
        channels.len(),
        format_minor(total, currency)
    ))
}

// ---------------------------------------------------------------------------------------
// Positions.

/// A date a channel's takings are expected at the reserve.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExpectedView {
    #[cfg_attr(feature = "openapi", schema(format = "date"))]
    pub date: String,
    pub amount: String,
}

/// Our position at a channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelPositionView {
    pub channel: String,
    /// What the channel owes us (its receivable, debit-positive).
    pub receivable: String,
    pub settlement_lag_days: u16,
    /// The reserve account it settles to.
    pub settles_to: String,
    /// Unsettled takings by the business date they are expected at the reserve.
    pub expected: Vec<ExpectedView>,
    pub low_water: String,
    pub below_low_water: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InTransitView {
    /// Between the platform's reserve accounts (GL 1002).
    pub reserve_transfers: String,
    /// Payouts sent to merchants, not yet confirmed (GL 2104).
    pub payouts: String,
    /// Refunds sent to channels, not yet confirmed (GL 2201).
    pub refunds: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OwedView {
    pub customers: String,
    pub merchants_pending: String,
    pub merchants_available: String,
    pub split_receivers: String,
    pub payouts_in_transit: String,
    pub refunds_in_transit: String,
    pub coupon_budgets: String,
    pub total: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CoverageView {
    /// Reserve + funds in transit between reserve accounts + receivable from channels.
    pub funds: String,
    pub owed: String,
    /// funds − owed: the platform's own money (negative: a shortfall).
    pub surplus: String,
    pub shortfall: String,
    /// funds ≥ owed.
    pub covered: bool,
}

/// A monitor that is firing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MonitorView {
    /// coverage, reserve_low_water or channel_low_water.
    pub monitor: String,
    /// The reserve account or channel (the currency for coverage).
    pub subject: String,
    pub message: String,
}

/// `GET /v1/positions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PositionsView {
    #[cfg_attr(feature = "openapi", schema(format = "date"))]
    pub date: String,
    pub currency: String,
    /// A closed date's figures, frozen by its day-end; else live.
    pub closed: bool,
    pub reserves: Vec<ReserveView>,
    pub channels: Vec<ChannelPositionView>,
    pub in_transit: InTransitView,
    /// Merchants' matured money the next settlement batches pay out (GL 2102).
    pub payouts_due: String,
    pub owed: OwedView,
    pub coverage: CoverageView,
    /// The monitors firing on these figures.
    pub alerts: Vec<MonitorView>,
}

/// What the positions are made of: each GL account's credit-positive balance, each reserve
/// account's funds and each channel's receivable with its expected settlements.
struct Inputs {
    gl: std::collections::BTreeMap<GlAccount, i128>,
    reserves: Vec<(ReserveRecord, i128)>,
    channels: Vec<ChannelInput>,
}

/// A channel, what it owes us, and its unsettled takings by expected date.
type ChannelInput = (records::ChannelRecord, i128, Vec<(BusinessDate, i64)>);

impl Inputs {
    /// A GL account's credit-positive balance.
    fn gl(&self, g: GlAccount) -> i128 {
        self.gl.get(&g).copied().unwrap_or(0)
    }

    fn coverage(&self) -> Coverage {
        Coverage::of(|g| self.gl(g))
    }
}

fn build(date: BusinessDate, currency: Currency, closed: bool, x: &Inputs) -> PositionsView {
    let m = |v: i128| format_minor(v, currency);
    let gl = |g: GlAccount| x.gl(g);
    let coverage = x.coverage();
    let reserve_name = |n: u32| {
        x.reserves
            .iter()
            .find(|(r, _)| r.number == n)
            .map_or_else(|| format!("#{n}"), |(r, _)| r.name.clone())
    };
    let reserves: Vec<ReserveView> = x
        .reserves
        .iter()
        .map(|(r, f)| reserve_view(r, *f, currency))
        .collect();
    let channels: Vec<ChannelPositionView> = x
        .channels
        .iter()
        .map(|(c, owed, expected)| ChannelPositionView {
            channel: c.name.clone(),
            receivable: m(*owed),
            settlement_lag_days: c.settlement.0.lag_days,
            settles_to: reserve_name(c.settlement.0.reserve),
            expected: expected
                .iter()
                .map(|(d, a)| ExpectedView {
                    date: d.to_string(),
                    amount: m(i128::from(*a)),
                })
                .collect(),
            low_water: m(i128::from(c.position_low_water_minor.0)),
            below_low_water: below_low_water(*owed, c.position_low_water_minor.0),
        })
        .collect();
    let mut alerts = Vec::new();
    if !coverage.covered() {
        alerts.push(MonitorView {
            monitor: "coverage".into(),
            subject: currency.code().into(),
            message: format!(
                "funds {} are {} short of what is owed ({})",
                m(coverage.funds),
                m(coverage.shortfall()),
                m(coverage.owed)
            ),
        });
    }
    for r in reserves.iter().filter(|r| r.below_low_water) {
        alerts.push(MonitorView {
            monitor: "reserve_low_water".into(),
            subject: r.name.clone(),
            message: format!(
                "reserve account {} holds {}, below its mark {}",
                r.name, r.balance, r.low_water
            ),
        });
    }
    for c in channels.iter().filter(|c| c.below_low_water) {
        alerts.push(MonitorView {
            monitor: "channel_low_water".into(),
            subject: c.channel.clone(),
            message: format!(
                "our position at {} is {}, below its mark {}",
                c.channel, c.receivable, c.low_water
            ),
        });
    }
    PositionsView {
        date: date.to_string(),
        currency: currency.code().into(),
        closed,
        reserves,
        channels,
        in_transit: InTransitView {
            reserve_transfers: m(-gl(GlAccount::FundsInTransit)),
            payouts: m(gl(GlAccount::PayoutsInTransit)),
            refunds: m(gl(GlAccount::RefundsInTransit)),
        },
        payouts_due: m(gl(GlAccount::MerchantAvailable)),
        owed: OwedView {
            customers: m(gl(GlAccount::CustomerBalances)),
            merchants_pending: m(gl(GlAccount::MerchantPending)),
            merchants_available: m(gl(GlAccount::MerchantAvailable)),
            split_receivers: m(gl(GlAccount::SplitReceivers)),
            payouts_in_transit: m(gl(GlAccount::PayoutsInTransit)),
            refunds_in_transit: m(gl(GlAccount::RefundsInTransit)),
            coupon_budgets: m(gl(GlAccount::CouponBudgets)),
            total: m(coverage.owed),
        },
        coverage: CoverageView {
            funds: m(coverage.funds),
            owed: m(coverage.owed),
            surplus: m(coverage.surplus()),
            shortfall: m(coverage.shortfall()),
            covered: coverage.covered(),
        },
        alerts,
    }
}

/// The live inputs: GL balances as the writer keeps them, accounts through the ledger.
async fn live_inputs(state: &Platform, currency: Currency) -> Result<(BusinessDate, Inputs)> {
    let store = state.store()?;
    let ledger = state.ledger()?;
    let open = state.period()?.open;
    let book = store.gl_book();
    let gl = GlAccount::ALL
        .iter()
        .map(|g| (*g, book.balance(currency, *g)))
        .collect();
    let mut reserve_list = Vec::new();
    for r in reserves(store, currency)? {
        let funds = reserve_funds(state, r.number, currency).await?;
        reserve_list.push((r, funds));
    }
    let mut channel_list = Vec::new();
    for ch in crate::channels::records(state) {
        if ch.currency != currency.numeric() {
            continue;
        }
        let owed = ledger
            .account(receivable_account(ch.number, currency))
            .await?
            .map_or(0, |a| -i128::from(a.account.balance));
        let c: ChannelClearing =
            records::read(store, &records::channel_clearing_key(ch.id))?.unwrap_or_default();
        let lag = ch.settlement.0.lag_days;
        let mut expected = c.expected(lag);
        // What was booked since the last day-end took it in settles `lag` days after today.
        let today = i64::try_from(owed - c.0.queued()).unwrap_or(0);
        if today != 0 {
            expected.push((BusinessDate(open.0 + i32::from(lag)), today));
        }
        channel_list.push((ch, owed, expected));
    }
    Ok((
        open,
        Inputs {
            gl,
            reserves: reserve_list,
            channels: channel_list,
        },
    ))
}

/// `date`'s inputs from its day-end: the GL's closing figures, the account snapshot, and
/// the channels' clearing after this day-end settled them.
fn closed_inputs(
    store: &storage::Store,
    date: BusinessDate,
    currency: Currency,
    channels: Vec<records::ChannelRecord>,
) -> Result<Inputs> {
    let gl = crate::gl::day_rows(store, date)?
        .into_iter()
        .filter(|r| r.currency == currency)
        .map(|r| (r.gl, -r.closing))
        .collect();
    let closing = |a: AccountId| -> Result<i128> {
        Ok(account_day(store, date, a)?.map_or(0, |d| -i128::from(d.closing)))
    };
    let mut reserve_list = Vec::new();
    for r in reserves(store, currency)? {
        let funds = closing(reserve_account(r.number, currency))?;
        reserve_list.push((r, funds));
    }
    let mut channel_list = Vec::new();
    for ch in channels {
        if ch.currency != currency.numeric() {
            continue;
        }
        let owed = closing(receivable_account(ch.number, currency))?;
        let c: ChannelClearing =
            records::read(store, &records::channel_clearing_key(ch.id))?.unwrap_or_default();
        let expected = c.expected(ch.settlement.0.lag_days);
        channel_list.push((ch, owed, expected));
    }
    Ok(Inputs {
        gl,
        reserves: reserve_list,
        channels: channel_list,
    })
}

/// The day-end step `positions` of `date`: freezes the date's positions and runs the
/// coverage check on its closing figures. Answers the detail and whether it is covered.
pub async fn positions_step(
    state: &Platform,
    store: &Arc<storage::Store>,
    date: BusinessDate,
) -> Result<(String, bool)> {
    let currency = state.settings.currency;
    let s = Arc::clone(store);
    let channels = crate::channels::records(state);
    let inputs =
        crate::day_end::in_background(move || closed_inputs(&s, date, currency, channels)).await?;
    let view = build(date, currency, true, &inputs);
    let json = serde_json::to_vec(&view).expect("a positions view serializes");
    state
        .ledger()?
        .write_records(vec![(records::positions_key(date), records::encode(&json))])
        .await?;
    let coverage = inputs.coverage();
    crate::metrics::day_end_coverage(
        currency,
        i64::try_from(coverage.shortfall()).unwrap_or(i64::MAX),
    );
    let detail = format!(
        "funds {} against owed {}: {}",
        view.coverage.funds,
        view.coverage.owed,
        if view.coverage.covered {
            format!("covered, surplus {}", view.coverage.surplus)
        } else {
            format!("SHORTFALL {}", view.coverage.shortfall)
        }
    );
    Ok((detail, coverage.covered()))
}

/// The positions of `date` (the open date unless given): a closed date's as its day-end
/// froze them, the open date's live.
pub async fn get(state: &Platform, date: Option<&str>) -> Result<PositionsView> {
    let currency = state.settings.currency;
    let store = state.store()?;
    let open = state.period()?.open;
    let date = match date {
        None => open,
        Some(text) => crate::gl::parse_date(text, "date")?,
    };
    if date == open {
        let (open, inputs) = live_inputs(state, currency).await?;
        return Ok(build(open, currency, false, &inputs));
    }
    match crate::shelf::read_dated::<Vec<u8>>(store, date, &records::positions_key(date))? {
        Some(b) => serde_json::from_slice(&b).map_err(|e| Error::Storage(format!("frozen positions do not parse: {e}"))),
        None => Err(Error::not_found(format!(
            "no positions for {date}: only the open date ({open}) and closed dates whose day-end reached its positions step have them"
        ))
        .with_param("date")),
    }
}

/// The live figures the metrics export: each reserve account (name, funds, low-water
/// mark) and the coverage.
pub async fn live_monitors(
    state: &Platform,
) -> Result<(Vec<(String, i128, i64)>, Coverage, Currency)> {
    let currency = state.settings.currency;
    let store = state.store()?;
    let book = store.gl_book();
    let coverage = Coverage::of(|g| book.balance(currency, g));
    let mut out = Vec::new();
    for r in reserves(store, currency)? {
        let funds = reserve_funds(state, r.number, currency).await?;
        out.push((r.name, funds, r.low_water));
    }
    Ok((out, coverage, currency))
}

//! Accounts: the rules of their amounts and texts, the platform's own accounts, and how a
//! ledger refusal reads.

use engine::money::{format_minor, parse_amount};
use engine::{
    AccountId, AccountStatus, Currency, LiveAccount, MoneyError, PlatformRole, Reject, Timestamp,
    Transfer, TransferId, TransferKind,
};
use serde::{Deserialize, Serialize};

use crate::audit::Actor;
use crate::idempotency::Guard;
use crate::merchants::Caller;
use crate::platform::{new_id, now_ns, Platform};
use crate::records::{self, AccountMeta};
use crate::{Error, Result};

/// Opens an account.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// ISO 4217 alphabetic code.
    #[cfg_attr(feature = "openapi", schema(example = "CNY", pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
    /// Free text, at most 256 bytes.
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub owner: Option<String>,
    /// How far below zero the balance may go (default "0").
    #[cfg_attr(
        feature = "openapi",
        schema(example = "0.00", pattern = r"^[0-9]+(\.[0-9]+)?$", max_length = 40)
    )]
    pub credit_limit: Option<String>,
}

/// Customer funds received for an account.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateDeposit {
    #[cfg_attr(
        feature = "openapi",
        schema(example = "100.00", pattern = r"^[0-9]+(\.[0-9]+)?$", max_length = 40)
    )]
    pub amount: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub reference: Option<String>,
}

/// An account's lifecycle state as set by an operator.
#[derive(Clone, Copy, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum StatusName {
    /// Takes and gives money.
    Active,
    /// Refuses every posting (payments fail with `account_frozen`) until made active again.
    Frozen,
    /// Final; only an account with zero balance and nothing held or in flight can close.
    Closed,
}

/// Changes an account's status (admin).
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    pub status: StatusName,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DepositView {
    pub id: String,
    pub account_id: String,
    pub amount: String,
    pub balance: String,
}

/// Longest free texts (`owner`, `reference`, `description`, `reason`, a merchant's name),
/// in characters (as JSON Schema counts `maxLength`).
pub const TEXT_FIELD_LEN_MAX: usize = 256;

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountView {
    pub id: String,
    pub currency: &'static str,
    pub balance: String,
    pub available: String,
    pub credit_limit: String,
    pub status: &'static str,
    pub owner: Option<String>,
}

pub fn status_name(status: AccountStatus) -> &'static str {
    match status {
        AccountStatus::Active => "active",
        AccountStatus::Frozen => "frozen",
        AccountStatus::Closed => "closed",
    }
}

pub fn view(live: &LiveAccount, owner: Option<String>) -> AccountView {
    let a = &live.account;
    AccountView {
        id: a.id.to_string(),
        currency: a.currency.code(),
        balance: format_minor(a.balance, a.currency),
        available: format_minor(live.available(), a.currency),
        credit_limit: format_minor(a.credit_limit, a.currency),
        status: status_name(a.status),
        owner,
    }
}

pub fn parse_currency(text: &str) -> Result<Currency> {
    Currency::from_code(text)
        .map_err(|e| Error::invalid("invalid_currency", e.to_string()).with_param("currency"))
}

/// A positive amount of `currency`, or `400 invalid_amount` naming `param`.
pub fn parse_positive(text: &str, currency: Currency, param: &str) -> Result<i64> {
    parse_amount(text, currency)
        .map_err(|e| Error::invalid("invalid_amount", e.to_string()).with_param(param))
}

/// A non-negative amount (zero allowed), e.g. a credit limit.
pub fn parse_non_negative(text: &str, currency: Currency, param: &str) -> Result<i64> {
    match parse_amount(text, currency) {
        Err(MoneyError::NotPositive(_)) => Ok(0),
        other => {
            other.map_err(|e| Error::invalid("invalid_amount", e.to_string()).with_param(param))
        }
    }
}

pub fn check_text(text: &Option<String>, param: &str) -> Result<()> {
    if let Some(t) = text {
        crate::pan::refuse(t, param)?;
    }
    match text {
        Some(t) if t.chars().count() > TEXT_FIELD_LEN_MAX => Err(Error::invalid(
            "invalid_parameter",
            format!(
                "{param} is {} characters long; the maximum is {TEXT_FIELD_LEN_MAX}",
                t.chars().count()
            ),
        )
        .with_param(param)),
        _ => Ok(()),
    }
}

/// A short machine word (a purpose, a category): 1 to 32 of `a-z 0-9 _`; `invalid_parameter` naming `param` otherwise.
pub fn check_word(value: &str, param: &str) -> Result<()> {
    if (1..=32).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(())
    } else {
        Err(Error::invalid(
            "invalid_parameter",
            format!("{param} must be 1 to 32 of a-z, 0-9 and _"),
        )
        .with_param(param.to_string()))
    }
}

/// Makes sure the platform accounts for `currency` exist, once per process: after the first
/// success the check costs a map lookup instead of two reads of hot, merge-heavy accounts.
pub async fn ensure_platform_accounts_once(state: &Platform, currency: Currency) -> Result<()> {
    if state.platform_ready.contains_key(&currency.numeric()) {
        return Ok(());
    }
    ensure_platform_accounts(state.ledger()?, currency).await?;
    state.platform_ready.insert(currency.numeric(), ());
    Ok(())
}

/// The account named by the path, or 404 (a malformed id is just an unknown one).
pub async fn load(state: &Platform, id_text: &str) -> Result<LiveAccount> {
    let id = AccountId::parse(id_text)
        .ok_or_else(|| Error::not_found(format!("no account {id_text:?}")))?;
    state
        .ledger()?
        .account(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no account {id_text:?}")))
}

pub fn rejected(reject: Reject) -> Error {
    let conflict = |code, msg: String| Error::conflict(code, msg);
    match reject {
        Reject::AccountFrozen(id) => conflict("account_frozen", format!("account {id} is frozen")),
        Reject::AccountClosed(id) => conflict("account_closed", format!("account {id} is closed")),
        Reject::AccountNotEmpty(id) => conflict(
            "account_not_empty",
            format!("account {id} still holds money or has postings in flight"),
        ),
        Reject::UnknownAccount(id) => Error::not_found(format!("no account {id}")),
        Reject::PeriodClosed => conflict("period_closed", reject.to_string()),
        Reject::Overflow(id) => Error::invalid(
            "invalid_amount",
            format!("the balance of {id} would exceed the maximum"),
        )
        .with_param("amount"),
        other => Error::invalid(other.code(), other.to_string()),
    }
}

/// Makes sure the platform's customer-funds and fee accounts exist for `currency`.
pub async fn ensure_platform_accounts(ledger: &actors::Ledger, currency: Currency) -> Result<()> {
    for role in [
        PlatformRole::CustomerFunds,
        PlatformRole::FeeIncome,
        PlatformRole::MerchantNegative,
        PlatformRole::PayoutsInTransit,
        PlatformRole::FundsInTransit,
        PlatformRole::Equity,
        PlatformRole::ReconWriteOffs,
        PlatformRole::PlatformDiscounts,
        PlatformRole::InterestIncome,
        PlatformRole::AuthorizationHolds,
    ] {
        let id = AccountId::platform(role, currency.numeric());
        // Customer funds mirror money at banks, merchant negative balances are owed to us
        // and funds in transit are ours on their way (assets: below zero), and equity may
        // be negative (losses): any sign. Fee income and payouts in transit never go below
        // zero.
        let limit = if matches!(
            role,
            PlatformRole::CustomerFunds
                | PlatformRole::MerchantNegative
                | PlatformRole::FundsInTransit
                | PlatformRole::Equity
                | PlatformRole::ReconWriteOffs
                | PlatformRole::PlatformDiscounts
        ) {
            i64::MAX
        } else {
            0
        };
        match ledger.create_account(id, currency, limit).await? {
            Ok(_) | Err(Reject::AccountExists(_)) => {}
            Err(other) => return Err(rejected(other)),
        }
    }
    Ok(())
}

/// Opens an account (operator `actor`), durably with its owner text, its audit entry and
/// the idempotency record of its answer. Returns the answer: the account's view as JSON.
pub async fn create(
    state: &Platform,
    actor: &Actor,
    body: CreateAccount,
    idem: Option<&Guard<'_>>,
) -> Result<Vec<u8>> {
    let currency = parse_currency(&body.currency)?;
    let credit_limit = match &body.credit_limit {
        Some(text) => parse_non_negative(text, currency, "credit_limit")?,
        None => 0,
    };
    check_text(&body.owner, "owner")?;
    let ledger = state.ledger()?;
    let id = AccountId(new_id());
    // A new account's answer is known before it exists: render it first, so that the
    // idempotency record carrying it is written with the account.
    let fresh = LiveAccount::new(engine::Account::new(
        id,
        currency,
        credit_limit,
        Timestamp(0),
    ));
    let answer =
        serde_json::to_vec(&view(&fresh, body.owner.clone())).expect("an account view serializes");
    let meta = AccountMeta { owner: body.owner };
    let after: Option<serde_json::Value> = serde_json::from_slice(&answer).ok();
    let mut records = vec![
        (records::account_meta_key(id), records::encode(&meta)),
        crate::audit::record(
            state,
            actor,
            "account.create",
            &id.to_string(),
            None::<&()>,
            after.as_ref(),
        ),
    ];
    records.extend(idem.map(|g| g.record(&answer)));
    ledger
        .create_account_with(id, currency, credit_limit, records)
        .await?
        .map_err(rejected)?;
    Ok(answer)
}

/// Account `id_text` as `caller` may see it (a merchant: its own balance account only).
pub async fn get(state: &Platform, caller: &Caller, id_text: &str) -> Result<AccountView> {
    let live = load(state, id_text).await?;
    // A merchant sees its own accounts only (pending and available); any other answers
    // 404, like a missing one.
    if let Caller::Merchant(m) = &caller {
        if m.account != live.account.id && m.pending() != live.account.id {
            return Err(Error::not_found(format!("no account {:?}", id_text)));
        }
    }
    respond(state, &live)
}

/// The account with its owner text.
fn respond(state: &Platform, live: &LiveAccount) -> Result<AccountView> {
    let meta: Option<AccountMeta> =
        records::read(state.store()?, &records::account_meta_key(live.account.id))?;
    Ok(view(live, meta.and_then(|m| m.owner)))
}

/// Customer funds received for account `id_text` (operator `actor`): one transfer from the
/// platform's customer funds, durably with its record, audit entry and idempotency record.
/// Returns the answer: the deposit's view as JSON.
pub async fn deposit(
    state: &Platform,
    actor: &Actor,
    id_text: &str,
    body: CreateDeposit,
    idem: Option<&Guard<'_>>,
) -> Result<Vec<u8>> {
    let live = load(state, id_text).await?;
    let account = live.account.id;
    let currency = live.account.currency;
    let amount = parse_positive(&body.amount, currency, "amount")?;
    check_text(&body.reference, "reference")?;
    let ledger = state.ledger()?;
    ensure_platform_accounts_once(state, currency).await?;
    let id = TransferId(new_id());
    let funds = AccountId::platform(PlatformRole::CustomerFunds, currency.numeric());
    // `balance` is the account's balance as this request saw it plus the deposit: rendered
    // before the write so the idempotency record can carry the exact answer. Postings that
    // commit concurrently on the same account are not reflected in it.
    let balance_after = live.account.balance.checked_add(amount).ok_or_else(|| {
        Error::invalid("invalid_amount", "the balance would exceed the maximum")
            .with_param("amount")
    })?;
    let answer = serde_json::to_vec(&DepositView {
        id: format!("dep_{:032x}", id.0),
        account_id: account.to_string(),
        amount: format_minor(amount, currency),
        balance: format_minor(balance_after, currency),
    })
    .expect("a deposit view serializes");
    let record = records::Deposit {
        account,
        amount,
        reference: body.reference,
        created_at_ns: now_ns(),
    };
    let after: Option<serde_json::Value> = serde_json::from_slice(&answer).ok();
    let mut records = vec![
        (records::deposit_key(id), records::encode(&record)),
        crate::audit::record(
            state,
            actor,
            "deposit.create",
            &account.to_string(),
            None::<&()>,
            after.as_ref(),
        ),
    ];
    records.extend(idem.map(|g| g.record(&answer)));
    // A customer's balance cap (issue #18), held until the deposit is durable.
    let _turn = crate::customers::admit_credit(state, account, amount).await?;
    let transfer = Transfer::between(
        id,
        TransferKind::Deposit,
        funds,
        account,
        currency,
        amount,
        Timestamp(0),
    );
    ledger
        .transfer_with(transfer, records)
        .await?
        .map_err(rejected)?;
    Ok(answer)
}

/// Sets account `id_text`'s status (operator `actor`). Returns the account as it now is.
pub async fn update(
    state: &Platform,
    actor: &Actor,
    id_text: &str,
    body: UpdateAccount,
) -> Result<AccountView> {
    let before = load(state, id_text).await?;
    let id = before.account.id;
    let before_status = format!("{:?}", before.account.status).to_lowercase();
    if id.is_platform() {
        return Err(Error::invalid(
            "invalid_parameter",
            "the platform's own accounts always stay active",
        )
        .with_param("status"));
    }
    let status = match body.status {
        StatusName::Active => AccountStatus::Active,
        StatusName::Frozen => AccountStatus::Frozen,
        StatusName::Closed => AccountStatus::Closed,
    };
    // Durable (a journal entry) before the answer, like every other change of the ledger.
    state
        .ledger()?
        .set_status(id, status)
        .await?
        .map_err(rejected)?;
    // After the status entry (it is a journal entry of its own).
    crate::audit::write(
        state,
        crate::audit::record(
            state,
            actor,
            "account.update",
            &id.to_string(),
            Some(&serde_json::json!({ "status": before_status })),
            Some(&serde_json::json!({ "status": format!("{status:?}").to_lowercase() })),
        ),
    )
    .await?;
    respond(state, &load(state, id_text).await?)
}

//! Accounts: the rules of their amounts and texts, the platform's own accounts, and how a
//! ledger refusal reads.

use engine::money::{format_minor, parse_amount};
use engine::{AccountId, AccountStatus, Currency, LiveAccount, MoneyError, PlatformRole, Reject};
use serde::Serialize;

use crate::platform::Platform;
use crate::{Error, Result};

/// Longest `owner` and `reference` texts, in bytes.
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
        Some(t) if t.len() > TEXT_FIELD_LEN_MAX => Err(Error::invalid(
            "invalid_parameter",
            format!(
                "{param} is {} bytes long; the maximum is {TEXT_FIELD_LEN_MAX}",
                t.len()
            ),
        )
        .with_param(param)),
        _ => Ok(()),
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
    for role in [PlatformRole::CustomerFunds, PlatformRole::FeeIncome] {
        let id = AccountId::platform(role, currency.numeric());
        // Customer funds mirror money at banks: any sign. Fee income never goes below zero.
        let limit = if role == PlatformRole::CustomerFunds {
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

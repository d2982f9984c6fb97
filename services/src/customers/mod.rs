//! Customers and real-name verification (实名, issue #18, `../shared/FUNDS.md` "Customers and
//! KYC"): a customer is a person with a balance account here and a KYC level — `0`
//! unverified, `1` phone verified (a one-time code sent to the customer's phone, through the
//! SMS platform's code flow), `2` identity verified (a PRC resident id whose checksum and
//! birth date hold, matched with the customer's name at the identity service, [`identity`]).
//!
//! Each level's limits (`kyc_limits_0..2`: per payment, per day, per year, balance cap) are
//! enforced before money moves: a payment from a customer's account over one is created
//! `failed` with `kyc_limit_exceeded` ([`admit_payment`]); a deposit over the balance cap is
//! refused ([`admit_credit`]). The day's and year's totals are a record written in the same
//! durable unit as the payment, and one KYC-limited movement per customer runs at a time
//! ([`turn`]), so the totals are exact under any concurrency and across restarts. They count
//! business dates: a new day starts at the day-end's switch, not at a wall-clock midnight.
//!
//! The id number never reaches a log, an error message or an answer: it is sealed under the
//! master key at rest (context: the customer's id) and shown masked (`110***********002X`).

pub mod identity;

use engine::kyc::{LimitExceeded, Limits, ResidentId};
use engine::money::format_minor;
use engine::{AccountId, Currency, LiveAccount, Timestamp};
use serde::{Deserialize, Serialize};

use crate::accounts::{ensure_platform_accounts_once, parse_currency, rejected};
use crate::audit::Actor;
use crate::idempotency::Guard;
use crate::merchants::{merchant_id_text, Caller};
use crate::notifications::otp::{self, CreateOtp, OtpView, VerifyOtp};
use crate::notifications::{check_phone, mask_phone};
use crate::platform::{new_id, now_ns, take_turn, Platform, Turn};
use crate::records::{self, AccountMeta, Customer};
use crate::secret::Secret;
use crate::{Error, Result};

/// Identity checks the service may answer "no match" for one customer; then only an
/// operator can help (against enumerating names and numbers through us).
pub const IDENTITY_MISMATCHES_MAX: u32 = 5;
/// Most customers one list answers.
pub const LIST_MAX: usize = 100;
const NAME_CHARS_MAX: usize = 64;
/// The one-time code purpose of a customer's phone verification.
const PHONE_PURPOSE: &str = "kyc_phone";

pub fn customer_id_text(id: u128) -> String {
    engine::ids::prefixed_hex("cus_", id)
}

/// `POST /v1/customers`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    /// The customer's legal name (what the identity service matches), 1–64 characters.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "韩梅梅", min_length = 1, max_length = 64)
    )]
    pub name: String,
    /// E.164: `+` and 8 to 15 digits.
    #[cfg_attr(feature = "openapi", schema(example = "+8613800138000"))]
    pub phone: String,
    /// PRC resident identity number (18 characters; a lower-case final `x` reads as `X`):
    /// checked now, matched at the identity service by `…/identity_verification`. Stored
    /// sealed, shown masked.
    #[cfg_attr(
        feature = "openapi",
        schema(
            value_type = Option<String>,
            example = "11010519491231002X",
            pattern = r"^[0-9]{17}[0-9Xx]$"
        )
    )]
    pub id_number: Option<Secret>,
    /// The balance account's currency (default: the server's `default_currency`).
    #[cfg_attr(feature = "openapi", schema(example = "CNY", pattern = r"^[A-Z]{3}$"))]
    pub currency: Option<String>,
}

/// `POST /v1/customers/{id}/phone_verification/check`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CheckPhone {
    /// The code's id, from `POST /v1/customers/{id}/phone_verification`.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "otp_0193a1b2c3d4e5f60718293a4b5c6d7e")
    )]
    pub otp_id: String,
    /// The six digits the customer received.
    #[cfg_attr(feature = "openapi", schema(example = "042917"))]
    pub code: String,
}

/// `POST /v1/customers/{id}/identity_verification`.
#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VerifyIdentity {
    /// The resident id number to verify; left out: the one given at creation.
    #[cfg_attr(
        feature = "openapi",
        schema(
            value_type = Option<String>,
            example = "11010519491231002X",
            pattern = r"^[0-9]{17}[0-9Xx]$"
        )
    )]
    pub id_number: Option<Secret>,
}

/// A level's limits as shown (`null`: none).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LimitsView {
    per_payment: Option<String>,
    per_day: Option<String>,
    per_year: Option<String>,
    balance_cap: Option<String>,
}

/// What the customer has paid in the open business day and year.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageView {
    business_date: String,
    day: String,
    year: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomerView {
    id: String,
    /// The merchant that created it (`null`: the operator).
    merchant_id: Option<String>,
    name: String,
    /// Masked: `+86138****8000`.
    phone: String,
    /// The customer's balance account (pays `{"type": "balance"}` payments).
    account_id: String,
    balance: String,
    currency: &'static str,
    /// 0 unverified, 1 phone verified, 2 identity verified.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 2))]
    kyc_level: u8,
    /// Masked: `110***********002X` (`null`: none given).
    id_number: Option<String>,
    phone_verified_at: Option<String>,
    identity_verified_at: Option<String>,
    /// The limits of its level.
    limits: LimitsView,
    usage: UsageView,
    created_at: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomerList {
    data: Vec<CustomerView>,
    has_more: bool,
}

fn sealing_context(id: u128) -> Vec<u8> {
    [b"customer-id-number".as_slice(), &id.to_be_bytes()].concat()
}

fn invalid_id(e: engine::kyc::IdError) -> Error {
    // The message says which rule, never the number.
    Error::invalid("invalid_id_number", format!("id_number: {e}")).with_param("id_number")
}

/// The number in `text` as a valid resident id as of the open business date.
fn parse_id_number(state: &Platform, text: &Secret) -> Result<ResidentId> {
    let today = state.period()?.open;
    ResidentId::parse(text.expose(), today).map_err(invalid_id)
}

fn check_name(name: &str) -> Result<()> {
    let n = name.chars().count();
    if name.trim().is_empty() || n > NAME_CHARS_MAX || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_parameter",
            format!("name must be 1 to {NAME_CHARS_MAX} characters, not blank"),
        )
        .with_param("name"));
    }
    crate::pan::refuse(name, "name")
}

/// The limits of `level` (levels above 2 read as 2).
pub fn limits_of(state: &Platform, level: u8) -> Limits {
    state.settings.kyc_limits[usize::from(level.min(2))]
}

fn limits_view(l: &Limits, currency: Currency) -> LimitsView {
    let f = |v: Option<i64>| v.map(|v| format_minor(v, currency));
    LimitsView {
        per_payment: f(l.per_payment),
        per_day: f(l.per_day),
        per_year: f(l.per_year),
        balance_cap: f(l.balance_cap),
    }
}

fn counters(state: &Platform, customer: u128) -> Result<engine::kyc::Counters> {
    Ok(records::read(state.store()?, &records::kyc_counters_key(customer))?.unwrap_or_default())
}

fn view(state: &Platform, c: &Customer, live: &LiveAccount) -> Result<CustomerView> {
    let currency = live.account.currency;
    let today = state.period()?.open;
    let usage = counters(state, c.id)?.on(today);
    Ok(CustomerView {
        id: customer_id_text(c.id),
        merchant_id: (c.owner != 0).then(|| merchant_id_text(c.owner)),
        name: c.name.clone(),
        phone: mask_phone(&c.phone),
        account_id: c.account.to_string(),
        balance: format_minor(live.account.balance, currency),
        currency: currency.code(),
        kyc_level: c.kyc_level,
        id_number: c.id_number_masked.clone(),
        phone_verified_at: c.phone_verified_at_ns.map(records::time_text),
        identity_verified_at: c.identity_verified_at_ns.map(records::time_text),
        limits: limits_view(&limits_of(state, c.kyc_level), currency),
        usage: UsageView {
            business_date: today.to_string(),
            day: format_minor(usage.day, currency),
            year: format_minor(usage.year, currency),
        },
        created_at: records::time_text(c.created_at_ns),
    })
}

async fn live_account(state: &Platform, c: &Customer) -> Result<LiveAccount> {
    state
        .ledger()?
        .account(c.account)
        .await?
        .ok_or_else(|| Error::storage("a customer's balance account is missing"))
}

fn owner_of(caller: &Caller) -> u128 {
    match caller {
        Caller::Admin => 0,
        Caller::Merchant(m) => m.id,
    }
}

/// Creates a customer for `caller` (a merchant owns it; the operator's have no owner) with a
/// new balance account, durably with its indexes, its audit entry and the idempotency record
/// of its answer. Returns the answer: the customer's view as JSON.
pub async fn create(
    state: &Platform,
    caller: &Caller,
    actor: &Actor,
    body: CreateCustomer,
    idem: Option<&Guard<'_>>,
) -> Result<Vec<u8>> {
    check_name(&body.name)?;
    check_phone(&body.phone, "phone")?;
    let currency = match &body.currency {
        Some(text) => parse_currency(text)?,
        None => state.settings.currency,
    };
    let id = new_id();
    let (sealed, masked) = match &body.id_number {
        Some(text) => {
            let number = parse_id_number(state, text)?;
            (
                Some(
                    state
                        .master
                        .seal(number.expose().as_bytes(), &sealing_context(id)),
                ),
                Some(number.masked()),
            )
        }
        None => (None, None),
    };
    let ledger = state.ledger()?;
    ensure_platform_accounts_once(state, currency).await?;
    let account = AccountId(new_id());
    let owner = owner_of(caller);
    let customer = Customer {
        id,
        owner,
        name: body.name,
        phone: body.phone,
        account,
        kyc_level: 0,
        id_number_sealed: sealed,
        id_number_masked: masked,
        phone_verified_at_ns: None,
        identity_verified_at_ns: None,
        identity_mismatches: 0,
        created_at_ns: now_ns(),
        extra: records::Tail(()),
    };
    // The answer is known before the account exists: rendered first, so the idempotency
    // record carrying it is written with the customer.
    let fresh = LiveAccount::new(engine::Account::new(account, currency, 0, Timestamp(0)));
    let answer =
        serde_json::to_vec(&view(state, &customer, &fresh)?).expect("a customer view serializes");
    let after: Option<serde_json::Value> = serde_json::from_slice(&answer).ok();
    let mut records = vec![
        (records::customer_key(id), records::encode(&customer)),
        (
            records::customer_by_account_key(account),
            records::encode(&id),
        ),
        (
            records::customer_by_owner_key(owner, id),
            records::encode(&()),
        ),
        (
            records::customer_by_phone_key(&phone_mac(state, &customer.phone), owner, id),
            records::encode(&()),
        ),
        (
            records::account_meta_key(account),
            records::encode(&AccountMeta {
                owner: Some(customer_id_text(id)),
            }),
        ),
        crate::audit::record(
            state,
            actor,
            "customer.create",
            &customer_id_text(id),
            None::<&()>,
            after.as_ref(),
        ),
    ];
    records.extend(idem.map(|g| g.record(&answer)));
    ledger
        .create_account_with(account, currency, 0, records)
        .await?
        .map_err(rejected)?;
    Ok(answer)
}

/// The keyed MAC of a phone number that indexes customers by phone (no number in a key).
pub fn phone_mac(state: &Platform, phone: &str) -> [u8; 16] {
    let mac = state
        .master
        .mac(&[b"customer-phone\0".as_slice(), phone.as_bytes()].concat());
    mac[..16].try_into().expect("16 bytes")
}

/// The customer with phone `phone` that a checkout of `merchant`'s may pay from: the
/// merchant's own customer, else one of the operator's (the oldest of each).
pub fn by_phone(state: &Platform, merchant: u128, phone: &str) -> Result<Option<Customer>> {
    let store = state.store()?;
    let mac = phone_mac(state, phone);
    for owner in [merchant, 0] {
        let prefix = records::customer_by_phone_prefix(&mac, owner);
        let mut found = None;
        store.for_each_aux_with_prefix_from(&prefix, &prefix, 1, |k, _| {
            if let Some(tail) = k.get(k.len() - 16..) {
                found = Some(u128::from_be_bytes(tail.try_into().expect("16 bytes")));
            }
            Ok(())
        })?;
        if let Some(id) = found {
            let c: Option<Customer> = records::read(store, &records::customer_key(id))?;
            if c.as_ref().is_some_and(|c| c.phone == phone) {
                return Ok(c);
            }
        }
    }
    Ok(None)
}

/// Customer `id` (no visibility check: the caller has proved who it is).
pub fn by_id(state: &Platform, id: u128) -> Result<Option<Customer>> {
    records::read(state.store()?, &records::customer_key(id))
}

/// Indexes by phone the customers created before the index existed (once: a migration
/// record marks it done). Returns how many it indexed.
pub async fn migrate_phone_index(state: &Platform) -> Result<usize> {
    const NAME: &str = "customer_phone_index";
    let store = state.store()?;
    if records::read::<u64>(store, &records::migration_key(NAME))?.is_some() {
        return Ok(0);
    }
    let mut recs = Vec::new();
    let prefix = records::prefix::CUSTOMER.to_vec();
    store.for_each_aux_with_prefix_from(&prefix, &prefix, usize::MAX, |k, v| {
        let c: Customer = records::decode(k, v)?;
        recs.push((
            records::customer_by_phone_key(&phone_mac(state, &c.phone), c.owner, c.id),
            records::encode(&()),
        ));
        Ok(())
    })?;
    let n = recs.len();
    recs.push((records::migration_key(NAME), records::encode(&now_ns())));
    let ledger = state.ledger()?;
    for chunk in recs.chunks(1024) {
        ledger.write_records(chunk.to_vec()).await?;
    }
    Ok(n)
}

/// Customer `id_text` as `caller` may see it (a merchant: its own only; others are not
/// found, like missing ones).
fn load(state: &Platform, caller: &Caller, id_text: &str) -> Result<Customer> {
    let not_found = || Error::not_found(format!("no customer {id_text:?}"));
    let id = records::parse_id(id_text, "cus_").ok_or_else(not_found)?;
    let c: Customer =
        records::read(state.store()?, &records::customer_key(id))?.ok_or_else(not_found)?;
    let visible = match caller {
        Caller::Admin => true,
        Caller::Merchant(m) => c.owner == m.id,
    };
    if !visible {
        return Err(not_found());
    }
    Ok(c)
}

/// The balance account of customer `id_text`, as `caller` may see it.
pub fn account_of(state: &Platform, caller: &Caller, id_text: &str) -> Result<AccountId> {
    Ok(load(state, caller, id_text)?.account)
}

pub async fn get(state: &Platform, caller: &Caller, id_text: &str) -> Result<CustomerView> {
    let c = load(state, caller, id_text)?;
    let live = live_account(state, &c).await?;
    view(state, &c, &live)
}

/// Customers, oldest first, after `starting_after`, at most `limit`: a merchant's own, or
/// (the operator) every one.
pub async fn list(
    state: &Platform,
    caller: &Caller,
    starting_after: Option<&str>,
    limit: usize,
) -> Result<CustomerList> {
    let store = state.store()?;
    let limit = limit.clamp(1, LIST_MAX);
    let after = match starting_after {
        Some(text) => Some(records::parse_id(text, "cus_").ok_or_else(|| {
            Error::invalid("invalid_parameter", "starting_after is not a customer id")
                .with_param("starting_after")
        })?),
        None => None,
    };
    let mut ids = Vec::new();
    let mut has_more = false;
    let (prefix, from) = match caller {
        Caller::Admin => {
            let prefix = records::prefix::CUSTOMER.to_vec();
            let from = after.map_or(prefix.clone(), |a| {
                let mut k = records::customer_key(a);
                k.push(0);
                k
            });
            (prefix, from)
        }
        Caller::Merchant(m) => {
            let prefix = records::customer_by_owner_prefix(m.id);
            let from = after.map_or(prefix.clone(), |a| {
                let mut k = records::customer_by_owner_key(m.id, a);
                k.push(0);
                k
            });
            (prefix, from)
        }
    };
    store.for_each_aux_with_prefix_from(&prefix, &from, limit + 1, |k, _| {
        if ids.len() == limit {
            has_more = true;
        } else if let Some(tail) = k.get(k.len() - 16..) {
            ids.push(u128::from_be_bytes(tail.try_into().expect("16 bytes")));
        }
        Ok(())
    })?;
    let mut data = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(c) = records::read::<Customer>(store, &records::customer_key(id))? {
            let live = live_account(state, &c).await?;
            data.push(view(state, &c, &live)?);
        }
    }
    Ok(CustomerList { data, has_more })
}

/// Waits for customer `id`'s turn: one KYC-limited change of a customer at a time, held
/// from reading the customer's counters (or record) until the change that depends on them is
/// durable.
pub async fn turn(state: &Platform, id: u128) -> Turn<'_> {
    take_turn(&state.customer_turns, id).await
}

/// A payment's KYC verdict.
pub enum Admission<'a> {
    /// The payer is not a customer (an operator's v1 account): no KYC limit applies.
    NotCustomer,
    /// Within the limits: write `record` (the counters with this payment counted) in the
    /// payment's durable unit, holding `turn` until it is written.
    Admitted {
        turn: Turn<'a>,
        record: (Vec<u8>, Vec<u8>),
    },
    /// Over a limit: the payment fails with `kyc_limit_exceeded` and moves nothing.
    Refused(LimitExceeded),
}

fn refused(limit: &'static str) {
    metrics::counter!(crate::metrics::KYC_REFUSALS, "limit" => limit).increment(1);
}

/// The customer whose balance account `account` is, if any.
pub fn of_account(state: &Platform, account: AccountId) -> Result<Option<Customer>> {
    let store = state.store()?;
    let Some(id) = records::read::<u128>(store, &records::customer_by_account_key(account))? else {
        return Ok(None);
    };
    records::read(store, &records::customer_key(id))
}

/// The id of the customer whose balance account `account` is, if any: one point read of
/// the index (the payment path's only read for the operator's own v1 accounts).
fn customer_of(state: &Platform, account: AccountId) -> Result<Option<u128>> {
    records::read::<u128>(state.store()?, &records::customer_by_account_key(account))
}

/// Customer `id`, read under its turn (a verification that raised its level is seen).
fn read_customer(state: &Platform, id: u128) -> Result<Customer> {
    records::read(state.store()?, &records::customer_key(id))?
        .ok_or_else(|| Error::storage("a customer vanished"))
}

/// Whether a payment of `amount` from `payer` fits its customer's KYC limits; see
/// [`Admission`].
pub async fn admit_payment(
    state: &Platform,
    payer: AccountId,
    amount: i64,
) -> Result<Admission<'_>> {
    let Some(id) = customer_of(state, payer)? else {
        return Ok(Admission::NotCustomer);
    };
    let turn = turn(state, id).await;
    let customer = read_customer(state, id)?;
    let today = state.period()?.open;
    let limits = limits_of(state, customer.kyc_level);
    match engine::kyc::admit(&limits, counters(state, customer.id)?, today, amount) {
        Ok(next) => Ok(Admission::Admitted {
            turn,
            record: (
                records::kyc_counters_key(customer.id),
                records::encode(&next),
            ),
        }),
        Err(limit) => {
            refused(match limit {
                LimitExceeded::PerPayment => "per_payment",
                LimitExceeded::PerDay => "per_day",
                LimitExceeded::PerYear => "per_year",
            });
            Ok(Admission::Refused(limit))
        }
    }
}

/// Whether a credit of `amount` to `account` keeps its customer within the balance cap of
/// its level: `Ok` with the turn to hold until the credit is durable (`None`: not a
/// customer's account), or `409 kyc_limit_exceeded`.
pub async fn admit_credit(
    state: &Platform,
    account: AccountId,
    amount: i64,
) -> Result<Option<Turn<'_>>> {
    let Some(id) = customer_of(state, account)? else {
        return Ok(None);
    };
    let turn = turn(state, id).await;
    let customer = read_customer(state, id)?;
    let live = live_account(state, &customer).await?;
    let limits = limits_of(state, customer.kyc_level);
    if !engine::kyc::within_cap(&limits, live.account.balance, amount) {
        refused("balance_cap");
        return Err(Error::conflict(
            "kyc_limit_exceeded",
            format!(
                "the customer's balance would exceed {} (the balance cap of KYC level {})",
                limits
                    .balance_cap
                    .map(|c| format_minor(c, live.account.currency))
                    .unwrap_or_default(),
                customer.kyc_level
            ),
        )
        .with_param("amount"));
    }
    Ok(Some(turn))
}

/// Writes `after` (a change of `before`) with its audit entry.
async fn save(
    state: &Platform,
    actor: &Actor,
    action: &str,
    before: &Customer,
    after: &Customer,
) -> Result<()> {
    let summary = |c: &Customer| {
        serde_json::json!({
            "kyc_level": c.kyc_level,
            "id_number": c.id_number_masked,
            "identity_mismatches": c.identity_mismatches,
        })
    };
    state
        .ledger()?
        .write_records(vec![
            (records::customer_key(after.id), records::encode(after)),
            crate::audit::record(
                state,
                actor,
                action,
                &customer_id_text(after.id),
                Some(&summary(before)),
                Some(&summary(after)),
            ),
        ])
        .await?;
    Ok(())
}

fn phone_already_verified() -> Error {
    Error::conflict(
        "phone_already_verified",
        "this customer's phone is already verified",
    )
}

/// Sends a one-time code to the customer's phone (the SMS platform's code flow, under the
/// customer's owner). Returns the code's record (`POST …/phone_verification/check` takes its
/// id and the digits).
pub async fn start_phone_verification(
    state: &Platform,
    caller: &Caller,
    id_text: &str,
) -> Result<OtpView> {
    let c = load(state, caller, id_text)?;
    if c.phone_verified_at_ns.is_some() {
        return Err(phone_already_verified());
    }
    let record = otp::create(
        state,
        c.owner,
        CreateOtp {
            phone: c.phone.clone(),
            purpose: Some(PHONE_PURPOSE.to_string()),
        },
    )
    .await?;
    Ok(otp::view(&record))
}

/// Checks the code the customer received; right: the phone is verified (KYC level 1 at
/// least), durably and audited. Wrong codes count against the code as in `POST /v1/otp/verify`.
pub async fn check_phone_code(
    state: &Platform,
    caller: &Caller,
    actor: &Actor,
    id_text: &str,
    body: CheckPhone,
) -> Result<CustomerView> {
    let c = load(state, caller, id_text)?;
    let _turn = turn(state, c.id).await;
    let before = load(state, caller, id_text)?;
    if before.phone_verified_at_ns.is_some() {
        return Err(phone_already_verified());
    }
    let code = otp::verify(
        state,
        before.owner,
        VerifyOtp {
            id: body.otp_id.clone(),
            code: body.code,
        },
    )
    .await?;
    if code.phone != before.phone || code.purpose != PHONE_PURPOSE {
        return Err(Error::invalid(
            "invalid_parameter",
            "this code was not sent for this customer's phone verification",
        )
        .with_param("otp_id"));
    }
    let mut after = before.clone();
    after.phone_verified_at_ns = Some(now_ns());
    after.kyc_level = after.kyc_level.max(1);
    save(state, actor, "customer.verify_phone", &before, &after).await?;
    let live = live_account(state, &after).await?;
    view(state, &after, &live)
}

/// Matches the customer's name and resident id number at the identity service (after the
/// local checks: length, characters, province, birth date, checksum). A match raises the
/// customer to KYC level 2 and keeps the number (sealed); "no match" is counted (at most
/// [`IDENTITY_MISMATCHES_MAX`]) and answered `422 identity_mismatch`; an unreachable service
/// changes nothing (`503 identity_service_unavailable`).
pub async fn verify_identity(
    state: &Platform,
    caller: &Caller,
    actor: &Actor,
    id_text: &str,
    body: VerifyIdentity,
) -> Result<CustomerView> {
    let c = load(state, caller, id_text)?;
    let given = body
        .id_number
        .as_ref()
        .map(|n| parse_id_number(state, n))
        .transpose()?;
    let _turn = turn(state, c.id).await;
    let before = load(state, caller, id_text)?;
    if before.kyc_level >= 2 {
        return Err(Error::conflict(
            "identity_already_verified",
            "this customer's identity is already verified",
        ));
    }
    if before.phone_verified_at_ns.is_none() {
        return Err(Error::conflict(
            "phone_not_verified",
            "verify the customer's phone first (POST /v1/customers/{id}/phone_verification)",
        ));
    }
    if before.identity_mismatches >= IDENTITY_MISMATCHES_MAX {
        return Err(Error::conflict(
            "identity_checks_exhausted",
            format!(
                "the identity service did not match this customer {IDENTITY_MISMATCHES_MAX} times; an operator must review it"
            ),
        ));
    }
    let context = sealing_context(before.id);
    let number = match given {
        Some(n) => n,
        None => {
            let sealed = before.id_number_sealed.as_ref().ok_or_else(|| {
                Error::invalid(
                    "parameter_missing",
                    "this customer has no id number yet: send id_number",
                )
                .with_param("id_number")
            })?;
            let plain = state
                .master
                .open(sealed, &context)
                .map_err(|e| Error::storage(format!("a sealed id number: {e}")))?;
            let text = Secret::new(
                String::from_utf8(plain)
                    .map_err(|_| Error::storage("a sealed id number is not text"))?,
            );
            parse_id_number(state, &text)?
        }
    };
    let outcome = identity::ask(
        state,
        &identity::Check {
            name: before.name.clone(),
            id_number: number.expose().to_string(),
            reference: customer_id_text(before.id),
        },
    )
    .await?;
    let mut after = before.clone();
    after.id_number_sealed = Some(state.master.seal(number.expose().as_bytes(), &context));
    after.id_number_masked = Some(number.masked());
    if outcome == identity::Outcome::Match {
        after.kyc_level = 2;
        after.identity_verified_at_ns = Some(now_ns());
        save(state, actor, "customer.verify_identity", &before, &after).await?;
        let live = live_account(state, &after).await?;
        return view(state, &after, &live);
    }
    after.identity_mismatches += 1;
    save(state, actor, "customer.identity_mismatch", &before, &after).await?;
    let left = IDENTITY_MISMATCHES_MAX.saturating_sub(after.identity_mismatches);
    Err(Error::Unprocessable {
        code: "identity_mismatch",
        message: match outcome {
            identity::Outcome::NoRecord => {
                format!("the identity service has no record of this id number; {left} checks left")
            }
            _ => format!(
                "the identity service does not match this name with this id number; {left} checks left"
            ),
        },
    })
}

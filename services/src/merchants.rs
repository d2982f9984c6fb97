//! Merchants: who is paid, their credentials (secret keys, signing secrets: rotated with
//! an overlap) and settings, and authentication by secret key.

use std::sync::atomic::Ordering;

use engine::gl::GlAccount;
use engine::money::{format_fee_rate, parse_fee_rate};
use engine::{AccountId, Reject};
use serde::{Deserialize, Serialize};

use crate::audit::Actor;
use crate::idempotency::Guard;
use crate::platform::{new_id, now_ns, Platform};
use crate::records::{self, time_text, Merchant};
use crate::secret::Secret;
use crate::{Error, Result};

/// SHA-256 of a secret key: what is stored and looked up, never the key itself. A key is
/// 256 random bits, so a fast hash is enough (argon2 is for low-entropy passwords).
pub fn key_sha256(key: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes()).into()
}

/// How far below zero a merchant's pending account may go: the largest amount (refunds are
/// bounded by the payments they return; what the merchant cannot cover is carried by
/// settlement and offset from its later income).
pub const PENDING_OVERDRAFT: i64 = engine::AMOUNT_MINOR_MAX;

/// Merchants remembered by key hash, so that a request costs no store read to
/// authenticate. A change to a merchant record bumps `Platform::merchant_generation` and
/// clears the map (see [`changed`]); the map is bounded (cleared when full:
/// merchants are few and a miss costs two point reads).
pub const MERCHANT_CACHE_MAX: usize = 65_536;

/// The merchant whose secret key `token` is, if that key works now (not rotated out or
/// revoked).
pub fn by_key(state: &Platform, token: &str) -> Result<Option<records::Merchant>> {
    if !token.starts_with("sk_") {
        return Ok(None);
    }
    let hash = key_sha256(token);
    let now = now_ns();
    if let Some(m) = state.merchant_cache.get(&hash) {
        return Ok(m
            .auth
            .0
            .key_works(&m.key_sha256, &hash, now)
            .then(|| m.clone()));
    }
    let generation = state.merchant_generation.load(Ordering::SeqCst);
    let store = state.store()?;
    let Some(id) = records::read::<u128>(store, &records::merchant_key_index(&hash))? else {
        return Ok(None);
    };
    let Some(m) = records::read::<records::Merchant>(store, &records::merchant_key(id))? else {
        return Ok(None);
    };
    if state.merchant_cache.len() >= MERCHANT_CACHE_MAX {
        state.merchant_cache.clear();
    }
    state.merchant_cache.insert(hash, m.clone());
    if state.merchant_generation.load(Ordering::SeqCst) != generation {
        // A merchant changed while this one was read: what was read may be the old record.
        state.merchant_cache.remove(&hash);
    }
    Ok(m.auth.0.key_works(&m.key_sha256, &hash, now).then_some(m))
}

/// The review a merchant is created with: `None` without `review`; with it, the business's
/// name, licence number and legal representative, all required.
fn review_of(
    review: bool,
    business_name: Option<&str>,
    licence_number: Option<&str>,
    legal_representative: Option<&str>,
) -> Result<Option<records::Onboarding>> {
    if !review {
        for (v, param) in [
            (business_name, "business_name"),
            (licence_number, "licence_number"),
            (legal_representative, "legal_representative"),
        ] {
            if v.is_some() {
                return Err(Error::invalid(
                    "invalid_parameter",
                    format!("{param} goes with \"review\": true"),
                )
                .with_param(param));
            }
        }
        return Ok(None);
    }
    let text = |v: Option<&str>, param: &'static str| -> Result<String> {
        let v = v.ok_or_else(|| {
            Error::invalid(
                "parameter_missing",
                format!("a merchant onboarded through review needs {param}"),
            )
            .with_param(param)
        })?;
        crate::pan::refuse(v, param)?;
        if v.trim().is_empty() || v.chars().count() > 128 || v.chars().any(char::is_control) {
            return Err(Error::invalid(
                "invalid_parameter",
                format!("{param} must be 1 to 128 characters, not blank"),
            )
            .with_param(param));
        }
        Ok(v.to_string())
    };
    let licence = text(licence_number, "licence_number")?;
    if licence.len() != 18
        || !licence
            .bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"IOSVZ".contains(&b)))
    {
        return Err(Error::invalid(
            "invalid_parameter",
            "licence_number must be a unified social credit code: 18 characters of 0-9 and A-Z without I, O, S, V, Z",
        )
        .with_param("licence_number"));
    }
    Ok(Some(records::Onboarding {
        status: records::OnboardingStatus::PendingReview,
        business_name: text(business_name, "business_name")?,
        licence_number: licence,
        legal_representative: text(legal_representative, "legal_representative")?,
        decided_by: None,
        decided_at_ns: None,
        reason: None,
    }))
}

/// `POST /v1/merchants/{id}/reject`'s body.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RejectMerchant {
    /// Why, shown on the merchant: 1 to 500 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 500))]
    pub reason: String,
}

/// An operator's decision on a merchant `pending_review`: activate it (`reason` None) or
/// reject it, audited (`merchant.activate` / `merchant.reject`) in the same durable write.
pub async fn decide(
    state: &Platform,
    actor: &Actor,
    id_text: &str,
    reject: Option<&str>,
) -> Result<MerchantView> {
    if let Some(reason) = reject {
        if reason.trim().is_empty()
            || reason.chars().count() > 500
            || reason.chars().any(char::is_control)
        {
            return Err(Error::invalid(
                "invalid_parameter",
                "reason must be 1 to 500 characters, not blank",
            )
            .with_param("reason"));
        }
    }
    let _serial = state.merchant_admin.lock().await;
    let mut m = load(state, id_text)?;
    let before = view(&m, now_ns());
    let Some(o) = m
        .onboarding
        .0
        .as_mut()
        .filter(|o| o.status == records::OnboardingStatus::PendingReview)
    else {
        return Err(Error::conflict(
            "merchant_not_pending_review",
            format!(
                "merchant {id_text} is {}, not pending review",
                status_name(&m)
            ),
        ));
    };
    o.status = if reject.is_some() {
        records::OnboardingStatus::Rejected
    } else {
        records::OnboardingStatus::Active
    };
    o.decided_by = Some(actor.name.clone());
    o.decided_at_ns = Some(now_ns());
    o.reason = reject.map(|r| r.trim().to_string());
    let action = if reject.is_some() {
        "merchant.reject"
    } else {
        "merchant.activate"
    };
    save_audited(state, actor, action, &m, &before).await
}

/// Writes merchant `m` as changed by `actor`, with its audit entry (`action`, `before` and
/// the view after) in the same durable write; answers the view after.
async fn save_audited(
    state: &Platform,
    actor: &Actor,
    action: &str,
    m: &Merchant,
    before: &MerchantView,
) -> Result<MerchantView> {
    save_audited_with(state, actor, action, m, before, Vec::new()).await
}

/// [`save_audited`], with `more` records in the same durable unit.
async fn save_audited_with(
    state: &Platform,
    actor: &Actor,
    action: &str,
    m: &Merchant,
    before: &MerchantView,
    more: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<MerchantView> {
    let after = view(m, now_ns());
    let audit = crate::audit::record(
        state,
        actor,
        action,
        &merchant_id_text(m.id),
        Some(before),
        Some(&after),
    );
    state
        .ledger()?
        .write_records(
            [(records::merchant_key(m.id), records::encode(m)), audit]
                .into_iter()
                .chain(more)
                .collect(),
        )
        .await?;
    changed(state);
    Ok(after)
}

/// The payment methods named in `names` as [`records::methods`] bits: at least one, each
/// known, none twice.
fn parse_methods(names: &[String]) -> Result<u8> {
    let invalid =
        |msg: String| Error::invalid("invalid_parameter", msg).with_param("payment_methods");
    if names.is_empty() {
        return Err(invalid("payment_methods needs at least one method".into()));
    }
    let mut bits = 0u8;
    for name in names {
        let bit = records::methods::NAMES
            .iter()
            .find(|(_, n)| n == name)
            .map(|(b, _)| *b)
            .ok_or_else(|| {
                invalid(format!(
                    "payment method {name:?} is not one of balance, bank_card, credit"
                ))
            })?;
        if bits & bit != 0 {
            return Err(invalid(format!("payment method {name:?} is listed twice")));
        }
        bits |= bit;
    }
    Ok(bits)
}

/// The names of the methods in `bits`, in a fixed order.
pub fn method_names(bits: u8) -> Vec<&'static str> {
    records::methods::NAMES
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// The agreement's terms of `m` as they stand, as version `version` made by `by` at `at`.
fn agreement_version(m: &Merchant, version: u32, at: u64, by: &str) -> records::AgreementVersion {
    records::AgreementVersion {
        version,
        fee_rate_ppm: m.fee_rate_ppm,
        fee_parts: m.fee_parts.0,
        settlement_cycle_days: m.settlement.0.cycle_days,
        methods: m.agreement.0.methods(),
        effective_at_ns: at,
        by: by.to_string(),
        extra: records::Tail(()),
    }
}

fn agreement_record(v: &records::AgreementVersion, merchant: u128) -> (Vec<u8>, Vec<u8>) {
    (
        records::agreement_key(merchant, v.version),
        records::encode(v),
    )
}

/// One version of a merchant's agreement.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgreementView {
    version: u32,
    fee_rate: String,
    fee_fixed: String,
    fee_min: Option<String>,
    fee_max: Option<String>,
    settlement_cycle_days: u16,
    /// balance, bank_card, credit.
    payment_methods: Vec<&'static str>,
    effective_at: String,
    /// Who made it (`operator:…`, `admin:…`; `"before agreements"` for the terms a
    /// merchant had when versions began).
    created_by: String,
    /// Whether it is the one in force.
    current: bool,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgreementList {
    /// Oldest first.
    data: Vec<AgreementView>,
}

fn agreement_view(v: &records::AgreementVersion, currency: u16, current: u32) -> AgreementView {
    AgreementView {
        version: v.version,
        fee_rate: format_fee_rate(v.fee_rate_ppm),
        fee_fixed: fee_text(v.fee_parts.fixed, currency),
        fee_min: v.fee_parts.min.map(|x| fee_text(x, currency)),
        fee_max: v.fee_parts.max.map(|x| fee_text(x, currency)),
        settlement_cycle_days: v.settlement_cycle_days,
        payment_methods: method_names(v.methods),
        effective_at: time_text(v.effective_at_ns),
        created_by: v.by.clone(),
        current: v.version == current,
    }
}

/// Every version of merchant `id_text`'s agreement, oldest first. A merchant from before
/// agreements shows its terms as they stand as version 1.
pub fn agreements(state: &Platform, id_text: &str) -> Result<AgreementList> {
    let m = load(state, id_text)?;
    let current = m.agreement.0.version();
    let mut data = Vec::new();
    state.store()?.for_each_aux_with_prefix(
        &records::agreement_prefix(m.id),
        usize::MAX,
        |k, v| {
            let v: records::AgreementVersion = records::decode(k, v)?;
            data.push(agreement_view(&v, m.currency, current));
            Ok(())
        },
    )?;
    if data.is_empty() {
        let v = agreement_version(&m, 1, m.created_at_ns, BEFORE_AGREEMENTS);
        data.push(agreement_view(&v, m.currency, current));
    }
    Ok(AgreementList { data })
}

/// Who the first version of a merchant from before agreements is said to be made by.
const BEFORE_AGREEMENTS: &str = "before agreements";

/// After a merchant record was written: no request may go on using the old one.
pub fn changed(state: &Platform) {
    state.merchant_generation.fetch_add(1, Ordering::SeqCst);
    state.merchant_cache.clear();
}

/// The context a signing secret is sealed under: it opens only in its own merchant's
/// record, at its own number.
pub fn signing_context(merchant: u128, number: u32) -> Vec<u8> {
    [
        b"signing".as_slice(),
        &merchant.to_be_bytes(),
        &number.to_be_bytes(),
    ]
    .concat()
}

/// The merchant's signing secrets that work at `now`, opened.
pub fn signing_secrets(
    state: &Platform,
    merchant: &records::Merchant,
    now: u64,
) -> Result<Vec<Secret<Vec<u8>>>> {
    let mut secrets = Vec::new();
    for s in &merchant.auth.0.signing {
        if s.expires_at_ns.is_some_and(|at| at <= now) {
            continue;
        }
        let secret = state
            .master
            .open(&s.sealed, &signing_context(merchant.id, s.number))
            .map_err(|_| Error::storage("a signing secret does not open with master_key"))?;
        secrets.push(Secret::new(secret));
    }
    Ok(secrets)
}

/// Signs up a merchant.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateMerchant {
    #[cfg_attr(feature = "openapi", schema(pattern = r"\S", max_length = 256))]
    pub name: String,
    /// Between 0 and 1, at most 6 decimal places (default: the platform's).
    #[cfg_attr(
        feature = "openapi",
        schema(example = "0.006", pattern = r"^(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$")
    )]
    pub fee_rate: Option<String>,
    /// Fixed part of the fee per payment, a decimal amount in the merchant's currency
    /// (default 0).
    #[cfg_attr(feature = "openapi", schema(example = "0.30"))]
    pub fee_fixed: Option<String>,
    /// Least fee of a payment (never more than the payment itself).
    #[cfg_attr(feature = "openapi", schema(example = "0.10"))]
    pub fee_min: Option<String>,
    /// Most fee of a payment.
    #[cfg_attr(feature = "openapi", schema(example = "50.00"))]
    pub fee_max: Option<String>,
    /// (extension) Business category for the risk rules: 1–32 of `a-z 0-9 _` (default
    /// "general").
    #[cfg_attr(
        feature = "openapi",
        schema(example = "gaming", pattern = r"^[a-z0-9_]{1,32}$")
    )]
    pub category: Option<String>,
    /// T+N: business days from a payment's date to the day-end that makes it available
    /// (0 to 30, default 1).
    #[serde(default, deserialize_with = "crate::json_int::opt_int")]
    #[cfg_attr(feature = "openapi", schema(maximum = 30, example = 1))]
    pub settlement_cycle_days: Option<u16>,
    /// A settlement batch pays out only from this amount on (default 0).
    #[cfg_attr(feature = "openapi", schema(example = "100.00"))]
    pub min_payout: Option<String>,
    /// Where payouts go; without one, matured money stays available.
    pub payout_account: Option<PayoutAccountIn>,
    /// Onboard through review (issue #18): the merchant is `pending_review` and takes no
    /// payment until an operator activates it. Needs `business_name`, `licence_number` and
    /// `legal_representative`.
    #[serde(default)]
    pub review: bool,
    /// The business's registered name (review only).
    pub business_name: Option<String>,
    /// Its business licence's unified social credit code: 18 characters of 0-9 and A-Z
    /// without I, O, S, V, Z (review only).
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[0-9A-HJ-NPQRTUWXY]{18}$"))]
    pub licence_number: Option<String>,
    /// Its legal representative (review only).
    pub legal_representative: Option<String>,
    /// The payment methods its agreement enables: `balance`, `bank_card`, `credit`
    /// (default: balance and bank_card).
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 3, example = json!(["balance", "bank_card"])))]
    pub payment_methods: Option<Vec<String>>,
}

/// A merchant's bank account for settlement payouts.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PayoutAccountIn {
    #[cfg_attr(feature = "openapi", schema(example = "ICBC", max_length = 64))]
    pub bank: String,
    /// 6 to 34 letters and digits (shown masked after this).
    #[cfg_attr(
        feature = "openapi",
        schema(example = "6222020200112233445", pattern = r"^[0-9A-Za-z]{6,34}$")
    )]
    pub account_number: String,
    #[cfg_attr(
        feature = "openapi",
        schema(example = "杭州某某科技有限公司", max_length = 128)
    )]
    pub name: String,
}

/// A payout account as shown: the number masked.
#[derive(Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayoutAccountView {
    pub bank: String,
    #[cfg_attr(feature = "openapi", schema(example = "****3445"))]
    pub account_number: String,
    pub name: String,
}

fn payout_view(p: &Option<records::PayoutAccount>) -> Option<PayoutAccountView> {
    p.as_ref().map(|p| PayoutAccountView {
        bank: p.bank.clone(),
        account_number: format!("****{}", p.last4),
        name: p.name.clone(),
    })
}

/// The context a payout account number is sealed under.
pub fn payout_context(merchant: u128) -> Vec<u8> {
    [b"payout_account".as_slice(), &merchant.to_be_bytes()].concat()
}

/// Settlement terms as sent, checked, over `terms`.
fn settlement_terms(
    state: &Platform,
    merchant: u128,
    cycle: Option<u16>,
    min_payout: Option<&str>,
    payout: Option<PayoutAccountIn>,
    currency: engine::Currency,
    mut terms: records::SettlementTerms,
) -> Result<records::SettlementTerms> {
    if let Some(c) = cycle {
        if c > engine::settlement::CYCLE_DAYS_MAX {
            return Err(Error::invalid(
                "invalid_parameter",
                format!(
                    "settlement_cycle_days must be 0 to {}, got {c}",
                    engine::settlement::CYCLE_DAYS_MAX
                ),
            )
            .with_param("settlement_cycle_days"));
        }
        terms.cycle_days = c;
    }
    if let Some(t) = min_payout {
        terms.min_payout = engine::money::parse_amount(t, currency).map_err(|e| {
            Error::invalid("invalid_parameter", e.to_string()).with_param("min_payout")
        })?;
    }
    if let Some(p) = payout {
        let bad = |param: &str, msg: &str| {
            Error::invalid("invalid_parameter", msg.to_string())
                .with_param(format!("payout_account.{param}"))
        };
        for (value, param, max) in [(&p.bank, "bank", 64), (&p.name, "name", 128)] {
            if value.trim().is_empty()
                || value.chars().count() > max
                || value.chars().any(char::is_control)
            {
                return Err(bad(
                    param,
                    &format!("{param} must be 1 to {max} characters, not blank"),
                ));
            }
        }
        let n = &p.account_number;
        if !(6..=34).contains(&n.len()) || !n.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad(
                "account_number",
                "account_number must be 6 to 34 letters and digits",
            ));
        }
        terms.payout_account = Some(records::PayoutAccount {
            bank: p.bank.clone(),
            name: p.name.clone(),
            number_sealed: state.master.seal(n.as_bytes(), &payout_context(merchant)),
            last4: n[n.len() - 4..].to_string(),
        });
    }
    Ok(terms)
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MerchantCreated {
    pub id: String,
    pub name: String,
    pub fee_rate: String,
    pub fee_fixed: String,
    pub fee_min: Option<String>,
    pub fee_max: Option<String>,
    /// Shown in this response only; stored as a SHA-256 (null in an idempotent replay).
    pub secret_key: Option<String>,
    /// The account its payments land in (pending settlement) and refunds are taken from.
    pub account_id: String,
    /// (extension) Its available balance: matured money, paid out by settlement batches.
    pub available_account_id: String,
    pub category: String,
    pub settlement_cycle_days: u16,
    pub min_payout: String,
    pub payout_account: Option<PayoutAccountView>,
    /// `active`, or `pending_review` (onboarded through review: no payments yet).
    pub status: &'static str,
    pub onboarding: Option<OnboardingView>,
    pub agreement: AgreementInForce,
}

/// The agreement in force: its version (recorded on each payment) and the payment methods
/// it enables. Its history: `GET /v1/merchants/{id}/agreements`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgreementInForce {
    pub version: u32,
    /// balance, bank_card, credit.
    pub payment_methods: Vec<&'static str>,
}

/// A merchant's review: the business as declared and the decision.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OnboardingView {
    business_name: String,
    licence_number: String,
    legal_representative: String,
    decided_by: Option<String>,
    decided_at: Option<String>,
    /// A rejection's reason.
    reason: Option<String>,
}

fn onboarding_view(o: &Option<records::Onboarding>) -> Option<OnboardingView> {
    o.as_ref().map(|o| OnboardingView {
        business_name: o.business_name.clone(),
        licence_number: o.licence_number.clone(),
        legal_representative: o.legal_representative.clone(),
        decided_by: o.decided_by.clone(),
        decided_at: o.decided_at_ns.map(time_text),
        reason: o.reason.clone(),
    })
}

/// `active`, `pending_review` or `rejected`.
pub fn status_name(m: &Merchant) -> &'static str {
    match m.onboarding.0.as_ref().map(|o| o.status) {
        None | Some(records::OnboardingStatus::Active) => "active",
        Some(records::OnboardingStatus::PendingReview) => "pending_review",
        Some(records::OnboardingStatus::Rejected) => "rejected",
    }
}

/// A credential's dates (never the credential).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialView {
    /// Signing secrets: 1, 2, … (secret keys: null).
    number: Option<u32>,
    created_at: String,
    /// When it stops (stopped) working; null: until replaced.
    expires_at: Option<String>,
    active: bool,
}

/// A merchant as the operator sees it (no secrets).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MerchantView {
    id: String,
    name: String,
    fee_rate: String,
    fee_fixed: String,
    fee_min: Option<String>,
    fee_max: Option<String>,
    /// The account its payments land in (pending settlement) and refunds are taken from.
    account_id: String,
    /// (extension) Its available balance: matured money, paid out by settlement batches.
    available_account_id: String,
    category: String,
    settlement_cycle_days: u16,
    min_payout: String,
    payout_account: Option<PayoutAccountView>,
    /// `active`, `pending_review` or `rejected`: only an active merchant takes payments.
    status: &'static str,
    onboarding: Option<OnboardingView>,
    agreement: AgreementInForce,
    /// Pending, available and paid out (`GET /v1/merchants/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    balances: Option<crate::settlement::Balances>,
    require_signature: bool,
    secret_keys: Vec<CredentialView>,
    signing_secrets: Vec<CredentialView>,
    created_at: String,
}

fn fee_text(minor: i64, currency: u16) -> String {
    match engine::Currency::from_numeric(currency) {
        Some(c) => engine::money::format_minor(minor, c),
        None => minor.to_string(),
    }
}

/// The fee's parts as sent (decimal amounts in `currency`), checked: each ≥ 0 at the
/// currency's scale, and the minimum not above the maximum.
fn fee_parts(
    fixed: Option<&str>,
    min: Option<&str>,
    max: Option<&str>,
    currency: engine::Currency,
    mut parts: records::FeeParts,
) -> Result<records::FeeParts> {
    let parse = |text: &str, param: &str| -> Result<i64> {
        engine::money::parse_amount(text, currency)
            .map_err(|e| Error::invalid("invalid_parameter", e.to_string()).with_param(param))
    };
    if let Some(t) = fixed {
        parts.fixed = parse(t, "fee_fixed")?;
    }
    if let Some(t) = min {
        parts.min = Some(parse(t, "fee_min")?);
    }
    if let Some(t) = max {
        parts.max = Some(parse(t, "fee_max")?);
    }
    if let (Some(lo), Some(hi)) = (parts.min, parts.max) {
        if lo > hi {
            return Err(Error::invalid(
                "invalid_parameter",
                "fee_min must not be more than fee_max",
            )
            .with_param("fee_min"));
        }
    }
    Ok(parts)
}

pub fn view(m: &Merchant, now: u64) -> MerchantView {
    let auth = &m.auth.0;
    let secret_keys = if auth.keys.is_empty() {
        vec![CredentialView {
            number: None,
            created_at: time_text(m.created_at_ns),
            expires_at: None,
            active: true,
        }]
    } else {
        auth.keys
            .iter()
            .map(|k| CredentialView {
                number: None,
                created_at: time_text(k.created_at_ns),
                expires_at: k.expires_at_ns.map(time_text),
                active: k.expires_at_ns.is_none_or(|at| at > now),
            })
            .collect()
    };
    MerchantView {
        id: merchant_id_text(m.id),
        name: m.name.clone(),
        fee_rate: format_fee_rate(m.fee_rate_ppm),
        fee_fixed: fee_text(m.fee_parts.0.fixed, m.currency),
        fee_min: m.fee_parts.0.min.map(|v| fee_text(v, m.currency)),
        fee_max: m.fee_parts.0.max.map(|v| fee_text(v, m.currency)),
        account_id: m.pending().to_string(),
        available_account_id: m.account.to_string(),
        category: m.category.0.clone().unwrap_or_else(|| "general".into()),
        settlement_cycle_days: m.settlement.0.cycle_days,
        min_payout: fee_text(m.settlement.0.min_payout, m.currency),
        payout_account: payout_view(&m.settlement.0.payout_account),
        status: status_name(m),
        onboarding: onboarding_view(&m.onboarding.0),
        agreement: AgreementInForce {
            version: m.agreement.0.version(),
            payment_methods: method_names(m.agreement.0.methods()),
        },
        balances: None,
        require_signature: auth.require_signature,
        secret_keys,
        signing_secrets: auth
            .signing
            .iter()
            .map(|s| CredentialView {
                number: Some(s.number),
                created_at: time_text(s.created_at_ns),
                expires_at: s.expires_at_ns.map(time_text),
                active: s.expires_at_ns.is_none_or(|at| at > now),
            })
            .collect(),
        created_at: time_text(m.created_at_ns),
    }
}

/// Every merchant, in id order (the day-end's settlement steps, the start's migration).
pub fn all(store: &storage::Store) -> Result<Vec<Merchant>> {
    let mut out = Vec::new();
    store.for_each_aux_with_prefix(records::prefix::MERCHANT, usize::MAX, |k, v| {
        out.push(records::decode::<Merchant>(k, v)?);
        Ok(())
    })?;
    Ok(out)
}

pub fn load(state: &Platform, id_text: &str) -> Result<Merchant> {
    let not_found = || Error::not_found(format!("no merchant {id_text:?}"));
    let id = parse_merchant_id(id_text).ok_or_else(not_found)?;
    records::read::<Merchant>(state.store()?, &records::merchant_key(id))?.ok_or_else(not_found)
}

/// Changes a merchant's settings.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateMerchant {
    /// Every request with this merchant's keys must carry a valid `Rongpay-Signature`.
    pub require_signature: Option<bool>,
    /// New fee terms, for payments from now on (each payment keeps the fee it was charged).
    #[cfg_attr(feature = "openapi", schema(example = "0.006"))]
    pub fee_rate: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "0.30"))]
    pub fee_fixed: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "0.10"))]
    pub fee_min: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "50.00"))]
    pub fee_max: Option<String>,
    /// Settlement terms, from the next day-end on.
    #[serde(default, deserialize_with = "crate::json_int::opt_int")]
    #[cfg_attr(feature = "openapi", schema(maximum = 30, example = 1))]
    pub settlement_cycle_days: Option<u16>,
    #[cfg_attr(feature = "openapi", schema(example = "100.00"))]
    pub min_payout: Option<String>,
    pub payout_account: Option<PayoutAccountIn>,
    /// The payment methods the agreement enables (a change makes a new version).
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 3, example = json!(["balance", "bank_card", "credit"])))]
    pub payment_methods: Option<Vec<String>>,
}

/// Longest overlap during which a replaced credential keeps working: 30 days.
pub const OVERLAP_S_MAX: u64 = 30 * 24 * 3600;

/// Replaces a credential.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// How long the credentials in use keep working beside the new one, in seconds
    /// (default 86400; 0 revokes them now; at most 2592000).
    #[serde(default, deserialize_with = "crate::json_int::opt_int")]
    #[cfg_attr(feature = "openapi", schema(maximum = 2_592_000))]
    pub overlap_seconds: Option<u64>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rotated {
    /// The new secret key (`sk_…`) or signing secret (`ss_…`): shown in this response
    /// only (null in an idempotent replay).
    pub secret: Option<String>,
    /// Signing secrets: its number.
    pub number: Option<u32>,
    pub merchant: MerchantView,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    SecretKey,
    SigningSecret,
}

/// Signs up a merchant (operator `actor`): its record, its key index, its balance account,
/// the audit entry and the idempotency record of its answer (which replays without the
/// secret key), in one durable unit. Returns the answer, with the secret key (shown once).
pub async fn create(
    state: &Platform,
    actor: &Actor,
    body: CreateMerchant,
    idem: Option<&Guard<'_>>,
) -> Result<MerchantCreated> {
    crate::pan::refuse(&body.name, "name")?;
    if let Some(c) = &body.category {
        crate::pan::refuse(c, "category")?;
    }
    if body.name.trim().is_empty()
        || body.name.chars().count() > crate::accounts::TEXT_FIELD_LEN_MAX
    {
        return Err(Error::invalid(
            "invalid_parameter",
            "name must be 1 to 256 characters and not blank",
        )
        .with_param("name"));
    }
    let fee_rate_text = body
        .fee_rate
        .unwrap_or_else(|| state.settings.default_fee_rate.clone());
    let fee_rate_ppm = parse_fee_rate(&fee_rate_text)
        .map_err(|e| Error::invalid("invalid_parameter", e.to_string()).with_param("fee_rate"))?;
    let category = body.category.unwrap_or_else(|| "general".to_string());
    crate::accounts::check_word(&category, "category")?;
    let methods = match &body.payment_methods {
        Some(names) => parse_methods(names)?,
        None => records::methods::DEFAULT,
    };
    let onboarding = review_of(
        body.review,
        body.business_name.as_deref(),
        body.licence_number.as_deref(),
        body.legal_representative.as_deref(),
    )?;
    let ledger = state.ledger()?;
    let currency = state.settings.currency;
    let parts = fee_parts(
        body.fee_fixed.as_deref(),
        body.fee_min.as_deref(),
        body.fee_max.as_deref(),
        currency,
        records::FeeParts::default(),
    )?;
    let id = new_id();
    let terms = settlement_terms(
        state,
        id,
        body.settlement_cycle_days,
        body.min_payout.as_deref(),
        body.payout_account,
        currency,
        records::SettlementTerms::default(),
    )?;
    let secret_key = format!(
        "sk_{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    let key_sha256 = key_sha256(&secret_key);
    let account = AccountId(new_id());
    // Its pending-settlement account first: a crash before the merchant exists leaves an
    // empty account nothing refers to, never a merchant without one. It may go below zero:
    // a refund is never refused for the merchant's balance (settlement nets it).
    let pending = AccountId(new_id());
    match ledger
        .create_account_in(
            pending,
            currency,
            GlAccount::MerchantPending,
            PENDING_OVERDRAFT,
            Vec::new(),
        )
        .await?
    {
        Ok(_) => {}
        Err(Reject::AccountExists(_)) => return Err(Error::storage("id collision; retry")),
        Err(other) => return Err(Error::invalid(other.code(), other.to_string())),
    }
    let mut created = MerchantCreated {
        id: merchant_id_text(id),
        name: body.name.clone(),
        fee_rate: format_fee_rate(fee_rate_ppm),
        fee_fixed: fee_text(parts.fixed, currency.numeric()),
        fee_min: parts.min.map(|v| fee_text(v, currency.numeric())),
        fee_max: parts.max.map(|v| fee_text(v, currency.numeric())),
        secret_key: None,
        account_id: pending.to_string(),
        available_account_id: account.to_string(),
        category: category.clone(),
        settlement_cycle_days: terms.cycle_days,
        min_payout: fee_text(terms.min_payout, currency.numeric()),
        payout_account: payout_view(&terms.payout_account),
        status: if onboarding.is_some() {
            "pending_review"
        } else {
            "active"
        },
        onboarding: onboarding_view(&onboarding),
        agreement: AgreementInForce {
            version: 1,
            payment_methods: method_names(methods),
        },
    };
    // The secret is stored only as a hash, so the idempotency record replays the answer
    // without it (`"secret_key": null`).
    let replay = serde_json::to_vec(&created).expect("a merchant view serializes");
    created.secret_key = Some(secret_key);
    let merchant = Merchant {
        id,
        name: body.name,
        fee_rate_ppm,
        key_sha256,
        account,
        currency: currency.numeric(),
        created_at_ns: now_ns(),
        category: records::Tail(Some(category)),
        auth: records::Tail(Default::default()),
        pending_account: records::Tail(Some(pending)),
        fee_parts: records::Tail(parts),
        settlement: records::Tail(terms),
        onboarding: records::Tail(onboarding),
        agreement: records::Tail(records::Agreement {
            version: 1,
            methods,
            effective_at_ns: now_ns(),
        }),
    };
    let first = agreement_version(
        &merchant,
        1,
        merchant.agreement.0.effective_at_ns,
        &actor.name,
    );
    let after: Option<serde_json::Value> = serde_json::from_slice(&replay).ok();
    let mut records = vec![
        (records::merchant_key(id), records::encode(&merchant)),
        by_account_record(&merchant),
        (
            records::merchant_key_index(&key_sha256),
            records::encode(&id),
        ),
        agreement_record(&first, id),
        crate::audit::record(
            state,
            actor,
            "merchant.create",
            &merchant_id_text(id),
            None::<&()>,
            after.as_ref(),
        ),
    ];
    records.extend(idem.map(|g| g.record(&replay)));
    match ledger
        .create_account_in(account, currency, GlAccount::MerchantAvailable, 0, records)
        .await?
    {
        Ok(_) => {}
        Err(Reject::AccountExists(_)) => return Err(Error::storage("id collision; retry")),
        Err(other) => return Err(Error::invalid(other.code(), other.to_string())),
    }
    Ok(created)
}

/// The index record that finds merchant `m` by its pending-settlement account (a split's
/// receiver).
pub fn by_account_record(m: &Merchant) -> (Vec<u8>, Vec<u8>) {
    (
        records::merchant_by_account_key(m.pending()),
        records::encode(&m.id),
    )
}

/// The merchant whose pending-settlement account is `account`, if any.
pub fn by_account(store: &storage::Store, account: AccountId) -> Result<Option<Merchant>> {
    match records::read::<u128>(store, &records::merchant_by_account_key(account))? {
        Some(id) => records::read(store, &records::merchant_key(id)),
        None => Ok(None),
    }
}

/// Merchant `id_text` with its settings, its credentials' dates and its balances.
pub async fn get(state: &Platform, id_text: &str) -> Result<MerchantView> {
    let m = load(state, id_text)?;
    let mut v = view(&m, now_ns());
    v.balances = Some(crate::settlement::balances(state, &m).await?);
    Ok(v)
}

/// Changes merchant `id_text`'s settings (whether its requests must be signed).
pub async fn update(
    state: &Platform,
    actor: &Actor,
    id_text: &str,
    body: UpdateMerchant,
) -> Result<MerchantView> {
    let _serial = state.merchant_admin.lock().await;
    let mut m = load(state, id_text)?;
    let before = view(&m, now_ns());
    let terms_before = agreement_version(&m, 0, 0, "");
    if let Some(names) = &body.payment_methods {
        m.agreement.0.methods = parse_methods(names)?;
    }
    if let Some(required) = body.require_signature {
        if required
            && !m
                .auth
                .0
                .signing
                .iter()
                .any(|s| s.expires_at_ns.is_none_or(|at| at > now_ns()))
        {
            return Err(Error::conflict(
                "no_signing_secret",
                "create a signing secret first: POST /v1/merchants/{id}/signing_secrets",
            )
            .with_param("require_signature"));
        }
        m.auth.0.require_signature = required;
    }
    if let Some(rate) = &body.fee_rate {
        m.fee_rate_ppm = parse_fee_rate(rate).map_err(|e| {
            Error::invalid("invalid_parameter", e.to_string()).with_param("fee_rate")
        })?;
    }
    let currency = engine::Currency::from_numeric(m.currency)
        .ok_or_else(|| Error::storage("a stored merchant has an unknown currency"))?;
    m.fee_parts.0 = fee_parts(
        body.fee_fixed.as_deref(),
        body.fee_min.as_deref(),
        body.fee_max.as_deref(),
        currency,
        m.fee_parts.0,
    )?;
    m.settlement.0 = settlement_terms(
        state,
        m.id,
        body.settlement_cycle_days,
        body.min_payout.as_deref(),
        body.payout_account,
        currency,
        m.settlement.0.clone(),
    )?;
    // A change of fees, settlement cycle or payment methods is a new version of the
    // agreement, kept beside the earlier ones; payments from now on record it.
    let mut more = Vec::new();
    if agreement_version(&m, 0, 0, "") != terms_before {
        let now = now_ns();
        if m.agreement.0.version == 0 {
            // A merchant from before agreements: its terms until now are version 1.
            let mut first = terms_before.clone();
            (first.version, first.effective_at_ns, first.by) =
                (1, m.created_at_ns, BEFORE_AGREEMENTS.to_string());
            more.push(agreement_record(&first, m.id));
        }
        let version = m.agreement.0.version() + 1;
        m.agreement.0.version = version;
        m.agreement.0.effective_at_ns = now;
        more.push(agreement_record(
            &agreement_version(&m, version, now, &actor.name),
            m.id,
        ));
    }
    save_audited_with(state, actor, "merchant.update", &m, &before, more).await
}

/// Replaces a credential of merchant `id_text`: a new one now, the ones in use until the
/// overlap ends. Returns the answer with the new secret (shown once).
pub async fn rotate(
    state: &Platform,
    actor: &Actor,
    id_text: &str,
    body: Rotate,
    kind: Credential,
    idem: Option<&Guard<'_>>,
) -> Result<Rotated> {
    let overlap_s = body.overlap_seconds.unwrap_or(86_400);
    if overlap_s > OVERLAP_S_MAX {
        return Err(Error::invalid(
            "invalid_parameter",
            format!("overlap_seconds must be 0 to {OVERLAP_S_MAX}, got {overlap_s}"),
        )
        .with_param("overlap_seconds"));
    }
    let _serial = state.merchant_admin.lock().await;
    let mut m = load(state, id_text)?;
    let now = now_ns();
    let before = view(&m, now);
    let until = now.saturating_add(overlap_s.saturating_mul(1_000_000_000));
    let retire = |expires: &mut Option<u64>| {
        *expires = Some(expires.map_or(until, |at| at.min(until)));
    };
    let mut records = Vec::new();
    let (secret, number) = match kind {
        Credential::SecretKey => {
            let secret = format!(
                "sk_{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            );
            let sha256 = key_sha256(&secret);
            let keys = &mut m.auth.0.keys;
            if keys.is_empty() {
                keys.push(records::KeyEntry {
                    sha256: m.key_sha256,
                    created_at_ns: m.created_at_ns,
                    expires_at_ns: None,
                });
            }
            for k in keys.iter_mut() {
                retire(&mut k.expires_at_ns);
            }
            keys.push(records::KeyEntry {
                sha256,
                created_at_ns: now,
                expires_at_ns: None,
            });
            // Keys long expired are dropped from the record (their index entries stay,
            // and find a merchant that no longer lists them: refused).
            keys.retain(|k| {
                k.expires_at_ns
                    .is_none_or(|at| at + OVERLAP_S_MAX * 1_000_000_000 > now)
            });
            m.key_sha256 = sha256;
            records.push((records::merchant_key_index(&sha256), records::encode(&m.id)));
            (secret, None)
        }
        Credential::SigningSecret => {
            let secret = format!(
                "ss_{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            );
            let signing = &mut m.auth.0.signing;
            for s in signing.iter_mut() {
                retire(&mut s.expires_at_ns);
            }
            let number = signing.last().map_or(1, |s| s.number + 1);
            signing.retain(|s| {
                s.expires_at_ns
                    .is_none_or(|at| at + OVERLAP_S_MAX * 1_000_000_000 > now)
            });
            signing.push(records::SigningEntry {
                number,
                sealed: state
                    .master
                    .seal(secret.as_bytes(), &signing_context(m.id, number)),
                created_at_ns: now,
                expires_at_ns: None,
            });
            (secret, Some(number))
        }
    };
    let mut answer = Rotated {
        secret: None,
        number,
        merchant: view(&m, now),
    };
    let replay = serde_json::to_vec(&answer).expect("a rotation answer serializes");
    records.push((records::merchant_key(m.id), records::encode(&m)));
    records.push(crate::audit::record(
        state,
        actor,
        match kind {
            Credential::SecretKey => "merchant.rotate_secret_key",
            Credential::SigningSecret => "merchant.rotate_signing_secret",
        },
        &merchant_id_text(m.id),
        Some(&before),
        Some(&answer.merchant),
    ));
    records.extend(idem.map(|g| g.record(&replay)));
    state.ledger()?.write_records(records).await?;
    changed(state);
    answer.secret = Some(secret);
    Ok(answer)
}

pub fn merchant_id_text(id: u128) -> String {
    engine::ids::prefixed_hex("mch_", id)
}

pub fn parse_merchant_id(text: &str) -> Option<u128> {
    records::parse_id(text, "mch_")
}

/// The authenticated caller of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Merchant(Box<records::Merchant>),
}

impl Caller {
    /// Whether this caller may see a resource of `merchant`: the operator sees all, a
    /// merchant only its own (others' answer 404, so ids cannot be probed).
    pub fn may_see(&self, merchant: u128) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Merchant(m) => m.id == merchant,
        }
    }

    /// The merchant, when the caller is one.
    pub fn merchant(&self) -> Option<&records::Merchant> {
        match self {
            Caller::Admin => None,
            Caller::Merchant(m) => Some(m),
        }
    }
}

//! Two-phase payments (预授权, issue #19, `../shared/FUNDS.md` "Payment orders, checkout and
//! two-phase payments"): `POST /v1/payments` with `"capture": false` holds the amount on the
//! payer; `capture` takes all or part of it (the rest goes back), `void` releases it all, and
//! an authorization left alone is voided by itself after `authorization_ttl_s`.
//!
//! A card's authorization is the channel's (`capture: false` on the charge request): nothing
//! is booked until the capture, which the channel performs once and payd then books as a
//! card charge of the amount captured (`card_payments::capture`); a void is the channel's
//! too. Until the channel answers, the payment stays authorized and a retry is safe.
//!
//! A balance hold is a ledger movement, so it is exact and durable like any other: the amount moves
//! from the payer to the platform's holds account of the currency (GL 2002, customer funds on
//! hold: still owed to the customers), in the same durable unit as the payment `authorized`
//! and its void timer. Held money is therefore not available to the payer, and never reaches
//! the merchant before the capture, whose one transfer empties the hold: the captured amount
//! to the merchant (net of the fee, computed on what is captured) and the rest back to the
//! payer. A void's transfer gives it all back. Capture, void and expiry take the payment's
//! turn, so exactly one of them happens; their transfer ids derive from the payment's, so a
//! retried one is applied at most once.
//!
//! The void timers are expiring markers keyed by the expiry (`xau`), written with the
//! authorization and resolved with its capture or void; a pass every 200 ms voids the due
//! ones, so a restart resumes them from the store.

use std::sync::Arc;
use std::time::Duration;

use engine::{
    AccountId, Currency, PlatformRole, Posting, Reject, Timestamp, Transfer, TransferId,
    TransferKind,
};
use serde::Deserialize;

use crate::accounts::parse_positive;
use crate::merchants::Caller;
use crate::payments::{load_visible, payment_id_text, payment_records, view, PaymentView};
use crate::platform::{derived_id, now_ns, take_turn, Platform};
use crate::records::{self, Payment, PaymentStatus};
use crate::{Error, Result};

/// How often the expiry pass runs.
pub const EXPIRY_TICK: Duration = Duration::from_millis(200);
/// How long a resolved timer is kept after the authorization's expiry (then compaction drops
/// it).
const MARKER_KEEP_NS: u64 = 7 * 24 * 3600 * 1_000_000_000;

/// `POST /v1/payments/{id}/capture`.
#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Capture {
    /// What to take, at most the amount authorized (default: all of it); the rest goes back
    /// to the payer.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "60.00", pattern = r"^[0-9]+(\.[0-9]+)?$", max_length = 40)
    )]
    pub amount: Option<String>,
}

/// The holds account of `currency`.
pub fn holds_account(currency: Currency) -> AccountId {
    AccountId::platform(PlatformRole::AuthorizationHolds, currency.numeric())
}

fn currency_of(p: &Payment) -> Result<Currency> {
    Currency::from_numeric(p.currency)
        .ok_or_else(|| Error::storage("a stored payment has an unknown currency"))
}

fn authorized(p: &Payment) -> i64 {
    p.authorization.0.as_ref().map_or(0, |a| a.authorized)
}

/// The authorization's transfer: the amount from the payer to the holds account (its id is
/// the payment's).
pub fn hold_transfer(p: &Payment, currency: Currency) -> Transfer {
    Transfer::new(
        TransferId(p.id),
        TransferKind::Authorization,
        vec![
            Posting::new(p.payer, currency, -p.amount),
            Posting::new(holds_account(currency), currency, p.amount),
        ],
        Timestamp(0),
    )
}

/// The capture's transfer: the hold emptied, `captured − fee` to the merchant, `fee` to fee
/// income, the rest back to the payer.
fn capture_transfer(
    p: &Payment,
    merchant: AccountId,
    currency: Currency,
    captured: i64,
    fee: i64,
) -> Transfer {
    let held = authorized(p);
    let mut postings = vec![Posting::new(holds_account(currency), currency, -held)];
    let legs = [
        (p.payer, held - captured),
        (merchant, captured - fee),
        (
            AccountId::platform(PlatformRole::FeeIncome, currency.numeric()),
            fee,
        ),
    ];
    postings.extend(
        legs.into_iter()
            .filter(|(_, amount)| *amount != 0)
            .map(|(account, amount)| Posting::new(account, currency, amount)),
    );
    Transfer::new(
        TransferId(derived_id(&[b"capture", &p.id.to_be_bytes()])),
        TransferKind::Payment,
        postings,
        Timestamp(0),
    )
}

/// The void's transfer: everything held back to the payer.
fn void_transfer(p: &Payment, currency: Currency) -> Transfer {
    let held = authorized(p);
    Transfer::new(
        TransferId(derived_id(&[b"void", &p.id.to_be_bytes()])),
        TransferKind::Authorization,
        vec![
            Posting::new(holds_account(currency), currency, -held),
            Posting::new(p.payer, currency, held),
        ],
        Timestamp(0),
    )
}

/// The void timer of payment `p`'s authorization: open, or resolved.
pub fn marker(p: &Payment, open: bool) -> (Vec<u8>, Vec<u8>) {
    let expires = p.authorization.0.as_ref().map_or(0, |a| a.expires_at_ns);
    (
        records::authorization_expiry_key(expires, p.id),
        storage::schema::expiring_value(
            if open {
                expires.saturating_add(MARKER_KEEP_NS)
            } else {
                now_ns()
            },
            &[u8::from(open)],
        ),
    )
}

fn refused(reject: Reject) -> Error {
    Error::conflict(
        "ledger_refused",
        format!("the ledger refused the movement: {}", reject.code()),
    )
}

/// Why a payment that is not `authorized` cannot be captured or voided.
fn not_authorized(p: &Payment) -> Error {
    let id = payment_id_text(p.id);
    match (p.status, p.authorization.0.is_some()) {
        (PaymentStatus::Succeeded, true) => Error::conflict(
            "payment_already_captured",
            format!("payment {id} was captured"),
        ),
        (PaymentStatus::Canceled, _) => {
            Error::conflict("payment_canceled", format!("payment {id} was voided"))
        }
        _ => Error::conflict(
            "payment_not_authorized",
            format!("payment {id} is not an authorization awaiting capture"),
        ),
    }
}

/// Voids `p` (under its turn) for `reason`: everything held back to the payer, durably with
/// the payment `canceled` and its timer resolved. A card's is voided at its channel first;
/// one the channel had captured (a capture whose answer was lost) is booked as captured
/// instead, and refused `payment_already_captured`.
async fn void_now(state: &Platform, p: &mut Payment, reason: &str) -> Result<()> {
    let currency = currency_of(p)?;
    if p.card.0.is_some() {
        if let Some(charged) = crate::card_payments::void(state, p).await? {
            let merchant = merchant_of(state, p)?;
            if let Some(a) = p.authorization.0.as_mut() {
                a.closed_at_ns = Some(now_ns());
            }
            let done = vec![marker(p, false)];
            crate::card_payments::capture(state, p, &merchant, charged.amount_minor, done).await?;
            state.payment_reached(p);
            return Err(not_authorized(p));
        }
        p.status = PaymentStatus::Canceled;
        if let Some(a) = p.authorization.0.as_mut() {
            a.closed_at_ns = Some(now_ns());
            a.void_reason = Some(reason.to_string());
        }
        let mut recs = payment_records(state, p);
        recs.push(marker(p, false));
        state.ledger()?.write_records(recs).await?;
        state.payment_reached(p);
        return Ok(());
    }
    let transfer = void_transfer(p, currency);
    p.status = PaymentStatus::Canceled;
    if let Some(a) = p.authorization.0.as_mut() {
        a.closed_at_ns = Some(now_ns());
        a.void_reason = Some(reason.to_string());
    }
    let mut recs = payment_records(state, p);
    recs.push(marker(p, false));
    state
        .ledger()?
        .transfer_with(transfer, recs)
        .await?
        .map_err(refused)?;
    state.payment_reached(p);
    Ok(())
}

fn merchant_of(state: &Platform, p: &Payment) -> Result<records::Merchant> {
    records::read::<records::Merchant>(state.store()?, &records::merchant_key(p.merchant))?
        .ok_or_else(|| Error::storage("a stored payment's merchant is missing"))
}

/// Reads payment `id_text` as `caller` may see it, under its turn.
async fn under_turn<'a>(
    state: &'a Platform,
    caller: &Caller,
    id_text: &str,
) -> Result<(crate::platform::Turn<'a>, Payment)> {
    let p = load_visible(state, caller, id_text).await?;
    let turn = take_turn(&state.authorization_turns, p.id).await;
    let p = load_visible(state, caller, id_text).await?;
    Ok((turn, p))
}

/// Captures payment `id_text` (all, or `body.amount` of it). A capture repeated with the
/// same amount answers the captured payment again.
pub async fn capture(
    state: &Platform,
    caller: &Caller,
    id_text: &str,
    body: Capture,
) -> Result<PaymentView> {
    let (_turn, mut p) = under_turn(state, caller, id_text).await?;
    let currency = currency_of(&p)?;
    let wanted = body
        .amount
        .as_deref()
        .map(|text| parse_positive(text, currency, "amount"))
        .transpose()?;
    if p.status != PaymentStatus::Authorized {
        if p.status == PaymentStatus::Succeeded
            && p.authorization.0.is_some()
            && wanted.is_none_or(|w| w == p.amount)
        {
            return Ok(view(&p));
        }
        return Err(not_authorized(&p));
    }
    let held = authorized(&p);
    let captured = wanted.unwrap_or(held);
    if captured > held {
        return Err(Error::invalid(
            "capture_exceeds_authorization",
            format!(
                "at most {} can be captured",
                engine::money::format_minor(held, currency)
            ),
        )
        .with_param("amount"));
    }
    if now_ns() >= p.authorization.0.as_ref().map_or(0, |a| a.expires_at_ns) {
        void_now(state, &mut p, "expired").await?;
        return Err(Error::conflict(
            "authorization_expired",
            "the authorization expired and was voided",
        ));
    }
    let merchant = merchant_of(state, &p)?;
    if p.card.0.is_some() {
        if let Some(a) = p.authorization.0.as_mut() {
            a.closed_at_ns = Some(now_ns());
        }
        let done = vec![marker(&p, false)];
        crate::card_payments::capture(state, &mut p, &merchant, captured, done).await?;
        state.payment_reached(&p);
        return Ok(view(&p));
    }
    let fee = merchant.fee_terms().fee(captured).min(captured);
    let transfer = capture_transfer(&p, merchant.pending(), currency, captured, fee);
    p.amount = captured;
    p.fee = fee;
    p.status = PaymentStatus::Succeeded;
    if let Some(a) = p.authorization.0.as_mut() {
        a.closed_at_ns = Some(now_ns());
    }
    let mut recs = payment_records(state, &p);
    recs.push(marker(&p, false));
    state
        .ledger()?
        .transfer_with(transfer, recs)
        .await?
        .map_err(refused)?;
    state.payment_reached(&p);
    Ok(view(&p))
}

/// Voids payment `id_text`: everything held back to the payer. A void repeated answers the
/// voided payment again.
pub async fn void(state: &Platform, caller: &Caller, id_text: &str) -> Result<PaymentView> {
    let (_turn, mut p) = under_turn(state, caller, id_text).await?;
    match p.status {
        PaymentStatus::Authorized => {
            void_now(state, &mut p, "voided").await?;
            Ok(view(&p))
        }
        PaymentStatus::Canceled => Ok(view(&p)),
        _ => Err(not_authorized(&p)),
    }
}

/// One expiry pass: every authorization whose ttl passed is voided `expired` (one at a time,
/// under its turn). Returns how many.
pub async fn expiry_pass(state: &Platform) -> Result<usize> {
    let end = records::authorization_expiry_key(now_ns(), u128::MAX);
    let (due, _) = crate::orders::open_markers(
        state,
        records::prefix::AUTHORIZATION_EXPIRY,
        Some(&end),
        usize::MAX,
    )?;
    let mut voided = 0;
    for id in due {
        let _turn = take_turn(&state.authorization_turns, id).await;
        let Some(mut p) = crate::shelf::payment(state.store()?, id)? else {
            continue;
        };
        if p.status == PaymentStatus::Authorized {
            // One that cannot be voided now (its channel does not answer) is tried again at
            // the next pass; the others go on.
            match void_now(state, &mut p, "expired").await {
                Ok(()) => voided += 1,
                Err(e) => tracing::warn!(
                    %e,
                    payment_id = %payment_id_text(p.id),
                    "an expired authorization could not be voided yet"
                ),
            }
        } else {
            // Captured or voided meanwhile: its timer was resolved with it; an old one is
            // resolved here.
            state
                .ledger()?
                .write_records(vec![marker(&p, false)])
                .await?;
        }
    }
    Ok(voided)
}

/// The authorizations awaiting capture (the ops page).
pub fn outstanding(state: &Platform, cap: usize) -> Result<crate::orders::Outstanding> {
    let (ids, capped) =
        crate::orders::open_markers(state, records::prefix::AUTHORIZATION_EXPIRY, None, cap)?;
    let mut out = crate::orders::Outstanding {
        capped,
        ..Default::default()
    };
    let mut sums = std::collections::BTreeMap::new();
    for id in ids {
        if let Some(p) = crate::shelf::payment(state.store()?, id)? {
            if let (PaymentStatus::Authorized, Some(a)) = (p.status, p.authorization.0.as_ref()) {
                out.add(&mut sums, p.currency, a.authorized, a.expires_at_ns);
            }
        }
    }
    Ok(out.finish(sums))
}

/// Voids expired authorizations in the background, from the store's timers (so they resume
/// after a restart).
pub fn spawn_expiry(state: Arc<Platform>) {
    actix_rt::spawn(async move {
        loop {
            if let Err(e) = expiry_pass(&state).await {
                tracing::error!(%e, "the authorization expiry pass failed");
            }
            actix_rt::time::sleep(EXPIRY_TICK).await;
        }
    });
}

//! The customer checkout (收银台, issue #19, `../shared/FUNDS.md` "Payment orders, checkout and
//! two-phase payments"): the flows behind the order's `checkout_url` page. The page itself
//! (HTML, cookies, headers) is the HTTP layer's; this module knows sessions, sign-in and
//! payment.
//!
//! A customer signs in with a phone number and a one-time code sent through the SMS
//! platform's code flow (`notifications::otp`, purpose `checkout`, scoped to the order's
//! merchant). The session is a sealed value (AES-GCM under the master key: signed, so it
//! cannot be forged or altered, and encrypted, so the phone number in it is not readable in
//! the browser) that expires: [`SIGNED_IN_NS`] after sign-in, [`SESSION_NS`] in all. Every
//! form carries a token derived from the session's random nonce and the order
//! ([`csrf_token`]); a post without the right one changes nothing.
//!
//! Paying is one attempt of the order (`orders::pay`), so the order's rules hold whatever the
//! customer clicks: at most one succeeded payment, a closed or expired order refuses. The
//! customer pays from the account found by the phone: the merchant's own customer with that
//! phone, else the operator's (`customers::by_phone`). A new card goes to the tokenizer
//! (`cards::create`) and is kept for the customer's next checkout with the merchant; a
//! signed-in phone with no customer may pay by new card only.

use bincode::{Decode, Encode};
use engine::money::format_minor;
use engine::{AccountId, Currency};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::cards::{CardNumber, CreateCard};
use crate::notifications::otp::{self, CreateOtp, VerifyOtp};
use crate::notifications::{check_phone, mask_phone};
use crate::orders::{order_id_text, PayOrder};
use crate::payments::PaymentMethod;
use crate::platform::{now_ns, Platform};
use crate::records::hex;
use crate::records::{self, Coupon, CouponStatus, CouponStock, Merchant, Order, OrderStatus};
use crate::{Error, Result};

/// How long a session lasts in all (a browser that never signs in gets a new one after).
pub const SESSION_NS: u64 = 60 * 60 * 1_000_000_000;
/// How long a sign-in lasts.
pub const SIGNED_IN_NS: u64 = 15 * 60 * 1_000_000_000;
/// The one-time code's purpose.
const PURPOSE: &str = "checkout";
/// Most saved cards and coupons the page offers.
const OPTIONS_MAX: usize = 20;
const SEAL_CONTEXT: &[u8] = b"checkout-session";

/// A browser's checkout session (sealed into its cookie).
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Session {
    /// Random: what the forms' tokens are derived from.
    pub nonce: u128,
    /// The merchant whose checkout the phone signed in at (0: none yet).
    pub merchant: u128,
    /// The phone a code was sent to ("" before).
    pub phone: String,
    /// The code sent, awaiting its check (0: none).
    pub otp: u128,
    /// The customer signed in (0: none; a phone with no customer pays by card only).
    pub customer: u128,
    /// When the sign-in ends (0: not signed in).
    pub signed_in_until_ns: u64,
    pub expires_at_ns: u64,
}

impl Session {
    fn fresh(now: u64) -> Session {
        Session {
            nonce: rand::random(),
            expires_at_ns: now.saturating_add(SESSION_NS),
            ..Session::default()
        }
    }

    /// Whether the phone is signed in at `merchant`'s checkout.
    pub fn signed_in(&self, merchant: u128, now: u64) -> bool {
        self.merchant == merchant && now < self.signed_in_until_ns
    }
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 4096 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `value` sealed (AES-GCM under the master key, `context` bound) as hex: what a cookie
/// carries.
pub fn seal_value<T: Encode>(state: &Platform, context: &[u8], value: &T) -> String {
    let plain = bincode::encode_to_vec(value, config()).expect("a sealed value encodes");
    hex(&state.master.seal(&plain, context))
}

/// What [`seal_value`] sealed under `context`; `None` when it does not open (forged,
/// altered, another key or context) or decode.
pub fn open_value<T: Decode<()>>(state: &Platform, context: &[u8], text: &str) -> Option<T> {
    let sealed = unhex(text)?;
    let plain = state.master.open(&sealed, context).ok()?;
    bincode::decode_from_slice::<T, _>(&plain, config())
        .ok()
        .map(|(v, _)| v)
}

/// The session in cookie value `value`, or a new one when there is none, it does not open
/// (forged, altered, from another key) or it expired.
pub fn open_session(state: &Platform, value: Option<&str>) -> Session {
    let now = now_ns();
    value
        .and_then(|v| open_value::<Session>(state, SEAL_CONTEXT, v))
        .filter(|s| now < s.expires_at_ns)
        .unwrap_or_else(|| Session::fresh(now))
}

/// Session `s` as its cookie's value.
pub fn seal_session(state: &Platform, s: &Session) -> String {
    seal_value(state, SEAL_CONTEXT, s)
}

/// The form token of session `s` for order `order`.
pub fn csrf_token(state: &Platform, s: &Session, order: u128) -> String {
    let mac = state.master.mac(
        &[
            b"checkout-csrf\0".as_slice(),
            &s.nonce.to_be_bytes(),
            &order.to_be_bytes(),
        ]
        .concat(),
    );
    hex(&mac[..16])
}

/// Refuses a form whose token is not session `s`'s for `order`.
pub fn check_csrf(state: &Platform, s: &Session, order: u128, token: &str) -> Result<()> {
    check_token(&csrf_token(state, s, order), token)
}

/// Refuses a form token `token` that is not `expected` (compared in constant time).
pub fn check_token(expected: &str, token: &str) -> Result<()> {
    let right: bool = expected.as_bytes().ct_eq(token.as_bytes()).into();
    if right {
        Ok(())
    } else {
        Err(Error::Unauthenticated {
            code: "csrf_token_invalid",
            message: "this form has expired or did not come from this page: reload the page"
                .to_string(),
        })
    }
}

/// What the checkout page shows.
pub struct Page {
    pub order: Order,
    pub order_id: String,
    pub merchant_name: String,
    pub amount: String,
    pub currency: &'static str,
    /// open, paid, closed or expired (open past its expiry, about to close).
    pub status: &'static str,
    pub expires_at: String,
    pub payment_id: Option<String>,
    pub csrf: String,
    pub stage: Stage,
}

/// Where the customer is.
pub enum Stage {
    /// Not signed in: asks for the phone.
    Phone,
    /// A code was sent to `phone` (masked).
    Code { phone: String },
    /// Signed in: how to pay.
    Pay(Options),
}

/// The ways a signed-in customer may pay.
pub struct Options {
    /// The phone, masked.
    pub phone: String,
    /// The customer's name, when the phone has a customer.
    pub name: Option<String>,
    /// Available in the balance account (`None`: no customer).
    pub balance: Option<String>,
    /// Available on the credit line (`None`: no line).
    pub credit: Option<String>,
    /// Saved cards: token and label (`visa ****1111, 12/2030`).
    pub cards: Vec<(String, String)>,
    /// Coupons that apply to this order: id, label, discount.
    pub coupons: Vec<(String, String, String)>,
}

fn currency_of(o: &Order) -> Currency {
    Currency::from_numeric(o.currency).expect("stored orders carry an active currency")
}

/// Order `id_text` and its merchant, for anyone holding the link (the id is a random 128-bit
/// number: the link is the capability).
pub fn order(state: &Platform, id_text: &str) -> Result<(Order, Merchant)> {
    let not_found = || Error::not_found(format!("no order {id_text:?}"));
    let id = records::parse_id(id_text, "ord_").ok_or_else(not_found)?;
    let store = state.store()?;
    let o: Order = records::read(store, &records::order_key(id))?.ok_or_else(not_found)?;
    let m: Merchant =
        records::read(store, &records::merchant_key(o.merchant))?.ok_or_else(not_found)?;
    Ok((o, m))
}

/// The page of order `id_text` for session `s`.
pub async fn page(state: &Platform, id_text: &str, s: &Session) -> Result<Page> {
    let (o, m) = order(state, id_text)?;
    let now = now_ns();
    let currency = currency_of(&o);
    let status = match o.status {
        OrderStatus::Open if now >= o.expires_at_ns => "expired",
        OrderStatus::Open => "open",
        OrderStatus::Paid => "paid",
        OrderStatus::Closed if o.close_reason.as_deref() == Some("expired") => "expired",
        OrderStatus::Closed => "closed",
    };
    let stage = if s.signed_in(o.merchant, now) {
        Stage::Pay(options(state, &o, s).await?)
    } else if s.otp != 0 && s.merchant == o.merchant {
        Stage::Code {
            phone: mask_phone(&s.phone),
        }
    } else {
        Stage::Phone
    };
    Ok(Page {
        order_id: order_id_text(o.id),
        merchant_name: m.name.clone(),
        amount: format_minor(o.amount, currency),
        currency: currency.code(),
        status,
        expires_at: records::time_text(o.expires_at_ns),
        payment_id: o.payment.map(crate::payments::payment_id_text),
        csrf: csrf_token(state, s, o.id),
        stage,
        order: o,
    })
}

/// What `account` can spend now (never below zero).
async fn available(state: &Platform, account: AccountId) -> Result<i64> {
    let live = state.ledger()?.account(account).await?;
    Ok(live.map_or(0, |a| {
        i64::try_from(a.available().clamp(0, i128::from(i64::MAX))).unwrap_or(i64::MAX)
    }))
}

async fn options(state: &Platform, o: &Order, s: &Session) -> Result<Options> {
    let currency = currency_of(o);
    let store = state.store()?;
    let customer = match s.customer {
        0 => None,
        id => crate::customers::by_id(state, id)?,
    };
    let mut opts = Options {
        phone: mask_phone(&s.phone),
        name: customer.as_ref().map(|c| c.name.clone()),
        balance: None,
        credit: None,
        cards: Vec::new(),
        coupons: Vec::new(),
    };
    let Some(c) = customer else {
        return Ok(opts);
    };
    let bal = available(state, c.account).await?;
    opts.balance = Some(format_minor(bal, currency));
    if let Some(line) = credit_line(state, c.account)? {
        let left = if line.state.overdue() {
            0
        } else {
            available(state, line.principal_account)
                .await?
                .min(line.terms.limit)
        };
        opts.credit = Some(format_minor(left, currency));
    }
    let prefix = records::customer_card_prefix(c.id);
    let mut tokens = Vec::new();
    store.for_each_aux_with_prefix_from(&prefix, &prefix, OPTIONS_MAX, |k, _| {
        if let Some(tail) = k.get(k.len() - 16..) {
            tokens.push(u128::from_be_bytes(tail.try_into().expect("16 bytes")));
        }
        Ok(())
    })?;
    for t in tokens {
        let card: Option<records::Card> = records::read(store, &records::card_key(t))?;
        if let Some(card) = card.filter(|k| k.merchant == o.merchant) {
            if !engine::cards::expired(card.exp_month, card.exp_year, now_ns()) {
                opts.cards.push((
                    crate::cards::card_token_text(t),
                    format!(
                        "{} ****{}, {:02}/{}",
                        card.brand, card.last4, card.exp_month, card.exp_year
                    ),
                ));
            }
        }
    }
    let prefix = records::coupon_holder_prefix(c.account);
    let mut ids = Vec::new();
    store.for_each_aux_with_prefix_from(&prefix, &prefix, 1000, |k, _| {
        if let Some(tail) = k.get(k.len() - 16..) {
            ids.push(u128::from_be_bytes(tail.try_into().expect("16 bytes")));
        }
        Ok(())
    })?;
    let now = now_ns();
    for id in ids.into_iter().rev() {
        if opts.coupons.len() == OPTIONS_MAX {
            break;
        }
        let Some(cp) = records::read::<Coupon>(store, &records::coupon_key(id))? else {
            continue;
        };
        if cp.status != CouponStatus::Available {
            continue;
        }
        let Some(st) = records::read::<CouponStock>(store, &records::coupon_stock_key(cp.stock))?
        else {
            continue;
        };
        let usable = st.status == records::StockStatus::Active
            && (st.merchant == 0 || st.merchant == o.merchant)
            && st.currency == o.currency
            && o.amount >= st.min_order
            && (st.valid_from_ns..st.valid_until_ns).contains(&now);
        if !usable {
            continue;
        }
        let discount = engine::coupons::discount(st.rule, o.amount);
        if discount <= 0 {
            continue;
        }
        opts.coupons.push((
            crate::coupons::coupon_id_text(cp.id),
            st.name.clone(),
            format_minor(discount, currency),
        ));
    }
    Ok(opts)
}

fn credit_line(state: &Platform, account: AccountId) -> Result<Option<records::CreditLine>> {
    let store = state.store()?;
    let Some(id) = records::read::<u128>(store, &records::credit_line_by_account_key(account))?
    else {
        return Ok(None);
    };
    records::read(store, &records::credit_line_key(id))
}

/// Sends a sign-in code to `phone` for the checkout of order `id_text`. Returns the session
/// awaiting the code.
pub async fn send_code(
    state: &Platform,
    id_text: &str,
    s: &Session,
    phone: &str,
) -> Result<Session> {
    let (o, _) = order(state, id_text)?;
    let phone = phone.trim();
    check_phone(phone, "phone")?;
    let r = otp::create(
        state,
        o.merchant,
        CreateOtp {
            phone: phone.to_string(),
            purpose: Some(PURPOSE.to_string()),
        },
    )
    .await?;
    Ok(Session {
        merchant: o.merchant,
        phone: phone.to_string(),
        otp: r.id,
        customer: 0,
        signed_in_until_ns: 0,
        ..s.clone()
    })
}

/// Checks the code the session is waiting for. Returns the signed-in session.
pub async fn sign_in(state: &Platform, id_text: &str, s: &Session, code: &str) -> Result<Session> {
    let (o, _) = order(state, id_text)?;
    if s.otp == 0 || s.merchant != o.merchant {
        return Err(Error::invalid("otp_not_sent", "ask for a code first"));
    }
    otp::verify(
        state,
        o.merchant,
        VerifyOtp {
            id: format!("otp_{:032x}", s.otp),
            code: code.trim().to_string(),
        },
    )
    .await?;
    let customer = crate::customers::by_phone(state, o.merchant, &s.phone)?;
    let now = now_ns();
    Ok(Session {
        otp: 0,
        customer: customer.map_or(0, |c| c.id),
        signed_in_until_ns: now.saturating_add(SIGNED_IN_NS),
        expires_at_ns: s.expires_at_ns.max(now.saturating_add(SIGNED_IN_NS)),
        ..s.clone()
    })
}

/// Ends the sign-in.
pub fn sign_out(s: &Session) -> Session {
    Session {
        nonce: s.nonce,
        expires_at_ns: s.expires_at_ns,
        ..Session::default()
    }
}

/// A new card, as the checkout's form sends it.
pub struct NewCard {
    pub number: CardNumber,
    pub exp_month: u8,
    pub exp_year: u16,
    pub holder: String,
}

/// How the customer chose to pay.
pub enum Choice {
    Balance { coupon: Option<String> },
    Credit,
    SavedCard { token: String },
    NewCard(NewCard),
}

/// What a payment attempt came to.
pub enum Outcome {
    Succeeded {
        payment_id: String,
        paid: String,
    },
    /// The channel has not answered yet: the page shows the order as it then stands.
    Processing {
        payment_id: String,
    },
    /// Failed; the order stays open for another try. `code` is the payment's failure code.
    Failed {
        code: String,
    },
}

#[derive(Deserialize)]
struct Answer {
    id: String,
    status: String,
    failure_code: Option<String>,
    paid_amount: String,
}

/// Pays order `id_text` as session `s` chose. Refusals of the order (`order_already_paid`,
/// `order_closed`, `order_expired`) and of the choice are errors; a payment that was made
/// but failed is an [`Outcome::Failed`].
pub async fn pay(
    state: &std::sync::Arc<Platform>,
    id_text: &str,
    s: &Session,
    choice: Choice,
    payer_ip: Option<String>,
) -> Result<Outcome> {
    let (o, merchant) = order(state, id_text)?;
    if !s.signed_in(o.merchant, now_ns()) {
        return Err(Error::Unauthenticated {
            code: "not_signed_in",
            message: "sign in with your phone first".to_string(),
        });
    }
    let customer = match s.customer {
        0 => None,
        id => crate::customers::by_id(state, id)?,
    };
    let no_account = || Error::invalid("no_account", "this phone has no account here: pay by card");
    let method = |kind: &str| PaymentMethod {
        kind: kind.to_string(),
        account_id: None,
        card_token: None,
        credit_line_id: None,
    };
    let mut coupon_id = None;
    let payment_method = match choice {
        Choice::Balance { coupon } => {
            let c = customer.ok_or_else(no_account)?;
            coupon_id = coupon.filter(|t| !t.is_empty());
            PaymentMethod {
                account_id: Some(c.account.to_string()),
                ..method("balance")
            }
        }
        Choice::Credit => {
            let c = customer.ok_or_else(no_account)?;
            let line = credit_line(state, c.account)?.ok_or_else(|| {
                Error::invalid("no_credit_line", "there is no credit line on this account")
            })?;
            PaymentMethod {
                credit_line_id: Some(crate::credit::line_id_text(line.id)),
                ..method("credit")
            }
        }
        Choice::SavedCard { token } => {
            let c = customer.ok_or_else(no_account)?;
            let missing = || Error::not_found("no such saved card").with_param("card_token");
            let t = crate::cards::parse_card_token(&token).ok_or_else(missing)?;
            records::read::<()>(state.store()?, &records::customer_card_key(c.id, t))?
                .ok_or_else(missing)?;
            PaymentMethod {
                card_token: Some(crate::cards::card_token_text(t)),
                ..method("bank_card")
            }
        }
        Choice::NewCard(card) => {
            let answer = crate::cards::create(
                state,
                &merchant,
                CreateCard {
                    card_number: card.number,
                    exp_month: card.exp_month,
                    exp_year: card.exp_year,
                    holder: card.holder,
                },
                None,
            )
            .await?;
            #[derive(Deserialize)]
            struct Tok {
                card_token: String,
            }
            let tok: Tok = serde_json::from_slice(&answer)
                .map_err(|e| Error::storage(format!("a card's answer: {e}")))?;
            if let (Some(c), Some(t)) = (&customer, crate::cards::parse_card_token(&tok.card_token))
            {
                state
                    .ledger()?
                    .write_records(vec![(
                        records::customer_card_key(c.id, t),
                        records::encode(&()),
                    )])
                    .await?;
            }
            PaymentMethod {
                card_token: Some(tok.card_token),
                ..method("bank_card")
            }
        }
    };
    let answer = crate::orders::pay(
        state,
        &merchant,
        id_text,
        PayOrder {
            payment_method,
            coupon_id,
            payer_ip,
            device_id: None,
        },
    )
    .await?;
    let a: Answer = serde_json::from_slice(&answer)
        .map_err(|e| Error::storage(format!("a payment's answer: {e}")))?;
    Ok(match a.status.as_str() {
        "succeeded" => Outcome::Succeeded {
            payment_id: a.id,
            paid: a.paid_amount,
        },
        "processing" => Outcome::Processing { payment_id: a.id },
        _ => Outcome::Failed {
            code: a.failure_code.unwrap_or_else(|| "failed".to_string()),
        },
    })
}

/// What the page says for a failed payment's code (the customer's words, not the API's).
pub fn failure_text(code: &str) -> &'static str {
    match code {
        "insufficient_funds" => "Not enough money in the account for this order.",
        "channel_declined" => "The card was declined. Try another card or another way to pay.",
        "card_expired" => "The card has expired.",
        "kyc_limit_exceeded" => "This payment is over your account's limit.",
        "coupon_unavailable" => "The coupon can no longer be used. Pay without it.",
        "credit_limit_exceeded" => "Not enough left on the credit line.",
        "credit_line_overdue" => "The credit line has an overdue bill.",
        "risk_rejected" => "The payment was not accepted.",
        "channel_unavailable" => "The bank could not be reached. Nothing was charged; try again.",
        _ => "The payment did not go through. Nothing was charged.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_odd_or_foreign_text() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(unhex(&hex(&bytes)).as_deref(), Some(bytes.as_slice()));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn a_session_is_signed_in_only_at_its_merchant_and_until_its_time() {
        let s = Session {
            merchant: 7,
            signed_in_until_ns: 100,
            ..Session::default()
        };
        assert!(s.signed_in(7, 99));
        assert!(!s.signed_in(7, 100));
        assert!(!s.signed_in(8, 50));
        assert!(!sign_out(&s).signed_in(7, 1));
    }
}

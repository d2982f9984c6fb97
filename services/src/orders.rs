//! Payment orders (issue #19, `../shared/FUNDS.md` "Payment orders, checkout and two-phase
//! payments"): an order a customer pays later, that closes by itself when unpaid at its
//! expiry, and is paid at most once under any race.
//!
//! Exactly one outcome. Every change of an order — a payment attempt, a close, its expiry —
//! takes the order's turn, and first settles the last attempt (`settle`): a payment of the
//! order that succeeded makes it paid, one whose outcome is unknown (a card charge the
//! channel has not answered) refuses the change until it is known. An attempt is counted
//! durably before its payment starts, and its payment is an ordinary one whose
//! `out_trade_no` is `ord_<id>-<n>`, so after a crash between the payment and the order's
//! record the next change finds and applies it. The order's paid or closed record and its
//! webhook event are one durable unit.
//!
//! Expiry. An open order has a marker keyed by its expiry time (`xox`), written with it; a
//! background pass closes the due ones (every 200 ms), so a restart resumes the timers from
//! the store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use engine::money::format_minor;
use engine::Currency;
use serde::{Deserialize, Serialize};

use crate::accounts::{check_text, parse_currency, parse_positive};
use crate::idempotency::Guard;
use crate::merchants::{merchant_id_text, Caller};
use crate::payments::{CreatePayment, PaymentMethod};
use crate::platform::{new_id, now_ns, take_turn, Platform};
use crate::records::{self, Order, OrderStatus, PaymentStatus};
use crate::{Error, Result};

/// Longest an order may stay open: 7 days.
pub const EXPIRES_IN_S_MAX: u64 = 7 * 24 * 3600;
/// Default: 15 minutes.
pub const EXPIRES_IN_S_DEFAULT: u64 = 900;
/// How long a resolved expiry marker is kept after the order's expiry (then compaction
/// drops it).
const MARKER_KEEP_NS: u64 = 7 * 24 * 3600 * 1_000_000_000;
/// How often the expiry pass runs.
pub const EXPIRY_TICK: Duration = Duration::from_millis(200);

pub fn order_id_text(id: u128) -> String {
    engine::ids::prefixed_hex("ord_", id)
}

/// `POST /v1/orders`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    /// The merchant's order number, unique per merchant among its orders.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[!-~]{1,64}$"))]
    pub out_trade_no: String,
    #[cfg_attr(feature = "openapi", schema(example = "88.00"))]
    pub amount: String,
    #[cfg_attr(feature = "openapi", schema(example = "CNY", pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub description: Option<String>,
    /// Where the checkout sends the customer when done (http or https).
    #[cfg_attr(
        feature = "openapi",
        schema(example = "https://shop.example/orders/42")
    )]
    pub return_url: Option<String>,
    /// Seconds until it closes by itself unpaid (1 to 604800, default 900).
    #[serde(default, deserialize_with = "crate::json_int::opt_int")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 604_800))]
    pub expires_in_s: Option<u64>,
}

/// `POST /v1/orders/{id}/payments`: how the order is paid.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PayOrder {
    pub payment_method: PaymentMethod,
    /// A coupon of the payer's (balance payments).
    #[cfg_attr(feature = "openapi", schema(pattern = r"^cpn_[0-9a-f]{32}$"))]
    pub coupon_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "203.0.113.7", max_length = 45))]
    pub payer_ip: Option<String>,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub device_id: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderView {
    id: String,
    merchant_id: String,
    out_trade_no: String,
    amount: String,
    currency: &'static str,
    description: Option<String>,
    return_url: Option<String>,
    /// open, paid or closed.
    status: &'static str,
    /// Why it closed: `closed` (the merchant) or `expired`.
    close_reason: Option<String>,
    /// The payment that paid it.
    payment_id: Option<String>,
    /// Payment attempts made.
    attempts: u32,
    /// The customer's checkout page.
    checkout_url: String,
    expires_at: String,
    created_at: String,
    closed_at: Option<String>,
}

fn currency_of(o: &Order) -> Currency {
    Currency::from_numeric(o.currency).expect("stored orders carry an active currency")
}

pub fn view(state: &Platform, o: &Order) -> OrderView {
    OrderView {
        id: order_id_text(o.id),
        merchant_id: merchant_id_text(o.merchant),
        out_trade_no: o.out_trade_no.clone(),
        amount: format_minor(o.amount, currency_of(o)),
        currency: currency_of(o).code(),
        description: o.description.clone(),
        return_url: o.return_url.clone(),
        status: match o.status {
            OrderStatus::Open => "open",
            OrderStatus::Paid => "paid",
            OrderStatus::Closed => "closed",
        },
        close_reason: o.close_reason.clone(),
        payment_id: o.payment.map(crate::payments::payment_id_text),
        attempts: o.attempts,
        checkout_url: format!(
            "{}/checkout/{}",
            state.settings.public_url.trim_end_matches('/'),
            order_id_text(o.id)
        ),
        expires_at: records::time_text(o.expires_at_ns),
        created_at: records::time_text(o.created_at_ns),
        closed_at: o.closed_at_ns.map(records::time_text),
    }
}

fn marker(o: &Order, open: bool) -> (Vec<u8>, Vec<u8>) {
    (
        records::order_expiry_key(o.expires_at_ns, o.id),
        storage::schema::expiring_value(
            if open {
                o.expires_at_ns.saturating_add(MARKER_KEEP_NS)
            } else {
                now_ns()
            },
            &[u8::from(open)],
        ),
    )
}

/// Creates an order for `merchant`, durably with its index, its expiry marker and the
/// idempotency record of its answer. Returns the answer.
pub async fn create(
    state: &Platform,
    merchant: &records::Merchant,
    body: CreateOrder,
    idem: Option<&Guard<'_>>,
) -> Result<Vec<u8>> {
    if !merchant.is_active() {
        return Err(Error::conflict(
            "merchant_inactive",
            "only an active merchant takes orders",
        ));
    }
    let otn = &body.out_trade_no;
    crate::pan::refuse(otn, "out_trade_no")?;
    if otn.is_empty() || otn.len() > 64 || !otn.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            "invalid_parameter",
            "out_trade_no must be 1 to 64 visible ASCII characters",
        )
        .with_param("out_trade_no"));
    }
    let currency = parse_currency(&body.currency)?;
    if merchant.currency != currency.numeric() {
        return Err(Error::invalid(
            "invalid_currency",
            "the order must be in the merchant's currency",
        )
        .with_param("currency"));
    }
    let amount = parse_positive(&body.amount, currency, "amount")?;
    check_text(&body.description, "description")?;
    if let Some(url) = &body.return_url {
        crate::pan::refuse(url, "return_url")?;
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && url.len() <= 2048
            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(Error::invalid(
                "invalid_parameter",
                "return_url must be an http(s) URL of at most 2048 characters",
            )
            .with_param("return_url"));
        }
    }
    let expires_in = body.expires_in_s.unwrap_or(EXPIRES_IN_S_DEFAULT);
    if !(1..=EXPIRES_IN_S_MAX).contains(&expires_in) {
        return Err(Error::invalid(
            "invalid_parameter",
            format!("expires_in_s must be 1 to {EXPIRES_IN_S_MAX}"),
        )
        .with_param("expires_in_s"));
    }
    let store = state.store()?;
    let index = records::order_by_out_trade_no_key(merchant.id, otn);
    if records::read::<u128>(store, &index)?.is_some() {
        return Err(Error::conflict(
            "duplicate_out_trade_no",
            "this merchant already has an order with that out_trade_no",
        )
        .with_param("out_trade_no"));
    }
    let now = now_ns();
    let order = Order {
        id: new_id(),
        merchant: merchant.id,
        out_trade_no: otn.clone(),
        amount,
        currency: currency.numeric(),
        description: body.description,
        return_url: body.return_url,
        status: OrderStatus::Open,
        payment: None,
        attempts: 0,
        expires_at_ns: now.saturating_add(expires_in.saturating_mul(1_000_000_000)),
        created_at_ns: now,
        closed_at_ns: None,
        close_reason: None,
        extra: records::Tail(()),
    };
    // One order per out_trade_no even when two arrive at once: the index is claimed under
    // the merchant's order turn.
    let _turn = take_turn(&state.order_turns, merchant.id).await;
    if records::read::<u128>(store, &index)?.is_some() {
        return Err(Error::conflict(
            "duplicate_out_trade_no",
            "this merchant already has an order with that out_trade_no",
        )
        .with_param("out_trade_no"));
    }
    let answer = serde_json::to_vec(&view(state, &order)).expect("an order view serializes");
    let mut recs = vec![
        (records::order_key(order.id), records::encode(&order)),
        (index, records::encode(&order.id)),
        marker(&order, true),
    ];
    recs.extend(idem.map(|g| g.record(&answer)));
    state.ledger()?.write_records(recs).await?;
    Ok(answer)
}

/// Order `id_text` as `caller` may see it.
pub fn load(state: &Platform, caller: &Caller, id_text: &str) -> Result<Order> {
    let not_found = || Error::not_found(format!("no order {id_text:?}"));
    let id = records::parse_id(id_text, "ord_").ok_or_else(not_found)?;
    let o: Order = records::read(state.store()?, &records::order_key(id))?.ok_or_else(not_found)?;
    if !caller.may_see(o.merchant) {
        return Err(not_found());
    }
    Ok(o)
}

pub fn get(state: &Platform, caller: &Caller, id_text: &str) -> Result<OrderView> {
    Ok(view(state, &load(state, caller, id_text)?))
}

/// The QR code of order `id_text`'s checkout URL, as an SVG image (what a merchant prints or
/// shows for the customer to scan).
pub fn qr_svg(state: &Platform, caller: &Caller, id_text: &str) -> Result<String> {
    let o = load(state, caller, id_text)?;
    let url = view(state, &o).checkout_url;
    let code = qrcode::QrCode::with_error_correction_level(url.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| Error::storage(format!("the checkout URL does not fit a QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

/// The `n`-th attempt's payment of order `o`, if it was created.
fn attempt(state: &Platform, o: &Order, n: u32) -> Result<Option<records::Payment>> {
    let store = state.store()?;
    let otn = format!("{}-{n}", order_id_text(o.id));
    let Some(id) = records::read::<u128>(store, &records::out_trade_no_key(o.merchant, &otn))?
    else {
        return Ok(None);
    };
    crate::shelf::payment(store, id)
}

/// The order's record, paid or closed, with its webhook event (the order's view).
fn final_records(state: &Platform, o: &Order) -> Vec<(Vec<u8>, Vec<u8>)> {
    let body = serde_json::to_vec(&view(state, o)).expect("an order view serializes");
    let kind = if o.status == OrderStatus::Paid {
        "order.paid"
    } else {
        "order.closed"
    };
    let mut recs = vec![
        (records::order_key(o.id), records::encode(o)),
        marker(o, false),
    ];
    recs.extend(crate::webhooks::event_records(
        state,
        o.merchant,
        kind,
        &order_id_text(o.id),
        &body,
    ));
    recs
}

/// Under the order's turn: applies the last attempt's outcome (a succeeded payment makes the
/// order paid, durably) and refuses while it is unknown.
async fn settle(state: &Platform, o: &mut Order) -> Result<()> {
    if o.status != OrderStatus::Open || o.attempts == 0 {
        return Ok(());
    }
    match attempt(state, o, o.attempts)? {
        Some(p) if p.status == PaymentStatus::Succeeded => {
            o.status = OrderStatus::Paid;
            o.payment = Some(p.id);
            state
                .ledger()?
                .write_records(final_records(state, o))
                .await?;
            Ok(())
        }
        Some(p) if p.status == PaymentStatus::Processing => Err(Error::conflict(
            "order_payment_in_progress",
            format!(
                "payment {} of this order is still in progress",
                crate::payments::payment_id_text(p.id)
            ),
        )),
        _ => Ok(()),
    }
}

fn refuse_final(o: &Order) -> Result<()> {
    match o.status {
        OrderStatus::Open => Ok(()),
        OrderStatus::Paid => Err(Error::conflict(
            "order_already_paid",
            format!(
                "the order is paid (payment {})",
                o.payment
                    .map(crate::payments::payment_id_text)
                    .unwrap_or_default()
            ),
        )),
        OrderStatus::Closed => Err(Error::conflict(
            "order_closed",
            format!(
                "the order is closed ({})",
                o.close_reason.as_deref().unwrap_or("closed")
            ),
        )),
    }
}

/// Closes `o` (under its turn) for `reason`, durably with its event.
async fn close_now(state: &Platform, o: &mut Order, reason: &str) -> Result<()> {
    o.status = OrderStatus::Closed;
    o.closed_at_ns = Some(now_ns());
    o.close_reason = Some(reason.to_string());
    state
        .ledger()?
        .write_records(final_records(state, o))
        .await?;
    Ok(())
}

/// Closes order `id_text` unpaid (the merchant). A paid order cannot close (`409
/// order_already_paid`); a closed one answers as it is.
pub async fn close(state: &Platform, caller: &Caller, id_text: &str) -> Result<OrderView> {
    let o = load(state, caller, id_text)?;
    let _turn = take_turn(&state.order_turns, o.id).await;
    let mut o = load(state, caller, id_text)?;
    settle(state, &mut o).await?;
    match o.status {
        OrderStatus::Closed => return Ok(view(state, &o)),
        OrderStatus::Paid => refuse_final(&o)?,
        OrderStatus::Open => {}
    }
    let reason = if now_ns() >= o.expires_at_ns {
        "expired"
    } else {
        "closed"
    };
    close_now(state, &mut o, reason).await?;
    Ok(view(state, &o))
}

/// Pays order `id_text` (the merchant's API; the checkout calls the same): one attempt, an
/// ordinary payment of the order's amount. Returns the payment's answer (`201`, succeeded or
/// failed; a failed one leaves the order open for another attempt).
pub async fn pay(
    state: &Arc<Platform>,
    merchant: &records::Merchant,
    id_text: &str,
    body: PayOrder,
) -> Result<Vec<u8>> {
    let caller = Caller::Merchant(Box::new(merchant.clone()));
    let o = load(state, &caller, id_text)?;
    let _turn = take_turn(&state.order_turns, o.id).await;
    let mut o = load(state, &caller, id_text)?;
    settle(state, &mut o).await?;
    refuse_final(&o)?;
    if now_ns() >= o.expires_at_ns {
        close_now(state, &mut o, "expired").await?;
        return Err(Error::conflict("order_expired", "the order has expired"));
    }
    // The attempt counts before its payment exists: a crash in between leaves an attempt
    // with no payment, which the next change passes over.
    o.attempts += 1;
    state
        .ledger()?
        .write_records(vec![(records::order_key(o.id), records::encode(&o))])
        .await?;
    let currency = currency_of(&o);
    let mut metadata = BTreeMap::new();
    metadata.insert("order_id".to_string(), order_id_text(o.id));
    let payment = CreatePayment {
        out_trade_no: format!("{}-{}", order_id_text(o.id), o.attempts),
        amount: format_minor(o.amount, currency),
        currency: currency.code().to_string(),
        payment_method: body.payment_method,
        description: o.description.clone(),
        metadata: Some(metadata),
        payer_ip: body.payer_ip,
        device_id: body.device_id,
        splits: None,
        coupon_id: body.coupon_id,
        capture: None,
    };
    let id = new_id();
    let answer = crate::payments::create(state, merchant, id, payment, None, |_| {}).await?;
    // Applied now when it succeeded (an outcome still unknown is applied by the next
    // change: `settle`).
    match settle(state, &mut o).await {
        Ok(()) | Err(Error::Conflict { .. }) => Ok(answer),
        Err(e) => Err(e),
    }
}

/// One expiry pass: every open order whose expiry passed is closed `expired` (one at a
/// time, under its turn). Returns how many closed.
pub async fn expiry_pass(state: &Platform) -> Result<usize> {
    let end = records::order_expiry_key(now_ns(), u128::MAX);
    let (due, _) = open_markers(state, records::prefix::ORDER_EXPIRY, Some(&end), usize::MAX)?;
    let mut closed = 0;
    for id in due {
        let _turn = take_turn(&state.order_turns, id).await;
        let Some(mut o) = records::read::<Order>(state.store()?, &records::order_key(id))? else {
            continue;
        };
        // A payment of unknown outcome keeps it until that is known.
        if settle(state, &mut o).await.is_err() {
            continue;
        }
        if o.status == OrderStatus::Open {
            close_now(state, &mut o, "expired").await?;
            closed += 1;
        } else {
            // Paid or closed meanwhile: its marker is resolved with it; an old one is
            // resolved here.
            state
                .ledger()?
                .write_records(vec![marker(&o, false)])
                .await?;
        }
    }
    Ok(closed)
}

/// What is outstanding (open orders, authorizations awaiting capture), as the ops page shows
/// it: how many, their amounts per currency, the soonest expiry. At most `cap` are read (the
/// soonest to expire first); `capped` says there may be more.
#[derive(Serialize, Default)]
pub struct Outstanding {
    pub count: usize,
    /// `[currency, amount]` pairs.
    pub amounts: Vec<(String, String)>,
    pub next_expiry: Option<String>,
    pub capped: bool,
}

impl Outstanding {
    /// Adds one of `amount` minor units in `currency` expiring at `expires_at_ns`.
    pub fn add(
        &mut self,
        sums: &mut BTreeMap<u16, i64>,
        currency: u16,
        amount: i64,
        expires_at_ns: u64,
    ) {
        if self.count == 0 {
            self.next_expiry = Some(records::time_text(expires_at_ns));
        }
        self.count += 1;
        let sum = sums.entry(currency).or_default();
        *sum = sum.saturating_add(amount);
    }

    /// The amounts as text, from `sums`.
    pub fn finish(mut self, sums: BTreeMap<u16, i64>) -> Outstanding {
        self.amounts = sums
            .into_iter()
            .filter_map(|(c, minor)| {
                Currency::from_numeric(c).map(|c| (c.code().to_string(), format_minor(minor, c)))
            })
            .collect();
        self
    }
}

/// The ids under the open markers of expiry prefix `prefix` before key `end` (all of them:
/// `None`), soonest first, at most `cap` (and whether there were more).
pub fn open_markers(
    state: &Platform,
    prefix: &[u8],
    end: Option<&[u8]>,
    cap: usize,
) -> Result<(Vec<u128>, bool)> {
    let mut ids = Vec::new();
    let mut capped = false;
    let all = [prefix, &[0xff; 32]].concat();
    state
        .store()?
        .for_each_aux_range(prefix, end.unwrap_or(&all), |k, v| {
            let open =
                storage::schema::split_expiring(v).is_some_and(|(_, payload)| payload == [1]);
            if open {
                if ids.len() == cap {
                    capped = true;
                } else if let Some(id) = k.get(k.len() - 16..) {
                    ids.push(u128::from_be_bytes(id.try_into().expect("16 bytes")));
                }
            }
            Ok(())
        })?;
    Ok((ids, capped))
}

/// The open orders (the ops page).
pub fn outstanding(state: &Platform, cap: usize) -> Result<Outstanding> {
    let (ids, capped) = open_markers(state, records::prefix::ORDER_EXPIRY, None, cap)?;
    let mut out = Outstanding {
        capped,
        ..Outstanding::default()
    };
    let mut sums = BTreeMap::new();
    for id in ids {
        if let Some(o) = records::read::<Order>(state.store()?, &records::order_key(id))? {
            if o.status == OrderStatus::Open {
                out.add(&mut sums, o.currency, o.amount, o.expires_at_ns);
            }
        }
    }
    Ok(out.finish(sums))
}

/// Closes expired orders in the background, from the store's markers (so timers resume
/// after a restart).
pub fn spawn_expiry(state: Arc<Platform>) {
    actix_rt::spawn(async move {
        loop {
            if let Err(e) = expiry_pass(&state).await {
                tracing::error!(%e, "the order expiry pass failed");
            }
            actix_rt::time::sleep(EXPIRY_TICK).await;
        }
    });
}

//! Refunds: money back from the merchant (and the platform's fee, pro rata) to the payer,
//! never above the payment, once per `out_refund_no`; a card payment's through the channel
//! that charged it, with status sync when the channel does not answer.

use std::sync::Arc;
use std::time::Duration;

use engine::money::{format_minor, pro_rata_minor};
use engine::{
    AccountId, Currency, PlatformRole, Posting, Timestamp, Transfer, TransferId, TransferKind,
};
use serde::{Deserialize, Serialize};

use crate::accounts::{check_text, parse_positive};
use crate::idempotency::Guard;
use crate::merchants::Caller;
use crate::payments::payment_id_text;
use crate::platform::{claim, new_id, now_ns, Platform};
use crate::records::{self, Payment, PaymentStatus, Refund};
use crate::{Error, Result};

/// A refund request.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    /// Default: the whole unrefunded rest.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "5.00", pattern = r"^[0-9]+(\.[0-9]+)?$", max_length = 40)
    )]
    pub amount: Option<String>,
    /// Unique per payment.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[!-~]{1,64}$"))]
    pub out_refund_no: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub reason: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefundView {
    id: String,
    payment_id: String,
    out_refund_no: String,
    amount: String,
    status: &'static str,
    failure_code: Option<String>,
    reason: Option<String>,
    created_at: String,
    /// (extension) A coupon payment's refund: of `amount`, what goes back to the payer; the
    /// rest (the coupon's share, pro rata) goes back to the coupon's stock.
    #[serde(skip_serializing_if = "Option::is_none")]
    to_payer: Option<String>,
}

pub fn view(r: &Refund, currency: Currency) -> RefundView {
    RefundView {
        id: format!("re_{:032x}", r.id),
        payment_id: payment_id_text(r.payment),
        out_refund_no: r.out_refund_no.clone(),
        amount: format_minor(r.amount, currency),
        status: match r.status {
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            // A refund is never authorized or canceled (those are two-phase payments').
            PaymentStatus::Processing | PaymentStatus::Authorized => "processing",
            PaymentStatus::Canceled => "failed",
        },
        failure_code: r.failure_code.clone(),
        reason: r.reason.clone(),
        created_at: records::time_text(r.created_at_ns),
        to_payer: (r.coupon_part.0 != 0)
            .then(|| format_minor(r.amount - r.coupon_part.0, currency)),
    }
}

/// A refund's postings: `source` (the payer's account, or our receivable at the channel
/// that charged the card) gives `amount` back; the platform's fee income returns
/// `fee_part`, each split receiver its part (`split_parts`: receiver, part) and the
/// merchant the rest. A card refund's channel returns part of its fee
/// (`channel_fee`: the channel's fee account and the part): the receivable gives that much
/// less, and the cost of channel fees falls by it.
pub fn refund_postings(
    source: AccountId,
    merchant: AccountId,
    currency: Currency,
    (amount, fee_part): (i64, i64),
    split_parts: &[(AccountId, i64)],
    channel_fee: Option<(AccountId, i64)>,
) -> Vec<Posting> {
    let returned = channel_fee.map_or(0, |(_, part)| part);
    let mut postings = vec![Posting::new(source, currency, amount - returned)];
    if let Some((account, part)) = channel_fee.filter(|(_, part)| *part != 0) {
        postings.push(Posting::new(account, currency, part));
    }
    let merchant_part = amount - fee_part;
    if merchant_part != 0 {
        postings.push(Posting::new(merchant, currency, -merchant_part));
    }
    if fee_part > 0 {
        postings.push(Posting::new(
            AccountId::platform(PlatformRole::FeeIncome, currency.numeric()),
            currency,
            -fee_part,
        ));
    }
    let taken: Vec<(AccountId, i64)> = split_parts.iter().map(|(a, p)| (*a, -p)).collect();
    Transfer::new(TransferId(0), TransferKind::Refund, postings, Timestamp(0))
        .with_splits(merchant, &taken)
        .postings
}

/// A refund's parts of its payment's shares, with their receivers.
pub fn split_parts(r: &Refund, p: &Payment) -> Vec<(AccountId, i64)> {
    p.splits
        .0
        .iter()
        .zip(&r.split_parts.0)
        .map(|(s, part)| (s.account, *part))
        .collect()
}

/// The webhook event of refund `r` as it now stands (`body`: its JSON view).
pub fn refund_events(
    state: &Platform,
    merchant: u128,
    r: &Refund,
    body: &[u8],
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let kind = match r.status {
        PaymentStatus::Succeeded => "refund.succeeded",
        PaymentStatus::Failed => "refund.failed",
        PaymentStatus::Processing | PaymentStatus::Authorized => "refund.processing",
        PaymentStatus::Canceled => "refund.failed",
    };
    crate::webhooks::event_records(state, merchant, kind, &format!("re_{:032x}", r.id), body)
}

/// Reverses postings (a compensating transfer).
pub fn reversed(postings: &[Posting]) -> Vec<Posting> {
    postings
        .iter()
        .map(|p| Posting {
            amount: -p.amount,
            ..*p
        })
        .collect()
}

pub fn conflict(code: &'static str, message: String) -> Error {
    Error::conflict(code, message)
}

/// Renders a refund state's records (with the payment) and its answer.
pub type RecordsFor<'a> =
    dyn Fn(&Refund, &Payment) -> (crate::card_payments::Records, Vec<u8>) + 'a;

/// A card payment's refund on its way through the channel.
pub struct ChannelRefund {
    pub endpoint: String,
    pub charge_request_id: String,
    /// The postings: the channel receivable gives, the merchant and the fee return.
    pub transfer: Transfer,
    pub refund: Refund,
    /// The payment with the refund counted, and as it was.
    pub payment: Payment,
    pub before: Payment,
}

/// Books the refund first (so the merchant's money is taken before the customer's is
/// returned), then asks the channel. Refunded: done. Refused or unreachable (definitely not
/// refunded): a compensating transfer puts the money back and the refund fails. No answer:
/// the refund stays processing (money is booked as on its way back).
pub async fn through_channel(
    state: &Arc<Platform>,
    c: ChannelRefund,
    records_for: &RecordsFor<'_>,
) -> Result<Vec<u8>> {
    let ledger = state.ledger()?;
    let ChannelRefund {
        endpoint,
        charge_request_id,
        transfer,
        mut refund,
        payment,
        before,
    } = c;
    refund.status = PaymentStatus::Processing;
    let (mut records, answer) = records_for(&refund, &payment);
    // Durable before the channel can move money: a crash from here on leaves the refund
    // processing, and a marker to resume its status sync from.
    records.push(open_refund_record(refund.id));
    let reversal = reversed(&transfer.postings);
    if let Err(reject) = ledger.transfer_with(transfer, records).await? {
        refund.status = PaymentStatus::Failed;
        refund.failure_code = Some(reject.code().to_string());
        let (records, body) = records_for(&refund, &before);
        ledger.write_records(records).await?;
        state.refund_reached(&refund, payment.currency);
        return Ok(body);
    }
    let sent = state
        .channel_http
        .post(
            &format!("{}/refunds", endpoint.trim_end_matches('/')),
            Some(&crate::channels::wire::RefundRequest {
                request_id: format!("re_{:032x}", refund.id),
                charge_request_id,
                amount_minor: refund.amount,
            }),
            state.settings.channel_timeout,
        )
        .await;
    use crate::channels::wire::{ChargeStatus, RefundAnswer};
    let unknown = |state: &Arc<Platform>| {
        // No answer (or one we cannot read): booked and processing; the status sync asks
        // the channel what it did.
        state.refund_reached(&refund, payment.currency);
        spawn_sync(state.clone(), refund.id);
        Ok(answer.clone())
    };
    let refused = match sent {
        Ok(resp) if resp.answered() => match resp.json::<RefundAnswer>() {
            Ok(a) if a.status == ChargeStatus::Succeeded => None,
            Ok(_) => Some("channel_declined"),
            Err(_) => return unknown(state),
        },
        Ok(_) => Some("channel_unavailable"),
        Err(e) if e.is_connect() => Some("channel_unavailable"),
        Err(_) => return unknown(state),
    };
    match refused {
        None => {
            refund.status = PaymentStatus::Succeeded;
            let (records, body) = records_for(&refund, &payment);
            ledger.write_records(records).await?;
            state.refund_reached(&refund, payment.currency);
            Ok(body)
        }
        Some(code) => {
            refund.status = PaymentStatus::Failed;
            refund.failure_code = Some(code.to_string());
            let (records, body) = records_for(&refund, &before);
            let compensation = Transfer::new(
                TransferId(new_id()),
                TransferKind::Refund,
                reversal,
                Timestamp(0),
            );
            match ledger.transfer_with(compensation, records).await? {
                Ok(_) => {
                    state.refund_reached(&refund, payment.currency);
                    Ok(body)
                }
                Err(reject) => {
                    tracing::error!(refund = refund.id, %reject, "a refused card refund could not be reversed");
                    Err(Error::storage("the refund was refused by the channel and its reversal failed; an operator must look at it"))
                }
            }
        }
    }
}

/// How long an open-refund marker is kept (read only at start).
const OPEN_REFUND_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// How many times a card refund with no answer is asked about (every `status_sync_ms`).
const SYNC_ATTEMPTS: u32 = 7_200;

/// The marker of a card refund the channel may not have answered: written with its
/// booking, read at start to resume status sync. Expiring, so resolved ones go by themselves.
fn open_refund_record(refund: u128) -> (Vec<u8>, Vec<u8>) {
    let expires = now_ns().saturating_add(OPEN_REFUND_KEEP.as_nanos() as u64);
    (
        records::open_refund_key(refund),
        storage::schema::expiring_value(expires, &[1]),
    )
}

/// At start: every card refund still processing is asked about again.
pub fn resume(state: &Arc<Platform>, store: &storage::Store) -> Result<usize, String> {
    let prefix = records::prefix::OPEN_REFUND;
    let ids = records::ids_with_prefix(store, prefix, 1_000_000).map_err(|e| e.to_string())?;
    let mut resumed = 0;
    for id in ids {
        let refund =
            records::read::<Refund>(store, &records::refund_key(id)).map_err(|e| e.to_string())?;
        if refund.is_some_and(|r| r.status == PaymentStatus::Processing) {
            spawn_sync(state.clone(), id);
            resumed += 1;
        }
    }
    Ok(resumed)
}

/// The channel of a card payment's refund: (endpoint, channel number).
fn channel_of(state: &Platform, payment: &Payment) -> Option<(String, u32)> {
    let (channel, _) = payment.card.0.as_ref()?.channel.clone()?;
    let entry = state.channels.get(&channel)?;
    let rt = entry.value().lock().ok()?;
    Some((rt.record().endpoint.clone(), rt.record().number))
}

/// Asks the channel about a card refund that got no answer until it says; then marks it
/// succeeded, or reverses its booking and fails it.
fn spawn_sync(state: Arc<Platform>, refund_id: u128) {
    actix_rt::spawn(async move {
        let request_id = engine::ids::prefixed_hex("re_", refund_id);
        for _ in 0..SYNC_ATTEMPTS {
            actix_rt::time::sleep(state.settings.status_sync).await;
            let endpoint = match read_refund_and_payment(&state, refund_id) {
                Ok(Some((refund, payment))) if refund.status == PaymentStatus::Processing => {
                    match channel_of(&state, &payment) {
                        Some((endpoint, _)) => endpoint,
                        None => continue,
                    }
                }
                Ok(_) => return,
                Err(_) => continue,
            };
            let asked = state
                .channel_http
                .get(
                    &format!("{}/refunds/{request_id}", endpoint.trim_end_matches('/')),
                    state.settings.channel_timeout,
                )
                .await;
            use crate::channels::wire::{ChargeStatus, RefundAnswer};
            let refused = match asked {
                // The request never reached the channel: definitely not refunded.
                Ok(r) if r.unknown() => Some("channel_unavailable"),
                Ok(r) if r.answered() => match r.json::<RefundAnswer>() {
                    Ok(a) if a.status == ChargeStatus::Succeeded => None,
                    Ok(_) => Some("channel_declined"),
                    Err(_) => continue,
                },
                _ => continue,
            };
            match settle(&state, refund_id, refused).await {
                Ok(true) => return,
                Ok(false) => continue,
                Err(e) => {
                    tracing::error!(refund = %request_id, %e, "refund status sync could not record the outcome");
                }
            }
        }
        tracing::error!(refund = %request_id, "no status from the channel; the refund stays processing");
    });
}

pub fn read_refund_and_payment(
    state: &Platform,
    refund_id: u128,
) -> Result<Option<(Refund, Payment)>> {
    let store = state.store()?;
    let Some(refund) = records::read::<Refund>(store, &records::refund_key(refund_id))? else {
        return Ok(None);
    };
    let payment = records::read::<Payment>(store, &records::payment_key(refund.payment))?;
    Ok(payment.map(|p| (refund, p)))
}

/// Records what the channel finally said about a processing card refund (`None`: refunded;
/// else the failure code), once, under the payment's refund claim. `false`: another refund
/// of the payment holds the claim now; try again later.
async fn settle(state: &Platform, refund_id: u128, refused: Option<&'static str>) -> Result<bool> {
    let Some((_, payment)) = read_refund_and_payment(state, refund_id)? else {
        return Ok(true);
    };
    let Some(_claim) = claim(&state.refund_claims, payment.id) else {
        return Ok(false);
    };
    // Re-read under the claim.
    let Some((mut refund, mut payment)) = read_refund_and_payment(state, refund_id)? else {
        return Ok(true);
    };
    if refund.status != PaymentStatus::Processing {
        return Ok(true);
    }
    let currency = Currency::from_numeric(payment.currency)
        .ok_or_else(|| Error::storage("a payment with an unknown currency"))?;
    let ledger = state.ledger()?;
    let with_events = |refund: &Refund, mut records: Vec<(Vec<u8>, Vec<u8>)>| {
        if state.webhook_endpoints.contains_key(&payment.merchant) {
            let body =
                serde_json::to_vec(&view(refund, currency)).expect("a refund view serializes");
            records.extend(refund_events(state, payment.merchant, refund, &body));
        }
        records
    };
    match refused {
        None => {
            refund.status = PaymentStatus::Succeeded;
            ledger
                .write_records(with_events(
                    &refund,
                    vec![(records::refund_key(refund.id), records::encode(&refund))],
                ))
                .await?;
        }
        Some(code) => {
            let store = state.store()?;
            let merchant: records::Merchant =
                records::read(store, &records::merchant_key(payment.merchant))?
                    .ok_or_else(|| Error::storage("the payment's merchant is missing"))?;
            let (_, number) = channel_of(state, &payment)
                .ok_or_else(|| Error::storage("the payment's channel is not configured"))?;
            let source = AccountId::platform_at_channel(
                PlatformRole::ChannelReceivable,
                number,
                currency.numeric(),
            );
            let booked = refund_postings(
                source,
                merchant.pending(),
                currency,
                (refund.amount, refund.fee_part),
                &split_parts(&refund, &payment),
                Some((
                    AccountId::platform_at_channel(
                        PlatformRole::ChannelFees,
                        number,
                        currency.numeric(),
                    ),
                    refund.channel_fee_part.0,
                )),
            );
            refund.status = PaymentStatus::Failed;
            refund.failure_code = Some(code.to_string());
            payment.refunded -= refund.amount;
            let compensation = Transfer::new(
                TransferId(new_id()),
                TransferKind::Refund,
                reversed(&booked),
                Timestamp(0),
            );
            let records = with_events(
                &refund,
                vec![
                    (records::refund_key(refund.id), records::encode(&refund)),
                    (records::payment_key(payment.id), records::encode(&payment)),
                ],
            );
            if let Err(reject) = ledger.transfer_with(compensation, records).await? {
                tracing::error!(refund = refund.id, %reject, "a refused card refund could not be reversed");
                return Err(Error::storage(
                    "the refund was refused by the channel and its reversal failed",
                ));
            }
        }
    }
    state.refund_reached(&refund, payment.currency);
    Ok(true)
}

/// `re_` + 32 hex digits.
pub fn parse_refund_id(text: &str) -> Option<u128> {
    records::parse_id(text, "re_")
}

/// What a refund request answers.
pub enum Created {
    /// A new refund (succeeded, failed or processing): its view as JSON, as written with it.
    New(Vec<u8>),
    /// The `out_refund_no` was used before: that refund, unchanged.
    Existing(RefundView),
}

/// Refunds payment `payment` (its id text; the caller's, or any for the operator): its amount
/// (default the whole unrefunded rest), once per `out_refund_no`, durably with the
/// idempotency record of its answer. `noted` hears when the payment is known.
pub async fn create(
    state: &Arc<Platform>,
    caller: &Caller,
    payment: &str,
    body: CreateRefund,
    idem: Option<&Guard<'_>>,
    noted: impl FnOnce(),
) -> Result<Created> {
    let store = state.store()?;
    let otn = &body.out_refund_no;
    crate::pan::refuse(otn, "out_refund_no")?;
    if otn.is_empty() || otn.len() > 64 || !otn.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            "invalid_parameter",
            format!("out_refund_no must be 1 to 64 visible ASCII characters, got {otn:?}"),
        )
        .with_param("out_refund_no"));
    }
    check_text(&body.reason, "reason")?;
    let payment = crate::payments::load_visible(state, caller, payment).await?;
    noted();
    let open = state.ledger()?.period().map(|p| p.open);
    let window = state.settings.refund_window_days;
    if !crate::shelf::refundable(&payment, open, window, crate::platform::now_ns()) {
        return Err(conflict(
            "refund_window_expired",
            format!(
                "payment {} is older than the refund window ({window} business days)",
                payment_id_text(payment.id)
            ),
        ));
    }
    // One refund of a payment at a time: its refunded total is read, checked and rewritten.
    let _claim = claim(&state.refund_claims, payment.id).ok_or_else(|| {
        conflict(
            "refund_in_progress",
            "another refund of this payment is in progress; retry".to_string(),
        )
    })?;
    // Re-read under the claim: the refunded total may have moved since.
    let mut payment: Payment = records::read(store, &records::payment_key(payment.id))?
        .ok_or_else(|| Error::storage("the payment vanished"))?;
    let currency =
        Currency::from_numeric(payment.currency).expect("stored payments carry an active currency");

    let index_key = records::out_refund_no_key(payment.id, otn);
    if let Some(existing) = records::read::<u128>(store, &index_key)? {
        // The same out_refund_no is the same refund: answer it again, refund nothing.
        let refund: Refund = records::read(store, &records::refund_key(existing))?
            .ok_or_else(|| Error::storage("an indexed refund is missing"))?;
        return Ok(Created::Existing(view(&refund, currency)));
    }
    if payment.status != PaymentStatus::Succeeded {
        return Err(conflict(
            "payment_not_refundable",
            format!("payment {} did not succeed", payment_id_text(payment.id)),
        ));
    }
    let rest = payment.amount - payment.refunded;
    let amount = match &body.amount {
        Some(text) => parse_positive(text, currency, "amount")?,
        None => rest,
    };
    if amount > rest || rest == 0 {
        return Err(Error::invalid(
            "refund_exceeds_payment",
            format!(
                "{} is more than the unrefunded {}",
                format_minor(amount, currency),
                format_minor(rest, currency)
            ),
        )
        .with_param("amount"));
    }
    let fee_part = pro_rata_minor(payment.fee, payment.refunded + amount, payment.amount)
        - pro_rata_minor(payment.fee, payment.refunded, payment.amount);
    // Each share gives back its part pro rata, on cumulative amounts (`engine::splits`).
    let shares: Vec<i64> = payment.splits.0.iter().map(|s| s.amount).collect();
    let parts = engine::splits::take_back(
        &shares,
        payment.refunded,
        payment.refunded + amount,
        payment.amount,
    );
    let merchant: records::Merchant =
        records::read(store, &records::merchant_key(payment.merchant))?
            .ok_or_else(|| Error::storage("the payment's merchant is missing"))?;
    // Money goes back to whoever paid: the payer's account, or for a card payment the
    // card, through the channel that charged it (our position there pays for it).
    let channel = match payment.card.0.as_ref() {
        None => None,
        Some(card) => {
            let (channel_id, _) = card.channel.clone().ok_or_else(|| {
                conflict(
                    "payment_not_refundable",
                    "the payment has no channel".into(),
                )
            })?;
            let call = state
                .channels
                .get(&channel_id)
                .and_then(|c| {
                    c.value()
                        .lock()
                        .ok()
                        .map(|rt| (rt.record().number, rt.record().endpoint.clone()))
                })
                .ok_or_else(|| Error::storage("the payment's channel is not configured"))?;
            Some((call, card.request_id.clone().unwrap_or_default()))
        }
    };
    let refund_source = match &channel {
        None => payment.payer,
        Some(((number, _), _)) => AccountId::platform_at_channel(
            PlatformRole::ChannelReceivable,
            *number,
            currency.numeric(),
        ),
    };
    let receivers: Vec<(AccountId, i64)> = payment
        .splits
        .0
        .iter()
        .zip(&parts)
        .map(|(s, part)| (s.account, *part))
        .collect();
    // The channel returns its fee on the payment pro rata, on cumulative amounts, half up
    // (as its statement lists it).
    let channel_fee_part = match payment.card.0.as_ref() {
        Some(card) if channel.is_some() => {
            pro_rata_minor(card.channel_fee, payment.refunded + amount, payment.amount)
                - pro_rata_minor(card.channel_fee, payment.refunded, payment.amount)
        }
        _ => 0,
    };
    let channel_fees = channel.as_ref().map(|((number, _), _)| {
        (
            AccountId::platform_at_channel(PlatformRole::ChannelFees, *number, currency.numeric()),
            channel_fee_part,
        )
    });
    let mut postings = refund_postings(
        refund_source,
        merchant.pending(),
        currency,
        (amount, fee_part),
        &receivers,
        channel_fees,
    );
    // A coupon payment (issue #18, balance payments only): the refund splits pro rata
    // between the payer and the coupon (`engine::coupons::refund_parts`). The coupon's part
    // goes back to the stock's budget when the platform funded it, and is simply not paid
    // back when the merchant did (the merchant never received it); a refund that completes
    // the payment gives the coupon back while its stock is active and valid.
    let mut coupon_part = 0;
    let mut coupon_return = None;
    if let (Some(used), None) = (payment.coupon.0.clone(), &channel) {
        let (_, to_coupon) =
            engine::coupons::refund_parts(payment.amount, used.discount, payment.refunded, amount);
        let completes = payment.refunded + amount == payment.amount;
        let back = crate::coupons::refund_return(state, &used, to_coupon, completes).await?;
        for p in postings.iter_mut().filter(|p| p.account == refund_source) {
            p.amount -= to_coupon;
        }
        // Where the coupon's part comes from: the merchant keeps back what it never
        // received (merchant-funded), else the stock's budget is paid back.
        let target = match back.budget_target {
            Some(budget) => budget,
            None => merchant.pending(),
        };
        match postings.iter_mut().find(|p| p.account == target) {
            Some(p) => p.amount += to_coupon,
            None if to_coupon != 0 => {
                postings.push(engine::Posting::new(target, currency, to_coupon))
            }
            None => {}
        }
        postings.retain(|p| p.amount != 0);
        coupon_part = to_coupon;
        coupon_return = Some(back);
    }
    let id = new_id();
    let transfer = Transfer::new(TransferId(id), TransferKind::Refund, postings, Timestamp(0));
    let mut refund = Refund {
        id,
        payment: payment.id,
        out_refund_no: otn.clone(),
        amount,
        fee_part,
        status: PaymentStatus::Succeeded,
        failure_code: None,
        reason: body.reason,
        created_at_ns: now_ns(),
        business_date: records::Tail(state.ledger()?.period().map(|p| p.open)),
        split_parts: records::Tail(parts),
        channel_fee_part: records::Tail(channel_fee_part),
        coupon_part: records::Tail(coupon_part),
    };
    let records_for = |r: &Refund, p: &Payment| {
        let answer = serde_json::to_vec(&view(r, currency)).expect("a refund view serializes");
        let mut records = vec![
            (records::refund_key(id), records::encode(r)),
            (index_key.clone(), records::encode(&id)),
            (records::payment_key(p.id), records::encode(p)),
        ];
        records.extend(idem.as_ref().map(|g| g.record(&answer)));
        records.extend(refund_events(state, p.merchant, r, &answer));
        (records, answer)
    };
    let before = payment.clone();
    payment.refunded += amount;
    if let Some(used) = payment.coupon.0.as_mut() {
        used.returned += coupon_part;
    }
    let ledger = state.ledger()?;
    if let Some(((_, endpoint), charge_request_id)) = channel {
        let answer = through_channel(
            state,
            ChannelRefund {
                endpoint,
                charge_request_id,
                transfer,
                refund,
                payment,
                before,
            },
            &records_for,
        )
        .await?;
        return Ok(Created::New(answer));
    }
    let (mut records, mut answer) = records_for(&refund, &payment);
    if let Some(back) = &coupon_return {
        records.extend(back.records.iter().cloned());
    }
    if let Err(reject) = ledger.transfer_with(transfer, records).await? {
        // The merchant cannot cover it (or an account is frozen): a failed refund, durable,
        // and the payment's refunded total unchanged.
        refund.status = PaymentStatus::Failed;
        refund.failure_code = Some(reject.code().to_string());
        let (records, body) = records_for(&refund, &before);
        ledger.write_records(records).await?;
        answer = body;
    }
    state.refund_reached(&refund, payment.currency);
    Ok(Created::New(answer))
}

/// Refund `id_text` (`re_…`) and its payment's currency, if the caller may see it.
pub fn get(state: &Platform, caller: &Caller, id_text: &str) -> Result<RefundView> {
    let not_found = || Error::not_found(format!("no refund {id_text:?}"));
    let id = parse_refund_id(id_text).ok_or_else(not_found)?;
    let store = state.store()?;
    // Hot, else shelved with its payment (`crate::shelf`).
    let refund = crate::shelf::refund(store, id)?.ok_or_else(not_found)?;
    let payment = crate::shelf::payment(store, refund.payment)?.ok_or_else(not_found)?;
    if !caller.may_see(payment.merchant) {
        return Err(not_found());
    }
    let currency =
        Currency::from_numeric(payment.currency).expect("stored payments carry an active currency");
    Ok(view(&refund, currency))
}

/// The most refunds one list answers.
pub const LIST_MAX: usize = 1_000;

/// Payment `payment_id_text`'s refunds, by `out_refund_no` (at most [`LIST_MAX`]), and
/// whether more exist. `noted` hears when the payment is known.
pub async fn list(
    state: &Platform,
    caller: &Caller,
    payment_id_text: &str,
    noted: impl FnOnce(),
) -> Result<(Vec<RefundView>, bool)> {
    let payment = crate::payments::load_visible(state, caller, payment_id_text).await?;
    noted();
    let store = state.store()?;
    let currency =
        Currency::from_numeric(payment.currency).expect("stored payments carry an active currency");
    let prefix = records::out_refund_no_key(payment.id, "");
    let mut ids = Vec::new();
    store
        .for_each_aux_with_prefix(&prefix, LIST_MAX + 1, |_, value| {
            if let Ok(id) = storage::codec::decode::<u128>(storage::codec::Kind::Aux, value) {
                ids.push(id);
            }
            Ok(())
        })
        .map_err(|e| Error::storage(format!("cannot read the refunds: {e}")))?;
    if ids.is_empty()
        && records::read::<Payment>(store, &records::payment_key(payment.id))?.is_none()
    {
        // A shelved payment: its refunds are shelved with it.
        ids = crate::shelf::refund_ids(store, payment.id, LIST_MAX + 1)?;
    }
    let has_more = ids.len() > LIST_MAX;
    ids.truncate(LIST_MAX);
    let mut data = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(r) = crate::shelf::refund(store, id)? {
            data.push(view(&r, currency));
        }
    }
    Ok((data, has_more))
}

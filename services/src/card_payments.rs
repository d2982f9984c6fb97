//! Bank-card payments through the channels (issue #5): route, then for each ranked channel
//! write the attempt durably, call the channel, and act on what it says — charged (one
//! ledger unit: receivable, channel fee, merchant net, platform fee), declined (final),
//! technical failure (definitely not charged: fail over to the next), or no answer (stay
//! `processing` and ask the same channel until it says; never charge elsewhere).

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::routing::{route, CallResult, Candidate, Method, RouteRequest};
use engine::{AccountId, Currency, PlatformRole, Timestamp, Transfer, TransferId};

use crate::channels::wire::{CaptureRequest, ChargeAnswer, ChargeRequest, ChargeStatus};
use crate::payments::payment_id_text;
use crate::platform::{claim, now_ns, Platform};
use crate::records::{self, Payment, PaymentStatus};
use crate::{Error, Result};

/// How long an open-attempt marker is kept (it is only read at start; a payment still
/// processing after this needs an operator).
const OPEN_ATTEMPT_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// The marker of a channel call that may not be resolved: written with the attempt, read at
/// start to resume status sync. Expiring, so resolved ones go by themselves.
fn open_attempt_record(payment: u128) -> (Vec<u8>, Vec<u8>) {
    let expires = now_ns().saturating_add(OPEN_ATTEMPT_KEEP.as_nanos() as u64);
    (
        records::open_attempt_key(payment),
        storage::schema::expiring_value(expires, &[1]),
    )
}

/// At start: every card payment whose last attempt got no answer is asked about again.
pub fn resume(state: &Arc<Platform>, store: &storage::Store) -> Result<usize, String> {
    let prefix = records::prefix::OPEN_ATTEMPT;
    let ids = records::ids_with_prefix(store, prefix, 1_000_000).map_err(|e| e.to_string())?;
    let mut resumed = 0;
    for id in ids {
        let payment = records::read::<Payment>(store, &records::payment_key(id))
            .map_err(|e| e.to_string())?;
        let Some(payment) = payment.filter(|p| p.status == PaymentStatus::Processing) else {
            continue;
        };
        let Some(card) = payment.card.0.clone() else {
            continue;
        };
        let (Some((channel, name)), Some(request_id)) = (card.channel, card.request_id) else {
            continue;
        };
        let Some(call) = state.channels.get(&channel).and_then(|c| {
            c.value().lock().ok().map(|rt| Call {
                id: rt.record().id,
                name: name.clone(),
                endpoint: rt.record().endpoint.clone(),
                number: rt.record().number,
                fee: card.channel_fee,
                notify: rt.record().notify_secret.is_some(),
            })
        }) else {
            continue;
        };
        spawn_sync(state.clone(), payment, call, request_id);
        resumed += 1;
    }
    Ok(resumed)
}

/// Records to write with a payment state (key, value).
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// How many times a charge with no answer is asked about (every `status_sync_ms`).
const SYNC_ATTEMPTS: u32 = 7_200;

/// One channel to try, as routing ranked it.
#[derive(Clone)]
struct Call {
    id: u128,
    name: String,
    endpoint: String,
    number: u32,
    fee: i64,
    /// The channel has a notify_secret: ask it to notify (else its notifications would
    /// only be refused).
    notify: bool,
}

enum Outcome {
    Charged(ChargeAnswer),
    Declined,
    /// Definitely not charged (refused, technical error).
    Failed(&'static str),
    /// No answer: it may or may not have charged.
    Unknown,
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Charged(_) => "charged",
            Outcome::Declined => "declined",
            Outcome::Failed(why) => why,
            Outcome::Unknown => "no_answer",
        }
    }
}

/// The ranked channels for `payment` (and the reasons of those left out), starting the
/// first one's bulkhead slot is left to the caller.
fn plan(
    state: &Platform,
    payment: &Payment,
    currency: Currency,
) -> (Vec<Call>, Vec<(String, String)>) {
    let mut ids: Vec<u128> = state.channels.iter().map(|e| *e.key()).collect();
    ids.sort_unstable();
    let refs: Vec<_> = ids.iter().filter_map(|id| state.channels.get(id)).collect();
    let mut locked: Vec<_> = refs.iter().filter_map(|r| r.value().lock().ok()).collect();
    let mut candidates: Vec<Candidate> = locked.iter_mut().map(|rt| rt.candidate()).collect();
    let req = RouteRequest {
        method: Method::BankCard,
        currency,
        amount_minor: payment.amount,
        at: Timestamp(now_ns()),
        draw: rand::random(),
    };
    let routed = route(&mut candidates, &req, state.settings.routing_policy);
    let calls = routed
        .ranked
        .iter()
        .map(|&i| {
            let r = locked[i].record();
            Call {
                id: r.id,
                name: r.name.clone(),
                endpoint: r.endpoint.clone(),
                number: r.number,
                fee: locked[i].spec().fee(payment.amount),
                notify: r.notify_secret.is_some(),
            }
        })
        .collect();
    let excluded = routed
        .excluded
        .iter()
        .map(|&(i, why)| (locked[i].spec().name.clone(), why.code().to_string()))
        .collect();
    (calls, excluded)
}

fn with_health(
    state: &Platform,
    channel: u128,
    f: impl FnOnce(&mut engine::routing::ChannelHealth),
) {
    if let Some(entry) = state.channels.get(&channel) {
        if let Ok(mut rt) = entry.lock() {
            f(&mut rt.health);
        }
    }
}

/// Calls `c` for `payment`. `ranked`, the routing decision, is given to the payment's first
/// call only: its line says it with the channels left out (the payment's `card.excluded`),
/// rather than a line of its own (a third of a card payment's lines, docs/BENCHMARKS.md).
async fn call(
    state: &Platform,
    c: &Call,
    payment: &Payment,
    request_id: &str,
    ranked: Option<&[&str]>,
) -> Outcome {
    let currency = Currency::from_numeric(payment.currency)
        .map(|c| c.code())
        .unwrap_or("?");
    let started = Instant::now();
    let sent = state
        .channel_http
        .post(
            &format!("{}/charges", c.endpoint.trim_end_matches('/')),
            Some(&ChargeRequest {
                request_id: request_id.to_string(),
                amount_minor: payment.amount,
                currency: currency.to_string(),
                instrument: payment
                    .card
                    .0
                    .as_ref()
                    .map(|card| crate::cards::card_token_text(card.token))
                    .unwrap_or_default(),
                notify_url: c.notify.then(|| {
                    format!(
                        "{}/v1/channels/{}/notifications",
                        state.settings.public_url,
                        crate::channels::channel_id_text(c.id)
                    )
                }),
                // A two-phase payment (issue #19): authorize only.
                capture: payment.authorization.0.is_some().then_some(false),
            }),
            state.settings.channel_timeout,
        )
        .await;
    let outcome = match sent {
        Ok(resp) if resp.answered() => match resp.json::<ChargeAnswer>() {
            Ok(a) if a.status == ChargeStatus::Succeeded && a.amount_minor == payment.amount => {
                Outcome::Charged(a)
            }
            Ok(a)
                if a.status == ChargeStatus::Authorized
                    && payment.authorization.0.is_some()
                    && a.amount_minor == payment.amount =>
            {
                Outcome::Charged(a)
            }
            Ok(a) if a.status == ChargeStatus::Declined => Outcome::Declined,
            // An answer we cannot trust: ask again later rather than guess.
            _ => Outcome::Unknown,
        },
        // The channel answered that it did not charge (technical error, bad request).
        Ok(_) => Outcome::Failed("channel_error"),
        Err(e) if e.is_connect() => {
            // Refused, unreachable, or a TLS handshake that failed (the message says which):
            // nothing was sent, so failing over cannot charge twice.
            tracing::warn!(channel = %c.name, error = %e, "channel not reached");
            Outcome::Failed("connection_refused")
        }
        Err(_) => Outcome::Unknown,
    };
    // What counts against the daily limit: a charge, and (conservatively) a call that may
    // have charged.
    let (result, charged) = match &outcome {
        Outcome::Charged(a) => (CallResult::Answered, a.amount_minor),
        Outcome::Declined => (CallResult::Answered, 0),
        Outcome::Failed(_) => (CallResult::Failed, 0),
        Outcome::Unknown => (CallResult::Failed, payment.amount),
    };
    let elapsed = started.elapsed();
    crate::metrics::channel_call(&c.name, outcome.label(), elapsed);
    tracing::info!(
        channel = %c.name,
        request = %request_id,
        outcome = outcome.label(),
        latency_us = elapsed.as_micros() as u64,
        ranked = ranked.map(tracing::field::debug),
        excluded = ranked.and(payment.card.0.as_ref()).map(|card| tracing::field::debug(&card.excluded)),
        "channel call"
    );
    let latency = elapsed.as_micros() as u64;
    with_health(state, c.id, |h| {
        h.finish(
            Timestamp(now_ns()),
            result,
            latency,
            payment.amount,
            charged,
        )
    });
    outcome
}

/// The channel's own word on its fee for this charge, when its answer carries one within
/// the amount, replaces the fee expected from its configured rate (booked as the channel's
/// fee expense). A difference is logged: reconciliation checks fees against the statement.
fn take_reported_fee(payment: &mut Payment, answer: &ChargeAnswer) {
    let amount = payment.amount;
    let Some(card) = payment.card.0.as_mut() else {
        return;
    };
    match answer.fee_minor {
        Some(fee) if (0..=amount).contains(&fee) => {
            if fee != card.channel_fee {
                tracing::warn!(
                    payment_id = %payment_id_text(payment.id),
                    expected = card.channel_fee,
                    reported = fee,
                    "the channel reports a fee other than its configured rate gives"
                );
            }
            card.channel_fee = fee;
        }
        Some(fee) => tracing::warn!(
            payment_id = %payment_id_text(payment.id),
            reported = fee,
            "the channel reports a fee outside the charge; the configured fee is booked"
        ),
        None => {}
    }
}

/// Records the charge: the payment `succeeded` and the postings, in one durable unit with
/// `extra` records (the idempotency record).
async fn book(
    state: &Platform,
    payment: &mut Payment,
    merchant_account: AccountId,
    channel_number: u32,
    extra: Records,
) -> Result<()> {
    let currency = Currency::from_numeric(payment.currency)
        .ok_or_else(|| Error::storage("a payment with an unknown currency"))?;
    let channel_fee = payment.card.0.as_ref().map(|c| c.channel_fee).unwrap_or(0);
    let mut transfer = Transfer::channel_payment(
        TransferId(payment.id),
        AccountId::platform_at_channel(
            PlatformRole::ChannelReceivable,
            channel_number,
            currency.numeric(),
        ),
        AccountId::platform_at_channel(
            PlatformRole::ChannelFees,
            channel_number,
            currency.numeric(),
        ),
        merchant_account,
        AccountId::platform(PlatformRole::FeeIncome, currency.numeric()),
        currency,
        (payment.amount, channel_fee, payment.fee),
        Timestamp(0),
    )
    .with_splits(merchant_account, &crate::payments::split_legs(payment));
    // Booked on the open date; valued on the date the payment started (a channel's answer
    // after a day-end belongs to the day it was asked on).
    transfer.value_date = payment.business_date.0;
    payment.status = PaymentStatus::Succeeded;
    match state
        .ledger()?
        .transfer_with(transfer, with_payment(payment, extra))
        .await?
    {
        Ok(_) => Ok(()),
        Err(reject) => {
            // The customer was charged but the ledger refuses the credit (the merchant's
            // account was frozen or closed meanwhile): keep it processing for an operator,
            // with the reason, rather than pretend either way.
            payment.status = PaymentStatus::Processing;
            payment.failure_code = Some(format!("charged_but_{}", reject.code()));
            tracing::error!(payment_id = %payment_id_text(payment.id), %reject, "charged by the channel but refused by the ledger");
            write(state, payment, vec![]).await
        }
    }
}

async fn write(state: &Platform, payment: &Payment, extra: Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
    state
        .ledger()?
        .write_records(with_payment(payment, extra))
        .await?;
    Ok(())
}

/// `extra` with `payment`'s record first, unless `extra` writes that record itself (an
/// answer's records carry the payment as answered): a later record of the same key in one
/// unit replaces an earlier one, so the first would only cost its encoding and its write.
fn with_payment(payment: &Payment, extra: Records) -> Records {
    let key = records::payment_key(payment.id);
    if extra.iter().any(|(k, _)| *k == key) {
        return extra;
    }
    let mut recs = Vec::with_capacity(extra.len() + 1);
    recs.push((key, records::encode(payment)));
    recs.extend(extra);
    recs
}

fn fail(payment: &mut Payment, code: &str) {
    payment.fail(code);
}

/// Runs a card payment (in `Processing`, with its card) through the channels. `answer_of`
/// renders the answer for a payment state and the idempotency record to write with it.
/// Returns the payment as it stands when the caller should answer.
pub async fn charge(
    state: &Arc<Platform>,
    mut payment: Payment,
    merchant_account: AccountId,
    answer_of: &dyn Fn(&Payment) -> Records,
    mut first: Records,
) -> Result<Payment> {
    let currency = Currency::from_numeric(payment.currency)
        .ok_or_else(|| Error::storage("a payment with an unknown currency"))?;
    // This request resolves the payment while it talks to the channels: a notification
    // arriving meanwhile finds the claim and leaves the payment to it.
    let _claim = claim(&state.resolving, payment.id);
    let (calls, excluded) = plan(state, &payment, currency);
    if let Some(first) = calls.first() {
        crate::metrics::router_choice(&first.name);
    }
    // Said on the first call's line, or on the warning when no channel is called.
    let mut ranked = Some(calls.iter().map(|c| c.name.as_str()).collect::<Vec<_>>());
    if let Some(card) = payment.card.0.as_mut() {
        card.excluded = excluded;
    }
    // What the first attempt wrote durably with its record (`first`): left out of the
    // answer's records, which would write the same again.
    let mut written = Records::new();
    for (n, c) in calls.iter().enumerate() {
        // Admitted again now, under the channel's lock, and its slot and amount taken in
        // the same step: concurrent payments routed together cannot overshoot the bulkhead
        // or the daily limit (nor can the failover's next channel, ranked earlier).
        let admitted = state.channels.get(&c.id).and_then(|entry| {
            entry.lock().ok().map(|mut rt| {
                let channel = rt.candidate();
                channel
                    .health
                    .try_start(channel.spec, Timestamp(now_ns()), payment.amount)
                    .map_err(|why| why.code())
            })
        });
        if let Err(why) = admitted.unwrap_or(Err("removed")) {
            crate::metrics::router_failover(&c.name, why);
            if let Some(card) = payment.card.0.as_mut() {
                card.attempts.push((c.name.clone(), why.to_string()));
            }
            continue;
        }
        let request_id = format!("{}-{}", payment_id_text(payment.id), n + 1);
        if let Some(card) = payment.card.0.as_mut() {
            card.channel = Some((c.id, c.name.clone()));
            card.request_id = Some(request_id.clone());
            card.channel_fee = c.fee;
        }
        // Durable before the channel can move money: a crash from here on leaves a record
        // that names the channel and the request to ask about, and a marker to resume from.
        let mut with = std::mem::take(&mut first);
        if written.is_empty() {
            written.clone_from(&with);
        }
        with.push(open_attempt_record(payment.id));
        if let Err(e) = write(state, &payment, with).await {
            with_health(state, c.id, |h| h.abandon(payment.amount));
            return Err(e);
        }
        let outcome = call(state, c, &payment, &request_id, ranked.take().as_deref()).await;
        let label = outcome.label();
        if let Some(card) = payment.card.0.as_mut() {
            card.attempts.push((c.name.clone(), label.to_string()));
        }
        match outcome {
            Outcome::Charged(answer) if answer.status == ChargeStatus::Authorized => {
                // Held on the card: nothing is booked until the capture.
                payment.status = PaymentStatus::Authorized;
                let mut recs = without(answer_of(&payment), &written);
                recs.push(crate::authorizations::marker(&payment, true));
                write(state, &payment, recs).await?;
                return Ok(payment);
            }
            Outcome::Charged(answer) => {
                take_reported_fee(&mut payment, &answer);
                // The answer is of the booked payment (`book` keeps the status it is given
                // unless the ledger refuses, and then writes the payment again).
                payment.status = PaymentStatus::Succeeded;
                let extra = without(answer_of(&payment), &written);
                if let Err(e) = book(state, &mut payment, merchant_account, c.number, extra).await {
                    // Charged but not booked (the store refused the write): the status
                    // sync books it as soon as the store takes writes again.
                    spawn_sync(state.clone(), payment.clone(), c.clone(), request_id);
                    return Err(e);
                }
                return Ok(payment);
            }
            Outcome::Declined => {
                fail(&mut payment, "channel_declined");
                write(state, &payment, without(answer_of(&payment), &written)).await?;
                return Ok(payment);
            }
            Outcome::Failed(why) => {
                crate::metrics::router_failover(&c.name, why);
                continue;
            }
            Outcome::Unknown => {
                write(state, &payment, without(answer_of(&payment), &written)).await?;
                spawn_sync(state.clone(), payment.clone(), c.clone(), request_id);
                return Ok(payment);
            }
        }
    }
    let called = payment
        .card
        .0
        .as_ref()
        .is_some_and(|card| card.request_id.is_some());
    if let (Some(ranked), Some(card)) = (ranked, payment.card.0.as_ref()) {
        tracing::warn!(
            ranked = ?ranked,
            excluded = ?card.excluded,
            attempts = ?card.attempts,
            "no channel called"
        );
    }
    fail(
        &mut payment,
        if called {
            "channel_unavailable"
        } else {
            "no_channel_available"
        },
    );
    write(state, &payment, without(answer_of(&payment), &written)).await?;
    Ok(payment)
}

/// `recs` without the records in `written` (the same key and value, already durable).
fn without(mut recs: Records, written: &Records) -> Records {
    if !written.is_empty() {
        recs.retain(|r| !written.contains(r));
    }
    recs
}

/// Asks the channel about a charge that got no answer until it says; then books it or fails
/// it. Only this channel is ever asked: charging elsewhere could charge twice.
fn spawn_sync(state: Arc<Platform>, payment: Payment, c: Call, request_id: String) {
    let span = tracing::info_span!("status_sync", payment_id = %payment_id_text(payment.id));
    actix_rt::spawn(tracing::Instrument::instrument(
        async move {
            for _ in 0..SYNC_ATTEMPTS {
                actix_rt::time::sleep(state.settings.status_sync).await;
                let Some(answer) = query_charge(&state, &c.endpoint, &request_id).await else {
                    continue;
                };
                match resolve(&state, payment.id, &request_id, answer, "status_sync").await {
                    Ok(true) => {
                        tracing::info!(channel = %c.name, request = %request_id, "status sync resolved the payment")
                    }
                    Ok(false) => {}
                    Err(e) => tracing::error!(%e, "status sync could not record the outcome"),
                }
                return;
            }
            tracing::error!("no status from the channel; the payment stays processing");
        },
        span,
    ));
}

/// Asks the channel at `endpoint` about charge `request_id` once (its status query):
/// `Some(Some(answer))` its record, `Some(None)` it never got the request (definitely not
/// charged), `None` no usable answer yet.
pub async fn query_charge(
    state: &Platform,
    endpoint: &str,
    request_id: &str,
) -> Option<Option<ChargeAnswer>> {
    let url = format!("{}/charges/{request_id}", endpoint.trim_end_matches('/'));
    let resp = state
        .channel_http
        .get(&url, state.settings.channel_timeout)
        .await
        .ok()?;
    if resp.unknown() {
        Some(None)
    } else if resp.answered() {
        resp.json::<ChargeAnswer>().ok().map(Some)
    } else {
        None
    }
}

/// Applies what the channel finally said about `request_id` (`None`: it never got it) to
/// payment `id`, once: status sync and notifications race for it; one claims it, and a
/// payment no longer processing or on another attempt is left alone.
pub async fn resolve(
    state: &Platform,
    id: u128,
    request_id: &str,
    answer: Option<ChargeAnswer>,
    how: &str,
) -> Result<bool> {
    let Some(_claim) = claim(&state.resolving, id) else {
        return Ok(false);
    };
    let store = state.store()?;
    let Some(mut payment) = records::read::<Payment>(store, &records::payment_key(id))? else {
        return Ok(false);
    };
    let Some(card) = payment.card.0.clone() else {
        return Ok(false);
    };
    if payment.status != PaymentStatus::Processing
        || card.request_id.as_deref() != Some(request_id)
        || payment
            .risk
            .0
            .as_ref()
            .is_some_and(|r| r.decision == 1 && r.reviewed.is_none())
    {
        return Ok(false);
    }
    let (channel, name) = card.channel.clone().unwrap_or_default();
    if let Some(c) = payment.card.0.as_mut() {
        c.attempts.push((name, how.to_string()));
    }
    match answer {
        Some(a)
            if a.status == ChargeStatus::Authorized
                && payment.authorization.0.is_some()
                && a.amount_minor == payment.amount =>
        {
            payment.status = PaymentStatus::Authorized;
            let mut recs = crate::payments::payment_records(state, &payment);
            recs.push(crate::authorizations::marker(&payment, true));
            write(state, &payment, recs).await?;
        }
        Some(a) if a.status == ChargeStatus::Succeeded && a.amount_minor == payment.amount => {
            take_reported_fee(&mut payment, &a);
            let merchant = records::read::<records::Merchant>(
                store,
                &records::merchant_key(payment.merchant),
            )?
            .ok_or_else(|| Error::storage("a payment's merchant is missing"))?;
            let number = state
                .channels
                .get(&channel)
                .and_then(|c| c.value().lock().ok().map(|rt| rt.record().number))
                .ok_or_else(|| Error::storage("a payment's channel is missing"))?;
            let events = crate::payments::payment_records(
                state,
                &Payment {
                    status: PaymentStatus::Succeeded,
                    ..payment.clone()
                },
            );
            book(state, &mut payment, merchant.pending(), number, events).await?;
        }
        Some(_) => {
            fail(&mut payment, "channel_declined");
            write(
                state,
                &payment,
                crate::payments::payment_records(state, &payment),
            )
            .await?;
        }
        None => {
            fail(&mut payment, "channel_unavailable");
            write(
                state,
                &payment,
                crate::payments::payment_records(state, &payment),
            )
            .await?;
        }
    }
    state.payment_reached(&payment);
    Ok(true)
}

/// The endpoint and ledger number of the channel that authorized card payment `p`, and the
/// authorization's request id.
fn authorized_at(state: &Platform, p: &Payment) -> Result<(String, u32, String, u128)> {
    let card = p
        .card
        .0
        .as_ref()
        .ok_or_else(|| Error::storage("a card authorization without its card"))?;
    let (Some((channel, _)), Some(request_id)) = (card.channel.clone(), card.request_id.clone())
    else {
        return Err(Error::storage("a card authorization without its channel"));
    };
    let (endpoint, number) = state
        .channels
        .get(&channel)
        .and_then(|c| {
            c.value()
                .lock()
                .ok()
                .map(|rt| (rt.record().endpoint.clone(), rt.record().number))
        })
        .ok_or_else(|| Error::storage("a card authorization's channel is missing"))?;
    Ok((endpoint, number, request_id, channel))
}

/// Posts `action` (`capture` or `void`) to the channel's charge `request_id`, with the
/// channel call's timeout; a call that gets no answer is `channel_unavailable`.
async fn post_to_charge(
    state: &Platform,
    endpoint: &str,
    request_id: &str,
    action: &str,
    body: Option<&CaptureRequest>,
) -> Result<crate::channels::http::Reply> {
    let url = format!(
        "{}/charges/{request_id}/{action}",
        endpoint.trim_end_matches('/')
    );
    state
        .channel_http
        .post(&url, body, state.settings.channel_timeout)
        .await
        .map_err(channel_unavailable)
}

fn channel_unavailable(why: impl std::fmt::Display) -> Error {
    Error::Unavailable {
        code: "channel_unavailable",
        message: format!("the card's channel did not answer ({why}); nothing changed: retry"),
    }
}

/// Asks the channel to capture `captured` of card authorization `p` (under the payment's
/// turn), then books the charge like a card payment's, durably with `extra`. The channel
/// captures at most once (a repeat with the same amount answers the same), so a retry after
/// a lost answer is safe; until it answers, the payment stays authorized.
pub async fn capture(
    state: &Platform,
    p: &mut Payment,
    merchant: &records::Merchant,
    captured: i64,
    extra: Records,
) -> Result<()> {
    let (endpoint, number, request_id, channel) = authorized_at(state, p)?;
    let body = CaptureRequest {
        amount_minor: captured,
    };
    let resp = post_to_charge(state, &endpoint, &request_id, "capture", Some(&body)).await?;
    if !resp.answered() {
        return Err(channel_unavailable(resp.status()));
    }
    let answer: ChargeAnswer = resp.json().map_err(channel_unavailable)?;
    if answer.status != ChargeStatus::Succeeded || answer.amount_minor != captured {
        return Err(channel_unavailable(
            "an answer that is not the capture asked for",
        ));
    }
    // The fees on what was taken: ours on the merchant's terms, the channel's at its rate
    // (or as it reports).
    p.amount = captured;
    p.fee = merchant.fee_terms().fee(captured).min(captured);
    let channel_fee = state
        .channels
        .get(&channel)
        .and_then(|c| c.value().lock().ok().map(|rt| rt.spec().fee(captured)))
        .unwrap_or(0);
    if let Some(card) = p.card.0.as_mut() {
        card.channel_fee = channel_fee;
        card.attempts.push((
            card.channel.clone().unwrap_or_default().1,
            "captured".into(),
        ));
    }
    take_reported_fee(p, &answer);
    let mut recs = crate::payments::payment_records(
        state,
        &Payment {
            status: PaymentStatus::Succeeded,
            ..p.clone()
        },
    );
    recs.extend(extra);
    book(state, p, merchant.pending(), number, recs).await
}

/// Asks the channel to void card authorization `p` (under the payment's turn). `Ok(None)`:
/// voided; `Ok(Some(answer))`: the channel had captured it (a capture whose answer was
/// lost), and that is the charge to book.
pub async fn void(state: &Platform, p: &Payment) -> Result<Option<ChargeAnswer>> {
    let (endpoint, _, request_id, _) = authorized_at(state, p)?;
    let resp = post_to_charge(state, &endpoint, &request_id, "void", None).await?;
    if resp.conflict() {
        return match query_charge(state, &endpoint, &request_id).await {
            Some(Some(a)) if a.status == ChargeStatus::Succeeded => Ok(Some(a)),
            _ => Err(channel_unavailable(
                "a void refused without a capture on record",
            )),
        };
    }
    if !resp.answered() {
        return Err(channel_unavailable(resp.status()));
    }
    let answer: ChargeAnswer = resp.json().map_err(channel_unavailable)?;
    if answer.status != ChargeStatus::Voided {
        return Err(channel_unavailable("an answer that is not a void"));
    }
    Ok(None)
}

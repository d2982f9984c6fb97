//! Settlement payouts (issue #16, FUNDS.md "Merchant settlement"): a batch's payout, moved
//! to payouts in transit by the day-end's `settlement_batches` step, is sent to the payout
//! channel (`payout_channel`), and resolved by its answer, its notification or a status
//! query: paid (in transit → the reserve: the money left our bank) or failed (back to
//! available). Two-phase and durable:
//!
//! 1. the batch is marked `paying` (durably) before the request is sent, with the payout
//!    channel's name; its id is the request id, so the channel pays it at most once;
//! 2. whichever answer comes first (the response, the notification, a status query)
//!    resolves it in one durable unit: the transfer (its id derived from the batch), the
//!    batch, the merchant's clearing state, the open-payout marker deleted;
//! 3. after a crash every open payout (its marker) is asked about: a payout the channel
//!    never recorded is sent again (same request id), one it recorded is resolved.

use std::sync::Arc;

use engine::gl::BusinessDate;
use engine::settlement::Clearing;
use engine::{AccountId, Currency, PlatformRole, Posting, Reject, Transfer, TransferKind};
use futures_util::StreamExt;

use crate::channels::wire::{ChargeStatus, PayoutAnswer, PayoutRequest};
use crate::platform::{now_ns, Platform};
use crate::records::{self, BatchStatus, Merchant, SettlementBatch};
use crate::settlement::{batch_id_text, parse_batch_id, transfer_id};
use crate::{Error, Result};

/// Open payouts sent (or asked about) per pass at most.
pub const PASS_MAX: usize = 1_024;

/// Payouts in flight to the payout channel at once.
pub const PASS_CONCURRENCY: usize = 32;

/// How long an open payout's marker lives: a payout unresolved after this needs an
/// operator (the batch stays `paying` and its money in transit).
const OPEN_PAYOUT_KEEP_NS: u64 = 30 * 24 * 3600 * 1_000_000_000;

/// The marker of a payout to send or resolve (written with the batch that makes it).
pub fn open_marker(date: BusinessDate, merchant: u128) -> (Vec<u8>, Vec<u8>) {
    (
        records::open_payout_key(date, merchant),
        storage::schema::expiring_value(now_ns().saturating_add(OPEN_PAYOUT_KEEP_NS), &[1]),
    )
}

/// The marker of a resolved payout: expired now, dropped by compaction.
fn closed_marker(date: BusinessDate, merchant: u128) -> (Vec<u8>, Vec<u8>) {
    (
        records::open_payout_key(date, merchant),
        storage::schema::expiring_value(now_ns(), &[0]),
    )
}

/// The payout channel: its id, name and endpoint, if `payout_channel` names a configured
/// channel.
fn payout_channel(state: &Platform) -> Option<(u128, String, String)> {
    let name = state.settings.payout_channel.as_deref()?;
    state.channels.iter().find_map(|entry| {
        let rt = entry.value().lock().ok()?;
        (rt.record().name == name).then(|| {
            (
                rt.record().id,
                rt.record().name.clone(),
                rt.record().endpoint.clone(),
            )
        })
    })
}

/// Waits for the merchant's settlement claim (the day-end's steps and payouts change its
/// clearing state one at a time).
pub async fn claim_merchant(state: &Platform, merchant: u128) -> crate::platform::Claimed<'_> {
    loop {
        if let Some(c) = crate::platform::claim(&state.settle_claims, merchant) {
            return c;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// The open payouts (date, merchant), oldest first, at most `max`.
fn open_payouts(store: &storage::Store, max: usize) -> Result<Vec<(BusinessDate, u128)>> {
    let prefix = records::prefix::OPEN_PAYOUT;
    let now = now_ns();
    let mut out = Vec::new();
    store.for_each_aux_with_prefix(prefix, usize::MAX, |k, v| {
        let open = storage::schema::split_expiring(v)
            .is_some_and(|(expires, payload)| expires > now && payload == [1]);
        let raw = &k[prefix.len()..];
        if open && raw.len() == 20 && out.len() < max {
            let date = i32::from_be_bytes(raw[..4].try_into().expect("4 bytes"));
            let merchant = u128::from_be_bytes(raw[4..].try_into().expect("16 bytes"));
            out.push((BusinessDate(date), merchant));
        }
        Ok(())
    })?;
    Ok(out)
}

/// One pass: every open payout (at most [`PASS_MAX`]) is sent, or asked about when it was
/// sent before. Answers (resolved, open payouts seen).
pub async fn pass(state: &Arc<Platform>) -> Result<(usize, usize)> {
    let Some(channel) = payout_channel(state) else {
        return Ok((0, 0));
    };
    let open = open_payouts(state.store()?, PASS_MAX)?;
    let seen = open.len();
    // Many at once: their durable writes share group commits, and the channel's answers
    // overlap (a bounded number in flight).
    let outcomes: Vec<(BusinessDate, u128, Result<bool>)> = futures_util::stream::iter(open)
        .map(|(date, merchant)| {
            let channel = &channel;
            async move { (date, merchant, one(state, channel, date, merchant).await) }
        })
        .buffer_unordered(PASS_CONCURRENCY)
        .collect()
        .await;
    let mut resolved = 0;
    for (date, merchant, outcome) in outcomes {
        match outcome {
            Ok(true) => resolved += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::error!(%e, batch = %batch_id_text(date, merchant), "a payout could not be sent or resolved")
            }
        }
    }
    Ok((resolved, seen))
}

/// Sends, or asks about, the payout of batch (`date`, `merchant`). Answers whether it was
/// resolved.
async fn one(
    state: &Arc<Platform>,
    (channel_id, channel_name, endpoint): &(u128, String, String),
    date: BusinessDate,
    merchant: u128,
) -> Result<bool> {
    let store = state.store()?;
    let key = records::settlement_batch_key(date, merchant);
    let request_id = batch_id_text(date, merchant);
    let base = endpoint.trim_end_matches('/');
    let (sent_before, b) = {
        let _claim = claim_merchant(state, merchant).await;
        let Some(mut b) = records::read::<SettlementBatch>(store, &key)? else {
            state
                .ledger()?
                .write_records(vec![closed_marker(date, merchant)])
                .await?;
            return Ok(false);
        };
        match b.status {
            BatchStatus::Paying => (true, b),
            BatchStatus::Pending if b.payout > 0 => {
                // Durably paying before the request leaves: a crash after it is asked about.
                b.status = BatchStatus::Paying;
                b.payout_channel = Some(channel_name.clone());
                b.updated_at_ns = now_ns();
                state
                    .ledger()?
                    .write_records(vec![(key.clone(), records::encode(&b))])
                    .await?;
                (false, b)
            }
            _ => {
                // Resolved already: the marker is stale.
                state
                    .ledger()?
                    .write_records(vec![closed_marker(date, merchant)])
                    .await?;
                return Ok(false);
            }
        }
    };
    if sent_before {
        let asked = state
            .channel_http
            .get(
                &format!("{base}/payouts/{request_id}"),
                state.settings.channel_timeout,
            )
            .await;
        match asked {
            Ok(r) if r.answered() => {
                if let Ok(answer) = r.json::<PayoutAnswer>() {
                    return resolve(state, answer, "status_sync").await;
                }
                return Ok(false);
            }
            // Never received: send it (again; the same request id).
            Ok(r) if r.unknown() => {}
            _ => return Ok(false),
        }
    }
    let m: Merchant = records::read(store, &records::merchant_key(merchant))?
        .ok_or_else(|| Error::storage("a batch's merchant is missing"))?;
    let account = m
        .settlement
        .0
        .payout_account
        .clone()
        .ok_or_else(|| Error::storage("a paying merchant has no payout account"))?;
    let number = state
        .master
        .open(
            &account.number_sealed,
            &crate::merchants::payout_context(merchant),
        )
        .map_err(|_| Error::storage("a payout account number does not open with master_key"))?;
    let currency = Currency::from_numeric(b.currency)
        .map(|c| c.code())
        .unwrap_or("?");
    let sent = state
        .channel_http
        .post(
            &format!("{base}/payouts"),
            Some(&PayoutRequest {
                request_id: request_id.clone(),
                amount_minor: b.payout,
                currency: currency.to_string(),
                bank: account.bank.clone(),
                account_number: String::from_utf8_lossy(&number).into_owned(),
                account_name: account.name.clone(),
                notify_url: Some(format!(
                    "{}/v1/channels/{}/payout_notifications",
                    state.settings.public_url,
                    crate::channels::channel_id_text(*channel_id)
                )),
            }),
            state.settings.channel_timeout,
        )
        .await;
    match sent {
        Ok(r) if r.answered() => match r.json::<PayoutAnswer>() {
            Ok(answer) => resolve(state, answer, "answer").await,
            Err(_) => Ok(false),
        },
        // Not taken (technical error), refused connection, or no answer: asked about on
        // the next pass.
        _ => Ok(false),
    }
}

/// Applies the payout channel's word on a payout, once: paid → in transit leaves for the
/// reserve; declined → back to the merchant's available balance. Answers whether this call
/// resolved it (false: already resolved, or not a payout of ours in flight).
pub async fn resolve(state: &Platform, answer: PayoutAnswer, how: &str) -> Result<bool> {
    let Some((date, merchant)) = parse_batch_id(&answer.request_id) else {
        return Err(Error::not_found("no settlement for this request_id"));
    };
    let store = state.store()?;
    let key = records::settlement_batch_key(date, merchant);
    let _claim = claim_merchant(state, merchant).await;
    let Some(mut b) = records::read::<SettlementBatch>(store, &key)? else {
        return Err(Error::not_found("no settlement for this request_id"));
    };
    if b.status != BatchStatus::Paying {
        return Ok(false);
    }
    if answer.amount_minor != b.payout {
        tracing::error!(batch = %answer.request_id, "the payout channel answered another amount; left paying");
        return Ok(false);
    }
    let m: Merchant = records::read(store, &records::merchant_key(merchant))?
        .ok_or_else(|| Error::storage("a batch's merchant is missing"))?;
    let currency = Currency::from_numeric(b.currency)
        .ok_or_else(|| Error::storage("a batch has an unknown currency"))?;
    let transit = AccountId::platform(PlatformRole::PayoutsInTransit, currency.numeric());
    let mut c: Clearing =
        records::read(store, &records::clearing_key(merchant))?.unwrap_or_default();
    c.in_transit -= b.payout;
    let paid = answer.status == ChargeStatus::Succeeded;
    let (step, to) = if paid {
        c.paid_out += b.payout;
        b.status = BatchStatus::Paid;
        (
            "paid",
            AccountId::platform(PlatformRole::CustomerFunds, currency.numeric()),
        )
    } else {
        b.status = BatchStatus::Failed;
        b.failure = Some(
            answer
                .decline_reason
                .clone()
                .unwrap_or_else(|| "declined".into()),
        );
        ("failed", m.account)
    };
    b.payout_reference = Some(answer.channel_ref.clone());
    b.updated_at_ns = now_ns();
    let transfer = Transfer::new(
        transfer_id(step, merchant, date),
        TransferKind::Settlement,
        vec![
            Posting::new(transit, currency, -b.payout),
            Posting::new(to, currency, b.payout),
        ],
        engine::Timestamp(0),
    );
    let recs = vec![
        (key, records::encode(&b)),
        (records::clearing_key(merchant), records::encode(&c)),
        closed_marker(date, merchant),
    ];
    match state.ledger()?.transfer_with(transfer, recs).await? {
        Ok(_) => {}
        Err(Reject::DuplicateId) => return Ok(false),
        Err(r) => {
            return Err(Error::storage(format!(
                "the payout's transfer was refused: {r}"
            )))
        }
    }
    tracing::info!(batch = %answer.request_id, outcome = step, how, "payout resolved");
    Ok(true)
}

/// Sends and resolves payouts in the background: a pass every `status_sync`, or at once
/// after a full pass that resolved some.
pub fn spawn(state: Arc<Platform>) {
    actix_rt::spawn(async move {
        loop {
            match pass(&state).await {
                // A full pass: more are waiting, go on at once.
                Ok((resolved, seen)) if seen == PASS_MAX && resolved > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(%e, "the payout pass failed"),
            }
            actix_rt::time::sleep(state.settings.status_sync).await;
        }
    });
}

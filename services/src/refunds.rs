//! Refunds: money back from the merchant (and the platform's fee, pro rata) to the payer,
//! never above the payment, once per `out_refund_no`; a card payment's through the channel
//! that charged it, with status sync when the channel does not answer.

use std::sync::Arc;
use std::time::Duration;

use engine::money::format_minor;
use engine::{
    AccountId, Currency, PlatformRole, Posting, Timestamp, Transfer, TransferId, TransferKind,
};
use serde::Serialize;

use crate::payments::payment_id_text;
use crate::platform::{claim, new_id, now_ns, Platform};
use crate::records::{self, Payment, PaymentStatus, Refund};
use crate::{Error, Result};

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
            PaymentStatus::Processing => "processing",
        },
        failure_code: r.failure_code.clone(),
        reason: r.reason.clone(),
        created_at: records::time_text(r.created_at_ns),
    }
}

/// A refund's postings: `source` (the payer's account, or our receivable at the channel
/// that charged the card) gives `amount` back; the merchant returns `merchant_part` and the
/// platform's fee income the rest.
pub fn refund_postings(
    source: AccountId,
    merchant: AccountId,
    currency: Currency,
    amount: i64,
    merchant_part: i64,
) -> Vec<Posting> {
    let fee_part = amount - merchant_part;
    let mut postings = vec![Posting {
        account: source,
        currency,
        amount,
    }];
    if merchant_part > 0 {
        postings.push(Posting {
            account: merchant,
            currency,
            amount: -merchant_part,
        });
    }
    if fee_part > 0 {
        postings.push(Posting {
            account: AccountId::platform(PlatformRole::FeeIncome, currency.numeric()),
            currency,
            amount: -fee_part,
        });
    }
    postings
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
        PaymentStatus::Processing => "refund.processing",
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
        .http
        .post(format!("{}/refunds", endpoint.trim_end_matches('/')))
        .timeout(state.settings.channel_timeout)
        .json(&crate::channels::wire::RefundRequest {
            request_id: format!("re_{:032x}", refund.id),
            charge_request_id,
            amount_minor: refund.amount,
        })
        .send()
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
        Ok(resp) if resp.status().is_success() => match resp.json::<RefundAnswer>().await {
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
            let compensation = Transfer {
                id: TransferId(new_id()),
                kind: TransferKind::Refund,
                postings: reversal,
                timestamp: Timestamp(0),
            };
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
    let mut ids = Vec::new();
    store
        .for_each_aux_with_prefix(prefix, 1_000_000, |key, _| {
            if let Some(id) = records::id_after(key, prefix) {
                ids.push(id);
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
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
    Some((rt.record.endpoint.clone(), rt.record.number))
}

/// Asks the channel about a card refund that got no answer until it says; then marks it
/// succeeded, or reverses its booking and fails it.
fn spawn_sync(state: Arc<Platform>, refund_id: u128) {
    actix_rt::spawn(async move {
        let request_id = format!("re_{refund_id:032x}");
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
                .http
                .get(format!(
                    "{}/refunds/{request_id}",
                    endpoint.trim_end_matches('/')
                ))
                .timeout(state.settings.channel_timeout)
                .send()
                .await;
            use crate::channels::wire::{ChargeStatus, RefundAnswer};
            let refused = match asked {
                // The request never reached the channel: definitely not refunded.
                Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                    Some("channel_unavailable")
                }
                Ok(r) if r.status().is_success() => match r.json::<RefundAnswer>().await {
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
                merchant.account,
                currency,
                refund.amount,
                refund.amount - refund.fee_part,
            );
            refund.status = PaymentStatus::Failed;
            refund.failure_code = Some(code.to_string());
            payment.refunded -= refund.amount;
            let compensation = Transfer {
                id: TransferId(new_id()),
                kind: TransferKind::Refund,
                postings: reversed(&booked),
                timestamp: Timestamp(0),
            };
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

//! Shelving (issue #15, "the data dir stops growing with history"): the business records of
//! a closed day that can no longer change leave the hot store for the day's record segment
//! (`storage::shelf`), and the reads that must still find them (a payment or a refund by id
//! or by `out_trade_no`, a payment's refunds, a closed day's report) look there when the hot
//! store has nothing.
//!
//! What is final, and so shelved, once the day is older than both `archive_after_days` and
//! `refund_window_days` (plus one day: a payment whose id was made before a switch may be
//! dated the day after; the other way round, one minted in the day-end's own millisecond
//! carries the date with an id past the day-end's start, so the shelving also looks a
//! second past it, by business date for a payment and by the date's journal entries for a
//! deposit):
//! - a payment that succeeded or failed, with every refund of it decided (no refund can be
//!   added: the refund window is over), its `out_trade_no` and `out_refund_no` keys and its
//!   refunds;
//! - a webhook event delivered or given up on;
//! - a deposit and a batch transfer (written once);
//! - the day's frozen daily reports, its resolved settlement batches (with their index
//!   keys), and the date's own day-end record;
//! - the dedup keys of the day's transfers: their records are final, so no retry can post
//!   them again. A batch transfer's client id is remembered for the same window.
//!
//! What stays hot by design: anything not final (a payment held for review, a refund still
//! at a channel), which a later day-end shelves once decided; accounts, merchants,
//! channels, cards, the audit log; and per closed date its GL turnover in `meta`
//! (`gl_day/<date>`, ≈ 35 bytes a day whatever the traffic).

use engine::gl::BusinessDate;
use engine::ids::{id_time_ms, time_ordered_id};
use engine::TransferId;
use storage::records::{self, DayEnd, EventStatus, Payment, PaymentStatus, Refund};
use storage::shelf::{Records, ShelfHeader};

use crate::error::{Error, Result};

/// The dates whose records are due on the day-end of `closing` (the date being closed):
/// those on or before this.
pub fn horizon(
    closing: BusinessDate,
    archive_after_days: u32,
    refund_window_days: u32,
) -> Option<BusinessDate> {
    if archive_after_days == 0 {
        return None;
    }
    closing.minus_days(archive_after_days.max(refund_window_days).saturating_add(1))
}

/// Whether `payment` can still be refunded on the open date `open` (its business date, or
/// for payments from before business dates, its creation time against `now_ns`, at most
/// `window_days` before).
pub fn refundable(
    payment: &Payment,
    open: Option<BusinessDate>,
    window_days: u32,
    now_ns: u64,
) -> bool {
    match (payment.business_date.0, open) {
        (Some(date), Some(open)) => i64::from(open.0) - i64::from(date.0) <= i64::from(window_days),
        _ => {
            let days = now_ns.saturating_sub(payment.created_at_ns) / (86_400 * 1_000_000_000);
            days <= u64::from(window_days)
        }
    }
}

fn storage_error(e: storage::StoreError) -> Error {
    Error::storage(e.to_string())
}

/// A record by key: the hot store, else the record segments (`id`: the time-ordered id in
/// the key, which narrows the search; `None` searches every segment).
pub fn read<T: bincode::Decode<()>>(
    store: &storage::Store,
    key: &[u8],
    id: Option<u128>,
) -> Result<Option<T>> {
    if let Some(v) = records::read::<T>(store, key)? {
        return Ok(Some(v));
    }
    match store
        .shelved(key, id.map(id_time_ms))
        .map_err(storage_error)?
    {
        Some(bytes) => Ok(Some(records::decode(key, &bytes)?)),
        None => Ok(None),
    }
}

/// A record of business date `date` by key (a day-end, a daily report, a settlement batch,
/// the date's positions): the hot store, else the date's record segment.
pub fn read_dated<T: bincode::Decode<()>>(
    store: &storage::Store,
    date: BusinessDate,
    key: &[u8],
) -> Result<Option<T>> {
    if let Some(v) = records::read::<T>(store, key)? {
        return Ok(Some(v));
    }
    match store.shelved_at(date, key).map_err(storage_error)? {
        Some(bytes) => Ok(Some(records::decode(key, &bytes)?)),
        None => Ok(None),
    }
}

/// A payment by id, hot or shelved.
pub fn payment(store: &storage::Store, id: u128) -> Result<Option<Payment>> {
    read(store, &records::payment_key(id), Some(id))
}

/// A refund by id, hot or shelved.
pub fn refund(store: &storage::Store, id: u128) -> Result<Option<Refund>> {
    read(store, &records::refund_key(id), Some(id))
}

/// The refund ids of a shelved payment, by `out_refund_no` (at most `limit`).
pub fn refund_ids(store: &storage::Store, payment: u128, limit: usize) -> Result<Vec<u128>> {
    let prefix = records::out_refund_no_key(payment, "");
    let mut out = Vec::new();
    for (key, value) in store
        .shelved_prefix_near(&prefix, id_time_ms(payment))
        .map_err(storage_error)?
        .into_iter()
        .take(limit)
    {
        out.push(records::decode::<u128>(&key, &value)?);
    }
    Ok(out)
}

/// How far past a day-end's start [`shelve_day`] looks for payments of its date: the switch
/// follows the start within milliseconds, and the wall clock can step back.
const SWITCH_MARGIN_MS: u64 = 1_000;

/// Whether a payment (`id`, `business_date`) was made before the switch of the day-end of
/// `date` that started at the id `cutoff_id` (see [`shelve_day`], which reads no further
/// than [`SWITCH_MARGIN_MS`] past it).
fn made_before_switch(
    id: u128,
    business_date: Option<BusinessDate>,
    cutoff_id: u128,
    date: BusinessDate,
) -> bool {
    id < cutoff_id || business_date.is_some_and(|d| d <= date)
}

/// The ids among a date's posted `transfers` minted from the day-end's start (`cutoff_id`)
/// to `margin_id`: the date's own, though minted after its day-end started. Few: only those
/// of the day-end's own millisecond, or of a clock step back.
fn posted_after_cutoff(
    transfers: &[TransferId],
    cutoff_id: u128,
    margin_id: u128,
) -> std::collections::HashSet<u128> {
    transfers
        .iter()
        .map(|t| t.0)
        .filter(|&id| id >= cutoff_id && id < margin_id)
        .collect()
}

/// Whether a deposit (`id`, its transfer's) was made before the switch of the day-end that
/// started at `cutoff_id`, `late` being [`posted_after_cutoff`] of the date's transfers.
fn deposit_made_before_switch(
    id: u128,
    cutoff_id: u128,
    late: &std::collections::HashSet<u128>,
) -> bool {
    id < cutoff_id || late.contains(&id)
}

/// What one date's shelving moved.
pub struct Shelved {
    pub info: storage::shelf::ShelfInfo,
    pub transfers: u64,
}

/// Shelves what became final before `d`'s switch (see the module's documentation), in one
/// record segment for `d.date`, and drops the dedup keys of `d`'s transfers. Blocking: run
/// on a blocking thread. Idempotent: a retry writes a superset of what an interrupted run
/// wrote.
pub fn shelve_day(store: &storage::Store, d: &DayEnd) -> Result<Shelved> {
    let cutoff_ms = d.started_at_ns / 1_000_000;
    let cutoff_id = time_ordered_id(cutoff_ms, 0);
    let mut recs: Records = Vec::new();
    let (mut min_ms, mut max_ms) = (u64::MAX, 0u64);
    let mut note = |id: u128| {
        let ms = id_time_ms(id);
        min_ms = min_ms.min(ms);
        max_ms = max_ms.max(ms);
    };
    // A key with its value as stored, if present (an index key a flow did not write, or a
    // refund its index outlived, is not a reason to stop the day-end).
    let raw = |key: &[u8]| -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        Ok(store
            .aux(key)
            .map_err(storage_error)?
            .map(|value| (key.to_vec(), value)))
    };
    // Payments made before the switch, final with every refund of theirs. Made before it:
    // an id from before the day-end started, or one from up to `SWITCH_MARGIN_MS` after
    // with the date (or an earlier one) as its business date. Ids and the day-end's start
    // both come from the wall clock in milliseconds: a payment minted in the day-end's own
    // millisecond (or before the clock stepped back) has an id past the cutoff, and would
    // otherwise stay hot a day longer than its date (`api/tests/gl.rs` saw it, sessions 42
    // and 45).
    let margin_id = time_ordered_id(cutoff_ms.saturating_add(SWITCH_MARGIN_MS), 0);
    let mut payments: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    store
        .for_each_aux_range(
            &records::payment_key(0),
            &records::payment_key(margin_id),
            |k, v| {
                payments.push((k.to_vec(), v.to_vec()));
                Ok(())
            },
        )
        .map_err(storage_error)?;
    'payments: for (key, value) in payments {
        let p: Payment = records::decode(&key, &value)?;
        if p.status == PaymentStatus::Processing
            || !made_before_switch(p.id, p.business_date.0, cutoff_id, d.date)
        {
            continue;
        }
        let mut refunds = Vec::new();
        store
            .for_each_aux_with_prefix(&records::out_refund_no_key(p.id, ""), usize::MAX, |k, v| {
                refunds.push((k.to_vec(), v.to_vec()));
                Ok(())
            })
            .map_err(storage_error)?;
        let mut these = Vec::with_capacity(2 + 2 * refunds.len());
        for (index_key, index_value) in refunds {
            let id: u128 = records::decode(&index_key, &index_value)?;
            these.push((index_key, index_value));
            let Some((k, v)) = raw(&records::refund_key(id))? else {
                continue;
            };
            let r: Refund = records::decode(&k, &v)?;
            if r.status == PaymentStatus::Processing {
                continue 'payments;
            }
            these.push((k, v));
            note(id);
        }
        // Only the payment's own index key: never one that names another payment.
        if let Some((k, v)) = raw(&records::out_trade_no_key(p.merchant, &p.out_trade_no))? {
            if records::decode::<u128>(&k, &v)? == p.id {
                these.push((k, v));
            }
        }
        these.push((key, value));
        note(p.id);
        recs.append(&mut these);
    }
    // Webhook events decided before the switch.
    store
        .for_each_aux_with_prefix(records::prefix::WEBHOOK_EVENT, usize::MAX, |k, v| {
            let e: records::Event = records::decode(k, v)?;
            if e.id < cutoff_id && e.status != EventStatus::Pending {
                note(e.id);
                recs.push((k.to_vec(), v.to_vec()));
            }
            Ok(())
        })
        .map_err(storage_error)?;
    // The date's transfers: their dedup keys go.
    let mut transfers = Vec::new();
    let mut from = d.from_seq.max(1);
    while from < d.switch_seq {
        let chunk = store.entries(from, 4_096).map_err(storage_error)?;
        let Some(last) = chunk.last().map(|e| e.seq) else {
            break;
        };
        for entry in chunk.iter().filter(|e| e.seq < d.switch_seq) {
            for effect in &entry.effects {
                if let engine::Effect::Posted(t) = effect {
                    transfers.push(t.id);
                }
            }
        }
        from = last + 1;
    }
    // Deposits (time-ordered ids, their transfers' own): those minted before the day-end
    // started, and those up to `SWITCH_MARGIN_MS` after whose transfer the date's journal
    // entries posted (minted in the day-end's own millisecond, as payments above).
    let late = posted_after_cutoff(&transfers, cutoff_id, margin_id);
    store
        .for_each_aux_range(
            &records::deposit_key(TransferId(0)),
            &records::deposit_key(TransferId(margin_id)),
            |k, v| {
                let Some(id) = records::id_after(k, records::prefix::DEPOSIT) else {
                    return Ok(());
                };
                if deposit_made_before_switch(id, cutoff_id, &late) {
                    note(id);
                    recs.push((k.to_vec(), v.to_vec()));
                }
                Ok(())
            },
        )
        .map_err(storage_error)?;
    // Batch transfers: the notes on the date's journal entries (and earlier ones'), one key
    // range, since a notes record never spans a date switch ...
    store
        .for_each_aux_range(
            &records::journal_notes_key(0),
            &records::journal_notes_key(d.switch_seq),
            |k, v| {
                recs.push((k.to_vec(), v.to_vec()));
                Ok(())
            },
        )
        .map_err(storage_error)?;
    // ... and the records of the layouts before notes: those keyed by creation time
    // (session 20), one range, and those keyed by transfer id (before it).
    store
        .for_each_aux_range(
            &records::batch_transfer_at_key(0, TransferId(0)),
            &records::batch_transfer_at_key(d.started_at_ns, TransferId(0)),
            |k, v| {
                recs.push((k.to_vec(), v.to_vec()));
                Ok(())
            },
        )
        .map_err(storage_error)?;
    store
        .for_each_aux_with_prefix(records::prefix::BATCH_TRANSFER, usize::MAX, |k, v| {
            let t: records::BatchTransfer = records::decode(k, v)?;
            if t.created_at_ns < d.started_at_ns {
                recs.push((k.to_vec(), v.to_vec()));
            }
            Ok(())
        })
        .map_err(storage_error)?;
    // The date's frozen reports.
    let report_prefix = [records::prefix::DAILY_REPORT, &d.date.0.to_be_bytes()].concat();
    store
        .for_each_aux_with_prefix(&report_prefix, usize::MAX, |k, v| {
            recs.push((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .map_err(storage_error)?;
    // The date's frozen positions.
    if let Some((k, v)) = raw(&records::positions_key(d.date))? {
        recs.push((k, v));
    }
    // The date's settlement batches that are resolved (a payout still to send or in
    // flight stays hot), with their index keys.
    store
        .for_each_aux_with_prefix(
            &records::settlement_batch_prefix(d.date),
            usize::MAX,
            |k, v| {
                let b: records::SettlementBatch = records::decode(k, v)?;
                let open = b.status == records::BatchStatus::Paying
                    || (b.status == records::BatchStatus::Pending && b.payout > 0);
                if !open {
                    recs.push((k.to_vec(), v.to_vec()));
                    recs.push((
                        records::settlement_by_merchant_key(b.merchant, b.date),
                        records::encode(&()),
                    ));
                }
                Ok(())
            },
        )
        .map_err(storage_error)?;
    // The date's day-end record, with what this run moves (the segment's own figures are
    // read from its trailer: `crate::day_end::load`).
    let mut record = d.clone();
    record.shelved = records::Tail(Some(records::ShelvedRecords {
        file: storage::shelf::file_name(d.date),
        records: 0,
        transfers: transfers.len() as u64,
        bytes: 0,
        sha256: [0; 32],
    }));
    recs.push((records::day_end_key(d.date), records::encode(&record)));
    recs.sort_by(|a, b| a.0.cmp(&b.0));
    recs.dedup_by(|b, a| a.0 == b.0);
    let header = ShelfHeader {
        date: d.date,
        min_ms,
        max_ms,
    };
    let info = store
        .shelve(header, &recs, &transfers, d.switch_seq)
        .map_err(storage_error)?;
    Ok(Shelved {
        info,
        transfers: transfers.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A date's payments are those minted before its day-end started, and those minted in
    /// the day-end's own millisecond (or after a clock step back) that carry the date: not
    /// the next date's.
    #[test]
    fn a_payment_of_the_date_minted_in_the_day_ends_millisecond_is_the_dates() {
        let started_ms = 1_796_504_722_305;
        let cutoff = time_ordered_id(started_ms, 0);
        let date = BusinessDate(20_800);
        let same_ms = time_ordered_id(started_ms, 0x1234_5678_9abc_def0 << 48);
        assert!(same_ms > cutoff);
        // Before the start: the date's (or, dated the day after, the horizon's extra day
        // keeps it final) whatever it carries.
        assert!(made_before_switch(cutoff - 1, Some(date), cutoff, date));
        assert!(made_before_switch(
            cutoff - 1,
            Some(BusinessDate(20_801)),
            cutoff,
            date
        ));
        assert!(made_before_switch(cutoff - 1, None, cutoff, date));
        // In the start's millisecond or later: by the date it carries.
        assert!(made_before_switch(same_ms, Some(date), cutoff, date));
        assert!(made_before_switch(
            same_ms,
            Some(BusinessDate(20_799)),
            cutoff,
            date
        ));
        assert!(!made_before_switch(
            same_ms,
            Some(BusinessDate(20_801)),
            cutoff,
            date
        ));
        // A payment from before business dates, past the start: not this date's.
        assert!(!made_before_switch(same_ms, None, cutoff, date));
    }

    /// A deposit of the date minted in the day-end's own millisecond is found among the
    /// date's posted transfers; one of the next date, or past the margin, is not.
    #[test]
    fn a_deposit_posted_on_the_date_after_the_day_end_started_is_the_dates() {
        let started_ms = 1_764_000_000_000u64;
        let cutoff = time_ordered_id(started_ms, 0);
        let margin = time_ordered_id(started_ms + SWITCH_MARGIN_MS, 0);
        let before = time_ordered_id(started_ms - 1, 7 << 48);
        let same_ms = time_ordered_id(started_ms, 42 << 48);
        let past_margin = time_ordered_id(started_ms + SWITCH_MARGIN_MS, 1 << 48);
        let next_dates = time_ordered_id(started_ms, 43 << 48);
        let date_posted = [before, same_ms, past_margin].map(TransferId);
        let late = posted_after_cutoff(&date_posted, cutoff, margin);
        assert_eq!(late, [same_ms].into_iter().collect());
        assert!(deposit_made_before_switch(before, cutoff, &late));
        assert!(deposit_made_before_switch(same_ms, cutoff, &late));
        assert!(!deposit_made_before_switch(next_dates, cutoff, &late));
        // (Past the margin the shelving does not read at all.)
    }
}

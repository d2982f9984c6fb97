//! Reconciliation matching (对账, `../shared/FUNDS.md` "Reconciliation", issue #17): one
//! channel statement against what the platform booked with that channel. Pure: a hash join
//! of the statement's rows with the platform's items on our request ids (the charge's
//! `out_trade_no`, the refund's `out_refund_no` at the channel), the channel's reference
//! second; what is not on today's statement waits in a pool for later statements and, after
//! `wait_days`, is `missing_at_channel`.
//!
//! Outcomes of a row or an item:
//! - matched: same kind, amount and fee, and the platform booked it as a success;
//! - `missing_on_platform`: the channel lists it, the platform has no success for it (none,
//!   or failed) — the channel holds money we did not book (long);
//! - `status_mismatch`: the channel lists it, the platform still has it processing (status
//!   sync may settle it);
//! - `amount_mismatch`, `fee_mismatch`: both have it, with other figures;
//! - `duplicate`: the statement lists the same request twice (the second row);
//! - `missing_at_channel`: the platform booked a success no statement listed within
//!   `wait_days` of its date (short).

use std::collections::HashMap;

use crate::gl::BusinessDate;
use crate::statement::{Row, RowKind};

/// Where the platform's record of an item stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemStatus {
    Succeeded,
    Processing,
    Failed,
}

/// One charge or refund as the platform booked it with the channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub kind: RowKind,
    /// Our request id at the channel: the charge's, or the refund's.
    pub request_id: String,
    /// The channel's reference, when its answer gave one.
    pub channel_reference: Option<String>,
    /// Minor units, > 0.
    pub amount: i64,
    /// The channel's fee as booked (on a refund: the part it returns).
    pub fee: i64,
    pub status: ItemStatus,
    /// The business date it was booked on (its wait starts there).
    pub date: BusinessDate,
}

/// The type of a difference, as FUNDS.md names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MismatchType {
    MissingOnPlatform,
    MissingAtChannel,
    AmountMismatch,
    StatusMismatch,
    FeeMismatch,
    Duplicate,
}

impl MismatchType {
    pub fn code(self) -> &'static str {
        match self {
            MismatchType::MissingOnPlatform => "missing_on_platform",
            MismatchType::MissingAtChannel => "missing_at_channel",
            MismatchType::AmountMismatch => "amount_mismatch",
            MismatchType::StatusMismatch => "status_mismatch",
            MismatchType::FeeMismatch => "fee_mismatch",
            MismatchType::Duplicate => "duplicate",
        }
    }
}

/// A difference: its type, and the row and the item it concerns (one may be missing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub kind: MismatchType,
    pub row: Option<Row>,
    pub item: Option<Item>,
}

impl Mismatch {
    /// The difference booked to suspense at once, in minor units: what the channel's row
    /// does to our position at it less what our booking did (nothing unless the item
    /// succeeded). Positive: the channel holds more than we booked (long, GL 2901);
    /// negative: less (short, GL 1901). A duplicate row counts whole.
    pub fn suspense(&self) -> i128 {
        let channel = self
            .row
            .as_ref()
            .map_or(0, |r| net(r.kind, r.amount, r.fee));
        let ours = match &self.item {
            Some(it) if it.status == ItemStatus::Succeeded => net(it.kind, it.amount, it.fee),
            _ => 0,
        };
        channel - ours
    }
}

/// What a charge or refund does to what the channel owes us: a charge adds its amount
/// less the channel's fee, a refund takes its amount less the fee the channel returns.
pub fn net(kind: RowKind, amount: i64, fee: i64) -> i128 {
    let v = i128::from(amount) - i128::from(fee);
    match kind {
        RowKind::Charge => v,
        RowKind::Refund => -v,
    }
}

/// A run's suspense totals: (long, short), both ≥ 0; long − short is the net change of
/// our position at the channel.
pub fn suspense_totals<'a>(mismatches: impl IntoIterator<Item = &'a Mismatch>) -> (i128, i128) {
    mismatches
        .into_iter()
        .map(Mismatch::suspense)
        .fold((0, 0), |(long, short), d| {
            if d >= 0 {
                (long + d, short)
            } else {
                (long, short - d)
            }
        })
}

/// A statement's outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub matched: Vec<(Item, Row)>,
    pub mismatches: Vec<Mismatch>,
    /// Items still waiting for a later statement.
    pub pool: Vec<Item>,
}

/// The request id a row is keyed by: the refund's for a refund, the charge's otherwise.
fn row_key(r: &Row) -> (RowKind, &str) {
    match r.kind {
        RowKind::Refund => (RowKind::Refund, r.out_refund_no.as_deref().unwrap_or("")),
        RowKind::Charge => (RowKind::Charge, r.out_trade_no.as_str()),
    }
}

/// Matches the rows of the statement of `today` against `items`: the pool left by earlier
/// statements and the items booked since. Every row and every item ends in exactly one
/// place: matched, a mismatch, or (items only) back in the pool.
pub fn reconcile(rows: &[Row], items: Vec<Item>, today: BusinessDate, wait_days: u16) -> Outcome {
    let mut by_key: HashMap<(RowKind, String), usize> = HashMap::with_capacity(items.len());
    let mut by_reference: HashMap<(RowKind, String), usize> = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        by_key.insert((it.kind, it.request_id.clone()), i);
        if let (RowKind::Charge, Some(r)) = (it.kind, &it.channel_reference) {
            by_reference.insert((it.kind, r.clone()), i);
        }
    }
    let mut taken = vec![false; items.len()];
    let mut seen: HashMap<(RowKind, &str), ()> = HashMap::with_capacity(rows.len());
    let mut out = Outcome::default();
    let mut items: Vec<Option<Item>> = items.into_iter().map(Some).collect();
    for row in rows {
        let key = row_key(row);
        if seen.insert(key, ()).is_some() {
            out.mismatches.push(Mismatch {
                kind: MismatchType::Duplicate,
                row: Some(row.clone()),
                item: None,
            });
            continue;
        }
        let found = by_key
            .get(&(key.0, key.1.to_string()))
            .or_else(|| match row.kind {
                RowKind::Charge => {
                    by_reference.get(&(RowKind::Charge, row.channel_reference.clone()))
                }
                RowKind::Refund => None,
            })
            .copied()
            .filter(|i| !taken[*i]);
        let Some(i) = found else {
            out.mismatches.push(Mismatch {
                kind: MismatchType::MissingOnPlatform,
                row: Some(row.clone()),
                item: None,
            });
            continue;
        };
        taken[i] = true;
        let item = items[i].take().expect("an item is taken once");
        let kind = match item.status {
            ItemStatus::Failed => Some(MismatchType::MissingOnPlatform),
            ItemStatus::Processing => Some(MismatchType::StatusMismatch),
            ItemStatus::Succeeded if item.amount != row.amount => {
                Some(MismatchType::AmountMismatch)
            }
            ItemStatus::Succeeded if item.fee != row.fee => Some(MismatchType::FeeMismatch),
            ItemStatus::Succeeded => None,
        };
        match kind {
            None => out.matched.push((item, row.clone())),
            Some(kind) => out.mismatches.push(Mismatch {
                kind,
                row: Some(row.clone()),
                item: Some(item),
            }),
        }
    }
    // What no row named: a success waits until its wait is over; a failed item is done
    // (nothing was taken); a processing one waits for its status.
    for item in items.into_iter().flatten() {
        let due = BusinessDate(item.date.0 + i32::from(wait_days));
        match item.status {
            ItemStatus::Succeeded if due <= today => out.mismatches.push(Mismatch {
                kind: MismatchType::MissingAtChannel,
                row: None,
                item: Some(item),
            }),
            ItemStatus::Failed => {}
            _ => out.pool.push(item),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: BusinessDate = BusinessDate(20_788);

    fn item(
        kind: RowKind,
        id: &str,
        amount: i64,
        fee: i64,
        status: ItemStatus,
        date: BusinessDate,
    ) -> Item {
        Item {
            kind,
            request_id: id.into(),
            channel_reference: Some(format!("ref-{id}")),
            amount,
            fee,
            status,
            date,
        }
    }

    fn row_of(it: &Item) -> Row {
        Row {
            kind: it.kind,
            channel_reference: it.channel_reference.clone().unwrap_or_default(),
            out_trade_no: if it.kind == RowKind::Charge {
                it.request_id.clone()
            } else {
                "pay_x".into()
            },
            out_refund_no: (it.kind == RowKind::Refund).then(|| it.request_id.clone()),
            amount: it.amount,
            fee: it.fee,
            time: "2026-12-01 10:00:00".into(),
            subject: String::new(),
        }
    }

    /// The planted day: every difference type once, and one that arrives a day late.
    #[test]
    fn the_planted_differences_are_reported_exactly() {
        use ItemStatus::*;
        use RowKind::*;
        let ok = item(Charge, "ok", 10_000, 20, Succeeded, D);
        let refunded = item(Refund, "re-ok", 1_000, 2, Succeeded, D);
        let unanswered = item(Charge, "unanswered", 500, 1, Processing, D);
        let absent = item(Charge, "absent", 700, 1, Succeeded, BusinessDate(D.0 - 3));
        let late = item(Charge, "late", 900, 2, Succeeded, D);
        let amount = item(Charge, "amount", 1_200, 2, Succeeded, D);
        let fee = item(Charge, "fee", 1_300, 3, Succeeded, D);
        let dup = item(Charge, "dup", 1_400, 3, Succeeded, D);
        let mut rows: Vec<Row> = [&ok, &refunded, &unanswered, &amount, &fee, &dup]
            .iter()
            .map(|i| row_of(i))
            .collect();
        rows[3].amount = 1_250;
        rows[4].fee = 4;
        rows.push(row_of(&dup));
        // Charged at the channel, never booked by us at all.
        let mut stray = row_of(&item(Charge, "stray", 300, 1, Succeeded, D));
        stray.channel_reference = "ref-stray".into();
        rows.push(stray);
        let items = vec![
            ok,
            refunded,
            unanswered,
            absent,
            late.clone(),
            amount,
            fee,
            dup,
        ];
        let out = reconcile(&rows, items, D, 3);
        assert_eq!(out.matched.len(), 3, "{out:#?}");
        let mut kinds: Vec<(MismatchType, String)> = out
            .mismatches
            .iter()
            .map(|m| {
                let id = m
                    .item
                    .as_ref()
                    .map(|i| i.request_id.clone())
                    .or_else(|| m.row.as_ref().map(|r| r.out_trade_no.clone()))
                    .unwrap();
                (m.kind, id)
            })
            .collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [
                (MismatchType::MissingOnPlatform, "stray".to_string()),
                (MismatchType::MissingAtChannel, "absent".to_string()),
                (MismatchType::AmountMismatch, "amount".to_string()),
                (MismatchType::StatusMismatch, "unanswered".to_string()),
                (MismatchType::FeeMismatch, "fee".to_string()),
                (MismatchType::Duplicate, "dup".to_string()),
            ]
        );
        // Each difference's suspense, the channel's side less ours: long when the channel
        // holds more (charged, never booked; duplicated; amount up), short otherwise.
        let suspense: Vec<(MismatchType, i128)> = {
            let mut v: Vec<_> = out
                .mismatches
                .iter()
                .map(|m| (m.kind, m.suspense()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            suspense,
            [
                (MismatchType::MissingOnPlatform, 299),
                (MismatchType::MissingAtChannel, -699),
                (MismatchType::AmountMismatch, 50),
                (MismatchType::StatusMismatch, 499),
                (MismatchType::FeeMismatch, -1),
                (MismatchType::Duplicate, 1_397),
            ]
        );
        assert_eq!(
            suspense_totals(&out.mismatches),
            (299 + 50 + 499 + 1_397, 700)
        );
        // The late one waits in the pool, and is matched from it by the next statement.
        assert_eq!(out.pool, std::slice::from_ref(&late));
        let next = reconcile(&[row_of(&late)], out.pool, BusinessDate(D.0 + 1), 3);
        assert_eq!(next.matched.len(), 1);
        assert!(next.mismatches.is_empty() && next.pool.is_empty());
        // Never listed: after the wait it is missing at the channel.
        let waiting = reconcile(&[], vec![late.clone()], BusinessDate(D.0 + 2), 3);
        assert_eq!(waiting.pool.len(), 1);
        let missing = reconcile(&[], waiting.pool, BusinessDate(D.0 + 3), 3);
        assert_eq!(missing.mismatches[0].kind, MismatchType::MissingAtChannel);
    }

    #[test]
    fn a_charge_is_found_by_its_channel_reference_when_the_ids_differ() {
        let it = item(RowKind::Charge, "ours", 100, 0, ItemStatus::Succeeded, D);
        let mut row = row_of(&it);
        row.out_trade_no = "rewritten-by-the-channel".into();
        let out = reconcile(&[row], vec![it], D, 3);
        assert_eq!(out.matched.len(), 1);
    }

    proptest::proptest! {
        /// Every row and every item lands in exactly one place, and with a statement that
        /// lists exactly the platform's successes, everything matches.
        #[test]
        fn every_row_and_item_is_accounted_for_once(
            specs in proptest::collection::vec((0u8..3, 1i64..100_000, 0i64..100, 0i32..5, 0u8..6), 0..60),
        ) {
            let items: Vec<Item> = specs
                .iter()
                .enumerate()
                .map(|(i, (status, amount, fee, age, _))| Item {
                    kind: if i % 4 == 3 { RowKind::Refund } else { RowKind::Charge },
                    request_id: format!("r{i}"),
                    channel_reference: Some(format!("c{i}")),
                    amount: *amount,
                    fee: *fee,
                    status: [ItemStatus::Succeeded, ItemStatus::Processing, ItemStatus::Failed][*status as usize],
                    date: BusinessDate(D.0 - age),
                })
                .collect();
            // The channel lists each item per its plant: 0 as is, 1 absent, 2 amount + 1,
            // 3 fee + 1, 4 twice, 5 as is.
            let mut rows = Vec::new();
            for (it, (_, _, _, _, plant)) in items.iter().zip(&specs) {
                let mut r = row_of(it);
                match plant {
                    1 => continue,
                    2 => r.amount += 1,
                    3 => r.fee += 1,
                    4 => rows.push(r.clone()),
                    _ => {}
                }
                rows.push(r);
            }
            let out = reconcile(&rows, items.clone(), D, 3);
            let rows_placed = out.matched.len() + out.mismatches.iter().filter(|m| m.row.is_some()).count();
            proptest::prop_assert_eq!(rows_placed, rows.len());
            let failed_unlisted = items
                .iter()
                .zip(&specs)
                .filter(|(i, s)| i.status == ItemStatus::Failed && s.4 == 1)
                .count();
            let items_placed = out.matched.len()
                + out.mismatches.iter().filter(|m| m.item.is_some()).count()
                + out.pool.len()
                + failed_unlisted;
            proptest::prop_assert_eq!(items_placed, items.len());
            let dups = specs.iter().filter(|s| s.4 == 4).count();
            proptest::prop_assert_eq!(
                out.mismatches.iter().filter(|m| m.kind == MismatchType::Duplicate).count(),
                dups
            );
            // Booking each mismatch's suspense brings our position at the channel to the
            // statement's: Σ rows = Σ successes placed (not waiting) + Σ suspense.
            let rows_total: i128 = rows.iter().map(|r| net(r.kind, r.amount, r.fee)).sum();
            let booked: i128 = out
                .matched
                .iter()
                .map(|(i, _)| i)
                .chain(out.mismatches.iter().filter_map(|m| m.item.as_ref()))
                .filter(|i| i.status == ItemStatus::Succeeded)
                .map(|i| net(i.kind, i.amount, i.fee))
                .sum();
            let suspense: i128 = out.mismatches.iter().map(Mismatch::suspense).sum();
            proptest::prop_assert_eq!(rows_total, booked + suspense);
            let (long, short) = suspense_totals(&out.mismatches);
            proptest::prop_assert_eq!(long - short, suspense);
            proptest::prop_assert!(long >= 0 && short >= 0);
            // A statement of exactly the successes, as booked: all matched.
            let clean: Vec<Row> = items.iter().filter(|i| i.status == ItemStatus::Succeeded).map(row_of).collect();
            let successes = clean.len();
            let all = reconcile(&clean, items.iter().filter(|i| i.status == ItemStatus::Succeeded).cloned().collect(), D, 3);
            proptest::prop_assert_eq!(all.matched.len(), successes);
            proptest::prop_assert!(all.mismatches.is_empty() && all.pool.is_empty());
        }
    }
}

//! Merchant settlement (清算 / 结算, `../shared/FUNDS.md` "Merchant settlement", issue #16):
//! when a merchant's takings mature (T+N business days) and what a settlement batch pays.
//! Pure integer rules in minor units, checked: no clock, no I/O.
//!
//! A merchant has three ledger accounts in play: **pending** (GL 2101, where payments land
//! and refunds are taken from; it may go below zero), **available** (GL 2102, never below
//! zero) and the platform's **merchant negative balances** (GL 1201, what merchants owe us:
//! a shortfall carried). Payouts leave available for the platform's **payouts in transit**
//! (GL 2104) until the payout channel confirms them.
//!
//! - [`Clearing::take_in`]: each closed business date's net movement of the pending account
//!   that did not come from maturity itself (payments' net − refunds' merchant part − …) joins
//!   a queue under its date.
//! - [`Clearing::mature`]: at the day-end of `E`, what is queued under dates `≤ E − N` matures
//!   (the merchant's `settlement_cycle_days` = N; every business date is a business day),
//!   less what reconciliation has flagged, which stays queued.
//! - [`maturity`]: the postings that move the matured amount from pending to available; a
//!   negative amount (refunds above takings) is taken from available as far as it goes and
//!   the rest carried as owed.
//! - [`batch`]: netting: what is owed is offset from available first, then the rest is paid
//!   out when it reaches the merchant's `min_payout`.

use bincode::{Decode, Encode};

use crate::gl::BusinessDate;

/// Longest settlement cycle a merchant may have, in business days.
pub const CYCLE_DAYS_MAX: u16 = 30;

/// Dates kept in a merchant's queue at most: a cycle's worth plus flagged stragglers. A date
/// beyond it is merged into the oldest entry (never dropped), so the record stays bounded.
pub const QUEUE_MAX: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettleError {
    #[error("an amount would overflow")]
    Overflow,
    #[error("the dates taken in must follow {0}")]
    OutOfOrder(BusinessDate),
}

/// A merchant's clearing state, kept by the day-end's settlement steps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Clearing {
    /// Net takings not yet matured, by the business date they were booked on, oldest first.
    pub queue: Vec<(BusinessDate, i64)>,
    /// Maturity legs on the pending account (credit-positive) not yet taken in, with the
    /// date each was booked on: a day's turnover includes them, and they are not takings.
    pub posted: Vec<(BusinessDate, i64)>,
    /// The last business date whose turnover was taken in.
    pub through: Option<BusinessDate>,
    /// What the merchant owes us (a shortfall carried), ≥ 0.
    pub owed: i64,
    /// Σ payouts the payout channel confirmed.
    pub paid_out: i64,
    /// Σ payouts sent and not yet confirmed or failed.
    pub in_transit: i64,
}

/// One pending-account day as the day-end's snapshot has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingDay {
    pub date: BusinessDate,
    /// The account's balance when the day opened (the first date taken in queues it: money
    /// from before settlement was tracked).
    pub opening: i64,
    pub debit: i128,
    pub credit: i128,
}

impl Clearing {
    /// Takes in `day`, the next business date after [`Clearing::through`]: its turnover,
    /// less the maturity postings booked on it, is queued under its date (a zero is not).
    pub fn take_in(&mut self, day: PendingDay) -> Result<(), SettleError> {
        if let Some(t) = self.through {
            if day.date <= t {
                return Err(SettleError::OutOfOrder(t));
            }
        } else if day.opening != 0 {
            // The first date seen: what the account already held matures as if booked on
            // the day before.
            let before = BusinessDate(day.date.0 - 1);
            self.push(before, day.opening)?;
        }
        let mut net = day
            .credit
            .checked_sub(day.debit)
            .ok_or(SettleError::Overflow)?;
        let mut i = 0;
        while i < self.posted.len() {
            if self.posted[i].0 <= day.date {
                net = net
                    .checked_sub(i128::from(self.posted[i].1))
                    .ok_or(SettleError::Overflow)?;
                self.posted.remove(i);
            } else {
                i += 1;
            }
        }
        let net = i64::try_from(net).map_err(|_| SettleError::Overflow)?;
        self.push(day.date, net)?;
        self.through = Some(day.date);
        Ok(())
    }

    fn push(&mut self, date: BusinessDate, amount: i64) -> Result<(), SettleError> {
        if amount == 0 {
            return Ok(());
        }
        if let Some(last) = self.queue.last_mut().filter(|l| l.0 == date) {
            last.1 = last.1.checked_add(amount).ok_or(SettleError::Overflow)?;
            return Ok(());
        }
        self.queue.push((date, amount));
        if self.queue.len() > QUEUE_MAX {
            // Merge the two oldest: the later date keeps both (it matures no earlier).
            let (_, a) = self.queue.remove(0);
            self.queue[0].1 = self.queue[0]
                .1
                .checked_add(a)
                .ok_or(SettleError::Overflow)?;
        }
        Ok(())
    }

    /// What matures at the day-end of `today` under a cycle of `cycle_days`: everything queued
    /// under a date `≤ today − cycle_days`, less `flagged(date)` (held by reconciliation,
    /// kept queued). Removed from the queue; answers the amount (may be negative).
    pub fn mature(
        &mut self,
        today: BusinessDate,
        cycle_days: u16,
        flagged: impl Fn(BusinessDate) -> i64,
    ) -> Result<(i64, Vec<(BusinessDate, i64)>), SettleError> {
        let due = BusinessDate(today.0 - i32::from(cycle_days));
        let mut total: i64 = 0;
        let mut items = Vec::new();
        let mut kept = Vec::with_capacity(self.queue.len());
        for (date, amount) in self.queue.drain(..) {
            if date > due {
                kept.push((date, amount));
                continue;
            }
            let held = flagged(date).clamp(0, amount.max(0));
            let now = amount - held;
            if held != 0 {
                kept.push((date, held));
            }
            if now != 0 {
                total = total.checked_add(now).ok_or(SettleError::Overflow)?;
                items.push((date, now));
            }
        }
        kept.sort_by_key(|e| e.0);
        self.queue = kept;
        Ok((total, items))
    }

    /// Unmatured takings, Σ of the queue.
    pub fn queued(&self) -> i128 {
        self.queue.iter().map(|e| i128::from(e.1)).sum()
    }
}

/// The legs of one settlement movement on a merchant's accounts, credit-positive as ledger
/// postings are; they sum to zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Legs {
    /// The merchant's pending account (GL 2101).
    pub pending: i64,
    /// The merchant's available account (GL 2102).
    pub available: i64,
    /// The platform's merchant negative balances (GL 1201, an asset: a debit is owed to us).
    pub negative: i64,
    /// The platform's payouts in transit (GL 2104).
    pub transit: i64,
}

impl Legs {
    pub fn sum(&self) -> i128 {
        [self.pending, self.available, self.negative, self.transit]
            .iter()
            .map(|v| i128::from(*v))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        *self == Legs::default()
    }
}

/// What a maturity moves, and what the merchant owes after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Matured {
    pub legs: Legs,
    pub owed: i64,
}

/// Moves `matured` from pending to available, `available` being what the merchant's
/// available account holds and `owed` its carried shortfall. A negative amount (the dates'
/// refunds exceeded their takings) is taken back from available as far as it goes; the
/// rest is carried as owed, booked to merchant negative balances.
pub fn maturity(matured: i64, available: i64, owed: i64) -> Result<Matured, SettleError> {
    let neg = |v: i64| v.checked_neg().ok_or(SettleError::Overflow);
    if matured >= 0 {
        return Ok(Matured {
            legs: Legs {
                pending: neg(matured)?,
                available: matured,
                ..Legs::default()
            },
            owed,
        });
    }
    let back = neg(matured)?;
    let from_available = back.min(available.max(0));
    let carried = back - from_available;
    Ok(Matured {
        legs: Legs {
            pending: back,
            available: neg(from_available)?,
            negative: neg(carried)?,
            transit: 0,
        },
        owed: owed.checked_add(carried).ok_or(SettleError::Overflow)?,
    })
}

/// A settlement batch's netting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Netted {
    pub legs: Legs,
    /// Owed offset from available.
    pub offset: i64,
    /// Sent to the merchant's bank account (0: nothing paid).
    pub payout: i64,
    /// Owed after the batch.
    pub owed: i64,
    /// Left in available (below `min_payout`).
    pub kept: i64,
}

/// Nets a merchant at a settlement batch: what it owes is offset from `available` first;
/// what is left is paid out if it is at least `min_payout` (and more than zero), else kept.
pub fn batch(available: i64, owed: i64, min_payout: i64) -> Result<Netted, SettleError> {
    let available = available.max(0);
    let owed = owed.max(0);
    let offset = owed.min(available);
    let left = available - offset;
    let payout = if left > 0 && left >= min_payout {
        left
    } else {
        0
    };
    let out = offset.checked_add(payout).ok_or(SettleError::Overflow)?;
    Ok(Netted {
        legs: Legs {
            pending: 0,
            available: -out,
            negative: offset,
            transit: payout,
        },
        offset,
        payout,
        owed: owed - offset,
        kept: left - payout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(n: i32) -> BusinessDate {
        BusinessDate(20_000 + n)
    }

    fn day(n: i32, opening: i64, debit: i128, credit: i128) -> PendingDay {
        PendingDay {
            date: d(n),
            opening,
            debit,
            credit,
        }
    }

    /// The netting case: payments 100.00 and refunds 130.00 in one cycle pay nothing
    /// and carry 30.00, offset by the next cycle's income; nothing matures before T+N.
    #[test]
    fn refunds_above_takings_are_carried_and_offset_by_the_next_cycle() {
        let mut c = Clearing::default();
        c.take_in(day(0, 0, 13_000, 10_000)).unwrap();
        // T+1: nothing matures at the day-end of the date itself.
        assert_eq!(c.mature(d(0), 1, |_| 0).unwrap().0, 0);
        c.take_in(day(1, -3_000, 0, 0)).unwrap();
        let (m, items) = c.mature(d(1), 1, |_| 0).unwrap();
        assert_eq!((m, items), (-3_000, vec![(d(0), -3_000)]));
        let mat = maturity(m, 0, c.owed).unwrap();
        assert_eq!(mat.legs.sum(), 0);
        assert_eq!(mat.owed, 3_000);
        assert_eq!(mat.legs.negative, -3_000);
        c.owed = mat.owed;
        let b = batch(0, c.owed, 0).unwrap();
        assert_eq!((b.payout, b.owed), (0, 3_000));
        // The maturity posting (+30.00 into pending) is booked on date 2.
        c.posted.push((d(2), mat.legs.pending));
        c.take_in(day(2, 0, 0, 5_000 + 3_000)).unwrap();
        assert_eq!(c.queue, vec![(d(2), 5_000)]);
        let (m, _) = c.mature(d(3), 1, |_| 0).unwrap();
        assert_eq!(m, 5_000);
        let mat = maturity(m, 0, c.owed).unwrap();
        let b = batch(5_000, mat.owed, 0).unwrap();
        assert_eq!((b.offset, b.payout, b.owed), (3_000, 2_000, 0));
        assert_eq!(b.legs.sum(), 0);
    }

    #[test]
    fn a_cycle_of_n_business_days_and_flags_hold_items_back() {
        let mut c = Clearing::default();
        for n in 0..5 {
            c.take_in(day(n, 0, 0, 100 * i128::from(n + 1))).unwrap();
        }
        // T+3 at the day-end of date 4: dates 0 and 1 mature; date 0 has 40 flagged.
        let (m, items) = c
            .mature(d(4), 3, |x| if x == d(0) { 40 } else { 0 })
            .unwrap();
        assert_eq!(m, 60 + 200);
        assert_eq!(items, vec![(d(0), 60), (d(1), 200)]);
        assert_eq!(
            c.queue,
            vec![(d(0), 40), (d(2), 300), (d(3), 400), (d(4), 500)]
        );
        // Unflagged, it matures at the next day-end.
        let (m, _) = c.mature(d(5), 3, |_| 0).unwrap();
        assert_eq!(m, 40 + 300);
    }

    #[test]
    fn money_from_before_is_queued_the_day_before_the_first_date() {
        let mut c = Clearing::default();
        c.take_in(day(10, 7_000, 0, 0)).unwrap();
        assert_eq!(c.queue, vec![(d(9), 7_000)]);
        assert_eq!(
            c.take_in(day(10, 0, 0, 0)),
            Err(SettleError::OutOfOrder(d(10)))
        );
    }

    #[test]
    fn min_payout_keeps_small_amounts_available() {
        let b = batch(999, 0, 1_000).unwrap();
        assert_eq!((b.payout, b.kept, b.legs), (0, 999, Legs::default()));
        let b = batch(1_000, 0, 1_000).unwrap();
        assert_eq!((b.payout, b.kept), (1_000, 0));
    }

    #[test]
    fn the_queue_stays_bounded() {
        let mut c = Clearing::default();
        for n in 0..200 {
            c.take_in(day(n, 0, 0, 1)).unwrap();
        }
        assert_eq!(c.queue.len(), QUEUE_MAX);
        assert_eq!(c.queued(), 200);
    }

    proptest! {
        /// Whatever the days, cycles, flags and min_payout: every leg set balances, available
        /// never goes below zero, and money is conserved — Σ takings = matured + still
        /// queued; matured + carried = what available received = payouts + offsets + kept;
        /// carried − offset = owed.
        #[test]
        fn settlement_conserves_money(
            days in proptest::collection::vec((0i64..1_000_000, 0i64..1_000_000), 1..40),
            cycle in 0u16..5,
            min_payout in 0i64..500_000,
            flag_every in 1i32..7,
        ) {
            let mut c = Clearing::default();
            let mut available: i64 = 0;
            let (mut taken, mut matured_total, mut carried_total) = (0i128, 0i128, 0i128);
            let (mut paid, mut offset_total) = (0i128, 0i128);
            for (i, (credit, debit)) in days.iter().enumerate() {
                let n = i as i32;
                taken += i128::from(credit - debit);
                // The day's turnover includes the maturity legs booked on it.
                let legs: i64 = c.posted.iter().filter(|p| p.0 <= d(n)).map(|p| p.1).sum();
                let (extra_debit, extra_credit) = if legs < 0 { (-legs, 0) } else { (0, legs) };
                c.take_in(PendingDay {
                    date: d(n),
                    opening: 0,
                    debit: i128::from(debit + extra_debit),
                    credit: i128::from(credit + extra_credit),
                }).unwrap();
                let (m, _) = c.mature(d(n), cycle, |x| i64::from(x.0 % flag_every == 0)).unwrap();
                matured_total += i128::from(m);
                let mat = maturity(m, available, c.owed).unwrap();
                prop_assert_eq!(mat.legs.sum(), 0);
                carried_total += i128::from(mat.owed - c.owed);
                c.owed = mat.owed;
                available += mat.legs.available;
                prop_assert!(available >= 0);
                // Booked on the next date (the day-end runs after the switch).
                c.posted.push((d(n + 1), mat.legs.pending));
                let b = batch(available, c.owed, min_payout).unwrap();
                prop_assert_eq!(b.legs.sum(), 0);
                available += b.legs.available;
                prop_assert!(available >= 0);
                prop_assert_eq!(available, b.kept);
                c.owed = b.owed;
                paid += i128::from(b.payout);
                offset_total += i128::from(b.offset);
            }
            prop_assert_eq!(taken, matured_total + c.queued());
            prop_assert_eq!(
                matured_total + carried_total,
                i128::from(available) + paid + offset_total
            );
            prop_assert_eq!(carried_total - offset_total, i128::from(c.owed));
        }
    }
}

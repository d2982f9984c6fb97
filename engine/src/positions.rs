//! Positions and reserve (头寸 / 备付金, `../shared/FUNDS.md` "Positions and reserve", issue
//! #16): the platform's funds at its clearing banks and channels against what it owes its
//! customers and merchants. Pure rules in minor units: which GL accounts are funds and which
//! are owed, the coverage check, when a channel's takings settle to the reserve, the
//! low-water monitors, and a reserve transfer's two phases.
//!
//! - **Funds** are money the platform holds for others: the reserve at its clearing banks
//!   (GL 1001), money moving between its reserve accounts (1002), and what channels owe it for
//!   charges they made (1101), which they settle to the reserve within their lag. Receivables
//!   count because a card payment credits the merchant at once while the channel pays T+N:
//!   without them every card payment would be a shortfall until its channel settles.
//! - **Owed** is everything the platform owes customers and merchants: customer balances
//!   (2001), merchants' pending and available (2101, 2102), split receivers (2103), payouts in
//!   transit (2104: still owed until the payout channel confirms), refunds in transit (2201)
//!   and coupon budgets (2301).
//! - **Coverage**: funds ≥ owed. The difference is the platform's own money (fee income,
//!   equity) less its costs; a shortfall means customer money is missing.

use bincode::{Decode, Encode};

use crate::gl::{BusinessDate, GlAccount};
use crate::settlement::{Clearing, PendingDay, SettleError};

/// The GL accounts whose balances are funds (debit-normal assets).
pub const FUNDS: [GlAccount; 3] = [
    GlAccount::Reserve,
    GlAccount::FundsInTransit,
    GlAccount::ChannelReceivable,
];

/// The GL accounts whose balances are owed to customers and merchants (credit-normal).
pub const OWED: [GlAccount; 7] = [
    GlAccount::CustomerBalances,
    GlAccount::MerchantPending,
    GlAccount::MerchantAvailable,
    GlAccount::SplitReceivers,
    GlAccount::PayoutsInTransit,
    GlAccount::RefundsInTransit,
    GlAccount::CouponBudgets,
];

/// Longest lag after which a channel settles a business date's takings to the reserve.
pub const SETTLEMENT_LAG_DAYS_MAX: u16 = 30;

/// The coverage check's figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// Σ funds, on their normal (debit) side.
    pub funds: i128,
    /// Σ owed, on their normal (credit) side.
    pub owed: i128,
}

impl Coverage {
    /// From each GL account's credit-positive balance (as the ledger keeps them).
    pub fn of(balance: impl Fn(GlAccount) -> i128) -> Coverage {
        Coverage {
            funds: FUNDS.iter().map(|g| -balance(*g)).sum(),
            owed: OWED.iter().map(|g| balance(*g)).sum(),
        }
    }

    /// funds − owed: the platform's own money in the reserve (negative: a shortfall).
    pub fn surplus(&self) -> i128 {
        self.funds - self.owed
    }

    /// What is missing (0 when covered).
    pub fn shortfall(&self) -> i128 {
        (-self.surplus()).max(0)
    }

    pub fn covered(&self) -> bool {
        self.funds >= self.owed
    }
}

/// A position's low-water monitor: a mark of 0 is no mark; under a set mark is an alert.
pub fn below_low_water(position: i128, mark: i64) -> bool {
    mark > 0 && position < i128::from(mark)
}

/// A channel's receivable day as the day-end's snapshot has it (credit-positive, as the
/// ledger keeps it: what the channel owes us is a debit balance).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivableDay {
    pub date: BusinessDate,
    pub opening: i64,
    pub debit: i128,
    pub credit: i128,
}

/// A channel's settlement to the reserve: each business date's net takings at the channel
/// (charges net of its fee, less refunds it paid back) queue under their date and are
/// settled to the reserve at the day-end `lag_days` business days later. The same queue as
/// a merchant's clearing ([`Clearing`]), on the receivable's debit side.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct ChannelClearing(pub Clearing);

impl ChannelClearing {
    /// Takes in the next closed date of the channel's receivable account.
    pub fn take_in(&mut self, day: ReceivableDay) -> Result<(), SettleError> {
        let opening = day.opening.checked_neg().ok_or(SettleError::Overflow)?;
        self.0.take_in(PendingDay {
            date: day.date,
            opening,
            debit: day.credit,
            credit: day.debit,
        })
    }

    /// What settles at the day-end of `today` under a lag of `lag_days`, by date: removed
    /// from the queue. A negative amount: refunds above charges, which we pay the channel.
    pub fn settle(
        &mut self,
        today: BusinessDate,
        lag_days: u16,
    ) -> Result<(i64, Vec<(BusinessDate, i64)>), SettleError> {
        self.0.mature(today, lag_days, |_| 0)
    }

    /// Notes the settlement of `amount` booked on `booked_on`: the receivable's turnover of
    /// that date includes it, and it is not a taking.
    pub fn posted(&mut self, booked_on: BusinessDate, amount: i64) {
        if amount != 0 {
            self.0.posted.push((booked_on, -amount));
        }
    }

    /// Unsettled takings by the date they settle: each queued date plus the lag.
    pub fn expected(&self, lag_days: u16) -> Vec<(BusinessDate, i64)> {
        let mut out: Vec<(BusinessDate, i64)> = Vec::new();
        for (date, amount) in &self.0.queue {
            let on = BusinessDate(date.0 + i32::from(lag_days));
            match out.last_mut() {
                Some(last) if last.0 == on => last.1 = last.1.saturating_add(*amount),
                _ => out.push((on, *amount)),
            }
        }
        out
    }
}

/// Where a reserve transfer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum TransferPhase {
    /// Left the source account, in transit (GL 1002).
    Pending,
    /// Arrived at the destination.
    Confirmed,
    /// Did not leave the bank after all: back at the source.
    Voided,
}

impl TransferPhase {
    pub fn name(self) -> &'static str {
        match self {
            TransferPhase::Pending => "pending",
            TransferPhase::Confirmed => "confirmed",
            TransferPhase::Voided => "voided",
        }
    }
}

/// A reserve transfer's step refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PhaseError {
    #[error("the transfer is already {}", .0.name())]
    Decided(TransferPhase),
}

/// The legs of one phase of a reserve transfer of `amount`, credit-positive, as (source,
/// in transit, destination): it leaves the source for funds in transit, then arrives at the
/// destination (confirm) or returns to the source (void).
pub fn reserve_transfer_legs(
    from: TransferPhase,
    to: TransferPhase,
    amount: i64,
) -> Result<(i64, i64, i64), PhaseError> {
    match (from, to) {
        (TransferPhase::Pending, TransferPhase::Pending) => Ok((amount, -amount, 0)),
        (TransferPhase::Pending, TransferPhase::Confirmed) => Ok((0, amount, -amount)),
        (TransferPhase::Pending, TransferPhase::Voided) => Ok((-amount, amount, 0)),
        (decided, _) => Err(PhaseError::Decided(decided)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credit_positive(pairs: &[(GlAccount, i128)]) -> impl Fn(GlAccount) -> i128 + '_ {
        move |g| pairs.iter().find(|p| p.0 == g).map_or(0, |p| p.1)
    }

    #[test]
    fn coverage_counts_funds_against_owed() {
        // Deposits of 1,000 (reserve −1,000 credit-positive); 300 paid to a merchant with a
        // fee of 3; a card payment of 100 at a channel keeping 0.20, 0.60 our fee.
        let b = [
            (GlAccount::Reserve, -100_000),
            (GlAccount::ChannelReceivable, -9_980),
            (GlAccount::ChannelFees, -20),
            (GlAccount::CustomerBalances, 70_000),
            (GlAccount::MerchantPending, 29_700 + 9_940),
            (GlAccount::FeeIncome, 300 + 60),
        ];
        let c = Coverage::of(credit_positive(&b));
        assert_eq!(c.funds, 109_980);
        assert_eq!(c.owed, 109_640);
        assert_eq!(c.surplus(), 340);
        assert!(c.covered());
        assert_eq!(c.shortfall(), 0);
        // 10.00 gone from the reserve with nothing owed less: a shortfall of 6.60.
        let short = [
            (GlAccount::Reserve, -99_000),
            (GlAccount::ChannelReceivable, -9_980),
            (GlAccount::CustomerBalances, 70_000),
            (GlAccount::MerchantPending, 39_640),
        ];
        let c = Coverage::of(credit_positive(&short));
        assert!(!c.covered());
        assert_eq!(c.shortfall(), 660);
        // Payouts in transit are still owed; the fee income is the platform's own.
        let c = Coverage::of(credit_positive(&[
            (GlAccount::Reserve, -100),
            (GlAccount::PayoutsInTransit, 100),
            (GlAccount::FeeIncome, 5),
        ]));
        assert_eq!((c.funds, c.owed), (100, 100));
    }

    #[test]
    fn low_water_marks() {
        assert!(!below_low_water(-5, 0), "no mark, no alert");
        assert!(below_low_water(99, 100));
        assert!(!below_low_water(100, 100));
    }

    #[test]
    fn a_channel_settles_each_date_after_its_lag() {
        let d = |n: i32| BusinessDate(20_000 + n);
        let mut c = ChannelClearing::default();
        // Day 0: charges net 99.80 owed by the channel (a debit on the receivable).
        c.take_in(ReceivableDay {
            date: d(0),
            opening: 0,
            debit: 9_980,
            credit: 0,
        })
        .unwrap();
        assert_eq!(c.expected(1), vec![(d(1), 9_980)]);
        // At day 0's own day-end nothing settles under T+1.
        assert_eq!(c.settle(d(0), 1).unwrap(), (0, vec![]));
        // Day 1: another 50.00, a refund of 10.00 paid back by the channel.
        c.take_in(ReceivableDay {
            date: d(1),
            opening: -9_980,
            debit: 5_000,
            credit: 1_000,
        })
        .unwrap();
        let (due, items) = c.settle(d(1), 1).unwrap();
        assert_eq!((due, items), (9_980, vec![(d(0), 9_980)]));
        // Booked on day 2 (the open date at day 1's day-end): its credit on the receivable
        // is not a taking of day 2.
        c.posted(d(2), 9_980);
        c.take_in(ReceivableDay {
            date: d(2),
            opening: -13_980,
            debit: 0,
            credit: 9_980,
        })
        .unwrap();
        assert_eq!(c.0.queued(), 4_000);
        assert_eq!(c.settle(d(2), 1).unwrap().0, 4_000);
        assert_eq!(c.0.queued(), 0);
        // Refunds above charges: the platform pays the channel.
        c.take_in(ReceivableDay {
            date: d(3),
            opening: 0,
            debit: 0,
            credit: 500,
        })
        .unwrap();
        assert_eq!(c.settle(d(4), 1).unwrap().0, -500);
    }

    #[test]
    fn reserve_transfers_have_two_phases() {
        use TransferPhase::*;
        assert_eq!(
            reserve_transfer_legs(Pending, Pending, 500),
            Ok((500, -500, 0))
        );
        assert_eq!(
            reserve_transfer_legs(Pending, Confirmed, 500),
            Ok((0, 500, -500))
        );
        assert_eq!(
            reserve_transfer_legs(Pending, Voided, 500),
            Ok((-500, 500, 0))
        );
        assert_eq!(
            reserve_transfer_legs(Confirmed, Voided, 500),
            Err(PhaseError::Decided(Confirmed))
        );
        assert_eq!(
            reserve_transfer_legs(Voided, Confirmed, 500),
            Err(PhaseError::Decided(Voided))
        );
        // Each phase balances, and the two phases together move the money once.
        for to in [Confirmed, Voided] {
            let (a, b, c) = reserve_transfer_legs(Pending, Pending, 700).unwrap();
            let (x, y, z) = reserve_transfer_legs(Pending, to, 700).unwrap();
            assert_eq!(a + b + c, 0);
            assert_eq!(x + y + z, 0);
            assert_eq!(b + y, 0, "nothing left in transit");
            assert_eq!(a + x + c + z, 0);
        }
    }

    proptest::proptest! {
        /// Whatever the daily takings and the lag, everything taken in settles exactly once:
        /// Σ settled + queued = Σ takings, and nothing settles before its date + lag.
        #[test]
        fn channel_settlement_conserves_money(
            takings in proptest::collection::vec(-1_000_000i64..=10_000_000, 1..40),
            lag in 0u16..=5,
        ) {
            let mut c = ChannelClearing::default();
            let mut settled = 0i128;
            let mut opening = 0i64;
            for (i, t) in takings.iter().enumerate() {
                let date = BusinessDate(20_000 + i as i32);
                // The day's turnover: its takings, plus what settled at the last day-end.
                let posted: i64 = c.0.posted.iter().map(|p| -p.1).sum();
                c.take_in(ReceivableDay {
                    date,
                    opening,
                    debit: i128::from((*t).max(0)),
                    credit: i128::from((-*t).max(0)) + i128::from(posted),
                })
                .unwrap();
                opening = opening - *t + posted;
                let (due, items) = c.settle(date, lag).unwrap();
                for (d, _) in &items {
                    proptest::prop_assert!(d.0 + i32::from(lag) <= date.0);
                }
                settled += i128::from(due);
                c.posted(BusinessDate(date.0 + 1), due);
            }
            let total: i128 = takings.iter().map(|t| i128::from(*t)).sum();
            proptest::prop_assert_eq!(settled + c.0.queued(), total);
        }
    }
}

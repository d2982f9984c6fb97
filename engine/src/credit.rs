//! Credit lines (信用支付, issue #18, `../shared/FUNDS.md` "Credit lines"): bills, minimum
//! due, repayments (fees, then interest, then principal, oldest bill first), daily interest
//! on overdue principal (half up, to the minor unit), late fees, days past due and their
//! buckets. Pure: the caller gives the business date and what the ledger says is drawn; the
//! returned effects are booked by the services in one unit with the new state.

use bincode::{Decode, Encode};

use crate::gl::BusinessDate;

/// A line's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Terms {
    /// Most principal outstanding (minor units).
    pub limit: i64,
    /// Day of the month whose day-end issues the bill (1–31; a shorter month bills on its
    /// last day).
    pub billing_day: u8,
    /// Days from a bill's date to its due date.
    pub grace_days: u16,
    /// Interest per day on overdue principal, in millionths (500: 0.05 %).
    pub daily_rate_ppm: u32,
    /// Share of a bill's principal due at least by its due date, in millionths.
    pub min_due_ppm: u32,
    /// Charged once on a bill whose minimum was not paid by its due date (minor units).
    pub late_fee: i64,
}

/// One bill.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Bill {
    pub number: u32,
    pub date: BusinessDate,
    pub due: BusinessDate,
    pub principal: i64,
    pub min_due: i64,
    pub interest: i64,
    pub fees: i64,
    pub paid_principal: i64,
    pub paid_interest: i64,
    pub paid_fees: i64,
}

impl Bill {
    pub fn unpaid_principal(&self) -> i64 {
        self.principal - self.paid_principal
    }
    pub fn unpaid_interest(&self) -> i64 {
        self.interest - self.paid_interest
    }
    pub fn unpaid_fees(&self) -> i64 {
        self.fees - self.paid_fees
    }
    /// Everything still owed on it.
    pub fn unpaid(&self) -> i64 {
        self.unpaid_principal() + self.unpaid_interest() + self.unpaid_fees()
    }
    pub fn paid(&self) -> i64 {
        self.paid_principal + self.paid_interest + self.paid_fees
    }
    /// Days past its due date on `date` while anything is owed (0: not overdue).
    pub fn days_past_due(&self, date: BusinessDate) -> i32 {
        if self.unpaid() > 0 && date.0 > self.due.0 {
            date.0 - self.due.0
        } else {
            0
        }
    }
}

/// A line's state: its bills and the last date its day-end ran for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct State {
    pub bills: Vec<Bill>,
    pub closed_through: Option<BusinessDate>,
}

/// The overdue bucket of `days` past due (as credit bureaus count: M0 current, M1 1–30,
/// M2 31–60, M3 61–90, M4+ beyond).
pub fn bucket(days: i32) -> &'static str {
    match days {
        i32::MIN..=0 => "current",
        1..=30 => "1-30",
        31..=60 => "31-60",
        61..=90 => "61-90",
        _ => "90+",
    }
}

/// `amount × ppm / 1,000,000`, rounded half up (amounts are not negative).
pub fn apply_rate_half_up(amount: i64, ppm: u32) -> i64 {
    let v = i128::from(amount) * i128::from(ppm);
    i64::try_from((v + 500_000) / 1_000_000).unwrap_or(i64::MAX)
}

/// `amount × ppm / 1,000,000`, rounded up (a minimum due never falls short).
fn apply_rate_up(amount: i64, ppm: u32) -> i64 {
    let v = i128::from(amount) * i128::from(ppm);
    i64::try_from((v + 999_999) / 1_000_000).unwrap_or(i64::MAX)
}

impl State {
    /// Principal billed and not paid.
    pub fn billed_principal(&self) -> i64 {
        self.bills.iter().map(Bill::unpaid_principal).sum()
    }

    /// Interest and fees owed.
    pub fn charges(&self) -> i64 {
        self.bills
            .iter()
            .map(|b| b.unpaid_interest() + b.unpaid_fees())
            .sum()
    }

    /// The most days past due of its bills on `date` (0: current).
    pub fn days_past_due(&self, date: BusinessDate) -> i32 {
        self.bills
            .iter()
            .map(|b| b.days_past_due(date))
            .max()
            .unwrap_or(0)
    }

    /// Whether a bill is past its due date unpaid as of the last closed day (new draws are
    /// refused until it is paid).
    pub fn overdue(&self) -> bool {
        self.closed_through
            .is_some_and(|d| self.days_past_due(d) > 0)
    }
}

/// What a day-end did to a line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayEffects {
    /// Interest accrued for the day (to interest income).
    pub interest: i64,
    /// Late fees charged (to fee income).
    pub fees: i64,
    /// A bill issued, its number.
    pub billed: Option<u32>,
}

fn last_day_of_month(date: BusinessDate) -> bool {
    let (_, m, _) = date.ymd();
    let (_, m2, _) = BusinessDate(date.0 + 1).ymd();
    m != m2
}

/// Whether `date`'s day-end issues the bill of a line billing on `day`.
pub fn is_billing_date(day: u8, date: BusinessDate) -> bool {
    let (_, _, d) = date.ymd();
    d == u32::from(day) || (u32::from(day) > d && last_day_of_month(date))
}

/// The day-end of `date` for a line: interest on each overdue bill's unpaid principal (a
/// bill is overdue once `date` is past its due date with anything unpaid), a late fee on a
/// bill whose minimum was not paid by its due date (once, at its first overdue day-end),
/// then on the billing date a bill of the principal drawn and not yet billed (`drawn`: the
/// principal the ledger says is outstanding). A date already closed changes nothing.
pub fn close_day(terms: &Terms, state: &mut State, date: BusinessDate, drawn: i64) -> DayEffects {
    let mut fx = DayEffects::default();
    if state.closed_through.is_some_and(|c| c >= date) {
        return fx;
    }
    for b in state.bills.iter_mut() {
        let days = b.days_past_due(date);
        if days == 0 {
            continue;
        }
        // The first overdue day-end: the minimum was not paid by the due date.
        if days == 1 && b.paid() < b.min_due && terms.late_fee > 0 {
            b.fees += terms.late_fee;
            fx.fees += terms.late_fee;
        }
        let i = apply_rate_half_up(b.unpaid_principal(), terms.daily_rate_ppm);
        b.interest += i;
        fx.interest += i;
    }
    if is_billing_date(terms.billing_day, date) {
        let mut unbilled = drawn - state.billed_principal();
        // Refunds of draws beyond what is unbilled pay billed principal, oldest first.
        for b in state.bills.iter_mut() {
            if unbilled >= 0 {
                break;
            }
            let take = b.unpaid_principal().min(-unbilled);
            b.paid_principal += take;
            unbilled += take;
        }
        if unbilled > 0 {
            let number = state.bills.last().map_or(1, |b| b.number + 1);
            state.bills.push(Bill {
                number,
                date,
                due: BusinessDate(date.0 + i32::from(terms.grace_days)),
                principal: unbilled,
                min_due: apply_rate_up(unbilled, terms.min_due_ppm).min(unbilled),
                ..Bill::default()
            });
            fx.billed = Some(number);
        }
    }
    state.closed_through = Some(date);
    fx
}

/// How a repayment was applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub fees: i64,
    pub interest: i64,
    /// Billed principal.
    pub principal: i64,
    /// Principal drawn and not billed yet.
    pub unbilled: i64,
}

impl Applied {
    pub fn total(&self) -> i64 {
        self.fees + self.interest + self.principal + self.unbilled
    }
}

/// Applies a repayment of `amount`: fees, then interest, then principal, each oldest bill
/// first, then principal not billed yet (`drawn` outstanding in all). More than is owed is
/// refused (`Err` with what is owed).
pub fn repay(state: &mut State, amount: i64, drawn: i64) -> Result<Applied, i64> {
    let unbilled = (drawn - state.billed_principal()).max(0);
    let owed = state.charges() + state.billed_principal() + unbilled;
    if amount > owed {
        return Err(owed);
    }
    let mut left = amount;
    let mut a = Applied::default();
    for b in state.bills.iter_mut() {
        let take = b.unpaid_fees().min(left);
        b.paid_fees += take;
        a.fees += take;
        left -= take;
    }
    for b in state.bills.iter_mut() {
        let take = b.unpaid_interest().min(left);
        b.paid_interest += take;
        a.interest += take;
        left -= take;
    }
    for b in state.bills.iter_mut() {
        let take = b.unpaid_principal().min(left);
        b.paid_principal += take;
        a.principal += take;
        left -= take;
    }
    a.unbilled = left.min(unbilled);
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms() -> Terms {
        Terms {
            limit: 100_000,
            billing_day: 2,
            grace_days: 3,
            daily_rate_ppm: 500,
            min_due_ppm: 100_000,
            late_fee: 2_500,
        }
    }

    fn d(y: i32, m: u32, day: u32) -> BusinessDate {
        BusinessDate::from_ymd(y, m, day).unwrap()
    }

    #[test]
    fn half_up_and_buckets() {
        assert_eq!(apply_rate_half_up(65_000, 500), 33, "32.5 rounds up");
        assert_eq!(apply_rate_half_up(64_900, 500), 32, "32.45 rounds down");
        assert_eq!(apply_rate_up(70_001, 100_000), 7_001);
        assert_eq!(
            [0, 1, 30, 31, 60, 61, 90, 91].map(bucket),
            ["current", "1-30", "1-30", "31-60", "31-60", "61-90", "61-90", "90+"]
        );
        assert!(
            is_billing_date(31, d(2026, 11, 30)),
            "a shorter month bills on its last day"
        );
        assert!(!is_billing_date(31, d(2026, 11, 29)));
        assert!(is_billing_date(2, d(2026, 12, 2)));
    }

    /// The story by hand: 700.00 drawn and billed on 2026-12-02 (due 12-05, minimum
    /// 70.00), 50.00 repaid, overdue from 12-06: a late fee of 25.00 and 650.00 × 0.05 % =
    /// 0.325 → 0.33 a day for 10 days; then 678.30 pays fees, interest, principal.
    #[test]
    fn a_line_drawn_billed_partly_repaid_overdue_and_repaid() {
        let t = terms();
        let mut s = State::default();
        let fx = close_day(&t, &mut s, d(2026, 12, 2), 70_000);
        assert_eq!(fx.billed, Some(1));
        let b = &s.bills[0];
        assert_eq!(
            (b.principal, b.min_due, b.due),
            (70_000, 7_000, d(2026, 12, 5))
        );
        let a = repay(&mut s, 5_000, 70_000).unwrap();
        assert_eq!(
            a,
            Applied {
                principal: 5_000,
                ..Applied::default()
            }
        );
        for day in 3..=5 {
            assert_eq!(
                close_day(&t, &mut s, d(2026, 12, day), 65_000),
                DayEffects::default()
            );
            assert!(!s.overdue());
        }
        let mut interest = 0;
        for (k, day) in (6..=15).enumerate() {
            let fx = close_day(&t, &mut s, d(2026, 12, day), 65_000);
            assert_eq!(fx.interest, 33);
            assert_eq!(fx.fees, if k == 0 { 2_500 } else { 0 });
            interest += fx.interest;
            assert_eq!(s.days_past_due(d(2026, 12, day)), k as i32 + 1);
            assert!(s.overdue());
        }
        assert_eq!((interest, s.charges()), (330, 2_830));
        // Rerunning a closed date changes nothing.
        assert_eq!(
            close_day(&t, &mut s, d(2026, 12, 15), 65_000),
            DayEffects::default()
        );
        assert_eq!(repay(&mut s, 67_831, 65_000), Err(67_830));
        let a = repay(&mut s, 67_830, 65_000).unwrap();
        assert_eq!(
            a,
            Applied {
                fees: 2_500,
                interest: 330,
                principal: 65_000,
                unbilled: 0
            }
        );
        assert!(!s.overdue());
        assert_eq!(s.bills[0].unpaid(), 0);
    }

    #[test]
    fn repayments_go_to_fees_then_interest_then_principal_oldest_first() {
        let mut s = State {
            bills: vec![
                Bill {
                    number: 1,
                    principal: 1_000,
                    interest: 50,
                    fees: 20,
                    ..Bill::default()
                },
                Bill {
                    number: 2,
                    principal: 2_000,
                    interest: 30,
                    fees: 10,
                    ..Bill::default()
                },
            ],
            closed_through: None,
        };
        // 3,000 billed + 500 drawn since.
        let a = repay(&mut s, 100, 3_500).unwrap();
        assert_eq!((a.fees, a.interest, a.principal), (30, 70, 0));
        assert_eq!(
            (s.bills[0].unpaid_interest(), s.bills[1].unpaid_interest()),
            (0, 10)
        );
        let a = repay(&mut s, 1_500, 3_500).unwrap();
        assert_eq!((a.interest, a.principal), (10, 1_490));
        assert_eq!(
            (s.bills[0].unpaid_principal(), s.bills[1].unpaid_principal()),
            (0, 1_510)
        );
        let a = repay(&mut s, 2_010, 3_500).unwrap();
        assert_eq!((a.principal, a.unbilled), (1_510, 500));
    }

    #[test]
    fn a_refund_beyond_the_unbilled_pays_billed_principal_at_billing() {
        let t = terms();
        let mut s = State::default();
        close_day(&t, &mut s, d(2026, 12, 2), 10_000);
        // 3,000 of it refunded: the ledger says 7,000 drawn.
        close_day(&t, &mut s, d(2027, 1, 2), 7_000);
        assert_eq!(s.bills.len(), 1);
        assert_eq!(s.bills[0].unpaid_principal(), 7_000);
    }
}

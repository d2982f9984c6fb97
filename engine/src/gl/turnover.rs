//! Turnover per GL account and currency, maintained with every posting, so that GL balances
//! and the trial balance are read in O(GL accounts), never by scanning the journal.

use std::collections::BTreeMap;

use bincode::{Decode, Encode};

use super::chart::GlAccount;
use crate::money::Currency;

/// Debit and credit turnover of one GL account in one currency, in minor units (both
/// non-negative), and how many postings made it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Movement {
    pub debit: i128,
    pub credit: i128,
    pub postings: u64,
}

/// A sum left i128: it would take about 2^64 postings of the largest amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("turnover of GL account {0:?} overflows")]
pub struct TurnoverOverflow(pub GlAccount);

/// Turnover of a period (a business date) per GL account and currency.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Turnover {
    by_account: BTreeMap<(Currency, GlAccount), Movement>,
}

impl Turnover {
    /// Adds one posting of `amount` (credit-positive, as ledger balances are) to `gl`.
    pub fn post(
        &mut self,
        gl: GlAccount,
        currency: Currency,
        amount: i64,
    ) -> Result<(), TurnoverOverflow> {
        let m = self.by_account.entry((currency, gl)).or_default();
        let side = if amount >= 0 {
            &mut m.credit
        } else {
            &mut m.debit
        };
        *side = side
            .checked_add(i128::from(amount).abs())
            .ok_or(TurnoverOverflow(gl))?;
        m.postings = m.postings.checked_add(1).ok_or(TurnoverOverflow(gl))?;
        Ok(())
    }

    /// Adds a whole movement to `gl` in `currency`.
    pub fn add(
        &mut self,
        gl: GlAccount,
        currency: Currency,
        m: Movement,
    ) -> Result<(), TurnoverOverflow> {
        let slot = self.by_account.entry((currency, gl)).or_default();
        let sum = |a: i128, b: i128| a.checked_add(b).ok_or(TurnoverOverflow(gl));
        *slot = Movement {
            debit: sum(slot.debit, m.debit)?,
            credit: sum(slot.credit, m.credit)?,
            postings: slot
                .postings
                .checked_add(m.postings)
                .ok_or(TurnoverOverflow(gl))?,
        };
        Ok(())
    }

    /// The movement of `gl` in `currency` (zero when nothing was posted).
    pub fn movement(&self, gl: GlAccount, currency: Currency) -> Movement {
        self.by_account
            .get(&(currency, gl))
            .copied()
            .unwrap_or_default()
    }

    /// Every GL account and currency with postings, with its movement.
    pub fn movements(&self) -> impl Iterator<Item = (Currency, GlAccount, Movement)> + '_ {
        self.by_account.iter().map(|((c, g), m)| (*c, *g, *m))
    }

    /// Nothing was posted.
    pub fn is_empty(&self) -> bool {
        self.by_account.is_empty()
    }

    /// Currencies anything was posted in.
    pub fn currencies(&self) -> impl Iterator<Item = Currency> + '_ {
        // Keys are ordered by currency first: each currency's keys are adjacent.
        let mut keys = self.by_account.keys().map(|(c, _)| *c).peekable();
        std::iter::from_fn(move || {
            let c = keys.next()?;
            while keys.next_if_eq(&c).is_some() {}
            Some(c)
        })
    }

    /// The trial balance of this period in `currency`, from each GL account's `opening`
    /// balance (debit-positive; absent is zero): one row per account of the chart that has
    /// an opening balance or turnover.
    pub fn trial_balance(
        &self,
        currency: Currency,
        opening: &BTreeMap<GlAccount, i128>,
    ) -> Result<TrialBalance, TurnoverOverflow> {
        let mut rows = Vec::new();
        let (mut total_debit, mut total_credit) = (0i128, 0i128);
        let (mut total_opening, mut total_closing) = (0i128, 0i128);
        for gl in GlAccount::ALL {
            let m = self.movement(gl, currency);
            let open = opening.get(&gl).copied().unwrap_or(0);
            if open == 0 && m.postings == 0 {
                continue;
            }
            let overflow = || TurnoverOverflow(gl);
            let closing = open
                .checked_add(m.debit)
                .and_then(|v| v.checked_sub(m.credit))
                .ok_or_else(overflow)?;
            total_debit = total_debit.checked_add(m.debit).ok_or_else(overflow)?;
            total_credit = total_credit.checked_add(m.credit).ok_or_else(overflow)?;
            total_opening = total_opening.checked_add(open).ok_or_else(overflow)?;
            total_closing = total_closing.checked_add(closing).ok_or_else(overflow)?;
            rows.push(TrialBalanceRow {
                gl,
                opening: open,
                debit: m.debit,
                credit: m.credit,
                closing,
            });
        }
        Ok(TrialBalance {
            currency,
            balanced: total_debit == total_credit && total_closing == 0 && total_opening == 0,
            rows,
            total_debit,
            total_credit,
        })
    }
}

/// One row of a trial balance; `opening` and `closing` are debit-positive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrialBalanceRow {
    pub gl: GlAccount,
    pub opening: i128,
    pub debit: i128,
    pub credit: i128,
    pub closing: i128,
}

/// A period's trial balance in one currency: balanced when debits equal credits and the
/// opening and closing balances each sum to zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrialBalance {
    pub currency: Currency,
    pub rows: Vec<TrialBalanceRow>,
    pub total_debit: i128,
    pub total_credit: i128,
    pub balanced: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cny() -> Currency {
        Currency::CNY
    }

    #[test]
    fn a_day_of_postings_balances_and_closes_into_the_next_opening() {
        let mut day1 = Turnover::default();
        // A deposit of 100.00: customer balance credited, the reserve debited.
        day1.post(GlAccount::CustomerBalances, cny(), 10_000)
            .unwrap();
        day1.post(GlAccount::Reserve, cny(), -10_000).unwrap();
        // A payment of 32.50 with a 0.20 fee: customer debited, merchant and fee credited.
        day1.post(GlAccount::CustomerBalances, cny(), -3_250)
            .unwrap();
        day1.post(GlAccount::MerchantAvailable, cny(), 3_230)
            .unwrap();
        day1.post(GlAccount::FeeIncome, cny(), 20).unwrap();
        let tb = day1.trial_balance(cny(), &BTreeMap::new()).unwrap();
        assert!(tb.balanced);
        assert_eq!((tb.total_debit, tb.total_credit), (13_250, 13_250));
        let row = |tb: &TrialBalance, gl| *tb.rows.iter().find(|r| r.gl == gl).unwrap();
        let customers = row(&tb, GlAccount::CustomerBalances);
        assert_eq!(
            (customers.debit, customers.credit, customers.closing),
            (3_250, 10_000, -6_750)
        );
        assert_eq!(row(&tb, GlAccount::Reserve).closing, 10_000);
        // Day 2 opens at day 1's closing.
        let opening: BTreeMap<GlAccount, i128> =
            tb.rows.iter().map(|r| (r.gl, r.closing)).collect();
        let mut day2 = Turnover::default();
        day2.post(GlAccount::CustomerBalances, cny(), 500).unwrap();
        day2.post(GlAccount::Reserve, cny(), -500).unwrap();
        let tb2 = day2.trial_balance(cny(), &opening).unwrap();
        assert!(tb2.balanced);
        assert_eq!(row(&tb2, GlAccount::FeeIncome).opening, -20);
        assert_eq!(row(&tb2, GlAccount::FeeIncome).closing, -20);
        assert_eq!(row(&tb2, GlAccount::Reserve).closing, 10_500);
        assert_eq!(
            tb2.rows.len(),
            4,
            "accounts with an opening balance or turnover"
        );
    }

    #[test]
    fn one_sided_turnover_is_not_balanced() {
        let mut t = Turnover::default();
        t.post(GlAccount::CustomerBalances, cny(), 1).unwrap();
        assert!(!t.trial_balance(cny(), &BTreeMap::new()).unwrap().balanced);
        let opening = BTreeMap::from([(GlAccount::Reserve, 5i128)]);
        assert!(
            !Turnover::default()
                .trial_balance(cny(), &opening)
                .unwrap()
                .balanced
        );
    }

    #[test]
    fn currencies_are_kept_apart() {
        let mut t = Turnover::default();
        t.post(GlAccount::CustomerBalances, Currency::USD, 100)
            .unwrap();
        t.post(GlAccount::Reserve, Currency::USD, -100).unwrap();
        t.post(GlAccount::CustomerBalances, cny(), 7).unwrap();
        t.post(GlAccount::Reserve, cny(), -7).unwrap();
        let currencies: Vec<Currency> = t.currencies().collect();
        assert_eq!(currencies.len(), 2);
        let usd = t.trial_balance(Currency::USD, &BTreeMap::new()).unwrap();
        assert_eq!(usd.total_debit, 100);
        assert_eq!(
            t.movement(GlAccount::Reserve, cny()),
            Movement {
                debit: 7,
                credit: 0,
                postings: 1
            }
        );
    }
}

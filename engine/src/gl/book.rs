//! The GL book: every GL account's running balance and each business date's turnover,
//! kept with the writes (by the store's writer, from the journal's legs), so GL balances and
//! trial balances are read in O(GL accounts), never by scanning the journal.
//!
//! Balances are credit-positive, as ledger balances are (see the module above). A posting
//! without a GL account (written before the chart existed, or by a tool that writes to the
//! store directly) is booked to its account's GL account at that point of the journal. A
//! posting without an accounting date (an undated ledger: tests and tools that run the
//! engine without a business date) moves the balance but no day's turnover.

use std::collections::BTreeMap;

use super::chart::GlAccount;
use super::date::BusinessDate;
use super::turnover::{Turnover, TurnoverOverflow};
use crate::account::Account;
use crate::ids::AccountId;
use crate::money::Currency;
use crate::state_machine::Effect;

/// What the book needs to know of an account to move it between GL accounts: its balance
/// and GL account at that point of the journal.
pub type AccountAt<'a> = &'a mut dyn FnMut(AccountId) -> Option<Account>;

/// Why an effect could not be booked: a contradiction in the journal, never a client's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    #[error(transparent)]
    Overflow(#[from] TurnoverOverflow),
    #[error("GL booking of unknown account {0}")]
    UnknownAccount(AccountId),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GlBook {
    balances: BTreeMap<(Currency, GlAccount), i128>,
    days: BTreeMap<BusinessDate, Turnover>,
}

impl GlBook {
    /// A book whose balances are the sums of `accounts` per GL account, with no turnover:
    /// how a store written before the chart gains it.
    pub fn open_from_accounts<'a>(
        accounts: impl IntoIterator<Item = &'a Account>,
    ) -> Result<GlBook, BookError> {
        let mut book = GlBook::default();
        for a in accounts {
            book.add_balance(a.currency, a.gl, i128::from(a.balance))?;
        }
        Ok(book)
    }

    /// A book from its stored parts.
    pub fn from_parts(
        balances: impl IntoIterator<Item = (Currency, GlAccount, i128)>,
        days: impl IntoIterator<Item = (BusinessDate, Turnover)>,
    ) -> GlBook {
        GlBook {
            balances: balances
                .into_iter()
                .filter(|(_, _, b)| *b != 0)
                .map(|(c, g, b)| ((c, g), b))
                .collect(),
            days: days.into_iter().collect(),
        }
    }

    fn add_balance(
        &mut self,
        currency: Currency,
        gl: GlAccount,
        amount: i128,
    ) -> Result<(), BookError> {
        let slot = self.balances.entry((currency, gl)).or_default();
        *slot = slot
            .checked_add(amount)
            .ok_or(BookError::Overflow(TurnoverOverflow(gl)))?;
        Ok(())
    }

    /// One leg: `amount` (credit-positive) on `gl`, in `date`'s turnover when dated.
    pub fn post(
        &mut self,
        date: Option<BusinessDate>,
        currency: Currency,
        gl: GlAccount,
        amount: i64,
    ) -> Result<(), BookError> {
        self.add_balance(currency, gl, i128::from(amount))?;
        if let Some(date) = date {
            self.days
                .entry(date)
                .or_default()
                .post(gl, currency, amount)?;
        }
        Ok(())
    }

    /// Books one journal effect. `account_at` answers an account's state just before the
    /// effect: asked by a GL reassignment (its balance moves from the old GL account to the
    /// new one, as a debit of one and a credit of the other) and for a leg without its GL
    /// account.
    pub fn apply(&mut self, effect: &Effect, account_at: AccountAt<'_>) -> Result<(), BookError> {
        match effect {
            Effect::Posted(t) => {
                for p in &t.postings {
                    let gl = match p.gl {
                        Some(gl) => gl,
                        None => {
                            account_at(p.account)
                                .ok_or(BookError::UnknownAccount(p.account))?
                                .gl
                        }
                    };
                    self.post(t.accounting_date, p.currency, gl, p.amount)?;
                }
            }
            Effect::GlAssigned {
                account,
                from,
                gl,
                date,
            } => {
                let a = account_at(*account).ok_or(BookError::UnknownAccount(*account))?;
                if from != gl && a.balance != 0 {
                    let minus = a.balance.checked_neg().ok_or(TurnoverOverflow(*from))?;
                    self.post(*date, a.currency, *from, minus)?;
                    self.post(*date, a.currency, *gl, a.balance)?;
                }
            }
            Effect::AccountCreated(_) | Effect::StatusSet { .. } | Effect::DateSwitched { .. } => {}
        }
        Ok(())
    }

    /// The credit-positive balance of `gl` in `currency`.
    pub fn balance(&self, currency: Currency, gl: GlAccount) -> i128 {
        self.balances.get(&(currency, gl)).copied().unwrap_or(0)
    }

    /// Every non-zero balance: (currency, GL account, credit-positive balance).
    pub fn balances(&self) -> impl Iterator<Item = (Currency, GlAccount, i128)> + '_ {
        self.balances
            .iter()
            .filter(|(_, b)| **b != 0)
            .map(|((c, g), b)| (*c, *g, *b))
    }

    /// The turnover of `date`, if it is held here.
    pub fn day(&self, date: BusinessDate) -> Option<&Turnover> {
        self.days.get(&date)
    }

    /// The dates held here, oldest first.
    pub fn dates(&self) -> impl Iterator<Item = BusinessDate> + '_ {
        self.days.keys().copied()
    }

    /// Forgets the turnover of dates before `date` (persisted and final: nothing is booked
    /// on a date once a later one has entries). Bounds the book to the open dates.
    pub fn forget_before(&mut self, date: BusinessDate) {
        self.days = self.days.split_off(&date);
    }

    /// Forgets every date but the newest (after a checkpoint made them all durable).
    pub fn forget_all_but_newest(&mut self) {
        if let Some(&newest) = self.days.keys().next_back() {
            self.forget_before(newest);
        }
    }

    /// Adds another book's balances and turnover (a group's changes folded into the book).
    pub fn absorb(&mut self, other: &GlBook) -> Result<(), BookError> {
        for (&(c, g), &b) in &other.balances {
            self.add_balance(c, g, b)?;
        }
        for (date, t) in &other.days {
            let day = self.days.entry(*date).or_default();
            for (c, g, m) in t.movements() {
                day.add(g, c, m)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Timestamp, TransferId};
    use crate::transfer::{Posting, Transfer, TransferKind};

    const C: Currency = Currency::CNY;

    fn d(text: &str) -> BusinessDate {
        BusinessDate::parse(text).unwrap()
    }

    fn posted(date: &str, legs: &[(GlAccount, i64)]) -> Effect {
        let mut t = Transfer::new(
            TransferId(1),
            TransferKind::Transfer,
            legs.iter()
                .enumerate()
                .map(|(i, (gl, amount))| Posting {
                    gl: Some(*gl),
                    ..Posting::new(AccountId(i as u128), C, *amount)
                })
                .collect(),
            Timestamp(0),
        );
        t.accounting_date = Some(d(date));
        Effect::Posted(t)
    }

    #[test]
    fn balances_and_turnover_follow_the_legs() {
        let mut book = GlBook::default();
        let mut none = |_| None;
        book.apply(
            &posted(
                "2026-12-01",
                &[
                    (GlAccount::Reserve, -10_000),
                    (GlAccount::CustomerBalances, 10_000),
                ],
            ),
            &mut none,
        )
        .unwrap();
        book.apply(
            &posted(
                "2026-12-02",
                &[
                    (GlAccount::CustomerBalances, -3_000),
                    (GlAccount::MerchantAvailable, 2_982),
                    (GlAccount::FeeIncome, 18),
                ],
            ),
            &mut none,
        )
        .unwrap();
        assert_eq!(book.balance(C, GlAccount::CustomerBalances), 7_000);
        assert_eq!(book.balance(C, GlAccount::Reserve), -10_000);
        assert_eq!(book.balances().map(|(_, _, b)| b).sum::<i128>(), 0);
        let day2 = book.day(d("2026-12-02")).unwrap();
        assert_eq!(day2.movement(GlAccount::CustomerBalances, C).debit, 3_000);
        assert_eq!(book.dates().count(), 2);
        book.forget_before(d("2026-12-02"));
        assert_eq!(book.dates().collect::<Vec<_>>(), [d("2026-12-02")]);
        assert_eq!(book.balance(C, GlAccount::FeeIncome), 18);
    }

    #[test]
    fn a_reassignment_moves_the_balance_as_turnover_of_both() {
        let mut account = Account::new(AccountId(5), C, 0, Timestamp(0));
        account.balance = 700;
        let mut book = GlBook::open_from_accounts([&account]).unwrap();
        assert_eq!(book.balance(C, GlAccount::CustomerBalances), 700);
        let mut at = |id: AccountId| (id == AccountId(5)).then(|| account.clone());
        let moved = Effect::GlAssigned {
            account: AccountId(5),
            from: GlAccount::CustomerBalances,
            gl: GlAccount::MerchantAvailable,
            date: Some(d("2026-12-01")),
        };
        book.apply(&moved, &mut at).unwrap();
        assert_eq!(book.balance(C, GlAccount::CustomerBalances), 0);
        assert_eq!(book.balance(C, GlAccount::MerchantAvailable), 700);
        let day = book.day(d("2026-12-01")).unwrap();
        assert_eq!(day.movement(GlAccount::CustomerBalances, C).debit, 700);
        assert_eq!(day.movement(GlAccount::MerchantAvailable, C).credit, 700);
        let mut none = |_| None;
        assert_eq!(
            book.apply(&moved, &mut none),
            Err(BookError::UnknownAccount(AccountId(5)))
        );
    }
}

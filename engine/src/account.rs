//! Accounts and the per-account rules every money movement goes through.
//!
//! [`Account`] is the durable record. [`LiveAccount`] is its in-memory working copy: it adds
//! the *pending* amounts of postings that have been prepared (checked and reserved) but whose
//! transfer is not yet durable. Prepare / commit / release is how one account takes part in an
//! atomic multi-account transfer: a prepared debit can no longer be spent by anyone else, so
//! after every leg prepared, the transfer can be made durable and then committed on each
//! account without any leg failing.

use bincode::{Decode, Encode};

use crate::gl::GlAccount;
use crate::ids::{AccountId, Timestamp};
use crate::money::Currency;
use crate::Reject;

/// Lifecycle of an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub enum AccountStatus {
    /// Debits and credits allowed.
    Active,
    /// No money moves in or out (冻结): a compliance or risk freeze, reversible.
    Frozen,
    /// Terminal. Only an empty account with nothing pending can be closed.
    Closed,
}

/// The durable state of one account.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Account {
    pub id: AccountId,
    pub currency: Currency,
    /// Credits minus debits, in minor units. May go below zero down to `-credit_limit`.
    pub balance: i64,
    /// Durable holds: debits authorised but not yet captured (e.g. a channel payment still
    /// processing). Spendable money is reduced by them.
    pub held: i64,
    /// How far below zero the balance may go. `i64::MAX` for the platform's own clearing
    /// accounts, whose balance mirrors money held at banks and can be any sign.
    pub credit_limit: i64,
    pub status: AccountStatus,
    pub created_at: Timestamp,
    /// The GL account this ledger account belongs to (the chart, `docs/GL.md`): every
    /// posting on it is booked there. Set at creation; moved only by `GlAssigned`.
    pub gl: GlAccount,
}

impl Account {
    /// A new, empty, active account in the GL account its id implies
    /// ([`GlAccount::default_for`]); [`Account::in_gl`] names another.
    pub fn new(id: AccountId, currency: Currency, credit_limit: i64, now: Timestamp) -> Account {
        Account {
            id,
            currency,
            balance: 0,
            held: 0,
            credit_limit,
            status: AccountStatus::Active,
            created_at: now,
            gl: GlAccount::default_for(id),
        }
    }

    /// This account, in GL account `gl`.
    pub fn in_gl(self, gl: GlAccount) -> Account {
        Account { gl, ..self }
    }

    /// What can be spent now: balance minus holds plus unused credit. In `i128` because a
    /// clearing account's credit limit is `i64::MAX`.
    pub fn available(&self) -> i128 {
        i128::from(self.balance) - i128::from(self.held) + i128::from(self.credit_limit)
    }
}

/// An account in memory, with the amounts of prepared-but-not-yet-durable postings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveAccount {
    pub account: Account,
    /// Sum of prepared debits (positive). Reserved: nobody else can spend it.
    pub debits_pending: i64,
    /// Sum of prepared credits (positive). Counted against the overflow bound.
    pub credits_pending: i64,
    /// Number of prepared postings not yet committed or released.
    pub postings_pending: u32,
}

impl LiveAccount {
    pub fn new(account: Account) -> LiveAccount {
        LiveAccount {
            account,
            debits_pending: 0,
            credits_pending: 0,
            postings_pending: 0,
        }
    }

    /// Spendable now, net of holds and prepared debits.
    pub fn available(&self) -> i128 {
        self.account.available() - i128::from(self.debits_pending)
    }

    /// True when nothing is in flight: the in-memory state equals the durable state, so the
    /// account may be dropped from memory (passivated).
    pub fn is_quiescent(&self) -> bool {
        self.postings_pending == 0
    }

    /// Checks a posting (`amount` > 0 credits, < 0 debits) against this account and reserves
    /// it. On `Err` nothing changed.
    pub fn prepare(&mut self, currency: Currency, amount: i64) -> Result<(), Reject> {
        let id = self.account.id;
        match self.account.status {
            AccountStatus::Active => {}
            AccountStatus::Frozen => return Err(Reject::AccountFrozen(id)),
            AccountStatus::Closed => return Err(Reject::AccountClosed(id)),
        }
        if currency != self.account.currency {
            return Err(Reject::CurrencyMismatch(id));
        }
        if amount == 0 || amount == i64::MIN {
            return Err(Reject::InvalidAmount);
        }
        let postings_pending = self
            .postings_pending
            .checked_add(1)
            .ok_or(Reject::Overflow(id))?;
        if amount < 0 {
            let debit = -amount;
            if self.available() < i128::from(debit) {
                return Err(Reject::InsufficientFunds(id));
            }
            // available >= debit bounds balance - pending >= -credit_limit >= -i64::MAX, so
            // this cannot fail; checked anyway because it is money.
            self.debits_pending = self
                .debits_pending
                .checked_add(debit)
                .ok_or(Reject::Overflow(id))?;
        } else {
            // The balance after every prepared credit commits must still fit.
            let ceiling = self
                .account
                .balance
                .checked_add(self.credits_pending)
                .and_then(|b| b.checked_add(amount));
            if ceiling.is_none() {
                return Err(Reject::Overflow(id));
            }
            self.credits_pending = self
                .credits_pending
                .checked_add(amount)
                .ok_or(Reject::Overflow(id))?;
        }
        self.postings_pending = postings_pending;
        Ok(())
    }

    /// Applies a prepared posting after its transfer became durable.
    ///
    /// # Panics
    /// If the posting was not prepared on this account: that is a broken invariant of the
    /// caller, and continuing would corrupt balances.
    pub fn commit(&mut self, amount: i64) {
        self.unreserve(amount);
        self.account.balance = self
            .account
            .balance
            .checked_add(amount)
            .expect("a prepared posting always fits the balance");
        assert!(
            i128::from(self.account.balance) - i128::from(self.account.held)
                >= -i128::from(self.account.credit_limit)
                || amount > 0,
            "a committed debit left {} below its credit limit",
            self.account.id
        );
    }

    /// Drops a prepared posting whose transfer will not happen.
    ///
    /// # Panics
    /// If the posting was not prepared on this account.
    pub fn release(&mut self, amount: i64) {
        self.unreserve(amount);
    }

    fn unreserve(&mut self, amount: i64) {
        assert!(
            self.postings_pending > 0,
            "no posting pending on {}",
            self.account.id
        );
        self.postings_pending -= 1;
        if amount < 0 {
            self.debits_pending = self
                .debits_pending
                .checked_add(amount)
                .filter(|p| *p >= 0)
                .expect("released more debits than prepared");
        } else {
            self.credits_pending = self
                .credits_pending
                .checked_sub(amount)
                .filter(|p| *p >= 0)
                .expect("released more credits than prepared");
        }
    }

    /// Changes the status. Closing needs an empty, quiet account; a closed one stays closed.
    pub fn set_status(&mut self, status: AccountStatus) -> Result<(), Reject> {
        let id = self.account.id;
        if self.account.status == AccountStatus::Closed {
            return Err(Reject::AccountClosed(id));
        }
        if status == AccountStatus::Closed
            && (self.account.balance != 0 || self.account.held != 0 || !self.is_quiescent())
        {
            return Err(Reject::AccountNotEmpty(id));
        }
        self.account.status = status;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(balance: i64, credit_limit: i64) -> LiveAccount {
        let mut a = Account::new(AccountId(1), Currency::CNY, credit_limit, Timestamp(0));
        a.balance = balance;
        LiveAccount::new(a)
    }

    #[test]
    fn debits_reserve_funds() {
        let mut a = live(100, 0);
        assert_eq!(a.prepare(Currency::CNY, -60), Ok(()));
        assert_eq!(
            a.prepare(Currency::CNY, -60),
            Err(Reject::InsufficientFunds(AccountId(1)))
        );
        assert_eq!(a.available(), 40);
        a.commit(-60);
        assert_eq!(a.account.balance, 40);
        assert!(a.is_quiescent());
    }

    #[test]
    fn credit_limit_allows_negative() {
        let mut a = live(0, 50);
        assert_eq!(a.prepare(Currency::CNY, -50), Ok(()));
        a.commit(-50);
        assert_eq!(a.account.balance, -50);
        assert_eq!(
            a.prepare(Currency::CNY, -1),
            Err(Reject::InsufficientFunds(AccountId(1)))
        );
    }

    #[test]
    fn release_restores() {
        let mut a = live(100, 0);
        let before = a.clone();
        a.prepare(Currency::CNY, -100).unwrap();
        a.prepare(Currency::CNY, 7).unwrap();
        a.release(-100);
        a.release(7);
        assert_eq!(a, before);
    }

    #[test]
    fn credits_cannot_overflow() {
        let mut a = live(i64::MAX - 10, 0);
        assert_eq!(a.prepare(Currency::CNY, 6), Ok(()));
        assert_eq!(
            a.prepare(Currency::CNY, 6),
            Err(Reject::Overflow(AccountId(1)))
        );
        a.commit(6);
        assert_eq!(a.account.balance, i64::MAX - 4);
    }

    #[test]
    fn status_rules() {
        let mut a = live(0, 0);
        a.set_status(AccountStatus::Frozen).unwrap();
        assert_eq!(
            a.prepare(Currency::CNY, 5),
            Err(Reject::AccountFrozen(AccountId(1)))
        );
        a.set_status(AccountStatus::Active).unwrap();
        assert_eq!(
            a.prepare(Currency::USD, 5),
            Err(Reject::CurrencyMismatch(AccountId(1)))
        );
        a.prepare(Currency::CNY, 5).unwrap();
        assert_eq!(
            a.set_status(AccountStatus::Closed),
            Err(Reject::AccountNotEmpty(AccountId(1)))
        );
        a.release(5);
        a.set_status(AccountStatus::Closed).unwrap();
        assert_eq!(
            a.set_status(AccountStatus::Active),
            Err(Reject::AccountClosed(AccountId(1)))
        );
        assert_eq!(
            a.prepare(Currency::CNY, 5),
            Err(Reject::AccountClosed(AccountId(1)))
        );
    }
}
